"""CLI edge for the ledger: `settle ledger verify`, `settle ledger export`, `settle payouts` (CONTRACT).

Parses, calls ``ledgers.ledger`` and formats; holds no rules.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ledgers import ledger
from settlement.cli._app import DbOption, app, fail, opened_store

ledger_app = typer.Typer(no_args_is_help=True, help="The append-only settlement ledger (P13).")
app.add_typer(ledger_app, name="ledger")


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"


class PayoutFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None) -> None:
    """Recompute the hash chain and re-derive every key; exit 1 naming the first bad entry."""
    with opened_store(db) as con:
        result = ledger.verify(con)
    if not result.ok:
        where = f"entry {result.first_bad_entry_id}: " if result.first_bad_entry_id is not None else ""
        fail(f"ledger verification FAILED after checking {result.entries_checked} entries: "
             f"{'' if result.message.startswith('entry') else where}{result.message}")
    typer.echo(result.message)


@ledger_app.command("export")
def ledger_export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv | parquet")],
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    db: DbOption = None,
) -> None:
    """Write every ledger entry, in chain order, to a CSV or Parquet file."""
    if not out.parent.exists():
        fail(f"directory {out.parent} does not exist")
    with opened_store(db) as con:
        n = ledger.export(con, fmt.value, out)
    typer.echo(f"exported {n} ledger entries to {out}")


@app.command("payouts")
def payouts_cmd(
    year: Annotated[int | None, typer.Option("--year", help="settlement year (default: all)")] = None,
    fmt: Annotated[PayoutFormat, typer.Option("--format", help="table | csv | json")] = PayoutFormat.table,
    db: DbOption = None,
) -> None:
    """Current payouts: one row per key with a non-zero sum of ledger entries (CONTRACT)."""
    with opened_store(db) as con:
        df = ledger.payouts(con, year)
    if fmt is PayoutFormat.csv:
        typer.echo(ledger.payouts_csv(df), nl=False)
    elif fmt is PayoutFormat.json:
        typer.echo(json.dumps(ledger.payouts_records(df), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_payouts_table(df))


def format_payouts_table(df) -> str:
    """A readable fixed-width table with a total per year and overall."""
    records = ledger.payouts_records(df)
    if not records:
        return "no payouts"
    headers = ["year", "clause", "beneficiary_id", "dataset_id", "amount"]
    rows = [[str(r["year"]), str(r["clause"]), r["beneficiary_id"], r["dataset_id"], _thousands(r["amount"])]
            for r in records]
    totals: dict[int, object] = {}
    for y, _c, _b, _d, a in df.select(ledger.PAYOUT_COLUMNS).iter_rows():
        totals[y] = totals.get(y, 0) + a
    for y, total in totals.items():
        rows.append([str(y), "", "total", "", _thousands(ledger.format_amount(total))])
    if len(totals) > 1:
        rows.append(["all", "", "total", "", _thousands(ledger.format_amount(sum(totals.values())))])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {0, 1, 4}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _thousands(amount: str) -> str:
    whole, _, cents = amount.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{cents}"
