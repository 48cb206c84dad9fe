"""Disbursement (拨付): payment instructions for noticed amounts whose notice period has ended without a
holding objection, and the bank's confirmation of a batch.

Per ledger key of the year: amount = Σ notice lines whose period has ended − Σ instructions already
recorded (so approved − disbursed once every approved amount is noticed). A positive amount is a
``payment``; a negative one a ``recovery`` (claw-back of money already paid, never a negative payment).
A key's notice lines become due in the order they were published (a later line whose shorter period
ended first waits for the earlier one), and batch dates never go back. Each instruction is a
``ledgers.events`` record (kind ``disburse``) with its batch id; ``confirm_paid``
records the bank's payment date for a batch (kind ``paid``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from ledgers import events
from settlement.core.errors import UserError
from settlement.lifecycle.notice import refuse_unsigned, today

INSTRUCTION_COLUMNS = ("batch_id", "year", "clause", "beneficiary_id", "dataset_id", "amount", "kind")


@dataclass(frozen=True)
class Instruction:
    batch_id: str
    year: int
    clause: int
    beneficiary_id: str
    dataset_id: str
    amount: Decimal
    kind: str  # payment | recovery


@dataclass(frozen=True)
class Batch:
    batch_id: str | None  # None when there was nothing to disburse
    year: int
    on: dt.date
    instructions: tuple[Instruction, ...]


DISBURSABLE_SQL = """
WITH lines AS (
    SELECT clause, beneficiary_id, dataset_id, event_id, amount,
           min(event_id) FILTER (WHERE until_date > $on) OVER (PARTITION BY clause, beneficiary_id, dataset_id)
               AS first_pending
    FROM lifecycle_events WHERE kind = 'notice' AND year = $year
), ready AS (  -- a key's notice lines are disbursed in order: those before its first line still in its period
    SELECT clause, beneficiary_id, dataset_id, sum(amount) AS noticed
    FROM lines WHERE first_pending IS NULL OR event_id < first_pending GROUP BY ALL
), paid AS (
    SELECT clause, beneficiary_id, dataset_id, sum(amount) AS disbursed
    FROM lifecycle_events WHERE kind = 'disburse' AND year = $year GROUP BY ALL
), due AS (
    SELECT clause, beneficiary_id, dataset_id,
           CAST(coalesce(r.noticed, 0) - coalesce(p.disbursed, 0) AS DECIMAL(18,2)) AS amount
    FROM ready r FULL OUTER JOIN paid p USING (clause, beneficiary_id, dataset_id)
)
SELECT due.clause, due.beneficiary_id, due.dataset_id, due.amount
FROM due JOIN key_accounts k ON k.year = $year AND k.clause = due.clause
     AND k.beneficiary_id = due.beneficiary_id AND k.dataset_id = due.dataset_id
WHERE due.amount <> 0 AND NOT k.held
ORDER BY due.clause, due.beneficiary_id, due.dataset_id
"""


def disburse(con: duckdb.DuckDBPyConnection, year: int, *, by: str, on: dt.date | None = None) -> Batch:
    """Record one batch of instructions for ``year`` (none when nothing is due) and return it."""
    on = on or today()
    found: list[Instruction] = []

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        refuse_unsigned(c, "disbursement")  # an entry no valid approval covers is never paid (issue 15)
        last = c.execute("SELECT max(on_date) FROM lifecycle_events WHERE kind = 'disburse' AND year = ?",
                         [year]).fetchall()[0][0]
        if last is not None and on < last:
            raise UserError(f"a batch of {year} was issued on {last}: a new batch cannot be dated {on}")
        due = c.execute(DISBURSABLE_SQL, dict(year=year, on=on)).fetchall()
        if not due:
            return []
        n = c.execute("SELECT count(DISTINCT ref) + 1 FROM lifecycle_events WHERE kind = 'disburse' AND year = ?",
                      [year]).fetchall()[0][0]
        batch_id = f"D{year}-{n:03d}"
        found[:] = [Instruction(batch_id, year, clause, b, d, amount, "payment" if amount > 0 else "recovery")
                    for clause, b, d, amount in due]
        return [dict(kind="disburse", year=year, ref=batch_id, clause=x.clause, beneficiary_id=x.beneficiary_id,
                     dataset_id=x.dataset_id, amount=x.amount, actor=by, note=x.kind, on_date=on) for x in found]

    events.record(con, build)
    return Batch(found[0].batch_id if found else None, year, on, tuple(found))


def confirm_paid(con: duckdb.DuckDBPyConnection, batch_id: str, *, paid_on: dt.date, by: str) -> int:
    """Record the bank's confirmation that batch ``batch_id`` was paid on ``paid_on``; returns the event id."""
    batch_id = batch_id.strip()  # as typed on the command line or in the URL

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        rows = c.execute("SELECT min(year), min(on_date) FROM lifecycle_events WHERE kind = 'disburse' AND ref = ?",
                         [batch_id]).fetchall()
        year, issued_on = rows[0]
        if year is None:
            raise UserError(f"no batch {batch_id}", code="not_found")
        done = c.execute("SELECT min(on_date) FROM lifecycle_events WHERE kind = 'paid' AND ref = ?",
                         [batch_id]).fetchall()[0][0]
        if done is not None:
            raise UserError(f"batch {batch_id} was already confirmed paid on {done}", code="conflict")
        if paid_on < issued_on:
            raise UserError(f"--paid-on {paid_on} is before batch {batch_id} was issued ({issued_on})")
        return [dict(kind="paid", year=year, ref=batch_id, actor=by, on_date=paid_on)]

    return events.record(con, build)[0]
