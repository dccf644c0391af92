"""deploy/healthcheck.py against a real nats-server and a real renderer (it needs no Postgres)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from devstack import NatsServer
from shared.runtime.services import SERVICES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "healthcheck.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("imagegen_healthcheck", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path_factory.mktemp("healthcheck-nats"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def renderer_env(nats: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One renderer running against `nats`; yields the environment a probe in its container has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    env.update(
        IMAGEGEN_NATS_URL=nats.url,
        IMAGEGEN_OUTPUT_DIR=str(tmp_path_factory.mktemp("healthcheck-output")),
        IMAGEGEN_LOG_FORMAT="json",
    )
    log = tmp_path_factory.mktemp("healthcheck-log") / "renderer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.renderer"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while probe(env, "renderer").returncode != 0:
            assert process.poll() is None, f"renderer died:\n{log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"renderer never healthy:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield env
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_healthy_when_the_service_answers_ping(renderer_env: dict[str, str]) -> None:
    result = probe(renderer_env, "renderer")
    assert result.returncode == 0, result.stderr
    assert "1 renderer instance(s) answered PING" in result.stdout


def test_unhealthy_when_no_instance_of_that_service_runs(renderer_env: dict[str, str]) -> None:
    result = probe(renderer_env, "ingest")
    assert result.returncode == 1
    assert "no ingest answered $SRV.PING.ingest" in result.stderr


def test_own_connection_is_checked_on_the_monitoring_endpoint(
    renderer_env: dict[str, str], nats: NatsServer
) -> None:
    monitor = f"http://127.0.0.1:{nats.monitor_port}"
    result = probe(renderer_env, "renderer", "--monitor-url", monitor)
    assert result.returncode == 0, result.stderr
    assert "this one connected as renderer@" in result.stdout

    # Another replica's probe (a different instance name) must not pass on this one's behalf.
    other = {**renderer_env, "IMAGEGEN_INSTANCE": "renderer@some-other-pod:1"}
    result = probe(other, "renderer", "--monitor-url", monitor)
    assert result.returncode == 1
    assert "no NATS connection of this renderer process" in result.stderr


def test_unhealthy_fast_when_nats_is_unreachable(tmp_path: Path) -> None:
    env = {**os.environ, "IMAGEGEN_NATS_URL": "nats://127.0.0.1:1"}
    # It gives up on its own (probe() fails on a probe that hangs past 30 s) and says why.
    result = probe(env, "renderer", "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy: NATS:")


def test_service_is_read_from_the_command_line() -> None:
    script = load_script()
    assert (
        script.service_in_argv(["/opt/venv/bin/python", "/opt/venv/bin/imagegen", "serve", "ingest"])
        == "ingest"
    )
    assert script.service_in_argv(["python", "-m", "services.result_notifier"]) == "result-notifier"
    assert script.service_in_argv(["nats-server", "--jetstream"]) is None
    assert set(script.SERVICES) == set(SERVICES)
