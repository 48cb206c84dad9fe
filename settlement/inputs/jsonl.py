"""Reading a JSON Lines trade file as text, numbers included (issue 15 item 4).

DuckDB's JSON reader turns every number into a double, even for a column typed VARCHAR: the amount
``99.999999999999999`` comes back as ``100.0``, so an amount with too many decimals would be rounded, not
refused (P1). Here each line is read as its raw text (``read_ndjson_objects``), every number token outside
a string is wrapped in quotes by one set-based string rewrite, and only then is the line parsed: each value
reaches validation as the characters the writer wrote (``99.999999999999999``, ``5``, ``1.50``, ``1e3``),
exactly as the same characters in a CSV cell would. Nested objects and arrays are shown as DuckDB writes
them (they are errors or free text anyway). Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from settlement.core.sql import literal


def _reader(path: Path, *, probe: bool = False) -> str:
    if probe:  # every line parsed once: a file that is not JSON Lines fails here, with DuckDB's reason
        return f"read_json({literal(str(path))}, format='newline_delimited', records=true, sample_size=-1)"
    return f"read_ndjson_objects({literal(str(path))})"


def keys(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Every key of every line, in order of first appearance; raises ``duckdb.Error`` for a file that is not
    JSON Lines (one JSON object per line)."""
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {_reader(path, probe=True)}").fetchall()]


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level key (RFC 6901 escapes): any key text is safe, quotes and '$' included."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


# Quote every number token of a line. The string alternative comes first, so a match never starts inside a
# string (scanning resumes after each whole string); a string match keeps its text and leaves an empty
# marker pair, a number match is wrapped in markers; the pairs are dropped and the lone markers become
# quotes. chr(1) cannot occur in a line the reader accepted: JSON forbids raw control characters.
_QUOTE_NUMBERS_SQL = r"""replace(replace(regexp_replace(json::VARCHAR,
    '("(?:[^"\\]|\\.)*")|(-?[0-9][0-9.eE+-]*)', '\1' || chr(1) || '\2' || chr(1), 'g'),
  chr(1) || chr(1), ''), chr(1), '"')"""


def rows_sql(path: Path, aliases: dict[str, str]) -> str:
    """A FROM item with one VARCHAR column per used key (``aliases``: key → column alias), in file order."""
    pointers = "[" + ", ".join(literal(_pointer(key)) for key in aliases) + "]"
    columns = ", ".join(
        # An object or array (seen from its first character in the second, rarer parse) is shown as written
        # by DuckDB from the line itself, as before: its inner numbers stay numbers.
        f"CASE WHEN left(nested[{i}], 1) IN ('{{', '[') THEN json_extract(json, {literal(_pointer(key))})::VARCHAR "
        f"ELSE val[{i}] END AS {alias}"
        for i, (key, alias) in enumerate(aliases.items(), start=1)
    )
    return f"""(SELECT {columns} FROM (
  SELECT json, json_extract_string(quoted, {pointers}) AS val,
         -- a second parse only for lines that may hold an object or array beyond the line's own braces
         CASE WHEN contains(quoted, '[') OR contains(substr(ltrim(quoted), 2), '{{')
              THEN json_extract(quoted, {pointers}) END AS nested
  FROM (SELECT json, {_QUOTE_NUMBERS_SQL} AS quoted FROM {_reader(path)})))"""
