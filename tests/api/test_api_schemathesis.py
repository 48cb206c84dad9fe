"""schemathesis against the app's own OpenAPI schema, in process (issue 5): no 5xx, no schema violations.

Every operation is exercised with a regulator token (widest scope) and with an owner token (scope checks
on every route), on a store holding a real upload and ledger entries. Examples are limited to keep the
test well under a minute.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.settings import Settings
from tests.support.api import ApiEnv, append_ledger, make_store, trade_csv, trade_row, OWNER_A



ROOT = Path(tempfile.mkdtemp(prefix="settle-schemathesis-"))
CONFIG = Settings(db=ROOT / "st.duckdb", sql_time_limit_s=1.0, sql_row_cap=100, upload_max_bytes=200_000)
MADE = make_store(CONFIG.db)  # schemathesis loads /openapi.json through the app (and its lifespan) at import
APP = create_app(CONFIG)
ENV: ApiEnv | None = None


# Unknown query parameters are ignored, as HTTP APIs conventionally do; schemathesis' negative_data_rejection
# counts "?junk=1 accepted" as a violation. Every other check (no 5xx, status codes, response schemas,
# content types, positive data accepted, auth not ignored) runs.
EXCLUDED = [negative_data_rejection]
# These judge their content beyond what a schema can say (SQL text must parse and be read-only; a file must
# be a valid trade file; a token scope must be a credit code with a valid check character, P4):
# schema-valid junk is rightly refused with 400 / 422 (documented responses).
CONTENT_JUDGED = {"/v1/sql", "/v1/uploads", "/v1/tokens"}


def excluded(case) -> list:
    return EXCLUDED + ([positive_data_acceptance] if case.path in CONTENT_JUDGED else [])


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _serving_app():
    global ENV
    client = TestClient(APP, raise_server_exceptions=False)
    client.__enter__()  # run the lifespan: the app now owns the store
    ENV = ApiEnv(client=client, db=CONFIG.db, settings=CONFIG, **MADE)
    client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1")))}, headers=ENV.auth(ENV.operator_a))
    append_ledger(ENV, 2024, [(6, OWNER_A, "DS-A1", "100.00")])
    yield
    client.__exit__(None, None, None)
    shutil.rmtree(ROOT, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_as_regulator(case):
    case.call_and_validate(headers=ApiEnv.auth(ENV.regulator), excluded_checks=excluded(case))


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_as_owner(case):
    case.call_and_validate(headers=ApiEnv.auth(ENV.owner_a), excluded_checks=excluded(case))
