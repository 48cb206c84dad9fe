"""P1 rounding and the P10.7 cap split, in Python and in DuckDB SQL (settlement.core.money)."""

from __future__ import annotations

from decimal import Decimal as D

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.core.money import CENT, round_money, split_cap, sql_round_money, sql_split_cap


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0.005", "0.01"),  # P1 四舍五入: the tie goes up
        ("2.675", "2.68"),  # a binary float would give 2.67 here
        ("0.004", "0.00"),
        ("1.005", "1.01"),
        ("1234.567", "1234.57"),  # 10% x 12345.67
        ("1234.565", "1234.57"),
        ("1234.5649999", "1234.56"),
        ("7", "7.00"),
        ("-0.005", "-0.01"),  # ties away from zero, as DuckDB ROUND(DECIMAL) does
    ],
)
def test_round_money_half_up(raw: str, expected: str) -> None:
    got = round_money(D(raw))
    assert got == D(expected) and str(got) == expected  # value and exactly two places


def test_round_money_refuses_float_and_bool() -> None:
    with pytest.raises(TypeError, match="float"):
        round_money(2.675)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_money(True)  # type: ignore[arg-type]
    assert round_money(3) == D("3.00")


def test_sql_round_money_agrees_with_python_on_ties() -> None:
    con = duckdb.connect()
    values = ["0.005", "2.675", "0.004", "1.005", "1234.565", "-0.005", "-2.675", "99999999.995", "0.0149"]
    for v in values:
        sql_value = con.execute(f"SELECT {sql_round_money('CAST(? AS DECIMAL(18,4))')}", [v]).fetchall()[0][0]
        assert sql_value == round_money(D(v)), v
    # typed DECIMAL(18,2), so it can be stored and summed exactly
    assert con.execute(f"SELECT typeof({sql_round_money('CAST(0.10 AS DECIMAL(3,2)) * CAST(12345.67 AS DECIMAL(18,2))')})").fetchall() == [("DECIMAL(18,2)",)]


def test_split_cap_leftover_cent_tie_broken_by_dataset_id() -> None:
    # Three datasets of 600,000.00 each: Σ 1,800,000.00 > cap 1,000,000.00 (P10.7).
    # Each share = 1,000,000.00 x 600,000 / 1,800,000 = 333,333.333...; floored 333,333.33; 3 x = 999,999.99.
    # One cent left; all remainders equal (0.333 cent) → the smallest dataset_id, 'a', gets it.
    # Insertion order c, b, a shows the tie is by id, not by order.
    got = split_cap({"c": D("600000.00"), "b": D("600000.00"), "a": D("600000.00")}, D("1000000.00"))
    assert got == {"a": D("333333.34"), "b": D("333333.33"), "c": D("333333.33")}
    assert sum(got.values()) == D("1000000.00")


def test_split_cap_leftover_to_largest_remainder() -> None:
    # x 700,000.00, y 350,000.00, z 150,000.00: Σ 1,200,000.00.
    # x: 1,000,000 x 7/12 = 583,333.333.. → 583,333.33 (remainder 0.333 cent)
    # y: 1,000,000 x 3.5/12 = 291,666.666.. → 291,666.66 (remainder 0.667 cent)
    # z: 1,000,000 x 1.5/12 = 125,000.00 exactly (remainder 0)
    # floors sum 999,999.99 → the one leftover cent goes to y (largest remainder) → 291,666.67.
    got = split_cap({"x": D("700000.00"), "y": D("350000.00"), "z": D("150000.00")}, D("1000000.00"))
    assert got == {"x": D("583333.33"), "y": D("291666.67"), "z": D("125000.00")}


def test_split_cap_at_or_under_cap_unchanged() -> None:
    # "exceeds" (P10.7): exactly the cap is not split.
    assert split_cap({"a": D("400000.00"), "b": D("600000.00")}, D("1000000.00")) == {
        "a": D("400000.00"), "b": D("600000.00")}
    assert split_cap({"a": D("1.50")}, D("1000000.00")) == {"a": D("1.50")}
    assert split_cap({}, D("1000000.00")) == {}


def test_split_cap_refuses_inexact_input() -> None:
    with pytest.raises(TypeError):
        split_cap({"a": 1.5}, D("1.00"))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="more than 2 decimals"):
        split_cap({"a": D("1.005")}, D("1.00"))


def _sql_split(con, payables: dict[str, D], cap: D) -> dict[str, D]:
    con.execute("CREATE OR REPLACE TEMP TABLE p (owner_id VARCHAR, dataset_id VARCHAR, payable DECIMAL(18,2))")
    if payables:
        con.executemany("INSERT INTO p VALUES ('o', ?, ?)", [[k, v] for k, v in payables.items()])
    rows = con.execute(sql_split_cap("SELECT * FROM p", f"CAST('{cap}' AS DECIMAL(18,2))")).fetchall()
    return {dataset: capped for _o, dataset, _p, capped in rows}


def test_sql_split_cap_same_as_python_on_hand_examples() -> None:
    con = duckdb.connect()
    assert _sql_split(con, {"c": D("600000.00"), "b": D("600000.00"), "a": D("600000.00")}, D("1000000.00")) == {
        "a": D("333333.34"), "b": D("333333.33"), "c": D("333333.33")}
    assert _sql_split(con, {"x": D("700000.00"), "y": D("350000.00"), "z": D("150000.00")}, D("1000000.00")) == {
        "x": D("583333.33"), "y": D("291666.67"), "z": D("125000.00")}


_cents = st.integers(min_value=0, max_value=50_000_000).map(lambda c: D(c).scaleb(-2).quantize(CENT))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), _cents, max_size=7), _cents)
def test_split_cap_properties_and_sql_twin(payables: dict[str, D], cap: D) -> None:
    got = split_cap(payables, cap)
    total = sum(payables.values(), D("0"))
    if total > cap:
        assert sum(got.values(), D("0")) == cap  # exactly the cap (P10.7)
        for k, v in got.items():  # each share is its exact proportional share, floored, plus at most 1 cent
            exact = cap * payables[k] / total
            assert v - CENT < exact <= v + CENT
    else:
        assert got == payables
    assert _sql_split(duckdb.connect(), payables, cap) == got
