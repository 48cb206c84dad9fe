"""Fixtures shared across test packages."""

from __future__ import annotations

import pytest

from tests.support.world import settled_sample


@pytest.fixture()
def sample(tmp_path):
    """sample_trades/ loaded and every year settled, as `make demo` does (a module may define its own)."""
    con = settled_sample(tmp_path)
    yield con
    con.close()
