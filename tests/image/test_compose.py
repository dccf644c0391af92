"""compose.yaml, run for real under docker-compose (Compose v1) against podman's Docker API.

The image under test serves every imagegen service; NATS and Postgres are local stand-ins
(tests/image/standins/, built on the same base) where the official images cannot be pulled; an
override file names them and nothing else. The test brings the stack up with no `.env` (the NATS
passwords and the gateway's key come from the nats-credentials step), waits until every service
is healthy, submits a CSV file through the gateway with the key the init step made, checks the
PNGs, and ends with `down -v`, after which none of the project's volumes remain.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from devstack import free_port
from devstack.nats import find_nats_server
from tests.conftest import REPO
from tests.image.podman import health_check, inspect, podman

COMPOSE = REPO / "compose.yaml"
STANDINS = Path(__file__).resolve().parent / "standins"
PRODUCTS = REPO / "examples" / "products.csv"
ONE_SHOTS = {"nats-credentials", "nats-setup"}


@pytest.fixture(scope="module")
def standins(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The stand-in images of the official nats and postgres ones, by compose service."""
    context = tmp_path_factory.mktemp("standins")
    for name in ("wget", "postgres-entrypoint.sh"):
        shutil.copy2(STANDINS / name, context / name)
    shutil.copy2(find_nats_server(), context / "nats-server")
    images = {}
    for service in ("nats", "postgres"):
        tag = f"localhost/imagegen-standin-{service}:test"
        podman(
            "build", "--quiet", "--layers", "--build-arg", f"BASE={base_image}",
            "-f", STANDINS / f"{service}.Containerfile", "-t", tag, context, timeout=600,
        )  # fmt: skip
        images[service] = tag
    return images


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker-compatible API on a socket of this test's own."""
    socket = tmp_path_factory.mktemp("podman-api") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert service.poll() is None and time.monotonic() < deadline, "podman API did not start"
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(30)


class HealthTimer(threading.Thread):
    """What podman's systemd timers do where there is no systemd: run the health check of each
    running container not yet healthy, all at once, every second, so that compose's
    `condition: service_healthy` can be met."""

    def __init__(self, project: str) -> None:
        super().__init__(daemon=True)
        self.project = project
        self.stopped = threading.Event()

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            while not self.stopped.wait(1.0):
                waiting = [
                    container
                    for container in project_containers(self.project, running=True)
                    if (state := inspect(container))["Config"].get("Healthcheck")
                    and (state["State"].get("Health") or {}).get("Status") != "healthy"
                ]
                list(pool.map(health_check, waiting))


def project_containers(project: str, *, running: bool = False) -> list[str]:
    args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={project}"]
    return podman(*args, *([] if running else ["-a"]), check=False).stdout.split()


def service_of(container: str) -> str:
    return str(inspect(container)["Config"]["Labels"]["com.docker.compose.service"])


def wait_healthy(project: str, services: set[str], timeout: float) -> dict[str, str]:
    """Every long-running service's container healthy (one-shots exited 0); name by service."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for container in project_containers(project):
            data = inspect(container)
            state = data["State"]
            service = data["Config"]["Labels"]["com.docker.compose.service"]
            if service in ONE_SHOTS:
                ok = state["Status"] == "exited" and state["ExitCode"] == 0
            else:
                ok = state["Status"] == "running" and (state.get("Health") or {}).get("Status") == "healthy"
            states[service] = (data["Name"], ok, state["Status"])
        if set(states) >= services and all(ok for _, ok, _ in states.values()):
            return {service: name for service, (name, _, _) in states.items()}
        assert time.monotonic() < deadline, f"not all healthy after {timeout}s: {states}"
        time.sleep(1)


def test_compose_up_submit_through_the_gateway_and_down(
    image: str, standins: dict[str, str], docker_host: str, tmp_path: Path
) -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    override = tmp_path / "compose.test.yaml"
    images = {name: standins.get(name, image) for name in services}
    override.write_text(yaml.safe_dump({"services": {name: {"image": images[name]} for name in services}}))
    project = f"imagegen-it-{secrets.token_hex(3)}"
    gateway_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "IMAGEGEN_"))},
        "DOCKER_HOST": docker_host,
        "COMPOSE_PROJECT_NAME": project,
        "NATS_PORT": str(free_port()),
        "NATS_MONITOR_PORT": str(free_port()),
        "GATEWAY_PORT": str(gateway_port),
    }
    compose = ["docker-compose", "--no-ansi", "-f", str(COMPOSE), "-f", str(override)]

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    timer = HealthTimer(project)
    timer.start()
    try:
        up = run("up", "--detach", "--no-build")
        assert up.returncode == 0, up.stdout + up.stderr
        names = wait_healthy(project, set(services), timeout=180)
        key = podman("exec", names["gateway"], "cat", "/data/credentials/gateway-api-key").stdout.strip()
        assert len(key) == 32

        rows = PRODUCTS.read_text(encoding="utf-8").count("\n") - 1
        with httpx.Client(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30) as http:
            assert http.get("/jobs").status_code == 401  # beyond loopback in its container: keyed
            http.headers["X-API-Key"] = key
            accepted = http.post(
                "/generate/csv",
                files={"file": ("products.csv", PRODUCTS.read_bytes(), "text/csv")},
                data={"column": "name"},
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            deadline = time.monotonic() + 120
            while (job := http.get(f"/jobs/{job_id}").json())["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
            assert (job["status"], job["total"], job["done"], job["failed"]) == ("completed", rows, rows, 0)
        listing = podman("exec", names["renderer"], "ls", f"/data/output/{job_id}").stdout.split()
        assert len([name for name in listing if name.endswith(".png")]) == rows
    finally:
        timer.stopped.set()
        timer.join(30)
        down = run("down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert down.returncode == 0, down.stdout + down.stderr
    assert project_containers(project) == []
    volumes = podman("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout
    assert volumes.split() == []
