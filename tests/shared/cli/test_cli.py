"""The `imagegen` command against the running service set, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.cli.stack import LocalStack
from tests.conftest import REPO
from tests.images import corners_transparent, decode_rgba, ink_pixels


def imagegen(
    *args: str, nats_url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if nats_url:
        env["IMAGEGEN_NATS_URL"] = nats_url
    return subprocess.run(
        [sys.executable, "-m", "shared.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_submit_wait_prints_the_job_and_exits_zero(stack: LocalStack) -> None:
    done = imagegen(
        "--json",
        "submit",
        "csv",
        "examples/products.csv",
        "--column",
        "name",
        "--size",
        "32",
        "--color",
        "navy",
        "--wait",
        nats_url=stack.nats_url,
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "completed" and job["done"] == job["total"] == 24
    images = sorted(Path(job["output"]).glob("*.png"))
    assert len(images) == 24
    first = decode_rgba(images[0].read_bytes())
    assert corners_transparent(first) and ink_pixels(first) > 50
    # navy is (0, 0, 128): the opaque pixels carry it
    opaque = [px for px in first.get_flattened_data() if px[3] == 255]
    assert opaque and all(px[:3] == (0, 0, 128) for px in opaque)

    shown = imagegen("--json", "jobs", "show", job["job_id"], nats_url=stack.nats_url)
    assert shown.returncode == 0 and json.loads(shown.stdout)["job_id"] == job["job_id"]
    listed = imagegen("jobs", "list", nats_url=stack.nats_url)
    assert job["job_id"] in listed.stdout


def test_failed_items_make_a_non_zero_exit(stack: LocalStack, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text('name\nfine\n""\n', "utf-8")
    done = imagegen("submit", "csv", str(csv_file), "--column", "name", "--wait", nats_url=stack.nats_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "completed_with_errors" in done.stderr and "empty text" in done.stderr


def test_bad_style_is_reported_with_its_field(stack: LocalStack) -> None:
    done = imagegen(
        "submit",
        "csv",
        "examples/products.csv",
        "--column",
        "name",
        "--color",
        "not-a-colour",
        nats_url=stack.nats_url,
    )
    assert done.returncode == 2
    assert "style.color" in done.stderr


def test_render_locally_needs_no_server(tmp_path: Path) -> None:
    out = tmp_path / "hello.png"
    done = imagegen("--json", "render", "你好, world", "-o", str(out), nats_url="nats://127.0.0.1:1")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    image = decode_rgba(out.read_bytes())
    assert image.size == (info["width"], info["height"])
    assert corners_transparent(image) and ink_pixels(image) > 100
    assert info["missing_glyphs"] == []
