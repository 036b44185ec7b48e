# The two promises of the README: `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_SCALE ?= 0.05
DEMO_DAYS ?= 3

.PHONY: setup demo test test-long test-fast lint clean check-java dist browser

check-java:
	@bash scripts/check-java.sh

# The report test opens the page in Debian's headless Chromium (with chromedriver).
browser:
	@bash scripts/ensure-chromium.sh

$(STAMP): pyproject.toml | check-java
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/lakehouse fetch-jars
	@touch $(STAMP)

setup: check-java $(STAMP)

demo: setup
	$(VENV)/bin/lakehouse demo --dir $(DEMO_DIR) --scale $(DEMO_SCALE) --days $(DEMO_DAYS)

test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# The long forms (marker `long`): the crash-recovery test's 20+ kills, one child process each.
test-long: setup
	$(VENV)/bin/pytest -m long -n 0

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data/demo build dist .pytest_cache


# What a cluster needs, in dist/: the wheel (--py-files, and `pip install` on the driver and the
# Airflow hosts), the spark-submit scripts, conf/, the expectation suites, the DAG, and all of it
# as one lakehouse-<version>-cluster.tar.gz (see README, "Running on a cluster").
dist: setup
	@set -euo pipefail; \
	rm -rf dist; mkdir -p dist; \
	$(PY) -m pip wheel --quiet --no-deps -w dist . ; \
	version=$$($(PY) -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"); \
	name=lakehouse-$$version-cluster; \
	cp -r jobs conf expectations dags dist/; \
	find dist -name __pycache__ -prune -exec rm -rf {} +; \
	mkdir -p dist/$$name; \
	cp -r dist/*.whl dist/jobs dist/conf dist/expectations dist/dags dist/$$name/; \
	$(VENV)/bin/lakehouse packages > dist/$$name/PACKAGES; \
	tar -czf dist/$$name.tar.gz -C dist $$name; \
	rm -rf dist/$$name; \
	echo "Built in dist/:"; \
	echo "  $$(ls dist/*.whl)"; \
	echo "  dist/jobs/         $$(ls dist/jobs/*.py | wc -l) spark-submit scripts"; \
	echo "  dist/conf/         $$(ls dist/conf/*.yml | wc -l) configuration files"; \
	echo "  dist/expectations/ $$(ls dist/expectations/*.json | wc -l) expectation suites"; \
	echo "  dist/dags/         the Airflow DAG"; \
	echo "  dist/$$name.tar.gz ($$(du -h dist/$$name.tar.gz | cut -f1)): all of the above and PACKAGES (--packages coordinates)"
