"""Every shipped CSV fixture (tests/data/csv) end to end through the services.

Each file is uploaded and submitted as a user would (object store path). It either renders,
pixel for pixel what the render engine draws for the text we wrote into it, or fails exactly
the rows it should with their row numbers, or is refused at submit naming the field.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.style import Style
from shared.render import RenderEngine
from shared.sources.csv import SubmitCsv
from tests.conftest import DATA
from tests.data.csv.make_fixtures import EXPECTED, LONG_CELL
from tests.images import corners_transparent, decode_rgba, ink_pixels
from tests.services.ingest.csv.helpers import read_manifest, run_file

FIXTURES = DATA / "csv"
ENGINE = RenderEngine()


def assert_renders(path: Path, text: str) -> None:
    """The image at `path` is exactly what the engine draws for `text`, and has ink."""
    image = decode_rgba(path.read_bytes())
    expected = decode_rgba(ENGINE.render(text, Style()).data)
    assert image.size == expected.size, (path.name, text)
    assert image.tobytes() == expected.tobytes(), f"{path.name} is not the render of {text!r}"
    assert corners_transparent(image) and ink_pixels(image) > 20, path.name


@pytest.mark.parametrize(
    "name",
    [
        "emoji.csv",
        "rtl.csv",
        "combining.csv",
        "quotes.csv",
        "newlines.csv",
        "gb18030.csv",
        "utf8_bom.csv",
        "utf16_bom.csv",
    ],
)
async def test_fixture_renders_every_row(client: Client, name: str) -> None:
    texts = EXPECTED[name]
    final, job = await run_file(client, FIXTURES / name, SubmitCsv(column="name"))
    assert (final.kind, job.status, job.total, job.done, job.failed) == (
        "completed",
        "completed",
        len(texts),
        len(texts),
        0,
    ), job
    assert final.output is not None
    # Files and manifest rows carry the file's own row numbers (the header is row 1).
    files = sorted(Path(final.output).glob("*.png"), key=lambda p: int(p.stem))
    assert [int(p.stem) for p in files] == list(range(2, len(texts) + 2))
    for path, text in zip(files, texts, strict=True):
        assert text is not None
        assert_renders(path, text)
    manifest = read_manifest(final)
    assert sorted(manifest) == list(range(2, len(texts) + 2))
    for row, path in enumerate(files, 2):
        line = manifest[row]
        size = decode_rgba(path.read_bytes()).size
        assert (line["status"], line["file"], line["error"]) == ("ok", path.name, "")
        assert (int(line["width"]), int(line["height"])) == size


async def test_emoji_are_drawn_in_colour(client: Client) -> None:
    final, _ = await run_file(client, FIXTURES / "emoji.csv", SubmitCsv(column="name"))
    assert final.output is not None
    image = decode_rgba((Path(final.output) / "2.png").read_bytes())  # "Hot deal 🔥"
    coloured = [px for px in image.get_flattened_data() if px[3] > 200 and max(px[:3]) - min(px[:3]) > 80]
    assert len(coloured) > 100, "the fire emoji is not in colour"


async def test_embedded_newlines_make_two_lines(client: Client) -> None:
    final, _ = await run_file(client, FIXTURES / "newlines.csv", SubmitCsv(column="name"))
    assert final.output is not None
    two_lines = decode_rgba((Path(final.output) / "2.png").read_bytes())
    one_line = decode_rgba((Path(final.output) / "4.png").read_bytes())
    assert two_lines.height > one_line.height * 1.7


async def test_very_long_cell_fails_its_item_with_the_limit(client: Client) -> None:
    final, job = await run_file(client, FIXTURES / "long_cells.csv", SubmitCsv(column="name"))
    assert (final.kind, job.status, job.done, job.failed) == ("completed", "completed_with_errors", 2, 1)
    [failure] = job.failures
    assert (failure.index, failure.row) == (1, 3)
    assert f"{len(LONG_CELL)} characters" in failure.reason and "limit is 5000" in failure.reason
    manifest = read_manifest(final)
    assert [manifest[r]["status"] for r in (2, 3, 4)] == ["ok", "failed", "ok"]
    assert manifest[3]["text"] == LONG_CELL and "limit is 5000" in manifest[3]["error"]
    assert manifest[3]["file"] == manifest[3]["width"] == ""


async def test_ragged_rows_fail_alone_with_row_numbers(client: Client) -> None:
    final, job = await run_file(client, FIXTURES / "ragged.csv", SubmitCsv(column="name"))
    assert (job.status, job.total, job.done, job.failed) == ("completed_with_errors", 4, 2, 2)
    reasons = {(f.index, f.row): f.reason for f in job.failures}
    assert set(reasons) == {(1, 3), (3, 5)}
    assert "3 fields, expected 2" in reasons[1, 3]
    assert "1 fields, expected 2" in reasons[3, 5]
    assert final.output is not None
    assert_renders(Path(final.output) / "2.png", "good")
    assert_renders(Path(final.output) / "4.png", "also good")
    assert not (Path(final.output) / "3.png").exists()
    manifest = read_manifest(final)
    assert {r: m["status"] for r, m in manifest.items()} == {2: "ok", 3: "failed", 4: "ok", 5: "failed"}
    assert "3 fields, expected 2" in manifest[3]["error"] and manifest[3]["text"] == "too"


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [
        ("empty.csv", "csv", "the file is empty"),
        ("header_only.csv", "csv", "no data rows"),
        ("binary.csv", "csv", "binary"),
    ],
)
async def test_unusable_files_are_refused_at_submit(
    client: Client, name: str, field: str, words: str
) -> None:
    before = len(await client.list_jobs(limit=1000))
    with pytest.raises(BadRequest) as info:
        await client.submit_file(FIXTURES / name, SubmitCsv(column="name"))
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)
    assert len(await client.list_jobs(limit=1000)) == before


async def test_a_wrong_encoding_override_is_refused_at_submit(client: Client) -> None:
    with pytest.raises(BadRequest) as info:
        await client.submit_file(FIXTURES / "gb18030.csv", SubmitCsv(column="name", encoding="utf-8"))
    assert info.value.field == "encoding", str(info.value)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("big5.csv", "big5"),
        ("shift_jis.csv", "shift_jis"),
        ("euc_kr.csv", "euc_kr"),
        ("cp1252.csv", "cp1252"),
    ],
)
async def test_real_encodings_are_detected_reported_and_rendered(
    client: Client, name: str, encoding: str
) -> None:
    path = DATA / "encodings" / name
    truth = [
        row["name"] for row in csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline=""))
    ]
    accepted = await client.submit_file(path, SubmitCsv(column="name"))
    # The submit reply says what was detected and how sure, before anything is rendered.
    assert accepted.detected["encoding"] == encoding
    assert float(accepted.detected["encoding_confidence"]) >= 0.9
    assert accepted.detected["encoding_evidence"] == "detected"
    final = await client.wait(accepted.job_id, timeout=120)
    assert (final.kind, final.done, final.failed) == ("completed", len(truth), 0)
    assert final.output is not None
    for row in (2, 3, len(truth) + 1):  # the first rows and the last, by the file's own numbers
        assert_renders(Path(final.output) / f"{row}.png", truth[row - 2])


async def test_an_ambiguous_encoding_is_refused_at_submit(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_bytes("name\r\n苹果\r\n香蕉\r\n".encode("gbk"))
    with pytest.raises(BadRequest) as info:
        await client.submit_file(path, SubmitCsv(column="name"))
    assert info.value.field == "encoding" and "give its encoding" in info.value.message
    accepted = await client.submit_file(path, SubmitCsv(column="name", encoding="gbk"))
    assert accepted.detected["encoding_evidence"] == "given"
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.done) == ("completed", 2)
