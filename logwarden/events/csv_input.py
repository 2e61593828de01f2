"""Read a UTF-8 CSV input whose header must name given columns; errors name the file and line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from logwarden.errors import InputFormatError

# One labelled session is one field; HDFS sessions run to thousands of events, and the csv
# module's default limit (128 KiB) would reject a session of ~30,000 of them.
FIELD_SIZE_LIMIT = 64 * 1024 * 1024


def read_csv_rows(path: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data row; InputFormatError for an unreadable file, bad encoding or header.

    ``what`` names the kind of file in the messages ("labelled CSV", "templates CSV").  A UTF-8
    byte order mark, as spreadsheet programs write, and blank lines are skipped.  A row's line is
    the one it ends on.  Quoting is strict and every row must have as many fields as the header:
    the csv module's lenient defaults would read an unterminated quote as one field holding the
    rest of the file, and drop or leave empty the fields of a row with an unquoted comma too many
    or a field too few, silently losing sessions or template text.
    """
    # The limit is process-wide (the csv module has no per-reader one); setting it on every call
    # keeps it in force whatever else in the process changed it.
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _rows_of(path, handle, columns)
    except FileNotFoundError as exc:
        raise InputFormatError(f"{path}: {what} not found") from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(describe_utf8_error(path)) from exc
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc


def _rows_of(path: Path, handle: TextIO, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The rows of ``handle`` under a header that names ``columns``; InputFormatError naming the line."""
    reader = csv.reader(handle, strict=True)
    row_start = 1
    try:
        header = next(reader, [])
        line_num = reader.line_num
        if any(column not in header for column in columns):
            wanted = " and ".join(f"'{column}'" for column in columns)
            where = f"{path}:{line_num}:" if line_num else f"{path}: empty file,"
            raise InputFormatError(f"{where} header must have {wanted} columns, got {header}")
        rows: list[tuple[int, dict[str, str]]] = []
        row_start = line_num + 1
        for fields in reader:
            line_num = reader.line_num
            if fields:  # a blank line reads as no fields at all
                if len(fields) != len(header):
                    plural = "" if len(fields) == 1 else "s"
                    raise InputFormatError(
                        f"{path}:{line_num}: the row has {len(fields)} field{plural}, the header "
                        f"{len(header)} (an unquoted comma, or a missing column?)"
                    )
                rows.append((line_num, dict(zip(header, fields, strict=True))))
            row_start = line_num + 1
        return rows
    except csv.Error as exc:
        end = reader.line_num
        runs_to = f" (the row runs to line {end})" if end > row_start else ""
        raise InputFormatError(f"{path}:{row_start}: not a valid CSV row{runs_to}: {exc}") from exc


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
