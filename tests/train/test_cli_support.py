"""Reading a loghub-style templates CSV for ``logwarden train --templates``."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.errors import InputFormatError
from logwarden.train.cli_support import read_templates_csv


def test_templates_csv_event_ids_lose_their_e_prefix(tmp_path: Path) -> None:
    path = tmp_path / "templates.csv"
    path.write_text(
        "EventId,EventTemplate\nE5,<*>Receiving block<*>\nauth-1,Accepted <*>\n", encoding="utf-8"
    )
    assert read_templates_csv(path) == {"5": "<*>Receiving block<*>", "auth-1": "Accepted <*>"}


def test_templates_csv_empty_event_id_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "templates.csv"
    path.write_text("EventId,EventTemplate\nE1,a\n ,b\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"templates\.csv:3: empty EventId"):
        read_templates_csv(path)


def test_templates_csv_missing_file_says_which_kind(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="templates CSV not found"):
        read_templates_csv(tmp_path / "absent.csv")
