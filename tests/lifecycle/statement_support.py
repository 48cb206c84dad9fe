"""Reading the statement files back for the statement tests: an xlsx sheet as a grid of exact strings, its
sections by title, and a console sign-in (tests only)."""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _col(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def xlsx_grid(data: bytes | Path, sheet: int = 0) -> list[list[str]]:
    """Every row of a sheet (blank rows kept) as text: string cells as written, number cells as the exact
    two-decimal amount they read back as (the shortest repr of the stored double, P1)."""
    with zipfile.ZipFile(data if isinstance(data, Path) else io.BytesIO(data)) as book:
        shared = [("".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")))
                  for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("m:si", NS)]
        root = ElementTree.fromstring(book.read(f"xl/worksheets/sheet{sheet + 1}.xml"))
    grid: list[list[str]] = []
    for row in root.find("m:sheetData", NS).findall("m:row", NS):
        r = int(row.get("r")) - 1
        grid.extend([] for _ in range(r + 1 - len(grid)))
        for c in row.findall("m:c", NS):
            v = c.find("m:v", NS)
            text = "" if v is None else (shared[int(v.text)] if c.get("t") == "s" else
                                         f"{Decimal(repr(float(v.text))):.2f}")
            col = _col(c.get("r"))
            grid[r].extend("" for _ in range(col + 1 - len(grid[r])))
            grid[r][col] = text
    return grid


def section(grid: list[list[str]], title: str) -> list[dict[str, str]]:
    """The rows of the section titled ``title`` (header row below the title, rows up to a blank row)."""
    at = next(i for i, row in enumerate(grid) if row[:1] == [title])
    headers = grid[at + 1]
    out = []
    for row in grid[at + 2:]:
        if not row:
            break
        out.append(dict(zip(headers, row + [""] * (len(headers) - len(row)))))
    return out


def titles(grid: list[list[str]]) -> list[str]:
    """Section titles: the first cell of each row that follows a blank row."""
    return [grid[i + 1][0] for i in range(len(grid) - 1) if not grid[i] and grid[i + 1]]


def without_section(grid: list[list[str]], title: str) -> list[list[str]]:
    """The grid less one section (its blank separator, title, header and rows)."""
    at = next(i for i, row in enumerate(grid) if row[:1] == [title])
    end = next((i for i in range(at + 2, len(grid)) if not grid[i]), len(grid))
    return grid[:at - 1] + grid[end:]


def sign_in(client, token: str) -> None:
    """Sign in to the web console with an API token (the form's CSRF value first)."""
    client.cookies.clear()
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"token": token, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
