"""Render benchmark: Pillow's defaults vs this engine vs this engine's rasterisation alone.

2,000 deterministic mixed Chinese/English strings (street names from `bench/data` mixed with
English product words and prices) at 48 px, one core, one process, in one run:

  pillow-defaults  RGBA canvas sized by textbbox, ImageDraw.text, default PNG save
  engine           RenderEngine.render (layout, fallback, palette PNG fast path)
  raster           RenderEngine.rasterise (everything but encoding)

The Pillow baseline uses the CJK face (Noto Sans CJK SC) because it covers both scripts, so it
draws no tofu; the engine is measured with that same font and with the default `sans` chain
(Noto Sans for Latin, falling back to CJK per cluster). Other styles are measured too:
stroke, shadow and emoji take the RGBA path; an opaque background stays on the palette path.

Each round uses fresh engines, so glyph caches start cold as at the start of a job; fonts and
coverage tables are loaded before timing (a once-per-process cost, ~1 s).

Run: .venv/bin/python bench/bench_render.py [--count 2000] [--rounds 3] [--check]
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

from shared.render import RenderEngine, Style, parse_style  # noqa: E402
from shared.render.fonts import default_catalogue  # noqa: E402

WORDS = " ".join(
    (
        "Organic Green Tea Jasmine Oolong Premium Coffee Beans Fresh Milk Noodles Rice Soy Sauce",
        "Dumplings Spicy Chili Oil Sesame Honey Lemon Ginger Walnut Almond Cookies Chocolate Mango",
        "Juice Sparkling Water Classic Original Deluxe Family Pack Limited Edition Gift Box Large",
        "Small Medium Extra Hot Cold Brew Vanilla Strawberry Peach Pear Apple Orange Grape Melon",
    )
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
            shop = rng.choice(["店", "仓库", "旗舰店"])
            out.append(f"{name}{shop} ¥{rng.randint(1, 500)}.{rng.randint(0, 99):02d}")
        else:
            out.append(f"{words} · {name}")
    return out


def pillow_defaults(
    font: ImageFont.FreeTypeFont, stroke: int = 0, background: str | None = None, pad: int = 0
) -> Callable[[str], bytes]:
    """How a user writes it with Pillow: measure, allocate RGBA, draw, save with defaults."""

    def run(text: str) -> bytes:
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        box = probe.textbbox((pad, pad), text, font=font, stroke_width=stroke)
        size = (int(box[2]) + pad, int(box[3]) + pad)
        image = Image.new("RGBA", size, background) if background else Image.new("RGBA", size)
        ImageDraw.Draw(image).text(
            (pad, pad), text, fill="black", font=font, stroke_width=stroke, stroke_fill="red"
        )
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()

    return run


Mode = tuple[str, Callable[[str], object]]


def timed(fn: Callable[[str], object], texts: list[str]) -> tuple[float, int]:
    """(images per second, total bytes produced) for one pass over `texts`."""
    total = 0
    start = time.perf_counter()
    for text in texts:
        out = fn(text)
        if isinstance(out, bytes):
            total += len(out)
    return len(texts) / (time.perf_counter() - start), total


def run_modes(
    make_modes: Callable[[], list[Mode]], texts: list[str], rounds: int
) -> dict[str, tuple[float, int]]:
    """Best rate of each mode over `rounds` interleaved rounds.

    Modes run one after another inside each round, so background load on a shared machine hits
    all of them alike; each round builds fresh engines (cold glyph caches, as at the start of a
    job), and the best round is reported, the usual way to read a noisy timer.
    """
    best: dict[str, tuple[float, int]] = {}
    for _ in range(rounds):
        for label, fn in make_modes():
            rate, size = timed(fn, texts)
            if label not in best or rate > best[label][0]:
                best[label] = (rate, size)
    return best


def report(results: dict[str, tuple[float, int]], count: int) -> None:
    for label, (rate, size) in results.items():
        per = f"{size / count / 1024:7.2f} KiB/img" if size else ""
        print(f"  {label:<46} {rate:8.0f} img/s  {per}")


def fresh_engine(styles: list[Style]) -> RenderEngine:
    """A new engine with fonts and coverage loaded (a one-off per process), glyph caches cold."""
    engine = RenderEngine(default_catalogue())
    for s in styles:
        engine.render("预热 warm-up 0123", s)
    return engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 if the 4x target is missed")
    args = parser.parse_args()
    texts = strings(args.count)
    catalogue = default_catalogue()
    cjk = ImageFont.truetype(str(catalogue.path("sans-sc")), 48, index=catalogue.index("sans-sc"))
    same_font = parse_style({"font": "sans-sc", "size": 48})
    default = parse_style({"size": 48})
    pillow_defaults(cjk)("warm-up")

    # Pixel identity on a sample: the palette PNG decodes to the RGBA render of the same layout.
    checker = fresh_engine([same_font])
    for text in texts[:200]:
        fast = Image.open(io.BytesIO(checker.render(text, same_font).data)).convert("RGBA")
        slow = Image.open(io.BytesIO(checker.render_rgba(text, same_font).data)).convert("RGBA")
        if fast.tobytes() != slow.tobytes():
            print(f"pixel mismatch on {text!r}")
            return 1

    def single_colour() -> list[Mode]:
        engine, raster, chain = (fresh_engine([same_font, default]) for _ in range(3))
        return [
            (PILLOW, pillow_defaults(cjk)),
            (ENGINE, lambda t: engine.render(t, same_font).data),
            (RASTER, lambda t: raster.rasterise(t, same_font)),
            (CHAIN, lambda t: chain.render(t, default).data),
        ]

    print(f"{len(texts)} mixed Chinese/English strings at 48 px, one core, best of {args.rounds} rounds")
    print("single colour, transparent background (palette PNG fast path; 200 checked pixel-identical):")
    single = run_modes(single_colour, texts, args.rounds)
    report(single, len(texts))
    base_rate, base_bytes = single[PILLOW]
    eng_rate, eng_bytes = single[ENGINE]
    print(
        f"  ratios: engine/pillow = {eng_rate / base_rate:.2f}x, raster/pillow = "
        f"{single[RASTER][0] / base_rate:.2f}x, 'sans' chain/pillow = {single[CHAIN][0] / base_rate:.2f}x"
    )
    print(
        f"  PNG bytes: engine/pillow = {eng_bytes / base_bytes:.3f}, "
        f"'sans' chain/pillow = {single[CHAIN][1] / base_bytes:.3f}"
    )

    stroke_style = parse_style({"font": "sans-sc", "stroke_width": 2, "stroke_color": "red"})
    shadow_style = parse_style({"font": "sans-sc", "shadow": {"offset_x": 3, "offset_y": 3, "blur": 2}})
    bg_style = parse_style({"font": "sans-sc", "background": "#fffbe6", "padding": 8})
    emoji_texts = [f"{t} {'🍵☕🥟🍜🍋'[i % 5]}" for i, t in enumerate(texts)]

    def multi_colour() -> list[Mode]:
        engine = fresh_engine([stroke_style, shadow_style, bg_style, default])
        emoji = iter(emoji_texts * (args.rounds + 1))
        return [
            ("pillow defaults, red stroke 2", pillow_defaults(cjk, stroke=2)),
            ("engine, red stroke 2 (RGBA)", lambda t: engine.render(t, stroke_style).data),
            ("engine, blurred shadow (RGBA)", lambda t: engine.render(t, shadow_style).data),
            (
                "engine, text + colour emoji (RGBA, 'sans')",
                lambda t: engine.render(next(emoji), default).data,
            ),
            (
                "pillow defaults, opaque background + padding",
                pillow_defaults(cjk, background="#fffbe6", pad=8),
            ),
            ("engine, opaque background + padding (palette)", lambda t: engine.render(t, bg_style).data),
        ]

    print("other styles, best of 1 round:")
    multi = run_modes(multi_colour, texts, 1)
    report(multi, len(texts))
    stroke_ratio = multi["engine, red stroke 2 (RGBA)"][0] / multi["pillow defaults, red stroke 2"][0]
    bg_ratio = (
        multi["engine, opaque background + padding (palette)"][0]
        / multi["pillow defaults, opaque background + padding"][0]
    )
    print(f"  ratios: stroke engine/pillow = {stroke_ratio:.2f}x, background engine/pillow = {bg_ratio:.2f}x")

    ok = eng_rate >= 4 * base_rate and eng_bytes <= base_bytes
    print(f"target (>= 4x Pillow defaults, PNG no larger): {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


PILLOW = "pillow defaults (RGBA, ImageDraw.text, save)"
ENGINE = "engine, same font (sans-sc)"
RASTER = "engine rasterisation only (sans-sc)"
CHAIN = "engine, default 'sans' fallback chain"


if __name__ == "__main__":
    raise SystemExit(main())
