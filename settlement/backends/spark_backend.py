"""The Spark backend: the portable statements run in Spark SQL, in-process (local mode) or on a cluster
through Spark Connect (``SETTLE_SPARK_REMOTE=sc://host:15002``).

Trades are read from the lake (``settlement.backends.lake``: partitioned Parquet, one immutable file set per
upload, retractions joined at run time): ``SETTLE_LAKE`` names it, else ``<store>.lake`` beside the store
file (a temporary folder for an in-memory store). Before each run the store's uploads missing from the lake
are exported, so the lake and the store hold the same trades. The registries and the year's affiliate groups
are small: they are sent from the store as Arrow tables. Decimal arithmetic never loses precision
(``spark.sql.decimalOperations.allowPrecisionLoss=false``); the session time zone is UTC (P3: local dates are
stored, never derived here). One session per process (``session()``), shared by every run and test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from settlement.backends.base import BackendError
from settlement.backends.lake import export_lake

SPARK_CONF = {
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}
LOCAL_CONF = {  # in-process local mode only (a cluster keeps its own settings)
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": os.environ.get("SETTLE_SPARK_SHUFFLE_PARTITIONS", "4"),
    "spark.driver.memory": os.environ.get("SETTLE_SPARK_DRIVER_MEMORY", "2g"),
    "spark.sql.adaptive.enabled": "true",
}
_SESSION = None


def session():
    """The process's one Spark session: Spark Connect when ``SETTLE_SPARK_REMOTE`` is set, else local mode
    (``SETTLE_SPARK_MASTER``, default ``local[2]``). Fails with what to install when pyspark or Java is missing."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise BackendError("SETTLE_BACKEND=spark needs pyspark: pip install 'data-exchange-settlement[spark]'") from exc
    remote = os.environ.get("SETTLE_SPARK_REMOTE", "").strip()
    builder = SparkSession.builder.appName("settle")
    if remote:
        builder = builder.remote(remote)
        conf = SPARK_CONF
    else:
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise BackendError("Spark local mode needs a Java runtime (17+): apt-get install -y default-jre-headless")
        builder = builder.master(os.environ.get("SETTLE_SPARK_MASTER", "local[2]"))
        conf = {**SPARK_CONF, **LOCAL_CONF}
    for key, value in conf.items():
        builder = builder.config(key, value)
    _SESSION = builder.getOrCreate()
    if not remote:
        _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


class SparkBackend:
    name = "spark"
    local = False

    def __init__(self, spark, lake: Path):
        self.spark = spark
        self.lake = Path(lake)
        self._cached: set[str] = set()

    @classmethod
    def for_store(cls, con: duckdb.DuckDBPyConnection, lake: Path | str | None = None) -> "SparkBackend":
        return cls(session(), Path(lake or os.environ.get("SETTLE_LAKE") or default_lake(con)))

    def bind_inputs(self, con: duckdb.DuckDBPyConnection, year: int) -> None:
        export_lake(con, self.lake)  # only the uploads the lake lacks; retractions rewritten
        self.read_lake()
        for name, sql in (
            ("datasets", "SELECT * FROM datasets"),
            ("platforms", "SELECT * FROM platforms"),
            ("affiliate_groups", f"SELECT * FROM affiliate_groups WHERE year = {int(year)}"),
            ("affiliate_day_groups", f"SELECT * FROM affiliate_day_groups WHERE year = {int(year)}"),
        ):
            self.register(name, con.sql(sql).to_arrow_table())

    def read_lake(self) -> None:
        """Views ``lake_trades`` (the Parquet files), ``lake_retractions`` and ``trades`` (the store's
        ``trades`` view: the rows with their upload's retracted flag)."""
        files = self.lake / "trades"
        if any(files.rglob("*.parquet")):
            self.spark.read.parquet(str(files)).createOrReplaceTempView("lake_trades")
        else:
            self.spark.sql(EMPTY_TRADES).createOrReplaceTempView("lake_trades")
        self.spark.read.parquet(str(self.lake / "retractions" / "retractions.parquet")) \
            .createOrReplaceTempView("lake_retractions")
        self.spark.sql(TRADES_VIEW).createOrReplaceTempView("trades")

    def register(self, name: str, data: pa.Table) -> None:
        self._uncache(name)
        self.spark.createDataFrame(spark_ready(data)).createOrReplaceTempView(name)

    def run(self, name: str, sql: str, *, reused: bool = False) -> None:
        self._uncache(name)
        self.spark.sql(sql).createOrReplaceTempView(name)
        if reused:  # eager: evaluated once, read by the next statements (a job, so only when it pays)
            self.spark.sql(f"CACHE TABLE {name}")
            self._cached.add(name)

    def fetch(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    @contextmanager
    def spill(self, sql: str) -> Iterator[str]:
        """Write the rows of ``sql`` as Parquet files under the lake's ``_spill`` folder and yield their glob
        (for DuckDB's read_parquet: large results stream into the store instead of passing through Python);
        the files are removed afterwards."""
        folder = self.lake / "_spill" / uuid.uuid4().hex
        df = self.spark.sql(sql)
        df.write.parquet(str(folder))
        if not any(folder.glob("*.parquet")):  # an empty result: one empty file with the schema
            import pyarrow.parquet as pq

            pq.write_table(df.limit(0).toArrow(), folder / "empty.parquet")
        try:
            yield str(folder / "*.parquet")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def drop(self, names: tuple[str, ...]) -> None:
        for name in names:
            self._uncache(name)
            self.spark.catalog.dropTempView(name)

    def _uncache(self, name: str) -> None:
        if name in self._cached:
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
            self._cached.discard(name)


TRADES_VIEW = """
SELECT t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.traded_at, t.local_date, t.amount,
       t.kind, t.ref_trade_id, t.upload_id, r.upload_id IS NOT NULL AS retracted, t.currency, t.row_number,
       CAST(t.sale_year AS INT) AS sale_year
FROM lake_trades t LEFT JOIN lake_retractions r ON r.upload_id = t.upload_id
"""
EMPTY_TRADES = """
SELECT CAST(NULL AS STRING) AS trade_id, CAST(NULL AS STRING) AS platform_id, CAST(NULL AS STRING) AS dataset_id,
       CAST(NULL AS STRING) AS seller_id, CAST(NULL AS STRING) AS buyer_id, CAST(NULL AS TIMESTAMP) AS traded_at,
       CAST(NULL AS DATE) AS local_date, CAST(NULL AS DECIMAL(18,2)) AS amount, CAST(NULL AS STRING) AS currency,
       CAST(NULL AS STRING) AS kind, CAST(NULL AS STRING) AS ref_trade_id, CAST(NULL AS BIGINT) AS upload_id,
       CAST(NULL AS BIGINT) AS row_number, CAST(NULL AS STRING) AS sale_year
WHERE false
"""


def spark_ready(table: pa.Table) -> pa.Table:
    """Arrow types Spark's createDataFrame takes: string views and large strings become strings, tz-aware
    timestamps become UTC microseconds."""
    fields = []
    for field in table.schema:
        t = field.type
        if pa.types.is_string_view(t) or pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(field.name, t))
    return table.cast(pa.schema(fields))


def default_lake(con: duckdb.DuckDBPyConnection) -> Path:
    """``<store file>.lake`` beside the store; a fresh temporary folder for an in-memory store."""
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    path = rows[0][0] if rows else None
    if path:
        return Path(path + ".lake")
    return Path(tempfile.mkdtemp(prefix="settle-lake-"))
