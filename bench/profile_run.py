"""Where a settlement run spends its time: every statement a `settle run --year Y` issues, timed (wall and
process CPU), on a COPY of a store (issue 14's profile of the 10M-trade run).

    .venv/bin/python bench/profile_run.py STORE [--year 2024] [--min-seconds 0.2]

The copy is settled with a fresh inputs fingerprint, so every stage is recomputed even when the store's last
run saw the same inputs (the copy's ledger then holds one more run; the store itself is never touched).
Prints one line per statement slower than --min-seconds, then the total and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settlement.run as run_module  # noqa: E402
from settlement.core import store  # noqa: E402
from settlement.core.params import load_params  # noqa: E402


@contextmanager
def store_copy(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store at ``path`` copied into a temporary folder beside it and opened for writing (migrated); the
    copy is removed afterwards, the store itself never touched."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        copy = Path(tmp) / "copy.duckdb"
        shutil.copyfile(path, copy)
        con = store.open_store(copy)
        try:
            yield con
        finally:
            con.close()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timed:
    """The store connection, timing each ``execute`` (the stages run their statements through it)."""

    def __init__(self, con) -> None:
        self.con, self.log = con, []

    def execute(self, sql, *args, **kwargs):
        wall, used = time.perf_counter(), cpu()
        result = self.con.execute(sql, *args, **kwargs)
        self.log.append((time.perf_counter() - wall, cpu() - used, " ".join(str(sql).split())[:140]))
        return result

    def __getattr__(self, name):
        return getattr(self.con, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--min-seconds", type=float, default=0.2)
    args = ap.parse_args()
    with store_copy(args.store) as con:
        params = load_params()
        run_module.inputs_fingerprint = lambda *a, **k: uuid.uuid4().hex  # recompute every stage
        timed = Timed(con)
        wall, used = time.perf_counter(), cpu()
        result = run_module.run_settlement(timed, args.year, params=params)
        wall, used = time.perf_counter() - wall, cpu() - used
    for seconds, cpu_seconds, sql in timed.log:
        if seconds >= args.min_seconds:
            print(f"{seconds:7.2f} s {cpu_seconds:7.2f} cpu  {sql}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"run {result.run_id}: {wall:.2f} s wall, {used:.2f} CPU-s, peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
