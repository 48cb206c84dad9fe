"""Issue 13 "Done when" on generated data: every pattern `settle generate --fraud` plants is flagged, and
clean data of the realistic shape raises fewer than 1 flag per 1,000 qualifying datasets."""

from __future__ import annotations

import csv

from settlement.integrity.flags import CODES, year_flags
from settlement.tools.generate import GenerateSpec, generate
from tests.integrity.support import load_generated, matches


def _spec(out, *, seed: int, fraud_each: int) -> GenerateSpec:
    return GenerateSpec(out=out, parties=3_000, relations=2_000, trades=120_000, datasets=100, seed=seed,
                        shape="realistic", fraud_each=fraud_each)


def _qualifying(con) -> int:
    return con.execute("SELECT count(*) FROM run_dataset_results WHERE qualifies AND run_id = "
                       "(SELECT max(run_id) FROM settlement_runs WHERE year = 2024)").fetchall()[0][0]


def test_every_planted_pattern_is_flagged_and_nothing_else(tmp_path):
    generate(_spec(tmp_path / "data", seed=11, fraud_each=2))
    with open(tmp_path / "data" / "fraud_plants.csv", newline="") as fh:
        plants = list(csv.DictReader(fh))
    assert {p["code"] for p in plants} == set(CODES) and len(plants) == 2 * len(CODES)
    con = load_generated(tmp_path, tmp_path / "data")
    flags = year_flags(con, 2024)
    missed = [p for p in plants if not any(matches(f, p) for f in flags)]
    assert missed == []
    unplanned = [f for f in flags if not any(matches(f, p) for p in plants)]
    assert len(unplanned) * 1000 < max(_qualifying(con), 1), [f.detail for f in unplanned]


def test_clean_realistic_data_raises_under_one_flag_per_thousand_qualifying_datasets(tmp_path):
    generate(_spec(tmp_path / "data", seed=5, fraud_each=0))
    assert not (tmp_path / "data" / "fraud_plants.csv").exists()
    con = load_generated(tmp_path, tmp_path / "data")
    qualifying = _qualifying(con)
    flags = year_flags(con, 2024)
    assert qualifying >= 20
    assert len(flags) * 1000 < qualifying, [f.detail for f in flags]


def test_plants_are_seeded(tmp_path):
    for name in ("a", "b"):
        generate(GenerateSpec(out=tmp_path / name, parties=500, relations=100, trades=1_000, seed=3,
                              shape="realistic", fraud_each=1))
    for f in ("fraud_trades.csv", "late_refunds.csv", "fraud_plants.csv", "datasets.csv", "affiliations.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
