"""Review of runs (issue 11 item 1): four eyes, review order, rejected runs void, records verified."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledgers import ledger
from settlement.core.errors import UserError
from settlement.lifecycle import review
from tests.lifecycle.helpers import OWNER, PLATFORM, new_con, propose


def states(con) -> dict[int, str]:
    return {r["run_id"]: r["state"] for r in review.runs_list(con)}


def test_four_eyes_the_starter_cannot_approve_or_reject_and_nothing_is_recorded() -> None:
    con = new_con()
    r = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"}, by="cli:alice")
    with pytest.raises(UserError, match="four eyes") as exc:
        review.approve_run(con, r.run_id, by="cli:alice")
    assert exc.value.code == "forbidden"
    with pytest.raises(UserError, match="four eyes"):
        review.reject_run(con, r.run_id, by="cli:alice", reason="mine")
    assert con.execute("SELECT count(*) FROM lifecycle_events").fetchall() == [(0,)]
    review.approve_run(con, r.run_id, by="reg:bob", comment="checked")
    assert states(con) == {1: "approved"}
    assert review.runs_list(con)[0]["reviewed_by"] == "reg:bob"


def test_only_a_proposed_run_is_reviewed() -> None:
    con = new_con()
    r1 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})
    r2 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})  # unchanged: appends nothing
    assert states(con) == {1: "proposed", 2: "unchanged"}
    with pytest.raises(UserError, match="unchanged, not proposed"):
        review.approve_run(con, r2.run_id, by="reg:bob")
    review.approve_run(con, r1.run_id, by="reg:bob")
    with pytest.raises(UserError, match="approved, not proposed"):
        review.reject_run(con, r1.run_id, by="reg:carol", reason="late")
    with pytest.raises(UserError, match="no run 9"):
        review.approve_run(con, 9, by="reg:bob")


def test_runs_are_approved_oldest_first_and_rejected_newest_first() -> None:
    con = new_con()
    r1 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})
    r2 = propose(con, 2024, {(6, OWNER, "ds-1"): "120.00"})  # +20.00 on top of run 1
    with pytest.raises(UserError, match="approve or reject run 1 first"):
        review.approve_run(con, r2.run_id, by="reg:bob")
    with pytest.raises(UserError, match="reject run 2 first"):
        review.reject_run(con, r1.run_id, by="reg:bob", reason="x")
    review.reject_run(con, r2.run_id, by="reg:bob", reason="refund not yet booked")
    review.reject_run(con, r1.run_id, by="reg:bob", reason="wrong registry")
    assert states(con) == {1: "rejected", 2: "rejected"}
    assert ledger.verify(con).ok


def test_a_rejected_run_is_void_and_the_next_run_proposes_again() -> None:
    con = new_con()
    r1 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00", (7, PLATFORM, ""): "10.00"})
    review.approve_run(con, r1.run_id, by="reg:bob")
    r2 = propose(con, 2024, {(6, OWNER, "ds-1"): "80.00", (7, PLATFORM, ""): "10.00"})
    assert [e.amount for e in r2.appended] == [D("-20.00")]
    review.reject_run(con, r2.run_id, by="reg:bob", reason="wrong refund")
    # the entitlement is Σ entries of runs not rejected: back to 100.00; run 2's entry stays, void
    assert {r[2]: r[4] for r in ledger.payouts(con, 2024).iter_rows()} == {OWNER: D("100.00"), PLATFORM: D("10.00")}
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchall() == [(3,)]
    r3 = propose(con, 2024, {(6, OWNER, "ds-1"): "80.00", (7, PLATFORM, ""): "10.00"})
    assert [(e.amount, e.kind) for e in r3.appended] == [(D("-20.00"), "adjustment")]
    by_state = {s: {r[2]: r[4] for r in ledger.payouts(con, 2024, state=s).iter_rows()} for s in ("proposed", "approved")}
    assert by_state == {"proposed": {OWNER: D("-20.00")}, "approved": {OWNER: D("100.00"), PLATFORM: D("10.00")}}
    # verify re-derives run 3 against the entries of runs not rejected before it ran
    assert ledger.verify(con).ok


def test_a_run_rejected_after_an_unchanged_rerun_still_verifies() -> None:
    con = new_con()
    r1 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})
    propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})  # unchanged while run 1 still counted
    review.reject_run(con, r1.run_id, by="reg:bob", reason="x")
    assert ledger.verify(con).ok
    r3 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})
    assert [e.amount for e in r3.appended] == [D("100.00")]
    assert ledger.verify(con).ok


@pytest.mark.parametrize("edit, named", [
    ("UPDATE lifecycle_events SET note = 'fine' WHERE event_id = 1", "lifecycle event 1 (approve of run 1): stored hash"),
    ("UPDATE lifecycle_events SET actor = 'cli:alice' WHERE event_id = 2", "lifecycle event 2 (reject of run 2)"),
    ("DELETE FROM lifecycle_events WHERE event_id = 2", "ledger head names lifecycle event 2"),
    ("UPDATE settlement_runs SET started_by = 'reg:bob' WHERE run_id = 1", "four eyes"),
])
def test_verify_names_an_edited_review_record(edit: str, named: str) -> None:
    con = new_con()
    r1 = propose(con, 2024, {(6, OWNER, "ds-1"): "100.00"})
    review.approve_run(con, r1.run_id, by="reg:bob", comment="ok")
    r2 = propose(con, 2024, {(6, OWNER, "ds-1"): "90.00"})
    review.reject_run(con, r2.run_id, by="reg:bob", reason="no")
    assert ledger.verify(con).ok
    con.execute(edit)
    result = ledger.verify(con)
    assert not result.ok and named in result.message, result.message
