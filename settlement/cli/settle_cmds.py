"""CLI edge for settlement: `settle run [--year Y]`, `settle explain dataset|platform ID --year Y`,
`settle demo [--db]` (CONTRACT "Command line").

Parses, calls ``settlement.run`` / ``settlement.explain`` / ``settlement.tools.demo`` and prints with
``settlement.cli.render``; holds no rules. Unknown ids come back from the core as ``UserError`` (exit 1).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ledgers import ledger
from settlement.cli import render
from settlement.cli._app import DbOption, current_user, db_given, fail, opened_store, policy_params
from settlement.cli.dispatch import api, dispatch
from settlement.cli.remote import Server, decode
from settlement.core import store
from settlement.core.identifiers import normalise_code

explain_app = typer.Typer(no_args_is_help=True, help="Why a dataset or platform gets what it gets (P10-P12).")

YearOption = Annotated[int | None, typer.Option("--year", help="Settlement year (local calendar year, P3)")]


def run_cmd(
    year: YearOption = None,
    by: Annotated[str | None, typer.Option("--by", help="who starts the run (default: cli:<OS user>)")] = None,
    db: DbOption = None,
) -> None:
    """Settle one year (or every year with in-scope trades or ledger entries) and print what was appended."""
    from settlement.run import Settled, settle_years

    if year is not None and (year < 1900 or year > 9999):
        fail(f"--year {year} is not a calendar year")
    actor = by or current_user()

    def remote(server: Server) -> Settled:
        answer = server.json("POST", "/v1/settlements", params={"year": year}, by=actor)
        window = answer["no_run"]
        return Settled(decode(list[ledger.RunResult], answer["runs"]),
                       (window["start"], window["end"]) if window else None)

    def local(con) -> Settled:
        return settle_years(con, year, params=policy_params(), started_by=actor)

    settled = dispatch(db, remote=remote, local=local)
    if settled.outside_window:
        start, end = settled.outside_window
        typer.echo(f"warning: {year} has no in-scope day (policy window {start} to {end}, P2): "
                   "nothing settled, no run recorded", err=True)
        return
    if not settled.runs:
        typer.echo("nothing to settle: no year has in-scope trades or ledger entries")
    for r in settled.runs:
        typer.echo(render.run_table(r))


@explain_app.command("dataset")
def explain_dataset_cmd(
    dataset_id: Annotated[str, typer.Argument(help="dataset id")],
    year: Annotated[int, typer.Option("--year", help="Settlement year")],
    owner: Annotated[str | None, typer.Option("--owner", help="only this owner's result (P10.1 dated ownership)")] = None,
    limit: Annotated[int, typer.Option("--limit", help="excluded trades to list")] = 50,
    db: DbOption = None,
) -> None:
    """Clause 6 for one dataset, per owner of the year: callers, base, gross, prior awards, payable, cap share."""
    from settlement.explain import DatasetExplanation, NoRun, explain_dataset_owners

    def local(con) -> list[DatasetExplanation]:
        try:
            return explain_dataset_owners(con, dataset_id.strip(), year, limit=limit, params=policy_params(),
                                          owner_id=normalise_code(owner) if owner else None)
        except NoRun as exc:
            fail(str(exc))

    found = dispatch(db, local=local, remote=api("GET", f"/v1/explain/dataset/{dataset_id.strip()}",
                                                 params={"year": year, "owner": owner, "limit": limit},
                                                 shape=list[DatasetExplanation]))
    _print_dataset_explanations(found[0], found[1:])


def _print_dataset_explanations(first, others) -> None:
    console = render.console()
    for period in first.periods:
        console.print(f"registration period: owner {period.owner_id} from {period.owner_from or 'the open start'} "
                      f"to {period.owner_until or 'open'} (P10.1)")
    for x in [first, *others]:
        _print_dataset_explanation(console, x)
    console.print(render.excluded_table("clause 6", first.excluded_by_reason, first.excluded, first.excluded_total))


def _print_dataset_explanation(console, x) -> None:
    money = render.money
    thr = "-" if x.caller_threshold is None else str(x.caller_threshold)
    console.print(f"[bold]dataset {x.dataset_id}[/bold], year {x.year} (run {x.run_id}), owner {x.owner_id or '(not in registry)'}")
    console.print(
        f"unrelated caller groups: {x.caller_groups} (needs more than {thr}, P10.4) -> "
        + ("[green]qualifies[/green]" if x.qualifies else f"[red]does not qualify[/red]: {x.callers_missing} more needed"))
    console.print(render.summary_table(x, (
        ("base = Σ net of eligible sales (P10.5)", money(x.base)),
        (f"gross = round({render.percent(x.rate)} × base) (P10.5)", money(x.gross)),
        ("prior awards (P10.6)", money(x.prior_awards)),
        ("payable = this owner's share of max(0, Σ gross − prior) (P10.1, P10.6)", money(x.payable)),
        (f"owner's payable this year / cap {money(x.owner_cap)} (P10.7)", money(x.owner_payable_total)),
        ("cap share (P10.7)" if x.capped else "target (no cap applied)", money(x.target)),
    ), eligible_ref="P10.2"))
    console.print(render.caller_groups_table(x.groups))
    for g in x.groups:
        for path in g.merge_paths:
            console.print(f"  {path}")


@explain_app.command("platform")
def explain_platform_cmd(
    platform_id: Annotated[str, typer.Argument(help="platform credit code")],
    year: Annotated[int, typer.Option("--year", help="Settlement year")],
    limit: Annotated[int, typer.Option("--limit", help="excluded trades to list")] = 50,
    db: DbOption = None,
) -> None:
    """Clause 7 for one platform: volume of eligible sales, 1 %, cap, exclusions."""
    from settlement.explain import NoRun, PlatformExplanation, explain_platform

    def local(con) -> PlatformExplanation:
        try:
            return explain_platform(con, normalise_code(platform_id), year, limit=limit)
        except NoRun as exc:
            fail(str(exc))

    x = dispatch(db, local=local, remote=api("GET", f"/v1/explain/platform/{platform_id.strip()}",
                                             params={"year": year, "limit": limit}, shape=PlatformExplanation))
    money = render.money
    console = render.console()
    console.print(f"[bold]platform {x.platform_id}[/bold], year {x.year} (run {x.run_id})")
    console.print(render.summary_table(x, (
        ("volume = Σ net of eligible sales (P11.3)", money(x.volume)),
        (f"subsidy = round({render.percent(x.rate)} × volume)", money(x.subsidy_uncapped)),
        ("cap (P11.3)", money(x.cap)),
        ("target = min(subsidy, cap)", money(x.target)),
    ), eligible_ref="P11.2"))
    console.print(render.excluded_table("clause 7", x.excluded_by_reason, x.excluded, x.excluded_total))


DEMO_WALK_YEAR = 2024  # the sample year with a cap, prior awards and both clauses


def demo_cmd(
    sample: Annotated[Path, typer.Option("--sample", help="folder of sample files")] = Path("sample_trades"),
    db: DbOption = None,
) -> None:
    """Load sample_trades/ into its own database (unless --db), settle every year, print the payouts."""
    from settlement.lifecycle.walkthrough import walk_year
    from settlement.tools.demo import load_and_settle

    if not sample.is_dir():
        fail(f"no sample folder at {sample}: run from the project root or pass --sample")
    given = db_given(db)
    path = Path(given) if given is not None else Path(tempfile.mkdtemp(prefix="settle-demo-")) / "demo.duckdb"
    store.init(path)
    console = render.console()
    with opened_store(path) as con:
        result = load_and_settle(con, sample, params=policy_params(), by=current_user())
        for r in result.loads:
            console.print(f"loaded {r.kind}: {r.file_name} ({r.status}, {r.rows_loaded} rows)")
        for u in result.uploads:
            console.print(f"ingested {u.file_name}: {u.status}, {u.rows_stored} stored, {u.rows_duplicate} duplicate, "
                          f"{u.rows_rejected} rejected")
        for run in result.runs:
            console.print(f"settled {run.year}: run {run.run_id}, {len(run.appended)} entries appended")
        # issue 11: one year through every state of the lifecycle, then its accounts (computation to payment)
        walk = walk_year(con, DEMO_WALK_YEAR, params=policy_params())
        df = ledger.payouts(con)
        verified = ledger.verify(con)
    typer.echo(render.payouts_table(df))
    console.print(f"lifecycle of {walk.year}: " + "; ".join(walk.steps))
    console.print(render.accounts_table(list(walk.accounts), f"accounts {walk.year} (beneficiary_accounts)"))
    console.print(f"ledger verify: {verified.message}")
    console.print(f"database: {path}  (try: settle explain dataset ID --year Y --db {path})")
