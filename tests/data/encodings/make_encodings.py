"""Writes the encoding fixtures: real place names, as CLDR spells them in each language, saved in
the encoding that language's spreadsheets use when they do not write UTF-8.

Source: CLDR as shipped in PyPI `babel` (Unicode License v3, `LICENSE` beside this file). Each
file is a one-column CSV (`name`) of the locale's territory names in babel's order; `expected`
reads them back. Re-run with `.venv/bin/python tests/data/encodings/make_encodings.py`.
"""

from __future__ import annotations

from pathlib import Path

from babel import Locale

HERE = Path(__file__).resolve().parent
# file -> (CLDR locale, encoding as Python names it, byte-order mark to prepend)
FIXTURES = {
    "big5.csv": ("zh_Hant", "big5", b""),
    "shift_jis.csv": ("ja", "shift_jis", b""),
    "euc_kr.csv": ("ko", "euc_kr", b""),
    "cp1252.csv": ("fr", "cp1252", b""),
    "gb18030.csv": ("zh", "gb18030", b""),
    "utf16.csv": ("ru", "utf-16-le", b"\xff\xfe"),
}


def names(locale: str) -> list[str]:
    return sorted(Locale.parse(locale).territories.values())


def expected(file: str) -> list[str]:
    """The texts a reader must get back from `file`."""
    return names(FIXTURES[file][0])


def main() -> None:
    for file, (locale, encoding, bom) in FIXTURES.items():
        text = "name\r\n" + "".join(f'"{name}"\r\n' for name in names(locale))
        (HERE / file).write_bytes(bom + text.encode(encoding))


if __name__ == "__main__":
    main()
