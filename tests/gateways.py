"""The gateway under test: `python -m services.gateway` as a real process on a free port.

It runs against the session's service stack (same NATS, same output folder) and is found the way
an operator finds it: through `$SRV.PING`, whose metadata carries its URL. The `gateway` and
`http` fixtures are registered in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.stack import REPO_ROOT, LocalStack
from shared.runtime.bus.discovery import ping_all
from shared.runtime.bus.permissions import CLIENT, GATEWAY

MAX_UPLOAD = 2 * 1024 * 1024


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path


async def _find_url(stack: LocalStack, instance: str, timeout: float) -> str:
    nc = await stack.connect_as(CLIENT)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in await ping_all(nc, name="gateway", wait=0.2):
                metadata = reply.get("metadata") or {}
                # Only ours: several gateway processes may share this NATS.
                if metadata.get("instance") == instance and metadata.get("url"):
                    return str(metadata["url"])
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    raise TimeoutError("the gateway did not register within the timeout")


def start_gateway(stack: LocalStack, log_file: Path, **env: str) -> Gateway:
    instance = f"gateway-test-{log_file.parent.name}"
    environment = stack.env(
        GATEWAY,  # its own NATS identity, as the stack runs it
        IMAGEGEN_INSTANCE=instance,
        IMAGEGEN_GATEWAY_HOST="127.0.0.1",
        IMAGEGEN_GATEWAY_PORT="0",
        IMAGEGEN_GATEWAY_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        IMAGEGEN_LOG_FORMAT="json",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        **env,
    )
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = asyncio.run(_find_url(stack, instance, 30))
    except BaseException:
        process.kill()
        raise RuntimeError(
            f"gateway failed to start:\n{log_file.read_text(errors='replace')[-3000:]}"
        ) from None
    return Gateway(url.rstrip("/"), process, log_file)


def gateway_fixture(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    log_file = tmp_path_factory.mktemp("gateway") / "gateway.log"
    gw = start_gateway(stack, log_file)
    try:
        yield gw
    finally:
        gw.process.terminate()
        try:
            gw.process.wait(15)
        except subprocess.TimeoutExpired:
            gw.process.kill()
            raise
        # SIGTERM is a clean stop: unregister, drain NATS, exit 0 like every other service.
        assert gw.process.returncode == 0, log_file.read_text(errors="replace")[-3000:]


async def http_fixture(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client
