"""CLI edge for the ledger: `settle ledger verify`, `settle ledger export`, `settle payouts` (CONTRACT).

Parses, calls ``ledgers.ledger`` and prints with ``settlement.cli.render``; holds no rules.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ledgers import ledger
from settlement.cli import render
from settlement.cli._app import DbOption, fail, opened_store, server_for
from settlement.cli.remote import decode, payouts_frame
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
    server = server_for(db)
    if server is not None:
        result = decode(ledger.VerifyResult, server.json("GET", "/v1/ledger/verify"))
    else:
        with opened_store(db) as con:
            result = ledger.verify(con, anchors=tuple(anchor or ()))
    if anchor and server is not None:
        fail("--anchor is checked on the store file: stop `settle serve` or run verify on a copy")
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
    if not out.parent.exists():
        fail(f"directory {out.parent} does not exist")
    with opened_store(db) as con:
        n = ledger.export(con, fmt.value, out)
    typer.echo(f"exported {n} ledger entries to {out}")


class PayoutState(str, Enum):
    proposed = "proposed"
    approved = "approved"
    disbursed = "disbursed"


def payouts_cmd(
    year: Annotated[int | None, typer.Option("--year", help="settlement year (default: all)")] = None,
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    state: Annotated[PayoutState | None, typer.Option(
        "--state", help="proposed | approved | disbursed (default: the entitlement, every run not rejected)")] = None,
    db: DbOption = None,
) -> None:
    """Payouts: one row per key with a non-zero sum of entries of runs not rejected (CONTRACT), or of the
    entries in one state (--state; disbursed: of the payment instructions)."""
    server = server_for(db)
    if server is not None:  # the exact CSV bytes from the server; the other formats from the same rows
        text = server.call("GET", "/v1/payouts.csv", params={"year": year, "state": state.value if state else None}).text
        if fmt is PrintFormat.csv:
            typer.echo(text, nl=False)
            return
        df = payouts_frame(text)
    else:
        with opened_store(db) as con:
            df = ledger.payouts(con, year, state=state.value if state else None)
    if fmt is PrintFormat.csv:
        typer.echo(ledger.payouts_csv(df), nl=False)
    elif fmt is PrintFormat.json:
        typer.echo(render.as_json(ledger.payouts_records(df)))
    else:
        render.console().print(render.payouts_table(df))
