"""Regenerate the small CSV fixtures of this folder: `python tests/data/csv/make_fixtures.py`.

Each file exercises one thing real files do; `tests/services/ingest/csv/test_fixtures.py` sends
every one through the services and states what must happen to it. The expected texts live
here too (EXPECTED), so the tests compare against what was written, not against a re-parse.
"""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).resolve().parent

# file name -> the texts of the `name` column, in row order (None: that row must fail)
EXPECTED: dict[str, list[str | None]] = {
    "emoji.csv": ["Hot deal 🔥", "猫 🐱 cat", "👍🏽 ok"],
    "rtl.csv": ["مرحبا بالعالم", "שלום עולם", "price السعر 42"],
    "combining.csv": ["Cafe\u0301", "Tie\u0302\u0301ng Vie\u0323\u0302t", "हिन्दी"],
    "quotes.csv": ['He said "hi"', "a, b, and c", "'single' and \"double\""],
    "newlines.csv": ["first line\nsecond line", "标题\n副标题", "one"],
    "long_cells.csv": ["short", None, "also short"],
    # Enough real Chinese for the encoding to be evident (a handful of characters reads as
    # EUC-KR just as cleanly): dishes, county names from areas.csv, a 2-byte euro sign.
    "gb18030.csv": [
        "北京烤鸭",
        "小笼包",
        "欧元 € 符号",
        "东城区",
        "西城区",
        "朝阳区",
        "丰台区",
        "石景山区",
        "海淀区",
        "门头沟区",
        "房山区",
        "通州区",
        "顺义区",
        "昌平区",
    ],
    "utf8_bom.csv": ["带BOM的标题", "second"],
    "utf16_bom.csv": ["UTF-16 文本", "second"],
    "ragged.csv": ["good", None, "also good", None],
}
LONG_CELL = "x" * 30_000  # over the engine's 5,000-character limit: that item fails


def _rows(texts: list[str], extra: str = "1") -> list[list[str]]:
    return [[text, extra] for text in texts]


def _csv(rows: list[list[str]], header: tuple[str, ...] = ("name", "price")) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def build() -> None:
    plain = ("emoji.csv", "rtl.csv", "combining.csv", "quotes.csv", "newlines.csv")
    for name in plain:
        texts = [t for t in EXPECTED[name] if t is not None]
        (HERE / name).write_text(_csv(_rows(texts)), "utf-8", newline="")
    (HERE / "long_cells.csv").write_text(
        _csv([["short", "1"], [LONG_CELL, "2"], ["also short", "3"]]), "utf-8", newline=""
    )
    (HERE / "gb18030.csv").write_bytes(
        _csv(_rows([t for t in EXPECTED["gb18030.csv"] if t])).encode("gb18030")
    )
    (HERE / "utf8_bom.csv").write_bytes(
        codecs.BOM_UTF8 + _csv(_rows([t for t in EXPECTED["utf8_bom.csv"] if t])).encode("utf-8")
    )
    # Python's "utf-16" codec writes the BOM itself (little-endian here).
    (HERE / "utf16_bom.csv").write_bytes(
        _csv(_rows([t for t in EXPECTED["utf16_bom.csv"] if t])).encode("utf-16")
    )
    (HERE / "ragged.csv").write_text(
        "name,price\r\ngood,1\r\ntoo,many,fields\r\nalso good,3\r\nshort\r\n", "utf-8", newline=""
    )
    (HERE / "empty.csv").write_bytes(b"")
    (HERE / "header_only.csv").write_text("name,price\r\n", "utf-8", newline="")
    # The start of a PNG file: what a user uploads by mistake.
    (HERE / "binary.csv").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
    )


if __name__ == "__main__":
    build()
