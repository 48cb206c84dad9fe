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

test: $(STAMP) system-deps
	$(VENV)/bin/pytest

# P3: results must not depend on the host's time zone: the whole suite under three zones.
test-tz: $(STAMP) system-deps
	TZ=UTC $(VENV)/bin/pytest
	TZ=Asia/Shanghai $(VENV)/bin/pytest
	TZ=America/New_York $(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) *.duckdb *.duckdb.wal .pytest_cache
