"""Fault-injection fixtures: every test here gets its OWN nats-server and Postgres, which it may
kill, stop and restart; the session's (or the machine's) shared servers are never touched."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import NatsServer, PostgresServer
from devstack.stack import LocalStack
from tests.stacks import secured_nats

# Short enough that a killed renderer's batches come back quickly; the renderer heartbeats
# every ack_wait/3, so a slow batch is still never redelivered while it is being worked on.
ACK_WAIT = "4"


@dataclass
class FaultStack:
    nats: NatsServer
    postgres: PostgresServer
    stack: LocalStack


@pytest.fixture
def fault_stack(request: pytest.FixtureRequest) -> Iterator[FaultStack]:
    marker = request.node.get_closest_marker("renderers")
    renderers = marker.args[0] if marker else 2
    env_marker = request.node.get_closest_marker("stack_env")
    extra_env: dict[str, str] = dict(env_marker.args[0]) if env_marker else {}
    nats_marker = request.node.get_closest_marker("nats_config")
    root = Path(tempfile.mkdtemp(prefix="imagegen-fault-"))
    nats, credentials = secured_nats(root / "nats", extra_config=nats_marker.args[0] if nats_marker else "")
    postgres = PostgresServer.start(root / "pg")
    try:
        database_url = postgres.create_database("imagegen")
        stack = LocalStack(
            root / "stack",
            renderers=renderers,
            nats_url=nats.url,
            nats_credentials=credentials,
            database_url=database_url,
            extra_env={
                "IMAGEGEN_ACK_WAIT_SECONDS": ACK_WAIT,
                "IMAGEGEN_LOG_FORMAT": "json",
                "IMAGEGEN_CSV_ALLOWED_DIR": str(root),
                "IMAGEGEN_PROGRESS_INTERVAL_SECONDS": "0.1",
                **extra_env,
            },
        )
        stack.start()
        try:
            yield FaultStack(nats, postgres, stack)
        finally:
            stack.stop()
    finally:
        nats.stop(kill=True)
        postgres.stop(mode="immediate")
        # IMAGEGEN_KEEP_FAULT_STACK=1 keeps the servers' and services' logs for a post-mortem.
        if not os.environ.get("IMAGEGEN_KEEP_FAULT_STACK"):
            shutil.rmtree(root, ignore_errors=True)
