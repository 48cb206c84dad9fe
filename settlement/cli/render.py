"""How ``settle`` shows results: the --format vocabulary, money, and every table the commands print.

One home for formatting, so two commands never print the same thing two ways (``settle payouts`` and
``settle demo`` share ``payouts_table``). Formats only: computes no rule, opens no store.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable, Container, Iterable, Sequence

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from ledgers import ledger
from settlement.cli._app import choices

CONSOLE_WIDTH = 160


# The --format vocabulary: results printed on stdout; reports and explanations written as sentences
# (CONTRACT: `settle ingest --format text|json`); files written (`settle ledger export`, `settle generate`,
# `settle notice`, `settle statement`, `settle disburse`).
PrintFormat = choices("PrintFormat", "table", "csv", "json")
ReportFormat = choices("ReportFormat", "text", "json")
FileFormat = choices("FileFormat", "csv", "parquet")
NoticeFormat = choices("NoticeFormat", "csv", "xlsx", "pdf")
StatementFormat = choices("StatementFormat", "xlsx", "pdf")
InstructionFormat = choices("InstructionFormat", "csv")


def console() -> Console:
    return Console(width=CONSOLE_WIDTH)


def money(x: Decimal | None) -> str:
    """CNY with thousands separators and two decimals; '-' when there is no amount."""
    return "-" if x is None else f"{x:,.2f}"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def records_csv(records: Iterable[dict[str, Any]], columns: Iterable[str]) -> str:
    """CSV with a header, '\\n' line ends; lists are joined with ';'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(columns)
    writer.writerow(names)
    for r in records:
        writer.writerow([";".join(map(str, v)) if isinstance(v, (list, tuple)) else ("" if v is None else v)
                         for v in (r.get(c) for c in names)])
    return out.getvalue()


def print_records(fmt: PrintFormat, records: list[dict[str, Any]], columns: Iterable[str],
                  table: Callable[[], Table | str]) -> None:
    """One list of records in the printed vocabulary: JSON, CSV with a header (``columns``), or ``table()``."""
    if fmt is PrintFormat.json:
        typer.echo(as_json(records))
    elif fmt is PrintFormat.csv:
        typer.echo(records_csv(records, columns), nl=False)
    else:
        console().print(table())


def records_table(records: list[dict[str, Any]], columns: Iterable[str], title: str, *, empty: str) -> Table | str:
    """Records as a plain table of ``columns`` (None as blank), or the sentence ``empty`` when there are none."""
    names = tuple(columns)
    if not records:
        return empty
    table = Table(*names, title=title)
    for r in records:
        table.add_row(*("" if r[c] is None else str(r[c]) for c in names))
    return table


def text_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, right: Container[int] = (),
               rule_after: Container[int] = ()) -> str:
    """Rows of plain strings as a box-drawn table in rich's default style (heavy head, ``title`` centred above),
    built with one join: rich lays out every cell (1.5 s for the 1,800 entries one 10M-trade run appends, issue
    14), which tables of plain strings do not need. ``right``: column indexes aligned right; ``rule_after``:
    row indexes followed by a rule (a section's end). Widths are terminal cells (CJK counts two)."""
    widths = [cell_len(c) for c in columns]
    for row in rows:
        widths = [max(w, cell_len(v)) for w, v in zip(widths, row)]

    def line(cells: Sequence[str], edge: str, sep: str) -> str:
        padded = (" " * (w - cell_len(v)) + v if i in right else v + " " * (w - cell_len(v))
                  for i, (v, w) in enumerate(zip(cells, widths)))
        return f"{edge} " + f" {sep} ".join(padded) + f" {edge}"

    def rule(left: str, fill: str, joint: str, end: str) -> str:
        return left + joint.join(fill * (w + 2) for w in widths) + end

    body = [rule("┏", "━", "┳", "┓"), line(columns, "┃", "┃"), rule("┡", "━", "╇", "┩")]
    for i, row in enumerate(rows):
        body.append(line(row, "│", "│"))
        if i in rule_after and i + 1 < len(rows):
            body.append(rule("├", "─", "┼", "┤"))
    body.append(rule("└", "─", "┴", "┘"))
    width = cell_len(body[0])
    pad = max(0, (width - cell_len(title)) // 2)
    return "\n".join([" " * pad + title, *body])


def payouts_table(df) -> str:
    """Payouts (one row per key) with a total per year and a grand total; 'no payouts' when empty."""
    rows = list(df.select(ledger.PAYOUT_COLUMNS).iter_rows())
    if not rows:
        return "no payouts"
    out: list[tuple[str, ...]] = []
    ends: set[int] = set()
    per_year: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for i, (year, clause, beneficiary, dataset, amount) in enumerate(rows):
        out.append((str(year), str(clause), beneficiary, dataset or "", money(amount)))
        per_year[year] += amount
        if i + 1 == len(rows) or rows[i + 1][0] != year:
            out.append(("", "", f"total {year}", "", money(per_year[year])))
            ends.add(len(out) - 1)
    out.append(("", "", "grand total", "", money(sum(per_year.values(), Decimal("0.00")))))
    return text_table("Payouts (Σ ledger entries per key, CONTRACT)",
                      ("year", "clause", "beneficiary_id", "dataset_id", "amount (CNY)"), out, right={4},
                      rule_after=ends)


def run_table(result: ledger.RunResult) -> str:
    """What one settlement run appended to the ledger."""
    if not result.appended:
        return f"year {result.year}: run {result.run_id} appended nothing (targets unchanged)"
    rows = [(str(e.entry_id), str(e.clause), e.beneficiary_id, e.dataset_id, e.kind, f"{e.amount:.2f}")
            for e in result.appended]
    rows.append(("", "", "", "", "total", f"{result.total_appended:.2f}"))
    return text_table(f"year {result.year}: run {result.run_id} appended {len(result.appended)} entries",
                      ("entry", "clause", "beneficiary_id", "dataset_id", "kind", "amount"), rows, right={5})


def percent(rate: Decimal | None) -> str:
    """A clause's rate as a percentage ('10%'); '-' when the year has none."""
    return "-" if rate is None else f"{rate.normalize():%}"


def summary_table(x, clause_rows: tuple[tuple[str, str], ...], eligible_ref: str) -> Table:
    """The label / amount table both explanations open with: the eligible sales (``eligible_ref`` names the
    rule), the clause's own rows, and what the ledger has paid so far."""
    summary = Table(show_header=False)
    summary.add_column("what")
    summary.add_column("amount", justify="right")
    for label, value in ((f"eligible sales ({eligible_ref})", str(x.eligible_sales)), *clause_rows,
                         ("paid in the ledger so far", money(x.ledger_balance))):
        summary.add_row(label, value)
    return summary


def excluded_table(title: str, by_reason: dict[str, int], excluded, total: int) -> Table:
    """The trades that earn nothing, counted by reason, the first of them listed (P12)."""
    table = Table(title=f"{title}: {total} trade(s) earn nothing "
                        + (", ".join(f"{k} {v}" for k, v in by_reason.items()) if by_reason else ""))
    for col in ("platform_id", "trade_id", "kind", "reason", "detail"):
        table.add_column(col, overflow="fold")
    for x in excluded:
        table.add_row(x.platform_id, x.trade_id, x.kind, x.reason, x.detail or "")
    if total > len(excluded):
        table.add_row("...", f"{total - len(excluded)} more", "", "", "query the exclusions table")
    return table


def caller_groups_table(groups) -> Table:
    """Caller groups of a dataset and their buyers (P8/P10.3)."""
    table = Table(title="caller groups (year-graph affiliate groups, P8/P10.3)")
    for col in ("group", "counted", "buyer_id", "eligible sales"):
        table.add_column(col)
    table.add_column("net", justify="right")
    for g in groups:
        for i, (buyer, n, net) in enumerate(g.buyers):
            table.add_row(g.group_id if i == 0 else "", ("yes" if g.counted else "no") if i == 0 else "",
                          buyer, str(n), money(net))
    return table


def uploads_table(uploads) -> Table:
    """`settle uploads list`: every upload with its status and row counts."""
    table = Table("id", "file", "status", "read", "stored", "dup", "rejected", "by", "at (UTC)", "sha256")
    for u in uploads:
        table.add_row(str(u.id), u.file_name, u.status, str(u.rows_read), str(u.rows_stored), str(u.rows_duplicate),
                      str(u.rows_rejected), u.uploaded_by, u.uploaded_at, u.sha256[:12])
    return table


def tokens_table(infos) -> str:
    """`settle tokens list`: fixed-width, one token per line (never the token itself)."""
    lines = [f"{'token_id':<17} {'role':<9} {'scope_id':<18} {'state':<7} {'created_at':<25} label"]
    for i in infos:
        state = "live" if i.live else "revoked"
        created = i.created_at.isoformat(timespec="seconds")
        lines.append(f"{i.token_id:<17} {i.role:<9} {i.scope_id or '-':<18} {state:<7} {created:<25} {i.label or ''}")
    return "\n".join(lines)


ACCOUNT_COLUMNS = ("entitled", "proposed", "approved", "noticed", "disbursed", "paid", "outstanding")


def accounts_table(rows: list[dict], title: str) -> Table:
    """Beneficiaries' accounts of a year (view beneficiary_accounts): computation to payment, tied out."""
    table = Table(title=title)
    table.add_column("beneficiary_id")
    for col in ACCOUNT_COLUMNS:
        table.add_column(col, justify="right")
    table.add_column("held")
    for r in rows:
        table.add_row(r["beneficiary_id"], *(money(r[c]) for c in ACCOUNT_COLUMNS), "yes" if r["held"] else "")
    return table

