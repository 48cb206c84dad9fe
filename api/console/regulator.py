"""Regulator pages: the overview of a year (totals per clause, beneficiaries, cap hits, excluded volume by
reason, integrity flags, a chart), settlement runs with their deltas and review state, ledger
verification, token management (``settlement.access.tokens``, as `/v1/tokens`).

Read-only on the lifecycle (``run_states``) and integrity flags (``integrity_flags``): those are other
modules' to change. Every page here is the regulator's (others get a 403 page, like the API's ``require``).
Must not import the other page modules.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from decimal import Decimal

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from api.console import i18n, queries
from api.console.web import Viewer, check_csrf, console_state, error_page, lang_of, page, to_login, viewer, year_arg
from api.state import get_state
from ledgers import ledger
from settlement.access import scope as access
from settlement.access import tokens

router = APIRouter(include_in_schema=False)
ZERO = Decimal("0.00")


def regulator_only(request: Request) -> tuple[Viewer | None, object]:
    who = viewer(request)
    if who is None:
        return None, to_login(request)
    if who.scope.role != "regulator":
        return None, error_page(request, 403, f"this page needs a regulator token; yours is {who.scope.role}", who)
    return who, None


async def _regulator_form(request: Request) -> tuple[Viewer | None, object]:
    """(viewer, form) of a regulator's POST carrying its session's CSRF token, else (None, the refusal)."""
    who, refused = regulator_only(request)
    if who is None:
        return None, refused
    form = await request.form()
    if not check_csrf(who, form.get("csrf")):
        return None, error_page(request, 403, i18n.Tr(lang_of(request))("bad_csrf"), who)
    return who, form


def _flags(con: duckdb.DuckDBPyConnection, run_id: int) -> list[tuple[str, int]] | None:
    try:
        return [(r[0], int(r[1])) for r in con.execute(
            "SELECT code, count(*) FROM integrity_flags WHERE run_id = ? GROUP BY 1 ORDER BY 1", [run_id]).fetchall()]
    except duckdb.CatalogException:  # integrity flags not migrated in this store
        return None


def _totals_chart(con: duckdb.DuckDBPyConnection) -> dict:
    rows = con.execute("SELECT year, clause, sum(amount) FROM ledger_entries GROUP BY ALL ORDER BY ALL").fetchall()
    years = sorted({r[0] for r in rows})
    series: dict[str, list[str]] = defaultdict(lambda: ["0.00"] * len(years))
    for year, clause, amount in rows:
        series[f"clause {clause}"][years.index(year)] = str(amount)
    return {"kind": "bar", "stack": True, "x": [str(y) for y in years], "series": dict(series)}


def overview(con: duckdb.DuckDBPyConnection, who: Viewer, year: int | None) -> dict:
    years = queries.run_years(con)
    year = year if year is not None else (years[0] if years else None)
    view = {"years": years, "year": year, "run": None, "totals": [], "beneficiaries": 0, "cap_hits": [],
            "excluded": [], "flags": None, "chart": _totals_chart(con), "provisional": None}
    if year is None or queries.last_run(con, year) is None:
        return view
    payouts = queries_payouts(con, who, year)
    per_clause: dict[int, list] = {}
    for p in payouts:
        entry = per_clause.setdefault(int(p["clause"]), [ZERO, set()])
        entry[0] += Decimal(p["amount"])
        entry[1].add(p["beneficiary_id"])
    view["totals"] = [(c, v[0], len(v[1])) for c, v in sorted(per_clause.items())]
    view["beneficiaries"] = len({p["beneficiary_id"] for p in payouts})
    run_id = queries.last_run(con, year)[0]
    view["run"] = run_id
    source = con.execute("SELECT source_run_id FROM run_explanation_source WHERE run_id = ?", [run_id]).fetchall()
    src = source[0][0] if source else run_id
    view["cap_hits"] = con.execute(
        "SELECT 6, owner_id, any_value(owner_payable_total), any_value(owner_cap) FROM run_dataset_results "
        "WHERE run_id = $r AND capped GROUP BY owner_id UNION ALL "
        "SELECT 7, platform_id, subsidy_uncapped, cap FROM run_platform_results "
        "WHERE run_id = $r AND cap IS NOT NULL AND subsidy_uncapped > cap ORDER BY 1, 2", dict(r=src)).fetchall()
    view["excluded"] = queries.excluded_volume(con, src)
    view["flags"] = _flags(con, src)
    view["provisional"] = queries.provisional(con, year)
    return view


def queries_payouts(con, who: Viewer, year: int) -> list[dict]:
    """The year's payouts through the one scope function (a regulator's scope: all rows)."""
    return access.visible_payouts(con, who.scope, year).to_dicts()


def regulator_home(request: Request, who: Viewer):
    state = get_state(request)
    with closing(state.cursor()) as cur:
        year = year_arg(request, [], None)
        key = ("regulator", queries.store_version(cur, state.generation), year)
        cache = console_state(request).cache
        view = cache.get(key)
        if view is None:
            view = overview(cur, who, year)
            view["dataset_names"], view["platform_names"] = queries.names(cur)
            cache.put(key, view)
    return page(request, "regulator.html", who=who, v=view)


def _runs(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rel = con.sql(
        "SELECT r.run_id, r.year, r.started_at, r.started_by, r.entries_appended, "
        "(SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.run_id = r.run_id AND e.clause = 6) AS delta6, "
        "(SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.run_id = r.run_id AND e.clause = 7) AS delta7 "
        "FROM settlement_runs r ORDER BY r.run_id DESC")
    runs = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
    try:
        states = dict(con.execute("SELECT run_id, state FROM run_states").fetchall())
    except duckdb.CatalogException:  # lifecycle records not migrated in this store
        states = {}
    for r in runs:
        r["state"] = states.get(r["run_id"])
    return runs


@router.get("/runs")
def runs_page(request: Request):
    who, refused = regulator_only(request)
    if who is None:
        return refused
    with closing(get_state(request).cursor()) as cur:
        runs = _runs(cur)
        verified = ledger.verify(cur) if request.query_params.get("verify") else None
    return page(request, "runs.html", who=who, runs=runs, verified=verified)


@router.get("/tokens")
def tokens_page(request: Request, created: dict | None = None, message: str | None = None, status: int = 200):
    who, refused = regulator_only(request)
    if who is None:
        return refused
    with closing(get_state(request).cursor()) as cur:
        listed = tokens.list_tokens(cur)
        ds_names, pf_names = queries.names(cur)
    return page(request, "tokens.html", status=status, who=who, tokens=listed, created=created, message=message,
                platform_names=pf_names)


@router.post("/tokens")
async def create_token(request: Request):
    who, form = await _regulator_form(request)
    if who is None:
        return form
    role, scope_id = str(form.get("role") or ""), str(form.get("scope_id") or "").strip() or None
    label = str(form.get("label") or "").strip() or None
    problem = tokens.token_request_problem(role, scope_id)
    if problem:
        return tokens_page(request, message=problem, status=422)
    state = get_state(request)
    with closing(state.cursor()) as cur:
        made = tokens.create_token(cur, role, scope_id=scope_id, label=label, created_by=who.token.who)
    state.token_table.invalidate()
    return tokens_page(request, created={"token": made.token, "token_id": made.info.token_id}, status=201)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str):
    who, refused = await _regulator_form(request)
    if who is None:
        return refused
    state = get_state(request)
    with closing(state.cursor()) as cur:
        info = tokens.revoke_token(cur, token_id, by=who.token.who)
    if info is None:
        return error_page(request, 404, f"no token with id {token_id!r}", who)
    state.token_table.invalidate()
    return RedirectResponse("/tokens", status_code=303)
