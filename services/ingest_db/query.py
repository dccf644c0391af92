"""Checking that a query from a message is one read-only SELECT before it goes near a database.

This is the first of three walls: the statement shape here, a READ ONLY transaction around the
cursor, and (operators' part) a database role that may only SELECT.
"""

from __future__ import annotations

import re

from shared.errors import BadRequest

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.S)
_FIRST_WORD = re.compile(r"^\s*\(*\s*(\w+)", re.S)
# With the first word pinned to a read, writes can only hide in a data-modifying CTE
# (WITH x AS (DELETE ...)), SELECT INTO (creates a table) or FOR UPDATE/SHARE (takes locks).
_WRITES = re.compile(r"\b(insert|update|delete|merge|into|share)\b", re.I)


def check_select(query: str, *, field: str = "query") -> str:
    """Return the query without a trailing ';' if it is one SELECT (or WITH ... SELECT)."""
    bare = _STRING.sub("''", _COMMENT.sub(" ", query))
    statement = bare.strip().rstrip(";").strip()
    if not statement:
        raise BadRequest("is empty", field=field)
    if ";" in statement:
        raise BadRequest("must be a single statement", field=field)
    first = _FIRST_WORD.match(statement)
    if not first or first.group(1).lower() not in ("select", "with", "values", "table"):
        raise BadRequest("must be a SELECT (or WITH ... SELECT)", field=field)
    write = _WRITES.search(statement)
    if write:
        raise BadRequest(f"may only read: {write.group(1).upper()} is not allowed", field=field)
    return query.strip().rstrip().rstrip(";")
