"""CSV inputs (labelled sessions, template lists): rows with their line numbers, clear errors otherwise."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from logwarden.errors import InputFormatError
from logwarden.events import csv_input
from logwarden.events.csv_input import read_csv_rows
from logwarden.events.sequences import read_labelled_csv


def write(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    """Write ``text`` unchanged (newline="", so no newline translation) to tmp_path and return the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_rows_come_with_the_line_they_end_on(tmp_path: Path) -> None:
    """Each row carries the line it ends on: 2 for ``1,2``, 4 for the row whose quoted field spans 3-4."""
    path = write(tmp_path, 'a,b\n1,2\n"x\ny",3\n')
    assert read_csv_rows(path, ("a", "b"), "test CSV") == [
        (2, {"a": "1", "b": "2"}),
        (4, {"a": "x\ny", "b": "3"}),
    ]


def test_missing_column_is_named_with_the_header_found(tmp_path: Path) -> None:
    """A header ``Sequence,labels`` is refused, naming both required columns and the header found."""
    path = write(tmp_path, "Sequence,labels\n1 2,0\n")
    with pytest.raises(
        InputFormatError,
        match=r"header must have 'Sequence' and 'label' columns, got \['Sequence', 'labels'\]",
    ):
        read_labelled_csv(path)


def test_missing_file_and_bad_encoding_name_the_file(tmp_path: Path) -> None:
    """An absent file, and a Latin-1 byte on line 2, are input errors naming the file (and line, offset)."""
    with pytest.raises(InputFormatError, match="labelled CSV not found"):
        read_labelled_csv(tmp_path / "absent.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"Sequence,label\n\xe9,0\n")
    with pytest.raises(
        InputFormatError, match=r"latin1\.csv:2: not UTF-8 text \(byte offset 0 in the line\)"
    ):
        read_labelled_csv(path)


def test_bad_encoding_deep_in_a_large_file_names_its_line(tmp_path: Path) -> None:
    """The decoder reads in chunks; the error still names the line holding the bad byte."""
    path = tmp_path / "big.csv"
    path.write_bytes(b"Sequence,label\n" + b"5 22 11 9,0\n" * 3000 + b"5 22,\xff\n")
    with pytest.raises(
        InputFormatError, match=r"big\.csv:3002: not UTF-8 text \(byte offset 5 in the line\)"
    ):
        read_labelled_csv(path)


@pytest.mark.parametrize("where", ["directory", "below_a_file"])
def test_path_that_is_no_file_names_the_path(tmp_path: Path, where: str) -> None:
    """A directory, or a path below a regular file, is an input error naming the path."""
    (tmp_path / "plain").write_text("Sequence,label\n", encoding="utf-8")
    path = tmp_path if where == "directory" else tmp_path / "plain" / "labelled.csv"
    with pytest.raises(InputFormatError, match=rf"{re.escape(str(path))}: cannot read labelled CSV"):
        read_labelled_csv(path)


def test_field_longer_than_the_csv_default_limit_is_read(tmp_path: Path) -> None:
    """A session of 100,000 events (a 200 kB field, above the csv module's 128 KiB default) is read."""
    keys = ["5"] * 100_000
    rows = read_labelled_csv(write(tmp_path, f"Sequence,label\n1 2,0\n{' '.join(keys)},1\n"))
    assert [len(row.keys) for row in rows] == [2, 100_000]


@pytest.fixture
def small_field_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A field size limit of 16 characters while the test runs; the process-wide limit is restored."""
    previous = csv.field_size_limit()
    monkeypatch.setattr(csv_input, "FIELD_SIZE_LIMIT", 16)
    yield
    csv.field_size_limit(previous)


@pytest.mark.usefixtures("small_field_limit")
def test_csv_error_names_file_and_line(tmp_path: Path) -> None:
    """A row the csv module rejects (a field above the limit) is an input error naming its line."""
    path = write(tmp_path, "Sequence,label\n1 2,0\n" + "3 " * 20 + ",1\n")
    with pytest.raises(InputFormatError, match=r"input\.csv:3: .*field larger than field limit"):
        read_labelled_csv(path)


def test_utf8_byte_order_mark_before_the_header_is_accepted(tmp_path: Path) -> None:
    """Spreadsheet programs start UTF-8 CSVs with a BOM; the first column is still 'Sequence'."""
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffSequence,label\n5 22,1\n".encode())
    assert [(row.keys, row.anomalous) for row in read_labelled_csv(path)] == [(["5", "22"], True)]


def test_labelled_csv_bad_label_names_its_line(tmp_path: Path) -> None:
    """A label other than 0 or 1 (``yes`` on line 3) is an input error naming the file, line and value."""
    path = write(tmp_path, "Sequence,label\n1 2,0\n3 4,yes\n")
    with pytest.raises(InputFormatError, match=r"input\.csv:3: label must be 0 or 1, got 'yes'"):
        read_labelled_csv(path)


def test_labelled_csv_reads_keys_and_labels(tmp_path: Path) -> None:
    """Sequence splits on spaces into keys and label 1 is anomalous."""
    rows = read_labelled_csv(write(tmp_path, "Sequence,label\n5 22 5,0\n9,1\n"))
    assert [(row.keys, row.anomalous) for row in rows] == [(["5", "22", "5"], False), (["9"], True)]


@pytest.mark.parametrize("sequence", ["", "   ", '""'])
def test_labelled_csv_empty_sequence_is_an_error_naming_its_line(tmp_path: Path, sequence: str) -> None:
    """A labelled row with no event key is refused: scored it would alert, skipped it would vanish from
    the counts, and ``eval`` and ``train --labelled`` must not each pick one."""
    path = write(tmp_path, f"Sequence,label\n5 22,0\n{sequence},1\n")
    with pytest.raises(InputFormatError, match=r"input\.csv:3: the Sequence is empty"):
        read_labelled_csv(path)
