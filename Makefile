# Quickstart: `make demo` and `make test` on a fresh machine with Python 3.11.
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)
STAMP := $(VENV)/.installed

.PHONY: demo test test-tz system-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,spark]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/settle demo

# chromium, CJK fonts and a Java runtime, installed with apt-get when missing (the script says so)
system-deps:
	@bash .ci/system-deps

# The suite on two workers (pytest-xdist; tests/conftest.py keeps each module, and all of tests/backends with
# its one Spark session, on one worker). Schemathesis makes one test per API operation only in a plain run
# (under xdist it folds them into one), so its file runs on its own after the rest.
SCHEMA_TESTS := tests/api/test_api_schemathesis.py
PYTEST_ALL := $(VENV)/bin/pytest -n 2 --ignore=$(SCHEMA_TESTS) && $(VENV)/bin/pytest $(SCHEMA_TESTS)

test: $(STAMP) system-deps
	$(PYTEST_ALL)

# P3: results must not depend on the host's time zone: the whole suite under three zones.
test-tz: $(STAMP) system-deps
	export TZ=UTC && $(PYTEST_ALL)
	export TZ=Asia/Shanghai && $(PYTEST_ALL)
	export TZ=America/New_York && $(PYTEST_ALL)

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) *.duckdb *.duckdb.wal .pytest_cache
