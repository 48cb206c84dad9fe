"""CLI edge for settlement: `settle run [--year Y]`, `settle explain dataset|platform ID --year Y`,
`settle demo [--db]` (CONTRACT "Command line").

Parses, calls ``settlement.run`` / ``settlement.explain`` / ``settlement.tools.demo`` and formats with rich;
holds no rules.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledgers import ledger
from settlement.core import store
from settlement.cli._app import DbOption, app, current_user, fail, opened_store

explain_app = typer.Typer(no_args_is_help=True, help="Why a dataset or platform gets what it gets (P10-P12).")
app.add_typer(explain_app, name="explain")

YearOption = Annotated[int | None, typer.Option("--year", help="Settlement year (local calendar year, P3)")]


def _params():
    from settlement.core.params import load_params  # the packaged, cited parameter file

    return load_params()


def _money(x: Decimal | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _print_run(console: Console, result: ledger.RunResult) -> None:
    if not result.appended:
        console.print(f"year {result.year}: run {result.run_id} appended nothing (targets unchanged)")
        return
    table = Table(title=f"year {result.year}: run {result.run_id} appended {len(result.appended)} entries")
    for col in ("entry", "clause", "beneficiary_id", "dataset_id", "kind"):
        table.add_column(col)
    table.add_column("amount", justify="right")
    for e in result.appended:
        table.add_row(str(e.entry_id), str(e.clause), e.beneficiary_id, e.dataset_id, e.kind, f"{e.amount:.2f}")
    table.add_row("", "", "", "", "total", f"{result.total_appended:.2f}")
    console.print(table)


@app.command("run")
def run_cmd(year: YearOption = None, db: DbOption = None) -> None:
    """Settle one year (or every year with in-scope trades or ledger entries) and print what was appended."""
    from settlement.run import run_settlement, settle_all

    params = _params()
    console = Console(width=160)
    with opened_store(db) as con:
        if year is not None:
            if year < 1900 or year > 9999:
                fail(f"--year {year} is not a calendar year")
            results = [run_settlement(con, year, params=params)]
        else:
            results = settle_all(con, params=params)
    if not results:
        console.print("nothing to settle: no year has in-scope trades or ledger entries")
    for r in results:
        _print_run(console, r)


def _excluded_table(title: str, by_reason: dict[str, int], excluded, total: int) -> Table:
    table = Table(title=f"{title}: {total} trade(s) earn nothing "
                        + (", ".join(f"{k} {v}" for k, v in by_reason.items()) if by_reason else ""))
    for col in ("platform_id", "trade_id", "kind", "reason", "detail"):
        table.add_column(col, overflow="fold")
    for x in excluded:
        table.add_row(x.platform_id, x.trade_id, x.kind, x.reason, x.detail or "")
    if total > len(excluded):
        table.add_row("...", f"{total - len(excluded)} more", "", "", "query the exclusions table")
    return table


@explain_app.command("dataset")
def explain_dataset_cmd(
    dataset_id: Annotated[str, typer.Argument(help="dataset id")],
    year: Annotated[int, typer.Option("--year", help="Settlement year")],
    limit: Annotated[int, typer.Option("--limit", help="excluded trades to list")] = 50,
    db: DbOption = None,
) -> None:
    """Clause 6 for one dataset: caller groups, base, gross, prior awards, payable, cap share, exclusions."""
    from settlement.explain import NoRun, explain_dataset

    with opened_store(db, read_only=False) as con:
        try:
            x = explain_dataset(con, dataset_id.strip(), year, limit=limit)
        except NoRun as exc:
            fail(str(exc))
    console = Console(width=160)
    thr = "-" if x.caller_threshold is None else str(x.caller_threshold)
    console.print(f"[bold]dataset {x.dataset_id}[/bold], year {x.year} (run {x.run_id}), owner {x.owner_id or '(not in registry)'}")
    console.print(
        f"unrelated caller groups: {x.caller_groups} (needs more than {thr}, P10.4) -> "
        + ("[green]qualifies[/green]" if x.qualifies else f"[red]does not qualify[/red]: {x.callers_missing} more needed"))
    console.print(_summary_table(
        ("eligible sales (P10.2)", str(x.eligible_sales)),
        ("base = Σ net of eligible sales (P10.5)", _money(x.base)),
        (f"gross = round({'-' if x.rate is None else f'{x.rate.normalize():%}'} × base) (P10.5)", _money(x.gross)),
        ("prior awards (P10.6)", _money(x.prior_awards)),
        ("payable = max(0, gross − prior) (P10.6)", _money(x.payable)),
        (f"owner's payable this year / cap {_money(x.owner_cap)} (P10.7)", _money(x.owner_payable_total)),
        ("cap share (P10.7)" if x.capped else "target (no cap applied)", _money(x.target)),
        ("paid in the ledger so far", _money(x.ledger_balance)),
    ))
    groups = Table(title="caller groups (year-graph affiliate groups, P8/P10.3)")
    for col in ("group", "counted", "buyer_id", "eligible sales"):
        groups.add_column(col)
    groups.add_column("net", justify="right")
    for g in x.groups:
        for i, (buyer, n, net) in enumerate(g.buyers):
            groups.add_row(g.group_id if i == 0 else "", ("yes" if g.counted else "no") if i == 0 else "",
                           buyer, str(n), _money(net))
    console.print(groups)
    console.print(_excluded_table("clause 6", x.excluded_by_reason, x.excluded, x.excluded_total))


def _summary_table(*rows: tuple[str, str]) -> Table:
    """The label / amount table both explanations open with."""
    summary = Table(show_header=False)
    summary.add_column("what")
    summary.add_column("amount", justify="right")
    for label, value in rows:
        summary.add_row(label, value)
    return summary


@explain_app.command("platform")
def explain_platform_cmd(
    platform_id: Annotated[str, typer.Argument(help="platform credit code")],
    year: Annotated[int, typer.Option("--year", help="Settlement year")],
    limit: Annotated[int, typer.Option("--limit", help="excluded trades to list")] = 50,
    db: DbOption = None,
) -> None:
    """Clause 7 for one platform: volume of eligible sales, 1 %, cap, exclusions."""
    from settlement.explain import NoRun, explain_platform

    with opened_store(db) as con:
        try:
            x = explain_platform(con, platform_id.strip().upper(), year, limit=limit)
        except NoRun as exc:
            fail(str(exc))
    console = Console(width=160)
    console.print(f"[bold]platform {x.platform_id}[/bold], year {x.year} (run {x.run_id})")
    console.print(_summary_table(
        ("eligible sales (P11.2)", str(x.eligible_sales)),
        ("volume = Σ net of eligible sales (P11.3)", _money(x.volume)),
        (f"subsidy = round({'-' if x.rate is None else f'{x.rate.normalize():%}'} × volume)", _money(x.subsidy_uncapped)),
        ("cap (P11.3)", _money(x.cap)),
        ("target = min(subsidy, cap)", _money(x.target)),
        ("paid in the ledger so far", _money(x.ledger_balance)),
    ))
    console.print(_excluded_table("clause 7", x.excluded_by_reason, x.excluded, x.excluded_total))


def payouts_table(df) -> Table:
    """Payouts per year with a total per year and a grand total (rich)."""
    table = Table(title="Payouts (Σ ledger entries per key, CONTRACT)")
    for col in ("year", "clause", "beneficiary_id", "dataset_id"):
        table.add_column(col)
    table.add_column("amount (CNY)", justify="right")
    per_year: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    rows = list(df.iter_rows())
    for i, (year, clause, beneficiary, dataset, amount) in enumerate(rows):
        table.add_row(str(year), str(clause), beneficiary, dataset, f"{amount:,.2f}")
        per_year[year] += amount
        if i + 1 == len(rows) or rows[i + 1][0] != year:
            table.add_row("", "", f"[bold]total {year}[/bold]", "", f"[bold]{per_year[year]:,.2f}[/bold]",
                          end_section=True)
    table.add_row("", "", "[bold]grand total[/bold]", "", f"[bold]{sum(per_year.values(), Decimal('0.00')):,.2f}[/bold]")
    return table


@app.command("demo")
def demo_cmd(
    sample: Annotated[Path, typer.Option("--sample", help="folder of sample files")] = Path("sample_trades"),
    db: DbOption = None,
) -> None:
    """Load sample_trades/ into its own database (unless --db), settle every year, print the payouts."""
    from settlement.tools.demo import load_and_settle

    if not sample.is_dir():
        fail(f"no sample folder at {sample}: run from the project root or pass --sample")
    path = Path(db) if db is not None else Path(tempfile.mkdtemp(prefix="settle-demo-")) / "demo.duckdb"
    store.init(path)
    console = Console(width=160)
    with opened_store(path) as con:
        result = load_and_settle(con, sample, params=_params(), by=current_user())
        for r in result.loads:
            console.print(f"loaded {r.kind}: {r.file_name} ({r.status}, {r.rows_loaded} rows)")
        for u in result.uploads:
            console.print(f"ingested {u.file_name}: {u.status}, {u.rows_stored} stored, {u.rows_duplicate} duplicate, "
                          f"{u.rows_rejected} rejected")
        for run in result.runs:
            console.print(f"settled {run.year}: run {run.run_id}, {len(run.appended)} entries appended")
        df = ledger.payouts(con)
        verified = ledger.verify(con)
    console.print(payouts_table(df))
    console.print(f"ledger verify: {verified.message}")
    console.print(f"database: {path}  (try: settle explain dataset ID --year Y --db {path})")
