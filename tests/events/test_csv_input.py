"""CSV inputs (labelled sessions, template lists): rows with their line numbers, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.errors import InputFormatError
from logwarden.events.csv_input import read_csv_rows
from logwarden.events.sequences import read_labelled_csv


def write(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_rows_come_with_the_line_they_end_on(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b\n1,2\n"x\ny",3\n')
    assert read_csv_rows(path, ("a", "b"), "test CSV") == [
        (2, {"a": "1", "b": "2"}),
        (4, {"a": "x\ny", "b": "3"}),
    ]


def test_missing_column_is_named_with_the_header_found(tmp_path: Path) -> None:
    path = write(tmp_path, "Sequence,labels\n1 2,0\n")
    with pytest.raises(
        InputFormatError,
        match=r"header must have 'Sequence' and 'label' columns, got \['Sequence', 'labels'\]",
    ):
        read_labelled_csv(path)


def test_missing_file_and_bad_encoding_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="labelled CSV not found"):
        read_labelled_csv(tmp_path / "absent.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"Sequence,label\n\xe9,0\n")
    with pytest.raises(InputFormatError, match="not UTF-8 text at byte 15"):
        read_labelled_csv(path)


def test_labelled_csv_bad_label_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "Sequence,label\n1 2,0\n3 4,yes\n")
    with pytest.raises(InputFormatError, match=r"input\.csv:3: label must be 0 or 1, got 'yes'"):
        read_labelled_csv(path)


def test_labelled_csv_reads_keys_and_labels(tmp_path: Path) -> None:
    rows = read_labelled_csv(write(tmp_path, "Sequence,label\n5 22 5,0\n,1\n"))
    assert [(row.keys, row.anomalous) for row in rows] == [(["5", "22", "5"], False), ([], True)]
