"""The render engine: text + Style -> PNG/WebP bytes, with font fallback and fast encoding.

Used by the renderer service, the `imagegen.preview` / `validate` / `fonts` endpoints and the
local `imagegen render` command, so all of them draw identically.
"""

from shared.contract.messages import FontInfo
from shared.contract.style import Shadow, Style
from shared.render.engine import RenderedImage, RenderEngine
from shared.render.fonts import FontCatalogue, default_catalogue
from shared.render.styles import merge_style, parse_style

__all__ = [
    "FontCatalogue",
    "FontInfo",
    "RenderEngine",
    "RenderedImage",
    "Shadow",
    "Style",
    "default_catalogue",
    "merge_style",
    "parse_style",
]
