"""Hypothesis state machine over settlement (P9–P13): random uploads, refunds (also dated next year),
retractions, registry / affiliation / prior-award reloads and runs. After every run:
- Σ ledger entries per key of the year == an independent from-scratch recomputation
  (``tests/settle_reference.py``, loops straight from POLICY.md P5–P12);
- the P12 reason of every sale per clause == the reference's;
- no earlier ledger entry changed (the old ledger is a prefix of the new one);
- running the same year again appends nothing.
Small universe so that thresholds, groups and caps are actually hit. Kept to ~20 s (10 examples);
SETTLE_SM_EXAMPLES=200 runs a longer hunt.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from settlement.run import run_settlement
from tests.support.reference import reference
from tests.support.scenario import PARAMS
from tests.support.world import (
    load_affiliations,
    load_datasets,
    load_platforms,
    load_prior_awards,
    new_store,
    retract,
    upload,
)

WINDOW = (date(2023, 5, 8), date(2026, 5, 8))
PLATFORMS = ["PF1", "PF2"]
OWNERS = ["OW1", "OW2"]
BUYERS = ["B1", "B2", "B3", "B4", "B5", "B6"]
DATASETS = ["D1", "D2", "D3"]
PARTIES = PLATFORMS + OWNERS + BUYERS + ["P:1"]
# local timestamps (P3): window edge, mid-year change points, year boundary in UTC
TIMES = ["2023-05-07T23:30:00", "2023-05-08T00:10:00", "2024-03-01T10:00:00", "2024-07-01T09:00:00",
         "2024-10-15T12:00:00", "2024-12-31T16:30:00Z", "2025-02-01T08:00:00", "2025-06-30T10:00:00",
         "2024-05-05T10:00:00", "2024-08-08T10:00:00"]
AMOUNTS = ["0.05", "100.00", "250.50", "1000.00", "4000000.00"]
CERT_FROM = [date(2023, 1, 1), date(2023, 1, 1), date(2024, 7, 1), None]  # None: never certified (P10.1)
CERT_UNTIL = [None, date(2025, 3, 31)]
OWNER_FROM = [None, None, date(2024, 7, 1), date(2024, 10, 15), date(2025, 3, 1)]
DATES = [None, date(2024, 7, 1), date(2024, 9, 30)]

sale_st = st.fixed_dictionaries({
    "platform": st.sampled_from(PLATFORMS), "dataset": st.sampled_from(["D1", "D1", "D1", "D2", "D3"]),
    "buyer": st.sampled_from(BUYERS), "seller": st.sampled_from(OWNERS + ["B1"]),
    "at": st.sampled_from(TIMES), "amount": st.sampled_from(AMOUNTS),
})
record_st = st.tuples(
    st.sampled_from(PARTIES), st.sampled_from(PARTIES[:-1]),
    st.sampled_from(["equity", "equity", "control", "declared"]),
    st.sampled_from(["0.10", "0.20", "0.25", "0.30", "0.60"]),
    st.sampled_from(DATES), st.sampled_from(DATES), st.booleans(),
).filter(lambda r: r[0] != r[1])


class Settlement(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="settle-sm-"))
        self.con = new_store(self.dir)
        self.ids = itertools.count(1)
        self.live_uploads: list[int] = []
        self.live_sales: dict[str, dict] = {}  # trade_id -> sale (with upload id and refunded so far)
        self.refund_uploads: dict[int, tuple[str, Decimal]] = {}  # live refund upload -> (sale, amount)
        load_platforms(self.con, [("PF1", date(2023, 1, 1), None), ("PF2", date(2024, 7, 1), None)])
        load_datasets(self.con, [("D1", "OW1", date(2023, 1, 1), None), ("D2", "OW1", date(2023, 1, 1), None),
                                 ("D3", "OW2", date(2023, 1, 1), None)])

    def teardown(self):
        self.con.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(sales=st.lists(sale_st, min_size=2, max_size=8))
    def upload_sales(self, sales):
        trades = []
        for s in sales:
            if s["buyer"] == s["seller"]:
                continue  # CONTRACT: buyer = seller is a row error
            tid = f"T{next(self.ids)}"
            trades.append(dict(trade_id=tid, **s))
        if not trades:
            return
        up = upload(self.con, trades)
        self.live_uploads.append(up)
        for t in trades:
            self.live_sales[t["trade_id"]] = dict(t, upload=up, refunded=Decimal(0))

    @precondition(lambda self: self.live_sales)
    @rule(data=st.data(), full=st.booleans(), at=st.sampled_from(TIMES))
    def refund_a_sale(self, data, full, at):
        tid = data.draw(st.sampled_from(sorted(self.live_sales)))
        s = self.live_sales[tid]
        left = Decimal(s["amount"]) - s["refunded"]
        if left <= 0:
            return
        amount = left if full or left < Decimal("0.02") else (left / 2).quantize(Decimal("0.01"))
        up = upload(self.con, [dict(trade_id=f"R{next(self.ids)}", platform=s["platform"], dataset=s["dataset"],
                                    seller=s["seller"], buyer=s["buyer"], at=at, amount=str(amount),
                                    kind="refund", ref=tid)])
        self.live_uploads.append(up)
        self.refund_uploads[up] = (tid, amount)
        s["refunded"] += amount

    @precondition(lambda self: self.refund_uploads)
    @rule(data=st.data())
    def retract_a_refund(self, data):
        up = data.draw(st.sampled_from(sorted(self.refund_uploads)))
        tid, amount = self.refund_uploads.pop(up)
        retract(self.con, up)
        self.live_uploads.remove(up)
        if tid in self.live_sales:
            self.live_sales[tid]["refunded"] -= amount

    @precondition(lambda self: self.live_uploads)
    @rule(data=st.data())
    def retract_an_upload(self, data):
        up = data.draw(st.sampled_from(self.live_uploads))
        retract(self.con, up)
        self.live_uploads.remove(up)
        if up in self.refund_uploads:
            tid, amount = self.refund_uploads.pop(up)
            if tid in self.live_sales:
                self.live_sales[tid]["refunded"] -= amount
        self.live_sales = {k: v for k, v in self.live_sales.items() if v["upload"] != up}

    # P10.1 (amended): several registration periods per dataset, each from its owner_from (None = open start)
    @rule(rows=st.lists(st.tuples(st.sampled_from(DATASETS), st.sampled_from(OWNERS), st.sampled_from(CERT_FROM),
                                  st.sampled_from(CERT_UNTIL), st.sampled_from(OWNER_FROM)),
                        min_size=1, max_size=4, unique_by=lambda r: (r[0], r[4])))
    def reload_datasets(self, rows):
        load_datasets(self.con, rows)

    @rule(rows=st.lists(st.tuples(st.sampled_from(PLATFORMS), st.sampled_from(CERT_FROM), st.sampled_from(CERT_UNTIL)),
                        min_size=1, max_size=2, unique_by=lambda r: r[0]))
    def reload_platforms(self, rows):
        load_platforms(self.con, rows)

    @rule(records=st.lists(record_st, max_size=4))
    def reload_affiliations(self, records):
        rows = []
        for a, b, rel, share, vf, vt, exempt in records:
            if vf and vt and vt < vf:
                vf, vt = vt, vf
            rows.append((a, b, rel, share if rel == "equity" else None, vf, vt, exempt and rel == "equity"))
        load_affiliations(self.con, rows)

    @rule(rows=st.lists(st.tuples(st.sampled_from(DATASETS), st.sampled_from([2024, 2025]),
                                  st.sampled_from(["10.00", "100.00", "400000.00"])), max_size=3))
    def reload_prior_awards(self, rows):
        load_prior_awards(self.con, rows)

    @rule(year=st.sampled_from([2023, 2024, 2024, 2024, 2025]))
    def run(self, year):
        before = self.con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall()
        run_settlement(self.con, year, params=PARAMS)
        after = self.con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall()
        assert after[: len(before)] == before, "an earlier ledger entry changed (P13)"
        got = {(c, b, d): a for c, b, d, a in self.con.execute(
            "SELECT clause, beneficiary_id, dataset_id, sum(amount) FROM ledger_entries WHERE year = ? "
            "GROUP BY ALL HAVING sum(amount) <> 0", [year]).fetchall()}
        expected = reference(self.con, year, window=WINDOW)
        assert got == expected.targets
        run_id = self.con.execute(  # a rerun on unchanged inputs points at the run that stored the reasons
            "SELECT source_run_id FROM run_explanation_source ORDER BY run_id DESC LIMIT 1").fetchall()[0][0]
        for clause, want in ((6, expected.reasons6), (7, expected.reasons7)):
            reasons = {(p, t, u): r for p, t, u, r in self.con.execute(
                "SELECT platform_id, trade_id, upload_id, reason FROM exclusions "
                "WHERE run_id = ? AND clause = ? AND kind = 'sale'", [run_id, clause]).fetchall()}
            assert reasons == want, f"clause {clause} reasons differ"
        again = run_settlement(self.con, year, params=PARAMS)
        assert again.appended == (), "a repeated run appended entries (P13)"

    @invariant()
    def refunds_never_exceed_their_sale(self):
        assert all(s["refunded"] <= Decimal(s["amount"]) for s in self.live_sales.values())


Settlement.TestCase.settings = settings(
    max_examples=int(os.environ.get("SETTLE_SM_EXAMPLES", "10")), stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSettlementStateMachine = Settlement.TestCase
