"""The throwaway three-member cluster: it forms, keeps a three-replica stream through a kill -9 of
the stream's leader, and takes the killed member back as the same peer on the same ports."""

from __future__ import annotations

import nats
import nats.errors
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from devstack import LocalStackError, NatsCluster
from shared.runtime.retry import retrying
from tests.stacks import stream_leader, wait_for_peers

# What a publish or a read may raise while the stream elects a new leader.
ELECTION = (APIError, NoStreamResponseError, nats.errors.TimeoutError, nats.errors.NoRespondersError)


@pytest.mark.slow
async def test_a_replicated_stream_survives_its_leader_killed(nats_cluster: NatsCluster) -> None:
    assert len(nats_cluster.servers) == 3
    assert len({server.port for server in nats_cluster.servers}) == 3
    nc = await nats.connect(nats_cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=2)
        info = await js.add_stream(StreamConfig(name="CLUSTER", subjects=["cl.>"], num_replicas=3))
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        for i in range(50):
            await js.publish("cl.before", str(i).encode())

        leader_name = await stream_leader(js, "CLUSTER")
        leader = nats_cluster.member(leader_name)
        port = leader.port
        leader.stop(kill=True)
        for i in range(50):
            await retrying(lambda i=i: js.publish("cl.after", str(i).encode()), on=ELECTION, what="publish")
        assert await stream_leader(js, "CLUSTER") != leader_name
        info = await retrying(lambda: js.stream_info("CLUSTER"), on=ELECTION, what="info")
        assert info.state.messages == 100

        leader.start_again()  # the same name, ports and store: the same peer
        assert leader.port == port
        nats_cluster.wait_healthy()
        await wait_for_peers(js, "CLUSTER", 3)
    finally:
        await nc.close()


def test_a_member_is_found_by_its_jetstream_name(nats_cluster: NatsCluster) -> None:
    assert nats_cluster.member(f"{nats_cluster.name}-1") is nats_cluster.servers[1]
    with pytest.raises(LocalStackError, match="no member named"):
        nats_cluster.member("elsewhere")
    assert nats_cluster.url.split(",") == nats_cluster.urls
