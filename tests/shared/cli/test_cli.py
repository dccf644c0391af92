"""The `imagegen` command against the running service set, as a user types it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.stack import LocalStack
from tests.cli import imagegen
from tests.conftest import REPO
from tests.images import corners_transparent, decode_rgba, ink_pixels


def submit_products(stack: LocalStack, *options: str) -> subprocess.CompletedProcess[str]:
    """`imagegen submit csv examples/products.csv --column name OPTIONS...` against the stack."""
    return imagegen(
        *[o for o in options if o == "--json"],
        "submit",
        "csv",
        "examples/products.csv",
        "--column",
        "name",
        *[o for o in options if o != "--json"],
        stack=stack,
    )


@pytest.mark.slow
def test_submit_wait_prints_the_job_and_exits_zero(stack: LocalStack) -> None:
    done = submit_products(stack, "--json", "--size", "32", "--color", "navy", "--wait")
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

    shown = imagegen("--json", "jobs", "show", job["job_id"], stack=stack)
    assert shown.returncode == 0 and json.loads(shown.stdout)["job_id"] == job["job_id"]
    listed = imagegen("jobs", "list", stack=stack)
    line = next(line for line in listed.stdout.splitlines() if job["job_id"] in line)
    assert line.rstrip().endswith("products.csv"), listed.stdout  # the file the job read


def test_failed_items_make_a_non_zero_exit(stack: LocalStack, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text('name\nfine\n""\n', "utf-8")
    done = imagegen("submit", "csv", str(csv_file), "--column", "name", "--wait", stack=stack)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "completed_with_errors" in done.stderr and "empty text" in done.stderr


def test_bad_style_is_reported_with_its_field(stack: LocalStack) -> None:
    done = submit_products(stack, "--color", "not-a-colour")
    assert done.returncode == 2
    assert "style.color" in done.stderr


@pytest.mark.slow
def test_render_locally_needs_no_server(tmp_path: Path) -> None:
    out = tmp_path / "hello.png"
    done = imagegen("--json", "render", "你好, world", "-o", str(out), nats_url="nats://127.0.0.1:1")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    image = decode_rgba(out.read_bytes())
    assert image.size == (info["width"], info["height"])
    assert corners_transparent(image) and ink_pixels(image) > 100
    assert info["missing_glyphs"] == []


def test_submit_with_per_row_columns_shows_progress_and_the_manifest(
    stack: LocalStack, tmp_path: Path
) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("sku,name,colour,pt\nA1,红色,#ff0000,20\nB2,Blue,blue,\nC3,Bad,nocolour,\n", "utf-8")
    done = imagegen(
        "submit",
        "csv",
        str(csv_file),
        "--column",
        "name",
        "--filename-column",
        "sku",
        "--color-column",
        "colour",
        "--style-column",
        "size=pt",
        "--size",
        "30",
        "--wait",
        stack=stack,
    )
    # One row has a bad colour: it fails alone, and the exit code says so.
    assert done.returncode == 1, done.stdout + done.stderr
    err = done.stderr
    assert "completed_with_errors" in err and "3 total, 2 rendered, 1 failed" in err
    rates = re.findall(r"([\d,]+) items/s", err)
    assert len(rates) >= 2, err  # the bar's rate column, then the summary's
    assert rates[-2] == rates[-1], err  # the bar ends on the summary's figure
    assert "row 4 failed: bad color 'nocolour'" in err  # the file's own row: the header is row 1
    manifest_line = next(line for line in err.splitlines() if "manifest:" in line)
    manifest = Path(manifest_line.split("manifest:", 1)[1].strip())
    lines = manifest.read_text("utf-8-sig").splitlines()
    assert lines[0] == "row,text,file,width,height,status,error" and len(lines) == 4
    out = manifest.parent
    red = decode_rgba((out / "A1.png").read_bytes())
    blue = decode_rgba((out / "B2.png").read_bytes())
    assert {px[:3] for px in red.get_flattened_data() if px[3] == 255} == {(255, 0, 0)}
    assert {px[:3] for px in blue.get_flattened_data() if px[3] == 255} == {(0, 0, 255)}
    assert red.height < blue.height  # 20 px from the row, 30 px from --size


@pytest.mark.slow
def test_a_failed_job_makes_a_non_zero_exit(stack: LocalStack, tmp_path: Path) -> None:
    # Valid UTF-8 for the first 64 KiB (what detection reads), then a byte that is not: the job
    # fails mid-stream with the reason, after the rows before it were queued.
    csv_file = tmp_path / "breaks.csv"
    good = "".join(f"row {i}\n" for i in range(12_000))
    csv_file.write_bytes(b"name\n" + good.encode() + b"bad \xff\xfe byte\n")
    done = imagegen("submit", "csv", str(csv_file), "--column", "name", "--wait", "--json", stack=stack)
    assert done.returncode == 1, done.stdout + done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "failed" and "stops decoding as utf-8" in job["error"]


@pytest.mark.slow
def test_json_is_accepted_after_the_command(stack: LocalStack) -> None:
    listed = imagegen("jobs", "list", "--limit", "3", "--json", stack=stack)
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert isinstance(jobs, list) and len(jobs) <= 3
    fonts = imagegen("fonts", "--json", stack=stack)
    assert fonts.returncode == 0, fonts.stderr
    assert "sans" in {font["name"] for font in json.loads(fonts.stdout)}


@pytest.mark.slow
def test_unreachable_nats_is_a_quick_clear_error() -> None:
    done = imagegen("jobs", "list", nats_url="nats://127.0.0.1:1", timeout=30)
    assert done.returncode == 2
    assert "cannot reach NATS at nats://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_python_example_runs_against_the_stack(stack: LocalStack) -> None:
    env = dict(os.environ, IMAGEGEN_NATS_URL=stack.nats_url, PYTHONPATH=str(REPO), **stack.client_env())
    done = subprocess.run(
        [sys.executable, "examples/submit_and_wait.py", "examples/products.csv", "--column", "name"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("job ") and lines[0].endswith(" accepted")
    assert "completed" in done.stdout and "24 rendered, 0 failed" in done.stdout
    manifest = Path(next(line for line in lines if line.startswith("manifest:")).split(":", 1)[1].strip())
    rows = manifest.read_text("utf-8-sig").splitlines()[1:]
    assert len(rows) == 24 and all(",ok," in row for row in rows)
    images = sorted(manifest.parent.glob("*.png"))
    assert len(images) == 24 and all(ink_pixels(decode_rgba(p.read_bytes())) > 50 for p in images)


@pytest.mark.slow
def test_jobs_fetch_copies_a_jobs_images(stack: LocalStack, tmp_path: Path) -> None:
    done = submit_products(stack, "--json", "--wait")
    job = json.loads(done.stdout)
    fetched = imagegen("--json", "jobs", "fetch", job["job_id"], "-o", str(tmp_path / "out"), stack=stack)
    assert fetched.returncode == 0, fetched.stderr
    assert "Task exception" not in fetched.stderr and "Traceback" not in fetched.stderr, fetched.stderr
    assert json.loads(fetched.stdout)["images"] == job["done"] == 24
    manifest = (tmp_path / "out" / "manifest.csv").read_text("utf-8-sig").splitlines()
    assert len(manifest) == 25 and manifest[1].startswith("2,")  # the file's row 2 is the first item
    for path in sorted((tmp_path / "out").glob("*.png")):
        assert path.read_bytes() == (Path(job["output"]) / path.name).read_bytes()


@pytest.mark.slow
def test_submit_says_how_the_file_was_read(stack: LocalStack) -> None:
    done = submit_products(stack)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("accepted job ")
    assert "encoding utf-8" in done.stdout and "encoding_evidence utf-8" in done.stdout
    assert "delimiter ," in done.stdout
    as_json = json.loads(submit_products(stack, "--json").stdout)
    assert as_json["detected"]["encoding"] == "utf-8"
