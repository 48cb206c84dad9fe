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


@pytest.hookimpl(optionalhook=True)  # a plain `pytest` (no xdist) must not trip over it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`make test` runs the suite on two workers (pytest-xdist). Each test module is one unit of work (its
    module fixtures, a server or a browser, set up once), and tests/backends is ONE unit: every test of the
    shared Spark session runs on one worker, so the suite starts one JVM, not one per worker. (xdist's own
    ``--dist loadgroup`` rewrites node ids in a way pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndOneSparkWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/backends" if nodeid.startswith("tests/backends/") else super()._split_scope(nodeid)

    return ModulesAndOneSparkWorker(config, log)
