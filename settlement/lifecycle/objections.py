"""Objections to notice lines (异议): recording one holds the line(s) back from disbursement until it is
resolved; an upheld objection keeps holding until a run of the year is approved after it (the correction).

An objection names a beneficiary and year, and a dataset or none (then every line of that beneficiary in
the year). Its id is its ``lifecycle_events.event_id``. See the ``objections`` view (migration 0009).
"""

from __future__ import annotations

import duckdb

from ledgers import events
from settlement.core.errors import UserError

OUTCOMES = ("upheld", "dismissed")


def object_line(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str, *, by: str, reason: str,
                dataset_id: str | None = None) -> int:
    """Record an objection; returns its id. The beneficiary (and dataset) must have a ledger key in ``year``."""
    if not reason or not reason.strip():
        raise UserError("--reason must say what is objected to")
    beneficiary_id, dataset_id = beneficiary_id.strip(), dataset_id.strip() if dataset_id else None  # CLI and API

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        known = c.execute(
            "SELECT count(*) FROM ledger_entries WHERE year = ? AND beneficiary_id = ? AND (? IS NULL OR dataset_id = ?)",
            [year, beneficiary_id, dataset_id, dataset_id]).fetchall()[0][0]
        if not known:
            what = f"{beneficiary_id}" + (f" / dataset {dataset_id}" if dataset_id else "")
            raise UserError(f"no line for {what} in {year}", code="not_found")
        return [dict(kind="objection", year=year, beneficiary_id=beneficiary_id, dataset_id=dataset_id, actor=by,
                     note=reason.strip())]

    return events.record(con, build)[0]


def resolve_objection(con: duckdb.DuckDBPyConnection, objection_id: int, *, by: str, outcome: str) -> int:
    """Resolve an open objection as ``upheld`` or ``dismissed``; returns the record's event id."""
    if outcome not in OUTCOMES:
        raise UserError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        rows = c.execute("SELECT year, status FROM objections WHERE objection_id = ?", [objection_id]).fetchall()
        if not rows:
            raise UserError(f"no objection {objection_id}", code="not_found")
        year, status = rows[0]
        if status != "open":
            raise UserError(f"objection {objection_id} is already resolved ({status})", code="conflict")
        return [dict(kind="resolve", year=year, ref=str(objection_id), actor=by, note=outcome)]

    return events.record(con, build)[0]
