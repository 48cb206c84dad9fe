"""An owner's statement (对账单) for one year as CSV and xlsx: one row per own dataset, exact amounts.

CSV amounts are exact strings (P1). In xlsx every code and name is written as a string cell (a credit
code such as 913301059554165438 must never become a number), amounts as numbers with two decimals.
Must not import the routes.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import xlsxwriter

COLUMNS = ("year", "owner_id", "dataset_id", "dataset_name", "run_id", "unrelated_callers", "caller_threshold",
           "qualifies", "eligible_sales", "base", "rate", "gross", "prior_awards", "payable", "capped",
           "cap_share", "ledger_balance", "paid", "excluded_trades")
AMOUNTS = {"base", "gross", "prior_awards", "payable", "cap_share", "ledger_balance", "paid"}


def _amount(value) -> str:
    return str(Decimal(value if value is not None else 0).quantize(Decimal("0.01")))


def rows(cards, year: int, owner_id: str) -> list[dict]:
    out = []
    for c in cards:
        x = c.x
        out.append({
            "year": year, "owner_id": owner_id, "dataset_id": c.dataset_id, "dataset_name": c.name,
            "run_id": x.run_id, "unrelated_callers": x.caller_groups,
            "caller_threshold": "" if x.caller_threshold is None else x.caller_threshold,
            "qualifies": "yes" if x.qualifies else "no", "eligible_sales": x.eligible_sales,
            "base": _amount(x.base), "rate": "" if x.rate is None else str(x.rate), "gross": _amount(x.gross),
            "prior_awards": _amount(x.prior_awards), "payable": _amount(x.payable),
            "capped": "yes" if x.capped else "no", "cap_share": _amount(x.target if x.capped else x.payable),
            "ledger_balance": _amount(x.ledger_balance), "paid": _amount(c.paid), "excluded_trades": x.excluded_total,
        })
    return out


def to_csv(records: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese names correctly


def to_xlsx(records: list[dict]) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("statement")
    money = book.add_format({"num_format": "#,##0.00"})
    bold = book.add_format({"bold": True})
    for col, name in enumerate(COLUMNS):
        sheet.write_string(0, col, name, bold)
    for r, record in enumerate(records, start=1):
        for col, name in enumerate(COLUMNS):
            value = record[name]
            if name in AMOUNTS:
                sheet.write_number(r, col, float(Decimal(value)), money)
            elif isinstance(value, int) and not isinstance(value, bool):
                sheet.write_number(r, col, value)
            else:
                sheet.write_string(r, col, str(value))
    sheet.set_column(0, len(COLUMNS) - 1, 16)
    book.close()
    return buf.getvalue()
