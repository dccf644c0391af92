"""Style checks with the fonts in view: the contract's `parse_style` / `merge_style`, given this
engine's catalogue (the default one unless told), so a style naming a missing font or an axis the
font lacks is refused with the field named."""

from __future__ import annotations

from collections.abc import Mapping

from shared.contract import style as contract
from shared.contract.style import Style
from shared.render.fonts import FontCatalogue, default_catalogue


def parse_style(raw: object, field_prefix: str = "style", *, catalogue: FontCatalogue | None = None) -> Style:
    """Validate `raw` into a Style, fonts included (see `shared.contract.style.parse_style`)."""
    return contract.parse_style(raw, field_prefix, fonts=catalogue or default_catalogue())


def merge_style(
    base: Style,
    overrides: Mapping[str, object],
    *,
    field_prefix: str = "style",
    catalogue: FontCatalogue | None = None,
) -> Style:
    """`base` with per-item `overrides` applied, checked against the fonts."""
    fonts = catalogue or default_catalogue()
    return contract.merge_style(base, overrides, field_prefix=field_prefix, fonts=fonts)
