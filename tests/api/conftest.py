"""Fixtures of the API tests: settings on a fresh store, and an in-process app with one token per role."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.support.api import ApiEnv, make_store


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(db=tmp_path / "api.duckdb", sql_time_limit_s=2.0, sql_row_cap=1000, upload_max_bytes=1_000_000)


@pytest.fixture
def api(api_settings: Settings):
    made = make_store(api_settings.db)
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as client:
        yield ApiEnv(client=client, db=api_settings.db, settings=api_settings, **made)
