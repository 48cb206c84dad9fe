"""Digests of the stored input rows (issue 15 item 1): what a run read, so the ledger chain covers it.

Owns ``input_digests`` and ``input_digest_chunks`` (migration 0012). Each trade upload and each registry
load records, in the transaction that stores its rows, a digest of exactly those rows (the canonical texts
built set-wise in SQL, each chunk hashed from one Arrow buffer, ``chunk_digests``): rows are cut into chunks of ``CHUNK_ROWS`` by their file row number, each chunk's digest is the
sha256 of its rows' canonical texts in row order (one per line), and the upload's (load's) digest is the
sha256 of its chunk digests in chunk order (``rows-v1``). A run records the digests it read
(``ledgers.append``: ``run_input_digests`` and ``settlement_runs.inputs_digest``, both in the run's hash);
``settle ledger verify`` recomputes every chunk from the rows in SQL alone (``chunks_sql``) and names the first chunk (upload or load,
row range) that no longer matches.

Canonical row text: fields joined by ``|``, a text field as ``<UTF-8 byte length>:<text>``, NULL as ``-``,
an instant as microseconds since the Unix epoch, dates ISO, decimals as their DECIMAL text, booleans
``true``/``false``, and the file row number last. The column lists below are fixed (a later migration
adding a column does not change the digest of rows stored before it).
Must not import ``ledgers``, the clauses, the run, the CLI or the API.
"""

from __future__ import annotations

import hashlib

import duckdb
import numpy as np
import pyarrow as pa

from settlement.core.sql import registered

VERSION = "rows-v1"
CHUNK_ROWS = 4096
# Chunks are digested a batch of rows at a time: string_agg holds a chunk's texts until it is hashed, so one
# query over a 10M-row upload needed ~2 GB (verify ran out of memory at the default limit). A multiple of
# CHUNK_ROWS, so a batch never splits a chunk.
BATCH_ROWS = 256 * CHUNK_ROWS

# source -> (table, id column, [(column, type)]) ; type: t(ext) | i(nstant) | v(alue cast to text)
_SOURCES: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "upload": ("trade_rows", "upload_id", (
        ("trade_id", "t"), ("platform_id", "t"), ("dataset_id", "t"), ("seller_id", "t"), ("buyer_id", "t"),
        ("traded_at", "i"), ("local_date", "v"), ("amount", "v"), ("currency", "t"), ("kind", "t"),
        ("ref_trade_id", "t"))),
    "datasets": ("dataset_versions", "load_id", (
        ("dataset_id", "t"), ("owner_id", "t"), ("name", "t"), ("certified_on", "v"), ("certified_until", "v"),
        ("owner_from", "v"))),
    "platforms": ("platform_versions", "load_id", (
        ("platform_id", "t"), ("name", "t"), ("certified_on", "v"), ("certified_until", "v"))),
    "affiliations": ("affiliation_versions", "load_id", (
        ("record_id", "v"), ("a_id", "t"), ("b_id", "t"), ("relation", "t"), ("share", "v"), ("valid_from", "v"),
        ("valid_to", "v"), ("exempt", "v"))),
    "prior_awards": ("prior_award_versions", "load_id", (
        ("dataset_id", "t"), ("year", "v"), ("amount", "v"), ("source", "t"))),
}
SOURCES = tuple(_SOURCES)


def row_text_sql(source: str) -> str:
    """SQL of one row's canonical text (see module docstring)."""
    _, _, columns = _SOURCES[source]
    parts = []
    for col, kind in columns:
        if kind == "t":
            parts.append(f"coalesce(CAST(strlen({col}) AS VARCHAR) || ':' || {col}, '-')")
        elif kind == "i":
            parts.append(f"coalesce(CAST(epoch_us({col}) AS VARCHAR), '-')")
        else:
            parts.append(f"coalesce(CAST({col} AS VARCHAR), '-')")
    parts.append("CAST(row_number AS VARCHAR)")
    return "concat_ws('|', " + ", ".join(parts) + ")"


def chunks_sql(source: str, where: str = "true") -> str:
    """SELECT source, ref_id, chunk, first_row, last_row, rows, digest: the chunk digests of the rows of
    ``source`` matching ``where`` (a condition on the table's id column ``ref_id``). Bound parameter:
    ``$source`` (the source's name)."""
    table, id_col, _ = _SOURCES[source]
    return f"""
        SELECT CAST($source AS VARCHAR) AS source, {id_col} AS ref_id, row_number // {CHUNK_ROWS} AS chunk,
               min(row_number) AS first_row, max(row_number) AS last_row, count(*) AS rows,
               sha256(string_agg({row_text_sql(source)}, chr(10) ORDER BY row_number)) AS digest
        FROM {table} WHERE {where.replace('ref_id', id_col)} GROUP BY ALL"""


def _top_sql(chunks: str) -> str:
    """Per (source, ref_id): rows and the digest over the chunk digests in chunk order."""
    return f"""
        SELECT source, ref_id, sum(rows) AS rows,
               sha256('{VERSION}|' || string_agg(digest, '|' ORDER BY chunk)) AS digest
        FROM ({chunks}) GROUP BY source, ref_id"""


def record(con: duckdb.DuckDBPyConnection, source: str, ref_id: int) -> str:
    """Record the digest of the rows ``ref_id`` (an upload id or registry load id) stored, inside the
    caller's transaction. An upload or load that stored no rows records the digest of nothing.

    The chunks are hashed here (``chunk_digests``), not by ``chunks_sql``: the same values in 2.5 s instead
    of 4.6 s for 2M rows (issue 14: the digest is part of every upload's time). ``first_mismatch`` still
    recomputes them in SQL, so every verified store checks the two definitions against each other."""
    for batch in _batches(con, source, int(ref_id)):
        with registered(con, chunk_digests(con, source, batch), "chunks") as chunks:
            con.execute(f"INSERT INTO input_digest_chunks (source, ref_id, chunk, first_row, last_row, rows, digest) "
                        f"SELECT $source, ref_id, chunk, first_row, last_row, rows, digest FROM {chunks}",
                        dict(source=source))
    stored = con.execute(
        f"SELECT rows, digest FROM ({_top_sql('SELECT * FROM input_digest_chunks WHERE source = ? AND ref_id = ?')})",
        [source, int(ref_id)],
    ).fetchall()
    rows, digest = stored[0] if stored else (0, empty_digest())
    con.execute("INSERT INTO input_digests VALUES (?, ?, ?, ?)", [source, int(ref_id), rows, digest])
    return digest


_CHUNK_COLUMNS = ("ref_id", "chunk", "first_row", "last_row", "rows", "digest")


def chunk_digests(con: duckdb.DuckDBPyConnection, source: str, batch: tuple[int, int]) -> pa.Table:
    """ref_id, chunk, first_row, last_row, rows, digest of the chunks of one batch: what ``chunks_sql`` gives
    for it. The rows' canonical texts come from SQL in row order, each ending in a newline, so a chunk's
    lines joined by newlines are the bytes of its rows in the Arrow buffer less the last newline."""
    table, id_col, _ = _SOURCES[source]
    params = _batch_params(source, batch)
    params.pop("source")
    rows = con.sql(f"SELECT row_number, {row_text_sql(source)} || chr(10) AS line FROM {table} "
                   f"WHERE {_ROWS_OF_BATCH.replace('ref_id', id_col)} ORDER BY row_number", params=params).to_arrow_table()
    if rows.num_rows == 0:
        return pa.table({c: pa.array([], pa.string() if c == "digest" else pa.int64()) for c in _CHUNK_COLUMNS})
    numbers = rows.column("row_number").to_numpy().astype(np.int64)
    lines = rows.column("line").cast(pa.large_string()).combine_chunks()  # int64 offsets: no 2 GiB limit
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])
    chunk = numbers // CHUNK_ROWS
    starts = np.concatenate(([0], np.flatnonzero(np.diff(chunk)) + 1)).astype(np.int64)
    ends = np.append(starts[1:], len(chunk)).astype(np.int64)
    digests = [hashlib.sha256(data[offsets[a]:offsets[b] - 1]).hexdigest() for a, b in zip(starts, ends)]
    return pa.table({
        "ref_id": pa.array([int(batch[0])] * len(starts), pa.int64()), "chunk": pa.array(chunk[starts], pa.int64()),
        "first_row": pa.array(numbers[starts], pa.int64()), "last_row": pa.array(numbers[ends - 1], pa.int64()),
        "rows": pa.array(ends - starts, pa.int64()), "digest": pa.array(digests, pa.string())})


def empty_digest() -> str:
    return hashlib.sha256(f"{VERSION}|".encode()).hexdigest()


def backfill(con: duckdb.DuckDBPyConnection) -> int:
    """Record digests for uploads and loads stored before migration 0012 (none recorded yet). Returns how
    many were recorded. Runs in its own transaction."""
    missing = con.execute("""
        SELECT 'upload', id FROM uploads
        UNION ALL SELECT kind, load_id FROM registry_loads
        EXCEPT SELECT source, ref_id FROM input_digests ORDER BY 1, 2""").fetchall()
    if not missing:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        for source, ref_id in missing:
            record(con, source, ref_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(missing)


def current(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str]]:
    """(source, ref_id, digest) of every recorded upload and load, sorted: what a run reads."""
    return [(s, int(i), d) for s, i, d in
            con.execute("SELECT source, ref_id, digest FROM input_digests ORDER BY source, ref_id").fetchall()]


def _batches(con: duckdb.DuckDBPyConnection, source: str, ref_id: int | None = None) -> list[tuple[int, int]]:
    """(ref_id, first chunk) of each batch of BATCH_ROWS row numbers of ``source`` (of one ``ref_id``, or of
    every id stored or recorded), in (ref_id, row) order."""
    table, id_col, _ = _SOURCES[source]
    only = "" if ref_id is None else f"WHERE {id_col} = $id"
    recorded = "" if ref_id is None else "AND ref_id = $id"
    params = dict(source=source) | ({} if ref_id is None else dict(id=int(ref_id)))
    spans = con.execute(f"""
        SELECT ref_id, max(last) FROM (
            SELECT {id_col} AS ref_id, max(row_number) AS last FROM {table} {only} GROUP BY 1
            UNION ALL SELECT ref_id, max(last_row) FROM input_digest_chunks WHERE source = $source {recorded}
            GROUP BY 1) GROUP BY 1 ORDER BY 1""", params).fetchall()
    return [(int(rid), lo // CHUNK_ROWS) for rid, last in spans for lo in range(0, int(last) + 1, BATCH_ROWS)]


# One batch (ref_id, first chunk) of rows and of recorded chunks, as bound parameters (``_batch_params``).
_ROWS_OF_BATCH = "ref_id = $id AND row_number >= $first_row AND row_number < $end_row"
_CHUNKS_OF_BATCH = "ref_id = $id AND chunk >= $first_chunk AND chunk < $end_chunk"


def _batch_params(source: str, batch: tuple[int, int]) -> dict[str, object]:
    ref_id, chunk = batch
    return dict(source=source, id=int(ref_id), first_row=chunk * CHUNK_ROWS,
                end_row=chunk * CHUNK_ROWS + BATCH_ROWS)


def _batch_and_chunk_params(source: str, batch: tuple[int, int]) -> dict[str, object]:
    chunk = batch[1]
    return _batch_params(source, batch) | dict(first_chunk=chunk, end_chunk=chunk + BATCH_ROWS // CHUNK_ROWS)


def first_mismatch(con: duckdb.DuckDBPyConnection) -> str | None:
    """Recompute every chunk from the stored rows (a batch at a time: memory stays bounded); the first
    (source, id, chunk) whose rows no longer match what was recorded, or whose recorded digests no longer add
    up, as a sentence; None when all match."""
    for source in SOURCES:
        table = _SOURCES[source][0]
        for batch in _batches(con, source):
            bad = con.execute(f"""
                WITH now AS ({chunks_sql(source, _ROWS_OF_BATCH)}),
                rec AS (SELECT * FROM input_digest_chunks WHERE source = $source AND {_CHUNKS_OF_BATCH})
                SELECT coalesce(n.ref_id, r.ref_id) AS ref_id, coalesce(n.chunk, r.chunk) AS chunk,
                       coalesce(n.first_row, r.first_row), coalesce(n.last_row, r.last_row), n.rows, r.rows
                FROM now n FULL OUTER JOIN rec r ON r.ref_id = n.ref_id AND r.chunk = n.chunk
                WHERE n.digest IS DISTINCT FROM r.digest
                ORDER BY 1, 2 LIMIT 1""", _batch_and_chunk_params(source, batch)).fetchall()
            if bad:
                ref_id, _, first, last, now_rows, rec_rows = bad[0]
                owner = f"upload {ref_id}" if source == "upload" else f"{source} load {ref_id}"
                return (f"{table} of {owner}, rows {first}–{last}: the stored rows no longer match the digest "
                        f"recorded when they were stored ({rec_rows or 0} rows recorded, {now_rows or 0} now: "
                        "edited, added or deleted)")
    bad = con.execute(f"""
        SELECT d.source, d.ref_id FROM input_digests d
        LEFT JOIN ({_top_sql('SELECT * FROM input_digest_chunks')}) t USING (source, ref_id)
        WHERE coalesce(t.digest, $empty) <> d.digest OR coalesce(t.rows, 0) <> d.rows
        ORDER BY 1, 2 LIMIT 1""", dict(empty=empty_digest())).fetchall()
    if bad:
        return f"input_digests of {bad[0][0]} {bad[0][1]}: does not match its recorded chunk digests (edited?)"
    return None


def for_run(con: duckdb.DuckDBPyConnection) -> list[list]:
    """What a run's inputs fingerprint lists (settlement.run): [source, ref_id, digest] of every upload and
    load, after recording the missing ones of a store older than migration 0012 (own transaction)."""
    backfill(con)
    return [list(row) for row in current(con)]
