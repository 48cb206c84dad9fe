"""The portable statements of the clauses stage: ``.sql`` files beside this module, each a SELECT in the
subset DuckDB and Spark SQL both run unchanged (issue 14; tests/backends parses every file in both).

Placeholders ``${name}`` are filled by ``statement`` with literals we produce ourselves (``year_params.lit``:
years, dates, DECIMAL(38,6) casts, budgets), or another file's text (``exclusions.sql`` inlines
``sale_reasons.sql``). The subset: CAST(... AS STRING / DECIMAL(p,s) / DATE / BIGINT) (no ``::``, VARCHAR,
HUGEINT or ``//``), explicit GROUP BY lists, no QUALIFY, no FILTER clauses, no CREATE statements, no
``NOT MATERIALIZED``, explicit NULLS FIRST/LAST wherever NULLs are ordered, ``||`` only between STRINGs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
SQL_FILES = ("sales", "callers", "per_dataset", "volumes", "related_pairs", "cert_texts6", "cert_texts7",
             "refunds", "sale_reasons", "exclusions", "counts")


@cache
def text(name: str) -> str:
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def statement(name: str, **params) -> str:
    """The statement of ``name``.sql with every ``${placeholder}`` substituted (a missing one raises)."""
    return Template(text(name)).substitute({k: str(v) for k, v in params.items()})
