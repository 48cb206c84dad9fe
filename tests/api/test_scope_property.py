"""Property (issue 16): no answer an owner or an operator gets names another tenant's id, amount or upload.

Over generated small stores (2–3 platforms, 2–3 owners with 1–2 datasets each, trades uploaded by each
platform's operator, sometimes the CLI storing a platform's file first or a file mixing every platform, the
year settled by the regulator) every route an owner or operator may call is called with every token:
payouts (all years and one), every upload id (get, then retract), another platform's file replayed and
its own file again, every dataset's status. No body may contain a credit code, dataset id, token id or file
name of another tenant (except what the caller itself sent in its file), an upload id it may not read, or
a payout row of another beneficiary.

Bounded for `make test`: 5 examples (each builds a store, settles a year and makes ~60 requests: 2.5–6 s
on the shared 2-core machine, so ~15–20 s in all). A longer hunt: ``SETTLE_SCOPE_EXAMPLES=200 pytest
tests/api/test_scope_property.py`` (the benchmark suite's setting).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from settlement.inputs import ingest
from settlement.inputs.registry import load_registry
from settlement.tools.credit_codes import credit_code
from tests.support.api import Tenants, make_tenant_store, trade_csv, trade_row

EXAMPLES = int(os.environ.get("SETTLE_SCOPE_EXAMPLES", "5"))
BUYERS = [credit_code(301 + i) for i in range(5)]
UPLOAD_ID = re.compile(r"upload (?:with id )?(\d+)")


@st.composite
def worlds(draw):
    n_platforms, n_owners = draw(st.integers(2, 3)), draw(st.integers(2, 3))
    datasets = [(j, f"DS-O{j}-{k}") for j in range(n_owners) for k in range(draw(st.integers(1, 2)))]
    trades = [
        [(draw(st.sampled_from(datasets)), draw(st.integers(0, len(BUYERS) - 1)), draw(st.integers(1, 99_999)))
         for _ in range(draw(st.integers(1, 6)))]
        for _ in range(n_platforms)
    ]
    replays = [draw(st.sampled_from([k for k in range(n_platforms) if k != i])) for i in range(n_platforms)]
    return n_platforms, n_owners, datasets, trades, draw(st.booleans()), draw(st.booleans()), replays


@dataclass
class World:
    t: Tenants
    client: TestClient
    datasets: list[tuple[int, str]]
    files: list[bytes]  # platform i's file
    secrets: dict[str, set[str]] = field(default_factory=dict)  # token -> strings it may never see

    def max_upload_id(self) -> int:
        cur = self.client.app.state.api.cursor()
        try:
            return cur.execute("SELECT coalesce(max(id), 0) FROM uploads").fetchall()[0][0]
        finally:
            cur.close()

    def get(self, token: str, path: str, **params):
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})

    def post(self, token: str, path: str, **kw):
        return self.client.post(path, headers={"Authorization": f"Bearer {token}"}, **kw)


_TEMPLATE = Path(tempfile.mkdtemp(prefix="scope-template-"))


@cache
def template(n_platforms: int, n_owners: int) -> Tenants:
    """A migrated store with the tokens, made once per shape and copied for each example (saves ~0.3 s)."""
    return make_tenant_store(_TEMPLATE / f"{n_platforms}x{n_owners}.duckdb", n_platforms, n_owners)


def build(tmp: Path, world) -> World:
    n_platforms, n_owners, datasets, trades, cli_first, cli_mixed, _ = world
    t = template(n_platforms, n_owners)
    shutil.copyfile(_TEMPLATE / f"{n_platforms}x{n_owners}.duckdb", tmp / "s.duckdb")
    client = TestClient(create_app(Settings(db=tmp / "s.duckdb", upload_max_bytes=1_000_000)),
                        raise_server_exceptions=False)
    client.__enter__()
    w = World(t, client, datasets, [])
    cur = client.app.state.api.cursor()
    try:
        registries = {
            "datasets": "dataset_id,owner_id,name,certified_on,certified_until\n"
                        + "".join(f"{d},{t.owners[j]},{d},2023-01-01,\n" for j, d in datasets),
            "platforms": "platform_id,name,certified_on,certified_until\n"
                         + "".join(f"{p},P{i},2023-01-01,\n" for i, p in enumerate(t.platforms)),
        }
        for kind, text in registries.items():
            (tmp / f"{kind}.csv").write_text(text, encoding="utf-8")
            assert load_registry(cur, kind, tmp / f"{kind}.csv", loaded_by="test").status != "rejected"
        for i, rows in enumerate(trades):
            w.files.append(trade_csv(*(
                trade_row(f"T{i}-{n}", platform=t.platforms[i], dataset=d, seller=t.owners[j], buyer=BUYERS[b],
                          at=f"2024-0{1 + n % 9}-1{n % 9}T10:00:00", amount=f"{cents // 100}.{cents % 100:02d}")
                for n, ((j, d), b, cents) in enumerate(rows))))
        if cli_first:  # the CLI stores platform 0's file before its operator sends the same bytes
            (tmp / "cli.csv").write_bytes(w.files[0])
            ingest.ingest_file(cur, tmp / "cli.csv", uploaded_by="cli-user")
        if cli_mixed:  # one file naming every platform: no operator's
            (tmp / "mixed.csv").write_bytes(trade_csv(*(
                trade_row(f"M{i}", platform=p, dataset=datasets[0][1], seller=t.owners[datasets[0][0]],
                          buyer=BUYERS[0]) for i, p in enumerate(t.platforms))))
            ingest.ingest_file(cur, tmp / "mixed.csv", uploaded_by="cli-user")
    finally:
        cur.close()
    for i, op in enumerate(t.operators):
        r = w.post(op, "/v1/uploads", files={"file": (f"trades-{t.platforms[i]}.csv", w.files[i], "text/csv")})
        assert r.status_code in (200, 201), r.text
    assert w.post(t.regulator, "/v1/settlements/2024").status_code == 200
    # What each token must never see: the other tenants' ids and token ids.
    for i, op in enumerate(t.operators):
        w.secrets[op] = {p for p in t.platforms if p != t.platforms[i]} | {
            t.who[o].removeprefix("token:") for o in t.operators if o != op}
    for j, own in enumerate(t.owners_tok):
        w.secrets[own] = {o for o in t.owners if o != t.owners[j]} | {d for k, d in datasets if k != j} | {
            t.who[o].removeprefix("token:") for o in (*t.operators, *t.owners_tok) if o != own}
    return w


def readable_uploads(w: World, token: str, platform: str) -> set[int]:
    """Ground truth from the regulator's view: the uploads of the operator's platform, or that it sent and
    that stored no trades."""
    out = set()
    for uid in range(1, 40):
        r = w.get(w.t.regulator, f"/v1/uploads/{uid}")
        if r.status_code == 404:
            break
        s = r.json()
        if s["platform_ids"] == [platform] or (not s["platform_ids"] and s["uploaded_by"] == w.t.who[token]):
            out.add(uid)
    return out


def check(w: World, token: str, response, *, readable: set[int], sent: bytes = b"", asked: int | None = None) -> None:
    text = response.text
    sent = sent + str(response.request.url).encode()  # what the caller named itself may come back
    for secret in w.secrets[token]:
        if secret.encode() not in sent:
            assert secret not in text, (response.request.method, response.request.url, secret, text)
    named = {int(n) for n in UPLOAD_ID.findall(text)}
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if isinstance(body, dict):
        named |= {body[k] for k in ("upload_id", "duplicate_of", "id") if isinstance(body.get(k), int)}
    allowed = readable | ({asked} if asked is not None else set())
    if response.status_code == 422 and body.get("status") == "rejected":
        allowed |= {body["upload_id"]}  # the caller's own rejected upload, created by this request
        readable.add(body["upload_id"])
    assert named <= allowed, (response.request.url, named - allowed, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_owner_or_operator_answer_names_another_tenant(world):
    with tempfile.TemporaryDirectory() as tmp:
        w = build(Path(tmp), world)
        try:
            t = w.t
            n_uploads = w.max_upload_id() + 3  # every id, and a few that do not exist
            payouts_all = w.get(t.regulator, "/v1/payouts").json()["payouts"]
            for j, tok in enumerate(t.owners_tok):
                for params in ({}, {"year": 2024}):
                    r = w.get(tok, "/v1/payouts", **params)
                    check(w, tok, r, readable=set())
                    rows = r.json()["payouts"]
                    assert rows == [p for p in payouts_all if p["beneficiary_id"] == t.owners[j]]
                for _, d in w.datasets:
                    r = w.get(tok, f"/v1/datasets/{d}/status", year=2024)
                    check(w, tok, r, readable=set())
                    mine = d.startswith(f"DS-O{j}-")
                    assert r.status_code == (200 if mine else 404), r.text
                    if not mine:
                        assert r.json()["error"]["message"] == f"no dataset {d!r} in the dataset registry"
                for uid in range(1, n_uploads):
                    check(w, tok, w.get(tok, f"/v1/uploads/{uid}"), readable=set(), asked=uid)
            for i, tok in enumerate(t.operators):
                readable = readable_uploads(w, tok, t.platforms[i])
                r = w.get(tok, "/v1/payouts")
                check(w, tok, r, readable=readable)
                assert r.json()["payouts"] == [p for p in payouts_all if p["beneficiary_id"] == t.platforms[i]]
                for k in (world[-1][i], i):  # replay another platform's file, then its own
                    content = w.files[k]
                    r = w.post(tok, "/v1/uploads", files={"file": ("replay.csv", content, "text/csv")})
                    check(w, tok, r, readable=readable, sent=content)
                    if k != i:
                        assert r.status_code == 422 and r.json()["error"]["code"] == "upload_rejected", r.text
                    elif r.status_code == 200:
                        assert r.json()["duplicate_of"] in readable
                for uid in range(1, n_uploads):
                    r = w.get(tok, f"/v1/uploads/{uid}")
                    check(w, tok, r, readable=readable, asked=uid)
                    assert r.status_code == (200 if uid in readable else 404), (uid, readable, r.text)
                for uid in range(1, n_uploads):
                    r = w.post(tok, f"/v1/uploads/{uid}/retract")
                    check(w, tok, r, readable=readable, asked=uid)
                    if uid not in readable:
                        assert r.json()["error"] == {"code": "not_found", "message": f"no upload with id {uid}",
                                                     "details": []}
                for _, d in w.datasets:
                    assert w.get(tok, f"/v1/datasets/{d}/status", year=2024).status_code == 403
        finally:
            w.client.__exit__(None, None, None)
