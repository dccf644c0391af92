"""Render benchmark: the engine against Pillow's defaults for the same effect, in one run.

2,000 deterministic mixed Chinese/English strings (street names from `bench/data` mixed with
English product words and prices) at 48 px, one core, one process. Every ratio is against a
Pillow baseline timed in the same run, modes interleaved within each round (best of rounds):

  palette path   one colour on transparent: Pillow (RGBA canvas from textbbox, ImageDraw.text,
                 default PNG save) vs the engine warmed as a render child warms it
                 (`RenderEngine.warm` with 16 other items of the job), plus the engine cold,
                 its rasterisation alone, the default `sans` chain and an opaque background
  RGBA path      red stroke, blurred shadow, colour emoji: each against Pillow doing the same
                 effect its usual way (stroke_fill; a blurred shadow layer; the emoji font at
                 its 109 px strike, scaled and pasted)
  large canvas   4000x4000 with auto-fit, in a child process each (peak RSS): the engine
                 fitting and wrapping ~4,500 characters vs Pillow drawing the same characters in
                 as many lines at the fitted size with multiline_text and saving with defaults

Before timing, every palette-path image of the run is decoded and compared with the RGBA
compositor's image of the same item (they must be byte-identical).

Run: .venv/bin/python bench/bench_render.py [--count 2000] [--rounds 3] [--check]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
EMOJI = "🍵☕🥟🍜🍋"
WARM_SAMPLES = 16  # items a render child warms its engine with (the job's first ones)
BLOCK = 100  # items a mode renders before the next mode takes its turn
SMALLEST_COUNT = 200
# Floors (--check): each is a ratio against Pillow in the same run.
PALETTE_SPEED, PALETTE_BYTES = 8.0, 0.9
RGBA_SPEED, RGBA_BYTES = 3.0, 1.0
LARGE_TIME = 2.0


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


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def pillow_text(
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
        return _png(image)

    return run


def pillow_shadow(font: ImageFont.FreeTypeFont, dx: int, dy: int, blur: float) -> Callable[[str], bytes]:
    """A drop shadow the usual Pillow way: text in the shadow colour, blurred, text on top."""
    spread = math.ceil(blur * 3)

    def run(text: str) -> bytes:
        box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), text, font=font)
        image = Image.new("RGBA", (int(box[2]) + dx + 2 * spread, int(box[3]) + dy + 2 * spread))
        ImageDraw.Draw(image).text((spread + dx, spread + dy), text, fill="#00000080", font=font)
        image = image.filter(ImageFilter.GaussianBlur(blur))
        ImageDraw.Draw(image).text((spread, spread), text, fill="black", font=font)
        return _png(image)

    return run


def pillow_emoji(font: ImageFont.FreeTypeFont, emoji_font: ImageFont.FreeTypeFont) -> Callable[[str], bytes]:
    """Text then one colour emoji: Pillow has no fallback, so the emoji is drawn with the emoji
    font at its only size (109 px), scaled to the text size and pasted after the text."""
    scale = font.size / emoji_font.size

    def run(text: str) -> bytes:
        body, emoji = text[:-1], text[-1]
        box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), body, font=font)
        glyph = Image.new("RGBA", (160, 160))
        ImageDraw.Draw(glyph).text((0, 0), emoji, font=emoji_font, embedded_color=True)
        glyph = glyph.crop(glyph.getbbox())
        size = (round(glyph.width * scale), round(glyph.height * scale))
        glyph = glyph.resize(size, Image.Resampling.LANCZOS)
        width = int(box[2]) + glyph.width
        image = Image.new("RGBA", (width, max(int(box[3]), glyph.height)))
        ImageDraw.Draw(image).text((0, 0), body, fill="black", font=font)
        image.alpha_composite(glyph, (int(box[2]), 0))
        return _png(image)

    return run


Mode = tuple[str, Callable[[str], object]]


def run_modes(
    make_modes: Callable[[], list[Mode]], texts: list[str], rounds: int
) -> dict[str, tuple[float, int]]:
    """(images per CPU second, total bytes) of each mode.

    Time is this process's CPU time, so other work on a shared machine does not count against
    a mode. Modes take turns in blocks of BLOCK items (their order rotating), so slower spells
    hit all of them alike; each round builds its engines afresh, so a block finds the same
    cache state in every round, and each block's fastest round is kept.
    """
    best: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        modes = make_modes()
        for n, start in enumerate(range(0, len(texts), BLOCK)):
            block = texts[start : start + BLOCK]
            for label, fn in modes[n % len(modes) :] + modes[: n % len(modes)]:
                total = 0
                began = time.process_time()
                for text in block:
                    out = fn(text)
                    if isinstance(out, bytes):
                        total += len(out)
                spent = time.process_time() - began
                times = best.setdefault(label, [])
                if len(times) <= n:
                    times.append(spent)
                    sizes[label] = sizes.get(label, 0) + total
                else:
                    times[n] = min(times[n], spent)
    return {label: (len(texts) / sum(times), sizes[label]) for label, times in best.items()}


def report(results: dict[str, tuple[float, int]], count: int, base: str) -> None:
    rate0, bytes0 = results[base]
    for label, (rate, size) in results.items():
        per = f"{size / count / 1024:6.2f} KiB/img  bytes {size / bytes0:5.3f}x" if size else ""
        print(f"  {label:<46} {rate:7.0f} img/CPU-s {rate / rate0:6.2f}x  {per}")


def engine_for(styles: list[Style], warm: list[str] | None, *, smallest: bool = False) -> RenderEngine:
    """A new engine with fonts and coverage loaded (a once-per-process cost, ~1 s); its glyph
    caches are cold, or warmed with `warm` as the renderer child warms it at start."""
    engine = RenderEngine(default_catalogue(), png_effort="smallest" if smallest else "fast")
    for s in styles:
        engine.render("预热 warm-up", s)
        if warm is not None:
            engine.warm(s, warm)
    return engine


def effect_modes(
    name: str, style: Style, baseline: Callable[[str], bytes], samples: list[str]
) -> Callable[[], list[Mode]]:
    def modes() -> list[Mode]:
        engine = engine_for([style], samples)
        return [(f"pillow, {name}", baseline), (f"engine, {name}", lambda t: engine.render(t, style).data)]

    return modes


def exact(engine: RenderEngine, texts: list[str], style: Style) -> int:
    """How many palette PNGs differ from the compositor's RGBA image of the same item."""
    bad = 0
    for text in texts:
        with Image.open(io.BytesIO(engine.render(text, style).data)) as decoded:
            pixels = decoded.convert("RGBA").tobytes()
        bad += pixels != engine.rasterise(text, style, force_rgba=True).tobytes()
    return bad


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS and return it (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def large_child(side: int, who: str) -> None:
    """One large render in this process; prints seconds, bytes and peak RSS growth as JSON."""
    texts = strings(400)
    text = " ".join(texts)[:4500]
    style = parse_style(
        {"font": "sans-sc", "width": side, "height": side, "size": 400, "min_size": 4, "auto_fit": True}
    )
    engine = engine_for([parse_style({"font": "sans-sc"})], None)
    fitted = engine.placements(text, style)
    size, lines = fitted[0].size, len({p.y for p in fitted})
    catalogue = default_catalogue()
    font = ImageFont.truetype(str(catalogue.path("sans-sc")), size, index=catalogue.index("sans-sc"))
    per_line = math.ceil(len(text) / lines)
    wrapped = "\n".join(text[i : i + per_line] for i in range(0, len(text), per_line))
    engine = engine_for([parse_style({"font": "sans-sc"})], None)  # cold caches for the timed run
    del fitted
    rss0 = _reset_peak_rss()
    start = time.process_time()
    if who == "engine":
        data = engine.render(text, style).data
    else:
        image = Image.new("RGBA", (side, side))
        ImageDraw.Draw(image).multiline_text((0, 0), wrapped, font=font, fill="black")
        data = _png(image)
    seconds = time.process_time() - start
    peak = _status_kib("VmHWM") - rss0
    out = {"seconds": seconds, "bytes": len(data), "peak_kib": peak, "size": size, "lines": lines}
    print(json.dumps(out))


def large(side: int, rounds: int) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for who in ("pillow", "engine"):
            cmd = [sys.executable, __file__, "--large-child", who, "--large-side", str(side)]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            if who not in best or out["seconds"] < best[who]["seconds"]:
                best[who] = out
    return best


class Run:
    """What every section of one run shares: the strings, the warm-up samples, fonts, rounds."""

    def __init__(self, count: int, rounds: int) -> None:
        every = strings(count + WARM_SAMPLES)
        self.texts, self.samples = every[:count], every[count:]
        self.rounds = rounds
        catalogue = default_catalogue()
        self.cjk = ImageFont.truetype(str(catalogue.path("sans-sc")), 48, index=catalogue.index("sans-sc"))
        self.emoji_font = ImageFont.truetype(str(catalogue.path("emoji")), 109)
        self.same = parse_style({"font": "sans-sc", "size": 48})
        self.failures: list[str] = []


def palette_section(run: Run) -> None:
    same, chain = run.same, parse_style({"size": 48})
    opaque = parse_style({"font": "sans-sc", "background": "#fffbe6", "padding": 8})
    checker = engine_for([same], None)
    mismatched = sum(exact(checker, run.texts, s) for s in (same, chain, opaque))
    print(f"{len(run.texts)} mixed Chinese/English strings at 48 px, one core, best of {run.rounds} rounds")
    print(f"palette PNGs differing from the RGBA composite: {mismatched} of {3 * len(run.texts)}")
    if mismatched:
        run.failures.append("palette images not pixel-identical")

    def modes() -> list[Mode]:
        warm, cold, raster, chained, bg = (
            engine_for([same], run.samples),
            engine_for([same], None),
            engine_for([same], run.samples),
            engine_for([chain], run.samples),
            engine_for([opaque], run.samples),
        )
        return [
            (PILLOW, pillow_text(run.cjk)),
            (ENGINE, lambda t: warm.render(t, same).data),
            ("engine, same font, cold caches", lambda t: cold.render(t, same).data),
            ("engine rasterisation only (warmed)", lambda t: raster.rasterise(t, same)),
            ("engine, default 'sans' chain (warmed)", lambda t: chained.render(t, chain).data),
            (PILLOW_BG, pillow_text(run.cjk, background="#fffbe6", pad=8)),
            (ENGINE_BG, lambda t: bg.render(t, opaque).data),
        ]

    print("palette path (one colour):")
    got = run_modes(modes, run.texts, run.rounds)
    report(got, len(run.texts), PILLOW)
    speed, size = (got[ENGINE][i] / got[PILLOW][i] for i in (0, 1))
    bg_speed, bg_size = (got[ENGINE_BG][i] / got[PILLOW_BG][i] for i in (0, 1))
    print(f"  opaque background: engine/pillow with background = {bg_speed:.2f}x, bytes {bg_size:.3f}x")
    print(
        f"  floor: engine >= {PALETTE_SPEED}x Pillow's rate ({speed:.2f}x), "
        f"bytes <= {PALETTE_BYTES}x ({size:.3f}x)"
    )
    if speed < PALETTE_SPEED or size > PALETTE_BYTES:
        run.failures.append("palette path")


def rgba_section(run: Run) -> None:
    effects = {
        "red stroke 2": (
            parse_style({"font": "sans-sc", "stroke_width": 2, "stroke_color": "red"}),
            pillow_text(run.cjk, stroke=2),
        ),
        "blurred shadow": (
            parse_style({"font": "sans-sc", "shadow": {"offset_x": 3, "offset_y": 3, "blur": 2}}),
            pillow_shadow(run.cjk, 3, 3, 2),
        ),
        "colour emoji": (parse_style({"font": "sans-sc"}), pillow_emoji(run.cjk, run.emoji_font)),
    }
    emoji_texts = [f"{t} {EMOJI[i % len(EMOJI)]}" for i, t in enumerate(run.texts)]
    print("RGBA path (multi-colour effects), each against Pillow doing the same effect:")
    for name, (style, baseline) in effects.items():
        inputs = emoji_texts if name == "colour emoji" else run.texts
        got = run_modes(effect_modes(name, style, baseline, run.samples), inputs, run.rounds)
        report(got, len(inputs), f"pillow, {name}")
        speed, size = (got[f"engine, {name}"][i] / got[f"pillow, {name}"][i] for i in (0, 1))
        if speed < RGBA_SPEED or size > RGBA_BYTES:
            run.failures.append(name)
    print(f"  floor: each effect >= {RGBA_SPEED}x Pillow's rate, bytes <= {RGBA_BYTES}x")


def smallest_section(run: Run) -> None:
    subset = run.texts[:SMALLEST_COUNT]

    def modes() -> list[Mode]:
        fast, small = engine_for([run.same], run.samples), engine_for([run.same], run.samples, smallest=True)
        return [
            ("engine, fast (default)", lambda t: fast.render(t, run.same).data),
            ("engine, png_effort='smallest' (oxipng)", lambda t: small.render(t, run.same).data),
        ]

    print(f"smallest-files setting, first {len(subset)} strings (no floor; oxipng may use every core):")
    report(run_modes(modes, subset, 1), len(subset), "engine, fast (default)")


def large_section(run: Run, side: int) -> None:
    big = large(side, max(1, run.rounds - 1))
    fit = big["engine"]
    print(f"large canvas: {side}x{side}, auto-fit to {fit['size']} px, {fit['lines']} lines (CPU seconds):")
    for who in ("pillow", "engine"):
        r = big[who]
        print(
            f"  {who:<8} {r['seconds']:6.2f} s  {r['bytes'] / 1024:8.0f} KiB  "
            f"peak RSS +{r['peak_kib'] / 1024:.0f} MiB"
        )
    ratio = big["engine"]["seconds"] / big["pillow"]["seconds"]
    print(f"  floor: engine time <= {LARGE_TIME}x Pillow's ({ratio:.2f}x)")
    if ratio > LARGE_TIME:
        run.failures.append("large canvas")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-side", type=int, default=4000)
    parser.add_argument("--large-child", choices=["engine", "pillow"], help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="exit 1 if any floor is missed")
    args = parser.parse_args()
    if args.large_child:
        large_child(args.large_side, args.large_child)
        return 0
    run = Run(args.count, args.rounds)
    palette_section(run)
    rgba_section(run)
    smallest_section(run)
    large_section(run, args.large_side)
    print("floors: " + ("all met" if not run.failures else "MISSED: " + ", ".join(run.failures)))
    return 1 if run.failures and args.check else 0


PILLOW = "pillow defaults (RGBA, ImageDraw.text, save)"
ENGINE = "engine, same font (sans-sc), warmed"
PILLOW_BG = "pillow, opaque background + padding"
ENGINE_BG = "engine, opaque background + padding"


if __name__ == "__main__":
    raise SystemExit(main())
