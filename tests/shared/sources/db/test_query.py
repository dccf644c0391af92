"""`check_select`: the grammar wall in front of every data-source query (libpg_query's parse)."""

from __future__ import annotations

import pytest

from shared.contract.errors import BadRequest
from shared.sources.db.query import QueryPolicy, check_select

ACCEPTED = [
    "SELECT name FROM products",
    "select name from products where price > $1",
    "  SELECT 1  ",
    "(SELECT name FROM a) UNION (SELECT name FROM b)",
    "WITH recent AS (SELECT * FROM orders WHERE day > now() - interval '1 day') SELECT id FROM recent",
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n",
    "VALUES ('一'), ('二')",
    "TABLE products",
    # keywords inside literals, quoted identifiers, dollar quotes and comments are data, not SQL
    "SELECT 'please delete me; insert into x' AS text",
    "SELECT 'it''s; update' AS text",
    'SELECT "update", "delete" FROM "insert"',
    "SELECT $$; DROP TABLE t; $$ AS text",
    "SELECT $tag$ it's; delete $tag$ AS text",
    "SELECT E'it\\'s; delete' AS text",
    "SELECT name FROM t -- delete everything; insert into x\n",
    "SELECT /* update; drop table t; */ name FROM t",
    # identifiers that merely contain a keyword
    "SELECT updated_at, insert_date, deleted, created_into, shared, merged_by FROM t",
    "SELECT intopic, share_price, market_share FROM t",
    "SELECT share FROM holdings",
    "SELECT price$usd FROM t WHERE a = $1 AND b = $2",
    "SELECT name, price FROM t ORDER BY name LIMIT 10 OFFSET 5",
    # keywords as names, which the regular expressions of before refused
    "SELECT t.delete FROM t",
    "SELECT 'x' AS merge",
    "SELECT t.update, t.insert, t.into FROM t",
    "SELECT s.for, s.share FROM s",
    # pure functions, SQL-syntax functions and casts
    "SELECT upper(name), length(name), round(price, 1), to_char(day, 'YYYY-MM-DD') FROM t",
    "SELECT extract(year FROM day), substring(name FROM 1 FOR 3), trim(both ' ' FROM name) FROM t",
    "SELECT day AT TIME ZONE 'UTC', CURRENT_DATE, CURRENT_TIMESTAMP(0), coalesce(a, b) FROM t",
    "SELECT name FROM t WHERE name SIMILAR TO '%(茶|tea)%'",
    "SELECT price::text, CAST(price AS numeric(10, 2)), int4('2'), '2'::pg_catalog.int8 FROM t",
    "SELECT count(*), string_agg(name, ', ' ORDER BY name), max(price) FROM t GROUP BY kind",
    "SELECT name, row_number() OVER (ORDER BY price) FROM t",
    "SELECT g FROM generate_series(1, 10) AS g",
    "SELECT x FROM unnest(ARRAY['一', '二']) AS x",
    "SELECT pg_catalog.lower(name) FROM public.products",
    "SELECT name FROM t WHERE price > $1::numeric",
    "WITH pg AS (SELECT 1 AS x) SELECT x FROM pg",
]


@pytest.mark.parametrize("query", ACCEPTED)
def test_accepts_reads(query: str) -> None:
    assert check_select(query) == query.strip()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ;  ", "SELECT 1"),
        ("\n  SELECT name FROM t;\n", "SELECT name FROM t"),
        ("SELECT 'a;b' FROM t;", "SELECT 'a;b' FROM t"),
    ],
)
def test_trailing_semicolon_is_dropped(query: str, expected: str) -> None:
    assert check_select(query).strip() == expected


def test_trailing_semicolon_before_a_comment_is_accepted() -> None:
    result = check_select("SELECT 1; -- the end")
    assert result.startswith("SELECT 1")


REJECTED = [
    # DML / DDL / other statements
    ("INSERT INTO t VALUES (1)", "SELECT"),
    ("UPDATE t SET a = 1", "SELECT"),
    ("DELETE FROM t", "SELECT"),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "SELECT"),
    ("DROP TABLE t", "SELECT"),
    ("CREATE TABLE t (a int)", "SELECT"),
    ("TRUNCATE t", "SELECT"),
    ("ALTER TABLE t ADD COLUMN b int", "SELECT"),
    ("GRANT ALL ON t TO public", "SELECT"),
    ("COPY t TO '/tmp/x'", "SELECT"),
    ("EXPLAIN ANALYZE DELETE FROM t", "SELECT"),
    ("/* SELECT */ DELETE FROM t", "SELECT"),
    ("-- SELECT\nDELETE FROM t", "SELECT"),
    # several statements
    ("SELECT 1; SELECT 2", "single statement"),
    ("SELECT 1; DELETE FROM t", "single statement"),
    ("SELECT 1;;SELECT 2", "single statement"),
    # statements hidden by a naive strip of comments/strings
    ("SELECT '--'; DELETE FROM t", "single statement"),
    ("SELECT '/*'; DELETE FROM t; SELECT '*/'", "single statement"),
    ("SELECT E'\\'' ; DELETE FROM t; SELECT '1'", "single statement"),
    ("SELECT x$y$ ; DELETE FROM t; SELECT 1 AS z$y$", "single statement"),
    # writes inside a read
    ("SELECT * INTO new_table FROM t", "INTO"),
    ("SELECT * FROM t FOR UPDATE", "UPDATE"),
    ("SELECT * FROM t FOR NO KEY UPDATE", "UPDATE"),
    ("SELECT * FROM t FOR SHARE", "SHARE"),
    ("SELECT * FROM t FOR KEY SHARE", "SHARE"),
    ("SELECT * FROM t FOR /* c */ SHARE", "SHARE"),
    ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
    ("WITH n AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM n", "INSERT"),
    ("WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM u", "UPDATE"),
    ("with u as materialized (update t set a = 1 returning a) select a from u", "UPDATE"),
    # ...also inside subqueries and set operations
    ("(SELECT 1 FROM t FOR UPDATE) UNION SELECT 2", "FOR UPDATE"),
    ("SELECT (SELECT 1 FROM t FOR KEY SHARE)", "FOR KEY SHARE"),
    ("SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s", "DELETE"),
    # session settings are statements of their own
    ("SET statement_timeout = 0", "not SET"),
    ("RESET ALL", "SELECT"),
    # nothing, or unterminated
    ("", "empty"),
    ("   ", "empty"),
    (";", "empty"),
    ("-- only a comment", "empty"),
    ("/* only */", "empty"),
    ("SELECT 'unterminated", "unterminated"),
    ("SELECT 1 /* unterminated", "unterminated"),
]


@pytest.mark.parametrize(("query", "reason"), REJECTED)
def test_rejects(query: str, reason: str) -> None:
    with pytest.raises(BadRequest) as err:
        check_select(query)
    assert err.value.field == "query"
    assert err.value.code == 400
    assert reason.lower() in err.value.message.lower()


def test_field_name_can_be_chosen() -> None:
    with pytest.raises(BadRequest) as err:
        check_select("DELETE FROM t", field="db.query")
    assert err.value.field == "db.query"


def test_the_statement_is_cut_at_its_end_in_bytes() -> None:
    # libpg_query reports UTF-8 byte offsets: a Chinese literal must not shift the cut.
    assert check_select("SELECT '中文名称' AS name;  -- 注释") == "SELECT '中文名称' AS name"
    assert check_select("-- 前言\nSELECT '一' ;") == "SELECT '一'"


REFUSED_BY_POLICY = [
    # functions with effects or that read the server (the attacks of issue 12)
    ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file()"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "function pg_read_file()"),
    ("SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/x')", "function lo_"),
    ("SELECT lo_create(0)", "function lo_create()"),
    ("SELECT lo_from_bytea(0, '\\x00')", "function lo_from_bytea()"),
    ("SELECT pg_notify('channel', 'payload')", "function pg_notify()"),
    ("SELECT pg_logical_emit_message(true, 'p', 'm')", "function pg_logical_emit_message()"),
    ("SELECT pg_terminate_backend(pid) FROM other_sessions", "function pg_terminate_backend()"),
    ("SELECT pg_sleep(600)", "function pg_sleep()"),
    ("SELECT name FROM t WHERE pg_sleep(1) IS NULL", "function pg_sleep()"),
    ("SELECT set_config('statement_timeout', '0', false)", "function set_config()"),
    ("SELECT current_setting('data_directory')", "function current_setting()"),
    ("SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')", "query_to_xml"),
    ("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "function dblink()"),
    ("SELECT nextval('s')", "function nextval()"),
    ("SELECT x FROM (SELECT random() AS x) s", "function random()"),
    ("SELECT CURRENT_USER", "CURRENT_USER"),
    ("SELECT session_user", "SESSION_USER"),
    ("SELECT public.my_format(name) FROM t", "function public.my_format()"),
    # system catalogs, other schemas, other databases
    ("SELECT rolname, rolpassword FROM pg_authid", "system catalog pg_authid"),
    ("SELECT * FROM pg_catalog.pg_class", "system catalog pg_catalog.pg_class"),
    ("SELECT * FROM information_schema.tables", "system catalog information_schema.tables"),
    ("SELECT * FROM t WHERE x IN (SELECT oid FROM pg_proc)", "system catalog pg_proc"),
    ("SELECT * FROM secret.payroll", "schema secret is not allowed"),
    ("SELECT * FROM pg_temp.t", "schema pg_temp"),
    ("SELECT * FROM other_db.public.t", "another database"),
    ("SELECT 'pg_authid'::regclass", "cast to regclass"),
    ("SELECT CAST('imagegen_jobs' AS pg_catalog.regclass)::oid", "cast to regclass"),
    ("SELECT 1::secret.money_type", "type secret.money_type"),
    ("SELECT a OPERATOR(secret.+) b FROM t", "operator secret.+"),
    ("WITH pg_authid AS (SELECT 1 AS x) SELECT x FROM pg_authid", "system catalog pg_authid"),
    # what libpg_query cannot see, or would need too deep a stack for
    ("SELECT 1\x00; DELETE FROM t", "NUL"),
    ("SELECT " + " + ".join(["1"] * 30_000), "nested too deeply"),
    ("SELECT " + "(" * 20_000 + "1" + ")" * 20_000, "nested too deeply"),
]


@pytest.mark.parametrize(("query", "reason"), REFUSED_BY_POLICY)
def test_refuses_what_the_default_policy_does_not_allow(query: str, reason: str) -> None:
    with pytest.raises(BadRequest) as err:
        check_select(query)
    assert err.value.field == "query"
    assert reason.lower() in err.value.message.lower(), err.value.message


def test_deep_but_reasonable_expressions_pass() -> None:
    query = "SELECT " + " || ".join(["name"] * 200) + " AS long FROM t"
    assert check_select(query) == query  # allowed, and passed on unchanged


def test_a_source_may_allow_functions_schemas_and_catalogs() -> None:
    policy = QueryPolicy.of(
        schemas=["public", "shop"], allow_catalogs=True, functions=["pg_sleep", "shop.price_label"]
    )
    for query in [
        "SELECT pg_sleep(1)",
        "SELECT shop.price_label(price) FROM shop.items",
        "SELECT relname FROM pg_class",
        "SELECT table_name FROM information_schema.tables",
        "SELECT 'products'::regclass",
        "SELECT lower(name) FROM public.products",
    ]:
        assert check_select(query, policy) == query
    for query, reason in [
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT price_label(price) FROM shop.items", "function price_label()"),
        ("SELECT * FROM secret.t", "schema secret"),
    ]:
        with pytest.raises(BadRequest, match=reason):
            check_select(query, policy)


def test_a_source_without_public() -> None:
    policy = QueryPolicy.of(schemas=["catalog"], allow_catalogs=False, functions=[])
    assert check_select("SELECT name FROM catalog.products", policy)
    with pytest.raises(BadRequest, match="schema public is not allowed"):
        check_select("SELECT name FROM public.products", policy)
