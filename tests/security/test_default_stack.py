"""The stack `imagegen up` starts is locked by default: nothing without credentials gets in, the
secrets it generates are readable by their owner only, and the CLI finds the client identity by
itself (nobody pastes a password)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import nats.errors
import pytest

from shared.cli.stackfile import StackInfo
from shared.runtime.bus.permissions import CLIENT
from tests.conftest import REPO, create_database

# What would point the stack at another server, or hand it an identity from this shell.
_FOREIGN = ("NATS_URL", "IMAGEGEN_NATS_URL", "DATABASE_URL", "IMAGEGEN_DATABASE_URL")


def imagegen(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
async def up(tmp_path: Path, postgres_admin_url: str) -> AsyncIterator[tuple[Path, dict[str, str]]]:
    """`imagegen up` in a fresh folder (its own nats-server; a fresh ledger database)."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN and not k.startswith("IMAGEGEN_NATS_")}
    env |= {
        "DATABASE_URL": await create_database(postgres_admin_url, prefix="imagegen_up"),
        "PYTHONPATH": str(REPO),
    }
    started = imagegen(tmp_path, env, "up", "--renderers", "1")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield tmp_path, env
    finally:
        imagegen(tmp_path, env, "down")


@pytest.mark.slow
async def test_imagegen_up_refuses_connections_without_credentials(up: tuple[Path, dict[str, str]]) -> None:
    folder, env = up
    state = folder / ".imagegen" / "up"
    info = msgspec.json.decode((state / "stack.json").read_bytes(), type=StackInfo)

    # A plain connection, as anyone on this machine could make it, is refused outright.
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(info.nats_url, allow_reconnect=False, connect_timeout=2)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            info.nats_url, user=CLIENT, password="guess", allow_reconnect=False, connect_timeout=2
        )

    # The generated secrets are the owner's only; the recorded identity is the client's, not admin.
    for secret in (
        state / "stack.json",
        state / "nats-credentials.json",
        state / "nats" / "nats-server.conf",
    ):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert info.client_env["IMAGEGEN_NATS_USER"] == CLIENT
    assert len(info.client_env["IMAGEGEN_NATS_PASSWORD"]) >= 24

    # The CLI in that folder finds the stack and its client identity by itself: the recorded
    # stack wins over a NATS URL left in the environment (nothing listens on port 1).
    (folder / "labels.csv").write_text("name\n默认 default\n", "utf-8")
    stale = {**env, "IMAGEGEN_NATS_URL": "nats://127.0.0.1:1"}
    done = imagegen(folder, stale, "--json", "submit", "csv", "labels.csv", "--column", "name", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["done"]) == ("completed", 1)
    status = imagegen(folder, env, "--json", "status")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["services"]["renderer"] == 1 and "client_env" not in report
    assert report["nats_url"] == info.nats_url and report["console_url"] == info.console_url
    queues = {queue["consumer"]: queue for queue in report["queues"]}
    assert {"ingest-csv", "renderer", "result-notifier"} <= set(queues)
    assert queues["renderer"]["waiting"] == 0  # the job above is done: nothing waits
    again = imagegen(folder, env, "up")  # a second `up` shows every URL again
    assert again.returncode == 0 and info.console_url and info.console_url in again.stdout
    assert info.client_env["IMAGEGEN_NATS_PASSWORD"] not in status.stdout
