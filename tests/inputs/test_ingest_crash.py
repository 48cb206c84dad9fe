"""A SIGKILL in the middle of ingesting a large file leaves all or none of that upload (issue 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from settlement.core import store
from tests.support.ingest import PLATFORM, SELLER, code

ROWS = 600_000

CHILD = textwrap.dedent(
    """
    import sys
    from settlement.inputs import ingest
    from settlement.core import store
    con = store.open_store(sys.argv[1])
    def step(stage):
        print(stage, flush=True)
    ingest.ingest_file(con, sys.argv[2], uploaded_by="crash-test", progress=step)
    print("committed", flush=True)
    """
)


def _big_csv(path: Path) -> None:
    buyers = [code(100 + i) for i in range(50)]
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'T' || i AS trade_id, '{PLATFORM}' AS platform_id, 'DS' || (i % 97) AS dataset_id,
                  '{SELLER}' AS seller_id, list_extract(?, 1 + (i % 50)::INTEGER) AS buyer_id,
                  '2024-05-01T10:00:00' AS traded_at, '12.34' AS amount
            FROM range({ROWS}) t(i)) TO '{path}' (HEADER)""",
        [buyers],
    )
    con.close()


@pytest.mark.parametrize("kill_after_stage", ["validating", "storing"])
def test_sigkill_mid_ingest_leaves_all_or_none(tmp_path, kill_after_stage):
    db = tmp_path / "crash.duckdb"
    store.init(db)
    data = tmp_path / "big.csv"
    _big_csv(data)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(data)], stdout=subprocess.PIPE, text=True,
                             env=env)
    seen = []
    for line in child.stdout:
        seen.append(line.strip())
        if line.strip() == kill_after_stage:
            time.sleep(0.05)  # inside the stage, not at its edge
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert kill_after_stage in seen and "committed" not in seen

    con = store.open_store(db)  # opens cleanly: the WAL is replayed or discarded
    trades = con.execute("SELECT count(*) FROM trade_rows").fetchall()[0][0]
    uploads = con.execute("SELECT count(*), coalesce(sum(rows_stored), 0) FROM uploads").fetchall()[0]
    assert (trades, uploads) in [(0, (0, 0)), (ROWS, (1, ROWS))]
    con.close()
