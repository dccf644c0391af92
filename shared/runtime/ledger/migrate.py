"""Versioned SQL migrations, applied at start-up by every service that uses the ledger.

Several services start at once, so the whole run holds a transaction-level advisory lock: the
first applies what is missing, the others wait, then find nothing left to do.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from shared.runtime.logging import get_logger

log = get_logger(__name__)

# Any constant will do; it only has to be the same for every imagegen process.
_LOCK_KEY = 0x1A6E6E

_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("shared.runtime.ledger.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match["version"]), match["name"], entry.read_text("utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> list[int]:
    """Apply missing migrations; return the versions applied by this call."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS imagegen_schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM imagegen_schema_migrations")}
        for version, name, sql in available_migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO imagegen_schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied.append(version)
            log.info("ledger.migrated", version=version, name=name)
    return applied
