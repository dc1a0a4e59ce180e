# tensorgate: `make serve` serves models/ on 127.0.0.1:8000; `make test` runs every check.
# Both create the virtual environment in .venv and install what they need first.
# While working: `make unit-fast` (no server processes, no browser) and `make e2e` (only those).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.stamp-runtime
DEV_STAMP := $(VENV)/.stamp-dev
CHROMIUM := /usr/bin/chromium
# Debian's promtool and kubectl (with its built-in kustomize), for tests/deploy.
PROMTOOL := $(BIN)/promtool
KUBECTL := $(BIN)/kubectl
# Debian's redis-server, for the tests of the limits' shared buckets.
REDIS_SERVER := $(BIN)/redis-server

.PHONY: gpu-check bench-ab hostile serve test lint typecheck unit unit-fast e2e models schemas openapi bench bench-quick soak wrk h2load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

serve: $(RUNTIME_STAMP)
	$(BIN)/tensorgate serve

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy
	$(BIN)/mypy bench/*.py bench/soak/*.py
	$(BIN)/mypy --config-file tests/mypy.ini

# The Swagger UI browser test drives Debian's chromium (never a downloaded browser build).
$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# tests/deploy checks the Prometheus config with Debian's promtool (package prometheus) and
# renders the Kubernetes base with Debian's kubectl (package kubernetes-client, kustomize
# built in). Only that one binary of each package is unpacked, into the virtual environment:
# installing them would start a Prometheus daemon where systemd runs, and replace a kubectl
# the machine may already have. $(call deb_binary,PACKAGE,BINARY)
define deb_binary
	cd $(VENV) && { apt-get download $(1) || { apt-get update && apt-get download $(1); }; }
	dpkg-deb --fsys-tarfile $(VENV)/$(1)_*.deb | tar -x -C $(BIN) --strip-components=3 ./usr/bin/$(2)
	rm -f $(VENV)/$(1)_*.deb
endef

$(PROMTOOL): | $(BIN)/python
	$(call deb_binary,prometheus,promtool)

$(KUBECTL): | $(BIN)/python
	$(call deb_binary,kubernetes-client,kubectl)

# The limits' Redis tests start Debian's redis-server themselves, on a free port, and stop it
# by PID. Package redis-server holds only a link (and a service that would start a daemon on
# port 6379); the program is redis-tools' redis-check-rdb, a server when called redis-server.
# It is unpacked alone, as above, with the two libraries it needs installed.
$(REDIS_SERVER): | $(BIN)/python
	dpkg -s libjemalloc2 liblzf1 >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libjemalloc2 liblzf1; }
	$(call deb_binary,redis-tools,redis-check-rdb)
	mv $(BIN)/redis-check-rdb $@

# Every test, with branch coverage gated by [tool.coverage.report] fail_under.
unit: $(DEV_STAMP) $(CHROMIUM) $(PROMTOOL) $(KUBECTL) $(REDIS_SERVER)
	$(BIN)/pytest --cov --cov-report=term

# The in-process tests alone: no server process, no browser; coverage is measured and
# gated on the full run (`unit`) only.
unit-fast: $(DEV_STAMP) $(PROMTOOL) $(KUBECTL)
	$(BIN)/pytest -m "not e2e and not browser"

# Only the tests that start real tensorgate processes or drive Swagger UI in Chromium.
e2e: $(DEV_STAMP) $(CHROMIUM) $(REDIS_SERVER)
	$(BIN)/pytest -m "e2e or browser"

# The hostile-traffic suite alone (bounded; part of make test too): slow headers and bodies,
# header floods, pipelining, envelope and row bombs, odd versions and unicode, mid-body
# disconnects, SIGTERM with stalled and in-flight clients, schemathesis.
hostile: $(DEV_STAMP)
	$(BIN)/pytest -m hostile

test: lint typecheck unit

models: $(DEV_STAMP)
	$(BIN)/python scripts/demo_models.py --out models

# The benchmark (not part of `make test`): writes docs/benchmarks.md, .png and .json.
# Set BENCH_BEARER_TOKEN to send a bearer token to tensorgate.
wrk:
	@command -v wrk >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }

# The gRPC rows' load generator: Debian's h2load, in package nghttp2-client.
h2load:
	@command -v h2load >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nghttp2-client; }

bench: $(DEV_STAMP) wrk h2load
	PYTHONPATH=scripts $(BIN)/python bench/run.py

# This tree against BASE (a git revision) and each fenced speed trick turned off, in
# alternating rounds of one session: writes docs/benchmarks-ab.md.
bench-ab: $(DEV_STAMP) wrk
	PYTHONPATH=scripts:bench $(BIN)/python bench/ab.py --base $(or $(BASE),HEAD~1)

# Every measurement of `make bench`, briefly: checks the benchmark runs; writes its page to
# BENCH_OUT (default /tmp/tensorgate-bench), never to docs/.
bench-quick: $(DEV_STAMP) wrk h2load
	PYTHONPATH=scripts $(BIN)/python bench/run.py --quick --out $(or $(BENCH_OUT),/tmp/tensorgate-bench)

# The soak (not part of `make test`, issue 20): `tensorgate serve --workers 2` under mixed
# traffic from several callers for SOAK_SECONDS (600), while its repository changes, a worker
# is killed every 2 minutes and a remote model's upstream goes down once; prints what was
# lost or failed and whether RSS and open files stayed flat; exits 1 when a target is missed.
soak: $(RUNTIME_STAMP)
	PYTHONPATH=scripts:bench $(BIN)/python -m soak --seconds $(or $(SOAK_SECONDS),600)

# On a machine with an NVIDIA GPU: the CUDA tests and the GPU benchmark (docs/benchmarks-gpu.md).
gpu-check:
	scripts/gpu_check.sh

# The checked-in schemas; tests fail when they drift from the code.
schemas: openapi $(RUNTIME_STAMP)
	$(BIN)/tensorgate config-schema --output schemas/model-config.schema.json

openapi: $(RUNTIME_STAMP)
	$(BIN)/tensorgate openapi --output schemas/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
