"""Why a dataset or a platform gets what it gets: read back the explanations a settlement run stored.

Owns: ``explain_dataset`` (one owner), ``explain_dataset_owners`` (every owner of the year, as `settle explain
dataset` and its API route list them) / ``explain_platform`` (the latest run of the year, from run_dataset_results,
run_caller_buyers, run_platform_results, run_exclusion_counts and exclusions, plus the key's current ledger balance). Read only;
computes no rule (the run did, P10–P12). An id in neither the registry nor any stored trade is refused
with ``UserError(code="not_found")`` ("no dataset X"), so the CLI exits 1 and the API answers 404.
Must not import the CLI or the API (they import this).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import duckdb

from settlement.core.errors import UserError
from settlement.affiliates.explain import YearMerge
from settlement.clauses.relations import cut, one_run_exclusions_sql
from settlement.core.params import PolicyParams, load_params
from settlement.core.sql import temp_tables


@dataclass(frozen=True)
class CallerGroup:
    group_id: str
    counted: bool  # its eligible net sum is > 0 (P10.3)
    net_amount: Decimal
    buyers: tuple[tuple[str, int, Decimal], ...]  # (buyer_id, eligible sales, net amount)
    # for a group of several buyers: why each further buyer is in the first one's group, edge by edge with
    # the day each edge existed (P8 year graph = union of the day graphs' edges)
    merge_paths: tuple[str, ...] = ()


def counted_first(groups: Iterable[CallerGroup]) -> list[CallerGroup]:
    """The order pages show caller groups in: counted groups first, each side in the order given (a stable
    sort). Merge paths are budgeted in this order too (``_caller_groups``)."""
    return sorted(groups, key=lambda g: not g.counted)


@dataclass(frozen=True)
class OwnerPeriod:
    """One registration period of a dataset (P10.1): its owner from owner_from to owner_until."""

    owner_id: str
    owner_from: date | None  # None: the open start
    owner_until: date | None  # None: open-ended


@dataclass(frozen=True)
class ExcludedTrade:
    platform_id: str
    trade_id: str
    kind: str
    reason: str
    detail: str | None


@dataclass(frozen=True)
class DatasetExplanation:
    year: int
    dataset_id: str
    run_id: int
    owner_id: str | None
    eligible_sales: int
    caller_groups: int
    caller_threshold: int | None
    qualifies: bool
    callers_missing: int  # how many more unrelated caller groups it needs (0 once qualifying, P10.4)
    base: Decimal
    rate: Decimal | None
    gross: Decimal
    prior_awards: Decimal
    payable: Decimal
    owner_payable_total: Decimal
    owner_cap: Decimal | None
    capped: bool
    target: Decimal  # the cap share when capped (P10.7)
    ledger_balance: Decimal  # Σ ledger entries of (year, 6, owner, dataset) now
    groups: tuple[CallerGroup, ...]
    excluded_by_reason: dict[str, int]
    excluded: tuple[ExcludedTrade, ...]  # the first ``limit`` exclusions, by reason then trade
    excluded_total: int
    # every registration period of the dataset that overlaps the year, and the owners with results in it
    periods: tuple[OwnerPeriod, ...] = ()
    owners_in_year: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformFigures:
    """Clause 7 figures of one platform and year as a run stored them (run_platform_results, P11): read by
    the explanation and by the lifecycle statement (settlement.lifecycle.statement)."""
    eligible_sales: int
    volume: Decimal
    rate: Decimal | None
    subsidy_uncapped: Decimal
    cap: Decimal | None
    target: Decimal


@dataclass(frozen=True)
class PlatformExplanation(PlatformFigures):
    year: int
    platform_id: str
    run_id: int
    ledger_balance: Decimal
    excluded_by_reason: dict[str, int]
    excluded: tuple[ExcludedTrade, ...]
    excluded_total: int


class NoRun(LookupError):
    """No settlement run of that year yet."""


def latest_run(con: duckdb.DuckDBPyConnection, year: int) -> int:
    """The run whose stored explanations describe the latest run of ``year`` (a repeated run with unchanged
    inputs points back to the run that computed them: view run_explanation_source)."""
    rows = con.execute(
        "SELECT source_run_id FROM run_explanation_source WHERE year = ? ORDER BY run_id DESC LIMIT 1", [year]
    ).fetchall()
    if not rows:
        raise NoRun(f"no settlement run for {year} yet: run `settle run --year {year}`")
    return int(rows[0][0])


def _require_known(con: duckdb.DuckDBPyConnection, kind: str, value: str) -> None:
    """Refuse an id found in neither the registry (datasets / platforms view) nor any stored trade."""
    registry, column = {"dataset": ("datasets", "dataset_id"), "platform": ("platforms", "platform_id")}[kind]
    known = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {registry} WHERE {column} = $id) "
        f"OR EXISTS (SELECT 1 FROM trade_rows WHERE {column} = $id)", dict(id=value)).fetchall()[0][0]
    if not known:
        raise UserError(f"no {kind} {value}", code="not_found")


def caller_threshold(params: PolicyParams, year: int) -> int | None:
    """The P10.4 caller threshold of ``year`` (on its first in-scope day); None when the year has none."""
    days = params.in_scope_days(year)
    return None if days is None else int(params.value("clause6.caller_threshold", days[0]))


def _exclusions(con, run_id: int, year: int, clause: int, column: str, value: str, limit: int,
                listed: tuple[ExcludedTrade, ...] | None = None):
    """Exclusions of ``run_id`` under ``clause`` of one dataset or platform (``column`` = ``value``): counts by
    reason from run_exclusion_counts (migration 0013), and the first ``limit`` rows of the view
    ``exclusions`` by reason then trade, derived for that dataset's or platform's trades only (issue 12), or
    ``listed`` when the caller derived them already (``excluded_listings``)."""
    by_reason = {reason: int(n) for reason, n in con.execute(
        f"SELECT reason, sum(trades) FROM run_exclusion_counts WHERE run_id = $run AND clause = $clause "
        f"AND {column} = $value GROUP BY reason ORDER BY reason",
        dict(run=run_id, clause=clause, value=value)).fetchall()}
    total = sum(by_reason.values())
    if not total or limit <= 0:  # nothing to list: no derivation at all
        return by_reason, (), total
    if listed is None:
        listed = excluded_listings(con, run_id, year, clause, column, [value], limit, many=False).get(value, ())
    return by_reason, listed, total


class YearMerges:
    """The year graphs merge paths are searched in, built once per (year, parameters) and shared by the
    ``explain_dataset`` calls of one page: building one costs ~0.5 s on 100k parties, and each keeps the
    record views and edge texts it explained (an owner page of 114 datasets built it 105 times: 49 s)."""

    def __init__(self) -> None:
        self._built: dict[tuple, YearMerge] = {}

    def of(self, con: duckdb.DuckDBPyConnection, year: int, params: PolicyParams) -> YearMerge:
        days = params.in_scope_days(year)
        threshold, window = params.value("affiliates.equity_threshold", days[0]), params.window_for_year(year)
        key = (year, threshold, window)
        if key not in self._built:
            self._built[key] = YearMerge(con, year=year, equity_threshold=threshold, window_start=window[0],
                                         window_end=window[1])
        return self._built[key]


BUYERS_SQL = ("SELECT dataset_id, owner_id, group_id, group_counted, buyer_id, eligible_sales, net_amount "
              "FROM run_caller_buyers WHERE run_id = $run AND dataset_id IN (SELECT unnest($ids)) "
              "ORDER BY dataset_id, owner_id, group_id, buyer_id")


@dataclass(frozen=True)
class Batch:
    """What ``explain_dataset`` reads per dataset, read for many datasets of one run at once (a page of an
    owner's datasets, ``batch``): their excluded trades (one derivation, not one per dataset), their caller
    buyers (one read of run_caller_buyers), and the year graphs merge paths are searched in (``merges``)."""

    run_id: int
    limit: int
    excluded: dict[str, tuple[ExcludedTrade, ...]]
    buyers: dict[tuple[str, str | None], list[tuple]]
    merges: YearMerges

    def excluded_of(self, run_id: int, dataset_id: str, limit: int) -> tuple[ExcludedTrade, ...] | None:
        """This dataset's listing, or None when read for another run or length (derive it again)."""
        return self.excluded.get(dataset_id, ()) if (run_id, limit) == (self.run_id, self.limit) else None

    def buyers_of(self, run_id: int, dataset_id: str, owner_id: str | None) -> list[tuple] | None:
        return self.buyers.get((dataset_id, owner_id), []) if run_id == self.run_id else None


def batch(con: duckdb.DuckDBPyConnection, dataset_ids: list[str], year: int, limit: int) -> Batch:
    """``Batch`` of the latest run of ``year`` for ``dataset_ids``; pass it to ``explain_dataset(batch=)``."""
    run_id = latest_run(con, year)
    if not dataset_ids:
        return Batch(run_id, limit, {}, {}, YearMerges())
    ids = list(dataset_ids)
    listed = [r[0] for r in con.execute(  # only datasets with exclusions: the cut is then theirs alone
        "SELECT DISTINCT dataset_id FROM run_exclusion_counts WHERE run_id = $run AND clause = 6 "
        "AND dataset_id IN (SELECT unnest($ids)) ORDER BY 1", dict(run=run_id, ids=ids)).fetchall()]
    buyers: dict[tuple[str, str | None], list[tuple]] = {}
    for dataset_id, owner_id, *row in con.execute(BUYERS_SQL, dict(run=run_id, ids=ids)).fetchall():
        buyers.setdefault((dataset_id, owner_id), []).append(tuple(row))
    return Batch(run_id, limit, excluded_listings(con, run_id, year, 6, "dataset_id", listed, limit), buyers,
                 YearMerges())


def excluded_listings(con, run_id: int, year: int, clause: int, column: str, values: list[str], limit: int,
                      *, many: bool = True) -> dict[str, tuple[ExcludedTrade, ...]]:
    """The first ``limit`` rows of the view ``exclusions`` of ``run_id`` and ``clause`` for each id of ``values``
    (``column``: dataset_id or platform_id), in the order explain lists them, derived in ONE pass over the
    run's trades cut to those ids (an owner page of 114 datasets: one derivation, not 114). An id without
    exclusions is absent."""
    if not values or limit <= 0:
        return {}
    # DuckDB misjudges the cut trades as a few hundred rows and flips the LEFT JOINs to build hash tables on
    # them; with buyers skewed that took 15+ minutes for a 337k-trade dataset (5.6 s with the written sides)
    previous = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    ids = dict(values=list(values)) if many else dict(value=values[0])
    try:
        with temp_tables(con, "cut") as names:
            trades = None
            if many:  # the statement reads the cut four times: computed once (113 datasets: 17 of 24 CPU-s)
                con.execute(f"CREATE TEMP TABLE {names['cut']} AS SELECT * FROM {cut(column, True)}",
                            dict(run=run_id, values=ids["values"]))
                trades = names["cut"]
            rows = con.execute(one_run_exclusions_sql(column, many, trades), dict(
                run=run_id, year=year, clause=clause, limit=limit, **ids)).fetchall()
    finally:
        con.execute("SET disabled_optimizers = $v", dict(v=previous))
    if not many:
        return {values[0]: tuple(ExcludedTrade(*r) for r in rows)} if rows else {}
    found: dict[str, list[ExcludedTrade]] = {}
    for key, *row in rows:  # at most limit rows per id, already in order
        found.setdefault(key, []).append(ExcludedTrade(*row))
    return {key: tuple(rows) for key, rows in found.items()}


def _balance(con, year: int, clause: int, beneficiary_id: str | None, dataset_id: str) -> Decimal:
    value = con.execute(
        "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE year = ? AND clause = ? "
        "AND beneficiary_id = ? AND dataset_id = ?", [year, clause, beneficiary_id, dataset_id]).fetchall()[0][0]
    return Decimal(value).quantize(Decimal("0.01"))


MERGE_PATHS_MAX = 20  # groups of several buyers explained per dataset (each costs a small graph search)


def _periods(con, dataset_id: str, year: int) -> tuple[OwnerPeriod, ...]:
    rows = con.execute(
        "SELECT owner_id, owner_from, owner_until FROM datasets WHERE dataset_id = $d "
        "AND coalesce(owner_from, DATE '0001-01-01') <= make_date($y, 12, 31) "
        "AND coalesce(owner_until, DATE '9999-12-31') >= make_date($y, 1, 1) ORDER BY owner_from NULLS FIRST",
        dict(d=dataset_id, y=year)).fetchall()
    return tuple(OwnerPeriod(*r) for r in rows)


def _caller_groups(con, run_id: int, dataset_id: str, owner_id: str | None, year: int,
                   params: PolicyParams, paths_per_group: int | None,
                   batch: Batch | None = None) -> tuple[CallerGroup, ...]:
    """The dataset's caller groups in group-id order. Merge paths for the first MERGE_PATHS_MAX groups of
    several buyers in the order the pages show groups (counted first, then group id), at most
    ``paths_per_group`` per group (None: one per further buyer; 0: none, the caller adds the paths it shows
    with ``merge_paths``)."""
    buyers = batch.buyers_of(run_id, dataset_id, owner_id) if batch else None
    if buyers is None:
        buyers = con.execute(
            "SELECT group_id, group_counted, buyer_id, eligible_sales, net_amount FROM run_caller_buyers "
            "WHERE run_id = ? AND dataset_id = ? AND owner_id IS NOT DISTINCT FROM ? ORDER BY group_id, buyer_id",
            [run_id, dataset_id, owner_id]).fetchall()
    groups: dict[str, list] = {}
    counted: dict[str, bool] = {}
    for group_id, group_counted, buyer_id, n, net in buyers:
        groups.setdefault(group_id, []).append((buyer_id, int(n), net))
        counted[group_id] = bool(group_counted)
    out = tuple(CallerGroup(g, counted[g], sum((b[2] for b in members), Decimal("0.00")), tuple(members))
                for g, members in groups.items())
    if paths_per_group == 0 or params.in_scope_days(year) is None:
        return out
    several = [g for g in counted_first(out) if len(g.buyers) > 1]
    explained = {g.group_id for g in several[:MERGE_PATHS_MAX]}
    if not explained:
        return out
    merges = batch.merges if batch else YearMerges()  # the year graph, once for every path (and dataset)
    last = None if paths_per_group is None else 1 + paths_per_group

    def with_paths(g: CallerGroup) -> CallerGroup:
        return replace(g, merge_paths=merge_paths(con, year, params, [b[0] for b in g.buyers[:last]], merges))

    return tuple(with_paths(g) if g.group_id in explained else g for g in out)


def merge_paths(con: duckdb.DuckDBPyConnection, year: int, params: PolicyParams, buyers: list[str],
                merges: YearMerges) -> tuple[str, ...]:
    """Why each further buyer of ``buyers`` (a caller group's, first one first) is in the first one's group
    of ``year`` (P8: a path over the union of the day graphs, each edge from records on a day it existed);
    () when the year has no in-scope day."""
    if len(buyers) < 2 or params.in_scope_days(year) is None:
        return ()
    merge = merges.of(con, year, params)
    return tuple(merge.explain(buyers[0], b) for b in buyers[1:])


def explain_dataset(con: duckdb.DuckDBPyConnection, dataset_id: str, year: int, *, limit: int = 50,
                    params: PolicyParams | None = None, owner_id: str | None = None,
                    paths_per_group: int | None = None,
                    batch: Batch | None = None) -> DatasetExplanation:
    """Clause 6 for one dataset, owner and year, as the latest run saw it (P10.1: results are per dataset and
    owner; ``owner_id`` None = the first owner with results that year in code-point order, else the owner of
    the year's last period). Raises UserError (unknown dataset), NoRun. ``params`` (default: the packaged
    file) give the caller threshold of a dataset without eligible sales and the merge paths' parameters.
    ``paths_per_group``: merge paths per caller group (None: one per further buyer; a page showing a group's
    first buyers asks for theirs only, since each path is a graph search). ``batch``: what was read for several datasets at
    once (``batch``: their excluded trades, caller buyers and year graphs), used when it is of this run."""
    _require_known(con, "dataset", dataset_id)
    params = params if params is not None else load_params()
    run_id = latest_run(con, year)
    rel = con.sql("SELECT * FROM run_dataset_results WHERE run_id = ? AND dataset_id = ? ORDER BY owner_id",
                  params=[run_id, dataset_id])
    rows = [dict(zip(rel.columns, row)) for row in rel.fetchall()]
    owners = tuple(r["owner_id"] for r in rows if r["owner_id"] is not None)
    periods = _periods(con, dataset_id, year)
    chosen = [r for r in rows if owner_id is None or r["owner_id"] == owner_id]
    by_reason, excluded, excluded_total = _exclusions(
        con, run_id, year, 6, "dataset_id", dataset_id, limit, batch and batch.excluded_of(run_id, dataset_id, limit))
    if chosen:
        r = chosen[0]
    else:  # no eligible sale and no prior award for this owner: everything it sold is excluded (or nothing)
        fallback = owner_id or (periods[-1].owner_id if periods else None)
        zero = Decimal("0.00")
        r = dict(owner_id=fallback, eligible_sales=0, caller_groups=0, caller_threshold=caller_threshold(params, year),
                 qualifies=False, base=zero, rate=None, gross=zero, prior_awards=zero, payable=zero,
                 owner_payable_total=zero, owner_cap=None, capped=False, target=zero)
    threshold = r["caller_threshold"]
    missing = 0 if threshold is None else max(0, int(threshold) + 1 - int(r["caller_groups"]))
    return DatasetExplanation(
        year=year, dataset_id=dataset_id, run_id=run_id, owner_id=r["owner_id"],
        eligible_sales=int(r["eligible_sales"]), caller_groups=int(r["caller_groups"]),
        caller_threshold=threshold, qualifies=bool(r["qualifies"]), callers_missing=missing, base=r["base"],
        rate=r["rate"], gross=r["gross"], prior_awards=r["prior_awards"], payable=r["payable"],
        owner_payable_total=r["owner_payable_total"], owner_cap=r["owner_cap"], capped=bool(r["capped"]),
        target=r["target"], ledger_balance=_balance(con, year, 6, r["owner_id"], dataset_id),
        groups=_caller_groups(con, run_id, dataset_id, r["owner_id"], year, params, paths_per_group, batch),
        excluded_by_reason=by_reason, excluded=excluded, excluded_total=excluded_total,
        periods=periods, owners_in_year=owners,
    )


def explain_dataset_owners(con: duckdb.DuckDBPyConnection, dataset_id: str, year: int, *, limit: int = 50,
                           params: PolicyParams | None = None, owner_id: str | None = None) -> list[DatasetExplanation]:
    """``owner_id``'s explanation, or one per owner with results in ``year`` (P10.1), the first owner first."""
    params = params if params is not None else load_params()
    first = explain_dataset(con, dataset_id, year, limit=limit, params=params, owner_id=owner_id)
    if owner_id:
        return [first]
    return [first, *(explain_dataset(con, dataset_id, year, limit=limit, params=params, owner_id=o)
                     for o in first.owners_in_year[1:])]


def explain_platform(con: duckdb.DuckDBPyConnection, platform_id: str, year: int, *, limit: int = 50
                     ) -> PlatformExplanation:
    """Clause 7 for one platform and year, as the latest run saw it. Raises UserError (unknown platform), NoRun."""
    _require_known(con, "platform", platform_id)
    run_id = latest_run(con, year)
    rel = con.sql("SELECT * FROM run_platform_results WHERE run_id = ? AND platform_id = ?", params=[run_id, platform_id])
    rows = rel.fetchall()
    zero = Decimal("0.00")
    r = dict(zip(rel.columns, rows[0])) if rows else dict(
        eligible_sales=0, volume=zero, rate=None, subsidy_uncapped=zero, cap=None, target=zero)
    by_reason, excluded, excluded_total = _exclusions(con, run_id, year, 7, "platform_id", platform_id, limit)
    return PlatformExplanation(
        year=year, platform_id=platform_id, run_id=run_id, eligible_sales=int(r["eligible_sales"]),
        volume=r["volume"], rate=r["rate"], subsidy_uncapped=r["subsidy_uncapped"], cap=r["cap"],
        target=r["target"], ledger_balance=_balance(con, year, 7, platform_id, ""),
        excluded_by_reason=by_reason, excluded=excluded, excluded_total=excluded_total,
    )
