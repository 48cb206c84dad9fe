"""State-machine test of the ledger alone (P13): random target sequences per year and run.

After every run: Σ entries per key == the run's target (0 when absent) for that year, other years
untouched, every earlier entry unchanged, a repeated run appends nothing, and verify() passes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import duckdb
import polars as pl
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from ledgers import ledger
from settlement.core import store
from tests.support.machines import StoreMachine

START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
KEYS = [(6, "OWNER-A", "ds-1"), (6, "OWNER-A", "ds-2"), (6, "OWNER-B", "ds-3"), (7, "PLATFORM-P", ""),
        (7, "PLATFORM-Q", "")]
YEARS = [2023, 2024]
# small pool of amounts so keys often return to an earlier value (unchanged → nothing appended)
AMOUNTS = st.sampled_from(["0.00", "0.01", "1.00", "99.99", "1000000.00", "333333.34"]).map(D) | st.integers(
    min_value=0, max_value=10_000_000).map(lambda c: D(c).scaleb(-2))
TARGETS = st.dictionaries(st.sampled_from(KEYS), AMOUNTS, max_size=len(KEYS))


def frame(targets: dict[tuple, D]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, b, d if d else None, a) for (c, b, d), a in targets.items()],  # clause 7 as null → stored ''
        schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String, "amount": pl.Decimal(18, 2)},
        orient="row",
    )


class LedgerMachine(StoreMachine):
    def __init__(self) -> None:
        super().__init__(duckdb.connect())
        store.migrate(self.con)
        self.latest: dict[int, dict[tuple, D]] = {y: {} for y in YEARS}  # model: latest target per year
        self.history: list[tuple] = []  # every entry ever appended, as stored

    def _append(self, year: int, targets: dict[tuple, D]) -> ledger.RunResult:
        return ledger.append_run(self.con, year=year, targets=frame(targets), params_hash="p",
                                 inputs_fingerprint=f"fp-{len(self.history)}", engine_version="state-test",
                                 started_at=START)

    def _entries(self) -> list[tuple]:
        return self.con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall()

    @rule(year=st.sampled_from(YEARS), wanted=TARGETS)  # ('targets' is a reserved name in hypothesis rules)
    def settle(self, year: int, wanted: dict[tuple, D]) -> None:
        before = {k: v for k, v in self._balances(year).items()}
        result = self._append(year, wanted)
        # exactly the keys whose balance differed from the target got one entry each, with the delta
        expected = {k: wanted.get(k, D(0)) - before.get(k, D(0)) for k in set(wanted) | set(before)}
        expected = {k: v for k, v in expected.items() if v != 0}
        got = {(e.clause, e.beneficiary_id, e.dataset_id): e.amount for e in result.appended}
        assert got == expected
        for e in result.appended:
            assert e.kind == ("accrual" if (e.clause, e.beneficiary_id, e.dataset_id) not in before else "adjustment")
        self.latest[year] = wanted
        self._check_history_then_record()
        # repeating the same run appends nothing
        assert self._append(year, wanted).appended == ()

    @rule(year=st.sampled_from(YEARS))
    def rerun_latest(self, year: int) -> None:
        assert self._append(year, self.latest[year]).appended == ()

    def _balances(self, year: int) -> dict[tuple, D]:
        rows = self.con.execute("SELECT clause, beneficiary_id, dataset_id, sum(amount) FROM ledger_entries "
                                "WHERE year = ? GROUP BY ALL", [year]).fetchall()
        return {(c, b, d): a for c, b, d, a in rows}

    def _check_history_then_record(self) -> None:
        entries = self._entries()
        assert entries[: len(self.history)] == self.history  # earlier entries unchanged, none removed
        self.history = entries

    @invariant()
    def balances_equal_latest_targets(self) -> None:
        for year in YEARS:
            nonzero = {k: v for k, v in self._balances(year).items() if v != 0}
            assert nonzero == {k: v for k, v in self.latest[year].items() if v != 0}


LedgerMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=8, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
