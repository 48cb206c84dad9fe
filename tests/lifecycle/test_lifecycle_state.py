"""State machine of the lifecycle (issue 11, "Done when"): random run / approve / reject / notice / object /
resolve / wait / disburse / late refund / retraction sequences against a model, on the ledger alone.

Proves after every step: nothing is disbursed that was not approved and noticed (a key's disbursed total
is a prefix sum of its notice lines, whose totals are values its approved total had); Σ disbursed +
outstanding = approved per beneficiary; entitled / approved / noticed / disbursed equal the model's; a
correction after payment becomes a recovery of exactly the difference; ``ledger verify`` passes, and
catches any edit of an approval, rejection or disbursement record (edited inside a rolled-back
transaction).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from ledgers import ledger
from settlement.core.errors import UserError
from settlement.lifecycle import disburse, notice, objections, review
from tests.lifecycle.helpers import MONDAY, OWNER, PLATFORM, new_con, propose
from tests.support.machines import StoreMachine

KEYS = [(6, OWNER, "ds-1"), (6, OWNER, "ds-2"), (7, PLATFORM, "")]
AMOUNTS = st.sampled_from(["0.00", "10.00", "25.50", "100.00", "99.99"])
TARGETS = st.fixed_dictionaries({k: AMOUNTS for k in KEYS})
Y = 2024


class LifecycleMachine(StoreMachine):
    def __init__(self) -> None:
        super().__init__(new_con())
        self.runs: dict[int, dict] = {}  # run_id -> {"state", "entries": {key: amount}}
        self.notices: dict[tuple, list[tuple[D, dt.date]]] = defaultdict(list)  # key -> [(amount, payable_from)]
        self.approved_history: dict[tuple, set[D]] = defaultdict(lambda: {D("0.00")})
        self.disbursed: dict[tuple, D] = defaultdict(lambda: D("0.00"))
        self.today = MONDAY
        self.open_objections: dict[int, str] = {}  # objection id -> beneficiary
        self.upheld: set[str] = set()  # beneficiaries held until the next approval

    # ---- model
    def total(self, states: tuple[str, ...]) -> dict[tuple, D]:
        out: dict[tuple, D] = defaultdict(lambda: D("0.00"))
        for run in self.runs.values():
            if run["state"] in states:
                for k, a in run["entries"].items():
                    out[k] += a
        return out

    def held(self, beneficiary: str) -> bool:
        return beneficiary in self.open_objections.values() or beneficiary in self.upheld

    def proposed(self) -> list[int]:
        return sorted(r for r, x in self.runs.items() if x["state"] == "proposed")

    # ---- rules
    def _run(self, wanted: dict[tuple, str]) -> dict[tuple, D]:
        before = self.total(("proposed", "approved"))
        result = propose(self.con, Y, wanted, by="cli:alice")
        entries = {(e.clause, e.beneficiary_id, e.dataset_id): e.amount for e in result.appended}
        expected = {k: D(wanted[k]) - before[k] for k in KEYS if D(wanted[k]) != before[k]}
        assert entries == expected
        self.runs[result.run_id] = {"state": "proposed" if entries else "unchanged", "entries": entries}
        return entries

    @rule(wanted=TARGETS)
    def run(self, wanted) -> None:
        self._run(wanted)

    @precondition(lambda self: self.proposed())
    @rule()
    def approve(self) -> None:
        first = self.proposed()[0]
        with pytest.raises(UserError, match="four eyes"):
            review.approve_run(self.con, first, by="cli:alice")
        if len(self.proposed()) > 1:
            with pytest.raises(UserError, match="first"):
                review.approve_run(self.con, self.proposed()[-1], by="reg:bob")
        review.approve_run(self.con, first, by="reg:bob")
        self.runs[first]["state"] = "approved"
        self.upheld.clear()  # a correction approved releases upheld objections
        for k, a in self.total(("approved",)).items():
            self.approved_history[k].add(a)

    @precondition(lambda self: self.proposed())
    @rule()
    def reject(self) -> None:
        last = self.proposed()[-1]
        review.reject_run(self.con, last, by="reg:bob", reason="model says no")
        self.runs[last]["state"] = "rejected"

    @rule(days=st.sampled_from([0, 2]))
    def publish(self, days: int) -> None:
        result = notice.publish_notice(self.con, Y, by="reg:bob", on=self.today, working_days=days)
        approved = self.total(("approved",))
        expected = {k: approved[k] - sum((a for a, _ in self.notices[k]), D("0.00")) for k in KEYS}
        assert {(x.clause, x.beneficiary_id, x.dataset_id): x.amount for x in result.lines} == \
            {k: v for k, v in expected.items() if v}
        for x in result.lines:
            self.notices[(x.clause, x.beneficiary_id, x.dataset_id)].append((x.amount, result.payable_from))

    @precondition(lambda self: any(x["entries"] for x in self.runs.values()))
    @rule(beneficiary=st.sampled_from([OWNER, PLATFORM]))
    def object(self, beneficiary: str) -> None:
        if not any(k[1] == beneficiary for x in self.runs.values() for k in x["entries"]):
            return
        oid = objections.object_line(self.con, Y, beneficiary, by="citizen", reason="looks high")
        self.open_objections[oid] = beneficiary

    @precondition(lambda self: self.open_objections)
    @rule(outcome=st.sampled_from(objections.OUTCOMES))
    def resolve(self, outcome: str) -> None:
        oid = min(self.open_objections)
        objections.resolve_objection(self.con, oid, by="reg:bob", outcome=outcome)
        beneficiary = self.open_objections.pop(oid)
        if outcome == "upheld":
            self.upheld.add(beneficiary)

    @rule(days=st.integers(min_value=1, max_value=5))
    def wait(self, days: int) -> None:
        self.today += dt.timedelta(days=days)

    def _due(self) -> dict[tuple, D]:
        due = {}
        for k in KEYS:
            ready = D("0.00")
            for amount, payable_from in self.notices[k]:
                if payable_from > self.today:
                    break
                ready += amount
            if ready != self.disbursed[k] and not self.held(k[1]):
                due[k] = ready - self.disbursed[k]
        return due

    @rule()
    def pay(self) -> None:
        self._pay()

    def _pay(self) -> dict[tuple, D]:
        due = self._due()
        batch = disburse.disburse(self.con, Y, by="reg:bob", on=self.today)
        got = {(x.clause, x.beneficiary_id, x.dataset_id): (x.amount, x.kind) for x in batch.instructions}
        assert got == {k: (a, "payment" if a > 0 else "recovery") for k, a in due.items()}
        for k, a in due.items():
            self.disbursed[k] += a
        if batch.batch_id and len(batch.batch_id) % 2 == 0:
            disburse.confirm_paid(self.con, batch.batch_id, paid_on=self.today, by="bank")
        return due

    @precondition(lambda self: not self.proposed() and not self.open_objections and not self.upheld)
    @rule(key=st.sampled_from(KEYS), cut=st.sampled_from(["0.01", "10.00", "all"]))
    def late_refund_or_retraction(self, key: tuple, cut: str) -> None:
        """After a key was paid in full, a late refund (a cut) or a retraction (all of it) is recovered."""
        entitled = self.total(("approved",))
        if self.disbursed[key] != entitled[key] or entitled[key] <= 0:
            return
        self.publish(0)
        self._pay()  # settle anything else due first
        if self.disbursed[key] != entitled[key]:
            return
        new = D("0.00") if cut == "all" else max(D("0.00"), entitled[key] - D(cut))
        wanted = {k: str(entitled[k]) for k in KEYS} | {key: str(new)}
        self._run(wanted)
        self.approve()
        self.publish(0)
        due = self._pay()
        assert due.get(key) == new - entitled[key] and due[key] < 0  # a recovery of exactly the difference

    @precondition(lambda self: any(x["state"] in ("approved", "rejected") for x in self.runs.values()))
    @rule(column=st.sampled_from(["actor", "note", "amount", "on_date"]))
    def tamper_is_caught(self, column: str) -> None:
        row = self.con.execute("SELECT event_id, kind FROM lifecycle_events WHERE kind IN ('approve', 'reject', "
                               "'disburse') ORDER BY event_id DESC LIMIT 1").fetchall()[0]
        value = {"actor": "'someone else'", "note": "'edited'", "amount": "coalesce(amount, 0) + 1",
                 "on_date": "DATE '2020-01-01'"}[column]
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(f"UPDATE lifecycle_events SET {column} = {value} WHERE event_id = ?", [row[0]])
            result = ledger.verify(self.con)
            assert not result.ok and f"lifecycle event {row[0]} ({row[1]}" in result.message, result.message
        finally:
            self.con.execute("ROLLBACK")

    # ---- invariants
    @invariant()
    def accounts_tie_out(self) -> None:
        rows = self.con.execute("SELECT clause, beneficiary_id, dataset_id, entitled, approved, noticed, disbursed, "
                                "outstanding FROM key_accounts WHERE year = ?", [Y]).fetchall()
        got = {(c, b, d): tuple(v) for c, b, d, *v in rows}
        entitled, approved = self.total(("proposed", "approved")), self.total(("approved",))
        for k in KEYS:
            noticed = sum((a for a, _ in self.notices[k]), D("0.00"))
            want = (entitled[k], approved[k], noticed, self.disbursed[k], approved[k] - self.disbursed[k])
            assert got.get(k, (D(0),) * 5) == want, (k, got.get(k), want)
            # nothing disbursed that was not approved and noticed
            prefixes = {D("0.00")}
            running = D("0.00")
            for amount, _ in self.notices[k]:
                running += amount
                prefixes.add(running)
            assert self.disbursed[k] in prefixes and noticed in self.approved_history[k]
        for _b, disbursed, outstanding, appr in self.con.execute(
                "SELECT beneficiary_id, disbursed, outstanding, approved FROM beneficiary_accounts").fetchall():
            assert disbursed + outstanding == appr


# Bounded for the suite (about 12 s of CPU); LIFECYCLE_EXAMPLES=200 for a long run.
LifecycleMachine.TestCase.settings = settings(max_examples=int(os.environ.get("LIFECYCLE_EXAMPLES", "6")),
                                              stateful_step_count=10, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
TestLifecycle = LifecycleMachine.TestCase
