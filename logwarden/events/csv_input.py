"""Read a UTF-8 CSV input whose header must name given columns; errors name the file and line."""

from __future__ import annotations

import csv
from pathlib import Path

from logwarden.errors import InputFormatError


def read_csv_rows(path: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data row; InputFormatError for a missing file, bad encoding or header.

    ``what`` names the kind of file in the not-found message ("labelled CSV", "templates CSV").
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if any(column not in fields for column in columns):
                wanted = " and ".join(f"'{column}'" for column in columns)
                raise InputFormatError(f"{path}: header must have {wanted} columns, got {fields}")
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError as exc:
        raise InputFormatError(f"{path}: {what} not found") from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{path}: not UTF-8 text at byte {exc.start}") from exc
