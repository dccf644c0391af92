"""Which encoding a text file is in, by evidence: a byte-order mark, then strict UTF-8, then a
detector over the encodings spreadsheets and older systems write.

A guessed encoding is a silently wrong image, so the evidence is reported (the encoding and a
confidence, shown in the submit reply) and, when it is weak — several candidates read the head
equally well but differently, or none reads it cleanly — the submit is refused with the
candidates named, asking for `encoding`. The detector is charset-normalizer restricted to the
candidates below (its mess measure over the decoded head; 0 is clean).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

from charset_normalizer import from_bytes

from shared.contract.errors import BadRequest

# What a CSV that is not UTF-8 is written in, in practice: Excel and older systems in mainland
# China (GB18030 covers GBK/GB2312), Taiwan and Hong Kong (Big5), Japan, Korea, and Western
# Europe (cp1252, a superset of Latin-1's printable range).
CANDIDATES: Final = ("gb18030", "big5", "shift_jis", "euc_jp", "euc_kr", "cp1252")
BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# A winner must read the head this much more cleanly than any candidate that reads it otherwise.
MARGIN: Final = 0.05
MAX_MESS: Final = 0.2


@dataclass(frozen=True, slots=True)
class Detected:
    encoding: str
    confidence: float  # 1.0 for a BOM or valid UTF-8; otherwise how cleanly the winner reads
    how: str  # "bom", "utf-8", "detected", "given"


def detect_encoding(head: bytes, *, field: str = "csv") -> Detected:
    """The encoding of a file whose first bytes are `head` (which may end mid-character)."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return Detected(name, 1.0, "bom")
    if b"\x00" in head:
        raise BadRequest("the file looks binary (it contains NUL bytes)", field=field)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return Detected("utf-8", 1.0, "utf-8")
    except UnicodeDecodeError:
        pass
    matches = sorted(from_bytes(head, cp_isolation=list(CANDIDATES)), key=lambda m: m.chaos)
    readable = [m for m in matches if m.chaos <= MAX_MESS]
    if not readable:
        raise BadRequest(
            f"the file is not UTF-8 and reads cleanly in none of {', '.join(CANDIDATES)}; give its encoding",
            field="encoding",
        )
    best = readable[0]
    text = str(best)
    rivals = [m for m in readable[1:] if str(m) != text and m.chaos - best.chaos < MARGIN]
    if rivals:
        names = ", ".join(sorted({best.encoding, *(m.encoding for m in rivals)}))
        raise BadRequest(
            f"the file is not UTF-8 and its encoding is ambiguous: it reads as {names}; "
            "give its encoding (e.g. encoding=big5)",
            field="encoding",
        )
    return Detected(best.encoding, round(1.0 - best.chaos, 2), "detected")
