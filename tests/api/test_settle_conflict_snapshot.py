"""POST /v1/settlements settles year after year, each in its own transaction: when a later year loses to
another run (409), the earlier years are committed, and the regulator's SQL (a snapshot keyed by the API's
data generation) must show them at once, not after the next successful write."""

from __future__ import annotations

import settlement.run
from ledgers import ledger
from tests.support.api import ApiEnv

A = ApiEnv.auth


def _runs(api: ApiEnv) -> list:
    answer = api.client.post("/v1/sql", json={"sql": "SELECT year, run_id FROM settlement_runs ORDER BY run_id"},
                             headers=A(api.regulator))
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def test_a_conflict_after_a_committed_year_still_shows_that_year_in_regulator_sql(api, monkeypatch):
    assert _runs(api) == []  # the snapshot of this generation is built here
    real = settlement.run.settle_years

    def first_year_then_conflict(con, year, **kwargs):
        real(con, 2024, **kwargs)  # 2024 commits, then the next year loses to another run
        raise ledger.LedgerConflict("ledger head moved")

    monkeypatch.setattr(settlement.run, "settle_years", first_year_then_conflict)
    answer = api.client.post("/v1/settlements", headers=A(api.regulator))
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == ("another settlement run committed first: ledger head moved; "
                                                 "run again")
    assert _runs(api) == [[2024, 1]]
