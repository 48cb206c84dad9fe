"""Shared fixtures for the API tests: a fresh store, one token per role, an in-process app.

(Named test_api_*.py so it belongs to the API's test files; it holds no tests itself.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient

from api.settings import Settings
from ledgers import ledger
from settlement.core import store
from settlement.access import tokens
from settlement.tools.credit_codes import credit_code

# Valid unified social credit codes (P4), fixed by serial so tests are repeatable.
PLATFORM_A = credit_code(101)
PLATFORM_B = credit_code(102)
OWNER_A = credit_code(201)
OWNER_B = credit_code(202)
BUYER_1 = credit_code(301)
BUYER_2 = credit_code(302)

HEADER = "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount"


def trade_csv(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode()


def trade_row(trade_id: str, platform: str = PLATFORM_A, dataset: str = "DS-A1", seller: str = OWNER_A,
              buyer: str = BUYER_1, at: str = "2024-03-01T10:00:00", amount: str = "100.00") -> str:
    return f"{trade_id},{platform},{dataset},{seller},{buyer},{at},{amount}"


@dataclass
class ApiEnv:
    client: TestClient
    db: Path
    regulator: str
    operator_a: str
    operator_b: str
    owner_a: str
    owner_b: str
    revoked: str
    settings: Settings

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def state(self):
        return self.client.app.state.api

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """Read the live store through the server's own writer (as the server sees it)."""
        cur = self.state.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()


def make_store(db: Path) -> dict[str, str]:
    store.init(db)
    con = store.open_store(db)
    try:
        made = {
            "regulator": tokens.create_token(con, "regulator", created_by="test").token,
            "operator_a": tokens.create_token(con, "operator", scope_id=PLATFORM_A, created_by="test").token,
            "operator_b": tokens.create_token(con, "operator", scope_id=PLATFORM_B, created_by="test").token,
            "owner_a": tokens.create_token(con, "owner", scope_id=OWNER_A, created_by="test").token,
            "owner_b": tokens.create_token(con, "owner", scope_id=OWNER_B, created_by="test").token,
        }
        revoked = tokens.create_token(con, "regulator", created_by="test")
        tokens.revoke_token(con, revoked.info.token_id, by="test")
        made["revoked"] = revoked.token
    finally:
        con.close()
    return made


def append_ledger(env: ApiEnv, year: int, targets: list[tuple[int, str, str, str]]) -> None:
    """Put a settled year into the ledger through the ledger's own interface (clause, beneficiary, dataset, amount)."""
    frame = pl.DataFrame(
        [(c, b, d, Decimal(a)) for c, b, d, a in targets],
        schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
                "amount": pl.Decimal(18, 2)},
        orient="row",
    )
    cur = env.state.cursor()
    try:
        ledger.append_run(cur, year=year, targets=frame, params_hash="test", inputs_fingerprint="test",
                          engine_version="test", started_at=dt.datetime.now(dt.timezone.utc))
    finally:
        cur.close()


# ------------------------------------------------------------------------------ many tenants (scope tests)


@dataclass
class Tenants:
    """Tokens of a store with several platforms and owners: ``operators[i]`` acts for ``platforms[i]``,
    ``owners_tok[j]`` sees ``owners[j]``; ``who`` maps a bearer token to its ``token:<id>`` name."""

    platforms: list[str]
    owners: list[str]
    regulator: str
    operators: list[str]
    owners_tok: list[str]
    who: dict[str, str]


def make_tenant_store(db: Path, n_platforms: int, n_owners: int) -> Tenants:
    store.init(db)
    con = store.open_store(db)
    try:
        platforms = [credit_code(101 + i) for i in range(n_platforms)]
        owners = [credit_code(201 + j) for j in range(n_owners)]
        who: dict[str, str] = {}

        def make(role: str, scope: str | None) -> str:
            created = tokens.create_token(con, role, scope_id=scope, created_by="test")
            who[created.token] = created.info.who
            return created.token

        return Tenants(platforms, owners, make("regulator", None), [make("operator", p) for p in platforms],
                       [make("owner", o) for o in owners], who)
    finally:
        con.close()
