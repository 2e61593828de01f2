"""``logwarden train`` support: templates CSV, raw log files, option combinations and the summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from model_metadata import model_metadata

from logwarden.cli import build_parser
from logwarden.errors import ConfigError, InputFormatError
from logwarden.model.count_gate import CountGate
from logwarden.train.cli_support import (
    check_option_combination,
    read_log_lines,
    read_templates_csv,
    training_summary,
)


def test_templates_csv_event_ids_lose_their_e_prefix(tmp_path: Path) -> None:
    """EventId E5 becomes key 5, as sequence files write it; other ids are kept as they are."""
    path = tmp_path / "templates.csv"
    path.write_text(
        "EventId,EventTemplate\nE5,<*>Receiving block<*>\nauth-1,Accepted <*>\n", encoding="utf-8"
    )
    assert read_templates_csv(path) == {"5": "<*>Receiving block<*>", "auth-1": "Accepted <*>"}


def test_templates_csv_empty_event_id_names_its_line(tmp_path: Path) -> None:
    """A row without an EventId is refused with its file and line."""
    path = tmp_path / "templates.csv"
    path.write_text("EventId,EventTemplate\nE1,a\n ,b\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"templates\.csv:3: empty EventId"):
        read_templates_csv(path)


def test_templates_csv_two_rows_for_one_key_names_both_lines(tmp_path: Path) -> None:
    """E5 and 5 both name key 5: which template it has is refused, not left to the last row."""
    path = tmp_path / "templates.csv"
    path.write_text("EventId,EventTemplate\nE5,a <*>\nE6,b\n5,c <*>\n", encoding="utf-8")
    with pytest.raises(
        InputFormatError, match=r"templates\.csv:4: EventId '5' names key '5', as line 2 does"
    ):
        read_templates_csv(path)


def test_templates_csv_missing_file_says_which_kind(tmp_path: Path) -> None:
    """The not-found message says which of the input files is missing."""
    with pytest.raises(InputFormatError, match="templates CSV not found"):
        read_templates_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize("where", ["directory", "below_a_file"])
def test_read_log_lines_path_that_is_no_file_raises_input_format_error(tmp_path: Path, where: str) -> None:
    """Any OS error opening the log file (a directory, a path below a file) names the file."""
    (tmp_path / "plain").write_text("line\n", encoding="utf-8")
    path = tmp_path if where == "directory" else tmp_path / "plain" / "app.log"
    with pytest.raises(InputFormatError, match=rf"{re.escape(str(path))}: cannot read log file"):
        read_log_lines(path)


def test_read_log_lines_splits_only_at_newline_and_drops_a_byte_order_mark(tmp_path: Path) -> None:
    """Lines are what the daemon receives as records: a stray \\r stays inside its line (universal
    newlines would cut it in two) and a BOM is not part of the first line's header."""
    path = tmp_path / "app.log"
    path.write_bytes(b"\xef\xbb\xbfjob_1 started\r\njob_1 user x\rfrom y\njob_1 done\n")
    assert read_log_lines(path) == ["job_1 started\r\n", "job_1 user x\rfrom y\n", "job_1 done\n"]


def test_check_option_combination_labelled_with_logs_raises_config_error() -> None:
    """Labels name sessions by event keys, which a raw-log model (mined T<i> keys) never has."""
    args = build_parser().parse_args(
        ["train", "--logs", "a.log", "--entity-regex", r"job_\d+", "--labelled", "l.csv", "--out", "m"]
    )
    with pytest.raises(ConfigError, match="--labelled applies to --sequences and --event-field only"):
        check_option_combination(args)


def test_training_summary_reports_lines_dropped_while_mining() -> None:
    """A raw-log model's summary tells how many lines named no entity or fitted no template."""
    mining = {"lines": 91, "lines_without_entity": 31, "unmatched_lines": 2, "templates_mined": 7}
    metadata = model_metadata(
        vocabulary=("T0", "T1"),
        templates=("a <*>", "b <*>"),
        training={"sessions": 20, "mining": mining},
    )
    summary = training_summary(metadata, Path("m"), 1.0)
    assert summary["mining"] == mining


def test_training_summary_names_the_count_gate_or_why_there_is_none() -> None:
    """A gated model's summary gives the gate's threshold and how many combinations it knows; a model
    without one, the reason training recorded."""
    gated = model_metadata(count_gate=CountGate(10.5, (1, 2, 3)))
    assert training_summary(gated, Path("m"), 1.0)["count_gate"] == {"threshold": 10.5, "combinations": 3}
    declined = model_metadata(training={"count_gate": {"off": "counts do not repeat"}})
    assert training_summary(declined, Path("m"), 1.0)["count_gate"] == {"off": "counts do not repeat"}
