"""Colour strings to RGBA tuples: `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, `rgb()`, `rgba()`,
CSS names and `transparent`.

Pillow's `ImageColor` knows the CSS names and hex forms but reads the alpha of `rgba()` as
0-255, while CSS (and every designer) writes it as 0-1 or a percentage; so the functional forms
are parsed here. Names come from `webcolors`' CSS table, so the contract needs no Pillow.
"""

from __future__ import annotations

import re

import webcolors

RGBA = tuple[int, int, int, int]

TRANSPARENT: RGBA = (0, 0, 0, 0)

_HEX = re.compile(r"#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FUNC = re.compile(r"(rgba?)\(\s*([^)]*)\)", re.IGNORECASE)
_NAME = re.compile(r"[a-zA-Z]+")
# CSS Color 4 added one name to the CSS3 table that webcolors carries.
_CSS4_ONLY: dict[str, RGBA] = {"rebeccapurple": (0x66, 0x33, 0x99, 255)}


def _channel(token: str) -> int:
    """One of r, g, b: 0-255 or a percentage."""
    token = token.strip()
    value = float(token[:-1]) * 255 / 100 if token.endswith("%") else float(token)
    if not 0 <= value <= 255:
        raise ValueError(f"channel {token!r} is outside 0-255")
    return round(value)


def _alpha(token: str) -> int:
    """The alpha of rgba(): 0-1 or a percentage, as CSS writes it."""
    token = token.strip()
    value = float(token[:-1]) / 100 if token.endswith("%") else float(token)
    if not 0 <= value <= 1:
        raise ValueError(f"alpha {token!r} is outside 0-1")
    return round(value * 255)


def parse_color(text: str) -> RGBA:
    """Parse a colour string; raise ValueError with a reason a user can act on."""
    value = text.strip()
    if not value:
        raise ValueError("empty colour")
    if value.lower() == "transparent":
        return TRANSPARENT
    if value.startswith("#"):
        if not _HEX.fullmatch(value):
            raise ValueError(f"{text!r} is not #rgb, #rgba, #rrggbb or #rrggbbaa")
        digits = value[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            digits += "ff"
        r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
        return (r, g, b, a)
    func = _FUNC.fullmatch(value)
    if func:
        name = func.group(1).lower()
        parts = [p for p in re.split(r"[\s,/]+", func.group(2).strip()) if p]
        if len(parts) not in (3, 4) or (name == "rgb" and len(parts) == 4 and "/" not in value):
            raise ValueError(f"{text!r}: rgb() takes 3 values, rgba() takes 4")
        if name == "rgba" and len(parts) != 4:
            raise ValueError(f"{text!r}: rgba() takes 4 values")
        try:
            r, g, b = (_channel(p) for p in parts[:3])
            a = _alpha(parts[3]) if len(parts) == 4 else 255
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        return (r, g, b, a)
    if _NAME.fullmatch(value):
        name = value.lower()
        if name in _CSS4_ONLY:
            return _CSS4_ONLY[name]
        try:
            rgb = webcolors.name_to_rgb(name, spec=webcolors.CSS3)
        except ValueError:
            raise ValueError(f"{text!r} is not a CSS colour name") from None
        return (rgb.red, rgb.green, rgb.blue, 255)
    raise ValueError(f"{text!r} is not a colour (#rrggbb, rgb(), rgba() or a CSS name)")
