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

.PHONY: run test test-fast test-cluster lint typecheck pytest bench up down status system-deps node-deps \
	fonts-pack clean image image-test debian-base

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
# document), jq (docs/operations.md reads consumer lag with it; tests/test_docs.py runs that), and
# for `make image`/`image-test`: podman with runc and its network plugins (dnsname: compose's
# services find each other by name), and mmdebstrap (a Debian base image where no registry is
# reachable).
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
	if ! command -v podman >/dev/null 2>&1; then missing="$$missing podman"; fi; \
	if ! command -v runc >/dev/null 2>&1; then missing="$$missing runc"; fi; \
	if [ ! -d /usr/lib/cni ]; then missing="$$missing containernetworking-plugins"; fi; \
	if [ ! -x /usr/lib/cni/dnsname ]; then missing="$$missing golang-github-containernetworking-plugin-dnsname"; fi; \
	if ! command -v iptables >/dev/null 2>&1; then missing="$$missing iptables"; fi; \
	if ! command -v mmdebstrap >/dev/null 2>&1; then missing="$$missing mmdebstrap"; fi; \
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
	$(VENV)/bin/ruff format --check shared services devstack tests bench deploy examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) system-deps node-deps $(FONT_PACK)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The edit-run loop: lint, types and every test not marked `slow` (fault injection, stacks of
# their own, million-row files, CLI subprocesses). CI runs `make test`, which runs everything.
test-fast: lint typecheck $(STAMP) system-deps node-deps $(FONT_PACK)
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

# The replication tests alone (also part of `make test`): a three-server nats-server cluster on
# loopback, a server killed and all restarted mid-job, replica counts changed in place.
test-cluster: $(STAMP) system-deps $(FONT_PACK)
	$(VENV)/bin/pytest tests/faults/test_cluster.py tests/devstack/test_cluster.py \
		tests/shared/runtime/bus/test_replicas.py $(PYTEST_ARGS)

bench: $(STAMP) system-deps $(FONT_PACK)
	$(PY) bench/bench_render.py
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .imagegen fonts/pack

# --- the container image ---------------------------------------------------------------------
# `make image` builds deploy/Dockerfile with podman on PYTHON_IMAGE (the official slim Python
# image). Where it cannot be pulled (no registry reachable), the base is made from Debian's own
# packages instead (debian-base). The host's package index and CA bundle go in as a build
# argument and a build secret, so the Dockerfile stays free of anything site-specific.
# `make image-test` runs the image for real (tests/image/).
IMAGE ?= localhost/imagegen:dev
PYTHON_IMAGE ?= docker.io/library/python:3.11-slim-bookworm
DEBIAN_BASE ?= localhost/imagegen-debian-base:bookworm
# runc and ulimits this host allows (tests/image/containers.conf); override for your own.
export CONTAINERS_CONF ?= $(CURDIR)/tests/image/containers.conf
PIP_INDEX_URL ?= $(shell $(PYTHON) -m pip config get global.index-url 2>/dev/null)
CA_BUNDLE ?= $(firstword $(wildcard $(PIP_CERT) $(SSL_CERT_FILE) /etc/ssl/certs/ca-certificates.crt))
IMAGE_BUILD_FLAGS ?= $(if $(PIP_INDEX_URL),--build-arg PIP_INDEX_URL=$(PIP_INDEX_URL)) \
	$(if $(CA_BUNDLE),--secret id=ca_bundle$(,)src=$(CA_BUNDLE))
IMAGE_BASE_USED := .imagegen/image-base
, := ,

# Debian bookworm (the slim image's release) with Python 3.11, trimmed like the slim images
# (no manuals, docs or translations; licences kept), imported as $(DEBIAN_BASE). Once per host.
debian-base: system-deps
	@podman image exists $(DEBIAN_BASE) || { \
		echo "building $(DEBIAN_BASE) from Debian packages (mmdebstrap)"; \
		mmdebstrap --quiet --variant=minbase \
			--include=python3,python3-venv,ca-certificates,python-is-python3 \
			--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--customize-hook='rm -rf "$$1"/var/cache/apt/* "$$1"/var/lib/apt/lists/*' \
			bookworm - \
		| podman import --quiet --change 'ENV LANG=C.UTF-8' \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'CMD ["python3"]' - $(DEBIAN_BASE); }

image: system-deps
	@base="$(PYTHON_IMAGE)"; \
	if ! podman image exists "$$base" && ! timeout 120 podman pull --quiet "$$base" >/dev/null 2>&1; then \
		echo "$$base cannot be pulled: using a base made from Debian packages"; \
		$(MAKE) --no-print-directory debian-base && base="$(DEBIAN_BASE)" || exit 1; \
	fi; \
	mkdir -p $(dir $(IMAGE_BASE_USED)) && echo "$$base" > $(IMAGE_BASE_USED); \
	podman build --quiet --format docker --layers -f deploy/Dockerfile \
		--build-arg PYTHON_IMAGE="$$base" $(IMAGE_BUILD_FLAGS) -t $(IMAGE) . >/dev/null && \
	podman image inspect --format '$(IMAGE): {{.Size}} bytes on '"$$base" $(IMAGE)

image-test: image $(STAMP)
	IMAGEGEN_TEST_IMAGE=$(IMAGE) IMAGEGEN_TEST_BASE="$$(cat $(IMAGE_BASE_USED))" \
		$(VENV)/bin/pytest tests/image $(PYTEST_ARGS)
