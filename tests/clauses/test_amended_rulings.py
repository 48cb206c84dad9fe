"""Issue 8: the rulings amended on 2026-11-30 and the two bugs that paid the wrong amount, each with
hand-computed amounts (the arithmetic is written beside each expectation)."""

from __future__ import annotations

from datetime import date

from tests.support.scenario import Y23, D, dataset_row, details, paid, reasons, settle, world
from tests.support.world import load_affiliations, load_datasets, sale, upload

MAX = "999999999999.99"  # the largest amount of one trade (CONTRACT)


def four(prefix: str, amounts, at: str, buyers=("B1", "B2", "B3", "B4"), **kw) -> list[dict]:
    if isinstance(amounts, str):
        amounts = [amounts] * len(buyers)
    return [sale(f"{prefix}{i}", b, a, at, **kw) for i, (b, a) in enumerate(zip(buyers, amounts), start=1)]


# --- P10.8: exact arithmetic over the whole contract range -------------------------------------------

def test_one_sale_of_the_largest_amount_settles(tmp_path):
    con = world(tmp_path)
    upload(con, four("s", [MAX, "100.00", "100.00", "100.00"], "2024-03-01T10:00:00"))
    settle(con, 2024)
    # base = 999,999,999,999.99 + 3 × 100.00 = 1,000,000,000,299.99
    # gross = round(10% × base) = round(100,000,000,029.999) = 100,000,000,030.00 -> cap 1,000,000.00 (P10.7)
    # clause 7: round(1% × base) = round(10,000,000,002.9999) = 10,000,000,003.00 -> cap 1,000,000.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("1000000.00"), (7, "PLAT", ""): D("1000000.00")}
    row = dataset_row(con, 2024, "D1")
    assert (row["base"], row["gross"], row["target"]) == (
        D("1000000000299.99"), D("100000000030.00"), D("1000000.00"))
    volume, uncapped = con.execute(
        "SELECT volume, subsidy_uncapped FROM run_platform_results WHERE platform_id = 'PLAT'").fetchall()[0]
    assert (volume, uncapped) == (D("1000000000299.99"), D("10000000003.00"))


def test_sums_far_beyond_eighteen_digits_settle(tmp_path):
    con = world(tmp_path)
    upload(con, [sale("seed", "B0", "1.00", "2023-06-01T10:00:00")])  # an upload row to hang the bulk on
    # 20,000 sales of the largest amount, one buyer each (set-based insert: a loop of uploads is too slow)
    con.execute(f"""
        INSERT INTO trade_rows
        SELECT 'big' || i, 'PLAT', 'D1', 'OWN1', 'B' || i, TIMESTAMPTZ '2024-03-01 02:00:00+00',
               DATE '2024-03-01', {MAX}, 'CNY', 'sale', NULL, 1, i + 2
        FROM range(20000) t(i)""")
    settle(con, 2024)
    # base = 20,000 × 999,999,999,999.99 = 19,999,999,999,999,800.00 (more than DECIMAL(18,2) holds)
    # gross = 10% = 1,999,999,999,999,980.00; clause 7 uncapped 1% = 199,999,999,999,998.00; both capped
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("1000000.00"), (7, "PLAT", ""): D("1000000.00")}
    row = dataset_row(con, 2024, "D1")
    assert (row["caller_groups"], row["base"], row["gross"]) == (
        20000, D("19999999999999800.00"), D("1999999999999980.00"))
    assert con.execute("SELECT subsidy_uncapped FROM run_platform_results").fetchall() == [
        (D("199999999999998.00"),)]


# --- P10.1 / P11.1 amended: an empty certified_on means listed, never certified -------------------------

def test_empty_certified_on_is_never_certified(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", None, None)], platforms=[("PLAT", None, None)])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    # before the amendment an empty certified_on was "certified from the open start" and paid 400.00 + 40.00
    assert paid(con, 2024) == {}
    assert set(reasons(con, 2024, 6).values()) == {"NOT_CERTIFIED"}
    assert set(reasons(con, 2024, 7).values()) == {"PLATFORM_NOT_CERTIFIED"}
    assert details(con, 2024, 6)["s1"] == "dataset listed but never certified (empty certified_on, P10.1)"
    assert details(con, 2024, 7)["s1"] == "platform listed but never certified (empty certified_on, P11.1)"


# --- P8 amended: the year graph is the union of the day graphs' edges -----------------------------------

def test_a_stake_recorded_in_two_halves_does_not_merge_callers(tmp_path):
    con = world(tmp_path, affiliations=[("B1", "B2", "equity", "0.20", date(2024, 1, 1), date(2024, 6, 30)),
                                        ("B1", "B2", "equity", "0.20", date(2024, 7, 1), date(2024, 12, 31))])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    # B1 holds 20% of B2 on every day: no day edge, no year edge; 4 caller groups > 3.
    # base 4 × 1000.00 = 4000.00, gross 10% = 400.00 (summing both records, 40%, merged B1 and B2: 3 groups, 0)
    # clause 7: 1% × 4000.00 = 40.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    assert dataset_row(con, 2024, "D1")["caller_groups"] == 4


def test_edges_of_different_days_merge_callers(tmp_path):
    # B1-B2 related in January only (control), B2-B3 in December only: one year group {B1, B2, B3}.
    con = world(tmp_path, affiliations=[("B1", "B2", "control", None, date(2024, 1, 1), date(2024, 1, 31)),
                                        ("B2", "B3", "control", None, date(2024, 12, 1), date(2024, 12, 31))])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B3", "B4", "B5")))
    settle(con, 2024)
    # groups {B1, B3} (via B2), {B4}, {B5} = 3, not > 3: no clause 6; in March nobody is related: 1% × 4000 = 40
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert dataset_row(con, 2024, "D1")["caller_groups"] == 3


# --- P10.1 amended: dated ownership ----------------------------------------------------------------------

def test_rewards_follow_the_owner_on_the_sale_date(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", Y23, None, None), ("D1", "OWN2", Y23, None, date(2024, 7, 1))])
    upload(con, four("m", "1000.00", "2024-03-01T10:00:00"))   # OWN1's period
    upload(con, four("s", "2000.00", "2024-09-01T10:00:00"))   # OWN2's period
    settle(con, 2024)
    # per (dataset, owner): OWN1 4 callers, base 4000.00, gross 400.00; OWN2 4 callers, base 8000.00, gross 800.00
    # clause 7: 1% × 12,000.00 = 120.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (6, "OWN2", "D1"): D("800.00"),
                               (7, "PLAT", ""): D("120.00")}


def test_each_owner_needs_its_own_callers(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", Y23, None, None), ("D1", "OWN2", Y23, None, date(2024, 7, 1))])
    upload(con, four("m", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B2")))
    upload(con, four("s", "1000.00", "2024-09-01T10:00:00", buyers=("B3", "B4")))
    settle(con, 2024)
    # 4 distinct buyers in the year, but 2 callers per owner: neither qualifies (P10.1: callers per owner)
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert details(con, 2024, 6)["m1"] == "2 unrelated caller group(s); needs more than 3 (P10.4)"


def test_a_sale_before_the_first_owner_from_has_no_owner(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", Y23, None, date(2024, 7, 1))])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert set(reasons(con, 2024, 6).values()) == {"NOT_CERTIFIED"}
    assert details(con, 2024, 6)["s1"] == "no owner registered before 2024-07-01, the first owner_from of the dataset (P10.1)"


def test_a_change_of_owner_does_not_rewrite_a_settled_year(tmp_path):
    con = world(tmp_path)
    upload(con, four("a", "1000.00", "2023-08-01T10:00:00"))
    settle(con, 2023)
    # 2023: OWN1, 4 callers, 10% × 4000.00 = 400.00; clause 7 40.00
    assert paid(con, 2023) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    load_datasets(con, [("D1", "OWN1", Y23, None, None), ("D1", "OWN2", Y23, None, date(2024, 7, 1))])
    assert settle(con, 2023).appended == ()  # the 2023 sales still belong to OWN1: nothing moves
    assert paid(con, 2023) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}


def test_prior_awards_are_shared_among_owners_in_proportion_to_gross(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN1", Y23, None, None), ("D1", "OWN2", Y23, None, date(2024, 7, 1))],
                prior=[("D1", 2024, "100.01")])
    upload(con, four("m", "1000.00", "2024-03-01T10:00:00"))  # OWN1 gross 10% × 4000.00 = 400.00
    upload(con, four("s", "500.00", "2024-09-01T10:00:00"))   # OWN2 gross 10% × 2000.00 = 200.00
    settle(con, 2024)
    # dataset payable = max(0, 400.00 + 200.00 - 100.01) = 499.99 = 49,999 cents, shared 400 : 200:
    # OWN1 49,999 × 2/3 = 33,332.67 -> floor 33,332, remainder 2/3; OWN2 16,666.33 -> 16,666, remainder 1/3;
    # 1 cent left -> the larger remainder (OWN1): OWN1 333.33, OWN2 166.66 (sum 499.99)
    # clause 7: 1% × (4000.00 + 2000.00) = 60.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("333.33"), (6, "OWN2", "D1"): D("166.66"),
                               (7, "PLAT", ""): D("60.00")}


def test_owner_share_ties_go_by_owner_id_in_code_point_order(tmp_path):
    con = world(tmp_path, datasets=[("D1", "OWN-9", Y23, None, None), ("D1", "OWN-10", Y23, None, date(2024, 7, 1))],
                prior=[("D1", 2024, "0.01")])
    upload(con, four("m", "1000.00", "2024-03-01T10:00:00"))  # OWN-9 gross 400.00
    upload(con, four("s", "1000.00", "2024-09-01T10:00:00"))  # OWN-10 gross 400.00
    settle(con, 2024)
    # payable 800.00 - 0.01 = 799.99: 39,999.5 cents each -> floors 39,999 and one cent left, equal remainders:
    # the tie goes to "OWN-10" (code point of '1' < '9'): OWN-10 400.00, OWN-9 399.99; clause 7 1% × 8000 = 80.00
    assert paid(con, 2024) == {(6, "OWN-10", "D1"): D("400.00"), (6, "OWN-9", "D1"): D("399.99"),
                               (7, "PLAT", ""): D("80.00")}


# --- P10.7: cap ties by dataset_id in code-point order; P4: person ids are case-sensitive ---------------

def test_cap_ties_go_by_dataset_id_in_code_point_order(tmp_path):
    con = world(tmp_path, datasets=[("DS-9", "OWN1", Y23, None), ("DS-10", "OWN1", Y23, None),
                                    ("DS-11", "OWN1", Y23, None)])
    for ds in ("DS-9", "DS-10", "DS-11"):
        upload(con, four(ds, "1000000.00", "2024-03-01T10:00:00", dataset=ds))
    settle(con, 2024)
    # each: base 4,000,000.00, gross 400,000.00; total 1,200,000.00 > cap 1,000,000.00 (P10.7):
    # each share 100,000,000 × 40,000,000 / 120,000,000 = 33,333,333.33 cents -> floor, equal remainders;
    # 1 cent left goes to the first in code-point order: "DS-10" < "DS-11" < "DS-9"
    # clause 7: 1% × 12,000,000.00 = 120,000.00
    assert paid(con, 2024) == {(6, "OWN1", "DS-10"): D("333333.34"), (6, "OWN1", "DS-11"): D("333333.33"),
                               (6, "OWN1", "DS-9"): D("333333.33"), (7, "PLAT", ""): D("120000.00")}


def test_person_ids_are_case_sensitive(tmp_path):
    # P:alice controls B1, P:ALICE controls B2: two people, so B1 and B2 stay unrelated (P4)
    con = world(tmp_path, affiliations=[("P:alice", "B1", "control", None, None, None),
                                        ("P:ALICE", "B2", "control", None, None, None)])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    # 4 groups: 10% × 4000.00 = 400.00; clause 7 40.00. (Read case-insensitively, B1+B2 would merge: 3 groups.)
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    load_affiliations(con, [("P:alice", "B1", "control", None, None, None),
                            ("P:alice", "B2", "control", None, None, None)])
    settle(con, 2024)
    # one person controls both: groups {B1, B2}, {B3}, {B4} = 3: the clause 6 reward is clawed back
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}




# --- explanations name the owner of each period and the day of each merging edge -------------------------

def test_explain_names_the_owner_of_each_period(tmp_path):
    from settlement.explain import OwnerPeriod, explain_dataset

    con = world(tmp_path, datasets=[("D1", "OWN1", Y23, None, None), ("D1", "OWN2", Y23, None, date(2024, 7, 1))])
    upload(con, four("m", "1000.00", "2024-03-01T10:00:00"))
    upload(con, four("s", "2000.00", "2024-09-01T10:00:00"))
    settle(con, 2024)
    x = explain_dataset(con, "D1", 2024)
    assert x.periods == (OwnerPeriod("OWN1", None, date(2024, 6, 30)), OwnerPeriod("OWN2", date(2024, 7, 1), None))
    assert x.owners_in_year == ("OWN1", "OWN2")
    assert (x.owner_id, x.base, x.gross, x.target) == ("OWN1", D("4000.00"), D("400.00"), D("400.00"))
    y = explain_dataset(con, "D1", 2024, owner_id="OWN2")
    assert (y.owner_id, y.caller_groups, y.base, y.target) == ("OWN2", 4, D("8000.00"), D("800.00"))


def test_merged_callers_show_the_day_of_each_edge(tmp_path):
    from settlement.explain import explain_dataset

    con = world(tmp_path, affiliations=[("B1", "B2", "control", None, date(2024, 1, 1), date(2024, 1, 31)),
                                        ("B2", "B3", "control", None, date(2024, 12, 1), date(2024, 12, 31))])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B3", "B4", "B5", "B6")))
    settle(con, 2024)
    x = explain_dataset(con, "D1", 2024)
    merged = [g for g in x.groups if len(g.buyers) > 1]
    assert [(g.group_id, [b[0] for b in g.buyers]) for g in merged] == [("B1", ["B1", "B3"])]
    assert merged[0].merge_paths == (
        "B1 and B3 are one caller group of 2024 (P8: the union of the day graphs' edges): "
        "on 2024-01-01: B1 controls B2 (record 1, valid 2024-01-01 to 2024-01-31); "
        "on 2024-12-01: B2 controls B3 (record 2, valid 2024-12-01 to 2024-12-31).",)


def test_merge_paths_are_budgeted_per_dataset_and_per_group(tmp_path, monkeypatch):
    """Paths are a graph search each: only the first MERGE_PATHS_MAX groups of several buyers get them (in the
    pages' order), and ``paths_per_group`` (the owner page's card shows 5 buyers: 4 paths) cuts each group's."""
    from settlement import explain

    con = world(tmp_path, affiliations=[("A1", "A2", "control", None, date(2024, 1, 1), None),
                                        ("C1", "C2", "control", None, date(2024, 1, 1), None),
                                        ("C2", "C3", "control", None, date(2024, 1, 1), None)])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00", buyers=("A1", "A2", "C1", "C2", "C3", "B4", "B5")))
    settle(con, 2024)
    whole = explain.explain_dataset(con, "D1", 2024)
    assert [(g.group_id, [b[0] for b in g.buyers], len(g.merge_paths)) for g in whole.groups] == [
        ("A1", ["A1", "A2"], 1), ("C1", ["C1", "C2", "C3"], 2), ("own:B4", ["B4"], 0), ("own:B5", ["B5"], 0)]
    assert whole.groups[1].merge_paths == (
        "C1 and C2 are one caller group of 2024 (P8: the union of the day graphs' edges): "
        "on 2024-01-01: C1 controls C2 (record 2, valid from 2024-01-01).",
        "C1 and C3 are one caller group of 2024 (P8: the union of the day graphs' edges): "
        "on 2024-01-01: C1 controls C2 (record 2, valid from 2024-01-01); "
        "on 2024-01-01: C2 controls C3 (record 3, valid from 2024-01-01).")
    cut = explain.explain_dataset(con, "D1", 2024, paths_per_group=1)
    assert [g.merge_paths for g in cut.groups] == [whole.groups[0].merge_paths, whole.groups[1].merge_paths[:1], (), ()]
    monkeypatch.setattr(explain, "MERGE_PATHS_MAX", 1)
    first_only = explain.explain_dataset(con, "D1", 2024)
    assert [len(g.merge_paths) for g in first_only.groups] == [1, 0, 0, 0]
