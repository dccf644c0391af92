"""Render benchmark: Pillow's defaults vs this engine vs this engine's rasterisation alone.

2,000 deterministic mixed Chinese/English strings (street names from `bench/data` mixed with
English product words and prices) at 48 px, one core, one process, in one run:

  pillow-defaults  RGBA canvas sized by textbbox, ImageDraw.text, default PNG save
  engine           RenderEngine.render (layout, fallback, palette PNG fast path)
  raster           RenderEngine.rasterise (everything but encoding)

The Pillow baseline uses the CJK face (Noto Sans CJK SC) because it covers both scripts, so it
draws no tofu; the engine is measured with that same font and with the default `sans` chain
(Noto Sans for Latin, falling back to CJK per cluster). Multi-colour styles are measured too.

Run: .venv/bin/python bench/bench_render.py [--count 2000] [--check]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.render import RenderEngine, parse_style  # noqa: E402
from shared.render.fonts import default_catalogue  # noqa: E402

WORDS = (
    "Organic Green Tea Jasmine Oolong Premium Coffee Beans Fresh Milk Noodles Rice Soy Sauce "
    "Dumplings Spicy Chili Oil Sesame Honey Lemon Ginger Walnut Almond Cookies Chocolate Mango "
    "Juice Sparkling Water Classic Original Deluxe Family Pack Limited Edition Gift Box Large "
    "Small Medium Extra Hot Cold Brew Vanilla Strawberry Peach Pear Apple Orange Grape Melon"
).split()


def strings(count: int) -> list[str]:
    names_file = ROOT / "bench" / "data" / "streets-sample.txt"
    names = [n for n in names_file.read_text(encoding="utf-8").splitlines() if n]
    rng = random.Random(20261128)
    out: list[str] = []
    for i in range(count):
        name = rng.choice(names)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        kind = i % 4
        if kind == 0:
            out.append(f"{name} {words}")
        elif kind == 1:
            out.append(f"{words} {rng.randint(1, 999)}g")
        elif kind == 2:
            out.append(f"{name}{rng.choice(['店', '仓库', '旗舰店'])} ¥{rng.randint(1, 500)}.{rng.randint(0, 99):02d}")
        else:
            out.append(f"{words} · {name}")
    return out


def pillow_defaults(font: ImageFont.FreeTypeFont, stroke: int = 0) -> Callable[[str], bytes]:
    def run(text: str) -> bytes:
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        box = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
        image = Image.new("RGBA", (box[2], box[3]))
        ImageDraw.Draw(image).text(
            (0, 0), text, fill="black", font=font, stroke_width=stroke, stroke_fill="red"
        )
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()

    return run


def measure(label: str, fn: Callable[[str], object], texts: list[str]) -> tuple[float, int]:
    total = 0
    start = time.perf_counter()
    for text in texts:
        out = fn(text)
        if isinstance(out, bytes):
            total += len(out)
    elapsed = time.perf_counter() - start
    rate = len(texts) / elapsed
    size = f"{total / len(texts) / 1024:7.2f} KiB/img" if total else " " * 15
    print(f"  {label:<44} {rate:8.0f} img/s  {size}")
    return rate, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--check", action="store_true", help="exit 1 if the 4x target is missed")
    args = parser.parse_args()
    texts = strings(args.count)
    catalogue = default_catalogue()
    cjk = ImageFont.truetype(str(catalogue.path("sans-sc")), 48, index=catalogue.index("sans-sc"))
    engine = RenderEngine(catalogue)
    same_font = parse_style({"font": "sans-sc", "size": 48})
    default = parse_style({"size": 48})
    # Warm-up on other strings: font loading and coverage tables are a one-off per process.
    for text in strings(50)[::-1]:
        engine.render(text + " warm", default)
        engine.render(text + " warm", same_font)
        pillow_defaults(cjk)(text)

    print(f"{len(texts)} mixed Chinese/English strings at 48 px, one core")
    print("single colour, transparent background:")
    base_rate, base_bytes = measure("pillow defaults (RGBA, ImageDraw.text, save)", pillow_defaults(cjk), texts)
    eng_rate, eng_bytes = measure(
        "engine, same font (sans-sc)", lambda t: engine.render(t, same_font).data, texts
    )
    raster_rate, _ = measure("engine rasterisation only (sans-sc)", lambda t: engine.rasterise(t, same_font), texts)
    chain_rate, chain_bytes = measure(
        "engine, default 'sans' fallback chain", lambda t: engine.render(t, default).data, texts
    )
    print(
        f"  ratios: engine/pillow = {eng_rate / base_rate:.2f}x, raster/pillow = "
        f"{raster_rate / base_rate:.2f}x, 'sans' chain/pillow = {chain_rate / base_rate:.2f}x"
    )
    print(
        f"  PNG bytes: engine/pillow = {eng_bytes / base_bytes:.3f}, "
        f"'sans' chain/pillow = {chain_bytes / base_bytes:.3f}"
    )

    print("multi-colour styles (RGBA path):")
    stroke_style = parse_style({"font": "sans-sc", "stroke_width": 2, "stroke_color": "red"})
    stroke_base, _ = measure("pillow defaults with red stroke 2", pillow_defaults(cjk, stroke=2), texts)
    stroke_rate, _ = measure("engine, red stroke 2", lambda t: engine.render(t, stroke_style).data, texts)
    shadow_style = parse_style({"font": "sans-sc", "shadow": {"offset_x": 3, "offset_y": 3, "blur": 2}})
    measure("engine, blurred shadow", lambda t: engine.render(t, shadow_style).data, texts)
    bg_style = parse_style({"font": "sans-sc", "background": "#fffbe6", "padding": 8})
    measure("engine, opaque background + padding", lambda t: engine.render(t, bg_style).data, texts)
    emoji_texts = [f"{t} {'🍵☕🥟🍜🍋'[i % 5]}" for i, t in enumerate(texts)]
    measure("engine, text + colour emoji", lambda t: engine.render(t, default).data, emoji_texts)
    print(f"  ratio stroke: engine/pillow = {stroke_rate / stroke_base:.2f}x")

    ok = eng_rate >= 4 * base_rate and eng_bytes <= base_bytes
    print(f"target (>= 4x Pillow defaults, PNG no larger): {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
