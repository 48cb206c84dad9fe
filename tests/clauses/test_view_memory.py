"""The regulator view `exclusions` derives a whole run in bounded memory (issue 14, migration 0014).

Migration 0011's view selected the run's sales by `year(local_date) = p.year`; DuckDB judged that equality
selective and built the four day-group joins' hash tables on the sales, so a whole-run query needed memory in
proportion to the trades (more than 6 GB at 10M; on this 300,000-trade store between 300 and 500 MB, measured).
Since 0014 the sales are a range of the run's year: the same count fits in 200 MB here (and in 0.56 GB at 10M,
BENCHMARKS). The limit below sits between the two, with two threads as on the CI machine.
"""

from __future__ import annotations

from settlement.tools.generate import GenerateSpec, generate
from tests.integrity.support import load_generated

LIMIT = "250MB"


def test_a_whole_run_of_the_view_fits_in_a_small_memory_limit(tmp_path):
    generate(GenerateSpec(out=tmp_path / "data", parties=3_000, relations=2_000, trades=300_000, datasets=100,
                          seed=5, shape="realistic", fraud_each=0))
    con = load_generated(tmp_path, tmp_path / "data")
    run_id = con.execute("SELECT max(run_id) FROM exclusion_runs").fetchall()[0][0]
    counted = con.execute("SELECT clause, reason, kind, sum(trades) FROM run_exclusion_counts WHERE run_id = ? "
                          "GROUP BY ALL ORDER BY ALL", [run_id]).fetchall()
    con.execute("SET threads = 2")
    con.execute(f"SET memory_limit = '{LIMIT}'")
    derived = con.execute("SELECT clause, reason, kind, count(*) FROM exclusions WHERE run_id = ? "
                          "GROUP BY ALL ORDER BY ALL", [run_id]).fetchall()
    assert derived == counted
    assert sum(n for *_, n in derived) > 50_000
