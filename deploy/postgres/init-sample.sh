#!/bin/sh
# compose.yaml's `local` data source: a sample database, a reader role and a `products` table
# from examples/products.csv. The postgres image runs this once, on an empty data volume
# (/docker-entrypoint-initdb.d). It makes what devstack/sample.py makes for `imagegen up`;
# tests/deploy/test_sample_db.py runs both and compares them.
#
#   SAMPLE_READER_PASSWORD  the reader's password (required)
#   SAMPLE_READER           the reader role        (default imagegen_reader)
#   SAMPLE_DB               the sample database    (default imagegen_sample)
#   SAMPLE_CSV              the products file      (default /sample/products.csv)
set -eu

reader="${SAMPLE_READER:-imagegen_reader}"
database="${SAMPLE_DB:-imagegen_sample}"
csv="${SAMPLE_CSV:-/sample/products.csv}"
sql() {
    psql -X -q -v ON_ERROR_STOP=1 --no-password --username "$POSTGRES_USER" \
        -v reader="$reader" -v database="$database" -v password="$SAMPLE_READER_PASSWORD" "$@"
}

sql --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 16 PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
GRANT SET ON PARAMETER temp_file_limit TO :"reader";
CREATE DATABASE :"database";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"reader";
SQL

sql --dbname "$database" <<'SQL'
CREATE TABLE products (
    id integer PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    price numeric(10, 2) NOT NULL
);
CREATE TABLE products_csv (id integer GENERATED ALWAYS AS IDENTITY, sku text, name text, price text);
SQL
# \copy takes its file name literally (no psql variables), hence a line of its own.
sql --dbname "$database" -c "\\copy products_csv (sku, name, price) FROM '$csv' WITH (FORMAT csv, HEADER true)"

sql --dbname "$database" <<'SQL'
-- '¥3.50' -> 3.50
INSERT INTO products SELECT id, sku, name, regexp_replace(price, '[^0-9.]', '', 'g')::numeric
    FROM products_csv ORDER BY id;
DROP TABLE products_csv;
-- Callable by every role by default, and they write or reach other sessions even inside a
-- READ ONLY transaction.
DO $$ DECLARE f regprocedure; BEGIN
    FOR f IN SELECT oid FROM pg_proc
              WHERE pronamespace = 'pg_catalog'::regnamespace AND proname IN (
                  'lo_creat', 'lo_create', 'lo_from_bytea', 'lo_open', 'lo_put', 'lo_truncate',
                  'lo_truncate64', 'lo_unlink', 'lowrite', 'pg_cancel_backend',
                  'pg_logical_emit_message', 'pg_notify', 'pg_terminate_backend')
    LOOP EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); END LOOP;
END $$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON products TO :"reader";
SQL
