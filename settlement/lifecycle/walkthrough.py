"""One year through every lifecycle state, for ``settle demo`` (issue 11 item 7): proposed → rejected →
proposed again → approved → noticed (period 0 working days) → objected and dismissed → disbursed → paid.

``walk_year`` uses the same functions as the commands; it returns what happened and the beneficiaries'
accounts, so the demo can print them. Must not import the CLI or the API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from settlement.lifecycle import accounts, disburse, notice, objections, review
from settlement.run import run_settlement


@dataclass(frozen=True)
class Walk:
    year: int
    steps: tuple[str, ...]
    accounts: tuple[dict, ...]


def walk_year(con: duckdb.DuckDBPyConnection, year: int, *, params, starter: str = "demo:operator",
              reviewer: str = "demo:regulator", on: dt.date | None = None) -> Walk:
    """Walk ``year`` through every state on ``con`` (a demo store); returns the steps and the accounts."""
    on = on or notice.today()
    steps: list[str] = []
    first = run_settlement(con, year, params=params, started_by=starter)
    steps.append(f"run {first.run_id} by {starter}: {len(first.appended)} entries proposed")
    pending = [r["run_id"] for r in review.runs_list(con, year) if r["state"] == "proposed"]
    for run_id in reversed(pending):  # newest first (review order)
        review.reject_run(con, run_id, by=reviewer, reason="demo: sent back once")
        steps.append(f"run {run_id} rejected by {reviewer}")
    again = run_settlement(con, year, params=params, started_by=starter)
    steps.append(f"run {again.run_id} by {starter}: {len(again.appended)} entries proposed again")
    if again.appended:
        review.approve_run(con, again.run_id, by=reviewer, comment="demo: approved")
        steps.append(f"run {again.run_id} approved by {reviewer}")
    published = notice.publish_notice(con, year, by=reviewer, on=on, working_days=0)
    steps.append(f"notice {published.notice_id}: {len(published.lines)} lines")
    if published.lines:
        line = published.lines[0]
        oid = objections.object_line(con, year, line.beneficiary_id, by="demo:public", reason="demo objection",
                                     dataset_id=line.dataset_id or None)
        held = disburse.disburse(con, year, by=reviewer, on=on)
        steps.append(f"objection {oid} holds {line.beneficiary_id}; batch {held.batch_id}: "
                     f"{len(held.instructions)} instructions")
        objections.resolve_objection(con, oid, by=reviewer, outcome="dismissed")
        steps.append(f"objection {oid} dismissed")
    for batch in (disburse.disburse(con, year, by=reviewer, on=on),):
        steps.append(f"batch {batch.batch_id}: {len(batch.instructions)} instructions")
    for (batch_id,) in con.execute("SELECT DISTINCT ref FROM lifecycle_events WHERE kind = 'disburse' AND year = ? "
                                   "AND ref NOT IN (SELECT ref FROM lifecycle_events WHERE kind = 'paid') ORDER BY 1",
                                   [year]).fetchall():
        disburse.confirm_paid(con, batch_id, paid_on=on, by="demo:bank")
        steps.append(f"batch {batch_id} paid on {on}")
    return Walk(year, tuple(steps), tuple(accounts.beneficiary_accounts(con, year)))
