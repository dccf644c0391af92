"""The one typed style model, its validation, and per-item overrides.

`Style` is what a job, a preview or a per-row override carries. msgspec checks types and
ranges; `parse_style` adds the semantic checks msgspec cannot express (colour syntax, padding
has 1/2/4 values, auto-fit has a box, and — given a `FontBook` such as the render engine's
catalogue — the font exists and its axes take the values) and turns every failure into a
`BadRequest` whose `field` names the offending field, e.g. `style.shadow.color`.

This module is part of the wire contract, so it imports no imaging library: a client builds and
checks a Style without loading the engine; the services pass their catalogue for the font checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Final, Literal, Protocol

import msgspec
from msgspec import Meta

from shared.contract.codec import bad_request_from
from shared.contract.colors import parse_color
from shared.contract.errors import BadRequest


class FontAxes(Protocol):
    """What the style checks need to know of one font: its variation axes (min, default, max)."""

    @property
    def axes(self) -> Mapping[str, Sequence[float]]: ...


class FontBook(Protocol):
    """The fonts a server offers, as the style checks see them (the engine's catalogue is one)."""

    def __contains__(self, name: object) -> bool: ...

    def names(self) -> Iterable[str]: ...

    def info(self, name: str) -> FontAxes: ...


Px = Annotated[int, Meta(ge=0, le=4000)]


class Shadow(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A drop shadow under the text (and its stroke)."""

    offset_x: Annotated[int, msgspec.Meta(ge=-500, le=500)] = 2
    offset_y: Annotated[int, msgspec.Meta(ge=-500, le=500)] = 2
    blur: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0
    color: str = "#00000080"


class Style(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """How one item is drawn. Every field has a default; JSON names equal attribute names.

    Sizes are pixels. `width`/`height` fix the whole canvas (padding included); without them
    the canvas fits the text. `max_width`/`max_height` bound the text area and make lines wrap
    (columns, in vertical text). `padding` is 1, 2 (vertical, horizontal) or 4 (top, right,
    bottom, left) values. `auto_fit` searches the largest size between `min_size` and `size`
    (or beyond `size` with `auto_fit_grow`) at which the text fits the box without splitting a
    word. `weight`/`axes` set variable-font axes. `language` (BCP 47) selects localised glyphs
    through the shaper. `strict` fails the item when a character has no font instead of
    skipping it; `control_chars` strips or refuses control and invisible characters.
    """

    # --- font -------------------------------------------------------------------------------
    font: Annotated[
        str, Meta(max_length=100, description="font name from the catalogue (imagegen fonts)")
    ] = "sans"
    size: Annotated[int, Meta(ge=1, le=1000, description="font size in px")] = 48
    weight: Annotated[float, Meta(ge=1, le=1000, description="weight axis of a variable font")] | None = None
    axes: dict[str, float] | None = None
    language: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 tag for localised glyphs"
            ),
        ]
        | None
    ) = None
    # --- colour -----------------------------------------------------------------------------
    color: Annotated[
        str, Meta(max_length=100, description="text colour: #rgb[a], #rrggbb[aa], rgb(), rgba(), a CSS name")
    ] = "#000000"
    background: Annotated[str, Meta(max_length=100, description="background colour")] = "transparent"
    # --- box --------------------------------------------------------------------------------
    padding: Annotated[
        Px | tuple[Px, ...],
        Meta(
            description="px around the text: 8, or 4,8 (vertical, horizontal), "
            "or 1,2,3,4 (top, right, bottom, left)"
        ),
    ] = 0
    width: Annotated[int, Meta(ge=1, le=16384, description="canvas width in px, padding included")] | None = (
        None
    )
    height: (
        Annotated[int, Meta(ge=1, le=16384, description="canvas height in px, padding included")] | None
    ) = None
    max_width: Annotated[int, Meta(ge=1, le=16384, description="wrap lines to this width in px")] | None = (
        None
    )
    max_height: (
        Annotated[int, Meta(ge=1, le=16384, description="wrap columns to this height in px")] | None
    ) = None
    # start/end follow the text direction (right-aligned Arabic); in vertical text
    # start/left/justify mean the top of the column and end/right its bottom.
    align: Annotated[
        Literal["start", "left", "center", "right", "end", "justify"],
        Meta(description="horizontal alignment (start/end follow the text direction)"),
    ] = "start"
    valign: Annotated[Literal["top", "middle", "bottom"], Meta(description="vertical alignment")] = "top"
    overflow: Annotated[
        Literal["error", "clip"], Meta(description="ink outside a fixed canvas: fail the item or clip")
    ] = "error"
    # --- spacing ----------------------------------------------------------------------------
    line_spacing: Annotated[float, Meta(ge=0.5, le=5.0, description="x the fonts' line height")] = 1.0
    letter_spacing: Annotated[float, Meta(ge=-100, le=500, description="px between characters")] = 0.0
    # --- auto-fit ---------------------------------------------------------------------------
    auto_fit: Annotated[bool, Meta(description="shrink the size until the text fits the box")] = False
    auto_fit_grow: Annotated[bool, Meta(description="auto-fit may also grow past size")] = False
    min_size: Annotated[int, Meta(ge=1, le=1000, description="smallest size auto-fit may use")] = 8
    # --- effects ----------------------------------------------------------------------------
    stroke_width: Annotated[int, Meta(ge=0, le=100, description="outline width in px")] = 0
    stroke_color: (
        Annotated[str, Meta(max_length=100, description="outline colour (default: the text's)")] | None
    ) = None
    shadow: Shadow | None = None
    # --- direction --------------------------------------------------------------------------
    orientation: Annotated[Literal["horizontal", "vertical"], Meta(description="vertical: CJK columns")] = (
        "horizontal"
    )
    direction: Annotated[Literal["auto", "ltr", "rtl"], Meta(description="paragraph direction")] = "auto"
    # --- output -----------------------------------------------------------------------------
    format: Annotated[Literal["png", "webp"], Meta(description="image format")] = "png"
    dpi: Annotated[int, Meta(ge=1, le=2400, description="resolution written into the file")] | None = None
    webp_lossless: Annotated[bool, Meta(description="lossless WebP")] = True
    webp_quality: Annotated[int, Meta(ge=1, le=100, description="lossy WebP quality")] = 90
    # --- policy -----------------------------------------------------------------------------
    strict: Annotated[bool, Meta(description="fail an item when a character has no font")] = False
    control_chars: Annotated[
        Literal["strip", "refuse"],
        Meta(description="control and invisible characters: strip them or fail the item"),
    ] = "strip"


def _check_color(value: str | None, field: str) -> None:
    if value is None:
        return
    try:
        parse_color(value)
    except ValueError as exc:
        raise BadRequest(str(exc), field=field) from None


# Style fields a single piece of text can set (a command-line flag, a form field, a table cell);
# `shadow` and `axes` are nested objects, which one string cannot spell unambiguously.
SCALAR_FIELDS: Final = tuple(
    f.name for f in msgspec.structs.fields(Style) if f.name not in ("shadow", "axes")
)


def style_from_text(values: Mapping[str, str]) -> dict[str, object]:
    """Style fields given as text (`{"size": "48", "padding": "4,8"}`), ready for `parse_style`:
    msgspec converts numbers and booleans from strings; padding's "4,8" or "4 8" becomes a list."""
    out: dict[str, object] = {}
    for name, text in values.items():
        if name == "padding":
            parts = [part for part in text.replace(",", " ").split() if part]
            try:
                numbers = [int(part) for part in parts]
            except ValueError:
                raise BadRequest(
                    "padding is 1, 2 or 4 whole pixel values, e.g. 8 or 4,8", field="style.padding"
                ) from None
            out[name] = numbers[0] if len(numbers) == 1 else numbers
        else:
            out[name] = text
    return out


def padding_box(padding: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    """CSS order: one value for all, two for (vertical, horizontal), four for (t, r, b, l)."""
    if isinstance(padding, int):
        return (padding, padding, padding, padding)
    if len(padding) == 1:
        return (padding[0],) * 4
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    if len(padding) == 4:
        return (padding[0], padding[1], padding[2], padding[3])
    raise ValueError("padding takes 1, 2 or 4 values")


def _check_fonts(style: Style, prefix: str, fonts: FontBook) -> None:
    if style.font not in fonts:
        known = ", ".join(sorted(fonts.names()))
        raise BadRequest(f"unknown font {style.font!r}; known fonts: {known}", field=f"{prefix}.font")
    if style.weight is not None or style.axes:
        info = fonts.info(style.font)
        if not info.axes:
            raise BadRequest(
                f"font {style.font!r} is not a variable font; pick a bold/regular font by name",
                field=f"{prefix}.weight" if style.weight is not None else f"{prefix}.axes",
            )
        if style.weight is not None:
            if "wght" not in info.axes:
                raise BadRequest(f"font {style.font!r} has no weight axis", field=f"{prefix}.weight")
            lo, _, hi = info.axes["wght"]
            if not lo <= style.weight <= hi:
                raise BadRequest(f"weight must be within {lo:g}-{hi:g}", field=f"{prefix}.weight")
        for tag, value in (style.axes or {}).items():
            if tag not in info.axes:
                raise BadRequest(f"font {style.font!r} has no axis {tag!r}", field=f"{prefix}.axes.{tag}")
            lo, _, hi = info.axes[tag]
            if not lo <= value <= hi:
                raise BadRequest(f"axis {tag} must be within {lo:g}-{hi:g}", field=f"{prefix}.axes.{tag}")


def _check_semantics(style: Style, prefix: str) -> None:
    _check_color(style.color, f"{prefix}.color")
    _check_color(style.background, f"{prefix}.background")
    _check_color(style.stroke_color, f"{prefix}.stroke_color")
    if style.shadow is not None:
        _check_color(style.shadow.color, f"{prefix}.shadow.color")
    try:
        pad = padding_box(style.padding)
    except ValueError as exc:
        raise BadRequest(str(exc), field=f"{prefix}.padding") from None
    for name, side, extra in (
        ("width", style.width, pad[1] + pad[3]),
        ("height", style.height, pad[0] + pad[2]),
    ):
        if side is not None and side <= extra:
            raise BadRequest(f"{name} {side} leaves no room inside the padding", field=f"{prefix}.{name}")
    if style.auto_fit:
        horizontal = style.orientation == "horizontal"
        main = (style.max_width or style.width) if horizontal else (style.max_height or style.height)
        if main is None:
            need = "max_width or width" if horizontal else "max_height or height"
            raise BadRequest(f"auto_fit needs a box: set {need}", field=f"{prefix}.auto_fit")
        if style.min_size > style.size and not style.auto_fit_grow:
            raise BadRequest(
                f"min_size {style.min_size} is larger than size {style.size}",
                field=f"{prefix}.min_size",
            )


def parse_style(raw: object, field_prefix: str = "style", *, fonts: FontBook | None = None) -> Style:
    """Validate `raw` (a mapping, a Style, or None for the defaults) into a Style.

    Without `fonts` the font name and axes are not checked (a client does not know the server's
    fonts); every service passes its catalogue.
    """
    if raw is None:
        raw = {}
    elif isinstance(raw, Style):
        raw = msgspec.to_builtins(raw)
    if not isinstance(raw, Mapping):
        raise BadRequest("style must be an object", field=field_prefix)
    try:
        style = msgspec.convert(raw, Style, strict=False)
    except msgspec.ValidationError as exc:
        raise bad_request_from(exc, prefix=field_prefix) from None
    _check_semantics(style, field_prefix)
    if fonts is not None:
        _check_fonts(style, field_prefix, fonts)
    return style


def merge_style(
    base: Style,
    overrides: Mapping[str, object],
    *,
    field_prefix: str = "style",
    fonts: FontBook | None = None,
) -> Style:
    """`base` with per-item `overrides` applied (a nested `shadow` mapping merges field-wise)."""
    if not overrides:
        return base
    merged: dict[str, object] = dict(msgspec.to_builtins(base))
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    return parse_style(merged, field_prefix, fonts=fonts)
