"""Review of a settlement run: the runs list, approve and reject (CONTRACT `settle runs list`, `settle
approve`, `settle reject`).

A run's entries are approved or rejected together, by someone other than the identity that started it
(four eyes: 复核人不得为核算发起人). Review order within a year: a run's deltas were computed on top of
every earlier run not rejected, so runs are approved oldest first (an earlier proposed run must be
reviewed first) and rejected newest first (a later run not rejected, computed on top of this one, must be
rejected first). Refusals are ``UserError`` (exit 1). Every review is a ``ledgers.events`` record,
checked and written in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledgers import events, signatures
from ledgers.payouts import format_amount
from settlement.core.errors import UserError
from settlement.integrity.flags import unreviewed_flags

RUN_STATES = ("proposed", "approved", "rejected", "unchanged")
RUN_COLUMNS = ("run_id", "year", "started_by", "state", "entries", "amount", "reviewed_by", "review_note")


def runs_list(con: duckdb.DuckDBPyConnection, year: int | None = None) -> list[dict]:
    """Every run (of ``year``), oldest first: run_id, year, started_by, started_at, state, entries,
    reviewed_by, reviewed_at, review_note, amount (Σ of its entries)."""
    rel = con.sql(
        """
        SELECT r.run_id, r.year, r.started_by, r.started_at, r.state, r.entries, r.reviewed_by, r.reviewed_at,
               r.review_note, CAST(coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.run_id = r.run_id), 0)
                                   AS DECIMAL(18,2)) AS amount
        FROM run_states r WHERE $year IS NULL OR r.year = $year ORDER BY r.run_id
        """,
        params=dict(year=year),
    )
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def run_records(con: duckdb.DuckDBPyConnection, year: int | None = None) -> list[dict]:
    """``runs_list`` as JSON-ready records (times ISO 8601, amount '1234.50'): what `GET /v1/runs` answers
    and `settle runs list` prints, with or without a server."""
    return [{**r, "started_at": r["started_at"].isoformat() if r["started_at"] else None,
             "reviewed_at": r["reviewed_at"].isoformat() if r["reviewed_at"] else None,
             "amount": format_amount(r["amount"])} for r in runs_list(con, year)]


def _run(con: duckdb.DuckDBPyConnection, run_id: int) -> dict:
    rel = con.sql("SELECT run_id, year, started_by, state, entries FROM run_states WHERE run_id = ?", params=[run_id])
    rows = rel.fetchall()
    if not rows:
        raise UserError(f"no run {run_id}", code="not_found")
    return dict(zip(rel.columns, rows[0]))


def _check_reviewable(run: dict, by: str) -> None:
    if not by or not by.strip():
        raise UserError("--by must name the reviewer")
    if run["state"] != "proposed":
        raise UserError(f"run {run['run_id']} is {run['state']}, not proposed: nothing to review", code="conflict")
    if by == run["started_by"]:
        raise UserError(f"{by} started run {run['run_id']}: another person must review it (four eyes)",
                        code="forbidden")


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        return signatures.load_private_key(path)
    except (OSError, signatures.KeyError_) as exc:
        raise UserError(f"--key: {exc}") from exc


def register_key(con: duckdb.DuckDBPyConnection, name: str, public_key: Path, *, by: str) -> tuple[int, str]:
    """Register ``name``'s Ed25519 public key (a ``key`` record); returns (event id, fingerprint)."""
    if not name or not name.strip() or name != name.strip():
        raise UserError("the approver name must be non-empty, without surrounding spaces")
    try:
        raw = signatures.load_public_key(public_key)
    except (OSError, signatures.KeyError_) as exc:
        raise UserError(f"--public-key: {exc}") from exc
    fp = signatures.fingerprint(raw)

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        return [dict(kind="key", year=0, actor=name, ref=fp, note=raw.hex(), run_started_by=by)]

    return events.record(con, build)[0], fp


def _signature(c: duckdb.DuckDBPyConnection, run_id: int, by: str, key: Ed25519PrivateKey | None) -> str | None:
    """The approval's signature; refuses an unsigned approval once keys are registered (docs/threat-model.md)
    and a key that is not the one registered for ``by``."""
    registered = signatures.key_for(c, by)
    if key is None:
        if signatures.keys_registered(c):
            raise UserError(f"approver keys are registered: sign the approval (settle approve {run_id} --by {by} "
                            "--key PRIVATE_KEY_FILE)", code="forbidden")
        return None
    if registered is None or registered != signatures.public_key_of(key).hex():
        raise UserError(f"the --key given is not the key registered for {by} (settle keys register)", code="forbidden")
    head = c.execute("SELECT head_hash FROM settlement_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    return signatures.sign(key, run_id, head, by)


def approve_run(con: duckdb.DuckDBPyConnection, run_id: int, *, by: str, comment: str | None = None,
                acknowledge_flags: bool = False, key: Ed25519PrivateKey | None = None) -> int:
    """Approve every entry of a proposed run; returns the approval record's event id.

    ``acknowledge_flags``: required while the run has integrity flags no reviewer has cleared or confirmed
    (issue 13, ``settlement.integrity``); amounts never depend on it. ``key``: the approver's Ed25519 private
    key; required once any public key is registered (the approval then signs run id, head hash, approver)."""

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        run = _run(c, run_id)
        _check_reviewable(run, by)
        signature = _signature(c, run_id, by, key)
        unreviewed = unreviewed_flags(c, run["year"], run_id=run_id)
        if unreviewed and not acknowledge_flags:
            raise UserError(f"run {run_id} has {unreviewed} unreviewed integrity flag(s): review them (settle flags "
                            f"--year {run['year']}) or approve with --acknowledge-flags", code="conflict")
        earlier = c.execute(
            "SELECT min(run_id) FROM run_states WHERE year = ? AND run_id < ? AND state = 'proposed'",
            [run["year"], run_id]).fetchall()[0][0]
        if earlier is not None:
            raise UserError(f"run {earlier} of {run['year']} is still proposed and run {run_id} was computed on "
                            f"top of it: approve or reject run {earlier} first", code="conflict")
        return [dict(kind="approve", year=run["year"], run_id=run_id, actor=by, note=comment or None,
                     run_started_by=run["started_by"], signature=signature)]

    return events.record(con, build)[0]


def reject_run(con: duckdb.DuckDBPyConnection, run_id: int, *, by: str, reason: str) -> int:
    """Reject a proposed run: its entries stay in the ledger, void; the next run proposes again from the
    entitlement. Returns the rejection record's event id."""
    if not reason or not reason.strip():
        raise UserError("--reason must say why the run is rejected")

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        run = _run(c, run_id)
        _check_reviewable(run, by)
        later = c.execute(
            "SELECT max(run_id) FROM run_states WHERE year = ? AND run_id > ? AND state IN ('proposed', 'approved')",
            [run["year"], run_id]).fetchall()[0][0]
        if later is not None:
            raise UserError(f"run {later} of {run['year']} was computed on top of run {run_id}: reject run {later} "
                            "first", code="conflict")
        return [dict(kind="reject", year=run["year"], run_id=run_id, actor=by, note=reason.strip(),
                     run_started_by=run["started_by"])]

    return events.record(con, build)[0]
