"""How raw log files are opened, by the trainer and the offline scorer alike.

Both must split a file into the same lines the daemon receives as records: only ``\\n`` ends a
line (a stray ``\\r`` inside a line stays in it, as it does in a Kafka record, where universal
newlines would cut it in two), a UTF-8 byte order mark is not part of the first line, and
undecodable bytes are kept as lone surrogates (``surrogateescape``) rather than fatal: the readers
count such a line as invalid (``invalid_utf8``, ``not_utf8``), as the daemon sends such a record to
its dead-letter topic, so a model never learns events the daemon never sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from logwarden.errors import DecodeError, InputFormatError


def open_log_file(path: Path) -> TextIO:
    """``path`` opened for reading lines; OSError as ``open`` raises it."""
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n")


def opened_log_file(path: Path) -> TextIO:
    """``open_log_file``, with a file that cannot be opened (missing, a directory, no permission) an
    InputFormatError naming it: the user's input, one line and the input's exit status."""
    try:
        return open_log_file(path)
    except FileNotFoundError as exc:
        raise InputFormatError(f"{path}: log file not found") from exc
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read log file: {exc.strerror or exc}") from exc


def log_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The lines of an opened log file, one at a time, each without a leading byte order mark; an error
    while reading (a failing disk or network file system) is an InputFormatError naming ``path``, as an
    error opening it is.

    Only reading is wrapped, so an error writing the output (a closed pipe) stays what it is.
    """
    while True:
        try:
            line = handle.readline()
        except OSError as exc:
            raise InputFormatError(f"{path}: cannot read log file: {exc.strerror or exc}") from exc
        if not line:
            return
        # The daemon drops a byte order mark at the start of every record; a file has one only at
        # its start (utf-8-sig drops that one), unless files were joined: drop each line's.
        yield line[1:] if line.startswith("\ufeff") else line


def not_utf8(line: str) -> DecodeError | None:
    """``invalid_utf8`` when ``line`` (read by ``open_log_file``) held bytes that are no UTF-8, as the
    daemon's decoder says of such a record; None for a line of valid UTF-8."""
    if line.isascii():
        return None
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        offset = len(line[: exc.start].encode("utf-8", "surrogateescape"))
        return DecodeError("invalid_utf8", f"line is not UTF-8 at byte offset {offset}")
    return None
