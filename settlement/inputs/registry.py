"""Registry and relation files: datasets, platforms, affiliations, prior awards (CONTRACT "Registries").

Owns ``registry_loads`` and the ``*_versions`` tables. A load is validated set-wise (row-numbered errors,
the same report shape as trade uploads) and stored in one transaction or not at all. Datasets and
platforms replace the entries they name; affiliations and prior awards replace the whole set; every
earlier version stays for audit (the views ``datasets``, ``platforms``, ``affiliations``, ``prior_awards``
show the current one). Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from settlement.core.errors import UserError
from settlement.core.identifiers import bad_identifiers_table
from settlement.core.sql import render, temp_tables, transaction
from settlement.inputs import digests, normalise
from settlement.inputs.common import FileReport, formula_reason_sql, formula_sql
from settlement.inputs.ingest import REPORT_ERROR_LIMIT, RowError
from settlement.inputs.tabular import FileError, StagedFile, file_facts, stage_file

KINDS = ("datasets", "platforms", "affiliations", "prior_awards")
RELATIONS = ("equity", "control", "management", "family", "declared")



@dataclass(frozen=True)
class LoadReport(FileReport):
    kind: str
    load_id: int | None
    file_name: str
    sha256: str
    status: str  # loaded | rejected | unchanged (same bytes as the current load of this kind)
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    unchanged_since: int | None = None


@dataclass(frozen=True)
class _Spec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # The TEMP tables are slots ({staging_raw}, {reg_parsed}): each load gets its own names (temp_tables).
    parse_sql: str  # SELECT over {staging_raw} → typed columns + rn (slot {rn})
    checks_sql: str  # SELECT row_number, column_name, value, reason FROM {reg_parsed} ...
    code_columns: tuple[str, ...]  # columns holding party ids to check with python-stdnum
    allow_persons: bool
    insert_sql: str  # INSERT INTO *_versions ... FROM {reg_parsed} (bound parameter $load_id)
    date_columns: tuple[str, ...] = ()  # parsed with _date_parse; each has raw_<column> in reg_parsed


def _date_text(col: str) -> str:
    """The cell as YYYY-MM-DD text when it is a date Excel writes (issue 10): ``YYYY/M/D`` or ``YYYY-M-D``, and
    an xlsx date cell (read as ``YYYY-MM-DD 00:00:00``); a time other than midnight is left for the error."""
    return normalise.date_sql(rf"regexp_replace(trim({col}), '[ T]00:00(:00(\.0+)?)?$', '')")


def _date_parse(col: str) -> str:
    # Dates are YYYY-MM-DD (CONTRACT); empty = open bound. TRY_CAST also refuses 2024-02-30.
    text = _date_text(col)
    return rf"CASE WHEN regexp_full_match({text}, '\d{{4}}-\d{{2}}-\d{{2}}') THEN TRY_CAST({text} AS DATE) END"


def _reformatted_dates(con: duckdb.DuckDBPyConnection, spec: _Spec, parsed: str) -> int:
    """How many date cells were read from another form than YYYY-MM-DD (a report warning, never silent)."""
    if not spec.date_columns:
        return 0
    counts = " + ".join(f"count(*) FILTER (WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) <> trim(raw_{c}))"
                        for c in spec.date_columns)
    return int(con.execute(f"SELECT {counts} FROM {parsed}").fetchall()[0][0])


def _date_check(col: str) -> str:
    return (f"SELECT rn, '{col}', raw_{col}, 'not a date YYYY-MM-DD (or YYYY/M/D)' FROM {{reg_parsed}} "
            f"WHERE nullif(trim(raw_{col}), '') IS NOT NULL AND {col} IS NULL")


def _missing_check(col: str) -> str:
    return f"SELECT rn, '{col}', raw_{col}, 'missing value' FROM {{reg_parsed}} WHERE {col} IS NULL"


def _formula_check(col: str) -> str:
    # Issue 15 item 5: an id a spreadsheet would run as a formula never reaches an export. Credit-code
    # columns need no check of their own: such a value is no credit code (nor a ``P:`` person id).
    return (f"SELECT rn, '{col}', raw_{col}, {formula_reason_sql(col, col)} FROM {{reg_parsed}} "
            f"WHERE {formula_sql(col)}")


def _repeat_check(key: str, content: str) -> str:
    # The same key twice with different content is ambiguous: every such row is reported.
    return f"""SELECT p.rn, '{key}', p.{key}, '{key} repeats in this file with different content (rows '
                 || array_to_string(k.rows, ', ') || ')'
               FROM {{reg_parsed}} p JOIN (SELECT {key}, list(rn ORDER BY rn)[1:5] AS rows FROM {{reg_parsed}}
                 WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(DISTINCT ({content})) > 1) k USING ({key})"""


def _certification_checks(entity_key: str) -> list[str]:
    return [
        _missing_check(entity_key),
        f"SELECT rn, '{entity_key}', raw_{entity_key}, 'longer than 64 characters' FROM {{reg_parsed}} "
        f"WHERE length({entity_key}) > 64",
        _date_check("certified_on"),
        _date_check("certified_until"),
        "SELECT rn, 'certified_until', raw_certified_until, 'certified_until is before certified_on' "
        "FROM {reg_parsed} WHERE certified_until < certified_on",
    ]


_DATASETS = _Spec(
    required=("dataset_id", "owner_id", "name", "certified_on", "certified_until"),
    optional=("owner_from",),  # P10.1 (amended): dated ownership, several rows per dataset
    parse_sql=f"""
        SELECT {{rn}} AS rn, dataset_id AS raw_dataset_id, owner_id AS raw_owner_id,
               certified_on AS raw_certified_on, certified_until AS raw_certified_until,
               owner_from AS raw_owner_from,
               nullif(trim(dataset_id), '') AS dataset_id, nullif(upper(trim(owner_id)), '') AS owner_id,
               nullif(trim(name), '') AS name, {_date_parse('certified_on')} AS certified_on,
               {_date_parse('certified_until')} AS certified_until, {_date_parse('owner_from')} AS owner_from
        FROM {{staging_raw}}""",
    checks_sql=" UNION ALL ".join([
        *_certification_checks("dataset_id"), _formula_check("dataset_id"), _missing_check("owner_id"),
        _date_check("owner_from"),
        # P10.1: each row is one registration period starting at its owner_from; two periods of one dataset
        # with the same start would give a sale two owners.
        """SELECT p.rn, 'owner_from', p.raw_owner_from, 'dataset ' || p.dataset_id || ' has '
                 || k.n || ' rows with the same owner_from '
                 || coalesce(CAST(p.owner_from AS VARCHAR), '(empty: the open start)')
                 || ' (rows ' || array_to_string(k.rows, ', ') || '; P10.1)'
           FROM {reg_parsed} p JOIN (SELECT dataset_id, owner_from, count(*) AS n, list(rn ORDER BY rn)[1:5] AS rows
                                   FROM {reg_parsed} WHERE dataset_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1) k
             ON k.dataset_id = p.dataset_id AND k.owner_from IS NOT DISTINCT FROM p.owner_from
           WHERE p.owner_from IS NOT NULL OR nullif(trim(p.raw_owner_from), '') IS NULL""",
    ]),
    code_columns=("owner_id",),
    allow_persons=False,
    insert_sql="""INSERT INTO dataset_versions
          (load_id, row_number, dataset_id, owner_id, name, certified_on, certified_until, owner_from)
        SELECT $load_id, rn, dataset_id, owner_id, name, certified_on, certified_until, owner_from FROM {reg_parsed}""",
    date_columns=("certified_on", "certified_until", "owner_from"),
)

_PLATFORMS = _Spec(
    required=("platform_id", "name", "certified_on", "certified_until"),
    optional=(),
    parse_sql=f"""
        SELECT {{rn}} AS rn, platform_id AS raw_platform_id, certified_on AS raw_certified_on,
               certified_until AS raw_certified_until,
               nullif(upper(trim(platform_id)), '') AS platform_id, nullif(trim(name), '') AS name,
               {_date_parse('certified_on')} AS certified_on, {_date_parse('certified_until')} AS certified_until
        FROM {{staging_raw}}""",
    checks_sql=" UNION ALL ".join([
        _missing_check("platform_id"), _date_check("certified_on"), _date_check("certified_until"),
        "SELECT rn, 'certified_until', raw_certified_until, 'certified_until is before certified_on' "
        "FROM {reg_parsed} WHERE certified_until < certified_on",
        _repeat_check("platform_id", "name, certified_on, certified_until"),
    ]),
    code_columns=("platform_id",),
    allow_persons=False,
    insert_sql="""INSERT INTO platform_versions
        SELECT $load_id, rn, platform_id, name, certified_on, certified_until FROM {reg_parsed}
        QUALIFY row_number() OVER (PARTITION BY platform_id ORDER BY rn) = 1""",
    date_columns=("certified_on", "certified_until"),
)

_SHARE_FORM = r"regexp_full_match(trim(share), '(0|1)?(\.[0-9]{1,10})?') AND trim(share) NOT IN ('', '.')"

_AFFILIATIONS = _Spec(
    required=("a_id", "b_id", "relation", "share", "valid_from", "valid_to"),
    optional=("exempt",),
    parse_sql=f"""
        SELECT {{rn}} AS rn, a_id AS raw_a_id, b_id AS raw_b_id, relation AS raw_relation, share AS raw_share,
               valid_from AS raw_valid_from, valid_to AS raw_valid_to, exempt AS raw_exempt,
               nullif(upper(trim(a_id)), '') AS a_norm, nullif(upper(trim(b_id)), '') AS b_norm,
               nullif(trim(a_id), '') AS a_text, nullif(trim(b_id), '') AS b_text,
               lower(nullif(trim(relation), '')) AS relation,
               CASE WHEN {_SHARE_FORM} THEN CAST(trim(share) AS DECIMAL(12,10)) END AS share,
               nullif(trim(share), '') IS NOT NULL AS share_given,
               {_date_parse('valid_from')} AS valid_from, {_date_parse('valid_to')} AS valid_to,
               CASE lower(coalesce(nullif(trim(exempt), ''), 'false')) WHEN 'true' THEN true WHEN 'false' THEN false
               END AS exempt
        FROM {{staging_raw}}""",
    checks_sql=" UNION ALL ".join([
        _missing_check("a_id"), _missing_check("b_id"),
        "SELECT rn, 'relation', raw_relation, 'missing value' FROM {reg_parsed} WHERE relation IS NULL",
        f"SELECT rn, 'relation', raw_relation, 'relation must be one of {'|'.join(RELATIONS)}' FROM {{reg_parsed}} "
        f"WHERE relation NOT IN {RELATIONS!r}",
        "SELECT rn, 'b_id', raw_b_id, 'a_id and b_id are the same party (a self-loop)' FROM {reg_parsed} "
        "WHERE a_id = b_id",
        "SELECT rn, 'share', raw_share, 'an equity record needs a share' FROM {reg_parsed} "
        "WHERE relation = 'equity' AND NOT share_given",
        "SELECT rn, 'share', raw_share, 'a share is only allowed on an equity record' FROM {reg_parsed} "
        "WHERE relation IN ('control', 'management', 'family', 'declared') AND share_given",
        "SELECT rn, 'share', raw_share, 'share must be a decimal with 0 < share <= 1 (at most 10 decimals)' "
        "FROM {reg_parsed} WHERE relation = 'equity' AND share_given AND (share IS NULL OR share <= 0 OR share > 1)",
        _date_check("valid_from"), _date_check("valid_to"),
        "SELECT rn, 'valid_to', raw_valid_to, 'valid_to is before valid_from' FROM {reg_parsed} "
        "WHERE valid_to < valid_from",
        "SELECT rn, 'exempt', raw_exempt, 'exempt must be true or false' FROM {reg_parsed} WHERE exempt IS NULL",
        # Equity into one company above 100% on some day (P5): sweep the days where the sum changes.
        """SELECT r.rn, 'share', r.raw_share, 'equity in ' || r.b_id || ' sums to '
                 || CAST(round(o.total * 100, 4) AS VARCHAR) || '%'
                 || CASE WHEN o.day = DATE '0001-01-01' THEN ' from the open start' ELSE ' on ' || o.day END
                 || ' (rows '
                 || array_to_string(o.rows, ', ') || ')'
           FROM {reg_parsed} r JOIN (
             SELECT b_id, day, total, rows FROM (
               SELECT d.b_id, d.day, sum(e.share) AS total, list(e.rn ORDER BY e.rn) AS rows
               FROM (SELECT DISTINCT b_id, coalesce(valid_from, DATE '0001-01-01') AS day FROM {reg_parsed}
                     WHERE relation = 'equity' AND share > 0 AND share <= 1) d
               JOIN {reg_parsed} e ON e.b_id = d.b_id AND e.relation = 'equity' AND e.share > 0 AND e.share <= 1
                 AND coalesce(e.valid_from, DATE '0001-01-01') <= d.day
                 AND (e.valid_to IS NULL OR e.valid_to >= d.day)
               GROUP BY d.b_id, d.day HAVING sum(e.share) > 1)
             QUALIFY row_number() OVER (PARTITION BY b_id ORDER BY day) = 1) o
             ON o.b_id = r.b_id AND list_contains(o.rows, r.rn)""",
    ]),
    code_columns=("a_id", "b_id"),
    allow_persons=True,
    insert_sql="""INSERT INTO affiliation_versions
        SELECT $load_id, nextval('affiliation_record_id_seq'), rn, a_id, b_id, relation,
               CASE WHEN relation = 'equity' THEN share END, valid_from, valid_to, exempt
        FROM (SELECT * FROM {reg_parsed} ORDER BY rn)""",
    date_columns=("valid_from", "valid_to"),
)

_PRIOR_AWARDS = _Spec(
    required=("dataset_id", "year", "amount", "source"),
    optional=(),
    parse_sql=r"""
        SELECT {rn} AS rn, dataset_id AS raw_dataset_id, year AS raw_year, amount AS raw_amount,
               nullif(trim(dataset_id), '') AS dataset_id,
               CASE WHEN regexp_full_match(trim(year), '[0-9]{4}') THEN CAST(trim(year) AS INTEGER) END AS year,
               CASE WHEN regexp_full_match(trim(amount), '[0-9]{1,15}(\.[0-9]{1,2})?')
                    THEN CAST(trim(amount) AS DECIMAL(38,2)) END AS amount_wide,
               nullif(trim(source), '') AS source
        FROM {staging_raw}""",
    checks_sql=" UNION ALL ".join([
        _missing_check("dataset_id"), _formula_check("dataset_id"),
        "SELECT rn, 'year', raw_year, 'not a year YYYY' FROM {reg_parsed} WHERE year IS NULL",
        "SELECT rn, 'amount', raw_amount, 'not a plain decimal >= 0 with at most 2 decimals' FROM {reg_parsed} "
        "WHERE amount_wide IS NULL OR amount_wide > 999999999999.99",
    ]),
    code_columns=(),
    allow_persons=False,
    insert_sql="""INSERT INTO prior_award_versions
        SELECT $load_id, rn, dataset_id, year, CAST(amount_wide AS DECIMAL(18,2)), source
        FROM (SELECT * FROM {reg_parsed} ORDER BY rn)""",
)

_SPECS = {"datasets": _DATASETS, "platforms": _PLATFORMS, "affiliations": _AFFILIATIONS,
          "prior_awards": _PRIOR_AWARDS}


def _party_columns_sql(spec: _Spec) -> str:
    """Affiliation ids: credit codes are upper-cased (P4), person ids keep their case."""
    if spec is _AFFILIATIONS:
        return """, CASE WHEN starts_with(a_text, 'P:') THEN a_text ELSE a_norm END AS a_id,
                    CASE WHEN starts_with(b_text, 'P:') THEN b_text ELSE b_norm END AS b_id"""
    return ""


def load_registry(con: duckdb.DuckDBPyConnection, kind: str, path: str | Path, *, loaded_by: str,
                  file_name: str | None = None) -> LoadReport:
    """Validate and store one registry file; all or nothing."""
    if kind not in _SPECS:
        raise UserError(f"unknown registry kind {kind!r}: expected one of {', '.join(KINDS)}")
    spec = _SPECS[kind]
    path = Path(path)
    file_name = Path(file_name or path.name).name
    facts = file_facts(path)
    current = con.execute(
        "SELECT load_id, sha256 FROM registry_loads WHERE kind = ? ORDER BY load_id DESC LIMIT 1", [kind]
    ).fetchall()
    if current and current[0][1] == facts.sha256:
        return LoadReport(kind, current[0][0], file_name, facts.sha256, "unchanged", 0, 0, 0,
                          unchanged_since=current[0][0])
    # This load's own TEMP tables, dropped whatever happens.
    with temp_tables(con, "staging_raw", "reg_parsed", "reg_errors", "reg_bad_ids") as t:
        staged = stage_file(con, facts, table=t["staging_raw"], required=spec.required, optional=spec.optional)
        if isinstance(staged, FileError):
            if staged.reason == "file has a header but no data rows" and kind in ("affiliations", "prior_awards"):
                return _store(con, kind, spec, facts, file_name, loaded_by, t, rows=0, warnings=())
            return LoadReport(kind, None, file_name, facts.sha256, "rejected", 0, 0, 0, file_error=staged.reason,
                              errors=(RowError(None, staged.column, None, staged.reason),), errors_total=1)
        return _validate_and_store(con, kind, spec, staged, facts, file_name, loaded_by, t)


def _validate_and_store(con, kind: str, spec: _Spec, staged: StagedFile, facts, file_name: str,
                        loaded_by: str, t: dict[str, str]) -> LoadReport:
    parsed, errors_table, bad_ids = t["reg_parsed"], t["reg_errors"], t["reg_bad_ids"]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed} AS SELECT *" + _party_columns_sql(spec)
                + " FROM (" + render(spec.parse_sql, {"rn": staged.row_number_sql, **t}) + ")")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {errors_table} AS {render(spec.checks_sql, t)}")
    if spec.code_columns:
        distinct = " UNION ".join(f"SELECT {c} AS code FROM {parsed}" for c in spec.code_columns)
        if bad_identifiers_table(con, distinct, bad_ids, allow_persons=spec.allow_persons):
            for column in spec.code_columns:
                con.execute(f"INSERT INTO {errors_table} SELECT p.rn, $column, p.raw_{column}, b.reason "
                            f"FROM {parsed} p JOIN {bad_ids} b ON b.code = p.{column}", dict(column=column))
    warnings = staged.warnings + normalise.warnings(dates=_reformatted_dates(con, spec, parsed))
    total, rejected = con.execute(f"SELECT count(*), count(DISTINCT rn) FROM {errors_table}").fetchall()[0]
    if total:
        errors = tuple(RowError(*row) for row in con.execute(
            f"SELECT * FROM {errors_table} WHERE rn IN (SELECT DISTINCT rn FROM {errors_table} ORDER BY rn "
            "LIMIT $limit) ORDER BY 1, 2, 4", dict(limit=REPORT_ERROR_LIMIT)).fetchall())
        return LoadReport(kind, None, file_name, facts.sha256, "rejected", staged.rows, 0, rejected,
                          errors=errors, errors_total=total, warnings=warnings)
    return _store(con, kind, spec, facts, file_name, loaded_by, t, rows=staged.rows, warnings=warnings)


def _store(con, kind: str, spec: _Spec, facts, file_name: str, loaded_by: str, t: dict[str, str], *, rows: int,
           warnings: tuple[str, ...]) -> LoadReport:
    with transaction(con):
        load_id = con.execute("SELECT nextval('registry_load_id_seq')").fetchall()[0][0]
        if rows:
            con.execute(render(spec.insert_sql, t), dict(load_id=load_id))
        loaded = rows and con.execute(
            f"SELECT count(*) FROM {kind[:-1] if kind != 'prior_awards' else 'prior_award'}_versions "
            "WHERE load_id = ?", [load_id]).fetchall()[0][0]
        con.execute("INSERT INTO registry_loads VALUES (?, ?, ?, ?, ?, ?, now())",
                    [load_id, kind, file_name, facts.sha256, loaded, loaded_by])
        digests.record(con, kind, load_id)  # issue 15: the rows it stored, covered by the runs' chain
    return LoadReport(kind, load_id, file_name, facts.sha256, "loaded", rows, loaded, 0, warnings=warnings)
