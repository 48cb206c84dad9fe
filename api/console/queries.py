"""Small read-only queries the console pages share: registry names, years, the store's version, the
provisional count, monthly revenue. Computes no rule (the runs did); scope is decided by the callers with
``settlement.access.scope`` before any of these touch an owner's or operator's data. Must not import routes.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb


def store_version(con: duckdb.DuckDBPyConnection, generation: int) -> tuple:
    """Names the state every console page reads: writes through the API bump ``generation``; the ledger,
    the uploads and the lifecycle records only grow (P13), so their counts name them."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM ledger_entries), (SELECT coalesce(max(id), 0) FROM uploads), "
        "(SELECT count(retracted_at) FROM uploads), (SELECT count(*) FROM settlement_runs), "
        "(SELECT count(*) FROM lifecycle_events), (SELECT count(*) FROM registry_loads)").fetchall()[0]
    return (generation, *row)


def names(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], dict[str, str]]:
    """(dataset id → name, platform id → name) from the registries (the latest name of each id)."""
    datasets = dict(con.execute(
        "SELECT dataset_id, arg_max(name, coalesce(owner_from, DATE '0001-01-01')) FROM datasets GROUP BY 1").fetchall())
    platforms = dict(con.execute("SELECT platform_id, any_value(name) FROM platforms GROUP BY 1").fetchall())
    return datasets, platforms


def dataset_names(con: duckdb.DuckDBPyConnection, dataset_ids: list[str]) -> dict[str, str]:
    """``names`` for these datasets only (a page holds its own names, not the whole registry's)."""
    if not dataset_ids:
        return {}
    return dict(con.execute(
        "SELECT dataset_id, arg_max(name, coalesce(owner_from, DATE '0001-01-01')) FROM datasets "
        "WHERE list_contains($ids, dataset_id) GROUP BY 1", dict(ids=dataset_ids)).fetchall())


def platform_names(con: duckdb.DuckDBPyConnection, platform_ids: list[str]) -> dict[str, str]:
    """``names`` for these platforms only."""
    if not platform_ids:
        return {}
    return dict(con.execute("SELECT platform_id, any_value(name) FROM platforms WHERE list_contains($ids, platform_id) "
                            "GROUP BY 1", dict(ids=platform_ids)).fetchall())


def run_years(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute("SELECT DISTINCT year FROM settlement_runs ORDER BY year DESC").fetchall()]


def default_year(con: duckdb.DuckDBPyConnection, years: list[int], *, owner_id: str | None = None,
                 platform_id: str | None = None) -> int | None:
    """The latest year with a run in which the owner / platform has results; else the latest run year."""
    if owner_id is not None:
        sql, arg = "SELECT max(year) FROM run_dataset_results WHERE owner_id = ?", owner_id
    elif platform_id is not None:
        sql, arg = "SELECT max(year) FROM run_platform_results WHERE platform_id = ?", platform_id
    else:
        return years[0] if years else None
    found = con.execute(sql, [arg]).fetchall()[0][0]
    return int(found) if found is not None else (years[0] if years else None)


def last_run(con: duckdb.DuckDBPyConnection, year: int) -> tuple[int, object] | None:
    """(run_id, started_at) of the year's latest run, or None."""
    rows = con.execute("SELECT run_id, started_at FROM settlement_runs WHERE year = ? ORDER BY run_id DESC LIMIT 1",
                       [year]).fetchall()
    return (int(rows[0][0]), rows[0][1]) if rows else None


def provisional(con: duckdb.DuckDBPyConnection, year: int, *, dataset_ids: list[str] | None = None,
                platform_id: str | None = None) -> tuple[int, int] | None:
    """(trades uploaded after the year's last run started, that run) for these datasets / this platform /
    everything; None when there is no run or no such trade."""
    run = last_run(con, year)
    if run is None:
        return None
    n = con.execute(
        "SELECT count(*) FROM trades t JOIN uploads u ON u.id = t.upload_id "
        "WHERE NOT t.retracted AND year(t.local_date) = $y AND u.uploaded_at > $at "
        "AND ($ds IS NULL OR list_contains($ds, t.dataset_id)) AND ($p IS NULL OR t.platform_id = $p)",
        dict(y=year, at=run[1], ds=dataset_ids, p=platform_id)).fetchall()[0][0]
    return (int(n), run[0]) if n else None


def owner_dataset_ids(con: duckdb.DuckDBPyConnection, owner_id: str, year: int) -> list[str]:
    """Datasets the registry gives ``owner_id`` in a period overlapping ``year`` (P10.1)."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT dataset_id FROM datasets WHERE owner_id = $o "
        "AND coalesce(owner_from, DATE '0001-01-01') <= make_date($y, 12, 31) "
        "AND coalesce(owner_until, DATE '9999-12-31') >= make_date($y, 1, 1) ORDER BY dataset_id",
        dict(o=owner_id, y=year)).fetchall()]


def monthly_revenue(con: duckdb.DuckDBPyConnection, year: int, dataset_ids: list[str], seller_id: str) -> dict:
    """Net sales (sales less refunds, live uploads) of ``seller_id`` per month and dataset: chart data."""
    rows = con.execute(
        "SELECT dataset_id, month(local_date) AS m, sum(amount) FROM trades "
        "WHERE NOT retracted AND year(local_date) = $y AND list_contains($ds, dataset_id) AND seller_id = $s "
        "GROUP BY ALL ORDER BY ALL", dict(y=year, ds=dataset_ids, s=seller_id)).fetchall()
    series: dict[str, list[str]] = {}
    for ds, m, amount in rows:
        series.setdefault(ds, ["0.00"] * 12)[m - 1] = str(Decimal(amount).quantize(Decimal("0.01")))
    return {"months": [f"{year}-{m:02d}" for m in range(1, 13)], "series": series}


def paid_by_key(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str) -> dict[tuple[int, str], Decimal]:
    """Paid so far per (clause, dataset) of one beneficiary (``settlement.lifecycle.accounts``); {} when the
    lifecycle records are not there."""
    try:
        from settlement.lifecycle import accounts
    except ImportError:  # pragma: no cover - lifecycle package absent
        return {}
    try:
        rows = accounts.key_accounts(con, year, beneficiary_id)
    except duckdb.CatalogException:
        return {}
    return {(int(r["clause"]), r["dataset_id"] or ""): Decimal(r["paid"] or 0) for r in rows}


def excluded_volume(con: duckdb.DuckDBPyConnection, run_id: int, *, clause: int | None = None,
                    platform_id: str | None = None) -> list[tuple[str, int, Decimal]]:
    """(reason, trades, Σ|amount|) of a run's exclusions, optionally one clause / platform."""
    rows = con.execute(
        "SELECT e.reason, count(*), coalesce(sum(abs(t.amount)), 0) FROM exclusions e "
        "LEFT JOIN trade_rows t ON t.upload_id = e.upload_id AND t.platform_id = e.platform_id "
        "AND t.trade_id = e.trade_id AND t.kind = e.kind "
        "WHERE e.run_id = $r AND ($c IS NULL OR e.clause = $c) AND ($p IS NULL OR e.platform_id = $p) "
        "GROUP BY 1 ORDER BY 3 DESC, 1", dict(r=run_id, c=clause, p=platform_id)).fetchall()
    return [(r[0], int(r[1]), Decimal(r[2])) for r in rows]
