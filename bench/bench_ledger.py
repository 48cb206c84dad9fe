"""Ledger benchmark (issue 4, P13): append_run / verify / payouts for N keys, against bare DuckDB baselines
measured in the same run.

Per repeat, in a fresh database file:
  bare_insert   CREATE TABLE t AS SELECT * FROM <the N-row targets frame>   (minimum cost to store N rows)
  accrue        append_run, first run: N accrual entries (delta SQL + N chained sha256 + insert)
  adjust        append_run, 10% of the keys changed (N/10 adjustments, the rest compared)
  unchanged     append_run with the same targets: appends nothing
  bare_groupby  SELECT clause, beneficiary_id, dataset_id, sum(amount) FROM ledger_entries GROUP BY ALL
  verify        ledger.verify over the 1.1 N entries and 3 runs
  payouts       ledger.payouts (all years)
Medians over --repeats and the ratios accrue/bare_insert, verify/bare_groupby are printed; peak RSS is the
process's maximum (ru_maxrss).

    .venv/bin/python bench/bench_ledger.py                      # 100k keys, 3 repeats
    .venv/bin/python bench/bench_ledger.py --keys 1000000 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledgers import ledger  # noqa: E402
from settlement.core import store  # noqa: E402

START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def make_targets(n: int, bump_every: int | None = None) -> pl.DataFrame:
    # ~n/10 owners with 10 datasets each (clause 6) plus n/100 platforms (clause 7)
    n6 = n - n // 100
    i = pl.int_range(0, n6, eager=True)
    amount6 = (i % 99_991 + 1) * 7 + (0 if bump_every is None else ((i % bump_every) == 0).cast(pl.Int64) * 100)
    c6 = pl.DataFrame({
        "clause": pl.repeat(6, n6, eager=True, dtype=pl.Int32),
        "beneficiary_id": pl.Series([f"OWNER{k // 10:08d}" for k in range(n6)]),
        "dataset_id": pl.Series([f"ds-{k:09d}" for k in range(n6)]),
        "amount": amount6.cast(pl.Decimal(18, 0)).cast(pl.Decimal(18, 2)) / 100,
    })
    n7 = n // 100
    c7 = pl.DataFrame({
        "clause": pl.repeat(7, n7, eager=True, dtype=pl.Int32),
        "beneficiary_id": pl.Series([f"PLATFORM{k:08d}" for k in range(n7)]),
        "dataset_id": pl.Series([""] * n7),
        "amount": pl.Series([Decimal("1000000.00")] * n7, dtype=pl.Decimal(18, 2)),
    })
    df = pl.concat([c6.with_columns(pl.col("amount").cast(pl.Decimal(18, 2))), c7])
    return df


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def one_repeat(n: int, workdir: Path) -> dict[str, float]:
    db = workdir / "ledger_bench.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    store.init(db)
    con = store.open_store(db)
    first = make_targets(n)
    second = make_targets(n, bump_every=10)
    args = dict(year=2024, params_hash="p", inputs_fingerprint="f", engine_version="bench", started_at=START)
    out: dict[str, float] = {}
    con.register("bench_targets", first)
    out["bare_insert"], _ = timed(lambda: con.execute("CREATE TABLE t AS SELECT * FROM bench_targets"))
    con.unregister("bench_targets")
    out["accrue"], r1 = timed(lambda: ledger.append_run(con, targets=first, **args))
    out["adjust"], r2 = timed(lambda: ledger.append_run(con, targets=second, **args))
    out["unchanged"], r3 = timed(lambda: ledger.append_run(con, targets=second, **args))
    assert len(r1.appended) == n and len(r2.appended) > 0 and r3.appended == ()
    out["bare_groupby"], _ = timed(lambda: con.execute(
        "SELECT clause, beneficiary_id, dataset_id, sum(amount) FROM ledger_entries GROUP BY ALL").fetchall())
    out["verify"], v = timed(lambda: ledger.verify(con))
    assert v.ok, v.message
    out["payouts"], p = timed(lambda: ledger.payouts(con))
    assert p.height == n
    out["entries"] = float(v.entries_checked)
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="bench_ledger_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        runs = [one_repeat(a.keys, workdir) for _ in range(a.repeats)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"ledger benchmark: {a.keys:,} keys, {a.repeats} repeats, {int(med['entries']):,} entries verified")
    for k in ("bare_insert", "accrue", "adjust", "unchanged", "bare_groupby", "verify", "payouts"):
        print(f"  {k:<13} median {med[k]:8.3f} s   runs: {', '.join(f'{r[k]:.3f}' for r in runs)}")
    print(f"  ratio accrue / bare_insert  = {med['accrue'] / med['bare_insert']:.1f}")
    print(f"  ratio verify / bare_groupby = {med['verify'] / med['bare_groupby']:.1f}")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
