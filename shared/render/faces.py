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
from typing import TYPE_CHECKING

from PIL import Image, ImageFont

from shared.render.fonts import FontCatalogue

if TYPE_CHECKING:
    from PIL._imaging import ImagingCore

# Cap on cached mask bytes per engine: enough for tens of thousands of 48 px glyphs.
MASK_CACHE_BYTES = 96 * 1024 * 1024
ADVANCE_CACHE_ENTRIES = 200_000
MAX_FACES = 256


@dataclass(frozen=True, slots=True)
class FaceKey:
    """One concrete face: catalogue font at a pixel size with variation settings."""

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
            face = self.face(key)
            mode = "RGBA" if self.is_color(key.font) else "L"
            cached = face.getlength(text, mode, direction, list(features) or None, language) * self.scale(key)
            if len(self._advances) >= ADVANCE_CACHE_ENTRIES:
                self._advances.clear()
            self._advances[cache_key] = cached
        return cached

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
        # A lone one-em CJK character needs no shaping: the basic layout engine draws the very
        # same bitmap (checked glyph by glyph, stroke included) in half the time, because raqm
        # builds a HarfBuzz font on every call. Features and language need raqm.
        basic = (
            not features
            and language is None
            and direction == "ltr"
            and self.em_advance(key, text) is not None
        )
        face = self.face(key, basic=basic)
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
        cached = Bitmap.of(image, offset)
        self._mask_bytes += image.width * image.height * len(image.getbands())
        if self._mask_bytes > MASK_CACHE_BYTES:
            # Cheap eviction: drop everything. Batches are homogeneous, so the working set
            # refills in a few items; an LRU would cost bookkeeping on every hit.
            self._masks.clear()
            self._mask_bytes = 0
        self._masks[cache_key] = cached
        return cached
