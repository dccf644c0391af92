"""`check_select`: the statement-shape wall in front of every data-source query."""

from __future__ import annotations

import pytest

from shared.contract.errors import BadRequest
from shared.sources.db.query import check_select

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
