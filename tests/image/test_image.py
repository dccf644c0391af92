"""The image, run for real: every service in its own container (read-only root, no capabilities,
uid 10001) against a throwaway nats-server with the permissions layout and a throwaway Postgres
on this host (`--network host`). A CSV job and a database job render into a bind-mounted
volume; every container's health check passes, and one must fail (a renderer whose volume it
cannot write); a renderer stopped with SIGTERM in the middle of a job loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import NatsServer, free_port
from devstack.natsauth import NatsCredentials
from devstack.sample import SampleSource
from shared.client import Client
from shared.runtime.bus.discovery import wait_for_services
from shared.runtime.bus.permissions import ADMIN, CLIENT
from shared.sources.csv import SubmitCsv
from shared.sources.db import SubmitDb
from tests.conftest import create_database
from tests.image.podman import LABEL, health_check, inspect, logs, podman, remove_labelled
from tests.images import corners_transparent, decode_rgba, ink_pixels
from tests.stacks import secured_nats

UID = 10001  # the image's user (deploy/Dockerfile)
# Hardening the Kubernetes manifests apply too: nothing but the volume and /tmp is writable.
HARDENED = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


@dataclass
class Deployment:
    """The servers, the output folder and the containers of one image-test run."""

    image: str
    run: str
    nats: NatsServer
    credentials: NatsCredentials
    database_url: str
    data_sources: str
    output: Path
    gateway_port: int = field(default_factory=free_port)
    containers: dict[str, str] = field(default_factory=dict)  # label -> container name

    def env(self, identity: str, instance: str) -> dict[str, str]:
        return {
            "IMAGEGEN_NATS_URL": self.nats.url,
            **self.credentials.env(identity),
            "IMAGEGEN_DECLARE_TOPOLOGY": "false",
            "IMAGEGEN_DATABASE_URL": self.database_url,
            "IMAGEGEN_DATA_SOURCES": self.data_sources,
            "IMAGEGEN_HEALTHCHECK_MONITOR_URL": f"http://127.0.0.1:{self.nats.monitor_port}",
            # The container's hostname is the host's here (host network): name each one.
            "IMAGEGEN_INSTANCE": instance,
            "IMAGEGEN_BATCH_SIZE": "16",
            "IMAGEGEN_GATEWAY_PORT": str(self.gateway_port),
        }

    def start(self, label: str, service: str, output: Path | None = None, *args: str) -> str:
        """`imagegen serve SERVICE` in a new container; returns its name."""
        name = f"imagegen-it-{self.run}-{label}"
        env = [f"--env={key}={value}" for key, value in self.env(service, f"{service}@{name}").items()]
        podman(
            "run", "--detach", "--name", name, "--label", f"{LABEL}={self.run}", "--network", "host",
            *HARDENED, "--volume", f"{output or self.output}:/data/output", *env, *args,
            self.image, "imagegen", "serve", service,
        )  # fmt: skip
        self.containers[label] = name
        return name

    async def client(self) -> Client:
        return await Client.connect(self.nats.url, **self.credentials.options(CLIENT))


def owned_folder(path: Path, uid: int) -> Path:
    path.mkdir()
    path.chmod(0o755)
    if uid:
        os.chown(path, uid, uid)
    return path


@pytest.fixture(scope="module")
async def deployment(
    image: str,
    postgres_admin_url: str,
    sample_source: SampleSource,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    tmp = tmp_path_factory.mktemp("image")
    nats, credentials = secured_nats(tmp / "nats", tmp / "nats-server.log")
    deployment = Deployment(
        image=image,
        run=secrets.token_hex(3),
        nats=nats,
        credentials=credentials,
        database_url=await create_database(postgres_admin_url, prefix="imagegen_image"),
        data_sources=json.dumps({"local": sample_source.reader_url}),
        output=owned_folder(tmp / "output", UID),
    )
    try:
        admin = [f"--env={k}={v}" for k, v in deployment.env(ADMIN, "nats-setup").items()]
        await asyncio.to_thread(
            podman, "run", "--rm", "--network", "host", *HARDENED, *admin, image, "imagegen", "nats", "setup"
        )
        for service in ("ingest", "renderer", "result-notifier", "gateway"):
            await asyncio.to_thread(deployment.start, service, service)
        async with await deployment.client() as client:
            expected = {"ingest": 1, "renderer": 1, "result-notifier": 1, "gateway": 1}
            try:
                await wait_for_services(client.nc, expected, timeout=90)
            except TimeoutError as exc:
                raise AssertionError(
                    "\n".join(f"--- {n}\n{logs(n)}" for n in deployment.containers.values())
                ) from exc
        yield deployment
    finally:
        await asyncio.to_thread(remove_labelled, deployment.run)
        nats.stop()


def image_files(deployment: Deployment, job_id: str) -> list[Path]:
    return sorted((deployment.output / job_id).glob("*.png"))


def check_images(files: list[Path], count: int) -> None:
    assert len(files) == count
    for path in files:
        assert path.stat().st_uid == UID, f"{path.name} is not owned by the image's user"
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0
    for path in files[:3]:
        image = decode_rgba(path.read_bytes())
        assert corners_transparent(image) and ink_pixels(image) > 20, path.name


def test_the_image_runs_as_its_user_without_pip(image: str) -> None:
    script = (
        "import importlib.util as u, os\n"
        "print(os.getuid(), [m for m in ('pip', 'setuptools') if u.find_spec(m)])"
    )
    done = podman("run", "--rm", *HARDENED, image, "python", "-c", script)
    assert done.stdout.split(None, 1) == [str(UID), "[]\n"]


async def test_every_service_is_healthy(deployment: Deployment) -> None:
    for name in deployment.containers.values():
        result = await asyncio.to_thread(health_check, name)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}\n{logs(name)}"


async def test_a_csv_job_and_a_db_job_render_into_the_volume(deployment: Deployment) -> None:
    rows = ["name", "hello", "wörld", "你好", "مرحبا", *(f"item {i}" for i in range(36))]
    async with await deployment.client() as client:
        csv_job = await client.submit(SubmitCsv(csv="\n".join(rows) + "\n", column="name"))
        db_job = await client.submit(
            SubmitDb(data_source="local", query="SELECT name FROM products", column="name")
        )
        csv_final = await client.wait(csv_job.job_id, timeout=120)
        db_final = await client.wait(db_job.job_id, timeout=120)
    assert (csv_final.kind, csv_final.done, csv_final.failed) == ("completed", len(rows) - 1, 0)
    assert db_final.kind == "completed" and db_final.failed == 0 and (db_final.total or 0) > 0
    check_images(image_files(deployment, csv_job.job_id), len(rows) - 1)
    check_images(image_files(deployment, db_job.job_id), db_final.total or 0)


async def test_the_gateway_serves_its_console_and_logs_json(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{deployment.gateway_port}", timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "console.js" in page.text
        assert (await http.get("/static/console.js")).status_code == 200
    lines = (await asyncio.to_thread(logs, deployment.containers["gateway"])).splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), lines[:5]


async def test_a_renderer_that_cannot_write_its_volume_is_unhealthy(
    deployment: Deployment, tmp_path: Path
) -> None:
    root_owned = owned_folder(tmp_path / "root-owned", 0)
    name = await asyncio.to_thread(deployment.start, "renderer-broken", "renderer", root_owned)
    try:
        result = await asyncio.to_thread(health_check, name)
        assert result.returncode != 0, result.stdout
        probe = await asyncio.to_thread(
            podman, "exec", name, "python", "/app/deploy/healthcheck.py", check=False
        )
        assert probe.returncode == 1
        assert f"/data/output is not writable by uid {UID}" in probe.stderr, probe.stderr
    finally:
        await asyncio.to_thread(podman, "rm", "-f", "-t", "0", name, check=False)
        deployment.containers.pop("renderer-broken")


async def test_sigterm_during_a_job_loses_nothing(deployment: Deployment) -> None:
    count = 4000
    text = "name\n" + "".join(f"row {i}\n" for i in range(count))
    renderer = deployment.containers.pop("renderer")
    async with await deployment.client() as client:
        accepted = await client.submit(SubmitCsv(csv=text, column="name"))
        async for event in client.watch(accepted.job_id):
            if event.done > 0 or event.kind in ("completed", "failed"):
                break
        await asyncio.to_thread(podman, "stop", "--time", "60", renderer)
        state: dict[str, Any] = (await asyncio.to_thread(inspect, renderer))["State"]
        assert state["ExitCode"] == 0, logs(renderer)
        middle = await client.get_job(accepted.job_id)
        assert middle.done < count, "the job ended before the stop: nothing was tested"
        await asyncio.to_thread(deployment.start, "renderer-2", "renderer")
        final = await client.wait(accepted.job_id, timeout=180)
    assert (final.kind, final.total, final.done, final.failed) == ("completed", count, count, 0)
    check_images(image_files(deployment, accepted.job_id), count)
