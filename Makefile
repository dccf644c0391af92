# Two commands on a fresh machine: `make run` (the local stack renders the sample CSV) and
# `make test` (lint, type-check, the whole suite on real servers). Both install what they need.
# `make test-fast` skips the tests marked `slow`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

FONT_PACK := fonts/pack/.complete

.PHONY: run test test-fast lint typecheck pytest bench up down status system-deps node-deps fonts-pack clean

$(STAMP): pyproject.toml devstack/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./devstack
	touch $(STAMP)

# Only what pip cannot serve: PostgreSQL server binaries (the fault tests always start their own),
# FriBiDi (Pillow's bundled raqm loads it, and the engine's bidi resolver calls it), ICU (grapheme
# clusters and line breaking with the Thai/Lao/Khmer/Myanmar dictionaries), Unicode's conformance
# files (unicode-data: the bidi, line and grapheme suites), the Noto fonts the font pack copies
# (fonts-noto-core), Compose v1 (the tests validate compose.yaml with it offline), Chromium (the
# web console's browser test), Node.js (the official AsyncAPI parser checks the generated
# document) and jq (docs/operations.md reads consumer lag with it; tests/test_docs.py runs that).
system-deps:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if ! ldconfig -p 2>/dev/null | grep -q libfribidi; then missing="$$missing libfribidi0"; fi; \
	if ! ldconfig -p 2>/dev/null | grep -q libicuuc; then missing="$$missing libicu-dev"; fi; \
	if [ ! -f /usr/share/unicode/BidiCharacterTest.txt ]; then missing="$$missing unicode-data"; fi; \
	if ! dpkg -s fonts-noto-core >/dev/null 2>&1; then missing="$$missing fonts-noto-core"; fi; \
	if ! command -v docker-compose >/dev/null 2>&1; then missing="$$missing docker-compose"; fi; \
	if [ ! -x /usr/bin/chromium ]; then missing="$$missing chromium"; fi; \
	if ! command -v npm >/dev/null 2>&1; then missing="$$missing nodejs npm"; fi; \
	if ! command -v jq >/dev/null 2>&1; then missing="$$missing jq"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The AsyncAPI parser for the tests, pinned by its lock file.
NODE_DEPS := tests/tools/asyncapi/node_modules/.installed
$(NODE_DEPS): tests/tools/asyncapi/package-lock.json | system-deps
	cd tests/tools/asyncapi && npm ci --silent --no-audit --no-fund
	touch $(NODE_DEPS)
node-deps: $(NODE_DEPS)

# The optional font pack (shared/render/fontpack.py): one Noto face per script beyond the bundled
# core, copied from Debian's fonts-noto-core with its licences into fonts/pack/ (not in git).
$(FONT_PACK): shared/render/fontpack.py | $(STAMP) system-deps
	$(PY) -c 'from shared.render.fontpack import main; raise SystemExit(main())'
	touch $@

fonts-pack: $(FONT_PACK)

run: $(STAMP) system-deps $(FONT_PACK)
	$(PY) -m shared.cli.main run

up: $(STAMP) system-deps $(FONT_PACK)
	$(PY) -m shared.cli.main up

down: $(STAMP)
	$(PY) -m shared.cli.main down

status: $(STAMP)
	$(PY) -m shared.cli.main status

lint: $(STAMP)
	$(VENV)/bin/ruff check shared services devstack tests bench deploy examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) system-deps node-deps $(FONT_PACK)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The edit-run loop: lint, types and every test not marked `slow` (fault injection, stacks of
# their own, million-row files, the browser). CI runs `make test`, which runs everything.
test-fast: lint typecheck $(STAMP) system-deps node-deps $(FONT_PACK)
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP) system-deps $(FONT_PACK)
	$(PY) bench/bench_render.py
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .imagegen fonts/pack
