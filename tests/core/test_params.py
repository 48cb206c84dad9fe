"""Policy parameters as dated data (settlement.core.params, settlement/policy_params.toml)."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal as D
from pathlib import Path

import pytest

from settlement.core.params import (
    ParameterFileError,
    ParameterNotInForce,
    UnknownParameter,
    default_params_path,
    load_params,
    parse_params,
)

DAY = dt.date(2024, 6, 1)


def test_packaged_values_are_exact() -> None:
    p = load_params()
    assert p.value("clause6.rate", DAY) == D("0.10")  # clause 6, P10.5
    assert p.value("clause6.caller_threshold", DAY) == 3  # "more than 3", P10.4
    assert type(p.value("clause6.caller_threshold", DAY)) is int
    assert p.value("clause6.cap", DAY) == D("1000000.00")  # P10.7
    assert p.value("clause7.rate", DAY) == D("0.01")  # P11.3
    assert p.value("clause7.cap", DAY) == D("1000000.00")  # P11.3
    assert p.value("affiliates.equity_threshold", DAY) == D("0.25")  # P6
    assert p.value("window.start", DAY) == dt.date(2023, 5, 8)  # P2
    assert p.value("window.end", DAY) == dt.date(2026, 5, 8)  # P2
    for name in ("clause6.rate", "clause6.cap", "clause7.rate", "clause7.cap", "affiliates.equity_threshold"):
        assert isinstance(p.value(name, DAY), D), name  # never a float (P1)


def test_every_value_cites_a_clause_or_rule() -> None:
    p = load_params()
    expected_rule = {"clause6.rate": "P10.5", "clause6.caller_threshold": "P10.4", "clause6.cap": "P10.7",
                     "clause7.rate": "P11.3", "clause7.cap": "P11.3", "window.start": "P2", "window.end": "P2",
                     "affiliates.equity_threshold": "P6"}
    assert set(p.names()) == set(expected_rule)
    for period in p.periods:
        assert expected_rule[period.name] in period.citation, period


def test_sha256_is_of_the_file_bytes() -> None:
    p = load_params()
    assert p.sha256 == hashlib.sha256(default_params_path().read_bytes()).hexdigest()
    assert load_params(default_params_path()).sha256 == p.sha256


def test_window_days_inclusive() -> None:
    p = load_params()
    assert p.value("clause6.rate", dt.date(2023, 5, 8)) == D("0.10")  # first day of the window
    assert p.value("clause7.rate", dt.date(2026, 5, 8)) == D("0.01")  # last day of the window
    for outside in (dt.date(2023, 5, 7), dt.date(2026, 5, 9)):
        with pytest.raises(ParameterNotInForce, match=r"'clause6\.rate' is not in force on " + str(outside)):
            p.value("clause6.rate", outside)


def test_not_in_force_is_a_lookup_error_never_zero() -> None:
    p = load_params()
    with pytest.raises(LookupError):
        p.value("clause7.cap", dt.date(2030, 1, 1))
    with pytest.raises(UnknownParameter, match="clause8.rate"):
        p.value("clause8.rate", DAY)
    with pytest.raises(TypeError):
        p.value("clause6.rate", dt.datetime(2024, 1, 1, 12))  # a date, not an instant


def test_in_scope_days_per_year() -> None:
    # P2 ∩ P3: year Y's in-scope days; window params are looked up on 31 Dec of Y.
    p = load_params()
    assert p.in_scope_days(2023) == (dt.date(2023, 5, 8), dt.date(2023, 12, 31))
    assert p.in_scope_days(2024) == (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert p.in_scope_days(2026) == (dt.date(2026, 1, 1), dt.date(2026, 5, 8))
    assert p.in_scope_days(2022) is None
    assert p.in_scope_days(2027) is None
    with pytest.raises(ParameterNotInForce, match="window.start"):
        p.window_for_year(2022)
    # the clause values are in force on the first in-scope day of every settlement year
    for year in (2023, 2024, 2025, 2026):
        first, _last = p.in_scope_days(year)
        assert p.value("clause6.rate", first) == D("0.10")


def entry(name: str, value: str, valid_from: str, citation: str) -> str:
    """One open-ended [[parameter]] entry; ``value`` as TOML writes it (a date, an integer, a quoted decimal)."""
    return f'[[parameter]]\nname = "{name}"\nvalue = {value}\nvalid_from = {valid_from}\ncitation = "{citation}"\n'


# Every parameter but clause6.rate, which each test writes its own way.
BASE = "\n" + "".join(entry(*row) for row in (
    ("window.start", "2023-05-08", "2023-01-01", "P2"),
    ("window.end", "2026-05-08", "2023-01-01", "P2"),
    ("clause6.caller_threshold", "3", "2023-05-08", "P10.4"),
    ("clause6.cap", '"1000000.00"', "2023-05-08", "P10.7"),
    ("clause7.rate", '"0.01"', "2023-05-08", "P11.3"),
    ("clause7.cap", '"1000000.00"', "2023-05-08", "P11.3"),
    ("affiliates.equity_threshold", '"0.25"', "2023-05-08", "P6"),
))

RATE_OK = """
[[parameter]]
name = "clause6.rate"
value = "0.10"
valid_from = 2023-05-08
valid_to = 2024-12-31
citation = "Clause 6; P10.5"
"""


def test_minimal_file_and_amendment_periods(tmp_path: Path) -> None:
    amended = RATE_OK + """
[[parameter]]
name = "clause6.rate"
value = "0.12"
valid_from = 2025-01-01
citation = "amendment; P10.5"
"""
    f = tmp_path / "p.toml"
    f.write_text(BASE + amended, encoding="utf-8")
    p = load_params(f)
    assert p.value("clause6.rate", dt.date(2024, 12, 31)) == D("0.10")
    assert p.value("clause6.rate", dt.date(2025, 1, 1)) == D("0.12")
    assert p.value("clause6.rate", dt.date(2099, 1, 1)) == D("0.12")  # open-ended period
    assert p.period("clause6.rate", dt.date(2025, 1, 1)).citation == "amendment; P10.5"
    with pytest.raises(ParameterNotInForce):
        p.value("clause6.rate", dt.date(2023, 5, 7))


def test_value_without_citation_is_refused() -> None:
    no_citation = RATE_OK.replace('citation = "Clause 6; P10.5"\n', "")
    with pytest.raises(ParameterFileError, match=r"'clause6\.rate' has no citation"):
        parse_params((BASE + no_citation).encode())
    blank = RATE_OK.replace('"Clause 6; P10.5"', '"  "')
    with pytest.raises(ParameterFileError, match=r"'clause6\.rate' has no citation"):
        parse_params((BASE + blank).encode())


@pytest.mark.parametrize(
    "broken, message",
    [
        (RATE_OK.replace('"0.10"', "0.10"), r"'clause6\.rate' is a float; write decimals as strings"),
        (RATE_OK.replace('"0.10"', '"ten"'), r"'clause6\.rate' is not a decimal"),
        (RATE_OK.replace('"0.10"', "10"), r"'clause6\.rate' must be a Decimal, got int"),
        (RATE_OK.replace("valid_from = 2023-05-08\n", ""), r"'clause6\.rate' has no valid_from"),
        (RATE_OK.replace("valid_to = 2024-12-31", "valid_to = 2022-12-31"), "before valid_from"),
        (RATE_OK + RATE_OK.replace("valid_from = 2023-05-08", "valid_from = 2024-06-01"), "overlapping periods"),
        ("", "missing parameters clause6.rate"),
        (RATE_OK.replace("citation", "source = 'x'\ncitation"), "unknown keys"),
    ],
)
def test_malformed_files_are_refused_naming_the_parameter(broken: str, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_params((BASE + broken).encode())


def test_not_toml_is_refused() -> None:
    with pytest.raises(ParameterFileError, match="not a valid UTF-8 TOML"):
        parse_params(b"[[parameter]\nname=")
