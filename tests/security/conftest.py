"""Servers for the security tests: nats-servers that run the permissions layout whatever
`NATS_URL` says, and probes that connect as one identity and see what the server refuses.

`bare` is the layout with the topology declared and no service running: forgeries are tried
there and their effect (none) read back as admin. `secured` is a whole stack on the layout (images
in the object store, so clients read them from the bucket): normal use must work there without a
single permission violation by a service.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from devstack import NatsServer
from devstack.natsauth import NatsCredentials
from devstack.stack import LocalStack
from shared.runtime.bus.permissions import ADMIN
from shared.runtime.settings import Settings
from shared.workflow.topology import declare_all
from tests.conftest import create_database
from tests.stacks import secured_nats

_VIOLATION = re.compile(
    r'"\$G/user:(?P<user>[^"]+)" - (?P<kind>Publish|Subscription) Violation - Subject "(?P<subject>[^"]+)"'
)


@dataclass(frozen=True)
class Violation:
    user: str
    kind: str  # "Publish" or "Subscription"
    subject: str


@dataclass
class Server:
    """A nats-server on the layout, its passwords and its log (where it records refusals)."""

    nats: NatsServer
    credentials: NatsCredentials
    log: Path

    def violations(self, since: int = 0) -> list[Violation]:
        """The permission violations the server logged after byte `since` of its log."""
        with self.log.open("rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", errors="replace")
        return [Violation(**m.groupdict()) for m in _VIOLATION.finditer(text)]

    def log_size(self) -> int:
        return self.log.stat().st_size

    async def connect(self, identity: str, **options: Any) -> Probe:
        probe = Probe(identity)

        async def record(exc: Exception) -> None:
            probe.errors.append(str(exc).lower())

        probe.nc = await nats.connect(
            self.nats.url, error_cb=record, **self.credentials.options(identity), **options
        )
        return probe


@dataclass
class Probe:
    """One connection as `identity`, with the errors the server sent it."""

    identity: str
    errors: list[str] = field(default_factory=list)
    nc: NATS = field(init=False)

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream(timeout=1.0)

    async def told(self, subject: str, timeout: float = 30.0) -> None:
        """Wait until the server has told this connection that `subject` is not allowed."""
        deadline = time.monotonic() + timeout
        wanted = f'violation for publish to "{subject.lower()}"'
        wanted_sub = f'violation for subscription to "{subject.lower()}"'
        while not any(wanted in e or wanted_sub in e for e in self.errors):
            assert time.monotonic() < deadline, f"{self.identity}: no refusal of {subject}: {self.errors}"
            await asyncio.sleep(0.02)

    async def publish_refused(self, subject: str, payload: bytes = b"forged") -> None:
        """Publish on `subject`; the server must refuse it (and tell us)."""
        await self.nc.publish(subject, payload)
        await self.nc.flush()
        await self.told(subject)

    async def request_refused(self, subject: str, payload: bytes = b"") -> None:
        """A request on `subject` (a JetStream API call, say) gets no answer: refused."""
        with pytest.raises(nats.errors.TimeoutError):
            await self.nc.request(subject, payload, timeout=1.0)
        await self.told(subject)

    async def close(self) -> None:
        await self.nc.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The layout with every stream, bucket and consumer declared (as admin) and no service."""
    tmp = tmp_path_factory.mktemp("bare-nats")
    server, credentials = secured_nats(tmp / "store", tmp / "nats-server.log")
    bare = Server(server, credentials, tmp / "nats-server.log")

    async def declare() -> None:
        admin = await bare.connect(ADMIN)
        try:
            await declare_all(admin.nc.jetstream(), Settings(nats_url=server.url))
        finally:
            await admin.close()

    try:
        asyncio.run(declare())
        yield bare
    finally:
        server.stop()


@dataclass
class Secured:
    server: Server
    stack: LocalStack


@pytest.fixture(scope="module")
async def secured(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str
) -> AsyncIterator[Secured]:
    """A whole stack on the layout, with images in the object store."""
    tmp = tmp_path_factory.mktemp("secured")
    server, credentials = secured_nats(tmp / "store", tmp / "nats-server.log")
    database_url = await create_database(postgres_admin_url, prefix="imagegen_secured")
    stack = LocalStack(
        tmp / "stack",
        renderers=1,
        nats_url=server.url,
        nats_credentials=credentials,
        database_url=database_url,
        extra_env={
            "IMAGEGEN_LOG_FORMAT": "json",
            "IMAGEGEN_OUTPUT_STORE": "object",
            "IMAGEGEN_PROGRESS_INTERVAL_SECONDS": "0.1",
        },
    )
    try:
        await asyncio.to_thread(stack.start)
        yield Secured(Server(server, credentials, tmp / "nats-server.log"), stack)
    finally:
        await asyncio.to_thread(stack.stop)
        server.stop()
