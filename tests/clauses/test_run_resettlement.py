"""Settlement runs end to end (P13): deltas only, claw-backs, the inputs fingerprint, stored explanations."""

from __future__ import annotations

from datetime import date

from ledgers import ledger
from settlement.run import inputs_fingerprint, settle_all, years_to_settle
from tests.support.scenario import PARAMS, D, paid, reasons, settle, world
from tests.support.world import load_affiliations, load_datasets, refund, retract, sale, upload


def four(prefix, amount, at, buyers=("B1", "B2", "B3", "B4"), **kw):
    return [sale(f"{prefix}{i}", b, amount, at, **kw) for i, b in enumerate(buyers, start=1)]


def test_unchanged_inputs_append_nothing_and_record_the_run(tmp_path):
    con = world(tmp_path)
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    first = settle(con, 2024)
    assert sorted((e.clause, e.amount, e.kind) for e in first.appended) == [
        (6, D("400.00"), "accrual"), (7, D("40.00"), "accrual")]
    again = settle(con, 2024)
    assert again.appended == () and again.run_id == first.run_id + 1
    fps = con.execute("SELECT inputs_fingerprint FROM settlement_runs ORDER BY run_id").fetchall()
    assert fps[0] == fps[1]
    # the repeated run computed nothing new: its explanations are the first run's
    assert con.execute("SELECT run_id, source_run_id FROM run_explanation_source ORDER BY run_id").fetchall() == [
        (first.run_id, first.run_id), (again.run_id, first.run_id)]
    assert con.execute("SELECT count(*) FROM exclusions WHERE run_id = ?", [again.run_id]).fetchall() == [(0,)]
    assert ledger.verify(con).ok


def test_late_upload_appends_the_delta_only(tmp_path):
    con = world(tmp_path)
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    before = con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall()
    upload(con, [sale("late", "B5", "123.45", "2024-11-30T10:00:00")])
    r = settle(con, 2024)
    # base 4000.00 + 123.45 = 4123.45 -> 10% = 412.345 -> 412.35 (half-up), delta +12.35;
    # clause 7: 1% × 4123.45 = 41.2345 -> 41.23, delta +1.23
    assert sorted((e.clause, e.amount, e.kind) for e in r.appended) == [
        (6, D("12.35"), "adjustment"), (7, D("1.23"), "adjustment")]
    assert con.execute("SELECT * FROM ledger_entries WHERE entry_id <= 2 ORDER BY entry_id").fetchall() == before


def test_retraction_that_empties_a_year_is_clawed_back_by_settle_all(tmp_path):
    con = world(tmp_path)
    u = upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    upload(con, [sale("k1", "B1", "100.00", "2025-02-01T10:00:00")])
    assert years_to_settle(con, params=PARAMS) == [2024, 2025]
    settle_all(con, params=PARAMS)
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("40.00")}
    retract(con, u)
    # 2024 has no live trade left but ledger entries: still settled, everything clawed back
    assert years_to_settle(con, params=PARAMS) == [2024, 2025]
    results = settle_all(con, params=PARAMS)
    assert sorted((e.clause, e.amount) for e in results[0].appended) == [(6, D("-400.00")), (7, D("-40.00"))]
    assert results[1].appended == ()
    assert paid(con, 2024) == {}
    assert set(reasons(con, 2024, 6).values()) == {"RETRACTED"}
    assert ledger.verify(con).ok


def test_out_of_window_only_years_are_not_settled(tmp_path):
    con = world(tmp_path)
    upload(con, [sale("old", "B1", "100.00", "2022-06-01T10:00:00"), sale("pre", "B1", "100.00", "2023-01-02T10:00:00")])
    # 2022 has no in-scope day (P2); 2023 has in-scope days but this sale is before 8 May
    assert years_to_settle(con, params=PARAMS) == []
    r = settle(con, 2022)  # an explicit run still reports why nothing is paid
    assert r.appended == () and reasons(con, 2022, 6) == {"old": "OUT_OF_WINDOW"}


def test_late_refund_of_a_retracted_sale_and_reupload(tmp_path):
    con = world(tmp_path)
    u1 = upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    upload(con, [refund("r1", "s1", "400.00", "2024-04-01T10:00:00")])
    settle(con, 2024)
    # base 4000.00 - 400.00 = 3600.00 -> 360.00; clause 7 36.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("360.00"), (7, "PLAT", ""): D("36.00")}
    retract(con, u1)
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))  # corrected file, same trade ids
    settle(con, 2024)
    # the live refund r1 now reduces the re-uploaded s1 (same platform and trade id): unchanged amounts
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("360.00"), (7, "PLAT", ""): D("36.00")}
    ex = con.execute(
        "SELECT trade_id, upload_id, reason FROM exclusions WHERE clause = 6 AND run_id = 2 ORDER BY 1").fetchall()
    assert con.execute("SELECT count(*) FROM settlement_runs").fetchall() == [(2,)]
    assert ex == [("s1", u1, "RETRACTED"), ("s2", u1, "RETRACTED"), ("s3", u1, "RETRACTED"), ("s4", u1, "RETRACTED")]


def test_registry_and_affiliation_changes(tmp_path):
    con = world(tmp_path)
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    fp1 = inputs_fingerprint(con, 2024, params_hash=PARAMS.sha256)
    # the dataset changes owner: OWN1's key is clawed back, OWN9's accrues (both in one run)
    load_datasets(con, [("D1", "OWN9", date(2023, 1, 1), None)])
    assert inputs_fingerprint(con, 2024, params_hash=PARAMS.sha256) != fp1
    r = settle(con, 2024)
    assert sorted((e.beneficiary_id, e.amount, e.kind) for e in r.appended) == [
        ("OWN1", D("-400.00"), "adjustment"), ("OWN9", D("400.00"), "accrual")]
    # B3 and B4 become one group all year: 3 callers -> clause 6 clawed back; clause 7 unaffected
    load_affiliations(con, [("B3", "B4", "family", None, None, None)])
    r = settle(con, 2024)
    assert [(e.clause, e.beneficiary_id, e.amount) for e in r.appended] == [(6, "OWN9", D("-400.00"))]
    assert paid(con, 2024) == {(7, "PLAT", ""): D("40.00")}
    assert ledger.verify(con).ok


def test_explanations_are_stored_per_run(tmp_path):
    con = world(tmp_path, affiliations=[("B1", "B1X", "control", None, None, None)])
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00", buyers=("B1", "B1X", "B2", "B3", "B4")))
    r = settle(con, 2024)
    rows = con.execute(
        "SELECT group_id, buyer_id, eligible_sales, net_amount, group_counted FROM run_caller_buyers "
        "WHERE run_id = ? ORDER BY buyer_id", [r.run_id]).fetchall()
    assert [x[1] for x in rows] == ["B1", "B1X", "B2", "B3", "B4"]
    assert rows[0][0] == rows[1][0] and len({x[0] for x in rows}) == 4
    plat = con.execute("SELECT volume, subsidy_uncapped, target FROM run_platform_results WHERE run_id = ?",
                       [r.run_id]).fetchall()
    assert plat == [(D("5000.00"), D("50.00"), D("50.00"))]


def test_upload_then_retract_changes_the_fingerprint_and_lists_the_retracted_trades(tmp_path):
    # found by the state machine: the targets are unchanged, but the run's exclusions are not (P12 RETRACTED)
    con = world(tmp_path)
    upload(con, four("s", "1000.00", "2024-03-01T10:00:00"))
    settle(con, 2024)
    u = upload(con, [sale("x1", "B5", "10.00", "2024-05-01T10:00:00")])
    retract(con, u)
    r = settle(con, 2024)
    assert r.appended == ()
    assert reasons(con, 2024, 6) == {"x1": "RETRACTED"} and reasons(con, 2024, 7) == {"x1": "RETRACTED"}
