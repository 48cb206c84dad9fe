"""The CLI's plain-text tables (settlement.cli.render.text_table): the layout `settle run` and `settle payouts`
print, exactly, and the same text as rich's Table draws for the same cells (issue 14: built in one join)."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from decimal import Decimal

import polars as pl
from rich.console import Console
from rich.table import Table

from ledgers import ledger
from settlement.cli import render


def test_text_table_layout_is_exact() -> None:
    text = render.text_table("t", ("id", "名称", "amount"),
                             [("a", "杭州", "1.00"), ("bb", "x", "1,234.50"), ("", "total", "1,235.50")],
                             right={2}, rule_after={0})
    assert text.splitlines() == [
        "            t",  # (26 cells - 1) // 2 spaces: the title centred over the table
        "┏━━━━┳━━━━━━━┳━━━━━━━━━━┓",
        "┃ id ┃ 名称  ┃   amount ┃",  # 名称 is 4 terminal cells wide, padded to the 5 of 'total'
        "┡━━━━╇━━━━━━━╇━━━━━━━━━━┩",
        "│ a  │ 杭州  │     1.00 │",
        "├────┼───────┼──────────┤",
        "│ bb │ x     │ 1,234.50 │",
        "│    │ total │ 1,235.50 │",
        "└────┴───────┴──────────┘",
    ]


def test_text_table_draws_what_rich_draws() -> None:
    columns, rows = ("entry", "beneficiary_id", "amount"), [("1", "9133010204140233XB", "836625.95"),
                                                            ("", "数据集 总计", "1.00")]
    table = Table(*columns, title="year 2024")
    table.columns[2].justify = "right"
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(width=160, file=out, color_system=None).print(table)
    drawn = [line.rstrip() for line in out.getvalue().splitlines()]  # rich pads the title line to the width
    assert render.text_table("year 2024", columns, rows, right={2}).splitlines() == drawn


def test_run_table_lists_every_entry_and_the_total() -> None:
    entry = ledger.Entry(entry_id=7, run_id=2, year=2024, clause=6, beneficiary_id="91330102576445635L",
                         dataset_id="BJ-SPEECH-ZH", amount=Decimal("666666.66"), kind="accrual",
                         created_at=datetime(2024, 1, 1, tzinfo=timezone.utc), inputs_fingerprint="f",
                         prev_hash="p", hash="h")
    result = ledger.RunResult(run_id=2, year=2024, appended=(entry,), targets_count=1)
    lines = render.run_table(result).splitlines()
    assert lines[0].strip() == "year 2024: run 2 appended 1 entries"
    assert lines[4] == "│ 7     │ 6      │ 91330102576445635L │ BJ-SPEECH-ZH │ accrual │ 666666.66 │"
    assert lines[5] == "│       │        │                    │              │ total   │ 666666.66 │"


def test_payouts_table_totals_each_year_and_all() -> None:
    df = pl.DataFrame({"year": [2023, 2024, 2024], "clause": [7, 6, 6],
                       "beneficiary_id": ["913301108573022438", "91330102576445635L", "91330102576445635L"],
                       "dataset_id": [None, "BJ-SPEECH-ZH", "BJ-VISION-OCR"],
                       "amount": [Decimal("1290.00"), Decimal("666666.66"), Decimal("333333.34")]},
                      schema_overrides={"amount": pl.Decimal(18, 2)})
    lines = render.payouts_table(df).splitlines()
    assert lines[4:11] == [
        "│ 2023 │ 7      │ 913301108573022438 │               │     1,290.00 │",
        "│      │        │ total 2023         │               │     1,290.00 │",
        "├──────┼────────┼────────────────────┼───────────────┼──────────────┤",
        "│ 2024 │ 6      │ 91330102576445635L │ BJ-SPEECH-ZH  │   666,666.66 │",
        "│ 2024 │ 6      │ 91330102576445635L │ BJ-VISION-OCR │   333,333.34 │",
        "│      │        │ total 2024         │               │ 1,000,000.00 │",
        "├──────┼────────┼────────────────────┼───────────────┼──────────────┤",
    ]
    assert lines[11] == "│      │        │ grand total        │               │ 1,001,290.00 │"
