"""Output names: the template language, sanitising and deterministic collision handling."""

from __future__ import annotations

import pytest

from shared.contract.errors import BadRequest
from shared.storage.naming import MAX_NAME_BYTES, NameTemplate, is_safe_file_name, sanitize_name

# --- the template language ----------------------------------------------------------------------


def test_index() -> None:
    template = NameTemplate("{index}")
    assert [template.render(i) for i in (0, 7, 1234)] == ["0", "7", "1234"]


@pytest.mark.parametrize(
    ("spec", "index", "expected"), [("06", 42, "000042"), ("3", 7, "007"), ("02", 123, "123")]
)
def test_zero_padded_index(spec: str, index: int, expected: str) -> None:
    assert NameTemplate(f"img-{{index:{spec}}}").render(index) == f"img-{expected}"


def test_row_number() -> None:
    # {row} is the source's own row number, {index} the item's position: they differ by the
    # header (and blank lines) of a file.
    template = NameTemplate("{row}")
    assert [template.render(i, i + 2) for i in (0, 7)] == ["2", "9"]
    assert NameTemplate("r{row:05}-i{index}").render(3, 5) == "r00005-i3"


def test_row_column() -> None:
    template = NameTemplate("{row[sku]}_{row[名称]}")
    assert template.columns == ["sku", "名称"]
    assert template.render(3, 5, {"sku": "A-1", "名称": "苹果"}) == "A-1_苹果"


def test_index_and_row_together() -> None:
    template = NameTemplate("{index:04}-{row[name]}")
    assert template.render(5, 7, {"name": "Widget"}) == "0005-Widget"


def test_missing_column_value_falls_back_to_the_row_number() -> None:
    template = NameTemplate("{row[name]}")
    assert template.render(9, 11, {"other": "x"}) == "11"
    assert template.render(10, 12, None) == "12"


@pytest.mark.parametrize(
    "bad",
    [
        "{index.__class__}",
        "{index.__class__.__mro__}",
        "{row.__class__}",
        "{row[name].upper}",
        "{0}",
        "{}",
        "{name}",
        "{index!r}",
        "{index:>10}",
        "{index:x}",
        "{row[a]}{",
        "{index}}",
        "{{index}}",
        "{row[{index}]}",
    ],
)
def test_other_placeholders_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest) as err:
        NameTemplate(bad)
    assert err.value.field == "name_template"


@pytest.mark.parametrize("bad", ["", "output", "image.png", "same-name-for-all"])
def test_template_without_placeholder_is_refused(bad: str) -> None:
    with pytest.raises(BadRequest) as err:
        NameTemplate(bad)
    assert err.value.field == "name_template"


def test_field_name_can_be_chosen() -> None:
    with pytest.raises(BadRequest) as err:
        NameTemplate("x", field="csv.name_template")
    assert err.value.field == "csv.name_template"


# --- sanitising ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["..", "../../etc/passwd", "a/b", "a\\b", "..\\..\\win.ini", "/abs", "./x"])
def test_values_cannot_make_paths(value: str) -> None:
    name = NameTemplate("{row[v]}").render(1, 3, {"v": value})
    assert name
    assert "/" not in name and "\\" not in name
    assert name not in (".", "..")
    assert not name.startswith(".")


def test_dot_dot_alone_falls_back_to_the_row_number() -> None:
    assert NameTemplate("{row[v]}").render(17, 19, {"v": ".."}) == "19"


@pytest.mark.parametrize("value", ["", "   ", "...", " . . "])
def test_empty_after_sanitising_falls_back_to_the_row_number(value: str) -> None:
    assert NameTemplate("{row[v]}").render(4, 6, {"v": value}) == "6"


def test_control_and_illegal_characters_are_replaced() -> None:
    raw = 'a\x00b\x1fc\x7fd\x85e\nf\tg:h*i?j"k<l>m|n'
    name = sanitize_name(raw)
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in name)
    assert not set(name) & set('/\\:*?"<>|')
    assert [ch for ch in name if ch.isalpha()] == list("abcdefghijklmn")


@pytest.mark.parametrize("reserved", ["CON", "con", "Nul", "aux", "PRN", "com1", "LPT9", "con.tar.gz"])
def test_windows_reserved_names_are_changed(reserved: str) -> None:
    name = sanitize_name(reserved)
    assert name.split(".")[0].lower() != reserved.split(".")[0].lower()
    assert reserved.lower() in name.lower()


@pytest.mark.parametrize("ordinary", ["console", "auxiliary", "com", "lpt", "nullable", "conference"])
def test_names_that_merely_start_like_reserved_ones_are_kept(ordinary: str) -> None:
    assert sanitize_name(ordinary) == ordinary


def test_unicode_is_kept_and_normalised() -> None:
    assert sanitize_name("北京烤鸭 Peking duck") == "北京烤鸭 Peking duck"
    assert sanitize_name("cafe\u0301") == "caf\u00e9"  # NFC


@pytest.mark.parametrize("char", ["a", "é", "中", "😀"])
def test_long_names_are_cut_on_a_character_boundary(char: str) -> None:
    name = sanitize_name(char * 500)
    encoded = name.encode("utf-8")
    assert len(encoded) <= MAX_NAME_BYTES
    assert len(encoded) > MAX_NAME_BYTES - len(char.encode("utf-8"))
    assert set(name) == {char}  # no broken or replacement characters


# --- collisions ---------------------------------------------------------------------------------


def render_all(template: str, values: list[str]) -> list[str]:
    names = NameTemplate(template)
    return [names.render(i, i + 2, {"v": v}) for i, v in enumerate(values)]


def test_collisions_are_resolved() -> None:
    names = render_all("{row[v]}", ["apple", "pear", "apple", "apple"])
    assert len(set(names)) == 4
    assert names[0] == "apple" and names[1] == "pear"
    assert all(name.startswith("apple") for name in (names[2], names[3]))


def test_collisions_are_case_insensitive() -> None:
    names = render_all("{row[v]}", ["Photo", "photo", "PHOTO"])
    assert len({name.casefold() for name in names}) == 3
    assert names[0] == "Photo"


def test_collision_resolution_is_deterministic() -> None:
    values = ["a", "A", "b", "a", "a/", "a\\", "", "0", "..", "a"]
    first = render_all("{row[v]}", values)
    second = render_all("{row[v]}", values)
    assert first == second
    assert len({name.casefold() for name in first}) == len(values)


def test_a_suffixed_name_never_takes_an_earlier_name() -> None:
    # Item 2 is row 4: its first suffixed form "a-4" is taken, as is "a-4-2" for item 3 (row 5)...
    names = render_all("{row[v]}", ["a-4", "a", "a", "A-4", "a-4-2"])
    assert len({name.casefold() for name in names}) == len(names)
    assert names[:2] == ["a-4", "a"]


def test_fallback_names_do_not_collide_with_values() -> None:
    names = render_all("{row[v]}", ["3", ""])  # item 1 (row 3) falls back to "3", taken by item 0
    assert names[0] == "3"
    assert names[1] != "3"


def test_index_names_stay_distinct_when_a_long_prefix_is_cut() -> None:
    template = NameTemplate("图" * 70 + "{index}")  # 210 bytes of prefix: the index is cut off
    names = [template.render(i) for i in range(300)]
    assert len(set(names)) == 300
    assert all(len(name.encode()) <= MAX_NAME_BYTES + 16 for name in names)


def test_plain_index_names_are_unique_and_short() -> None:
    template = NameTemplate("{index:06}")
    names = [template.render(i) for i in range(2000)]
    assert len(set(names)) == 2000
    assert names[:3] == ["000000", "000001", "000002"]


def test_index_names_near_the_byte_budget_stay_distinct() -> None:
    # The prefix and 5 digits fit exactly; 6 digits are cut back to the same budget.
    prefix = "x" * (MAX_NAME_BYTES - 5)
    template = NameTemplate(prefix + "{index}")
    names = [template.render(i) for i in (99_999, 999_990, 999_991)]
    assert len(set(names)) == 3
    assert names[0] == prefix + "99999"


@pytest.mark.parametrize(
    "invisible", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad"]
)
def test_bidi_controls_and_invisible_characters_are_dropped(invisible: str) -> None:
    # "invoice\u202egnp.exe" shows as "invoiceexe.png": a name must not show itself as another.
    assert sanitize_name(f"invoice{invisible}gnp.exe") == "invoicegnp.exe"


def test_a_name_at_the_budget_is_a_safe_file_name_with_its_extension() -> None:
    name = NameTemplate("{row[v]}").render(0, 2, {"v": "图" * 100})  # 300 bytes, cut to the budget
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert is_safe_file_name(name + ".png")
    assert len(f".{name}.png.4194304.0123abcd.tmp".encode()) < 255  # the store's temporary name fits
    for bad in ("", ".png", "a/b.png", "..", "x.PNG", "x.tar.gz/", "x\u202e.png"):
        assert not is_safe_file_name(bad), bad


@pytest.mark.parametrize("template", ["{row}", "{index}", "item-{row:04}", "{row[city]}"])
def test_render_many_names_a_chunk_as_render_names_each_item_in_turn(template: str) -> None:
    # Repeated cities: a collision's suffix depends on the names before it, in order.
    cities = ["东城", "东城", "Main/St", "", "东城-4"]
    values = [{"city": city} for city in cities]
    indices, rows = list(range(5)), [row + 2 for row in range(5)]
    one_by_one = NameTemplate(template)
    expected = [one_by_one.render(i, r, v) for i, r, v in zip(indices, rows, values, strict=True)]
    assert NameTemplate(template).render_many(indices, rows, values) == expected
    assert len(set(expected)) == 5
