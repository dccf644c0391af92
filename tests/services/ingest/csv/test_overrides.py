"""Per-row overrides end to end: file names and style fields taken from columns.

Overrides are checked at submit (the columns exist, the fields can be set per row) and per row
(a bad value fails that row's item with its row number and the reason; the job goes on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.style import Style
from shared.render import RenderEngine
from shared.sources.csv import SubmitCsv
from tests.images import decode_rgba, ink_pixels
from tests.services.ingest.csv.helpers import read_manifest, run_file

ENGINE = RenderEngine()

CSV = (
    "name,colour,font,size,sku\n"  # row 1: the header
    "Red one,#ff0000,,32,A-1\n"  # row 2
    "Blue serif,blue,serif,,A/2\n"  # row 3: '/' is sanitised
    "Bad colour,nocolour,,,A-1\n"  # row 4: fails; its name (A-1-4) is still taken deterministically
    "Bad size,,,huge,B\n"  # row 5: fails
    "Plain,,,,A-1\n"  # row 6: collides with row 2 -> A-1-6
    "Dots,,,,..\n"  # row 7: '..' sanitises to nothing -> the row number
    "Bad font,,no-such-font,,C\n"  # row 8: fails
)


def opaque_colours(path: Path) -> set[tuple[int, int, int]]:
    image = decode_rgba(path.read_bytes())
    return {px[:3] for px in image.get_flattened_data() if px[3] == 255}


def same_as_engine(path: Path, text: str, style: Style) -> bool:
    return decode_rgba(path.read_bytes()).tobytes() == decode_rgba(ENGINE.render(text, style).data).tobytes()


async def test_filename_and_style_columns_apply_per_row(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "overrides.csv"
    source.write_text(CSV, "utf-8")
    final, job = await run_file(
        client,
        source,
        SubmitCsv(
            column="name",
            filename_column="sku",
            color_column="colour",
            font_column="font",
            style_columns={"size": "size"},
            style=Style(size=40, color="#00aa00"),
        ),
    )
    assert (final.kind, job.status, job.total, job.done, job.failed) == (
        "completed",
        "completed_with_errors",
        7,
        4,
        3,
    ), job
    reasons = {f.row: f.reason for f in job.failures}
    assert set(reasons) == {4, 5, 8}
    assert reasons[4].startswith("bad color 'nocolour'") and "colour name" in reasons[4]
    assert reasons[5].startswith("bad size 'huge'")
    assert reasons[8].startswith("bad font 'no-such-font'") and "unknown font" in reasons[8]

    assert final.output is not None
    out = Path(final.output)
    assert sorted(p.name for p in out.glob("*.png")) == ["7.png", "A-1-6.png", "A-1.png", "A_2.png"]
    # Each image is exactly the engine's render of the job style with that row's overrides.
    assert same_as_engine(out / "A-1.png", "Red one", Style(size=32, color="#ff0000"))
    assert opaque_colours(out / "A-1.png") == {(255, 0, 0)}
    assert same_as_engine(out / "A_2.png", "Blue serif", Style(size=40, color="blue", font="serif"))
    assert opaque_colours(out / "A_2.png") == {(0, 0, 255)}
    assert same_as_engine(out / "A-1-6.png", "Plain", Style(size=40, color="#00aa00"))
    assert same_as_engine(out / "7.png", "Dots", Style(size=40, color="#00aa00"))
    # The size override shows in the pixels: 32 px text is shorter than the 40 px default.
    small, default = (decode_rgba((out / name).read_bytes()) for name in ("A-1.png", "7.png"))
    assert small.height < default.height

    manifest = read_manifest(final)
    assert sorted(manifest) == list(range(2, 9))
    assert [manifest[r]["file"] for r in (2, 3, 6, 7)] == ["A-1.png", "A_2.png", "A-1-6.png", "7.png"]
    assert [manifest[r]["status"] for r in (4, 5, 8)] == ["failed"] * 3
    assert manifest[4]["text"] == "Bad colour" and "nocolour" in manifest[4]["error"]


async def test_overrides_by_index_without_a_header(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "noheader.csv"
    source.write_text("你好;crimson;hello\n世界;;world\n", "utf-8")
    final, job = await run_file(
        client,
        source,
        SubmitCsv(column=0, has_header=False, filename_column=2, color_column=1),
    )
    assert (job.status, job.done) == ("completed", 2)
    assert final.output is not None
    out = Path(final.output)
    assert opaque_colours(out / "hello.png") == {(220, 20, 60)}  # crimson
    assert opaque_colours(out / "world.png") == {(0, 0, 0)}  # the job's default colour
    assert ink_pixels(decode_rgba((out / "world.png").read_bytes())) > 100


async def test_name_template_with_columns_sanitises_and_deduplicates(client: Client) -> None:
    text = "name,sku\nA,x/../y\nB,CON\nC,x/../y\n"
    accepted = await client.submit(SubmitCsv(csv=text, column="name", name_template="{row[sku]}"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.done, final.failed) == (3, 0)
    assert final.output is not None
    names = sorted(p.name for p in Path(final.output).iterdir() if p.suffix == ".png")
    # No separators and no escape; a reserved device name gets a prefix; the repeat is suffixed
    # with its row number (row 4).
    assert names == ["_CON.png", "x_.._y-4.png", "x_.._y.png"]


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"color_column": "nope"}, "color_column", "no column 'nope'"),
        ({"font_column": 9}, "font_column", "past the last column"),
        ({"style_columns": {"size": "nope"}}, "style_columns.size", "no column 'nope'"),
        ({"style_columns": {"shadow": "colour"}}, "style_columns.shadow", "cannot be set per row"),
        ({"style_columns": {"bogus": "colour"}}, "style_columns.bogus", "cannot be set per row"),
        ({"filename_column": "nope"}, "filename_column", "no column 'nope'"),
        ({"filename_column": "sku", "name_template": "{index}-x"}, "filename_column", "not both"),
        ({"color_column": "colour", "style_columns": {"color": "colour"}}, "color_column", "twice"),
    ],
)
async def test_bad_override_columns_are_refused_at_submit(
    client: Client, extra: dict[str, object], field: str, words: str
) -> None:
    import msgspec

    request = msgspec.convert({"csv": CSV, "column": "name", **extra}, SubmitCsv)
    with pytest.raises(BadRequest) as info:
        await client.submit(request)
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)
