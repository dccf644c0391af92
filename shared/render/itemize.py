"""Split a paragraph into pieces: grapheme clusters grouped by font, bidi level and word.

Each grapheme cluster gets the first font of the chain that covers it (cmap coverage), so a
Chinese character in a Latin style falls back to the CJK face and never draws as `.notdef`.
Clusters are then grouped into *pieces*, the unit that is shaped, measured, cached and
line-broken: a whole word (with its trailing spaces) for alphabetic and complex scripts, a
single cluster for CJK (which breaks between any two characters and has no cross-character
shaping, so per-character caching is exact).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import regex

from shared.render.bidi import has_rtl, paragraph_level, resolve_levels

CLUSTER = regex.compile(r"\X")
# Clusters that break like ideographs (UAX #14 ID class, roughly): any two may be split.
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

# Kinsoku shori: never start a line with these...
NO_START = frozenset(
    "、。，．・：；？！゛゜ヽヾゝゞ々〻ー‐゠–〜～）〕］｝〉》」』】〙〗〟’”｠»,.:;?!)]}"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ％‰℃°′″"
)
# ...and never end a line with these.
NO_END = frozenset("（〔［｛〈《「『【〘〖〝‘“｟«([{")


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
    advance: float = 0.0
    trail: float = 0.0  # advance of trailing spaces, which hang past a line end

    @property
    def last(self) -> str:
        return self.clusters[-1] if self.clusters else ""

    @property
    def direction(self) -> str:
        return "rtl" if self.level % 2 else "ltr"


def clusters_of(text: str) -> list[str]:
    clusters: list[str] = CLUSTER.findall(text)
    return clusters


def break_allowed(before: str, after: str) -> bool:
    """May a line break between these two clusters (CJK context)? Kinsoku rules."""
    return after not in NO_START and before not in NO_END


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
) -> tuple[list[Piece], list[str], int]:
    """Pieces of one paragraph in logical order, clusters no font covers, paragraph level.

    `split_all` makes every separable cluster its own piece (letter spacing, vertical text).
    """
    clusters = clusters_of(text)
    base = paragraph_level(clusters, direction)
    levels = resolve_levels(clusters, base) if base or has_rtl(text) else [0] * len(clusters)
    pieces: list[Piece] = []
    missing: list[str] = []
    current: Piece | None = None
    previous_font: str | None = None
    for cluster, level in zip(clusters, levels, strict=True):
        font = picker.pick(cluster, previous_font)
        if font is None:
            missing.append(cluster)
            continue
        previous_font = font
        is_space = cluster.isspace()
        cjk = _CJK.match(cluster) is not None
        if current is not None and is_space and current.font == font and current.level == level:
            current.text += cluster
            current.clusters.append(cluster)
            current.break_after = True
            continue
        start_new = (
            current is None
            or is_space
            or current.break_after
            or cjk
            or current.cjk
            or current.font != font
            or current.level != level
            or current.color
            or (split_all and _SEPARABLE.match(cluster) is not None)
        )
        if current is not None and not start_new and current.text[-1] in "-\u2010" and cluster.isalnum():
            current.break_after = True  # after a hyphen inside a word
            start_new = True
        if start_new:
            if current is not None and not current.break_after and (cjk or current.cjk):
                current.break_after = break_allowed(current.last, cluster)
            elif current is not None and current.break_after and current.last.isspace():
                # A break after spaces is still refused before closing punctuation.
                current.break_after = cluster not in NO_START
            current = Piece(
                text=cluster,
                font=font,
                level=level,
                cjk=cjk,
                color=is_color(font),
                clusters=[cluster],
                break_after=is_space,
            )
            pieces.append(current)
        else:
            assert current is not None
            current.text += cluster
            current.clusters.append(cluster)
    return pieces, missing, base


def split_piece(piece: Piece) -> list[Piece]:
    """One piece per cluster: how an over-long word is broken across lines."""
    out: list[Piece] = []
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
            )
        )
    return out
