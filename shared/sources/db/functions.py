"""The functions a data-source query may call unless the operator allows more.

A function is on this list when it computes its result from its arguments (and at most the
clock) without side effects, and reads nothing of the server: string, numeric, date/time
formatting and arithmetic, casts written as calls, conditional helpers, JSON and array
builders, aggregates and window functions, and `generate_series`/`unnest` (their size is the
statement timeout's and temp_file_limit's business). Names are as Postgres stores them
(unquoted identifiers fold to lower case); a call qualified with `pg_catalog.` counts as the
bare name.

What is left out, by class, and why (an operator may add any name per source with
`allowed_functions`, e.g. `["pg_sleep", "public.my_format"]`):

- reading the server: `pg_read_file`, `pg_ls_dir`, `pg_stat_file`, `current_setting`,
  `version`, `inet_server_addr`, the `pg_get_*` and `has_*_privilege` family, `pg_*_size`;
- large objects: every `lo_*` (`lo_create`, `lo_from_bytea` grow `pg_largeobject` even in a
  READ ONLY transaction; `lo_export` writes a file on the database host);
- messages and WAL: `pg_notify`, `pg_logical_emit_message` (both run in a READ ONLY transaction);
- other sessions and the server: `pg_terminate_backend`, `pg_cancel_backend`, `pg_reload_conf`;
- waiting: `pg_sleep`, `pg_sleep_for`, `pg_sleep_until` (a slot held for nothing);
- session settings: `set_config` (it could lift the source's own limits);
- SQL inside a string, which this check never sees: `query_to_xml`, `cursor_to_xml`,
  `table_to_xml`, `ts_stat`, `ts_rewrite`, `dblink*`;
- sequences and locks: `nextval`, `setval`, `currval`, `pg_advisory_*`;
- randomness: `random`, `setseed` (changes the session), `gen_random_uuid`;
- who is asking: `CURRENT_USER`, `SESSION_USER`, `USER`, `CURRENT_ROLE`, `CURRENT_CATALOG`,
  `CURRENT_SCHEMA` (SQL keywords, checked by these names).

`tests/shared/sources/db/test_functions.py` checks the list against a real server: every name
exists (or is a keyword, or belongs to a newer Postgres), and none is volatile except the clock
readers.
"""

from __future__ import annotations

STRING = frozenset(
    {
        "ascii", "bit_length", "btrim", "casefold", "char_length", "character_length", "chr",
        "concat", "concat_ws", "convert_from", "convert_to", "decode", "encode", "format",
        "initcap", "is_normalized", "left", "length", "lower", "lpad", "ltrim", "md5",
        "normalize", "octet_length", "overlay", "pg_collation_for", "position", "quote_ident",
        "quote_literal", "quote_nullable", "regexp_count", "regexp_instr", "regexp_like",
        "regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
        "regexp_split_to_table", "regexp_substr", "repeat", "replace", "reverse", "right", "rpad",
        "rtrim", "sha224", "sha256", "sha384", "sha512", "similar_to_escape", "split_part",
        "starts_with", "string_to_array", "string_to_table", "strpos", "substr", "substring",
        "to_ascii", "to_hex", "translate", "unistr", "upper",
    }
)  # fmt: skip

NUMERIC = frozenset(
    {
        "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "ceiling", "cos", "cosh", "cot",
        "degrees", "div", "exp", "factorial", "floor", "gcd", "lcm", "ln", "log", "log10",
        "min_scale", "mod", "pi", "pow", "power", "radians", "round", "scale", "sign", "sin",
        "sinh", "sqrt", "tan", "tanh", "to_number", "trim_scale", "trunc", "width_bucket",
    }
)  # fmt: skip

DATETIME = frozenset(
    {
        "age", "clock_timestamp", "current_date", "current_time", "current_timestamp",
        "date_add", "date_bin", "date_part", "date_subtract", "date_trunc", "extract",
        "isfinite", "justify_days", "justify_hours", "justify_interval", "localtime",
        "localtimestamp", "make_date", "make_interval", "make_time", "make_timestamp",
        "make_timestamptz", "now", "overlaps", "statement_timestamp", "timeofday", "timezone",
        "to_char", "to_date", "to_timestamp", "transaction_timestamp",
    }
)  # fmt: skip

# `int4(x)` and friends: a cast written as a call.
CASTS = frozenset(
    {
        "bool", "date", "float4", "float8", "int2", "int4", "int8", "interval", "numeric",
        "text", "time", "timestamp", "timestamptz",
    }
)  # fmt: skip

CONDITIONAL = frozenset({"num_nonnulls", "num_nulls", "pg_typeof"})

JSON = frozenset(
    {
        "array_to_json", "json_array_elements", "json_array_elements_text", "json_array_length",
        "json_build_array", "json_build_object", "json_each", "json_each_text",
        "json_extract_path", "json_extract_path_text", "json_object", "json_object_keys",
        "json_strip_nulls", "json_typeof", "jsonb_array_elements", "jsonb_array_elements_text",
        "jsonb_array_length", "jsonb_build_array", "jsonb_build_object", "jsonb_each",
        "jsonb_each_text", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_object",
        "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query",
        "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_pretty", "jsonb_strip_nulls",
        "jsonb_typeof", "row_to_json", "to_json", "to_jsonb",
    }
)  # fmt: skip

ARRAYS = frozenset(
    {
        "array_append", "array_cat", "array_dims", "array_length", "array_lower", "array_ndims",
        "array_position", "array_positions", "array_prepend", "array_remove", "array_replace",
        "array_reverse", "array_to_string", "array_upper", "cardinality", "generate_series",
        "generate_subscripts", "trim_array", "unnest",
    }
)  # fmt: skip

AGGREGATES = frozenset(
    {
        "any_value", "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or",
        "corr", "count", "covar_pop", "covar_samp", "every", "json_agg", "json_object_agg",
        "jsonb_agg", "jsonb_object_agg", "max", "min", "mode", "percentile_cont",
        "percentile_disc", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum",
        "var_pop", "var_samp", "variance",
    }
)  # fmt: skip

WINDOW = frozenset(
    {
        "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value",
        "ntile", "percent_rank", "rank", "row_number",
    }
)  # fmt: skip

DEFAULT_FUNCTIONS: frozenset[str] = (
    STRING | NUMERIC | DATETIME | CASTS | CONDITIONAL | JSON | ARRAYS | AGGREGATES | WINDOW
)

# Volatile (a new value per call) yet harmless: they only read the clock.
CLOCK_READERS = frozenset({"clock_timestamp", "timeofday"})
# SQL keywords rather than catalog functions (`SELECT CURRENT_DATE`).
SQL_KEYWORDS = frozenset({"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp"})
# Functions of newer Postgres releases than the oldest supported (15): the major version.
SINCE = {"any_value": 16, "date_add": 16, "date_subtract": 16, "array_reverse": 18, "casefold": 18}
