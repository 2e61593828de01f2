"""Read a UTF-8 CSV input whose header must name given columns; errors name the file and line."""

from __future__ import annotations

import csv
from pathlib import Path

from logwarden.errors import InputFormatError

# One labelled session is one field; HDFS sessions run to thousands of events, and the csv
# module's default limit (128 KiB) would reject a session of ~30,000 of them.
FIELD_SIZE_LIMIT = 64 * 1024 * 1024


def read_csv_rows(path: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data row; InputFormatError for an unreadable file, bad encoding or header.

    ``what`` names the kind of file in the messages ("labelled CSV", "templates CSV").  A UTF-8
    byte order mark, as spreadsheet programs write, is skipped.
    """
    # The limit is process-wide (the csv module has no per-reader one); setting it on every call
    # keeps it in force whatever else in the process changed it.
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                fields = reader.fieldnames or []
                if any(column not in fields for column in columns):
                    wanted = " and ".join(f"'{column}'" for column in columns)
                    raise InputFormatError(f"{path}: header must have {wanted} columns, got {fields}")
                return [(reader.line_num, row) for row in reader]
            except csv.Error as exc:
                # DictReader.line_num is updated only after a row parses; its reader's is current.
                raise InputFormatError(
                    f"{path}:{reader.reader.line_num}: not a valid CSV row: {exc}"
                ) from exc
    except FileNotFoundError as exc:
        raise InputFormatError(f"{path}: {what} not found") from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(describe_utf8_error(path)) from exc
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc


def describe_utf8_error(path: Path) -> str:
    """The error message naming the first line of ``path`` that is not UTF-8, and the offset in it.

    A UnicodeDecodeError's offset counts from the start of the chunk the decoder was given, not
    of the file, so the file is read again, line by line, to find where the bad byte is.
    """
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return f"{path}:{number}: not UTF-8 text (byte offset {exc.start} in the line)"
    except OSError as exc:
        return f"{path}: not UTF-8 text (cannot read it again to locate the error: {exc.strerror or exc})"
    return f"{path}: not UTF-8 text"
