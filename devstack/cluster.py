"""A throwaway JetStream cluster on loopback: three nats-server processes joined by routes.

Each member is a `NatsServer` (its own client port, store folder, log and process group) with a
stable name, the cluster's name, its own route port and routes to the others, so a member that
is killed or restarted comes back as the same JetStream peer on the same ports and store. The
cluster is ready when every running member's `/healthz` says JetStream is current (a meta leader
is elected and the member has caught up), which is what a test waits for after each fault.

    cluster = NatsCluster.start(tmp / "cluster")
    settings = Settings(nats_url=cluster.url, stream_replicas=3)   # every member's URL
    cluster.servers[0].stop(kill=True); cluster.servers[0].start_again(); cluster.wait_healthy()
    cluster.stop()
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack._proc import LocalStackError, free_port
from devstack.nats import NatsServer

HEALTHY_TIMEOUT = 60.0


@dataclass
class NatsCluster:
    """Members of one nats-server cluster on 127.0.0.1, all with JetStream."""

    name: str
    servers: list[NatsServer]

    @classmethod
    def start(
        cls,
        root: Path,
        *,
        size: int = 3,
        name: str = "imagegen-devstack",
        config_text: str | None = None,
    ) -> NatsCluster:
        """Start `size` members with stores under `root/<member>` and wait until they are healthy.

        `config_text` (e.g. the permissions layout's `authorization {}`) is given to every member.
        Route ports are picked free; a member that loses the race for its port fails to start and
        the whole cluster is stopped with the log tail in the error.
        """
        root = Path(root).resolve()
        route_ports: list[int] = []
        while len(route_ports) < size:
            port = free_port()
            if port not in route_ports:
                route_ports.append(port)
        routes = [f"nats://127.0.0.1:{port}" for port in route_ports]
        cluster = cls(name, [])
        try:
            for index in range(size):
                member = f"{name}-{index}"
                others = ",".join(route for i, route in enumerate(routes) if i != index)
                args = (
                    "--name", member,
                    "--cluster_name", name,
                    "--cluster", routes[index],
                    "--routes", others,
                )  # fmt: skip
                cluster.servers.append(
                    NatsServer.start(root / member, config_text=config_text, extra_args=args)
                )
            cluster.wait_healthy()
        except BaseException:
            cluster.stop(kill=True)
            raise
        return cluster

    @property
    def urls(self) -> list[str]:
        """Every member's client URL (a client given all of them reconnects to any survivor)."""
        return [server.url for server in self.servers]

    @property
    def url(self) -> str:
        """The members' URLs comma-separated, as `IMAGEGEN_NATS_URL` takes them."""
        return ",".join(self.urls)

    def member(self, name: str) -> NatsServer:
        """The member a server name (as JetStream reports leaders and peers) belongs to."""
        for server in self.servers:
            if server.store_dir.name == name:  # each member's store folder is named after it
                return server
        raise LocalStackError(f"no member named {name!r} in cluster {self.name}")

    def wait_healthy(self, timeout: float = HEALTHY_TIMEOUT) -> None:
        """Return once every running member reports JetStream healthy; raise with the reason of
        the first one that is not, after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            reasons = [_unhealthy(server) for server in self.servers if server.running]
            failing = [reason for reason in reasons if reason]
            if not failing:
                return
            if time.monotonic() > deadline:
                raise LocalStackError(f"cluster {self.name} not healthy after {timeout:.0f} s: {failing[0]}")
            time.sleep(0.2)

    def stop(self, *, kill: bool = False) -> None:
        """Stop every member (SIGTERM, or SIGKILL with `kill`); idempotent."""
        for server in self.servers:
            server.stop(kill=kill)


def _unhealthy(server: NatsServer) -> str:
    """'' when the member's `/healthz` answers ok, else why not."""
    url = f"http://127.0.0.1:{server.monitor_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:  # 503 with a JSON reason while JetStream is not current
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    if body.get("status") == "ok":
        return ""
    return f"{url}: {body.get('error') or body}"
