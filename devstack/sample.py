"""The local stack's sample data source: a database, a reader role and a `products` table.

`imagegen up` points the `local` data source at it, so the README's `submit db` example runs as
written and no query of the local stack reaches the job ledger. The role has what
docs/security.md asks of a production reader and nothing more: it logs in, reads the sample
table, defaults to read-only transactions, and may set its own temp_file_limit (so a source's
limit can apply); large-object writers, pg_notify and friends are revoked in the database. The
table holds examples/products.csv, prices as numbers. `deploy/postgres/init-sample.sh` makes
the same for compose (tests/deploy/test_sample_db.py compares the two).
"""

from __future__ import annotations

import contextlib
import csv
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

SAMPLE_CSV = Path(__file__).resolve().parents[1] / "examples" / "products.csv"
SAMPLE_DATABASE = "imagegen_sample"
READER_ROLE = "imagegen_reader"
# Functions every role may call by default that write or reach other sessions even inside a READ
# ONLY transaction: revoked from PUBLIC in the sample database (the query check refuses them
# too; this is the role's wall behind it).
REVOKED_FUNCTIONS = (
    "lo_creat", "lo_create", "lo_from_bytea", "lo_open", "lo_put", "lo_truncate", "lo_truncate64",
    "lo_unlink", "lowrite", "pg_cancel_backend", "pg_logical_emit_message", "pg_notify",
    "pg_terminate_backend",
)  # fmt: skip


@dataclass(frozen=True)
class SampleSource:
    """Where the sample lives: `reader_url` is the data source's DSN (the reader role);
    `admin_url` reaches the same database as the administrator who made it."""

    reader_url: str
    admin_url: str
    role: str


def products(path: Path = SAMPLE_CSV) -> list[tuple[int, str, str, Decimal]]:
    """The sample CSV as (id, sku, name, price) rows; `¥3.50` becomes 3.50."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        return [
            (number, row["sku"], row["name"], Decimal(re.sub(r"[^0-9.]", "", row["price"])))
            for number, row in enumerate(csv.DictReader(file), start=1)
        ]


def with_login(url: str, *, database: str, user: str | None = None, password: str | None = None) -> str:
    """`url` pointed at `database`, logging in as `user` when given."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if user is not None:
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    return urlunsplit((parts.scheme, netloc, "/" + quote(database, safe=""), parts.query, parts.fragment))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_sample_source(
    admin_url: str, *, database: str = SAMPLE_DATABASE, role: str = READER_ROLE
) -> SampleSource:
    """Create (or bring up to date) the sample database, its reader role and table.

    `admin_url` must log in as a role that may create databases and roles (the local stack's
    own Postgres superuser). The reader gets a fresh random password each time.
    """
    password = secrets.token_urlsafe(24)  # URL- and SQL-literal-safe characters only
    db, reader = _ident(database), _ident(role)
    admin = await asyncpg.connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute(f"CREATE DATABASE {db}")
        with contextlib.suppress(asyncpg.DuplicateObjectError):
            await admin.execute(f"CREATE ROLE {reader}")
        await admin.execute(
            f"ALTER ROLE {reader} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS CONNECTION LIMIT 16 PASSWORD '{password}'"
        )
        await admin.execute(f"ALTER ROLE {reader} SET default_transaction_read_only = on")
        await admin.execute(f"GRANT SET ON PARAMETER temp_file_limit TO {reader}")
        # Only the reader (and the owner) may connect; no one may create temporary tables.
        await admin.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await admin.execute(f"GRANT CONNECT ON DATABASE {db} TO {reader}")
    finally:
        await admin.close()

    sample_admin_url = with_login(admin_url, database=database)
    conn = await asyncpg.connect(sample_admin_url)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS products (
                   id integer PRIMARY KEY,
                   sku text NOT NULL UNIQUE,
                   name text NOT NULL,
                   price numeric(10, 2) NOT NULL
               )"""
        )
        if not await conn.fetchval("SELECT count(*) FROM products"):
            await conn.copy_records_to_table("products", records=products())
        names = ", ".join(f"'{name}'" for name in REVOKED_FUNCTIONS)
        await conn.execute(
            f"""DO $$ DECLARE f regprocedure; BEGIN
                  FOR f IN SELECT oid FROM pg_proc
                            WHERE pronamespace = 'pg_catalog'::regnamespace AND proname IN ({names})
                  LOOP EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); END LOOP;
                END $$"""
        )
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {reader}")
        await conn.execute(f"GRANT SELECT ON products TO {reader}")
    finally:
        await conn.close()
    reader_url = with_login(admin_url, database=database, user=role, password=password)
    return SampleSource(reader_url, sample_admin_url, role)
