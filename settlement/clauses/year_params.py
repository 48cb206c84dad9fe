"""The parameter values one settlement year uses (rules as dated data, ``settlement/core/policy_params.toml``).

Rates, caps and the caller threshold are read on the first in-scope day of the year, the window on 31 Dec
(docs/rules.md, P2/P3). A year without in-scope days needs no rate: it pays nothing (P2).
Imports ``settlement.core`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class YearParams:
    """The parameter values one settlement year uses (dated parameters read once)."""

    year: int
    first_day: date | None  # first in-scope day of the year (P2 ∩ P3), None when the year has none
    last_day: date | None
    c6_rate: Decimal | None
    c6_threshold: int | None
    c6_cap: Decimal | None
    c7_rate: Decimal | None
    c7_cap: Decimal | None
    equity_threshold: Decimal | None
    window_start: date | None
    window_end: date | None


def year_params(params, year: int) -> YearParams:
    """Read every value a year needs; a year without in-scope days needs none (it pays nothing, P2)."""
    days = params.in_scope_days(year)
    if days is None:
        return YearParams(year, None, None, None, None, None, None, None, None, None, None)
    first, last = days
    v = lambda name: params.value(name, first)  # noqa: E731 - rates on the first in-scope day
    return YearParams(
        year=year,
        first_day=first,
        last_day=last,
        c6_rate=Decimal(v("clause6.rate")),
        c6_threshold=int(v("clause6.caller_threshold")),
        c6_cap=Decimal(v("clause6.cap")),
        c7_rate=Decimal(v("clause7.rate")),
        c7_cap=Decimal(v("clause7.cap")),
        equity_threshold=Decimal(v("affiliates.equity_threshold")),
        window_start=params.value("window.start", date(year, 12, 31)),
        window_end=params.value("window.end", date(year, 12, 31)),
    )


def lit(value) -> str:
    """SQL literal for a parameter value we produced ourselves (dates, Decimals, ints), never user text.

    Decimals are typed DECIMAL(38,6): a rate times a year's base (DECIMAL(38,2)) stays exact (P10.8)."""
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return f"CAST('{value}' AS DECIMAL(38,6))"
    return str(int(value))
