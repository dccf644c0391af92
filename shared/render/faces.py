"""Per-engine caches of FreeType faces, advances and rasterised glyph runs.

FreeType objects are not thread-safe, so each `RenderEngine` owns one `FaceCache` and uses it
from one thread at a time. Everything an item needs more than once is kept: the face for
(font, size, variation), the advance of a piece of text, and the rendered mask of a piece. With
pieces being single CJK clusters or whole words, most pieces of a batch of product names are
rasterised once and then only pasted, which is what makes the engine faster than raw Pillow.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

from PIL import Image, ImageFont, _imaging

from shared.render.fonts import FontCatalogue

if TYPE_CHECKING:
    from PIL._imaging import ImagingCore

# Cap on cached mask bytes per engine: enough for tens of thousands of 48 px glyphs.
MASK_CACHE_BYTES = 96 * 1024 * 1024
ADVANCE_CACHE_ENTRIES = 200_000
MAX_FACES = 256
# Pieces made only of these are composed from cached glyphs (see `FaceCache.composable`).
NUMERIC = frozenset("0123456789.,:;/-+%¥$€£#()")
MAX_COMPOSED = 32


class FaceKey(NamedTuple):
    """One concrete face: catalogue font at a pixel size with variation settings.

    A named tuple rather than a dataclass: it is built and hashed for every piece of every
    item (cache keys), and a tuple's construction and hash run in C.
    """

    font: str
    size: int
    variation: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Bitmap:
    """A rendered piece: `image` is an L mask (or RGBA for colour fonts) at `offset` from the
    pen position on the baseline. `core`, `width` and `height` are read from `image` once:
    pasting reads them for every piece of every item, and Pillow's properties are calls."""

    image: Image.Image
    offset: tuple[int, int]
    core: ImagingCore
    width: int
    height: int

    @classmethod
    def of(cls, image: Image.Image, offset: tuple[int, int]) -> Bitmap:
        return cls(image, offset, image.im, image.width, image.height)


class FaceCache:
    """FreeType faces and what they produce, cached for the engine's lifetime."""

    def __init__(self, catalogue: FontCatalogue) -> None:
        self.catalogue = catalogue
        self._faces: dict[tuple[FaceKey, bool], ImageFont.FreeTypeFont] = {}
        self._metrics: dict[FaceKey, tuple[int, int]] = {}
        self._advances: dict[Hashable, float] = {}
        self._masks: dict[Hashable, Bitmap] = {}
        self._mask_bytes = 0
        self._color: dict[str, bool] = {}
        self._fixed: dict[str, int | None] = {}
        self._pairs: dict[Hashable, bool] = {}

    @property
    def cached_masks(self) -> int:
        return len(self._masks)

    # --- faces -----------------------------------------------------------------------------

    def is_color(self, font: str) -> bool:
        cached = self._color.get(font)
        if cached is None:
            info = self.catalogue.info(font)
            cached = info.color and info.fixed_size is not None
            self._color[font] = cached
            self._fixed[font] = info.fixed_size
        return cached

    def face(self, key: FaceKey, *, basic: bool = False) -> ImageFont.FreeTypeFont:
        """The FreeType face for `key`; `basic` gives Pillow's basic (non-raqm) layout engine,
        used only where it provably draws the same pixels (see `bitmap`)."""
        cache_key = (key, basic)
        face = self._faces.get(cache_key)
        if face is None:
            size = key.size
            if self.is_color(key.font):
                # Bitmap colour fonts open only at their strike size; pieces are scaled later.
                size = self._fixed[key.font] or size
            face = ImageFont.truetype(
                str(self.catalogue.path(key.font)),
                size,
                index=self.catalogue.index(key.font),
                layout_engine=ImageFont.Layout.BASIC if basic else ImageFont.Layout.RAQM,
            )
            if key.variation:
                face.set_variation_by_axes(self._axis_values(face, dict(key.variation)))
            if len(self._faces) >= MAX_FACES:
                # Auto-fit visits many sizes; keep the set bounded (faces reopen cheaply).
                self._faces.clear()
                self._metrics.clear()
            self._faces[cache_key] = face
        return face

    @staticmethod
    def _axis_values(face: ImageFont.FreeTypeFont, wanted: dict[str, float]) -> list[float]:
        """Pillow wants every axis value in order; unspecified axes keep their default."""
        values: list[float] = []
        tags = {"Weight": "wght", "Width": "wdth", "Slant": "slnt", "Italic": "ital"}
        for axis in face.get_variation_axes():
            raw_name = axis.get("name", b"")
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            tag = tags.get(name, name[:4].lower())
            default = float(axis.get("default") or 0)
            values.append(float(wanted.get(tag, default)))
        return values

    def scale(self, key: FaceKey) -> float:
        """Size ratio for colour bitmap fonts (1.0 for outline fonts)."""
        if self.is_color(key.font):
            fixed = self._fixed[key.font]
            return key.size / fixed if fixed else 1.0
        return 1.0

    def metrics(self, key: FaceKey) -> tuple[int, int]:
        """(ascent, descent) in pixels at the requested size."""
        cached = self._metrics.get(key)
        if cached is None:
            ascent, descent = self.face(key).getmetrics()
            s = self.scale(key)
            cached = (round(ascent * s), round(descent * s))
            self._metrics[key] = cached
        return cached

    # --- measuring and rasterising ----------------------------------------------------------

    def advance(
        self, key: FaceKey, text: str, direction: str, features: tuple[str, ...], language: str | None
    ) -> float:
        cache_key = (key, text, direction, features, language)
        cached = self._advances.get(cache_key)
        if cached is None:
            if self.composable(key, text, direction, features, language, 0):
                # Multiples of 1/64 px: the sum is exact, as raqm's own total is.
                cached = sum(self.advance(key, ch, direction, features, language) for ch in text)
            else:
                face = self.face(key)
                mode = "RGBA" if self.is_color(key.font) else "L"
                length = face.getlength(text, mode, direction, list(features) or None, language)
                cached = length * self.scale(key)
            if len(self._advances) >= ADVANCE_CACHE_ENTRIES:
                self._advances.clear()
            self._advances[cache_key] = cached
        return cached

    def composable(
        self,
        key: FaceKey,
        text: str,
        direction: str,
        features: tuple[str, ...],
        language: str | None,
        stroke: int,
    ) -> bool:
        """Whether the piece equals its glyphs drawn one after the other: numbers and prices.

        Every piece costs two raqm calls when first seen (~75 us each on a CJK face: raqm builds
        a HarfBuzz font per call), and numbers are new on almost every item. Digits and number
        punctuation are all of the Common script, so the piece is one script run whose glyphs
        only interact through pair kerning or contextual rules; every adjacent pair is checked
        once against raqm (bitmap and advance) and a piece is composed only if all its pairs
        match. Letters are excluded: a Latin letter turns the run's script to Latin, and some
        CJK fonts then draw the digits differently (measured: Noto Sans CJK, "1g" at 20 px).
        """
        if (
            direction != "ltr"
            or features
            or not 2 <= len(text) <= MAX_COMPOSED
            or not NUMERIC.issuperset(text)
            or self.is_color(key.font)
        ):
            return False
        return all(self._pair_matches(key, a + b, language, stroke) for a, b in pairwise(text))

    def _pair_matches(self, key: FaceKey, pair: str, language: str | None, stroke: int) -> bool:
        check = (key, pair, language, stroke)
        found = self._pairs.get(check)
        if found is None:
            face = self.face(key)
            shaped = self._render(face, key, pair, "ltr", (), language, stroke, False)
            composed = self._compose(key, pair, language, stroke)
            whole = face.getlength(pair, "L", "ltr", None, language)
            parts = sum(self.advance(key, ch, "ltr", (), language) for ch in pair)
            found = whole == parts and _same(shaped, composed)
            if len(self._pairs) >= ADVANCE_CACHE_ENTRIES:
                self._pairs.clear()
            self._pairs[check] = found
        return found

    def _compose(self, key: FaceKey, text: str, language: str | None, stroke: int) -> Bitmap:
        """The glyphs' cached masks drawn where raqm puts them: each at its pen position
        (the sum of the advances before it, in 26.6) rounded to a pixel, as Pillow rounds."""
        pen = 0.0
        parts = []
        for ch in text:
            glyph = self.bitmap(key, ch, "ltr", (), language, stroke)
            if glyph.width:
                x = ((int(pen * 64) + 32) >> 6) + glyph.offset[0]
                parts.append((glyph, x, glyph.offset[1]))
            pen += self.advance(key, ch, "ltr", (), language)
        if not parts:
            return Bitmap.of(Image.new("L", (0, 0)), (0, 0))
        x0 = min(x for _, x, _ in parts)
        y0 = min(y for _, _, y in parts)
        x1 = max(x + g.width for g, x, _ in parts)
        y1 = max(y + g.height for g, _, y in parts)
        image = Image.new("L", (x1 - x0, y1 - y0), 0)
        # Later glyphs blend "over" earlier ones, as Pillow's own glyph loop does.
        draw_bitmap = _imaging.draw(image.im, 0).draw_bitmap
        for glyph, x, y in parts:
            draw_bitmap((x - x0, y - y0), glyph.core, 255)
        return Bitmap.of(image, (x0, y0))

    def em_advance(self, key: FaceKey, text: str) -> float | None:
        """The advance of a one-em CJK character without asking raqm (each raqm call builds a
        HarfBuzz font, ~75 us for a CJK face); None when the shortcut does not apply."""
        if key.variation or len(text) != 1 or ord(text) not in self.catalogue.em_wide(key.font):
            return None
        return float(key.size)

    def bitmap(
        self,
        key: FaceKey,
        text: str,
        direction: str,
        features: tuple[str, ...],
        language: str | None,
        stroke: int,
    ) -> Bitmap:
        """The piece's mask with its offset from the baseline origin (anchor "ls")."""
        cache_key = (key, text, direction, features, language, stroke)
        cached = self._masks.get(cache_key)
        if cached is not None:
            return cached
        color = self.is_color(key.font)
        if self.composable(key, text, direction, features, language, stroke):
            cached = self._compose(key, text, language, stroke)
        else:
            # A lone one-em CJK character needs no shaping: the basic layout engine draws the
            # very same bitmap (checked glyph by glyph, stroke included) in half the time,
            # because raqm builds a HarfBuzz font on every call. Features and language need raqm.
            basic = (
                not features
                and language is None
                and direction == "ltr"
                and self.em_advance(key, text) is not None
            )
            face = self.face(key, basic=basic)
            cached = self._render(face, key, text, direction, features, language, stroke, basic)
        self._mask_bytes += cached.width * cached.height * (4 if color else 1)
        if self._mask_bytes > MASK_CACHE_BYTES:
            # Cheap eviction: drop everything. Batches are homogeneous, so the working set
            # refills in a few items; an LRU would cost bookkeeping on every hit.
            self._masks.clear()
            self._mask_bytes = 0
        self._masks[cache_key] = cached
        return cached

    def _render(
        self,
        face: ImageFont.FreeTypeFont,
        key: FaceKey,
        text: str,
        direction: str,
        features: tuple[str, ...],
        language: str | None,
        stroke: int,
        basic: bool,
    ) -> Bitmap:
        """Pillow's own rendering of a piece, cropped to its ink."""
        color = self.is_color(key.font)
        core, offset = face.getmask2(
            text,
            "RGBA" if color else "L",
            None if basic else direction,  # the basic engine refuses any direction argument
            list(features) or None,
            language,
            0 if color else stroke,
            "ls",
            0,
            (0.0, 0.0),
            stroke_filled=True,
        )
        image = Image.Image()._new(core)
        if color:
            scale = self.scale(key)
            if scale != 1.0 and image.width and image.height:
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image = image.resize(size, Image.Resampling.LANCZOS)
            offset = (round(offset[0] * scale), round(offset[1] * scale))
        # Crop to the ink: bitmaps carry blank margins (spaces, side bearings) that would
        # otherwise widen size-to-text canvases. Blank pixels draw nothing, so this is exact.
        box = image.getbbox(alpha_only=True) if color else image.getbbox()
        if box is None:
            image, offset = Image.new(image.mode, (0, 0)), (0, 0)
        elif box != (0, 0, image.width, image.height):
            image = image.crop(box)
            offset = (offset[0] + box[0], offset[1] + box[1])
        return Bitmap.of(image, offset)


def _same(a: Bitmap, b: Bitmap) -> bool:
    return a.offset == b.offset and a.image.size == b.image.size and a.image.tobytes() == b.image.tobytes()
