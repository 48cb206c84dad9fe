"""Clause 6 (P10) scenarios with hand-computed amounts; the arithmetic is written next to each expectation."""

from __future__ import annotations

from datetime import date

from tests.support.scenario import Y23, D, dataset_row, details, paid, reasons, settle, world
from tests.support.world import refund, sale, upload


def four_buyers(prefix: str, amount: str, at: str, buyers=("B1", "B2", "B3", "B4"), **kw) -> list[dict]:
    return [sale(f"{prefix}{i}", b, amount, at, **kw) for i, b in enumerate(buyers, start=1)]


def test_exactly_three_caller_groups_do_not_qualify(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B2", "B3")))
    settle(con, 2024)
    # 3 unrelated callers, "more than 3" required (P10.4): no clause 6 key; clause 7: 1% of 3000.00 = 30.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("30.00")}
    assert reasons(con, 2024, 6) == {"s1": "BELOW_CALLER_THRESHOLD", "s2": "BELOW_CALLER_THRESHOLD",
                                     "s3": "BELOW_CALLER_THRESHOLD"}
    assert details(con, 2024, 6)["s1"] == "3 unrelated caller group(s); needs more than 3 (P10.4)"
    row = dataset_row(con, 2024, "D1")
    assert (row["caller_groups"], row["qualifies"], row["base"], row["gross"]) == (3, False, D("3000.00"), D("0.00"))


def test_four_caller_groups_qualify(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    # 4 > 3: base 4 × 1000.00 = 4000.00, gross 10% = 400.00; clause 7: 1% × 4000.00 = 40.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    assert reasons(con, 2024, 6) == {}


def test_two_buyers_of_one_group_count_once(tmp_path):
    # B1 controls B1X all year (P5 control qualifies outright) -> one group {B1, B1X} (P7)
    con = world(tmp_path, affiliations=[("B1", "B1X", "control", None, None, None)])
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B1X", "B2", "B3")))
    settle(con, 2024)
    # groups {B1,B1X}, {B2}, {B3} = 3, not > 3: nothing under clause 6; clause 7 1% × 4000.00 = 40.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert dataset_row(con, 2024, "D1")["caller_groups"] == 3
    upload(con, [sale("s5", "B4", "500.00", "2024-04-01T10:00:00")])
    settle(con, 2024)
    # now 4 groups: base 4000.00 + 500.00 = 4500.00 (both members of B1's group count, P10.5); 10% = 450.00;
    # clause 7: 1% × 4500.00 = 45.00 (adjustment +5.00)
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("450.00"), (7, "PLAT", ""): D("45.00")}
    members = con.execute(
        "SELECT group_id, list(buyer_id ORDER BY buyer_id) FROM run_caller_buyers WHERE run_id = "
        "(SELECT max(run_id) FROM settlement_runs) AND buyer_id IN ('B1', 'B1X') GROUP BY group_id"
    ).fetchall()
    assert len(members) == 1 and members[0][1] == ["B1", "B1X"]


def test_fully_refunded_buyer_is_not_a_caller(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00"))
    upload(con, [refund("r4", "s4", "1000.00", "2024-03-05T10:00:00", buyer="B4")])
    settle(con, 2024)
    # B4's sale nets 1000.00 - 1000.00 = 0: not eligible (P10.2), so 3 callers: no clause 6;
    # clause 7: 1% × 3000.00 = 30.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("30.00")}
    r = reasons(con, 2024, 6)
    assert r["s4"] == "FULLY_REFUNDED" and r["r4"] == "FULLY_REFUNDED"
    assert r["s1"] == "BELOW_CALLER_THRESHOLD"
    assert reasons(con, 2024, 7) == {"s4": "FULLY_REFUNDED", "r4": "FULLY_REFUNDED"}


def test_partly_refunded_buyer_still_counts_with_its_net(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00"))
    upload(con, [refund("r4", "s4", "999.99", "2024-03-05T10:00:00", buyer="B4")])
    settle(con, 2024)
    # B4 nets 0.01 > 0: still a caller; base 3000.00 + 0.01 = 3000.01; 10% = 300.001 -> 300.00;
    # clause 7: 1% × 3000.01 = 30.0001 -> 30.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("300.00"), (7, "PLAT", ""): D("30.00")}


def test_refund_dated_next_year_changes_the_earlier_year(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-12-10T10:00:00"))
    settle(con, 2024)
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    upload(con, [refund("r1", "s1", "250.00", "2025-01-15T10:00:00")])
    r2024 = settle(con, 2024)
    # the refund belongs to its sale's year (P9): 2024 base 4000.00 - 250.00 = 3750.00 -> 375.00 (adj. -25.00);
    # clause 7: 37.50 (adj. -2.50)
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("375.00"), (7, "PLAT", ""): D("37.50")}
    assert sorted((e.clause, e.amount, e.kind) for e in r2024.appended) == [
        (6, D("-25.00"), "adjustment"), (7, D("-2.50"), "adjustment")]
    r2025 = settle(con, 2025)
    assert r2025.appended == () and paid(con, 2025) == {}


def test_certification_starting_mid_year(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", date(2024, 7, 1), None)])
    upload(con, four_buyers("j", "1000.00", "2024-06-30T23:59:59"))  # local 30 June: not certified yet
    upload(con, four_buyers("k", "100.00", "2024-07-01T00:00:00"))  # local 1 July: certified (P10.1)
    settle(con, 2024)
    # eligible: 4 × 100.00 = 400.00 from 4 callers; 10% = 40.00. Clause 7 (platform certified all year):
    # 1% × (4000.00 + 400.00) = 44.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("40.00"), (7, "PLAT", ""): D("44.00")}
    r = reasons(con, 2024, 6)
    assert {r[f"j{i}"] for i in range(1, 5)} == {"NOT_CERTIFIED"}
    assert details(con, 2024, 6)["j1"] == "dataset certified 2024-07-01..open, not on the trade date (P10.1)"


def test_prior_awards_below_and_above_the_gross(tmp_path):
    con = world(
        tmp_path,
        datasets=[("D1", "OWN1", Y23, None), ("D2", "OWN1", Y23, None)],
        prior=[("D1", 2024, "150.00"), ("D2", 2024, "300.00"), ("D2", 2024, "200.00"), ("D1", 2023, "999.00")],
    )
    upload(con, four_buyers("a", "1000.00", "2024-03-01T10:00:00"))
    upload(con, four_buyers("b", "1000.00", "2024-03-01T10:00:00", dataset="D2"))
    settle(con, 2024)
    # D1: gross 10% × 4000.00 = 400.00 - prior 150.00 = 250.00 (the 2023 award is another year);
    # D2: gross 400.00 - (300.00 + 200.00) = -100.00 -> max(0, ...) = 0: no key (P10.6)
    # clause 7: 1% × 8000.00 = 80.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("250.00"), (7, "PLAT", ""): D("80.00")}
    d2 = dataset_row(con, 2024, "D2")
    assert (d2["gross"], d2["prior_awards"], d2["payable"], d2["target"]) == (D("400.00"), D("500.00"), D("0.00"), D("0.00"))


def test_owner_cap_split_with_leftover_cent(tmp_path):
    con = world(tmp_path, datasets=[("DA", "OWN1", Y23, None), ("DB", "OWN1", Y23, None),
                                    ("DC", "OWN1", Y23, None), ("DX", "OWN2", Y23, None)])
    upload(con, four_buyers("a", "1250000.00", "2024-03-01T10:00:00", dataset="DA")
           + four_buyers("b", "1250000.00", "2024-03-01T10:00:00", dataset="DB")
           + four_buyers("c", "250000.00", "2024-03-01T10:00:00", dataset="DC")
           + four_buyers("x", "2500000.00", "2024-03-01T10:00:00", dataset="DX", seller="OWN2"))
    settle(con, 2024)
    # payable: DA 10% × 5,000,000.00 = 500,000.00; DB 500,000.00; DC 10% × 1,000,000.00 = 100,000.00
    # Σ 1,100,000.00 > 1,000,000.00 (P10.7): shares 1e6 × 5/11 = 454,545.4545.. -> 454,545.45 (twice),
    # 1e6 × 1/11 = 90,909.0909.. -> 90,909.09; floors sum 999,999.99; 1 cent left to the largest remainder
    # (.4545 cent for DA and DB, tie -> dataset_id: DA) -> DA 454,545.46.
    # OWN2: DX 10% × 10,000,000.00 = 1,000,000.00, exactly the cap: not above it, unchanged.
    # clause 7: 1% × (5,000,000.00 + 5,000,000.00 + 1,000,000.00 + 10,000,000.00) = 210,000.00
    assert paid(con, 2024) == {
        (6, "OWN1", "DA"): D("454545.46"), (6, "OWN1", "DB"): D("454545.45"), (6, "OWN1", "DC"): D("90909.09"),
        (6, "OWN2", "DX"): D("1000000.00"), (7, "PLAT", ""): D("210000.00"),
    }
    assert D("454545.46") + D("454545.45") + D("90909.09") == D("1000000.00")
    assert dataset_row(con, 2024, "DA")["capped"] is True and dataset_row(con, 2024, "DX")["capped"] is False


def test_buyer_related_to_owner_only_from_mid_year(tmp_path):
    # OWN1 controls B1 from 2024-07-01 (P5, dated); on a trade date before that they are unrelated (P8)
    con = world(tmp_path, affiliations=[("OWN1", "B1", "control", None, date(2024, 7, 1), None)])
    upload(con, four_buyers("m", "1000.00", "2024-03-01T10:00:00"))
    upload(con, [sale("sep", "B1", "700.00", "2024-09-01T10:00:00")])
    settle(con, 2024)
    # March sales all eligible (4 groups; B1's year group is OWN1's, still a distinct caller group);
    # September B1 sale related to the owner (and to the seller OWN1) on its date: excluded from both.
    # base 4000.00 -> 400.00; clause 7: 1% × 4000.00 = 40.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    assert reasons(con, 2024, 6) == {"sep": "RELATED_PARTY"}
    assert reasons(con, 2024, 7) == {"sep": "RELATED_PARTY"}
    assert details(con, 2024, 6)["sep"] == (
        "buyer related to owner (P8, P10.2): B1 and OWN1 are related on 2024-09-01 (P7): "
        "OWN1 controls B1 (record 1, valid from 2024-07-01).")


def test_buyer_that_is_the_owner_is_related(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00") + [sale("own", "OWN1", "50.00", "2024-03-02T10:00:00", seller="S9")])
    settle(con, 2024)
    # own purchase excluded (same enterprise); base 4000.00 -> 400.00; clause 7 counts it (buyer OWN1,
    # seller S9, platform PLAT unrelated): 1% × 4050.00 = 40.50
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.50")}
    assert details(con, 2024, 6)["own"] == "buyer is the owner itself (P10.2)"


def test_unregistered_dataset_not_certified(tmp_path):
    con = world(tmp_path)
    upload(con, four_buyers("s", "1000.00", "2024-03-01T10:00:00", dataset="DZ"))
    settle(con, 2024)
    # DZ is in no registry: nothing under clause 6; clause 7: 1% × 4000.00 = 40.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert details(con, 2024, 6)["s1"] == "dataset not in the dataset registry (P10.1)"


def test_related_party_detail_cites_records_or_the_command_beyond_the_budget(tmp_path):
    from settlement.clauses.targets import staged_targets
    from tests.support.scenario import PARAMS

    con = world(tmp_path, affiliations=[("OWN1", "B1", "control", None, date(2024, 7, 1), None)])
    upload(con, [sale("sep", "B1", "700.00", "2024-09-01T10:00:00")])
    settle(con, 2024)
    # the path of records comes from settlement.affiliates.groups.explain_pairs (P7)
    assert "OWN1 controls B1 (record 1, valid from 2024-07-01)" in details(con, 2024, 6)["sep"]
    with staged_targets(con, 2024, params=PARAMS, path_budget=0) as staged:
        detail = con.execute(f"SELECT detail FROM ({staged.exclusions_sql}) WHERE clause = 6 AND trade_id = 'sep'"
                             ).fetchall()[0][0]
    assert detail == ("buyer related to owner (P8, P10.2): same affiliate group on the trade date; for the "
                      "record path run: settle affiliates explain A B --on DATE")
