"""NATS with authentication required: services and clients connect with credentials from
settings, and a client without them is refused."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import textwrap
from pathlib import Path

import nats
import nats.errors
import pytest

from devstack import NatsServer
from devstack.stack import LocalStack
from shared.client import Client
from shared.sources.csv import SubmitCsv


@pytest.mark.slow
async def test_the_service_set_works_end_to_end_behind_user_password_auth(database_url: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="imagegen-auth-"))
    server = NatsServer.start(
        root / "nats",
        config_text=textwrap.dedent(
            """
            authorization {
              users = [
                {user: "imagegen", password: "s3cret"}
              ]
            }
            """
        ),
    )
    stack = LocalStack(
        root / "stack",
        renderers=1,
        nats_url=server.url,
        database_url=database_url,
        extra_env={"IMAGEGEN_NATS_USER": "imagegen", "IMAGEGEN_NATS_PASSWORD": "s3cret"},
    )
    try:
        with pytest.raises((nats.errors.NoServersError, nats.errors.Error, OSError)):
            await nats.connect(server.url, max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=2)
        await asyncio.to_thread(stack.start)
        async with await Client.connect(server.url, user="imagegen", password="s3cret") as client:
            accepted = await client.submit(SubmitCsv(csv="name\n认证 auth\n", column="name"))
            final = await client.wait(accepted.job_id, timeout=60)
            assert (final.kind, final.done, final.failed) == ("completed", 1, 0)
    finally:
        stack.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
