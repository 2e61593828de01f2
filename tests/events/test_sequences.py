"""Sequence files: one session per line, whatever the line endings, and clear errors otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from logwarden.errors import InputFormatError
from logwarden.events.sequences import read_sequences


def test_read_sequences_lone_carriage_return_does_not_split_a_session(tmp_path: Path) -> None:
    """Only '\\n' ends a session; a stray '\\r' inside a line is whitespace, so line numbers hold."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"5 22 11\n5 22\r11 9\n5 4\n")
    assert read_sequences(path) == [["5", "22", "11"], ["5", "22", "11", "9"], ["5", "4"]]


def test_read_sequences_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    """A file written on Windows reads like the same file with '\\n' endings."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"5 22\r\n\r\n11 9\r\n")
    assert read_sequences(path) == [["5", "22"], [], ["11", "9"]]


def test_read_sequences_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    """A file saved with a UTF-8 BOM starts with the key written, not an unknown '\\ufeff5'."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"\xef\xbb\xbf5 22\n11 9\n")
    assert read_sequences(path) == [["5", "22"], ["11", "9"]]


@pytest.mark.parametrize("where", ["directory", "below_a_file"])
def test_read_sequences_path_that_is_no_file_raises_input_format_error(tmp_path: Path, where: str) -> None:
    """A directory, or a path below a regular file, is reported with the path, not a traceback."""
    (tmp_path / "plain").write_text("1 2\n", encoding="utf-8")
    path = tmp_path if where == "directory" else tmp_path / "plain" / "sessions.txt"
    with pytest.raises(InputFormatError, match=rf"{re.escape(str(path))}: cannot read sequences file"):
        read_sequences(path)


def test_read_sequences_bad_utf8_names_line_and_offset_in_it(tmp_path: Path) -> None:
    """The error gives the line holding the bad byte and its offset there, even deep in a large file."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"5 22 11 9\n" * 3000 + b"5 \xe9 9\n")
    with pytest.raises(
        InputFormatError, match=r"sessions\.txt:3001: not UTF-8 text \(byte offset 2 in the line\)"
    ):
        read_sequences(path)
