"""Replica counts of the topology: `IMAGEGEN_STREAM_REPLICAS` (and the KV and Object Store
counts) reach every stream and bucket, a changed configuration is applied in place, and a single
server refuses more than one replica with an error that names the setting. The move to three
replicas on a real cluster is in tests/faults/test_cluster.py."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from devstack import NatsCluster, NatsServer
from shared.contract import subjects
from shared.runtime.bus.discovery import ping_all, wait_for_services
from shared.runtime.bus.streams import TopologyError, ensure_topology, stream_configs
from shared.runtime.settings import Settings, SettingsError
from tests.stacks import wait_for_peers

STREAMS = [config.name for config in stream_configs(Settings())]
KV = [subjects.kv_stream(subjects.BUCKET_CANCELLED), subjects.kv_stream(subjects.BUCKET_ACTIVE)]
OBJECTS = [subjects.object_stream(subjects.BUCKET_INPUTS), subjects.object_stream(subjects.BUCKET_IMAGES)]


def test_replica_settings_reach_every_stream_and_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_STREAM_REPLICAS", "3")
    settings = Settings()
    assert {config.num_replicas for config in stream_configs(settings)} == {3}
    monkeypatch.setenv("IMAGEGEN_KV_REPLICAS", "5")
    monkeypatch.setenv("IMAGEGEN_OBJECT_STORE_REPLICAS", "1")
    settings = Settings()
    assert (settings.stream_replicas, settings.kv_replicas, settings.object_store_replicas) == (3, 5, 1)
    for bad in ("0", "6"):
        monkeypatch.setenv("IMAGEGEN_STREAM_REPLICAS", bad)
        with pytest.raises(SettingsError, match="IMAGEGEN_STREAM_REPLICAS"):
            Settings()


@pytest.fixture
async def js_server(tmp_path: Path) -> AsyncIterator[NATS]:
    server = NatsServer.start(tmp_path / "nats")
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()
        server.stop()


async def test_one_replica_on_a_single_server_and_changes_applied_in_place(js_server: NATS) -> None:
    js = js_server.jetstream()
    await ensure_topology(js, Settings(stream_replicas=1))
    for name in [*STREAMS, *KV, *OBJECTS]:
        info = await js.stream_info(name)
        assert info.config.num_replicas == 1, name
    inputs = await js.object_store(subjects.BUCKET_INPUTS)
    await inputs.put("kept.csv", b"name\nkept\n")
    cancelled = await js.key_value(subjects.BUCKET_CANCELLED)
    await cancelled.put("job-1", b"kept")

    # A changed TTL reaches the existing buckets' streams, and what they hold stays.
    await ensure_topology(js, Settings(inputs_ttl_hours=2, results_max_age_hours=3))
    assert (await js.stream_info(OBJECTS[0])).config.max_age == 2 * 3600
    assert (await js.stream_info(KV[0])).config.max_age == 3 * 3600
    assert (await js.stream_info(subjects.STREAM_RESULTS)).config.max_age == 3 * 3600
    assert (await inputs.get("kept.csv")).data == b"name\nkept\n"
    assert (await cancelled.get("job-1")).value == b"kept"


async def test_a_single_server_refuses_three_replicas_naming_the_setting(js_server: NATS) -> None:
    js = js_server.jetstream()
    with pytest.raises(TopologyError, match="IMAGEGEN_STREAM_REPLICAS") as refused:
        await ensure_topology(js, Settings(stream_replicas=3))
    assert STREAMS[0] in str(refused.value) and "3 replica" in str(refused.value)
    # Streams at one copy with buckets at three: the first bucket is refused the same way.
    with pytest.raises(TopologyError, match=OBJECTS[0]):
        await ensure_topology(js, Settings(stream_replicas=1, object_store_replicas=3))


@pytest.mark.slow
async def test_a_cluster_moves_every_stream_and_bucket_to_three_replicas_in_place(
    nats_cluster: NatsCluster,
) -> None:
    nc = await nats.connect(nats_cluster.urls)
    try:
        js = nc.jetstream(timeout=5)
        await ensure_topology(js, Settings(stream_replicas=1))
        ack = await js.publish(f"{subjects.PREFIX}.events.job-1.created", b"kept")
        await (await js.key_value(subjects.BUCKET_ACTIVE)).put("job-1", b"1")

        await ensure_topology(js, Settings(stream_replicas=3))
        for name in [*STREAMS, *KV, *OBJECTS]:
            assert (await js.stream_info(name)).config.num_replicas == 3, name
            await wait_for_peers(js, name, 3)
        assert (await js.get_msg(subjects.STREAM_EVENTS, ack.seq)).data == b"kept"
        assert (await (await js.key_value(subjects.BUCKET_ACTIVE)).get("job-1")).value == b"1"

        # Buckets may keep another count than streams.
        await ensure_topology(js, Settings(stream_replicas=3, kv_replicas=1))
        assert (await js.stream_info(KV[1])).config.num_replicas == 1
        assert (await js.stream_info(OBJECTS[1])).config.num_replicas == 3
    finally:
        await nc.close()


async def test_more_replicas_than_servers_is_refused_with_the_servers_reason(tmp_path: Path) -> None:
    two = NatsCluster.start(tmp_path / "two", size=2)
    try:
        nc = await nats.connect(two.urls)
        try:
            with pytest.raises(TopologyError, match=f"{STREAMS[0]} with 3 replica.*no suitable peers"):
                await ensure_topology(nc.jetstream(timeout=5), Settings(stream_replicas=3))
        finally:
            await nc.close()
    finally:
        two.stop(kill=True)


@pytest.mark.slow
async def test_a_service_started_before_its_cluster_has_a_quorum_waits_for_it(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    first, *others = nats_cluster.servers
    for server in others:
        server.stop()  # one of three left: JetStream answers nothing
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    env.update(
        IMAGEGEN_NATS_URL=nats_cluster.url,
        IMAGEGEN_STREAM_REPLICAS="3",
        IMAGEGEN_OUTPUT_DIR=str(tmp_path / "output"),
        IMAGEGEN_LOG_FORMAT="json",
    )
    log = tmp_path / "renderer.log"
    with log.open("wb") as out:
        renderer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.renderer", env=env, stdout=out, stderr=out
        )
    try:
        nc = await nats.connect(first.url)
        try:
            await asyncio.sleep(3)
            assert renderer.returncode is None, log.read_text()
            assert not await ping_all(nc, name="renderer"), "registered before its streams exist"
            for server in others:
                await asyncio.to_thread(server.start_again)
            await wait_for_services(nc, {"renderer": 1}, timeout=60)
            assert (await nc.jetstream().stream_info(subjects.STREAM_TASKS)).config.num_replicas == 3
        finally:
            await nc.close()
        assert '"topology.retry"' in log.read_text()
    finally:
        renderer.terminate()
        await asyncio.wait_for(renderer.wait(), 30)
