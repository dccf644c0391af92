"""Checking that a query from a request is one read-only SELECT before it goes near a database.

This is the first of three walls: the statement shape here, a READ ONLY transaction around the
cursor, and (operators' part) a database role that may only SELECT.
"""

from __future__ import annotations

import re

from shared.contract.errors import BadRequest

# Fix: comments, string literals, quoted identifiers and dollar quotes are found in ONE
# left-to-right scan, as the server's lexer does. Before, comments were removed first, so in
# `SELECT '--'; DELETE FROM t` everything after `--` vanished and the DELETE passed; E'..'
# strings (where \' does not end the string) and `$` inside identifiers (`a$b$`, which is not a
# dollar quote) could likewise hide a second statement from the check.
_LEXEME = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'"
    r"|'(?:[^']|'')*'"
    r"|\"(?:[^\"]|\"\")*\""
    r"|(?<![\w$])\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$",
    re.S,
)
_FIRST_WORD = re.compile(r"^\s*\(*\s*(\w+)", re.S)
# With the first word pinned to a read, writes can only hide in a data-modifying CTE
# (WITH x AS (DELETE ...)), SELECT INTO (creates a table) or FOR UPDATE/SHARE (takes locks).
# Fix: SHARE only counts after FOR (`FOR SHARE`, `FOR KEY SHARE`); a bare `share` is an
# ordinary column name (`SELECT share FROM holdings`) and used to be rejected.
_WRITES = re.compile(r"\b(insert|update|delete|merge|into|for\s+(?:key\s+)?share)\b", re.I)


def _blank_out(match: re.Match[str]) -> str:
    """A comment becomes a space, a literal or quoted identifier a neutral word without quotes."""
    return " " if match["comment"] is not None else " _lit_ "


def check_select(query: str, *, field: str = "query") -> str:
    """Return the query without a trailing ';' if it is one SELECT (or WITH ... SELECT)."""
    bare = _LEXEME.sub(_blank_out, query)
    statement = bare.strip().rstrip(";").strip()
    if not statement:
        raise BadRequest("is empty", field=field)
    if "'" in bare or '"' in bare or "/*" in bare:
        # Fix: what the scan could not pair up is unterminated; never guess where it ends.
        raise BadRequest("has an unterminated quote or comment", field=field)
    if ";" in statement:
        raise BadRequest("must be a single statement", field=field)
    first = _FIRST_WORD.match(statement)
    if not first or first.group(1).lower() not in ("select", "with", "values", "table"):
        raise BadRequest("must be a SELECT (or WITH ... SELECT)", field=field)
    write = _WRITES.search(statement)
    if write:
        shown = " ".join(write.group(1).upper().split())
        raise BadRequest(f"may only read: {shown} is not allowed", field=field)
    return query.strip().rstrip().rstrip(";")
