"""An owner's statement (对账单) for one year as CSV and xlsx, serialised from the lifecycle statement.

The figures are ``settlement.lifecycle.statement.statement`` (the same ``Statement`` `settle statement`
and `GET /v1/statements/{id}` lay out), read as the owner reads it (no integrity flags); this module only
shapes them. The CSV keeps the console's columns, one row per own dataset, amounts as exact two-decimal
strings (P1). The xlsx holds the same rows on its first sheet and the whole statement (account, keys,
ledger entries, notice lines, payments, basis, exclusions) on a second. Every code and name is a string
cell (a credit code such as 913301059554165438 must never become a number). Must not import the routes.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import xlsxwriter

from settlement.lifecycle.documents import add_sheet, exact_number
from settlement.lifecycle.statement import Statement, render

COLUMNS = ("year", "owner_id", "dataset_id", "dataset_name", "run_id", "unrelated_callers", "caller_threshold",
           "qualifies", "eligible_sales", "base", "rate", "gross", "prior_awards", "payable", "capped",
           "cap_share", "ledger_balance", "paid", "excluded_trades")
AMOUNTS = {"base", "gross", "prior_awards", "payable", "cap_share", "ledger_balance", "paid"}


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def rows(st: Statement) -> list[dict]:
    """One record per dataset line of the statement (its owner's datasets of the year)."""
    return [{
        "year": st.year, "owner_id": st.beneficiary_id, "dataset_id": d.dataset_id, "dataset_name": d.name,
        "run_id": "" if st.run_id is None else st.run_id, "unrelated_callers": d.caller_groups,
        "caller_threshold": "" if d.caller_threshold is None else d.caller_threshold,
        "qualifies": "yes" if d.qualifies else "no", "eligible_sales": d.eligible_sales,
        "base": _amount(d.base), "rate": "" if d.rate is None else str(d.rate), "gross": _amount(d.gross),
        "prior_awards": _amount(d.prior_awards), "payable": _amount(d.payable),
        "capped": "yes" if d.capped else "no", "cap_share": _amount(d.target if d.capped else d.payable),
        "ledger_balance": _amount(d.entitled), "paid": _amount(d.paid), "excluded_trades": d.excluded_trades,
    } for d in st.datasets]


def to_csv(st: Statement) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(st))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese names correctly


def to_xlsx(st: Statement) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("statement")
    money = book.add_format({"num_format": "#,##0.00"})
    bold = book.add_format({"bold": True})
    for col, name in enumerate(COLUMNS):
        sheet.write_string(0, col, name, bold)
    for r, record in enumerate(rows(st), start=1):
        for col, name in enumerate(COLUMNS):
            value = record[name]
            if name in AMOUNTS and exact_number(Decimal(value)):
                sheet.write_number(r, col, float(Decimal(value)), money)  # reads back as exactly the amount
            elif isinstance(value, int) and not isinstance(value, bool):
                sheet.write_number(r, col, value)
            else:
                sheet.write_string(r, col, str(value))
    sheet.set_column(0, len(COLUMNS) - 1, 16)
    add_sheet(book, render(st), "对账单")
    book.close()
    return buf.getvalue()
