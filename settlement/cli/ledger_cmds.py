"""CLI edge for the ledger: `settle ledger verify`, `settle ledger export`, `settle payouts` (CONTRACT).

Parses, calls ``ledgers.ledger`` (on the file, or through `settle serve`'s routes: ``settlement.cli.dispatch``)
and prints with ``settlement.cli.render``; holds no rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from ledgers import ledger
from settlement.cli import render
from settlement.cli._app import DbOption, choices, fail, parent_must_exist
from settlement.cli.dispatch import dispatch
from settlement.cli.remote import Server, decode, payouts_frame
from settlement.cli.render import FileFormat, PrintFormat

ledger_app = typer.Typer(no_args_is_help=True, help="The append-only settlement ledger (P13).")


@ledger_app.command("verify")
def ledger_verify(
    db: DbOption = None,
    anchor: Annotated[list[str] | None, typer.Option(
        "--anchor", help="N:R:E:HASH printed by an earlier verify (or an entry hash): fail unless the chain "
                         "still holds it at its position")] = None,
) -> None:
    """Recompute the hash chain, the runs' chain, the input digests and the approval signatures, re-derive
    every key; exit 1 naming the first bad entry. Prints the head anchor to keep outside the store."""
    def remote(server: Server) -> ledger.VerifyResult:
        result = decode(ledger.VerifyResult, server.json("GET", "/v1/ledger/verify"))
        if anchor:  # the server's verify takes no anchors
            fail("--anchor is checked on the store file: stop `settle serve` or run verify on a copy")
        return result

    result = dispatch(db, remote=remote, local=lambda con: ledger.verify(con, anchors=tuple(anchor or ())))
    if not result.ok:
        where = f"entry {result.first_bad_entry_id}: " if result.first_bad_entry_id is not None else ""
        fail(f"ledger verification FAILED after checking {result.entries_checked} entries: "
             f"{'' if result.message.startswith('entry') else where}{result.message}")
    typer.echo(result.message)
    if result.anchor:  # N entries : R runs : E records : hash (ledgers.runchain); publish it, keep it
        typer.echo(f"head {result.anchor} ({result.entries_checked} entries)")


@ledger_app.command("export")
def ledger_export(
    fmt: Annotated[FileFormat, typer.Option("--format", help="csv | parquet")],
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    db: DbOption = None,
) -> None:
    """Write every ledger entry, in chain order, to a CSV or Parquet file."""
    parent_must_exist(out)

    def remote(server: Server) -> int:  # the server writes the file; its bytes are saved here
        answer = server.call("GET", "/v1/ledger/export", params={"format": fmt.value})
        out.write_bytes(answer.content)
        return int(answer.headers["X-Ledger-Entries"])

    n = dispatch(db, remote=remote, local=lambda con: ledger.export(con, fmt.value, out))
    typer.echo(f"exported {n} ledger entries to {out}")


PayoutState = choices("PayoutState", "proposed", "approved", "disbursed")


def payouts_cmd(
    year: Annotated[int | None, typer.Option("--year", help="settlement year (default: all)")] = None,
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    state: Annotated[PayoutState | None, typer.Option(
        "--state", help="proposed | approved | disbursed (default: the entitlement, every run not rejected)")] = None,
    db: DbOption = None,
) -> None:
    """Payouts: one row per key with a non-zero sum of entries of runs not rejected (CONTRACT), or of the
    entries in one state (--state; disbursed: of the payment instructions)."""
    chosen = state.value if state else None

    def remote(server: Server) -> tuple[str, pl.DataFrame]:  # the exact CSV bytes; the other formats from its rows
        text = server.call("GET", "/v1/payouts.csv", params={"year": year, "state": chosen}).text
        return text, payouts_frame(text)

    def local(con) -> tuple[str, pl.DataFrame]:
        df = ledger.payouts(con, year, state=chosen)
        return ledger.payouts_csv(df), df

    text, df = dispatch(db, remote=remote, local=local)
    if fmt is PrintFormat.csv:
        typer.echo(text, nl=False)
    elif fmt is PrintFormat.json:
        typer.echo(render.as_json(ledger.payouts_records(df)))
    else:
        typer.echo(render.payouts_table(df))
