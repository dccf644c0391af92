"""Split a paragraph into pieces: grapheme clusters grouped by font, bidi level and word.

Each grapheme cluster gets the first font of the chain that covers it (cmap coverage), so a
Chinese character in a Latin style falls back to the CJK face and never draws as `.notdef`.
Clusters are then grouped into *pieces*, the unit that is shaped, measured, cached and
line-broken: the text between two line-break opportunities (a word with its trailing spaces,
a Thai word as the dictionary finds it) for alphabetic and complex scripts, a single cluster
for CJK (which has no cross-character shaping, so per-character caching is exact). A piece
never spans a change of font or bidi level. Clusters and break opportunities come from
`segment.py` (UAX #29, UAX #14 with its tailorings), levels from `bidi.py` (UAX #9).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import regex

from shared.render import bidi
from shared.render.segment import break_opportunities, cluster_ends

# Ideographs, kana, Hangul, emoji: one piece per cluster (no shaping across them, so each is
# measured and rasterised once per batch); whether a line may break between them is UAX #14's.
_CJK = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Bopomofo}\u3000-\u303f\uff00-\uffef"
    r"\u30fc\U0001f000-\U0001faff\u2600-\u27bf]"
)
# Emoji presentation: these go to a colour font first, even if a text font has the code point.
_EMOJI = regex.compile(r"[\p{Emoji_Presentation}\ufe0f\u20e3\U0001f1e6-\U0001f1ff]")
# Scripts that may be split cluster by cluster for letter spacing without breaking shaping.
_SEPARABLE = regex.compile(
    r"^[\p{Latin}\p{Greek}\p{Cyrillic}\p{Common}\p{Inherited}\p{Han}\p{Hiragana}"
    r"\p{Katakana}\p{Hangul}\p{Bopomofo}\p{Hebrew}]+$"
)
# Clusters with only Common/Inherited script (spaces, digits, punctuation) stay in the
# previous cluster's font when it covers them, which keeps runs long and punctuation matched.
_NEUTRAL = regex.compile(r"^[\p{Common}\p{Inherited}]+$")
# Code points a font need not map: joiners, variation selectors, tags.
_IGNORABLE = frozenset(
    [0x200C, 0x200D, *range(0xFE00, 0xFE10), *range(0xE0020, 0xE0080), *range(0xE0100, 0xE01F0)]
)


@dataclass(slots=True)
class Piece:
    """A shaped unit of text in one font and one direction."""

    text: str
    font: str
    level: int
    cjk: bool
    color: bool
    clusters: list[str] = field(default_factory=list)
    break_after: bool = False
    start: int = 0  # offset of the piece's first character in its paragraph
    advance: float = 0.0
    trail: float = 0.0  # advance of trailing spaces, which hang past a line end

    @property
    def last(self) -> str:
        return self.clusters[-1] if self.clusters else ""

    @property
    def direction(self) -> str:
        return "rtl" if self.level % 2 else "ltr"


class FontPicker:
    """Chooses a font per cluster from a chain, by cmap coverage."""

    def __init__(
        self,
        chain: Sequence[str],
        coverage: Callable[[str], frozenset[int]],
        is_color: Callable[[str], bool],
    ) -> None:
        self.chain = tuple(chain)
        # Coverage tables load on first use: text in Latin and Chinese never touches the long
        # tail of script faces the font pack adds to every chain.
        self._coverage = coverage
        self._cov: dict[str, frozenset[int]] = {}
        self._colors = frozenset(n for n in self.chain if is_color(n))
        self._color_first = tuple(n for n in self.chain if is_color(n)) + tuple(
            n for n in self.chain if not is_color(n)
        )
        self._memo: dict[tuple[str, str | None], str | None] = {}

    def _table(self, font: str) -> frozenset[int]:
        cov = self._cov.get(font)
        if cov is None:
            cov = self._cov[font] = self._coverage(font)
        return cov

    def covers(self, font: str, cluster: str) -> bool:
        cov = self._table(font)
        needed = [ord(c) for c in cluster if ord(c) not in _IGNORABLE]
        return all(cp in cov for cp in needed) if needed else ord(cluster[0]) in cov

    def pick(self, cluster: str, previous: str | None) -> str | None:
        memo_key = (cluster, previous)
        if memo_key in self._memo:
            return self._memo[memo_key]
        choice: str | None = None
        if (
            previous is not None
            and previous not in self._colors
            and _NEUTRAL.match(cluster)
            and not _EMOJI.search(cluster)
            and self.covers(previous, cluster)
        ):
            # Colour fonts are excluded: their spaces and digits are emoji-sized.
            choice = previous
        else:
            order = self._color_first if _EMOJI.search(cluster) else self.chain
            for name in order:
                if self.covers(name, cluster):
                    choice = name
                    break
            else:
                # No face has every code point; take one with the base character so the
                # cluster still draws, marks included (the shaper places what it can).
                base = ord(cluster[0])
                for name in order:
                    if base in self._table(name):
                        choice = name
                        break
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[memo_key] = choice
        return choice


def itemize(
    text: str,
    picker: FontPicker,
    direction: str,
    split_all: bool,
    is_color: Callable[[str], bool],
    wrap: bool = True,
) -> tuple[list[Piece], list[str], bidi.Paragraph]:
    """Pieces of one paragraph in logical order, clusters no font covers, the bidi paragraph.

    `split_all` makes every separable cluster its own piece (letter spacing, vertical text).
    `wrap=False` (a line that never wraps) skips the line-break opportunities: pieces then end
    after spaces only. In a full render ICU's line iterator costs ~12 us of a ~165 us label
    (bench strings, CPU time), so unwrapped labels do without; text whose words hold no break
    opportunity (no hyphen, slash, Thai...) gets the same pieces either way.
    """
    ends = cluster_ends(text)
    breaks = break_opportunities(text, ends) if wrap else _after_spaces(text)
    paragraph = bidi.resolve(text, direction)
    levels = paragraph.levels
    pieces: list[Piece] = []
    missing: list[str] = []
    current: Piece | None = None
    previous_font: str | None = None
    start = 0
    for end in ends:
        cluster = text[start:end]
        offset, start = start, end
        font = picker.pick(cluster, previous_font)
        if font is None:
            missing.append(cluster)
            continue
        previous_font = font
        level = levels[offset]
        if current is not None and cluster.isspace() and current.font == font and current.level == level:
            # UAX #14 never breaks before a space (LB7): spaces trail the piece before them.
            current.text += cluster
            current.clusters.append(cluster)
            continue
        cjk = _CJK.match(cluster) is not None
        can_break = offset in breaks
        if (
            current is None
            or can_break
            or cjk
            or current.cjk
            or current.font != font
            or current.level != level
            or current.color
            or (split_all and _SEPARABLE.match(cluster) is not None)
        ):
            if current is not None:
                current.break_after = can_break
            current = Piece(
                text=cluster,
                font=font,
                level=level,
                cjk=cjk,
                color=is_color(font),
                clusters=[cluster],
                start=offset,
            )
            pieces.append(current)
        else:
            current.text += cluster
            current.clusters.append(cluster)
    return pieces, missing, paragraph


_SPACES = regex.compile(r"\s+")


def _after_spaces(text: str) -> set[int]:
    """Offsets just after each run of spaces (where UAX #14 would at least allow a break)."""
    return {m.end() for m in _SPACES.finditer(text) if m.end() < len(text)}


def split_piece(piece: Piece) -> list[Piece]:
    """One piece per cluster: how an over-long word is broken across lines."""
    out: list[Piece] = []
    offset = piece.start
    for i, cluster in enumerate(piece.clusters):
        last = i == len(piece.clusters) - 1
        out.append(
            Piece(
                text=cluster,
                font=piece.font,
                level=piece.level,
                cjk=piece.cjk,
                color=piece.color,
                clusters=[cluster],
                break_after=piece.break_after if last else True,
                start=offset,
            )
        )
        offset += len(cluster)
    return out
