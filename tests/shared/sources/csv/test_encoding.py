"""Encodings by evidence, on real files: place names as CLDR spells them, saved the way
spreadsheets in Taiwan, Japan, Korea, France, mainland China and Russia save them
(tests/data/encodings). Detection must name the right encoding and read every row exactly as
the encoding itself decodes the file; weak evidence is refused, never guessed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from shared.contract.errors import BadRequest
from shared.sources.csv.encoding import detect_encoding
from shared.sources.csv.reader import iter_records, layout_of, open_text

FIXTURES = Path(__file__).resolve().parents[3] / "data" / "encodings"
# file -> the encoding it was written in (what detection must find) and the codec that reads it
CASES = {
    "big5.csv": ("big5", "big5"),
    "shift_jis.csv": ("shift_jis", "shift_jis"),
    "euc_kr.csv": ("euc_kr", "euc_kr"),
    "cp1252.csv": ("cp1252", "cp1252"),
    "gb18030.csv": ("gb18030", "gb18030"),
    "utf16.csv": ("utf-16", "utf-16"),
}


def truth(path: Path, codec: str) -> list[str]:
    """The names in the file, read by Python's own codec and csv module (no detection)."""
    return [row["name"] for row in csv.DictReader(io.StringIO(path.read_bytes().decode(codec), newline=""))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_files_are_detected_and_read_exactly(name: str) -> None:
    expected_encoding, codec = CASES[name]
    path = FIXTURES / name
    text, detected = open_text(io.BytesIO(path.read_bytes()), None)
    assert detected.encoding == expected_encoding, detected
    assert detected.confidence >= 0.9
    layout = layout_of(text, has_header=True, delimiter=None)
    names = [cells[0] for _, cells, _ in iter_records(text, layout)]
    expected = truth(path, codec)
    assert len(expected) > 250
    assert names == expected
    # The text is really in its script, not mojibake that happens to decode.
    assert any(ord(ch) > 0x2E80 or ch in "éèçôÉàëï" or "\u0400" <= ch <= "\u04ff" for ch in "".join(names))


def test_a_bom_and_utf8_need_no_detector() -> None:
    assert detect_encoding(b"\xef\xbb\xbfname\n").how == "bom"
    assert detect_encoding("名称\n北京\n".encode()).encoding == "utf-8"
    # A head cut inside a multi-byte character is still UTF-8.
    assert detect_encoding("北京".encode()[:-1]).encoding == "utf-8"


def test_weak_evidence_is_refused_naming_the_candidates() -> None:
    # Two bytes that are a character in GB18030, Big5, EUC-KR, Shift_JIS and cp1252 alike.
    with pytest.raises(BadRequest) as err:
        detect_encoding("名\n".encode("gb18030"))
    assert err.value.field == "encoding"
    assert "ambiguous" in err.value.message and "big5" in err.value.message and "gb18030" in err.value.message


def test_big5_is_not_read_as_gb18030() -> None:
    # Every Big5 file also decodes without error as GB18030 (to nonsense): detection must not
    # take the first codec that does not raise.
    raw = (FIXTURES / "big5.csv").read_bytes()
    raw.decode("gb18030")  # it really does decode
    assert detect_encoding(raw).encoding == "big5"
