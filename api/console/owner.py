"""Owner pages: per year, each own dataset with callers against the threshold, caller groups and merge
paths, amounts, exclusions by reason, monthly revenue, provisional flag; one dataset's page; statements
(the lifecycle statement's figures, ``settlement.lifecycle.statement``).

The main page is bounded (issue 12: the heaviest owner's page was 2.4 MB, and its size was the cost of every
hit): per dataset the first ``GROUPS_SHOWN`` caller groups with at most ``BUYERS_SHOWN`` buyers each and the
first ``EXCLUDED_SHOWN`` excluded trades (counts by reason are all of them), each with "and K more" linking
to the dataset page, which shows everything; ``DATASETS_PER_PAGE`` dataset cards per page.

Every dataset passes ``settlement.access.scope.visible_dataset`` (as `GET /v1/datasets/{id}/status`)
before ``settlement.explain.explain_dataset`` reads it: another owner's dataset is a 404 page like a
missing one. Computes no rule. Must not import the other page modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.console import queries, statement
from api.console.web import (Viewer, cached_page, console_state, data_version, error_page, page, to_login,
                             viewer, year_arg)
from api.state import get_state
from settlement import explain
from settlement.access import scope as access
from settlement.access.scope import Scope
from settlement.core.errors import UserError
from settlement.core.params import load_params
from settlement.lifecycle import statement as lifecycle_statement

router = APIRouter(include_in_schema=False)


GROUPS_SHOWN = 10  # caller groups per dataset on the main page, counted groups first
BUYERS_SHOWN = 5  # buyers per caller group there
EXCLUDED_SHOWN = 5  # excluded trades listed per dataset there (explain_dataset reads only these)
DATASETS_PER_PAGE = 20  # dataset cards per main page (?page=N); the total and the chart cover all


@dataclass(frozen=True)
class GroupShown:
    number: int  # its place among the dataset's groups, counted first (the same on both pages)
    group: explain.CallerGroup
    buyers: tuple[tuple[str, int, Decimal], ...]  # the first ones shown
    merge_paths: tuple[str, ...]  # the paths of the buyers shown (path i: buyers[i + 1] joins buyers[0])
    more_buyers: int


@dataclass(frozen=True)
class DatasetCard:
    dataset_id: str
    name: str
    x: explain.DatasetExplanation  # on the main page without its groups (the card holds those it shows)
    paid: Decimal
    groups: tuple[GroupShown, ...] = ()
    more_groups: int = 0
    bounded: bool = False  # the main page's card: "and K more" link to the dataset page


def shown_groups(groups: tuple[explain.CallerGroup, ...], first: int | None, buyers: int | None
                 ) -> tuple[tuple[GroupShown, ...], int]:
    """Counted groups first, each side in explain's order; the first ``first`` groups with their first
    ``buyers`` buyers (None: all), and how many groups are left out."""
    ordered = explain.counted_first(groups)
    cut = ordered if first is None else ordered[:first]
    paths_end = None if buyers is None else max(0, buyers - 1)
    shown = tuple(GroupShown(i, g, g.buyers[:buyers], g.merge_paths[:paths_end], len(g.buyers[buyers:]) if buyers
                             is not None else 0) for i, g in enumerate(cut, start=1))
    return shown, len(ordered) - len(cut)


def make_card(dataset_id: str, name: str, x: explain.DatasetExplanation, paid: Decimal, *, bounded: bool
              ) -> DatasetCard:
    """A dataset's card: bounded for the main page (and holding only the groups it shows, since the page
    data is cached), complete for the dataset page."""
    if not bounded:
        groups, more = shown_groups(x.groups, None, None)
        return DatasetCard(dataset_id, name, x, paid, groups, more, False)
    groups, more = shown_groups(x.groups, GROUPS_SHOWN, BUYERS_SHOWN)
    return DatasetCard(dataset_id, name, replace(x, groups=()), paid, groups, more, True)


@dataclass(frozen=True)
class OwnerView:
    year: int | None
    years: list[int]
    cards: list[DatasetCard]
    no_run: bool
    total_payable: Decimal
    provisional: tuple[int, int] | None
    chart: dict
    dataset_names: dict[str, str]
    platform_names: dict[str, str]


def _card(con, scope: Scope, dataset_id: str, year: int, names: dict, paid: dict, limit: int,
          batch: explain.Batch) -> DatasetCard | None:
    try:
        access.visible_dataset(con, scope, dataset_id)
    except UserError:
        return None
    owner = None if scope.everything else scope.scope_id
    # no merge paths here: a card's paths are added when its page is shown (``_page_paths``)
    x = explain.explain_dataset(con, dataset_id, year, limit=limit, owner_id=owner, paths_per_group=0, batch=batch)
    return make_card(dataset_id, names.get(dataset_id, ""), x, paid.get((6, dataset_id), Decimal("0.00")),
                     bounded=True)


def owner_view(con: duckdb.DuckDBPyConnection, scope: Scope, year_req: int | None,
               limit: int = EXCLUDED_SHOWN) -> OwnerView:
    years = queries.run_years(con)
    year = year_req if year_req is not None else queries.default_year(con, years, owner_id=scope.scope_id)
    if year is None or queries.last_run(con, year) is None:
        return OwnerView(year, years, [], True, Decimal("0.00"), None, {}, {}, {})
    ids = queries.owner_dataset_ids(con, scope.scope_id, year)
    ds_names = queries.dataset_names(con, ids)  # the page's own names: a cached view never holds the registry
    paid = queries.paid_by_key(con, year, scope.scope_id)
    # the cards' excluded trades, buyers and year graph read once for all (per card: 265 s at 10M trades)
    together = explain.batch(con, ids, year, limit)
    cards = [c for c in (_card(con, scope, d, year, ds_names, paid, limit, together) for d in ids) if c is not None]
    pf_names = queries.platform_names(con, sorted({e.platform_id for c in cards for e in c.x.excluded}))
    visible = [c.dataset_id for c in cards]
    total = sum((Decimal(c.x.payable) for c in cards), Decimal("0.00"))
    if cards and cards[0].x.owner_cap is not None:
        total = min(Decimal(cards[0].x.owner_payable_total), Decimal(cards[0].x.owner_cap))
    chart = queries.monthly_revenue(con, year, visible, scope.scope_id) if visible else {}
    if chart:
        chart["series"] = {f"{ds_names.get(k, '')} {k}".strip(): v for k, v in chart["series"].items()}
    prov = queries.provisional(con, year, dataset_ids=visible) if visible else None
    return OwnerView(year, years, cards, False, total, prov, chart, ds_names, pf_names)


def _computed_view(request: Request, scope: Scope, year: int | None) -> Callable[[], OwnerView]:
    state = get_state(request)

    def compute() -> OwnerView:
        cur = state.cursor()  # its own cursor: reads run beside other sessions' (no shared lock)
        try:
            return owner_view(cur, scope, year)
        finally:
            cur.close()
    return compute


def _page_paths(request: Request, cards: list[DatasetCard], year: int) -> Callable[[], list[DatasetCard]]:
    """The cards of one page with the merge paths of the buyers they show (path i: buyers[i + 1] joins
    buyers[0]; GROUPS_SHOWN groups per card, within explain's MERGE_PATHS_MAX). Computed for the page shown,
    not for every card of the owner: on 10M trades the 114 cards' 1,307 paths were 17 s of the first page."""
    state = get_state(request)

    def compute() -> list[DatasetCard]:
        cur, params, merges = state.cursor(), load_params(), explain.YearMerges()
        try:
            return [replace(card, groups=tuple(
                replace(g, merge_paths=explain.merge_paths(cur, year, params, [b[0] for b in g.buyers], merges))
                for g in card.groups)) for card in cards]
        finally:
            cur.close()
    return compute


def _view_key(request: Request, who: Viewer, year: int | None) -> tuple:
    return ("owner", data_version(request), who.scope, year)


async def owner_home(request: Request, who: Viewer):
    """A cache hit costs no query, no thread hop and no template: the body of this data version, language
    and URL, with the session's CSRF token put in."""
    year = year_arg(request, [], None)
    key = _view_key(request, who, year)
    views = console_state(request).views
    view = await views.get(key, _computed_view(request, who.scope, year))
    cards, number, pages = cards_page(view.cards, request.query_params.get("page", ""))
    if cards:
        shown = tuple(c.dataset_id for c in cards)  # the page's cards, not its number: pages may be resized
        cards = await views.get((*key, "paths", shown), _page_paths(request, cards, view.year))
    return cached_page(request, "owner.html", key, who, v=view, cards=cards, page_no=number, pages=pages,
                       per_page=DATASETS_PER_PAGE)


def cards_page(cards: list[DatasetCard], raw: str) -> tuple[list[DatasetCard], int, int]:
    """The cards of page ``raw`` (1 when absent or out of range), its number and the number of pages."""
    pages = max(1, -(-len(cards) // DATASETS_PER_PAGE))
    number = int(raw) if raw.isdigit() and 1 <= int(raw) <= pages else 1
    return cards[(number - 1) * DATASETS_PER_PAGE:number * DATASETS_PER_PAGE], number, pages


@router.get("/datasets/{dataset_id}")
def dataset_page(request: Request, dataset_id: str):
    who = viewer(request)
    if who is None:
        return to_login(request)
    if who.scope.role not in ("owner", "regulator"):
        return error_page(request, 403, "this page is for dataset owners and regulators", who)
    state = get_state(request)
    cur = state.cursor()
    try:
        years = queries.run_years(cur)
        year = year_arg(request, years, None)
        ds_names, pf_names = queries.names(cur)
        try:
            access.visible_dataset(cur, who.scope, dataset_id)
            x = explain.explain_dataset(cur, dataset_id, year, limit=500,
                                        owner_id=None if who.scope.everything else who.scope.scope_id)
        except UserError as exc:
            return error_page(request, 404, exc.message, who)
        except explain.NoRun as exc:
            return error_page(request, 404, str(exc), who)
        paid = queries.paid_by_key(cur, year, x.owner_id) if x.owner_id else {}
        card = make_card(dataset_id, ds_names.get(dataset_id, ""), x, paid.get((6, dataset_id), Decimal("0.00")),
                         bounded=False)
        return page(request, "dataset.html", who=who, c=card, year=year, years=years,
                    dataset_names=ds_names, platform_names=pf_names)
    finally:
        cur.close()


@router.get("/statement.{fmt}")
def statement_download(request: Request, fmt: str):
    """The owner's statement of a year, serialised from the lifecycle statement (one source for every
    surface: the figures `settle statement` and `GET /v1/statements/{id}` show)."""
    who = viewer(request)
    if who is None:
        return to_login(request)
    if who.scope.role != "owner":
        return error_page(request, 403, "statements are for dataset owners", who)
    if fmt not in ("csv", "xlsx"):
        return error_page(request, 404, f"no statement format {fmt!r}", who)
    owner_id = who.scope.scope_id
    cur = get_state(request).cursor()
    try:
        year = year_arg(request, [], None) or queries.default_year(cur, queries.run_years(cur), owner_id=owner_id)
        if year is None or queries.last_run(cur, year) is None:
            return error_page(request, 404, f"no settlement run for {year}", who)
        st = lifecycle_statement.statement(cur, year, owner_id, reader="owner")  # its own figures, no flags
    finally:
        cur.close()
    name = f"statement-{owner_id}-{year}.{fmt}"
    body, media = (statement.to_csv(st), "text/csv; charset=utf-8") if fmt == "csv" else (
        statement.to_xlsx(st), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
