# tensorgate: `make serve` serves models/ on 127.0.0.1:8000; `make test` runs every check.
# Both create the virtual environment in .venv and install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.stamp-runtime
DEV_STAMP := $(VENV)/.stamp-dev
CHROMIUM := /usr/bin/chromium

.PHONY: serve test lint typecheck unit models schemas openapi clean

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
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/ruff check src tests scripts
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The Swagger UI browser test drives Debian's chromium (never a downloaded browser build).
$(CHROMIUM):
	apt-get update
	apt-get install -y --no-install-recommends chromium

unit: $(DEV_STAMP) $(CHROMIUM)
	$(BIN)/pytest --cov --cov-report=term

test: lint typecheck unit

models: $(DEV_STAMP)
	$(BIN)/python scripts/demo_models.py --out models

# The checked-in schemas; tests fail when they drift from the code.
schemas: openapi $(RUNTIME_STAMP)
	$(BIN)/tensorgate config-schema --output schemas/model-config.schema.json

openapi: $(RUNTIME_STAMP)
	$(BIN)/tensorgate openapi --output schemas/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
