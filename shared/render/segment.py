"""Grapheme clusters (UAX #29) and line-break opportunities (UAX #14), with deliberate tailorings.

Both come from ICU (`icu.py`). The line breaks are UAX #14's, which already holds the usual
kinsoku rules (no break before closing punctuation, small kana, prolonged sound mark, iteration
marks, `。，、！？`...; none after opening brackets and quotes), plus these tailorings, each on
purpose and each excluded by rule from the `LineBreakTest.txt` comparison in
tests/shared/render/test_unicode_conformance.py:

- **SA by dictionary**: Thai, Lao, Khmer, Myanmar (Line_Break class SA) break between words,
  as ICU's dictionaries find them; the conformance file treats SA as AL (never breaks inside).
- **Numbers and hyphens as ICU has them** (ICU 72's own rules, which Unicode 15.1 then adopted):
  a hyphen that starts a word stays with it (`-5`, `-foo`; 15.1's LB20a), and a full stop or
  comma before a digit belongs to the number (`.35`, `a.2`; 15.1's LB15c/LB15d).
- **Clusters stay whole**: no break inside an extended grapheme cluster (UAX #14 alone would
  allow one between a space and a combining mark on it).
- **Kinsoku, JIS X 4051 dashes**: no break before FULLWIDTH TILDE `～` (U+FF5E), as before
  WAVE DASH `〜` (UAX #14 already makes that one a non-starter).

The CJK strictness is UAX #14's default (CJ resolves to NS: no small kana or `ー` at a line
start), i.e. CSS `line-break: strict`; it is not loosened.
"""

from __future__ import annotations

import regex

from shared.render import icu

# Characters no line may start with beyond UAX #14's own non-starters (see the docstring).
NO_BREAK_BEFORE = frozenset("\uff5e")


# Characters whose Grapheme_Cluster_Break is Other, LV or LVT (tested against ICU's data): text
# made only of these is one cluster per character by UAX #29's rules (nothing extends, joins
# or prepends), so the common Latin/Chinese label needs no ICU call for its clusters.
SINGLE_CLUSTER_CHARS = (
    "\x20-\x7e\u00a0-\u00ac\u00ae-\u02ff\u2010-\u2027\u2030-\u205e\u3000-\u3029\u3030-\u3098"
    "\u309b-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uff01-\uff9d"
)
_SINGLES = regex.compile(f"[{SINGLE_CLUSTER_CHARS}]*")


def cluster_ends(text: str) -> list[int]:
    """End offsets of the extended grapheme clusters of `text` (the last is len(text))."""
    if _SINGLES.fullmatch(text):
        return list(range(1, len(text) + 1))
    return icu.boundaries(text, icu.CHARACTER)


def clusters_of(text: str) -> list[str]:
    """The extended grapheme clusters of `text`."""
    out: list[str] = []
    start = 0
    for end in cluster_ends(text):
        out.append(text[start:end])
        start = end
    return out


def break_opportunities(text: str, cluster_ends_: list[int] | None = None) -> set[int]:
    """Offsets where a line may break (a break before `text[i]`), excluding 0 and len(text).

    `cluster_ends_` saves recomputing the clusters when the caller has them.
    """
    ends = cluster_ends_ if cluster_ends_ is not None else cluster_ends(text)
    allowed = set(icu.boundaries(text, icu.LINE))
    allowed.discard(len(text))
    if len(ends) != len(text):  # some cluster has several characters: never break inside one
        allowed.intersection_update(ends)
    if any(ch in text for ch in NO_BREAK_BEFORE):
        allowed = {i for i in allowed if text[i] not in NO_BREAK_BEFORE}
    return allowed
