"""Text hygiene, limits, line breaking (CJK kinsoku, Latin), bidi order and fallback runs."""

from __future__ import annotations

import itertools

import pytest
from PIL import Image

from shared.contract.errors import RenderError
from shared.render import RenderEngine, Style
from shared.render.hygiene import Limits, clean_text
from shared.render.segment import break_opportunities

from .helpers import alpha_bbox, decode, line_crops, style


def lines_of(engine: RenderEngine, text: str, s: Style) -> list[str]:
    """The text of each rendered line (pieces grouped by baseline, in visual order)."""
    rows: dict[int, list[tuple[int, str]]] = {}
    for p in engine.placements(text, s):
        rows.setdefault(p.y, []).append((p.x, p.text))
    return ["".join(t for _, t in sorted(row)).strip() for _, row in sorted(rows.items())]


# --- hygiene -----------------------------------------------------------------------------------


def test_nfc_and_line_ends() -> None:
    limits = Limits()
    assert clean_text("Cafe\u0301\r\nline\rthree\tx", "strip", limits) == "Café\nline\nthree x"
    # UAX #14's other mandatory breaks: VT, FF, NEL, LINE and PARAGRAPH SEPARATOR.
    assert clean_text("a\u000bb\u000cc\u0085d\u2028e\u2029f", "strip", limits) == "a\nb\nc\nd\ne\nf"


def test_controls_stripped_or_refused() -> None:
    limits = Limits()
    dirty = "a\u0000b\u202ec\u200bd\u2066e\ufeff\u0007f"
    assert clean_text(dirty, "strip", limits) == "abcdef"
    with pytest.raises(RenderError, match="U\\+202E"):
        clean_text(dirty, "refuse", limits)


def test_joiners_kept() -> None:
    family = "👨\u200d👩\u200d👧"
    assert clean_text(family, "strip", Limits()) == family
    assert clean_text("می\u200cخواهم", "strip", Limits()) == "می\u200cخواهم"


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "\n\n"])
def test_empty_after_hygiene(engine: RenderEngine, text: str) -> None:
    with pytest.raises(RenderError, match="empty"):
        engine.render(text, style())


def test_limits_fail_before_allocating(engine: RenderEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    small = RenderEngine(engine.catalogue, limits=Limits(max_chars=20, max_lines=3, max_pixels=200_000))
    allocated: list[tuple[int, int]] = []
    real_new = Image.new

    def spy(mode: str, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        allocated.append(size)
        return real_new(mode, size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "new", spy)
    with pytest.raises(RenderError, match="characters"):
        small.render("x" * 21, style())
    with pytest.raises(RenderError, match="lines"):
        small.render("a\nb\nc\nd", style())
    with pytest.raises(RenderError, match="wraps to"):
        small.render("一二三四五六七八九十", style(max_width=60))
    with pytest.raises(RenderError, match="limit"):
        small.render("big", style(size=400))
    with pytest.raises(RenderError, match="limit"):
        small.render("big", style(width=1000, height=1000))
    with pytest.raises(RenderError, match="limit"):
        RenderEngine(engine.catalogue).render("x", style(width=16384, height=16384))
    assert allocated == []


# --- line breaking -----------------------------------------------------------------------------


def test_cjk_breaks_between_characters(engine: RenderEngine) -> None:
    text = "东华门街道景山街道交道口街道安定门街道"
    lines = lines_of(engine, text, style(max_width=48 * 5 + 4))
    assert "".join(lines) == text
    assert all(len(line) == 5 for line in lines[:-1])


@pytest.mark.parametrize("closing", list("。，、）」』！？"))
def test_kinsoku_no_closing_punctuation_at_line_start(engine: RenderEngine, closing: str) -> None:
    # Exactly four characters fit; the fifth is closing punctuation and may not start a line.
    text = f"一二三四{closing}五六七"
    lines = lines_of(engine, text, style(max_width=48 * 4 + 4))
    assert "".join(lines) == text
    assert all(not line.startswith(closing) for line in lines)
    assert lines[0] == "一二三"  # the last character moves down with the punctuation


@pytest.mark.parametrize("opening", list("（「『【《"))
def test_kinsoku_no_opening_punctuation_at_line_end(engine: RenderEngine, opening: str) -> None:
    text = f"一二三{opening}四五六七"
    lines = lines_of(engine, text, style(max_width=48 * 4 + 4))
    assert "".join(lines) == text
    assert all(not line.endswith(opening) for line in lines)


def test_latin_breaks_at_spaces_and_hyphens(engine: RenderEngine) -> None:
    lines = lines_of(engine, "state-of-the-art tea leaves", style(size=20, max_width=110))
    assert all(" " not in line.strip() or len(line) < 20 for line in lines)
    assert any(line.endswith("-") for line in lines)
    assert "".join(lines).replace(" ", "") == "state-of-the-arttealeaves"


def test_long_word_is_split(engine: RenderEngine) -> None:
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    out = engine.render(word, style(max_width=200))
    lines = lines_of(engine, word, style(max_width=200))
    assert out.width <= 200 and len(lines) > 3 and "".join(lines) == word


@pytest.mark.parametrize(
    "text",
    [
        "ภาษาไทยเป็นภาษาราชการของประเทศไทยและเป็นภาษาที่ใช้ในการสื่อสาร",  # Thai
        "ພາສາລາວເປັນພາສາທາງການຂອງປະເທດລາວ",  # Lao
        "ភាសាខ្មែរជាភាសាផ្លូវការរបស់ប្រទេសកម្ពុជា",  # Khmer
        "မြန်မာဘာသာစကားသည်မြန်မာနိုင်ငံ၏ရုံးသုံးဘာသာစကားဖြစ်သည်",  # Myanmar
    ],
)
def test_scripts_without_spaces_wrap_between_words(engine: RenderEngine, text: str) -> None:
    """Thai, Lao, Khmer and Myanmar write no spaces: lines end where the dictionary finds a
    word boundary, never inside a word, and the pixels show one band of ink per line."""
    cuts = sorted(break_opportunities(text))
    words = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    # As narrow as possible while the longest word still fits on a line.
    limit = max(engine.render(word, style(size=28)).width for word in words) + 4
    s = style(size=28, max_width=limit)
    lines = lines_of(engine, text, s)
    assert len(lines) >= 3 and "".join(lines) == text
    ends = [len("".join(lines[: i + 1])) for i in range(len(lines) - 1)]
    assert set(ends) <= set(cuts), (lines, ends)
    image = decode(engine.render(text, s))
    assert image.width <= limit + 28
    assert all(crop.getbbox() is not None for crop in line_crops(engine, text, s))


@pytest.mark.parametrize("text", ["Organic Green Tea 有机绿茶 ¥12.50", "مرحبا 123 שלום abc", "नमस्ते दुनिया"])
def test_unwrapped_label_equals_wrapped_one_that_fits(engine: RenderEngine, text: str) -> None:
    """Without a width limit the engine skips UAX #14 (nothing can wrap); a line that fits a
    limit draws the same pixels, since words without inner break opportunities are the same
    pieces either way (Thai words inside a space-delimited run are not: there the two may differ
    by the rounding of a pen position)."""
    free = decode(engine.render(text, style(size=32)))
    fitted = decode(engine.render(text, style(size=32, max_width=4000)))
    assert free.size == fitted.size and free.tobytes() == fitted.tobytes()


def test_mixed_latin_and_chinese_wrap(engine: RenderEngine) -> None:
    text = "Organic Green Tea 有机绿茶，产自浙江杭州西湖龙井村。"
    lines = lines_of(engine, text, style(max_width=300))
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert not any(line.startswith(("，", "。")) for line in lines)
    assert not any(line in ("Orga", "Gree") for line in lines)  # words stay whole


def test_explicit_newlines(engine: RenderEngine) -> None:
    assert lines_of(engine, "one\ntwo\n三", style()) == ["one", "two", "三"]


# --- bidi and fallback runs --------------------------------------------------------------------


def test_bidi_visual_order(engine: RenderEngine) -> None:
    placed = engine.placements("abc שלום def", style())
    xs = {p.text: p.x for p in placed}
    assert xs["abc"] < xs["שלום"] < xs["def"]
    rtl = engine.placements("שלום abc עולם", style())
    xs = {p.text: p.x for p in rtl}
    assert xs["עולם"] < xs["abc"] < xs["שלום"]  # RTL paragraph: first word at the right


def test_numbers_inside_rtl_stay_ltr(engine: RenderEngine) -> None:
    placed = engine.placements("مرحبا 123 456", style())
    xs = {p.text: p.x for p in placed}
    assert xs["456"] < xs["123"] < xs["مرحبا"]


def _drawn_like(engine: RenderEngine, full: Image.Image, x: int, y: int, text: str, s: Style) -> bool:
    """Does `full` show exactly `text` (rendered alone) with its pen at (x, y)?"""
    alone = decode(engine.render(text, s)).getchannel("A")
    (pen,) = engine.placements(text, s)
    left, top = x - pen.x, y - pen.y
    crop = full.getchannel("A").crop((left, top, left + alone.width, top + alone.height))
    return crop.tobytes() == alone.tobytes()


def test_hebrew_price_keeps_numbers_in_logical_order(engine: RenderEngine) -> None:
    """UAX #9 W4/W5 (separators and currency signs join numbers), N0 (brackets), I2: the
    numbers read left to right, and the sentence right to left."""
    s = style(size=48)
    text = "מחיר: 1,000 ₪ (50%) $100"
    placed = engine.placements(text, s)
    left_to_right = [p.text for p in sorted(placed, key=lambda p: p.x)]
    assert left_to_right == ["$100", ")", "50%", "(", "₪", "1,000", ":", "מחיר"]
    directions = {p.text: p.direction for p in placed}
    assert directions["1,000"] == directions["50%"] == directions["$100"] == "ltr"
    assert directions["מחיר"] == "rtl"
    full = decode(engine.render(text, s))
    at = {p.text: (p.x, p.y) for p in placed}
    for number in ("1,000", "50%", "$100"):
        assert _drawn_like(engine, full, *at[number], number, s), number
    # The check can fail: the reversed digits are not what is drawn there.
    assert not _drawn_like(engine, full, *at["1,000"], "000,1", s)
    # Brackets are mirrored in the right-to-left run: the image reads "(50%)" like the text.
    assert _drawn_like(engine, full, at[")"][0], at[")"][1], "(", s)


def test_arabic_is_shaped(engine: RenderEngine) -> None:
    """Joined Arabic connects its letters: سلام breaks only after alef (which never joins to
    the left), so its ink has one gap where the isolated letters have three; and it is narrower."""
    joined = decode(engine.render("سلام", style()))
    isolated = decode(engine.render("س ل ا م", style()))
    assert (_ink_gaps(joined), _ink_gaps(isolated)) == (1, 3)
    joined_ink, isolated_ink = alpha_bbox(joined), alpha_bbox(isolated)
    assert joined_ink is not None and isolated_ink is not None
    assert joined_ink[2] - joined_ink[0] < (isolated_ink[2] - isolated_ink[0]) * 0.8


def _ink_gaps(image: Image.Image) -> int:
    """How many runs of empty columns lie between inked ones."""
    alpha = image.getchannel("A")
    inked = [x for x in range(image.width) if alpha.crop((x, 0, x + 1, image.height)).getbbox()]
    return sum(1 for a, b in itertools.pairwise(inked) if b - a > 1)


def test_fallback_chain_per_cluster(engine: RenderEngine) -> None:
    fonts = {p.text: p.font for p in engine.placements("Tea 茶 😀 שלום नमस्ते", style())}
    assert fonts["Tea"] == "sans"
    assert fonts["茶"] == "sans-sc"
    assert fonts["😀"] == "emoji"
    assert fonts["שלום"] == "hebrew"
    assert fonts["नमस्ते"] == "devanagari"
    jp = {p.text: p.font for p in engine.placements("Tea 茶", style(font="sans-jp"))}
    assert jp["茶"] == "sans-jp"


def test_cjk_punctuation_follows_cjk_font(engine: RenderEngine) -> None:
    fonts = [p.font for p in engine.placements("中文，123。", style())]
    assert set(fonts) == {"sans-sc"}
