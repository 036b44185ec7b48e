# The two promises of the README: `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_SCALE ?= 0.05
DEMO_DAYS ?= 3

.PHONY: setup demo test test-fast lint clean check-java

check-java:
	@bash scripts/check-java.sh

$(STAMP): pyproject.toml | check-java
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/lakehouse fetch-jars
	@touch $(STAMP)

setup: check-java $(STAMP)

demo: setup
	$(VENV)/bin/lakehouse demo --dir $(DEMO_DIR) --scale $(DEMO_SCALE) --days $(DEMO_DAYS)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data/demo build dist .pytest_cache
