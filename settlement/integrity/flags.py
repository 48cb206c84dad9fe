"""Computing, storing, reading and reviewing the integrity flags of a settlement run (issue 13).

``compute_flags(con, year, run_id)`` runs every code over the run's stored results and the stored trades
(``callers``, ``rings``, ``trades``), resolves the evidence trade ids asked for as (dataset, buyer) pairs
in ONE pass over the year's trades, and appends the flags to ``integrity_flags`` under ``run_id``. It runs
inside the caller's transaction (``settlement.run`` calls it right after ``store_run_results``), so a run
and its flags land together. ``year_flags`` reads the flags describing the year's latest run (the
unchanged-input shortcut reuses its source run's flags, view run_explanation_source) with their latest
review; ``review_flag`` appends to ``integrity_reviews``; ``unreviewed_flags`` is what an approval asks.
Imports ``settlement.core`` only; never writes a clause table or the ledger (flags change no amount).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone

import duckdb

from settlement.core.errors import UserError
from settlement.core.sql import temp_tables, unregister
from settlement.integrity import callers, trades
from settlement.integrity.context import FLAG_COLUMNS, FlagContext
from settlement.integrity.rings import caller_rings, ring_flags_sql
from settlement.integrity.thresholds import Thresholds, load_thresholds

CODES = ("THIN_THRESHOLD", "RECIPROCAL_CALLERS", "CALLER_RING", "SHARED_CALLER_SET", "LATE_CALLERS",
         "ROUND_TRIP", "PRICE_OUTLIER", "CAP_SPLITTING", "REFUND_AFTER_APPROVAL")
OUTCOMES = ("cleared", "confirmed")
# The TEMP tables (and the two registered ring frames) of one compute_flags call, by role.
TEMP_ROLES = ("flags", "groups", "edges", "ring_edges", "rings", "ring_hops")
SQL_CODES = (callers.thin_threshold_sql, callers.reciprocal_callers_sql, callers.shared_caller_set_sql,
             callers.late_callers_sql, trades.round_trip_sql, trades.price_outlier_sql, callers.cap_splitting_sql,
             trades.refund_after_approval_sql)


def flag_context(year: int, run_id: int, *, params=None, thresholds: Thresholds | None = None) -> FlagContext:
    """The dates and settings of one year's flags: thresholds in force on 31 Dec of the year; the last
    in-scope day from the policy window (P2/P3) when ``params`` is given, else 31 Dec."""
    th = thresholds or load_thresholds()
    days = params.in_scope_days(year) if params is not None else None
    last = days[1] if days else date(year, 12, 31)
    return FlagContext(year=year, run_id=run_id, first_day=date(year, 1, 1), last_day=last,
                       settings=th.on(date(year, 12, 31)), thresholds_sha256=th.sha256)


def compute_flags(con: duckdb.DuckDBPyConnection, year: int, run_id: int, *, params=None,
                  thresholds: Thresholds | None = None) -> int:
    """Compute and append the flags of ``run_id`` (a run of ``year`` whose results are stored); returns how
    many. Runs in the caller's transaction; leaves no TEMP table behind. A year without an in-scope day
    (P2) has no flags."""
    if params is not None and params.in_scope_days(year) is None:
        return 0  # a year without an in-scope day pays nothing (P2): nothing to flag
    ctx = flag_context(year, run_id, params=params, thresholds=thresholds)
    thr = con.execute("SELECT max(caller_threshold) FROM run_dataset_results WHERE run_id = ?", [run_id]).fetchall()
    ctx = replace(ctx, caller_threshold=int(thr[0][0]) if thr and thr[0][0] is not None else ctx.caller_threshold)
    with temp_tables(con, *TEMP_ROLES) as names:  # per-call names, dropped whatever happens (issue 9)
        ctx = replace(ctx, tables=names)
        con.execute(f"CREATE TEMP TABLE {names['flags']} ({FLAG_COLUMNS})")
        callers.stage_groups(con, ctx)
        for code_sql in SQL_CODES:
            con.execute(f"INSERT INTO {names['flags']} BY NAME {code_sql(ctx)}")
        rings, hops = caller_rings(con, ctx)
        if rings.height:
            con.register(names["rings"], rings)
            con.register(names["ring_hops"], hops)
            try:
                con.execute(f"INSERT INTO {names['flags']} BY NAME {ring_flags_sql(ctx)}")
            finally:
                unregister(con, names["rings"], names["ring_hops"])
        return _store(con, ctx)


def _store(con: duckdb.DuckDBPyConnection, ctx: FlagContext) -> int:
    """Resolve (dataset, buyer) evidence pairs against the year's live sales in one join, then append."""
    limit = ctx.evidence_limit
    key = (f"'{ctx.year}|' || code || '|' || coalesce(dataset_id, '') || '|' || coalesce(platform_id, '') "
           "|| '|' || array_to_string(parties, ';')")
    con.execute(f"""
INSERT INTO integrity_flags
WITH f AS (
    SELECT row_number() OVER (ORDER BY code, {key}) AS n, *, {key} AS flag_key FROM {ctx.table("flags")}
), req AS (
    SELECT DISTINCT n, p.d, p.b FROM (SELECT n, unnest(ev_pairs) AS p FROM f WHERE len(ev_pairs) > 0)
), ev AS (
    SELECT req.n, min_by(t.trade_id, (t.local_date, t.trade_id), {limit}) AS ids  -- the first ones: all are cut to {limit}
    FROM trades t JOIN req ON t.dataset_id = req.d AND t.buyer_id = req.b
    WHERE {ctx.year_sales("t")}
    GROUP BY req.n
)
SELECT (SELECT coalesce(max(flag_id), 0) FROM integrity_flags) + f.n, {ctx.year}, {ctx.run_id}, f.code, f.flag_key,
       f.dataset_id, f.platform_id, f.parties, list_concat(f.evidence, coalesce(ev.ids, []))[1:{limit}],
       f.figures, f.detail, '{ctx.thresholds_sha256}'
FROM f LEFT JOIN ev ON ev.n = f.n
""")
    return con.execute(f"SELECT count(*) FROM {ctx.table('flags')}").fetchall()[0][0]


@dataclass(frozen=True)
class Flag:
    flag_id: int
    year: int
    run_id: int
    code: str
    dataset_id: str | None
    platform_id: str | None
    parties: tuple[str, ...]
    evidence_trade_ids: tuple[str, ...]
    figures: dict
    detail: str
    review: str | None  # latest outcome for the flag's key, None when unreviewed
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str | None

    def record(self) -> dict:
        """The CONTRACT CSV/JSON shape (parties and evidence as lists; ';'-joined in CSV)."""
        return {"flag_id": self.flag_id, "year": self.year, "run_id": self.run_id, "code": self.code,
                "dataset_id": self.dataset_id or "", "platform_id": self.platform_id or "",
                "parties": list(self.parties), "evidence_trade_ids": list(self.evidence_trade_ids),
                "figures": self.figures, "detail": self.detail, "review": self.review or "",
                "reviewed_by": self.reviewed_by or "", "reviewed_at": self.reviewed_at,
                "review_comment": self.review_comment or ""}


def source_run(con: duckdb.DuckDBPyConnection, year: int) -> int | None:
    """The run whose flags describe the year's latest run (itself, or its unchanged-input source)."""
    rows = con.execute("SELECT source_run_id FROM run_explanation_source WHERE year = ? ORDER BY run_id DESC "
                       "LIMIT 1", [year]).fetchall()
    return int(rows[0][0]) if rows else None


_LATEST_REVIEW = """
    SELECT flag_key, arg_max(outcome, review_id) AS outcome, arg_max(reviewed_by, review_id) AS reviewed_by,
           arg_max(reviewed_at, review_id) AS reviewed_at, arg_max(comment, review_id) AS comment
    FROM integrity_reviews GROUP BY flag_key"""


def year_flags(con: duckdb.DuckDBPyConnection, year: int) -> list[Flag]:
    """The flags of the year's latest run with their latest review. UserError when the year has no run."""
    run = source_run(con, year)
    if run is None:
        raise UserError(f"no settlement run of {year}: run `settle run --year {year}` first", code="not_found")
    rows = con.execute(f"""
        SELECT f.flag_id, f.year, f.run_id, f.code, f.dataset_id, f.platform_id, f.parties, f.evidence_trade_ids,
               f.figures, f.detail, r.outcome, r.reviewed_by, r.reviewed_at, r.comment
        FROM integrity_flags f LEFT JOIN ({_LATEST_REVIEW}) r ON r.flag_key = f.flag_key
        WHERE f.run_id = ? ORDER BY f.code, f.flag_id""", [run]).fetchall()
    return [Flag(*r[:6], tuple(r[6]), tuple(r[7]), json.loads(r[8]), *r[9:]) for r in rows]


def unreviewed_flags(con: duckdb.DuckDBPyConnection, year: int, *, run_id: int | None = None) -> int:
    """Flags no reviewer has cleared or confirmed, of the year's latest run (or of ``run_id``: the flags
    that describe it, its own or its unchanged-input source's); 0 when there is no such run. An approval
    must ask for an explicit acknowledgement while this is > 0 (issue 13 item 3)."""
    if run_id is None:
        run = source_run(con, year)
    else:
        rows = con.execute("SELECT source_run_id FROM run_explanation_source WHERE run_id = ?", [run_id]).fetchall()
        run = int(rows[0][0]) if rows else None
    if run is None:
        return 0
    return con.execute(
        "SELECT count(*) FROM integrity_flags f WHERE f.run_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM integrity_reviews r WHERE r.flag_key = f.flag_key)", [run]
    ).fetchall()[0][0]


@dataclass(frozen=True)
class Review:
    review_id: int
    flag_id: int
    outcome: str
    reviewed_by: str
    reviewed_at: datetime
    comment: str


def review_flag(con: duckdb.DuckDBPyConnection, flag_id: int, *, by: str, outcome: str, comment: str) -> Review:
    """Append a reviewer's decision (append-only; the latest review of a flag key counts)."""
    if outcome not in OUTCOMES:
        raise UserError(f"outcome must be cleared or confirmed, not {outcome!r}")
    if not by.strip():
        raise UserError("--by must name the reviewer")
    if not comment.strip():
        raise UserError("--comment must say why")
    rows = con.execute("SELECT flag_key, year FROM integrity_flags WHERE flag_id = ?", [flag_id]).fetchall()
    if not rows:
        raise UserError(f"no flag {flag_id}", code="not_found")
    at = datetime.now(timezone.utc)
    review_id = con.execute("SELECT coalesce(max(review_id), 0) + 1 FROM integrity_reviews").fetchall()[0][0]
    con.execute("INSERT INTO integrity_reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [review_id, flag_id, rows[0][0], rows[0][1], outcome, by.strip(), at, comment.strip()])
    return Review(review_id, flag_id, outcome, by.strip(), at, comment.strip())
