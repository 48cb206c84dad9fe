"""Clause 7 (P11) scenarios, the policy window (P2) and local time (P3), with hand-computed amounts."""

from __future__ import annotations

from datetime import date

from tests.support.scenario import Y23, D, details, paid, reasons, settle, world
from tests.support.world import sale, upload


def test_platform_related_to_a_buyer(tmp_path):
    # PLAT holds 30% of B1 all year: B1 held by the platform (P6 25%), same group (P7)
    con = world(tmp_path, affiliations=[("PLAT", "B1", "equity", "0.30", None, None)])
    upload(con, [sale("s1", "B1", "1000.00", "2024-03-01T10:00:00"), sale("s2", "B2", "2000.00", "2024-03-01T10:00:00"),
                 sale("s3", "B3", "3000.00", "2024-03-01T10:00:00"), sale("s4", "B4", "4000.00", "2024-03-01T10:00:00")])
    settle(con, 2024)
    # clause 7 volume without s1: 2000.00 + 3000.00 + 4000.00 = 9000.00 -> 1% = 90.00
    # clause 6 is not touched (B1 is unrelated to OWN1): 10% × 10000.00 = 1000.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("1000.00"), (7, "PLAT", ""): D("90.00")}
    assert reasons(con, 2024, 7) == {"s1": "RELATED_PARTY"}
    assert reasons(con, 2024, 6) == {}
    assert details(con, 2024, 7)["s1"].startswith("platform related to buyer (P8, P11.2): PLAT and B1 are related")


def test_platform_related_to_seller_and_buyer_related_to_seller(tmp_path):
    con = world(tmp_path, affiliations=[("PLAT", "SX", "declared", None, None, None),
                                        ("B2", "SY", "management", None, None, None)])
    upload(con, [sale("p1", "B1", "100.00", "2024-05-01T10:00:00", seller="SX"),
                 sale("p2", "B2", "200.00", "2024-05-01T10:00:00", seller="SY"),
                 sale("p3", "B3", "300.00", "2024-05-01T10:00:00", seller="SZ")])
    settle(con, 2024)
    # only p3 is eligible: 1% × 300.00 = 3.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("3.00")}
    assert reasons(con, 2024, 7) == {"p1": "RELATED_PARTY", "p2": "RELATED_PARTY"}
    assert details(con, 2024, 7)["p1"].startswith("platform related to seller (P8, P11.2): PLAT and SX")
    assert details(con, 2024, 7)["p2"].startswith("buyer related to seller (P8, P11.2): B2 and SY")


def test_uncertified_platform(tmp_path):
    # PLAT2 is not in the registry; PLAT3 is certified from 2023-01-01 until 2024-02-29
    con = world(tmp_path, platforms=[("PLAT", Y23, None), ("PLAT3", Y23, date(2024, 2, 29))])
    upload(con, [sale("u1", "B1", "1000.00", "2024-03-01T10:00:00", platform="PLAT2"),
                 sale("u2", "B2", "1000.00", "2024-03-01T10:00:00", platform="PLAT3"),
                 sale("u3", "B3", "1000.00", "2024-02-29T23:00:00", platform="PLAT3"),
                 sale("u4", "B4", "1000.00", "2024-03-01T10:00:00")])
    settle(con, 2024)
    # clause 7: PLAT 1% × 1000.00 = 10.00; PLAT3 only u3 (29 Feb, last certified day): 10.00; PLAT2 nothing.
    # clause 6 does not care about the platform: 4 callers, 10% × 4000.00 = 400.00
    assert paid(con, 2024) == {(6, "OWN1", "D1"): D("400.00"), (7, "PLAT", ""): D("10.00"),
                               (7, "PLAT3", ""): D("10.00")}
    assert reasons(con, 2024, 7) == {"u1": "PLATFORM_NOT_CERTIFIED", "u2": "PLATFORM_NOT_CERTIFIED"}
    assert details(con, 2024, 7)["u1"] == "platform not in the platform registry (P11.1)"
    assert details(con, 2024, 7)["u2"] == "platform certified 2023-01-01..2024-02-29, not on the trade date (P11.1)"


def test_window_first_and_last_days_in_local_time(tmp_path):
    con = world(tmp_path)
    upload(con, [
        sale("w0", "B1", "500.00", "2023-05-07T15:59:59Z"),  # local 2023-05-07 23:59:59: before the window
        sale("w1", "B1", "1000.00", "2023-05-07T16:00:00Z"),  # local 2023-05-08 00:00:00: first day (P2, P3)
        sale("w2", "B2", "2000.00", "2026-05-08T15:59:59Z"),  # local 2026-05-08 23:59:59: last day
        sale("w3", "B2", "700.00", "2026-05-08T16:00:00Z"),  # local 2026-05-09: after the window
        sale("w4", "B3", "300.00", "2026-05-09T00:00:00+08:00"),  # local 2026-05-09 too
    ])
    settle(con, 2023)
    settle(con, 2026)
    # 2023: 1% × 1000.00 = 10.00 ; 2026: 1% × 2000.00 = 20.00 (clause 6: one caller per year, nothing)
    assert paid(con, 2023) == {(7, "PLAT", ""): D("10.00")}
    assert paid(con, 2026) == {(7, "PLAT", ""): D("20.00")}
    assert reasons(con, 2023, 7) == {"w0": "OUT_OF_WINDOW"}
    assert reasons(con, 2026, 7) == {"w3": "OUT_OF_WINDOW", "w4": "OUT_OF_WINDOW"}
    assert reasons(con, 2023, 6) == {"w0": "OUT_OF_WINDOW", "w1": "BELOW_CALLER_THRESHOLD"}
    assert details(con, 2023, 7)["w0"] == (
        "local date outside the policy window 2023-05-08..2026-05-08 (P2)")


def test_trade_at_the_year_boundary(tmp_path):
    con = world(tmp_path)
    upload(con, [
        sale("y1", "B1", "1000.00", "2024-12-31T23:59:00+08:00"),  # local 2024-12-31
        sale("y2", "B2", "3000.00", "2024-12-31T16:30:00Z"),  # local 2025-01-01 00:30: year 2025 (P3)
    ])
    settle(con, 2024)
    settle(con, 2025)
    # 2024: 1% × 1000.00 = 10.00; 2025: 1% × 3000.00 = 30.00
    assert paid(con, 2024) == {(7, "PLAT", ""): D("10.00")}
    assert paid(con, 2025) == {(7, "PLAT", ""): D("30.00")}


def test_subsidy_rounds_once_and_caps(tmp_path):
    con = world(tmp_path, platforms=[("PLAT", Y23, None), ("BIG", Y23, None)])
    upload(con, [sale("r1", "B1", "0.50", "2024-03-01T10:00:00"), sale("r2", "B2", "0.50", "2024-03-01T11:00:00"),
                 sale("r3", "B3", "0.25", "2024-03-01T11:00:00"),
                 sale("g1", "B1", "60000000.00", "2024-03-01T10:00:00", platform="BIG"),
                 sale("g2", "B2", "50000000.00", "2024-03-02T10:00:00", platform="BIG")])
    settle(con, 2024)
    # PLAT: 1% × (0.50 + 0.50 + 0.25) = 1% × 1.25 = 0.0125 -> once, half-up: 0.01 (not 0.01 + 0.01 + 0.00)
    # BIG: 1% × 110,000,000.00 = 1,100,000.00 > cap -> 1,000,000.00 (P11.3)
    got = paid(con, 2024)
    assert got[(7, "PLAT", "")] == D("0.01")
    assert got[(7, "BIG", "")] == D("1000000.00")
