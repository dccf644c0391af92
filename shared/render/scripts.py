"""Which writing systems a font covers, by sample letters per Unicode script.

A face "covers" a script when its cmap maps every character of the script's sample. The samples
are a few basic letters of each script's main block (Arabic also carries the extra letters of
Urdu, Persian and Sindhi). This drives the `scripts` field of `imagegen.fonts` and the
catalogue's coverage report, not fallback (fallback looks at every cluster).
"""

from __future__ import annotations

from collections.abc import Set

SCRIPT_SAMPLES: dict[str, str] = {
    "Latin": "AZaz\u00e9\u00df\u0142",
    "Greek": "\u0391\u03a9\u03b1\u03c9",
    "Cyrillic": "\u0416\u044f\u0451",
    "Han": "\u4e2d\u6587\u570b\u8a9e",
    "Hiragana": "\u3042\u3093",
    "Katakana": "\u30a2\u30f3",
    "Hangul": "\ud55c\uae00",
    # Arabic letters plus Urdu (ٹ ڈ ڑ ں ے), Persian (پ چ ژ گ) and Sindhi (ڄ ڃ ڦ ڻ) ones.
    "Arabic": "\u0639\u0631\u0628\u064a\u0679\u0688\u0691\u06ba\u06d2\u067e\u0686\u0698\u06af"
    "\u0684\u0683\u06a6\u06bb",
    "Hebrew": "\u05e9\u05dc\u05d5\u05dd",
    "Devanagari": "\u0915\u0916\u093f",
    "Thai": "\u0e01\u0e02\u0e03",
    "Lao": "\u0e81\u0e82\u0e84",
    "Khmer": "\u1780\u1781\u1782",
    "Myanmar": "\u1000\u1001\u1002",
    "Bengali": "\u0995\u0996\u0997",
    "Gujarati": "\u0a95\u0a96\u0a97",
    "Gurmukhi": "\u0a15\u0a16\u0a17",
    "Oriya": "\u0b15\u0b16\u0b17",
    "Tamil": "\u0b95\u0b99\u0b9a",
    "Telugu": "\u0c15\u0c16\u0c17",
    "Kannada": "\u0c95\u0c96\u0c97",
    "Malayalam": "\u0d15\u0d16\u0d17",
    "Sinhala": "\u0d9a\u0d9b\u0d9c",
    "Tibetan": "\u0f40\u0f41\u0f42",
    "Ethiopic": "\u1200\u1201\u1202",
    "Armenian": "\u0531\u0532\u0533",
    "Georgian": "\u10d0\u10d1\u10d2",
    "Syriac": "\u0710\u0712\u0713",
    "Thaana": "\u0780\u0781\u0782",
    "Mongolian": "\u1820\u1821\u1822",
    "Cherokee": "\u13a0\u13a1\u13a2",
    "Canadian Aboriginal": "\u1401\u1402\u1403",
    "Tifinagh": "\u2d30\u2d31\u2d32",
    "Yi": "\ua000\ua001\ua002",
    "Vai": "\ua500\ua501\ua502",
    "Nko": "\u07ca\u07cb\u07cc",
    "Ol Chiki": "\u1c5a\u1c5b\u1c5c",
    "Chakma": "\U00011103\U00011104\U00011105",
    "Osage": "\U000104b0\U000104b1\U000104b2",
    "Coptic": "\u2c80\u2c81\u2c82",
    "Tai Viet": "\uaa80\uaa81\uaa82",
    "Hanifi Rohingya": "\U00010d00\U00010d01\U00010d02",
    "Nyiakeng Puachue Hmong": "\U0001e100\U0001e101\U0001e102",
    "Adlam": "\U0001e900\U0001e901\U0001e902",
    "Javanese": "\ua98f\ua990\ua991",
    "Balinese": "\u1b13\u1b14\u1b15",
    "Sundanese": "\u1b8a\u1b8b\u1b8c",
    "Meetei Mayek": "\uabc0\uabc1\uabc2",
    "Lisu": "\ua4d0\ua4d1\ua4d2",
    "Tai Le": "\u1950\u1951\u1952",
    "New Tai Lue": "\u1980\u1981\u1982",
    "Tai Tham": "\u1a20\u1a21\u1a22",
    "Cham": "\uaa06\uaa07\uaa08",
    "Kayah Li": "\ua90a\ua90b\ua90c",
    "Bamum": "\ua6a0\ua6a1\ua6a2",
    "Wancho": "\U0001e2c0\U0001e2c1\U0001e2c2",
    "Pahawh Hmong": "\U00016b00\U00016b01\U00016b02",
    "Syloti Nagri": "\ua807\ua808\ua809",
    "Buginese": "\u1a00\u1a01\u1a02",
    "Batak": "\u1bc0\u1bc1\u1bc2",
    "Saurashtra": "\ua882\ua883\ua884",
    "Lepcha": "\u1c00\u1c01\u1c02",
    "Limbu": "\u1901\u1902\u1903",
    "Newa": "\U0001140e\U0001140f\U00011410",
    "Miao": "\U00016f00\U00016f01\U00016f02",
    "Mende Kikakui": "\U0001e800\U0001e801\U0001e802",
    "Bassa Vah": "\U00016ad0\U00016ad1\U00016ad2",
    "Symbols": "\u2605\u2660\u263a",
    "Emoji": "\U0001f600\U0001f680",
}


def scripts_covered(coverage: Set[int]) -> list[str]:
    """The scripts whose every sample character is in `coverage` (code points)."""
    return [script for script, sample in SCRIPT_SAMPLES.items() if all(ord(c) in coverage for c in sample)]
