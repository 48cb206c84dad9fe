"""CLI edge for the integrity flags (issue 13, CONTRACT "Integrity flags"): `settle flags --year Y
[--format table|csv|json]` and `settle flags review FLAG_ID --by NAME --outcome cleared|confirmed
--comment TEXT`.

Parses, calls ``settlement.integrity.flags`` (on the file, or through `settle serve`'s `GET /v1/flags` and
`POST /v1/flags/{id}/review`: ``settlement.cli.dispatch``) and prints (CSV/JSON through ``settlement.cli.render``;
the flags table is built here because ``render`` belongs to another change — move it there when convenient).
Holds no rules; an unknown flag or a year without a run comes back from the core as a ``UserError`` (exit 1),
or from the server with the same message.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from settlement.cli import render
from settlement.cli._app import DbOption, choices, fail
from settlement.cli.dispatch import api, dispatch
from settlement.cli.render import PrintFormat

try:  # typer's own click copy (see settlement.cli._app)
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

CSV_COLUMNS = ("flag_id", "year", "run_id", "code", "dataset_id", "platform_id", "parties", "evidence_trade_ids",
               "detail", "review", "reviewed_by", "review_comment")

flags_app = typer.Typer(
    invoke_without_command=True, no_args_is_help=False,
    help="Integrity flags of a settled year: patterns a reviewer should see before approving (issue 13).",
)


Outcome = choices("Outcome", "cleared", "confirmed")


@flags_app.callback()
def flags_cmd(
    ctx: typer.Context,
    year: Annotated[int | None, typer.Option("--year", help="Settlement year")] = None,
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    db: DbOption = None,
) -> None:
    """Print the flags of the year's latest run, with their latest review."""
    if ctx.invoked_subcommand is not None:
        return
    if year is None:
        raise click_exceptions.UsageError("settle flags needs --year Y (or a subcommand: review)")
    from settlement.integrity.flags import Flag, year_flags

    flags = dispatch(db, remote=api("GET", "/v1/flags", params={"year": year}, shape=list[Flag]),
                     local=lambda con: year_flags(con, year), read_only=True)
    records = [f.record() for f in flags]
    if fmt is PrintFormat.csv:
        typer.echo(render.records_csv(records, CSV_COLUMNS), nl=False)
    elif fmt is PrintFormat.json:
        typer.echo(render.as_json(records))
    else:
        render.console().print(_table(year, flags))


def _table(year: int, flags) -> Table | str:
    if not flags:
        return f"year {year}: no integrity flags"
    unreviewed = sum(1 for f in flags if f.review is None)
    table = Table(title=f"year {year}: {len(flags)} integrity flag(s), {unreviewed} unreviewed (run {flags[0].run_id})")
    for col in ("flag", "code", "dataset", "platform", "parties", "review", "detail"):
        table.add_column(col, overflow="fold")
    for f in flags:
        table.add_row(str(f.flag_id), f.code, f.dataset_id or "", f.platform_id or "", "; ".join(f.parties),
                      f"{f.review} by {f.reviewed_by}" if f.review else "-", f.detail)
    return table


@flags_app.command("review")
def review_cmd(
    flag_id: Annotated[int, typer.Argument(help="flag id (settle flags --year Y)")],
    by: Annotated[str, typer.Option("--by", help="reviewer's name")],
    outcome: Annotated[Outcome, typer.Option("--outcome", help="cleared | confirmed")],
    comment: Annotated[str, typer.Option("--comment", help="why")],
    db: DbOption = None,
) -> None:
    """Record a reviewer's decision on a flag (append-only; the latest review counts)."""
    from settlement.integrity.flags import Review, review_flag

    # Said before the server is asked too: it names the reviewer from --by and takes no blank comment.
    if not by.strip():
        fail("--by must name the reviewer")
    if not comment.strip():
        fail("--comment must say why")
    r = dispatch(db, remote=api("POST", f"/v1/flags/{flag_id}/review", by=by, shape=Review,
                                json={"outcome": outcome.value, "comment": comment}),
                 local=lambda con: review_flag(con, flag_id, by=by, outcome=outcome.value, comment=comment))
    typer.echo(f"flag {r.flag_id} {r.outcome} by {r.reviewed_by} at {r.reviewed_at.isoformat(timespec='seconds')} "
               f"(review {r.review_id})")
