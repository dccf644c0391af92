"""compose.yaml's `local` data source: the init script the postgres image runs on an empty volume
(deploy/postgres/init-sample.sh) makes what `imagegen up` makes (devstack/sample.py), and
compose wires it as the script creates it. The script runs here, with the image's environment,
against the session's Postgres; both results are compared."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml

from devstack import find_pg_bindir
from devstack.sample import REVOKED_FUNCTIONS, SampleSource, with_login

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "postgres" / "init-sample.sh"


def script_default(variable: str) -> str:
    match = re.search(rf'"\$\{{{variable}:-([^}}]+)\}}"', SCRIPT.read_text(encoding="utf-8"))
    assert match, variable
    return match[1]


async def describe(admin_url: str, database: str, role: str) -> dict[str, object]:
    """What matters of a sample database and its reader, as its administrator sees it."""
    conn = await asyncpg.connect(with_login(admin_url, database=database))
    try:
        return {
            "rows": [tuple(r) for r in await conn.fetch("SELECT * FROM products ORDER BY id")],
            "columns": [
                tuple(r)
                for r in await conn.fetch(
                    """SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable
                         FROM information_schema.columns WHERE table_name = 'products'
                        ORDER BY ordinal_position"""
                )
            ],
            "role": tuple(
                await conn.fetchrow(
                    """SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
                              rolbypassrls, rolconnlimit, rolconfig FROM pg_roles WHERE rolname = $1""",
                    role,
                )
            ),
            "privileges": tuple(
                await conn.fetchrow(
                    """SELECT has_table_privilege($1, 'products', 'SELECT'),
                              has_table_privilege($1, 'products', 'INSERT'),
                              has_schema_privilege($1, 'public', 'CREATE'),
                              has_database_privilege($1, current_database(), 'TEMP'),
                              has_database_privilege('public', current_database(), 'CONNECT'),
                              has_parameter_privilege($1, 'temp_file_limit', 'SET')""",
                    role,
                )
            ),
            "functions": await conn.fetchval(
                """SELECT bool_or(has_function_privilege($1, oid, 'EXECUTE')) FROM pg_proc
                    WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY($2::text[])""",
                role,
                list(REVOKED_FUNCTIONS),
            ),
        }
    finally:
        await conn.close()


@pytest.mark.slow
async def test_the_compose_init_script_makes_the_devstack_sample(
    postgres_admin_url: str, sample_source: SampleSource
) -> None:
    suffix = secrets.token_hex(4)
    database, role, password = (
        f"imagegen_test_compose_{suffix}",
        f"imagegen_test_compose_{suffix}",
        "pw-" + suffix,
    )
    admin = urlsplit(postgres_admin_url)
    env = {
        "PATH": f"{find_pg_bindir()}:{os.environ['PATH']}",
        "PGHOST": admin.hostname or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGPASSWORD": admin.password or "",
        # What the postgres image gives its init scripts, and what compose.yaml adds.
        "POSTGRES_USER": admin.username or "postgres",
        "POSTGRES_DB": admin.path.lstrip("/") or "postgres",
        "SAMPLE_READER_PASSWORD": password,
        "SAMPLE_READER": role,
        "SAMPLE_DB": database,
        "SAMPLE_CSV": str(REPO / "examples" / "products.csv"),
    }
    done = await asyncio.to_thread(
        subprocess.run, [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

    composed = await describe(postgres_admin_url, database, role)
    devstack = await describe(
        postgres_admin_url, urlsplit(sample_source.reader_url).path.lstrip("/"), sample_source.role
    )
    assert composed == devstack
    assert composed["privileges"] == (True, False, False, False, False, True)
    assert composed["functions"] is False
    assert len(composed["rows"]) == 24  # type: ignore[arg-type]
    # The reader logs in with the password compose gives it and reads the table, nothing more.
    reader = await asyncpg.connect(
        with_login(postgres_admin_url, database=database, user=role, password=password)
    )
    try:
        assert await reader.fetchval("SELECT count(*) FROM products") == 24
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await reader.execute("CREATE TEMP TABLE t (a int)")
    finally:
        await reader.close()


def test_compose_points_local_at_the_sample_reader() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    postgres = compose["services"]["postgres"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in postgres["volumes"]}
    assert mounts["./deploy/postgres/init-sample.sh"].startswith("/docker-entrypoint-initdb.d/")
    assert mounts["./examples/products.csv"] == script_default("SAMPLE_CSV")
    assert os.access(SCRIPT, os.X_OK), "the image runs an executable script instead of sourcing it"
    password = postgres["environment"]["SAMPLE_READER_PASSWORD"]
    # Only the ingest that serves the db source holds data sources (test_manifests.py checks the
    # others hold none).
    environment = compose["services"]["ingest-db"]["environment"]
    local = urlsplit(json.loads(environment["IMAGEGEN_DATA_SOURCES"])["local"])
    assert (local.username, local.hostname, local.path) == (
        script_default("SAMPLE_READER"),
        "postgres",
        "/" + script_default("SAMPLE_DB"),
    )
    assert local.password == password  # the same `${SAMPLE_READER_PASSWORD:-...}` on both sides
