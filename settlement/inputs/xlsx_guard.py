"""Zip-bomb guard for .xlsx workbooks: count the bytes that actually inflate, never the sizes declared.

An .xlsx is a zip archive, and the spreadsheet reader (polars → calamine → the Rust ``zip`` crate) inflates
whatever deflate stream a member holds. The sizes in the zip headers are written by the sender: a hostile
workbook can declare a 10 kB sheet whose stream inflates to gigabytes (issue 15: an 18.7 MB file peaked
at 8.7 GB). So before the reader sees the file, every member's raw bytes are read through ``zipfile`` and
inflated here in 1 MiB pieces with the declared size ignored, counting the bytes as they come; past the
cap we stop and refuse. Memory stays at one piece; time is bounded by the cap (zlib's inflate speed).

Refused (a message naming the file and the limit, never an exception): more than ``MAX_XLSX_ENTRIES``
members, a member stored with anything but stored/deflate (all OOXML allows), encrypted members, more
than ``MAX_XLSX_INFLATED`` bytes in all, or more than ``MAX_XLSX_RATIO`` times the file's real size
(plus ``RATIO_SLACK`` for small workbooks). Must not import ``api`` or ``settlement.cli``.
"""

from __future__ import annotations

import copy
import zipfile
import zlib
from pathlib import Path

MAX_XLSX_ENTRIES = 10_000
MAX_XLSX_INFLATED = 1024**3  # 1 GiB of XML is ~1M rows, Excel's own sheet limit
MAX_XLSX_RATIO = 200  # deflate of sheet XML reaches ~10-30x; a bomb reaches hundreds to ~1000x
RATIO_SLACK = 10 * 2**20  # styles and shared strings of a tiny workbook may compress better than 200x
PIECE = 2**20
_XLSX_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
PREFIX = "cannot read the file as an .xlsx workbook"


def inflate_limit(packed_bytes: int) -> int:
    """Most bytes a workbook of ``packed_bytes`` on disk may inflate to."""
    return min(MAX_XLSX_INFLATED, MAX_XLSX_RATIO * packed_bytes + RATIO_SLACK)


def _inflate_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, so_far: int, limit: int) -> int:
    """``so_far`` plus what ``info`` really inflates to, stopping as soon as the sum passes ``limit``.

    zipfile hands us the member's raw bytes (it still checks the local header, name and encryption flag)
    and we inflate them ourselves: its own reader would stop at the declared size, which a liar sets
    small, and would spend time on a CRC the count does not need. The raw bytes read are bounded by
    compress_size and by the file itself, which is what the spreadsheet reader would inflate too."""
    raw = copy.copy(info)
    raw.compress_type, raw.file_size, raw.CRC = zipfile.ZIP_STORED, info.compress_size, None
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    with archive.open(raw) as member:
        while packed := member.read(PIECE):
            if inflater is None:
                so_far += len(packed)
            while packed and so_far <= limit and inflater is not None:
                so_far += len(inflater.decompress(packed, PIECE))
                packed = inflater.unconsumed_tail
            if so_far > limit or (inflater is not None and inflater.eof):
                break
    return so_far


def check_zip(path: Path) -> str | None:
    """Refuse a workbook that is not a sane zip or inflates past its cap, before any reader inflates it."""
    packed = path.stat().st_size
    limit = inflate_limit(packed)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_XLSX_ENTRIES:
                return (f"{PREFIX}: {path.name} has {len(entries):,} zip entries, more than the limit of "
                        f"{MAX_XLSX_ENTRIES:,} (not a spreadsheet export)")
            inflated = 0
            for info in entries:
                if info.compress_type not in _XLSX_METHODS:
                    return (f"{PREFIX}: {path.name}: zip entry {info.filename!r} uses compression method "
                            f"{info.compress_type} (an .xlsx uses only stored or deflate)")
                inflated = _inflate_member(archive, info, inflated, limit)
                if inflated > limit:
                    return (f"{PREFIX}: {path.name} inflates to more than {limit:,} bytes, the limit for a "
                            f"{packed:,}-byte workbook (at most {MAX_XLSX_INFLATED:,} bytes and "
                            f"{MAX_XLSX_RATIO}x the file size): a zip bomb?")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; the others: a damaged or hand-made archive
        return f"{PREFIX}: not a valid zip archive ({exc})"
    return None
