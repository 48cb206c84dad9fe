"""Each integrity code (issue 13, docs/integrity.md) on a hand-made scenario that raises it, and a near-miss
that must not. Amounts are untouched by flags (tested in test_flags_store)."""

from __future__ import annotations

from settlement.lifecycle.review import approve_run
from tests.integrity.support import buys, codes, exchange, flags_of, settle_with
from tests.support.scenario import settle
from tests.support.world import refund, sale, upload

THREE = ("B1", "B2", "B3")


# ------------------------------------------------------------------------------------ THIN_THRESHOLD

def test_thin_threshold_a_fourth_caller_group_under_two_percent_of_the_base(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE) + buys("D1", "OWN1", ["B4"], amount="10.00"))
    # base 3,010.00; B4 nets 10.00 < 2% × 3,010.00 = 60.20: without it 3 groups, not > 3 (P10.4)
    (flag,) = flags_of(con, code="THIN_THRESHOLD")
    assert flag.dataset_id == "D1" and flag.parties == ("B4", "OWN1")
    assert flag.evidence_trade_ids == ("D1-B4",)
    assert flag.figures["tiny_groups"] == ["own:B4"] and flag.figures["groups_left"] == 3


def test_thin_threshold_near_miss_fourth_group_above_two_percent(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE) + buys("D1", "OWN1", ["B4"], amount="100.00"))
    assert "THIN_THRESHOLD" not in codes(con)  # 100.00 ≥ 2% × 3,100.00 = 62.00


def test_thin_threshold_near_miss_enough_groups_left(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE + ("B5",)) + buys("D1", "OWN1", ["B4"], amount="10.00"))
    assert "THIN_THRESHOLD" not in codes(con)  # 4 solid groups remain, still > 3


# ------------------------------------------------------------------------------------ LATE_CALLERS

def test_late_callers_token_purchase_in_the_last_fourteen_days(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE) + buys("D1", "OWN1", ["B4"], amount="10.00", at="2024-12-18T09:00:00"))
    (flag,) = flags_of(con, code="LATE_CALLERS")
    assert flag.dataset_id == "D1" and "B4" in flag.parties and flag.figures["late_from"] == "2024-12-18"
    assert flag.evidence_trade_ids == ("D1-B4",)


def test_late_callers_near_miss_first_purchase_one_day_earlier(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE) + buys("D1", "OWN1", ["B4"], amount="10.00", at="2024-12-17T23:00:00"))
    assert "LATE_CALLERS" not in codes(con)


def test_late_callers_near_miss_a_genuine_late_customer(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", THREE) + buys("D1", "OWN1", ["B4"], at="2024-12-28T09:00:00"))
    assert "LATE_CALLERS" not in codes(con)  # B4 nets 1,000.00 = 25% of the base > 10%


# ------------------------------------------------------------------------------------ RECIPROCAL_CALLERS

def test_reciprocal_callers_two_owners_buy_each_others_datasets(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, buys("D1", "OWN1", THREE + ("OWN2",)) + buys("D2", "OWN2", ("C1", "C2", "C3", "OWN1"),
                                                                  at="2024-06-01T10:00:00"))
    (flag,) = flags_of(con, code="RECIPROCAL_CALLERS")
    assert flag.parties == ("OWN1", "OWN2") and flag.figures["datasets"] == ["D1", "D2"]
    assert set(flag.evidence_trade_ids) == {"D1-OWN2", "D2-OWN1"}


def test_reciprocal_callers_near_miss_one_direction_only(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, buys("D1", "OWN1", THREE + ("OWN2",)) + buys("D2", "OWN2", ("C1", "C2", "C3", "C4")))
    assert "RECIPROCAL_CALLERS" not in codes(con)


def test_reciprocal_callers_near_miss_neither_dataset_qualifies(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, buys("D1", "OWN1", ("B1", "OWN2")) + buys("D2", "OWN2", ("C1", "OWN1"), at="2024-09-01T10:00:00"))
    assert "RECIPROCAL_CALLERS" not in codes(con)


# ------------------------------------------------------------------------------------ CALLER_RING

def _ring(third_buyer: str) -> list[dict]:
    return (buys("D1", "OWN1", THREE + ("OWN2",)) + buys("D2", "OWN2", ("C1", "C2", "C3", "OWN3"))
            + buys("D3", "OWN3", ("E1", "E2", "E3", third_buyer)))


def test_caller_ring_of_three_owner_groups(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2", "OWN3"))
    settle_with(con, _ring("OWN1"))
    (flag,) = flags_of(con, code="CALLER_RING")
    assert flag.figures["ring"] == ["own:OWN1", "own:OWN2", "own:OWN3"] and flag.figures["length"] == 3
    assert flag.parties == ("OWN1", "OWN2", "OWN3")
    assert set(flag.evidence_trade_ids) == {"D1-OWN2", "D2-OWN3", "D3-OWN1"}
    assert "RECIPROCAL_CALLERS" not in codes(con)


def test_caller_ring_near_miss_an_open_chain(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2", "OWN3"))
    settle_with(con, _ring("E4"))
    assert "CALLER_RING" not in codes(con)


# ------------------------------------------------------------------------------------ SHARED_CALLER_SET

def test_shared_caller_set_one_ring_of_shells_serves_two_unrelated_owners(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    shells = ("S1", "S2", "S3", "S4")
    settle_with(con, buys("D1", "OWN1", shells) + buys("D2", "OWN2", shells))
    (flag,) = flags_of(con, code="SHARED_CALLER_SET")
    assert flag.figures["datasets"] == ["D1", "D2"] and flag.figures["owner_groups"] == 2
    assert flag.parties == ("OWN1", "OWN2", "S1", "S2", "S3", "S4") and len(flag.evidence_trade_ids) == 8


def test_shared_caller_set_near_miss_one_caller_differs(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, buys("D1", "OWN1", ("S1", "S2", "S3", "S4")) + buys("D2", "OWN2", ("S1", "S2", "S3", "S5")))
    assert "SHARED_CALLER_SET" not in codes(con)


def test_shared_caller_set_near_miss_owners_are_one_group(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"), affiliations=[("OWN1", "OWN2", "control", None, None, None)])
    shells = ("S1", "S2", "S3", "S4")
    settle_with(con, buys("D1", "OWN1", shells) + buys("D2", "OWN2", shells))
    assert "SHARED_CALLER_SET" not in codes(con)


# ------------------------------------------------------------------------------------ ROUND_TRIP

def test_round_trip_money_comes_back_within_thirty_days(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, [sale("out", "OWN2", "5000.00", "2024-03-01T10:00:00", dataset="D1", seller="OWN1"),
                      sale("back", "OWN1", "4600.00", "2024-03-31T10:00:00", dataset="D2", seller="OWN2")])
    (flag,) = flags_of(con, code="ROUND_TRIP")
    assert flag.parties == ("OWN1", "OWN2") and flag.evidence_trade_ids == ("back", "out")
    assert flag.figures["round_trips"] == 1 and flag.figures["first_pairs"] == ["out↔back"]


def test_round_trip_near_miss_too_late_or_not_comparable(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, [sale("out", "OWN2", "5000.00", "2024-03-01T10:00:00", dataset="D1", seller="OWN1"),
                      sale("late", "OWN1", "5000.00", "2024-04-01T10:00:00", dataset="D2", seller="OWN2"),
                      sale("small", "OWN1", "4400.00", "2024-03-10T10:00:00", dataset="D2", seller="OWN2")])
    assert "ROUND_TRIP" not in codes(con)  # 31 days later; 4,400.00 differs by 12% of 5,000.00


# ------------------------------------------------------------------------------------ PRICE_OUTLIER

def test_price_outlier_twenty_times_the_median(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", [f"B{i}" for i in range(10)], amount="100.00")
                + [sale("big", "BIG", "2000.00", "2024-05-01T10:00:00")])
    (flag,) = flags_of(con, code="PRICE_OUTLIER")
    assert flag.dataset_id == "D1" and flag.platform_id == "PLAT" and flag.evidence_trade_ids == ("big",)
    assert flag.figures["median"] == "100.00" and flag.figures["largest"] == "2000.00"


def test_price_outlier_near_misses(tmp_path):
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    settle_with(con, buys("D1", "OWN1", [f"B{i}" for i in range(10)], amount="100.00")
                + [sale("big", "BIG", "1999.99", "2024-05-01T10:00:00")]  # 19.9999× the median
                + buys("D2", "OWN2", [f"B{i}" for i in range(10)], amount="10.00")
                + [sale("small", "BIG", "999.99", "2024-05-01T10:00:00", dataset="D2", seller="OWN2")])  # < 1,000.00
    assert "PRICE_OUTLIER" not in codes(con)


# ------------------------------------------------------------------------------------ CAP_SPLITTING

def _two_subsidiaries(tmp_path, second_amount: str, relation=True):
    aff = [("HOLD", "OWN1", "equity", "0.60", None, None), ("HOLD", "OWN2", "equity", "0.60", None, None)]
    con = exchange(tmp_path, owners=("OWN1", "OWN2"), affiliations=aff if relation else None)
    settle_with(con, buys("D1", "OWN1", ("B1", "B2", "B3", "B4"), amount="1500000.00")
                + buys("D2", "OWN2", ("C1", "C2", "C3", "C4"), amount=second_amount))
    return con


def test_cap_splitting_subsidiaries_together_receive_more_than_one_cap(tmp_path):
    con = _two_subsidiaries(tmp_path, "1500000.00")
    # each: 10% × 6,000,000.00 = 600,000.00 (under its own cap); together 1,200,000.00 > 1,000,000.00 (P10.7)
    (flag,) = flags_of(con, code="CAP_SPLITTING")
    assert flag.parties == ("OWN1", "OWN2") and flag.figures["total"] == "1200000.00"
    assert flag.figures["group_id"] == "HOLD"


def test_cap_splitting_near_miss_group_total_within_one_cap(tmp_path):
    con = _two_subsidiaries(tmp_path, "1000000.00")  # 600,000.00 + 400,000.00 = exactly one cap
    assert "CAP_SPLITTING" not in codes(con)


def test_cap_splitting_near_miss_unrelated_owners(tmp_path):
    con = _two_subsidiaries(tmp_path, "1500000.00", relation=False)
    assert "CAP_SPLITTING" not in codes(con)


# ------------------------------------------------------------------------------------ REFUND_AFTER_APPROVAL

def test_refund_after_approval_a_refund_stored_after_the_approved_run(tmp_path):
    con = exchange(tmp_path)
    first = settle_with(con, buys("D1", "OWN1", ("B1", "B2", "B3", "B4")))
    approve_run(con, first.run_id, by="reviewer")
    upload(con, [refund("r1", "D1-B1", "400.00", "2025-02-01T10:00:00", buyer="B1", dataset="D1")])
    settle(con, 2024)
    (flag,) = flags_of(con, code="REFUND_AFTER_APPROVAL")
    assert (flag.dataset_id, flag.platform_id) == ("D1", "PLAT") and flag.evidence_trade_ids == ("r1 (of D1-B1)",)
    assert flag.figures["refunded"] == "400.00" and flag.figures["approved_run"] == first.run_id


def test_refund_after_approval_near_miss_the_settled_run_was_not_approved(tmp_path):
    con = exchange(tmp_path)
    settle_with(con, buys("D1", "OWN1", ("B1", "B2", "B3", "B4")))
    upload(con, [refund("r1", "D1-B1", "400.00", "2025-02-01T10:00:00", buyer="B1", dataset="D1")])
    settle(con, 2024)
    assert "REFUND_AFTER_APPROVAL" not in codes(con)


def test_refund_after_approval_near_miss_refund_known_before_the_approved_run(tmp_path):
    con = exchange(tmp_path)
    upload(con, buys("D1", "OWN1", ("B1", "B2", "B3", "B4")))
    upload(con, [refund("r1", "D1-B1", "400.00", "2025-02-01T10:00:00", buyer="B1", dataset="D1")])
    approve_run(con, settle(con, 2024).run_id, by="reviewer")
    upload(con, [sale("later", "B9", "10.00", "2024-05-01T10:00:00")])
    settle(con, 2024)
    assert "REFUND_AFTER_APPROVAL" not in codes(con)
