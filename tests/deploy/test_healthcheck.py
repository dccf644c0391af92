"""deploy/healthcheck.py against a real nats-server, a real renderer and a real gateway (neither
needs Postgres); the gateway's metrics port and JSON logs, which its container relies on."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from devstack import NatsCluster, NatsServer, free_port
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


def run_until_healthy(
    service: str, env: dict[str, str], log: Path, *probe_args: str
) -> subprocess.Popen[bytes]:
    """`python -m services.<service>` with `env`, once its own probe passes."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", SERVICES[service].module],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120  # a liveness bound for a loaded machine, not a speed check
    while probe(env, service, *probe_args).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"{service} never healthy:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def service_env(nats_url: str, output: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    env.update(IMAGEGEN_NATS_URL=nats_url, IMAGEGEN_OUTPUT_DIR=str(output), IMAGEGEN_LOG_FORMAT="json")
    return env


@contextlib.contextmanager
def running_renderer(nats_url: str, tmp: Path) -> Iterator[dict[str, str]]:
    """One renderer running against `nats_url`; yields the environment a probe in its container
    has, once the renderer is healthy."""
    env = service_env(nats_url, tmp / "output")
    process = run_until_healthy("renderer", env, tmp / "renderer.log")
    try:
        yield env
    finally:
        stop(process)


@pytest.fixture(scope="module")
def renderer_env(nats: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_renderer(nats.url, tmp_path_factory.mktemp("healthcheck-renderer")) as env:
        yield env


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


def test_own_connection_is_found_on_whichever_server_of_a_cluster_holds_it(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    first, *others = nats_cluster.servers
    # Given only the first server, the renderer connects there.
    with running_renderer(first.url, tmp_path) as env:
        monitors = [f"http://127.0.0.1:{server.monitor_port}" for server in [*others, first]]
        result = probe(env, "renderer", "--monitor-url", ",".join(monitors))
        assert result.returncode == 0, result.stderr
        assert "this one connected as renderer@" in result.stdout
        # The other servers do not hold it; a server that does not answer is skipped.
        others_only = ",".join([*monitors[:-1], "http://127.0.0.1:1"])
        result = probe(env, "renderer", "--monitor-url", others_only)
        assert result.returncode == 1
        assert "no NATS connection of this renderer process" in result.stderr
        result = probe(env, "renderer", "--monitor-url", "http://127.0.0.1:1")
        assert result.returncode == 1 and "Connection refused" in result.stderr


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


AS_ANOTHER_UID = f"""
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("healthcheck", {str(SCRIPT)!r})
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
assert script.output_problem("renderer") is None  # root may write (and imports everything)
os.setegid(65534)
os.seteuid(65534)
sys.exit(script.main(["renderer"]))
"""


def test_unhealthy_when_the_renderer_cannot_write_its_output_folder(renderer_env: dict[str, str]) -> None:
    # A volume owned by root (0755) and a renderer running as another uid, as in the image.
    with tempfile.TemporaryDirectory(prefix="imagegen-root-owned-") as folder:
        Path(folder).chmod(0o755)
        env = {**renderer_env, "IMAGEGEN_OUTPUT_DIR": folder}
        if os.getuid() == 0:  # root writes anywhere: the probe drops to `nobody` once loaded
            command = [sys.executable, "-c", AS_ANOTHER_UID]
        else:
            Path(folder).chmod(0o555)
            command = [sys.executable, str(SCRIPT), "renderer"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        resolved = Path(folder).resolve()
        assert result.stderr.startswith(f"unhealthy: the output folder {resolved} is not writable by uid")
        assert list(Path(folder).iterdir()) == []


def test_gateway_health_metrics_and_json_logs(nats: NatsServer, tmp_path: Path) -> None:
    """The gateway's container check passes on its own connection, /metrics answers on
    IMAGEGEN_METRICS_PORT, and every line it writes (uvicorn's included) is JSON."""
    metrics_port = free_port()
    env = service_env(nats.url, tmp_path / "output")
    env.update(IMAGEGEN_GATEWAY_PORT="0", IMAGEGEN_METRICS_PORT=str(metrics_port))
    monitor = f"http://127.0.0.1:{nats.monitor_port}"
    log = tmp_path / "gateway.log"
    process = run_until_healthy("gateway", env, log, "--monitor-url", monitor)
    try:
        result = probe(env, "gateway", "--monitor-url", monitor)
        assert result.returncode == 0, result.stderr
        assert "this one connected as gateway@" in result.stdout
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"# TYPE imagegen_jobs_total counter" in response.read()
    finally:
        stop(process)
    lines = log.read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]  # fails on any line that is not JSON
    assert any(event.startswith("Uvicorn running on") for event in events), events
    assert "gateway.stopped" in events
