"""imagegen as operators install it: the wheel, in a clean virtualenv, never the repository.

The suite otherwise runs from an editable install, which finds every file in the checkout; a
file the wheel lacks (the console's static files, the SQL migrations) would pass there and crash
in the image. Here the wheel is built from a copy of what the Dockerfile copies, installed with
its dependencies into a fresh venv, and every service runs from that venv (working folder outside
the repository, no PYTHONPATH) against a nats-server of its own and a fresh database; one CSV job
must render, and the gateway must serve its console.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack.stack import LocalStack
from shared.sources.csv import SubmitCsv
from tests.conftest import REPO, create_database
from tests.images import corners_transparent, decode_rgba, ink_pixels
from tests.stacks import secured_nats

pytestmark = pytest.mark.slow

# What deploy/Dockerfile copies into its build stage to `pip install .`.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "shared", "services")
CONSOLE = ("index.html", "console.js", "console.css")


def run(*command: str | Path, cwd: Path, timeout: float = 600) -> None:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in WHEEL_SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist", ".", cwd=source)
    (wheel,) = (tmp / "dist").glob("imagegen-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a clean venv with the wheel (and its dependencies) installed."""
    tmp = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [name for name in CONSOLE if f"services/gateway/static/{name}" not in names]
    assert not missing, f"the wheel lacks the console's files {missing}"
    assert any(name.startswith("shared/runtime/ledger/") and name.endswith(".sql") for name in names)
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    python = tmp / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--no-compile", wheel, cwd=tmp)
    return python


@pytest.fixture
async def stack_from_wheel(
    installed: Path, postgres_admin_url: str, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    nats_server, credentials = secured_nats(tmp_path / "nats")
    stack = LocalStack(
        tmp_path / "stack",
        renderers=1,
        nats_url=nats_server.url,
        nats_credentials=credentials,
        database_url=await create_database(postgres_admin_url, prefix="imagegen_install"),
        python=str(installed),
        from_repo=False,
        # The wheel carries code only; the image copies the fonts and points here the same way.
        extra_env={
            "IMAGEGEN_FONTS_DIR": str(REPO / "fonts"),
            "IMAGEGEN_DATA_SOURCES": "{}",
            "IMAGEGEN_LOG_FORMAT": "json",
        },
    )
    try:
        await asyncio.to_thread(stack.start)
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
        nats_server.stop()


async def test_every_service_runs_from_the_installed_wheel(stack_from_wheel: LocalStack) -> None:
    stack = stack_from_wheel
    # Each process imported imagegen from the venv, not from this checkout.
    probe = await asyncio.to_thread(
        subprocess.run,
        [stack.python, "-c", "import services, shared; print(services.__file__, shared.__file__)"],
        cwd=stack.cwd(),
        env=stack.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(REPO) not in probe.stdout and "site-packages" in probe.stdout

    async with await stack.client() as client:
        accepted = await client.submit(SubmitCsv(csv="name\nhello\nwheel 你好\n", column="name"))
        final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.total, final.done, final.failed) == ("completed", 2, 2, 0)
    pngs = sorted((stack.output_dir / accepted.job_id).glob("*.png"))
    assert len(pngs) == 2
    for png in pngs:
        image = decode_rgba(png.read_bytes())
        assert corners_transparent(image) and ink_pixels(image) > 20, png.name

    url = await stack.console_url()
    assert url is not None
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "console.js" in page.text
        for name in CONSOLE:
            response = await http.get(f"/static/{name}")
            assert response.status_code == 200, name
            assert response.content == (REPO / "services/gateway/static" / name).read_bytes()

    for process in stack.processes:
        assert process.stop() == 0, process.log_file.read_text()[-2000:]
    for log in (stack.state_dir / "logs").glob("*.log"):
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{log.name}: not a JSON line: {line}") from None
            assert record.get("level") != "error", f"{log.name}: {line}"
