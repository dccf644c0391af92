"""Checking a query from a request with Postgres's own grammar before it goes near a database.

This is the first wall in front of a data source (the others: a READ ONLY transaction with the
source's limits, and a role that may only SELECT). The query is parsed by libpg_query, the
Postgres parser as a library (through `pglast`), so comments, literals, dollar quotes and
keywords used as names are what the server would make of them. It must be exactly one SELECT
(WITH ... SELECT, VALUES and TABLE are SELECTs in the grammar) with no data-modifying WITH,
no SELECT INTO and no locking clause; every function it calls is on the source's allowlist
(`shared/sources/db/functions.py` plus the operator's additions); it names no system catalog
and no schema the source does not allow.

The tree is walked as libpg_query's JSON, not as pglast's Python objects: building those
recurses in C and crashed the process on a 30,000-term `1 + 1 + ...` (pglast 8.8), while the
JSON route fails cleanly (libpg_query's own stack check, then `json.loads`'s recursion limit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast.parser import ParseError, parse_sql_json

from shared.contract.errors import BadRequest
from shared.sources.db.functions import DEFAULT_FUNCTIONS

CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
# Casting text to these looks names up in the system catalogs (`'pg_authid'::regclass`).
CATALOG_TYPES = frozenset(
    {
        "regclass", "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper",
        "regoperator", "regproc", "regprocedure", "regrole", "regtype",
    }
)  # fmt: skip
_WRITES = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE"}
_LOCKS = {
    "LCS_FORUPDATE": "FOR UPDATE",
    "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
    "LCS_FORSHARE": "FOR SHARE",
    "LCS_FORKEYSHARE": "FOR KEY SHARE",
}
_STATEMENT_WORDS = {"VariableSetStmt": "SET", "VariableShowStmt": "SHOW", "TransactionStmt": "BEGIN/COMMIT"}

Node = dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueryPolicy:
    """What a data source lets a query reach besides plain SQL on its own schemas' tables.

    `functions` holds bare names (`lower`) and schema-qualified ones (`public.my_format`).
    """

    schemas: frozenset[str] = frozenset({"public"})
    allow_catalogs: bool = False
    functions: frozenset[str] = field(default=DEFAULT_FUNCTIONS)

    @classmethod
    def of(cls, schemas: Iterable[str], allow_catalogs: bool, functions: Iterable[str]) -> QueryPolicy:
        """A source's policy: the default functions plus the operator's `functions`."""
        return cls(frozenset(schemas), allow_catalogs, DEFAULT_FUNCTIONS | frozenset(functions))


DEFAULT_POLICY = QueryPolicy()


def check_select(query: str, policy: QueryPolicy = DEFAULT_POLICY, *, field: str = "query") -> str:
    """Return the statement (without a trailing `;` and what follows it) if `policy` allows it;
    raise `BadRequest(field=field)` naming the construct otherwise."""
    if "\x00" in query:
        # libpg_query reads a C string: everything after a NUL would go unchecked.
        raise BadRequest("contains a NUL character", field=field)
    statements = _parse(query, field)
    if not statements:
        raise BadRequest("is empty", field=field)
    if len(statements) > 1:
        raise BadRequest(f"must be a single statement, not {len(statements)}", field=field)
    ((kind, _),) = statements[0]["stmt"].items()
    if kind != "SelectStmt":
        raise BadRequest(
            f"must be a SELECT (or WITH ... SELECT, VALUES, TABLE), not {_statement_word(kind)}",
            field=field,
        )
    for kind, node in _walk(statements[0]["stmt"]):
        problem = _problem(kind, node, policy)
        if problem:
            raise BadRequest(problem, field=field)
    # Locations are byte offsets into the UTF-8 text.
    raw = query.encode("utf-8")
    start = statements[0].get("stmt_location", 0)
    length = statements[0].get("stmt_len", 0) or len(raw) - start
    return raw[start : start + length].decode("utf-8").strip()


def _parse(query: str, field: str) -> list[Node]:
    try:
        tree = json.loads(parse_sql_json(query))
    except ParseError as exc:
        if "stack depth" in str(exc) or "memory exhausted" in str(exc):
            raise BadRequest("is nested too deeply to check", field=field) from exc
        raise BadRequest(f"is not valid SQL: {exc}", field=field) from exc
    except RecursionError as exc:
        raise BadRequest("is nested too deeply to check", field=field) from exc
    statements: list[Node] = tree.get("stmts", [])
    return statements


def _statement_word(kind: str) -> str:
    """`AlterTableStmt` -> `ALTER TABLE`: the statement as a user wrote it."""
    if kind in _STATEMENT_WORDS:
        return _STATEMENT_WORDS[kind]
    return " ".join(re.findall(r"[A-Z][a-z]*", kind.removesuffix("Stmt"))).upper()


def _walk(root: Node) -> Iterator[tuple[str, Node]]:
    """Every node of a libpg_query JSON tree as (node type, fields), without recursion.

    Node-typed fields are `{"TypeName": {...fields}}` (a capitalised key); fields of a fixed
    struct type (`larg`, `typeName`, `intoClause`) are bare dicts: both are searched.
    """
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key[:1].isupper() and isinstance(value, dict):
                    yield key, value
                elif key in ("intoClause", "typeName") and isinstance(value, dict):
                    yield ("IntoClause" if key == "intoClause" else "TypeName"), value
                stack.append(value)


def _names(items: list[Node]) -> list[str]:
    return [item["String"]["sval"] for item in items if "String" in item]


def _problem(kind: str, node: Node, policy: QueryPolicy) -> str | None:
    """What is wrong with one node under `policy`, or None."""
    if kind in _WRITES:
        return f"may only read: a data-modifying WITH ({_WRITES[kind]}) is not allowed"
    if kind == "IntoClause":
        return "may only read: SELECT INTO is not allowed (it creates a table)"
    if kind == "LockingClause":
        return f"may only read: {_LOCKS.get(node.get('strength', ''), 'a locking clause')} is not allowed"
    if kind == "FuncCall":
        return _function_problem(_names(node.get("funcname", [])), policy)
    if kind == "SQLValueFunction":
        # CURRENT_DATE, CURRENT_USER...: keywords that are functions; `_N` is the (p) form.
        name = str(node.get("op", "")).removeprefix("SVFOP_").removesuffix("_N").lower()
        return None if name in policy.functions else f"{name.upper()} is not allowed on this data source"
    if kind == "RangeVar":
        return _relation_problem(node, policy)
    if kind == "TypeName":
        return _type_problem(_names(node.get("names", [])), policy)
    if kind == "A_Expr":
        operator = _names(node.get("name", []))
        if len(operator) > 1 and not _schema_allowed(operator[0], policy):
            return f"operator {'.'.join(operator)} is not allowed (schema {operator[0]})"
    return None


def _schema_allowed(schema: str, policy: QueryPolicy) -> bool:
    if schema in CATALOG_SCHEMAS:
        return schema == "pg_catalog" or policy.allow_catalogs
    return schema in policy.schemas


def _function_problem(parts: list[str], policy: QueryPolicy) -> str | None:
    if len(parts) == 2 and parts[0] == "pg_catalog":
        parts = parts[1:]
    name = ".".join(parts)
    if name in policy.functions:
        return None
    return f"function {name}() is not allowed on this data source (not on its allowlist)"


def _relation_problem(node: Node, policy: QueryPolicy) -> str | None:
    schema, name = node.get("schemaname"), node.get("relname", "")
    if node.get("catalogname"):
        return f"a reference to another database ({node['catalogname']}) is not allowed"
    if schema is None:
        # Unqualified names are looked up in pg_catalog first, where every relation is pg_*.
        if name.startswith("pg_") and not policy.allow_catalogs:
            return f"the system catalog {name} is not allowed on this data source"
        return None
    if schema in CATALOG_SCHEMAS:
        if policy.allow_catalogs:
            return None
        return f"the system catalog {schema}.{name} is not allowed on this data source"
    if schema not in policy.schemas:
        allowed = ", ".join(sorted(policy.schemas)) or "none"
        return f"schema {schema} is not allowed on this data source (allowed: {allowed})"
    return None


def _type_problem(parts: list[str], policy: QueryPolicy) -> str | None:
    if not parts:
        return None
    *schema, name = parts
    if schema and not _schema_allowed(schema[0], policy):
        return f"type {'.'.join(parts)} is not allowed (schema {schema[0]})"
    if name in CATALOG_TYPES and not policy.allow_catalogs:
        return f"a cast to {name} is not allowed on this data source (it reads the system catalogs)"
    return None
