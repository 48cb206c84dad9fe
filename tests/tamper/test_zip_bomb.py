"""Issue 15 item 3: an .xlsx zip bomb is refused before the spreadsheet reader inflates it, with bounded memory.

The bombs are real workbooks: a valid OOXML package whose sheet XML is ~2 GiB of repeated rows, deflated
into ~2 MB. One variant declares honest sizes in its zip headers; the other declares a 10 kB sheet
(``file_size`` lies, the CRC is that of the lie-free data), which the header-trusting check of before let
through to calamine. ``settle ingest`` runs each in a subprocess; its peak RSS comes from ``wait4`` in a small parent.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import polars as pl
import pytest

from settlement.access import tokens
from settlement.core import store
from settlement.inputs import xlsx_guard
from tests.support.ingest import PLATFORM
from tests.support.live_server import proc_status, start_server

UNIT_BYTES = 8 * 2**20  # one deflate block of repeated rows, byte-aligned by a full flush
UNITS = 256  # 256 × 8 MiB = 2 GiB of sheet XML
# settle ingest on this machine peaks at ~150-250 MiB (Python, polars, DuckDB loaded); calamine on the
# bomb went to 8.7 GB. Measured in this test: see docs/threat-model.md.
PEAK_RSS_BOUND = 600 * 2**20

# A long cell value repeats at distance 1, which deflate codes at ~1000:1 (a whole repeated row would
# only reach ~230:1); read, each row would cost calamine and polars a 30 kB string.
BOMB_ROW = ("T1", "P", "D" * 30_000, "S", "B", "2024-03-01T10:00:00", "1.00")
HEADER = ("trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "amount")
PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="trades" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
}


def _row(values) -> bytes:
    return ("<row>" + "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in values) + "</row>").encode()


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine (GF(2) matrices): the CRC of A+B from crc(A), crc(B) and len(B)."""
    def times(mat: list[int], vec: int) -> int:
        out, i = 0, 0
        while vec:
            if vec & 1:
                out ^= mat[i]
            vec, i = vec >> 1, i + 1
        return out

    def square(mat: list[int]) -> list[int]:
        return [times(mat, mat[n]) for n in range(32)]

    if len2 == 0:
        return crc1
    zeros = square(square([0xEDB88320] + [1 << n for n in range(31)]))  # the operator of 1, then 4 zero bits
    while len2:  # square-and-multiply over the bits of len2: 2^k zero bytes appended to A
        zeros = square(zeros)
        if len2 & 1:
            crc1 = times(zeros, crc1)
        len2 >>= 1
    return crc1 ^ crc2


def _sheet(units: int) -> tuple[bytes, int, int]:
    """Raw deflate of the sheet XML: header row, then ``units`` × UNIT_BYTES of one repeated trade row.
    Returns (deflate bytes, crc32, inflated size) without ever holding the inflated sheet."""
    head = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet '
            b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + _row(HEADER))
    tail = b"</sheetData></worksheet>"
    row = _row(BOMB_ROW)
    unit = row * (UNIT_BYTES // len(row))

    def block(data: bytes, final: bool) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)

    # After a full flush the compressor starts afresh, so every unit deflates to the same bytes.
    unit_crc, unit_len, crc, length = zlib.crc32(unit), len(unit), 0, 0
    reps, rep_crc, rep_len = units, unit_crc, unit_len
    while reps:  # crc of unit × units by doubling
        if reps & 1:
            crc, length = _crc32_combine(crc, rep_crc, rep_len), length + rep_len
        rep_crc, rep_len, reps = _crc32_combine(rep_crc, rep_crc, rep_len), rep_len * 2, reps >> 1
    crc = _crc32_combine(zlib.crc32(head), crc, length)
    crc = _crc32_combine(crc, zlib.crc32(tail), len(tail))
    body = block(head, False) + block(unit, False) * units + block(tail, True)
    return body, crc, len(head) + length + len(tail)


def _write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """A zip of already-deflated members (name, deflate bytes, crc, real size, declared size)."""
    out, central = bytearray(), bytearray()
    for name, data, crc, _real, declared in members:
        encoded = name.encode()
        fields = (20, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc, len(data), declared, len(encoded))
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, len(out)) + encoded
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


def _workbook(path: Path, units: int, *, lie: bool = False) -> int:
    """Write the workbook; return the sheet's real inflated size."""
    members = []
    for name, text in PARTS.items():
        raw = text.encode()
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        members.append((name, c.compress(raw) + c.flush(), zlib.crc32(raw), len(raw), len(raw)))
    body, crc, size = _sheet(units)
    members.append(("xl/worksheets/sheet1.xml", body, crc, size, 10_000 if lie else size))
    _write_zip(path, members)
    return size


# A small Python process starts `settle` and reports its peak RSS. Why not wait4 from pytest: the child is
# forked (or vforked) from this process, and until it execs its RSS is pytest's own, which ru_maxrss keeps
# (the whole suite's pytest is ~740 MiB by the time this runs: CI measured that, not the ingest).
_PEAK_OF = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _settle(*args: str, cwd: Path) -> tuple[int, str, int, float]:
    """Run ``settle`` as a child; return (exit code, stdout+stderr, peak RSS in bytes, seconds)."""
    settle = Path(sys.executable).with_name("settle")
    log, peak = cwd / "settle.out", cwd / "settle.peak"
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run([sys.executable, "-c", _PEAK_OF, str(peak), str(settle), *args], stdout=out,
                              stderr=subprocess.STDOUT, cwd=cwd).returncode
    return code, log.read_text(), int(peak.read_text()), time.monotonic() - started


def test_the_builder_makes_a_workbook_calamine_reads(tmp_path) -> None:
    """The bomb's recipe at 1 unit is an ordinary workbook: read whole, and let through by the guard."""
    path = tmp_path / "small.xlsx"
    size = _workbook(path, 1)
    frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0)
    assert list(frame.columns) == list(HEADER)
    assert frame.height == UNIT_BYTES // len(_row(BOMB_ROW))
    assert frame.row(0) == BOMB_ROW
    assert xlsx_guard.check_zip(path) is None and size > UNIT_BYTES // 2


@pytest.mark.parametrize("lie", [False, True], ids=["honest-headers", "lying-headers"])
def test_settle_ingest_refuses_a_zip_bomb_with_bounded_memory(tmp_path, lie) -> None:
    bomb = tmp_path / "bomb.xlsx"
    real = _workbook(bomb, UNITS, lie=lie)
    packed = bomb.stat().st_size
    assert real > 2 * 10**9 and packed < 5 * 2**20  # ~2 GiB of XML in a few MB
    store.init(tmp_path / "s.duckdb")
    code, out, peak, seconds = _settle("--db", str(tmp_path / "s.duckdb"), "ingest", str(bomb), cwd=tmp_path)
    limit = min(1024**3, 200 * packed + 10 * 2**20)
    expected = (f"  file rejected: cannot read the file as an .xlsx workbook: bomb.xlsx inflates to more than "
                f"{limit:,} bytes, the limit for a {packed:,}-byte workbook (at most 1,073,741,824 bytes and "
                f"200x the file size): a zip bomb?")
    assert code == 2, out  # rejected upload
    assert expected in out.splitlines(), out
    print(f"lie={lie} packed={packed:,} real={real:,} peak_rss={peak / 2**20:.0f} MiB seconds={seconds:.1f}")
    assert peak < PEAK_RSS_BOUND, f"settle ingest peaked at {peak / 2**20:.0f} MiB"


def test_too_many_entries_are_counted_and_refused(tmp_path) -> None:
    path = tmp_path / "many.xlsx"
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    empty = c.flush()
    _write_zip(path, [(f"x/{i}.xml", empty, 0, 0, 0) for i in range(10_001)])
    assert xlsx_guard.check_zip(path) == ("cannot read the file as an .xlsx workbook: many.xlsx has 10,001 zip "
                                          "entries, more than the limit of 10,000 (not a spreadsheet export)")


def test_the_api_upload_refuses_the_lying_bomb_and_the_server_stays_small(tmp_path) -> None:
    """POST /v1/uploads reads the spooled file through the same ingest, so the same guard answers 422."""
    bomb = tmp_path / "bomb.xlsx"
    _workbook(bomb, UNITS, lie=True)
    packed = bomb.stat().st_size
    db = tmp_path / "s.duckdb"
    store.init(db)
    con = store.open_store(db)
    token = tokens.create_token(con, "operator", scope_id=PLATFORM, created_by="test").token
    con.close()
    server = start_server(db)
    try:
        with bomb.open("rb") as f:
            answer = httpx.post(server.url + "/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                                files={"file": ("bomb.xlsx", f)}, timeout=120)
        peak = proc_status(server.pid, "VmHWM")
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert answer.status_code == 422, answer.text
    limit = min(1024**3, 200 * packed + 10 * 2**20)
    assert answer.json()["file_error"] == (
        f"cannot read the file as an .xlsx workbook: bomb.xlsx inflates to more than {limit:,} bytes, the limit "
        f"for a {packed:,}-byte workbook (at most 1,073,741,824 bytes and 200x the file size): a zip bomb?")
    print(f"server VmHWM after the bomb: {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_BOUND
