"""Writing the lifecycle's documents (notice list, statement) as csv, xlsx or PDF, headers in zh-CN.

A ``Document`` is a title, lines of text and sections (a title, column headers, rows). CSV writes the
first section only (header row, then rows: a machine-readable list); xlsx (xlsxwriter) stacks the
sections on one sheet; PDF (reportlab) embeds a CJK TrueType font, found at ``SETTLE_CJK_FONT`` or the
Debian package ``fonts-wqy-zenhei`` (``/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc``, first face of
the collection). Formats only: computes no amount.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from settlement.core.errors import UserError

FORMATS = ("csv", "xlsx", "pdf")
FONT_NAME = "SettleCJK"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian/Ubuntu: fonts-wqy-zenhei
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",  # Fedora: wqy-zenhei-fonts
)


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Document:
    title: str
    lines: tuple[str, ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)


def cell(value: Any) -> str:
    """Text of a cell: amounts with two decimals and thousands separators, None empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return str(value)


def write(doc: Document, fmt: str, out: Path) -> None:
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not Path(out).parent.exists():
        raise UserError(f"directory {Path(out).parent} does not exist")
    {"csv": _write_csv, "xlsx": _write_xlsx, "pdf": _write_pdf}[fmt](doc, Path(out))


def _write_csv(doc: Document, out: Path) -> None:
    section = doc.sections[0]
    with out.open("w", newline="", encoding="utf-8") as f:  # amounts as plain two-decimal text in CSV
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(section.headers)
        for row in section.rows:
            writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])


def _write_xlsx(doc: Document, out: Path) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(out))
    try:
        add_sheet(book, doc, doc.title[:31])
    finally:
        book.close()


def exact_number(value: Decimal) -> bool:
    """True when the float of ``value`` reads back as exactly ``value`` (shortest repr): up to 15
    significant digits. Only such amounts become number cells; a longer one stays exact text (P1)."""
    return Decimal(repr(float(value))) == value


def add_sheet(book, doc: Document, name: str) -> None:
    """Stack ``doc`` (title, lines, then each section's title, headers and rows) on a new sheet of ``book``
    (an open xlsxwriter Workbook): the statement's layout in the CLI's, the API's and the console's files."""
    sheet = book.add_worksheet(name)
    bold, money = book.add_format({"bold": True}), book.add_format({"num_format": "#,##0.00"})
    r = 0
    # every text cell as a string (write_string): a value starting with '=' is never a formula
    for text in (doc.title, *doc.lines):
        sheet.write_string(r, 0, text, bold if r == 0 else None)
        r += 1
    for section in doc.sections:
        r += 1
        sheet.write_string(r, 0, section.title, bold)
        for c, header in enumerate(section.headers):
            sheet.write_string(r + 1, c, header, bold)
        r += 2
        for row in section.rows:
            for c, v in enumerate(row):
                if isinstance(v, Decimal) and exact_number(v):
                    sheet.write_number(r, c, float(v), money)  # reads back as exactly v
                else:
                    sheet.write_string(r, c, f"{v:.2f}" if isinstance(v, Decimal) else cell(v))
            r += 1
    sheet.set_column(0, 12, 18)


def cjk_font_path() -> str:
    """The TrueType font embedded in PDFs: $SETTLE_CJK_FONT, else the first installed candidate."""
    env = os.environ.get("SETTLE_CJK_FONT")
    for path in ([env] if env else []) + list(FONT_CANDIDATES):
        if path and Path(path).is_file():
            return path
    raise UserError("no Chinese TrueType font for PDF output: install the Debian package fonts-wqy-zenhei "
                    "or set SETTLE_CJK_FONT to a .ttf/.ttc file")


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        path = cjk_font_path()
        pdfmetrics.registerFont(TTFont(FONT_NAME, path, subfontIndex=0) if path.endswith(".ttc")
                                else TTFont(FONT_NAME, path))


def _write_pdf(doc: Document, out: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_font()
    title = ParagraphStyle("t", fontName=FONT_NAME, fontSize=14, leading=20)
    body = ParagraphStyle("b", fontName=FONT_NAME, fontSize=9, leading=13)
    story: list = [Paragraph(doc.title, title)] + [Paragraph(line, body) for line in doc.lines]
    for section in doc.sections:
        story += [Spacer(1, 8), Paragraph(section.title, body)]
        table = Table([list(section.headers)] + [[cell(v) for v in row] for row in section.rows], repeatRows=1)
        table.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), FONT_NAME), ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
        ]))
        story.append(table)
    SimpleDocTemplate(str(out), pagesize=landscape(A4), title=doc.title).build(story)
