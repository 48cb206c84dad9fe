"""Money: the one rounding rule and the cap split (P1, P10.7).

Owns: ``round_money`` (half-up to 0.01, the only rounding in the engine), ``split_cap`` (largest-remainder
split of a capped total) and their DuckDB SQL twins. Must not import the store, the ledger, the CLI or the
API: it is pure arithmetic.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def _require_exact(x: object, what: str) -> Decimal:
    # P1: never binary floats. bool is an int subclass and never a money amount.
    if isinstance(x, bool) or not isinstance(x, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal (or int), not {type(x).__name__}: {x!r} (P1: exact money)")
    d = Decimal(x)
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {d}")
    return d


def round_money(x: Decimal) -> Decimal:
    """Round once, half-up (四舍五入) to 0.01 (P1): 0.005 -> 0.01, 2.675 -> 2.68, -0.005 -> -0.01.

    Python's ROUND_HALF_UP rounds ties away from zero, as DuckDB's ROUND on DECIMAL does (see
    ``sql_round_money``); awards are never negative, so both mean 四舍五入.
    """
    return _require_exact(x, "amount").quantize(CENT, rounding=ROUND_HALF_UP)


def _cents(x: Decimal, what: str) -> int:
    d = _require_exact(x, what)
    if d != d.quantize(CENT):
        raise ValueError(f"{what} has more than 2 decimals: {d} (P1)")
    return int(d.scaleb(2))


def split_cap(payables: dict[str, Decimal], cap: Decimal) -> dict[str, Decimal]:
    """Cap one owner's year (P10.7): if Σ payable > cap, the owner gets exactly ``cap``, split in proportion
    to payable, each share floored to 0.01, the leftover cents one each to the largest remainders, ties by
    dataset_id (ascending). Otherwise the payables are returned unchanged.

    Keys are dataset ids; amounts have at most 2 decimals and are ≥ 0. Exact integer-cent arithmetic, so
    no precision context can change the result.
    """
    cap_c = _cents(cap, "cap")
    if cap_c < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    cents = {k: _cents(v, f"payable of {k}") for k, v in payables.items()}
    if any(c < 0 for c in cents.values()):
        raise ValueError(f"payables must be >= 0: {payables}")
    total = sum(cents.values())
    if total <= cap_c:
        return {k: Decimal(c).scaleb(-2).quantize(CENT) for k, c in cents.items()}
    # share_k = cap * p_k / total = floor + remainder/total; compare remainders as exact integers.
    floors = {k: (cap_c * c) // total for k, c in cents.items()}
    remainders = {k: (cap_c * c) % total for k, c in cents.items()}
    leftover = cap_c - sum(floors.values())  # 0 <= leftover < number of datasets
    for k in sorted(cents, key=lambda k: (-remainders[k], k))[:leftover]:
        floors[k] += 1
    return {k: Decimal(c).scaleb(-2).quantize(CENT) for k, c in floors.items()}


def sql_round_money(expr: str, *, precision: int = 18) -> str:
    """DuckDB SQL for ``round_money(expr)`` on an exact DECIMAL expression, typed DECIMAL(precision,2).

    DuckDB's ROUND(DECIMAL, 2) rounds ties away from zero, i.e. exactly Python's ROUND_HALF_UP
    (tests/core/test_money.py checks them against each other). Never pass a DOUBLE: cast inputs to DECIMAL
    first. Sums of many amounts (a year's base or volume) need ``precision=38`` (P10.8).
    """
    return f"CAST(ROUND(({expr}), 2) AS DECIMAL({int(precision)},2))"


def sql_split_cap(payables: str, cap: str) -> str:
    """DuckDB SQL (a query) applying ``split_cap`` set-based to a relation.

    ``payables`` is a relation (table/view/subquery text) with columns owner_id, dataset_id,
    payable (DECIMAL, 2 places); ``cap`` a SQL expression over that relation's columns (a constant, or a
    column when each owner_id has its own total to reach, e.g. a dataset's payable shared among its owners,
    P10.1). The query returns owner_id, dataset_id, payable, capped (DECIMAL(38,2)): the amount after the
    split, equal to payable where the total is at or under the cap. Integer cents (HUGEINT) keep it exact.
    """
    return f"""
WITH p AS (
    SELECT owner_id, dataset_id, payable,
           CAST(payable * 100 AS HUGEINT) AS c,
           CAST(({cap}) * 100 AS HUGEINT) AS cap_c,
           sum(CAST(payable * 100 AS HUGEINT)) OVER (PARTITION BY owner_id) AS total_c
    FROM ({payables}) AS src
), s AS (
    SELECT *, CASE WHEN total_c > cap_c THEN (cap_c * c) // total_c ELSE c END AS floor_c,
              CASE WHEN total_c > cap_c THEN (cap_c * c) % total_c ELSE 0 END AS rem
    FROM p
), r AS (
    SELECT *, cap_c - sum(floor_c) OVER (PARTITION BY owner_id) AS leftover,
           row_number() OVER (PARTITION BY owner_id ORDER BY rem DESC, dataset_id) AS rank_
    FROM s
)
SELECT owner_id, dataset_id, payable,
       -- integer cents -> DECIMAL by exact decimal multiplication (integer '/' would give a DOUBLE)
       CAST(CAST(floor_c + CASE WHEN total_c > cap_c AND rank_ <= leftover THEN 1 ELSE 0 END AS DECIMAL(36,0))
            * CAST(0.01 AS DECIMAL(2,2)) AS DECIMAL(38,2)) AS capped
FROM r
"""
