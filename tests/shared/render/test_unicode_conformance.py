"""Unicode's own conformance files, every case: bidi (UAX #9), line breaking (UAX #14) and
grapheme clusters (UAX #29), against the functions the engine uses.

The files come from Debian's `unicode-data` (installed by `make system-deps`); each test reports
its pass count in the "conformance" section at the end of the run (`make test` shows it). The
line-break comparison leaves out, by rule, exactly the positions that the engine's documented
tailorings decide (shared/render/segment.py); every other position of every case is compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import regex

from shared.render import bidi, icu
from shared.render.segment import NO_BREAK_BEFORE, SINGLE_CLUSTER_CHARS, break_opportunities, cluster_ends

UNICODE = Path("/usr/share/unicode")
BIDI_CHARACTER_TEST = UNICODE / "BidiCharacterTest.txt"
LINE_BREAK_TEST = UNICODE / "auxiliary" / "LineBreakTest.txt"
GRAPHEME_BREAK_TEST = UNICODE / "auxiliary" / "GraphemeBreakTest.txt"


def _require(path: Path) -> Path:
    # Not a skip: a machine without the files must fail loudly (`make system-deps` installs them).
    assert path.is_file(), f"{path} missing: install Debian's unicode-data (make system-deps)"
    return path


def _version(path: Path) -> str:
    return path.open(encoding="utf-8").readline().strip("# \n")


def _break_cases(path: Path) -> Iterator[tuple[str, set[int]]]:
    """(text, break positions strictly inside it) per line of a UAX #29/#14 test file."""
    for raw in _require(path).open(encoding="utf-8"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        chars: list[str] = []
        breaks: set[int] = set()
        for token in line.split():
            if token == "÷":
                breaks.add(len(chars))
            elif token != "×":
                chars.append(chr(int(token, 16)))
        text = "".join(chars)
        breaks.discard(0)
        breaks.discard(len(text))
        yield text, breaks


@pytest.mark.slow
def test_bidi_character_test_every_case(report: list[str]) -> None:
    """Paragraph level, resolved levels (after L1) and visual order of all cases."""
    passed = total = 0
    failures: list[str] = []
    for raw in _require(BIDI_CHARACTER_TEST).open(encoding="utf-8"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(";")
        text = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        direction = ("ltr", "rtl", "auto")[int(fields[1])]
        want_base = int(fields[2])
        want_levels = fields[3].split()
        want_order = [int(i) for i in fields[4].split()]
        paragraph = bidi.resolve(text, direction)
        levels, order = bidi.line(paragraph, 0, len(text))
        # "x": characters removed by rule X9 (embeddings, overrides, BN) have no level or place.
        kept = [i for i, level in enumerate(want_levels) if level != "x"]
        ok = (
            paragraph.base == want_base
            and [levels[i] for i in kept] == [int(want_levels[i]) for i in kept]
            and [i for i in order if want_levels[i] != "x"] == want_order
        )
        total += 1
        if ok:
            passed += 1
        elif len(failures) < 10:
            failures.append(line)
    report.append(f"{_version(BIDI_CHARACTER_TEST)}: {passed}/{total} cases pass (FriBiDi)")
    assert total > 90_000
    assert failures == [] and passed == total


def test_grapheme_break_test_every_case(report: list[str]) -> None:
    passed = total = 0
    failures: list[str] = []
    for text, breaks in _break_cases(GRAPHEME_BREAK_TEST):
        total += 1
        got = set(cluster_ends(text)) - {len(text)}
        if got == breaks:
            passed += 1
        else:
            failures.append(" ".join(f"{ord(c):04X}" for c in text))
    report.append(f"{_version(GRAPHEME_BREAK_TEST)}: {passed}/{total} cases pass (ICU {icu.icu_version()})")
    assert total > 500
    assert failures == [] and passed == total


def test_single_cluster_shortcut_holds_for_every_character() -> None:
    """cluster_ends skips ICU for text of these characters: each must be Other, LV or LVT."""
    ranges = regex.findall(r"(.)(?:-(.))?", SINGLE_CLUSTER_CHARS)
    checked = 0
    for first, last in ranges:
        for cp in range(ord(first), ord(last or first) + 1):
            value = icu.property_value(chr(cp), icu.GRAPHEME_CLUSTER_BREAK)
            assert value in ("XX", "LV", "LVT"), f"U+{cp:04X} is {value}"
            checked += 1
    assert checked > 39_000
    sample = "".join(chr(cp) for cp in range(0x20, 0x7F)) + "上海市 ¥12·3「東京」한글"
    assert cluster_ends(sample) == icu.boundaries(sample, icu.CHARACTER)


# --- line breaking: the tailorings, as rules over Line_Break classes ---------------------------

_LETTERS = {"AL", "HL", "AI", "SG", "XX", "SA"}  # AI, SG, XX and SA resolve to AL by default (LB1)
_WORD_START = {"SP", "BK", "CR", "LF", "NL", "ZW", "CB", "GL"}
_NO_ATTACH = {"SP", "BK", "CR", "LF", "NL", "ZW"}  # LB9's exceptions


def _classes(text: str) -> list[str]:
    return [icu.property_value(ch, icu.LINE_BREAK) or "XX" for ch in text]


def _base_before(classes: list[str], position: int) -> int:
    """Index of the character before `position`, skipping combining marks (LB9)."""
    i = position - 1
    while i > 0 and classes[i] in ("CM", "ZWJ"):
        i -= 1
    return i


def _dictionary_positions(text: str, classes: list[str]) -> set[int]:
    """SA by dictionary: between two SA characters the dictionary decides."""
    return {
        p for p in range(1, len(text)) if classes[p] == "SA" and classes[_base_before(classes, p)] == "SA"
    }


def _hyphen_positions(text: str, classes: list[str]) -> set[int]:
    """A word-initial hyphen stays with the letter after it (ICU; Unicode 15.1 LB20a)."""
    out: set[int] = set()
    for p in range(1, len(text)):
        h = _base_before(classes, p)
        hyphen = classes[h] == "HY" or text[h] == "\u2010"
        if hyphen and classes[p] in _LETTERS and (h == 0 or classes[h - 1] in _WORD_START):
            out.add(p)
    return out


def _number_positions(text: str, classes: list[str]) -> set[int]:
    """A full stop or comma before a digit belongs to the number (ICU; 15.1 LB15c/d)."""
    out: set[int] = set()
    for i, klass in enumerate(classes):
        if klass != "IS":
            continue
        j = i + 1
        while j < len(text) and classes[j] in ("CM", "ZWJ"):
            j += 1
        if j < len(text) and classes[j] == "NU":
            out.update(range(max(i, 1), j + 1))
    return out


def _inside_cluster_positions(text: str, classes: list[str]) -> set[int]:
    """Clusters stay whole: positions inside an extended grapheme cluster that UAX #14's LB9
    does not glue itself (a mark on a space, an emoji modifier, a prepended character...)."""
    inside = set(range(1, len(text))) - set(cluster_ends(text))
    return {
        p
        for p in inside
        if classes[p] not in ("CM", "ZWJ") or classes[_base_before(classes, p)] in _NO_ATTACH
    }


def _kinsoku_positions(text: str) -> set[int]:
    return {p for p in range(1, len(text)) if text[p] in NO_BREAK_BEFORE}


def test_line_break_test_every_case_with_tailorings_by_rule(report: list[str]) -> None:
    rules = {
        "SA by dictionary": _dictionary_positions,
        "word-initial hyphen": _hyphen_positions,
        "full stop or comma in a number": _number_positions,
    }
    excluded = dict.fromkeys([*rules, "inside a grapheme cluster", "kinsoku (U+FF5E)"], 0)
    passed = total = positions = 0
    failures: list[str] = []
    for text, want in _break_cases(LINE_BREAK_TEST):
        total += 1
        classes = _classes(text)
        skip: set[int] = set()
        for name, rule in rules.items():
            covered = rule(text, classes)
            excluded[name] += len(covered - skip)
            skip |= covered
        for name, covered in (
            ("inside a grapheme cluster", _inside_cluster_positions(text, classes)),
            ("kinsoku (U+FF5E)", _kinsoku_positions(text)),
        ):
            excluded[name] += len(covered - skip)
            skip |= covered
        got = break_opportunities(text)
        compared = set(range(1, len(text))) - skip
        positions += len(compared)
        if {p for p in got if p in compared} == {p for p in want if p in compared}:
            passed += 1
        elif len(failures) < 10:
            cps = " ".join(f"{ord(c):04X}" for c in text)
            failures.append(f"{cps}: want {sorted(want)} got {sorted(got)}")
    summary = ", ".join(f"{name} {count}" for name, count in excluded.items())
    report.append(
        f"{_version(LINE_BREAK_TEST)}: {passed}/{total} cases pass, {positions} positions compared; "
        f"left to tailorings: {summary} (ICU {icu.icu_version()}, Unicode {icu.unicode_version()})"
    )
    assert total > 7000
    assert failures == [] and passed == total


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ภาษาไทยเป็นภาษาที่ใช้ในประเทศไทย", ["ภาษา", "ไทย", "เป็น", "ภาษา", "ที่", "ใช้", "ใน", "ประเทศไทย"]),
        ("ພາສາລາວເປັນພາສາ", ["ພາສາ", "ລາວ", "ເປັນ", "ພາສາ"]),
        ("ភាសាខ្មែរជាភាសាផ្លូវការ", ["ភាសាខ្មែរ", "ជា", "ភាសាផ្លូវការ"]),
        ("မြန်မာဘာသာစကားသည်", ["မြန်မာဘာသာ", "စကား", "သည်"]),
    ],
)
def test_dictionary_breaks_between_words(text: str, words: list[str]) -> None:
    cuts = sorted(break_opportunities(text))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert pieces == words
