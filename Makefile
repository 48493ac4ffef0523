# Everything runs from a virtualenv in .venv, created and refreshed from the repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')

.PHONY: install up test unit lint stubs clean

$(STAMP): pyproject.toml setup.py scripts/generate_stubs.py package-lock.json jvm/pom.xml $(PROTOS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --silent
	$(BIN)/python -m services.executor.jars  # Spark's JVM jars from Maven Central, once, into the cache
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project, its tools and the generated stubs

up: install  ## start the whole stack on embedded defaults (Ctrl-C stops it)
	$(BIN)/autoloader up

lint: install  ## ruff, mypy, buf lint and buf breaking (against the last release's protos/releases/ image)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/buf_lint.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/buf_breaking.sh

test: lint  ## lint, then every test (unit, integration, e2e) against real PostgreSQL and real servers
	$(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q tests/unit

stubs: install  ## regenerate the gRPC stubs after editing protos/
	$(BIN)/python scripts/generate_stubs.py

clean:
	rm -rf $(VENV) node_modules build *.egg-info
