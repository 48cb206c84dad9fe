"""Who may see what: the one place where an owner's or operator's answer is cut to its scope (issues 15, 16).

Every answer the HTTP API (and the web console) gives an owner or an operator comes through a function of
this module, so a new route cannot forget a scope check:
- ``visible_payouts``: regulator all rows; owner / operator the rows whose beneficiary is its enterprise /
  platform enterprise (``ledgers.ledger.payouts`` with ``beneficiary_id``).
- ``visible_upload`` / ``visible_uploads``: regulator any upload; operator the uploads of its platform
  (``uploads.platform_id``, migration 0008), or a token of its platform sent one that stored no trades.
- ``visible_dataset``: regulator any dataset; owner the datasets the registry gives it.

An id out of scope is refused exactly like a missing one (``UserError`` code ``not_found``, the same
message), so an owner or operator cannot learn which ids exist (issue 15 item 6). A wrong ROLE is the
edge's business (403), decided before these functions run.

May import ``settlement.core``, ``settlement.inputs`` and ``ledgers``; must not import the CLI or ``api``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from ledgers import ledger
from settlement.access import tokens
from settlement.access.tokens import TokenInfo
from settlement.core.errors import UserError
from settlement.inputs import ingest

REGULATOR = "regulator"


@dataclass(frozen=True)
class Scope:
    """A caller's reach: ``role`` (operator | owner | regulator) and ``scope_id`` (its platform / enterprise
    credit code; None for a regulator or the CLI, which see everything)."""

    role: str
    scope_id: str | None

    @classmethod
    def of(cls, token: TokenInfo) -> Scope:
        if token.role != REGULATOR and not token.scope_id:
            raise ValueError(f"{token.role} token {token.token_id} has no scope")  # api_tokens is corrupt
        return cls(token.role, None if token.role == REGULATOR else token.scope_id)

    @property
    def everything(self) -> bool:
        return self.role == REGULATOR

    @property
    def label(self) -> str:
        """How answers name the scope: ``all``, ``owner <code>``, ``operator <code>``."""
        return "all" if self.everything else f"{self.role} {self.scope_id}"


def not_found_upload(upload_id: int) -> UserError:
    return UserError(f"no upload with id {upload_id}", code="not_found")


def not_found_dataset(dataset_id: str) -> UserError:
    return UserError(f"no dataset {dataset_id!r} in the dataset registry", code="not_found")


# ---------------------------------------------------------------------------------------------- payouts


def visible_payouts(con: duckdb.DuckDBPyConnection, scope: Scope, year: int | None = None) -> pl.DataFrame:
    """``ledger.payouts`` as the caller may see it (CONTRACT "HTTP API": owner its own, operator its
    platform's, regulator all)."""
    return ledger.payouts(con, year, beneficiary_id=None if scope.everything else scope.scope_id)


# ---------------------------------------------------------------------------------------------- uploads


def _uploader_platform(con: duckdb.DuckDBPyConnection, uploaded_by: str) -> str | None:
    if not uploaded_by.startswith("token:"):
        return None
    info = tokens.get_token(con, uploaded_by.removeprefix("token:"))
    return info.scope_id if info is not None and info.role == "operator" else None


def _may_see_upload(con: duckdb.DuckDBPyConnection, scope: Scope, platform_id: str | None, uploaded_by: str,
                    stored_platforms: tuple[str, ...]) -> bool:
    if scope.everything:
        return True
    if scope.role != "operator":
        return False
    if platform_id is not None:
        return platform_id == scope.scope_id
    # No single platform: several platforms (the CLI's upload: not an operator's), or no stored trades
    # (rejected, or every row a duplicate): then the operator whose token sent it.
    return not stored_platforms and _uploader_platform(con, uploaded_by) == scope.scope_id


def visible_upload(con: duckdb.DuckDBPyConnection, scope: Scope, upload_id: int) -> ingest.UploadSummary:
    """The upload's summary, or ``UserError(not_found)`` with the same message whether it is missing or
    out of scope."""
    rows = con.execute("SELECT platform_id FROM uploads WHERE id = ?", [upload_id]).fetchall()
    if not rows:
        raise not_found_upload(upload_id)
    summary = ingest.get_upload(con, upload_id)
    if not _may_see_upload(con, scope, rows[0][0], summary.uploaded_by, summary.platform_ids):
        raise not_found_upload(upload_id)
    return summary


def visible_uploads(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[ingest.UploadSummary]:
    """Every upload the caller may see, by id."""
    if scope.everything:
        return ingest.list_uploads(con)
    platform = dict(con.execute("SELECT id, platform_id FROM uploads").fetchall())
    return [u for u in ingest.list_uploads(con)
            if _may_see_upload(con, scope, platform.get(u.id), u.uploaded_by, u.platform_ids)]


def retract_visible_upload(con: duckdb.DuckDBPyConnection, scope: Scope, upload_id: int, *,
                           by: str) -> ingest.UploadSummary:
    """Retract (P9) an upload the caller may see; out of scope = not found."""
    visible_upload(con, scope, upload_id)
    return ingest.retract_upload(con, upload_id, by=by)


# ---------------------------------------------------------------------------------------------- datasets


def visible_dataset(con: duckdb.DuckDBPyConnection, scope: Scope, dataset_id: str) -> str | None:
    """Which owner's result of the dataset the caller may read: an owner its own (when it owns or owned
    some registration period of the dataset, P10.1), a regulator any (None: the explanation's default).
    ``UserError(not_found)`` alike for a missing dataset and another owner's."""
    owners = {r[0] for r in con.execute("SELECT owner_id FROM datasets WHERE dataset_id = ?", [dataset_id]).fetchall()}
    if not owners:
        raise not_found_dataset(dataset_id)
    if scope.everything:
        return None
    if scope.role == "owner" and scope.scope_id in owners:
        return scope.scope_id
    raise not_found_dataset(dataset_id)
