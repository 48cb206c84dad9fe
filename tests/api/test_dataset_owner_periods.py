"""P10.1 (amended) through the API: the dataset status names the owner of each registration period, and an
owner sees only its own periods and result (another owner of the same dataset is another tenant)."""

from __future__ import annotations

from datetime import date

from tests.support.api import OWNER_A, OWNER_B, PLATFORM_A, ApiEnv
from tests.support.world import load_datasets, load_platforms, sale, upload

Y23 = date(2023, 1, 1)


def _settled_transfer(api: ApiEnv) -> None:
    cur = api.state.cursor()
    try:
        load_platforms(cur, [(PLATFORM_A, Y23, None)])
        load_datasets(cur, [("DS-T", OWNER_A, Y23, None, None), ("DS-T", OWNER_B, Y23, None, date(2024, 7, 1))])
        upload(cur, [sale(f"m{i}", f"B{i}", "1000.00", "2024-03-01T10:00:00", platform=PLATFORM_A, dataset="DS-T",
                          seller=OWNER_A) for i in range(1, 5)])
        upload(cur, [sale(f"s{i}", f"B{i}", "2000.00", "2024-09-01T10:00:00", platform=PLATFORM_A, dataset="DS-T",
                          seller=OWNER_B) for i in range(1, 5)])
    finally:
        cur.close()
    assert api.client.post("/v1/settlements/2024", headers=api.auth(api.regulator)).status_code == 200


def test_status_names_the_owner_of_each_period(api: ApiEnv):
    _settled_transfer(api)
    got = api.client.get("/v1/datasets/DS-T/status?year=2024", headers=api.auth(api.regulator)).json()
    assert got["owner_periods"] == [{"owner_id": OWNER_A, "owner_from": None, "owner_until": "2024-06-30"},
                                    {"owner_id": OWNER_B, "owner_from": "2024-07-01", "owner_until": None}]
    assert sorted(got["owners_in_year"]) == sorted([OWNER_A, OWNER_B])
    b = api.client.get(f"/v1/datasets/DS-T/status?year=2024&owner={OWNER_B}", headers=api.auth(api.regulator)).json()
    # OWNER_B: 4 callers in its own period, base 4 × 2000.00 = 8000.00, 10% = 800.00
    assert (b["owner_id"], b["unrelated_callers"], b["base"], b["target"]) == (OWNER_B, 4, "8000.00", "800.00")


def test_an_owner_sees_only_its_own_period(api: ApiEnv):
    _settled_transfer(api)
    got = api.client.get("/v1/datasets/DS-T/status?year=2024", headers=api.auth(api.owner_a))
    assert got.status_code == 200
    body = got.json()
    # OWNER_A: base 4 × 1000.00 = 4000.00, 10% = 400.00; nothing of OWNER_B in the answer
    assert (body["owner_id"], body["base"], body["target"]) == (OWNER_A, "4000.00", "400.00")
    assert body["owner_periods"] == [{"owner_id": OWNER_A, "owner_from": None, "owner_until": "2024-06-30"}]
    assert OWNER_B not in got.text
    # asking for the other owner's result changes nothing: an owner always sees its own
    other = api.client.get(f"/v1/datasets/DS-T/status?year=2024&owner={OWNER_B}", headers=api.auth(api.owner_a))
    assert other.json()["owner_id"] == OWNER_A and OWNER_B not in other.text
