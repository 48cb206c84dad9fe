"""The trade lake the Spark backend reads (issue 14): partitioned Parquet written from a DuckDB store.

Layout under ``DIR`` (docs/scale.md):

    DIR/trades/sale_year=YYYY/platform=PLATFORM_ID/upload=N/*.parquet   trade rows, all columns
    DIR/manifest/upload=N.json                                         per upload: rows and Σ amount per
                                                                        (sale_year, platform), written last
    DIR/retractions/retractions.parquet                                upload_id, retracted_at (rewritten)

``sale_year`` is the settlement year of the sale (P9): a refund sits with the sale it reverses (a live sale
of its ref_trade_id on the same platform, else any stored sale, else its own local date), so a year's run
reads its partitions only. Each upload is an immutable file set: ``export_lake`` writes the uploads the
lake does not hold yet (its manifest file is the commit marker) and never rewrites one; a retraction is
the small ``retractions`` table, joined at run time. Imports only the store's tables, by name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

TRADE_COLUMNS = ("trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, amount, "
                 "currency, kind, ref_trade_id, upload_id, row_number")

# DuckDB-only (local side): every stored trade with its settlement year (P9).
LAKE_ROWS_SQL = f"""
WITH sales AS (
    SELECT t.platform_id, t.trade_id, min(year(t.local_date)) FILTER (WHERE u.retracted_at IS NULL) AS live_year,
           min(year(t.local_date)) AS any_year
    FROM trade_rows t JOIN uploads u ON u.id = t.upload_id
    WHERE t.kind = 'sale' GROUP BY ALL
)
SELECT {", ".join("t." + c.strip() for c in TRADE_COLUMNS.split(","))},
       CASE WHEN t.kind = 'refund' THEN coalesce(s.live_year, s.any_year, year(t.local_date))
            ELSE year(t.local_date) END AS sale_year
FROM trade_rows t
LEFT JOIN sales s ON t.kind = 'refund' AND s.platform_id = t.platform_id AND s.trade_id = t.ref_trade_id
"""


@dataclass(frozen=True)
class LakeExport:
    out: Path
    uploads_written: tuple[int, ...]
    uploads_kept: tuple[int, ...]
    rows_written: int
    retracted: int


def lake_uploads(out: Path) -> set[int]:
    """Upload ids the lake at ``out`` holds (those with a manifest file)."""
    folder = Path(out) / "manifest"
    if not folder.is_dir():
        return set()
    return {int(p.stem.split("=", 1)[1]) for p in folder.glob("upload=*.json")}


def export_lake(con: duckdb.DuckDBPyConnection, out: Path | str) -> LakeExport:
    """Write the store's uploads missing from the lake at ``out`` and rewrite its retractions table."""
    out = Path(out)
    (out / "manifest").mkdir(parents=True, exist_ok=True)
    (out / "retractions").mkdir(parents=True, exist_ok=True)
    have = lake_uploads(out)
    stored = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT upload_id FROM trade_rows ORDER BY 1").fetchall()]
    new = [u for u in stored if u not in have]
    rows = 0
    if new:
        ids = ", ".join(str(u) for u in new)
        rel = f"SELECT *, platform_id AS platform, upload_id AS upload FROM ({LAKE_ROWS_SQL}) WHERE upload_id IN ({ids})"
        con.execute(f"COPY ({rel}) TO '{_quote(out / 'trades')}' (FORMAT parquet, "
                    "PARTITION_BY (sale_year, platform, upload), OVERWRITE_OR_IGNORE true)")
        sums = con.execute(f"""
            SELECT upload_id, sale_year, platform_id, count(*), CAST(sum(amount) AS VARCHAR)
            FROM ({LAKE_ROWS_SQL}) WHERE upload_id IN ({ids}) GROUP BY ALL ORDER BY ALL""").fetchall()
        for upload in new:
            parts = [{"sale_year": y, "platform_id": p, "rows": n, "amount": a}
                     for u, y, p, n, a in sums if u == upload]
            rows += sum(p["rows"] for p in parts)
            _write_atomic(out / "manifest" / f"upload={upload}.json", json.dumps({"upload_id": upload,
                                                                                 "partitions": parts}, indent=1))
    retracted = con.execute("SELECT count(*) FROM uploads WHERE retracted_at IS NOT NULL").fetchall()[0][0]
    tmp = out / "retractions" / ".retractions.parquet.tmp"
    con.execute(f"COPY (SELECT id AS upload_id, retracted_at FROM uploads WHERE retracted_at IS NOT NULL "
                f"ORDER BY id) TO '{_quote(tmp)}' (FORMAT parquet)")
    os.replace(tmp, out / "retractions" / "retractions.parquet")
    return LakeExport(out, tuple(new), tuple(sorted(have)), rows, int(retracted))


def store_checksums(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, int, str]]:
    """(sale_year, platform_id, rows, Σ amount as text) over every stored trade, sorted."""
    return [(int(y), p, int(n), str(a)) for y, p, n, a in con.execute(
        f"SELECT sale_year, platform_id, count(*), CAST(sum(amount) AS DECIMAL(38,2)) FROM ({LAKE_ROWS_SQL}) "
        "GROUP BY ALL ORDER BY ALL").fetchall()]


def manifest_checksums(out: Path | str) -> list[tuple[int, str, int, str]]:
    """The same checksums from the lake's manifest files (what each upload wrote)."""
    from decimal import Decimal

    acc: dict[tuple[int, str], list] = {}
    for path in sorted((Path(out) / "manifest").glob("upload=*.json")):
        for p in json.loads(path.read_text())["partitions"]:
            cell = acc.setdefault((int(p["sale_year"]), p["platform_id"]), [0, Decimal(0)])
            cell[0] += p["rows"]
            cell[1] += Decimal(p["amount"])
    return [(y, p, n, str(a.quantize(Decimal("0.01")))) for (y, p), (n, a) in sorted(acc.items())]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
