"""Test helpers for the settlement tests: a fresh store and direct SQL inserts of uploads, trades and
registry loads (small tables; the ingest/registry stages are tested elsewhere). Tests only."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from settlement.core import store

_ids = itertools.count(1)

OPEN = None


def new_store(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    path = tmp_path / "t.duckdb"
    store.init(path)
    return store.open_store(path)


def _next_load(con, kind: str) -> int:
    load_id = con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM registry_loads").fetchall()[0][0]
    con.execute(
        "INSERT INTO registry_loads VALUES (?, ?, ?, ?, 0, 'test', now())",
        [load_id, kind, f"{kind}.csv", f"sha-{kind}-{load_id}"],
    )
    return load_id


def load_datasets(con, rows: list[tuple]) -> int:
    """rows: (dataset_id, owner_id, certified_on, certified_until[, owner_from]); replaces every row of each
    dataset it names (P10.1: several rows of one dataset are its registration periods)."""
    load_id = _next_load(con, "datasets")
    con.executemany(
        "INSERT INTO dataset_versions (load_id, row_number, dataset_id, owner_id, name, certified_on, "
        "certified_until, owner_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [[load_id, i + 2, r[0], r[1], r[0], r[2], r[3], r[4] if len(r) > 4 else None] for i, r in enumerate(rows)],
    )
    return load_id


def load_platforms(con, rows: list[tuple[str, date | None, date | None]]) -> int:
    load_id = _next_load(con, "platforms")
    con.executemany(
        "INSERT INTO platform_versions VALUES (?, ?, ?, ?, ?, ?)",
        [[load_id, i + 2, p, p, f, u] for i, (p, f, u) in enumerate(rows)],
    )
    return load_id


def load_affiliations(con, rows: list[tuple]) -> int:
    """rows: (a, b, relation, share or None, valid_from, valid_to[, exempt]); replaces the whole set."""
    load_id = _next_load(con, "affiliations")
    base = con.execute("SELECT coalesce(max(record_id), 0) FROM affiliation_versions").fetchall()[0][0]
    data = []
    for i, r in enumerate(rows):
        a, b, rel, share, vf, vt = r[:6]
        exempt = r[6] if len(r) > 6 else False
        data.append([load_id, base + i + 1, i + 2, a, b, rel, None if share is None else Decimal(share), vf, vt, exempt])
    if data:
        con.executemany("INSERT INTO affiliation_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data)
    return load_id


def load_prior_awards(con, rows: list[tuple[str, int, str]]) -> int:
    load_id = _next_load(con, "prior_awards")
    if rows:
        con.executemany(
            "INSERT INTO prior_award_versions VALUES (?, ?, ?, ?, ?, 'test programme')",
            [[load_id, i + 2, d, y, Decimal(a)] for i, (d, y, a) in enumerate(rows)],
        )
    return load_id


def upload(con, trades: list[dict]) -> int:
    """Store ``trades`` as one live upload. Each trade: trade_id, platform, dataset, seller, buyer, at
    (ISO text; without offset = Asia/Shanghai, P3), amount (text), kind ('sale'), ref (refunded sale)."""
    upload_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM uploads").fetchall()[0][0]
    con.execute(
        "INSERT INTO uploads (id, file_name, sha256, bytes, rows_read, rows_stored, rows_duplicate, rows_rejected, "
        "status, uploaded_by, uploaded_at, accept_valid) VALUES (?, ?, ?, 0, ?, ?, 0, 0, 'stored', 'test', now(), false)",
        [upload_id, f"u{upload_id}.csv", f"sha-upload-{upload_id}", len(trades), len(trades)],
    )
    rows = []
    for n, t in enumerate(trades):
        at = t["at"]
        if not (at.endswith("Z") or "+" in at[10:] or at[10:].count("-") > 0):
            at = at + "+08:00"  # P3: no offset = local time
        rows.append([t["trade_id"], t["platform"], t["dataset"], t["seller"], t["buyer"], at,
                     Decimal(t["amount"]), t.get("kind", "sale"), t.get("ref"), upload_id, n + 2])
    con.executemany(
        "INSERT INTO trade_rows SELECT ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
        "CAST(timezone('Asia/Shanghai', CAST(? AS TIMESTAMPTZ)) AS DATE), ?, 'CNY', ?, ?, ?, ?",
        [r[:6] + [r[5]] + r[6:] for r in rows],
    )
    return upload_id


def retract(con, upload_id: int) -> None:
    con.execute("UPDATE uploads SET retracted_at = now(), retracted_by = 'test', status = 'retracted' WHERE id = ?",
                [upload_id])


def sale(tid: str, buyer: str, amount: str, at: str, *, platform="PLAT", dataset="D1", seller="OWN1") -> dict:
    return dict(trade_id=tid, platform=platform, dataset=dataset, seller=seller, buyer=buyer, at=at, amount=amount)


def refund(tid: str, of: str, amount: str, at: str, *, buyer: str = "B1", platform="PLAT", dataset="D1",
           seller="OWN1") -> dict:
    return dict(trade_id=tid, platform=platform, dataset=dataset, seller=seller, buyer=buyer, at=at,
                amount=amount, kind="refund", ref=of)


def settled_sample(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A store holding sample_trades/ loaded and every year settled as `make demo` does (by "test")."""
    from settlement.core.params import load_params
    from settlement.tools.demo import load_and_settle

    store.init(tmp_path / "s.duckdb")
    con = store.open_store(tmp_path / "s.duckdb")
    load_and_settle(con, Path(__file__).resolve().parents[2] / "sample_trades", params=load_params(), by="test")
    return con


def change_sample_later(con: duckdb.DuckDBPyConnection) -> None:
    """After the sample store's runs: retract its first upload, certify one more platform, relate it to a buyer
    by a control record, and settle every year again (what must not change an earlier run's answers)."""
    from settlement.core.params import load_params
    from settlement.run import settle_all

    first = con.execute("SELECT min(id) FROM uploads").fetchall()[0][0]
    retract(con, first)
    load_platforms(con, [("913301108573022438", None, None)])
    load_affiliations(con, [("913301108573022438", "91330102340012374B", "control", None, date(2023, 1, 1),
                             None, False)])
    settle_all(con, params=load_params())
