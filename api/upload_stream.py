"""Stream a multipart upload body to a file on disk in chunks, with a size cap (issue 5).

The body is never held in memory: each chunk the server receives is parsed by python-multipart's
streaming parser and the bytes of the ``file`` part are written straight to a spool file. Going over the
cap stops reading and answers 413. Must not import the routes, the store or any settlement module.

Each upload spools into its own directory ``<spool root>/<server pid>-<random hex>``; a server killed
mid-upload leaves it behind, so a starting server removes the directories of processes that no longer
run (``remove_spool_leftovers``, issue 15 item 6). The pid in the name keeps that safe when several
servers share one ``SETTLE_UPLOAD_DIR``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

log = logging.getLogger("settle.api.uploads")
FILE_FIELD = "file"
_SPOOL_NAME = re.compile(r"(?:(?P<pid>\d+)-)?[0-9a-f]{32}")
MAX_OTHER_PART_BYTES = 64 * 1024  # non-file form fields are tiny; more is abuse
MAX_PARTS = 16


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the size cap of {limit} bytes")
        self.limit = limit


class BadUpload(Exception):
    """The body is not a multipart form with one ``file`` part (answered 422)."""


@dataclass(frozen=True)
class SpooledUpload:
    directory: Path  # private directory holding only this upload; remove it when done
    path: Path
    file_name: str
    bytes: int

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def safe_file_name(raw: str) -> str:
    """The base name only (no directory), printable, bounded; the extension is kept (it names the format)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    if name in ("", ".", ".."):
        name = "upload"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190] + dot + ext[:9]) if dot else name[:200]
    return name


class _Receiver:
    """python-multipart callbacks: route the file part's bytes to disk, keep headers small."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.parts = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out: BinaryIO | None = None
        self.other_bytes = 0
        self.file_path: Path | None = None
        self.file_name: str | None = None
        self.file_bytes = 0
        self.file_done = False

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadUpload(f"too many form parts (at most {MAX_PARTS})")
        self.headers = {}
        self.other_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]
        if len(self.header_field) > 1024:
            raise BadUpload("form part header too long")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]
        if len(self.header_value) > 4096:
            raise BadUpload("form part header too long")

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD and b"filename" in options:
            if self.file_path is not None:
                raise BadUpload("send exactly one file part named 'file'")
            self.file_name = safe_file_name(options[b"filename"].decode("utf-8", "replace"))
            self.file_path = self.directory / self.file_name
            self.out = open(self.file_path, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.max_bytes:
                raise UploadTooLarge(self.max_bytes)
            self.out.write(data[start:end])
        else:
            self.other_bytes += end - start
            if self.other_bytes > MAX_OTHER_PART_BYTES:
                raise BadUpload("a form field other than 'file' is too large")

    def on_part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
            self.file_done = True

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_spool_leftovers(spool_root: Path) -> int:
    """At server start: remove the spool directories of interrupted uploads; return how many.

    Only names this module makes are touched (``<pid>-<32 hex>``, and the bare ``<32 hex>`` of earlier
    versions); a directory whose pid still runs belongs to another live server and stays. This server has
    no upload yet, so its own pid (reused from a dead one) counts as dead.
    """
    if not spool_root.is_dir():
        return 0
    removed = 0
    for entry in spool_root.iterdir():
        match = _SPOOL_NAME.fullmatch(entry.name)
        if match is None or not entry.is_dir() or entry.is_symlink():
            continue
        pid = int(match["pid"]) if match["pid"] else None
        if pid is not None and pid != os.getpid() and _running(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    if removed:
        log.warning("removed %d spool directories of interrupted uploads from %s", removed, spool_root)
    return removed


async def spool_upload(
    content_type: str | None, body: AsyncIterator[bytes], *, spool_root: Path, max_bytes: int
) -> SpooledUpload:
    """Parse ``body`` as multipart/form-data and write its ``file`` part to a new private directory."""
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise BadUpload("send the trade file as multipart/form-data with a part named 'file'")
    spool_root.mkdir(parents=True, exist_ok=True)
    directory = spool_root / f"{os.getpid()}-{uuid.uuid4().hex}"
    directory.mkdir()
    receiver = _Receiver(directory, max_bytes)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if receiver.file_path is None or not receiver.file_done:
            raise BadUpload("no complete part named 'file' with a filename in the form")
        return SpooledUpload(directory, receiver.file_path, receiver.file_name or "upload", receiver.file_bytes)
    except (UploadTooLarge, BadUpload):
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    except Exception as exc:  # python-multipart raises its own errors for malformed bodies
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise BadUpload(f"malformed multipart body: {exc}") from exc
