"""Writes cldr-names.tsv: real words in every script of the CLDR base locales, for the
multilingual render test (tests/shared/render/test_multilingual.py).

Source: CLDR as shipped in PyPI `babel` (Unicode License v3, `cldr-LICENSE` beside this file).
For each script, the base locales written in it (up to three), each with its own language
name, the name of its main territory and its first three month names, as the locale spells
them. Re-run with `.venv/bin/python tests/data/make_cldr_names.py` after a babel upgrade.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import babel
from babel import Locale, localedata
from fontTools import unicodedata as ucd

OUT = Path(__file__).with_name("cldr-names.tsv")
PER_SCRIPT = 3
# Arabic-script locales whose extra letters must draw too: Urdu, Persian, Sindhi, Pashto, Uyghur.
FIRST = ("ur", "fa", "sd", "ps", "ug")


def main_script(text: str) -> str | None:
    counts = Counter(ucd.script(ch) for ch in text if ucd.script(ch) not in ("Zyyy", "Zinh", "Zzzz"))
    return counts.most_common(1)[0][0] if counts else None


def main() -> None:
    rows: dict[str, list[tuple[str, str]]] = {}
    codes = sorted(c for c in localedata.locale_identifiers() if "_" not in c)
    for code in [*FIRST, *(c for c in codes if c not in FIRST)]:
        locale = Locale.parse(code)
        own = locale.get_display_name(locale) or ""
        script = main_script(own)
        limit = len(FIRST) if script == "Arab" else PER_SCRIPT
        if script is None or len(rows.setdefault(script, [])) >= limit:
            continue
        territory = ""
        likely = Locale.parse(babel.core.get_global("likely_subtags").get(code, code))
        if likely.territory:
            territory = locale.territories.get(likely.territory, "")
        months = [locale.months["format"]["wide"][m] for m in (1, 2, 3)]
        text = " ".join(part for part in (own, territory, *months) if part)
        rows[script].append((code, unicodedata.normalize("NFC", text)))
    lines = [f"# script\tlocale\ttext (CLDR via babel {babel.__version__}; see make_cldr_names.py)"]
    for script in sorted(rows):
        for code, text in rows[script]:
            lines.append(f"{ucd.script_name(script).replace('_', ' ')}\t{code}\t{text}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
