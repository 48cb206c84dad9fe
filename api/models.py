"""Response and request bodies of the API as pydantic models: they make the OpenAPI schema complete.

Field names follow the JSON the CLI prints (``--format json``) so a script can switch between the two.
Must not import routes. A body that is a core result dataclass as it is (``UploadSummary``) is derived from
that dataclass (``_model_of``) rather than written twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from settlement.inputs.uploads import UploadSummary

CODE_A = "91330108128315247N"  # a valid credit code (P4), for examples
# A text that says something: one character the core's str.strip() keeps. ``\S`` alone is not that: the
# schema's (ECMAScript) and pydantic's (Unicode White_Space) ``\s`` lack the separators \x1c-\x1f that
# Python strips, and ECMAScript's lacks \x85, so a comment of one \x1e passed the schema and was refused.
SAYS_SOMETHING = r"[^\s\x1c-\x1f\x85]"


class RowErrorOut(BaseModel):
    row_number: int | None = Field(description="File row, header = row 1; null for a file-level error")
    column: str | None
    value: str | None
    reason: str


class UploadReportOut(BaseModel):
    """The upload report, exactly what `settle ingest --format json` prints."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "upload_id": 12, "file_name": "trades-2024-03.csv", "sha256": "9f2c...", "bytes": 18234,
        "file_format": "csv", "status": "stored", "rows_read": 120, "rows_stored": 118, "rows_duplicate": 2,
        "rows_rejected": 0, "accept_valid": False, "errors": [], "errors_total": 0, "warnings": [],
        "file_error": None, "duplicate_of": None, "errors_truncated": False}]})

    upload_id: int
    file_name: str
    sha256: str
    bytes: int
    file_format: str | None = None
    status: str = Field(description="stored | partial | rejected | duplicate")
    rows_read: int
    rows_stored: int
    rows_duplicate: int
    rows_rejected: int
    accept_valid: bool
    errors: list[RowErrorOut] = Field(default_factory=list)
    errors_total: int = 0
    warnings: list[str] = Field(default_factory=list)
    file_error: str | None = None
    duplicate_of: int | None = None
    errors_truncated: bool = False
    rejected_rows_url: str | None = Field(
        None, description="API only: the rejected rows in the file's own columns plus error_column and error_reason")


class RejectedUploadOut(UploadReportOut):
    """A rejected upload (422): the same report plus the CONTRACT error envelope."""

    error: dict[str, Any]


def _model_of(cls: type, name: str, config: ConfigDict) -> type[BaseModel]:
    """The response model of a core result dataclass: its fields, types and defaults, so the two cannot drift.
    A tuple field is a JSON array (``list`` in the schema, default ``[]``)."""
    hints = get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if get_origin(kind) is tuple:
            fields[f.name] = (list[get_args(kind)[0]], Field(default_factory=list))
        else:
            fields[f.name] = (kind, ... if f.default is dataclasses.MISSING else f.default)
    return create_model(name, __config__=config, __module__=__name__, **fields)


UploadSummaryOut = _model_of(UploadSummary, "UploadSummaryOut", ConfigDict(extra="allow", json_schema_extra={
    "examples": [{
        "id": 12, "file_name": "trades-2024-03.csv", "sha256": "9f2c...", "bytes": 18234, "status": "stored",
        "rows_read": 120, "rows_stored": 118, "rows_duplicate": 2, "rows_rejected": 0,
        "uploaded_by": "token:tok_1a2b3c4d5e6f", "uploaded_at": "2024-04-01T08:00:00Z", "retracted_at": None,
        "platform_ids": [CODE_A]}]}))


class PayoutRow(BaseModel):
    year: int
    clause: int = Field(description="6 (dataset reward) or 7 (platform subsidy)")
    beneficiary_id: str
    dataset_id: str = Field(description="empty for clause 7")
    amount: str = Field(description="CNY, exactly two decimals (P1)", examples=["1234.50"])


class PayoutsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "year": 2024, "scope": f"owner {CODE_A}", "total": "1234.50",
        "payouts": [{"year": 2024, "clause": 6, "beneficiary_id": CODE_A, "dataset_id": "DS-001",
                     "amount": "1234.50"}]}]})

    year: int | None
    scope: str = Field(description="what the token may see: all, owner <id> or operator <platform_id>")
    total: str
    payouts: list[PayoutRow]


class LedgerEntryOut(BaseModel):
    entry_id: int
    run_id: int
    year: int
    clause: int
    beneficiary_id: str
    dataset_id: str
    amount: str
    kind: str
    created_at: str
    hash: str


class RunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "run_id": 4, "year": 2024, "appended_count": 1, "total_appended": "1234.50", "appended": [{
            "entry_id": 17, "run_id": 4, "year": 2024, "clause": 6, "beneficiary_id": CODE_A,
            "dataset_id": "DS-001", "amount": "1234.50", "kind": "accrual",
            "created_at": "2025-01-05T02:00:00+00:00", "hash": "3fa1..."}]}]})

    run_id: int
    year: int
    appended_count: int
    total_appended: str
    appended: list[LedgerEntryOut]


class VerifyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ok": True, "entries_checked": 42, "runs_checked": 6, "first_bad_entry_id": None,
        "message": "ok: 42 entries in 6 runs verified"}]})

    ok: bool
    entries_checked: int
    runs_checked: int
    first_bad_entry_id: int | None
    message: str


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"sql": "SELECT platform_id, count(*) AS trades, sum(amount) AS volume FROM trades "
                "WHERE NOT retracted GROUP BY ALL ORDER BY volume DESC", "limit": 100}]})

    sql: str = Field(min_length=1, max_length=100_000, description="One read statement (SELECT/WITH/FROM/...)")
    limit: int | None = Field(None, ge=1, description="Rows wanted; the server's row cap applies on top")


class SqlColumn(BaseModel):
    name: str
    type: str


class SqlOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "columns": [{"name": "platform_id", "type": "VARCHAR"}, {"name": "trades", "type": "BIGINT"},
                    {"name": "volume", "type": "DECIMAL(38,2)"}],
        "rows": [[CODE_A, 1200, "345678.90"]], "row_count": 1, "truncated": False, "truncated_by": None, "row_cap": 100, "ms": 4.2,
        "snapshot_at": "2025-01-05T02:00:00+00:00"}]})

    columns: list[SqlColumn]
    rows: list[list[Any]] = Field(description="Row values; decimals as exact strings, times in ISO-8601")
    row_count: int
    truncated: bool = Field(description="True when the answer stopped at the row cap or the byte cap")
    truncated_by: Literal["rows", "bytes"] | None = Field(
        None, description="Which cap stopped the answer: rows (SETTLE_SQL_ROW_CAP or limit), bytes (SETTLE_SQL_BYTE_CAP)"
    )
    row_cap: int
    ms: float
    snapshot_at: str = Field(description="When the snapshot the query read was taken (UTC)")


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    schema_version: int


class CallerGroupOut(BaseModel):
    group_id: str
    counted: bool = Field(description="Its eligible net sum is > 0, so it counts as a caller (P10.3)")
    net_amount: str
    buyers: list[dict[str, Any]] = Field(description="[{buyer_id, eligible_sales, net_amount}]")
    merge_paths: list[str] = Field(
        default_factory=list,
        description="Why the further buyers are in the first one's group: record paths, each edge with its day (P8)")


class ExcludedTradeOut(BaseModel):
    platform_id: str
    trade_id: str
    kind: str | None
    reason: str = Field(description="P12 code")
    detail: str | None


class OwnerPeriodOut(BaseModel):
    """One registration period of a dataset (P10.1): its owner from owner_from to owner_until (null = open)."""

    owner_id: str
    owner_from: str | None
    owner_until: str | None


class DatasetStatusOut(BaseModel):
    """Clause 6 for one dataset and year as the latest settlement run of that year computed it (P10, P12)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "year": 2024, "dataset_id": "DS-001", "owner_id": CODE_A, "run_id": 7, "as_of": "2025-01-05T02:00:00+00:00",
        "unrelated_callers": 3, "caller_threshold": 3, "callers_missing": 1, "qualifies": False,
        "eligible_sales": 41, "base": "52000.00", "rate": "0.100000", "gross": "0.00", "prior_awards": "0.00",
        "payable": "0.00", "owner_payable_total": "0.00", "owner_cap": "1000000.00", "cap_used": "0.00",
        "cap_remaining": "1000000.00", "capped": False, "target": "0.00", "ledger_balance": "0.00",
        "excluded_by_reason": {"RELATED_PARTY": 2, "OUT_OF_WINDOW": 1}, "excluded_total": 3,
        "groups": [], "excluded": []}]})

    year: int
    dataset_id: str
    owner_id: str | None = Field(description="The owner this result is for (P10.1: results are per dataset and owner)")
    owner_periods: list[OwnerPeriodOut] = Field(
        default_factory=list, description="Registration periods of the dataset in the year (an owner sees its own)")
    owners_in_year: list[str] = Field(default_factory=list, description="Owners with a result this year")
    run_id: int
    as_of: str | None = Field(description="When that run finished (UTC)")
    unrelated_callers: int = Field(description="Distinct affiliate groups of eligible buyers (P10.3)")
    caller_threshold: int | None = Field(description="Qualifies when unrelated_callers > this (P10.4)")
    callers_missing: int = Field(description="More unrelated callers needed to qualify (0 once qualifying)")
    qualifies: bool
    eligible_sales: int
    base: str = Field(description="Σ net amount of eligible sales (P10.5)")
    rate: str | None
    gross: str = Field(description="round(rate × base) when qualifying (P1, P10.5)")
    prior_awards: str = Field(description="Deducted under supplementary rule 2 (P10.6)")
    payable: str = Field(description="Projected payable before the owner cap: max(0, gross − prior awards)")
    owner_payable_total: str = Field(description="Σ payable over the owner's datasets this year (P10.7)")
    owner_cap: str | None
    cap_used: str | None = Field(description="How much of the owner's yearly cap its datasets use")
    cap_remaining: str | None
    capped: bool
    target: str = Field(description="What the ledger key is brought to (the cap share when capped)")
    ledger_balance: str = Field(description="Σ ledger entries of (year, 6, owner, dataset) now")
    excluded_by_reason: dict[str, int] = Field(description="Excluded trades counted by P12 reason")
    excluded_total: int
    groups: list[CallerGroupOut]
    excluded: list[ExcludedTradeOut] = Field(description="The first `limit` excluded trades, by reason")


class TokenOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "token_id": "tok_1a2b3c4d5e6f", "role": "owner", "scope_id": CODE_A, "label": "owner A finance",
        "created_at": "2025-01-05T02:00:00+00:00", "created_by": "token:tok_0a0b0c0d0e0f", "revoked_at": None,
        "revoked_by": None}]})

    token_id: str
    role: str
    scope_id: str | None
    label: str | None
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None


class TokenCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "operator", "scope_id": CODE_A, "label": "Xihu exchange uploader"}]})

    role: str = Field(description="operator | owner | regulator")
    scope_id: str | None = Field(None, max_length=64, description="operator: platform_id; owner: enterprise id")
    label: str | None = Field(None, max_length=200)


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The bearer token: shown once, stored only as its SHA-256")
