"""One shared Spark session for the whole conformance suite (local mode, 2 cores).

The Spark half is never skipped: without pyspark or a Java runtime the fixture FAILS, saying what to install
(`make test` installs both: the `spark` extra and default-jre-headless).
"""

from __future__ import annotations

import os

import pytest

# test stores hold a few dozen trades: one shuffle partition keeps each Spark job to one task
os.environ.setdefault("SETTLE_SPARK_SHUFFLE_PARTITIONS", "1")


@pytest.fixture(scope="session")
def spark():
    try:
        from settlement.backends import spark_backend
    except ImportError as exc:  # pragma: no cover - pyspark missing
        pytest.fail(f"the Spark half of tests/backends needs pyspark: pip install -e '.[spark]' ({exc})")
    try:
        return spark_backend.session()
    except spark_backend.BackendError as exc:
        pytest.fail(f"the Spark half of tests/backends cannot start: {exc}")
