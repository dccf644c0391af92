"""Every registered source end to end: XLSX and JSON Lines uploads render like CSV, bad input is
refused at submit naming its field, and submit reads only the head of an upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.style import Style
from shared.render import RenderEngine
from shared.sources.csv import SubmitCsv
from shared.sources.jsonl import SubmitJsonl
from shared.sources.xlsx import SubmitXlsx
from tests.conftest import REPO
from tests.images import decode_rgba
from tests.services.ingest.csv.helpers import read_manifest

ENGINE = RenderEngine()
NAMES = ["苹果 Apple", "北京烤鸭", "Ölkännchen", "שלום", "🍵 tea"]


def same_as_engine(path: Path, text: str) -> bool:
    return (
        decode_rgba(path.read_bytes()).tobytes() == decode_rgba(ENGINE.render(text, Style()).data).tobytes()
    )


def write_workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "labels"
    sheet.append(["sku", "name"])
    for i, name in enumerate(NAMES):
        sheet.append([f"S-{i}", name])
    sheet.append(["S-x", None])  # no text: fails alone
    book.save(path)
    return path


async def test_an_xlsx_upload_renders_every_row(client: Client, tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "labels.xlsx")
    accepted = await client.submit_file(
        path, SubmitXlsx(column="name", sheet="labels", filename_column="sku")
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.status, final.done, final.failed) == ("completed_with_errors", len(NAMES), 1)
    assert final.output is not None
    for i, name in enumerate(NAMES):
        assert same_as_engine(Path(final.output) / f"S-{i}.png", name), name
    manifest = read_manifest(final)
    assert sorted(manifest) == list(range(2, len(NAMES) + 3))  # sheet rows; the header is row 1
    assert manifest[len(NAMES) + 2]["status"] == "failed"


async def test_a_jsonl_upload_with_a_bad_line_renders_the_rest(client: Client, tmp_path: Path) -> None:
    lines = [json.dumps({"name": name, "n": i}, ensure_ascii=False) for i, name in enumerate(NAMES)]
    lines.insert(2, "{this is not json")
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    accepted = await client.submit_file(path, SubmitJsonl(column="name", name_template="n{row[n]}"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.status, final.done, final.failed) == ("completed_with_errors", len(NAMES), 1)
    job = await client.get_job(accepted.job_id)
    [failure] = job.failures
    assert failure.row == 3 and "not valid JSON" in failure.reason  # line 3 of the file
    assert final.output is not None
    for i, name in enumerate(NAMES):
        assert same_as_engine(Path(final.output) / f"n{i}.png", name), name


async def test_jsonl_inline(client: Client) -> None:
    accepted = await client.submit(SubmitJsonl(column="t", jsonl='{"t": "行内 inline"}\n'))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.status, final.done) == ("completed", 1)
    assert final.output is not None
    assert same_as_engine(Path(final.output) / "1.png", "行内 inline")


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (SubmitXlsx(column="name", sheet="nope"), "sheet", "no sheet 'nope'"),
        (SubmitXlsx(column="price", sheet="labels"), "column", "no column 'price'"),
        (SubmitJsonl(column="missing"), "column", "no text under 'missing'"),
        (SubmitJsonl(column=0), "column", "name the key"),
    ],
)
async def test_bad_submits_name_the_field(
    client: Client, tmp_path: Path, request_: SubmitXlsx | SubmitJsonl, field: str, words: str
) -> None:
    if isinstance(request_, SubmitXlsx):
        path = write_workbook(tmp_path / "labels.xlsx")
    else:
        path = tmp_path / "labels.jsonl"
        path.write_text('{"name": "x"}\n', "utf-8")
    with pytest.raises(BadRequest) as info:
        await client.submit_file(path, request_)
    assert info.value.field == field and words in info.value.message, str(info.value)


async def test_submit_reads_only_the_head_of_an_upload(client: Client, tmp_path: Path) -> None:
    """A file that stops decoding 3 MB in is accepted (the check read its first 256 KiB, not the
    whole upload) and fails at ingest, naming how far it got."""
    path = tmp_path / "long.csv"
    # Three rows, then 3 MB of blank lines (no rows: cheap to ingest), then bytes that are not UTF-8.
    path.write_bytes(b"name\none\ntwo\nthree\n" + b"\n" * 3_000_000 + b"broken \xff\xfe here\n")
    accepted = await client.submit_file(path, SubmitCsv(column="name", encoding="utf-8"))
    final = await client.wait(accepted.job_id, timeout=120)
    assert final.kind == "failed" and final.message is not None
    assert "stops decoding as utf-8" in final.message and "after 3 rows" in final.message


@pytest.mark.slow
def test_the_cli_submits_any_registered_source(stack: LocalStack, tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "labels.xlsx")
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "--nats-url", stack.nats_url, "--json", "submit", "xlsx",
         str(path), "--column", "name", "--sheet", "labels", "--wait"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **stack.client_env()},  # the client identity's user and password
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one row has no text
    job = json.loads(done.stdout)
    assert (job["source"], job["done"], job["failed"]) == ("xlsx", len(NAMES), 1)
    helped = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "submit", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for source in ("csv", "db", "xlsx", "jsonl"):
        assert source in helped.stdout
