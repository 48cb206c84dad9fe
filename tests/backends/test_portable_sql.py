"""Every `.sql` file of the clauses stage parses in DuckDB and in Spark SQL, unchanged (issue 14), and
keeps to the portable subset (settlement/clauses/portable.py)."""

from __future__ import annotations

import re

import duckdb
import pytest

from settlement.clauses import portable
from tests.backends.statements import filled


def test_every_sql_file_is_listed():
    on_disk = sorted(p.stem for p in portable.HERE.glob("*.sql"))
    assert on_disk == sorted(portable.SQL_FILES)


@pytest.mark.parametrize("name", portable.SQL_FILES)
def test_parses_in_duckdb(name):
    statements = duckdb.extract_statements(filled(name))
    assert len(statements) == 1


@pytest.mark.parametrize("name", portable.SQL_FILES)
def test_parses_in_spark(spark, name):
    # the parser alone (no tables needed); tests below also analyse and run every statement
    spark._jsparkSession.sessionState().sqlParser().parsePlan(filled(name))


FORBIDDEN = [r"::", r"\bVARCHAR\b", r"\bHUGEINT\b", r"//", r"\bQUALIFY\b", r"\bFILTER\s*\(",
             r"NOT\s+MATERIALIZED", r"\bCREATE\b", r"\bGROUP\s+BY\s+ALL\b", r"\bORDER\s+BY\s+ALL\b"]


@pytest.mark.parametrize("name", portable.SQL_FILES)
def test_keeps_to_the_portable_subset(name):
    code = "\n".join(line.split("--", 1)[0] for line in portable.text(name).splitlines())
    for pattern in FORBIDDEN:
        assert not re.search(pattern, code, re.IGNORECASE), f"{name}.sql uses {pattern}"
