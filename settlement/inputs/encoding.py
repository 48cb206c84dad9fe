"""The text encoding of an uploaded CSV (CONTRACT "What real exports may contain": Encoding).

Owns one decision and one transformation: UTF-8 (with or without BOM) is read as it is; a file that is
not valid UTF-8 but decodes cleanly, every byte of it, as GB18030 (Excel's "CSV" in a zh-CN locale) is
transcoded to a UTF-8 temp file next to it, streamed in chunks (never the whole file in memory); anything
else is refused naming what charset-normalizer found and how to save as "CSV UTF-8". Both decisions are
strict full decodes, no guess of our own. Must not import ``api``, ``settlement.cli`` or ``duckdb``.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 * 1024 * 1024
LONG_LINE = 2_000_000  # DuckDB's max_line_size; its parallel reader skips longer last lines silently
_BLOCK = LONG_LINE // 2  # a line longer than LONG_LINE covers a whole aligned block with no newline
SAVE_AS_UTF8 = 'save it from Excel as "CSV UTF-8 (Comma delimited)" and upload again'
GB18030_WARNING = "file encoding: GB18030 (read as such; save as 'CSV UTF-8' to avoid this)"


@dataclass(frozen=True)
class TextFacts:
    """What one pass over the bytes found: valid UTF-8, pure ASCII, the first NUL byte (line number)."""

    utf8: bool
    ascii: bool
    nul_line: int | None  # 1-based line of the first NUL byte, None when there is none
    long_line: int | None = None  # 1-based line of the first line longer than LONG_LINE bytes, if any
    crlf_lines: int = 0  # lines ending in CR LF
    lf_lines: int = 0  # every LF (so lf_lines - crlf_lines end in a bare LF, rows or quoted cells)

    @property
    def mixed_line_ends(self) -> bool:
        return 0 < self.crlf_lines < self.lf_lines


@dataclass(frozen=True)
class Decoded:
    """The file to read as UTF-8: ``path`` itself or a transcoded temp copy (``temporary``)."""

    path: Path
    encoding: str  # utf-8 | gb18030
    temporary: bool
    warnings: tuple[str, ...] = ()

    def remove(self) -> None:
        if self.temporary:
            self.path.unlink(missing_ok=True)


class TextTracker:
    """Fed every chunk of the file once (while it is hashed): strict UTF-8 validity, ASCII, NUL bytes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.utf8 = True
        self.ascii = True
        self.nul_line: int | None = None
        self._offset = 0
        self._lines_seen = 0
        self._line_start = 0  # offset of the start of the current line
        self.long_line: int | None = None
        self._crlf = 0
        self._last_byte = b""  # a CR that ends one chunk and an LF that starts the next are one CR LF

    def _track_lines(self, chunk: bytes) -> None:
        """Lines longer than LONG_LINE, found with a few memchr calls per chunk (no per-line loop)."""
        if self.long_line is not None:
            return
        for start in range(0, len(chunk), _BLOCK):
            end = min(start + _BLOCK, len(chunk))
            last = chunk.rfind(b"\n", start, end)
            if last < 0:
                if self._offset + end - self._line_start > LONG_LINE:
                    self.long_line = self._lines_seen + chunk.count(b"\n", 0, start) + 1
                    return
                continue
            first = chunk.find(b"\n", start, end)
            if self._offset + first - self._line_start > LONG_LINE:
                self.long_line = self._lines_seen + chunk.count(b"\n", 0, start) + 1
                return
            self._line_start = self._offset + last + 1
            # a long line strictly inside this block is impossible: the block is shorter than LONG_LINE

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.nul_line is None:
            at = chunk.find(b"\x00")
            if at >= 0:
                self.nul_line = self._lines_seen + chunk.count(b"\n", 0, at) + 1
        self._track_lines(chunk)
        self._lines_seen += chunk.count(b"\n")
        self._crlf += chunk.count(b"\r\n") + (self._last_byte == b"\r" and chunk[:1] == b"\n")
        self._last_byte = chunk[-1:] or self._last_byte
        self._offset += len(chunk)
        if self.ascii and not chunk.isascii():
            self.ascii = False
        if self.utf8 and not self.ascii:
            try:
                self._decoder.decode(chunk, final)
            except UnicodeDecodeError:
                self.utf8 = False
        elif self.utf8 and final:
            try:
                self._decoder.decode(b"", True)
            except UnicodeDecodeError:
                self.utf8 = False

    def facts(self) -> TextFacts:
        return TextFacts(self.utf8, self.ascii, self.nul_line, self.long_line, self._crlf, self._lines_seen)


def _decodes_cleanly(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", True)
        except UnicodeDecodeError:
            return False
    return True


def describe_encoding(path: Path) -> str:
    """What the file looks like, for the refusal: a BOM names itself, else charset-normalizer's best guess."""
    with path.open("rb") as handle:
        head = handle.read(256 * 1024)
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16 (Excel's \"Unicode Text\")"),
                      (codecs.BOM_UTF16_BE, "UTF-16 (Excel's \"Unicode Text\")")):
        if head.startswith(bom):
            return name
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return f"{best.encoding} (as detected)" if best is not None else "no known text encoding"


def not_text_reason(path: Path) -> str:
    return (f"the file is neither UTF-8 nor GB18030 text (it looks like {describe_encoding(path)}): "
            f"{SAVE_AS_UTF8}")


def as_utf8(path: Path, text: TextFacts) -> Decoded | str:
    """The file to read as UTF-8, or the reason it cannot be read as text (never a guess)."""
    if text.utf8:
        return Decoded(path, "utf-8", temporary=False)
    if not _decodes_cleanly(path, "gb18030"):
        return not_text_reason(path)
    return Decoded(transcode(path, "gb18030"), "gb18030", temporary=True, warnings=(GB18030_WARNING,))


def transcode(path: Path, encoding: str) -> Path:
    """Write a UTF-8 copy of ``path`` next to it (else in the temp folder), chunk by chunk."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".utf8.csv", dir=path.parent)
    except OSError:  # a read-only folder (a file given on the command line)
        fd, name = tempfile.mkstemp(prefix="settle-", suffix=".utf8.csv")
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", True).encode("utf-8"))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
