"""Style validation: every bad field is refused with its name; overrides use the same model."""

from __future__ import annotations

import pytest

from shared.contract.colors import parse_color
from shared.contract.errors import BadRequest
from shared.contract.style import padding_box
from shared.render import Style, merge_style, parse_style


def test_defaults() -> None:
    s = parse_style(None)
    assert s == Style()
    assert s.font == "sans" and s.size == 48 and s.color == "#000000"
    assert s.background == "transparent" and s.format == "png"


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        ("#abc", (0xAA, 0xBB, 0xCC, 255)),
        ("#abcd", (0xAA, 0xBB, 0xCC, 0xDD)),
        ("#102030", (16, 32, 48, 255)),
        ("#10203080", (16, 32, 48, 128)),
        ("rgb(1, 2, 3)", (1, 2, 3, 255)),
        ("rgba(1,2,3,0.5)", (1, 2, 3, 128)),
        ("rgba(100%, 0%, 0%, 50%)", (255, 0, 0, 128)),
        ("rgb(1 2 3 / 0.25)", (1, 2, 3, 64)),
        ("rebeccapurple", (102, 51, 153, 255)),
        ("RED", (255, 0, 0, 255)),
        ("transparent", (0, 0, 0, 0)),
    ],
)
def test_colour_formats(text: str, rgba: tuple[int, int, int, int]) -> None:
    assert parse_color(text) == rgba
    assert parse_style({"color": text}).color == text


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"font": "comic-sans"}, "style.font"),
        ({"font": "/etc/passwd"}, "style.font"),
        ({"font": 3}, "style.font"),
        ({"size": 0}, "style.size"),
        ({"size": 5000}, "style.size"),
        ({"size": "big"}, "style.size"),
        ({"weight": 700}, "style.weight"),
        ({"axes": {"wght": 500}}, "style.axes"),
        ({"language": "not a tag!"}, "style.language"),
        ({"color": "#12"}, "style.color"),
        ({"color": "rgb(300,0,0)"}, "style.color"),
        ({"color": "rgba(0,0,0,2)"}, "style.color"),
        ({"color": "blurple"}, "style.color"),
        ({"background": "#xyzxyz"}, "style.background"),
        ({"padding": -1}, "style.padding"),
        ({"padding": [1, 2, 3]}, "style.padding"),
        ({"padding": [1, 2, 3, 4, 5]}, "style.padding"),
        ({"width": 0}, "style.width"),
        ({"width": 10, "padding": 5}, "style.width"),
        ({"height": 100000}, "style.height"),
        ({"height": 8, "padding": [4, 0]}, "style.height"),
        ({"max_width": -5}, "style.max_width"),
        ({"max_height": "tall"}, "style.max_height"),
        ({"align": "middle"}, "style.align"),
        ({"valign": "center"}, "style.valign"),
        ({"overflow": "hidden"}, "style.overflow"),
        ({"line_spacing": 0.1}, "style.line_spacing"),
        ({"letter_spacing": 9999}, "style.letter_spacing"),
        ({"auto_fit": True}, "style.auto_fit"),
        ({"auto_fit": "maybe"}, "style.auto_fit"),
        ({"auto_fit_grow": []}, "style.auto_fit_grow"),
        ({"auto_fit": True, "max_width": 100, "min_size": 60}, "style.min_size"),
        ({"min_size": 0}, "style.min_size"),
        ({"stroke_width": -1}, "style.stroke_width"),
        ({"stroke_color": "nope"}, "style.stroke_color"),
        ({"shadow": "yes"}, "style.shadow"),
        ({"shadow": {"color": "bad"}}, "style.shadow.color"),
        ({"shadow": {"blur": -1}}, "style.shadow.blur"),
        ({"shadow": {"offset_x": 9999}}, "style.shadow.offset_x"),
        ({"shadow": {"offset_y": "down"}}, "style.shadow.offset_y"),
        ({"shadow": {"spread": 3}}, "style.shadow.spread"),
        ({"orientation": "diagonal"}, "style.orientation"),
        ({"direction": "up"}, "style.direction"),
        ({"format": "gif"}, "style.format"),
        ({"dpi": 0}, "style.dpi"),
        ({"webp_lossless": "sometimes"}, "style.webp_lossless"),
        ({"webp_quality": 101}, "style.webp_quality"),
        ({"strict": "very"}, "style.strict"),
        ({"control_chars": "keep"}, "style.control_chars"),
        ({"colour": "red"}, "style.colour"),
    ],
)
def test_bad_field_named(raw: dict[str, object], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_style(raw)
    assert info.value.field == field, info.value
    assert info.value.code == 400
    assert info.value.message


def test_transparent_shadow_colour_is_valid() -> None:
    assert parse_style({"shadow": {"color": "#0000"}}).shadow is not None


def test_not_an_object() -> None:
    with pytest.raises(BadRequest) as info:
        parse_style(["red"], "job.style")
    assert info.value.field == "job.style"


def test_field_prefix() -> None:
    with pytest.raises(BadRequest) as info:
        parse_style({"color": "nope"}, "items[3].style")
    assert info.value.field == "items[3].style.color"


def test_string_values_from_csv_are_coerced() -> None:
    s = parse_style({"size": "32", "auto_fit": "true", "max_width": "200"})
    assert (s.size, s.auto_fit, s.max_width) == (32, True, 200)


def test_padding_forms() -> None:
    assert padding_box(parse_style({"padding": 4}).padding) == (4, 4, 4, 4)
    assert padding_box(parse_style({"padding": [4]}).padding) == (4, 4, 4, 4)
    assert padding_box(parse_style({"padding": [1, 2]}).padding) == (1, 2, 1, 2)
    assert padding_box(parse_style({"padding": [1, 2, 3, 4]}).padding) == (1, 2, 3, 4)


def test_merge_overrides() -> None:
    base = parse_style({"color": "red", "size": 30, "shadow": {"blur": 2}})
    merged = merge_style(base, {"color": "#00ff00", "shadow": {"offset_x": 5}})
    assert merged.color == "#00ff00" and merged.size == 30
    assert merged.shadow is not None and merged.shadow.blur == 2 and merged.shadow.offset_x == 5
    assert merge_style(base, {}) is base
    with pytest.raises(BadRequest) as info:
        merge_style(base, {"font": "nope"})
    assert info.value.field == "style.font"
    with pytest.raises(BadRequest) as info:
        merge_style(base, {"size": -3}, field_prefix="row[7]")
    assert info.value.field == "row[7].size"


def test_style_round_trips_as_json() -> None:
    import msgspec

    s = parse_style({"color": "red", "padding": [1, 2], "shadow": {"blur": 1.5}})
    assert parse_style(msgspec.json.decode(msgspec.json.encode(s))) == s
