"""Fixtures of the input tests: a fresh initialised store per test."""

from __future__ import annotations

import pytest

from tests.support.ingest import new_store


@pytest.fixture()
def con(tmp_path):
    connection = new_store(tmp_path)
    yield connection
    connection.close()
