"""RawLineParser: header, entity and template together, as the daemon calls it per line."""

from __future__ import annotations

import dataclasses

import pytest

from logwarden.errors import ConfigError
from logwarden.events.header import DEFAULT_HEADER_REGEX
from logwarden.events.masking import DEFAULT_MASKING
from logwarden.events.raw import ParsedLine, RawLineParser, parser_settings
from logwarden.events.templates import NO_MATCH

TEMPLATES = ["PacketResponder <NUM> for block <BLK> terminating", "Invalid user <*> from <IP>"]


def test_parser_settings_defaults_to_project_header_and_masking() -> None:
    """parser_settings fills in the default header regex and masking rules."""
    settings = parser_settings(r"blk_-?\d+")
    assert settings.header_regex == DEFAULT_HEADER_REGEX
    assert settings.masking == DEFAULT_MASKING
    assert settings.entity_regex == r"blk_-?\d+"


def test_raw_parser_hdfs_line_gives_entity_template_and_content() -> None:
    """An HDFS line yields its block id, its template index and its header-free content."""
    parser = RawLineParser(parser_settings(r"blk_-?\d+"), TEMPLATES)
    line = (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_-38 terminating"
    )
    line += "\n"
    assert parser.parse_one(line) == ParsedLine(
        "blk_-38", 0, "PacketResponder 1 for block blk_-38 terminating"
    )


def test_raw_parser_entity_may_come_from_header() -> None:
    """The entity regex sees the whole line, so a pid in the header can key the session."""
    parser = RawLineParser(parser_settings(r"sshd\[(\d+)\]"), TEMPLATES)
    parsed = parser.parse_one("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
    assert parsed == ParsedLine("24200", 1, "Invalid user webmaster from 173.234.31.186")


def test_raw_parser_line_without_entity_still_gets_template() -> None:
    """No entity gives entity None; the template is still matched."""
    parser = RawLineParser(parser_settings(r"blk_-?\d+"), TEMPLATES)
    parsed = parser.parse_one("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user bob from 10.0.0.1")
    assert parsed.entity is None
    assert parsed.template_index == 1


def test_raw_parser_unknown_message_gives_no_match() -> None:
    """A message of no known template gives template index -1."""
    parser = RawLineParser(parser_settings(r"blk_-?\d+"), TEMPLATES)
    parsed = parser.parse_one("081109 203615 148 INFO dfs.DataNode: Corrupt block blk_1 found")
    assert parsed == ParsedLine("blk_1", NO_MATCH, "Corrupt block blk_1 found")


def test_raw_parser_same_line_twice_gives_same_result() -> None:
    """Parsing keeps no state: the same line always parses the same way."""
    parser = RawLineParser(parser_settings(r"blk_-?\d+"), TEMPLATES)
    line = "081109 203615 148 INFO x: unseen message blk_5"
    assert parser.parse_one(line) == parser.parse_one(line)


@pytest.mark.parametrize(
    ("field", "value"),
    [("header_regex", r"(?P<content>"), ("entity_regex", r"blk_("), ("masking", (("NUM", r"\d+("),))],
)
def test_raw_parser_invalid_settings_raise_config_error(field: str, value: object) -> None:
    """Any invalid regex in the settings fails construction with ConfigError."""
    settings = parser_settings(r"blk_-?\d+")
    broken = dataclasses.replace(settings, **{field: value})
    with pytest.raises(ConfigError):
        RawLineParser(broken, TEMPLATES)


def test_raw_parser_classify_one_agrees_with_parse_one(hdfs_lines: list[str]) -> None:
    """The daemon's classify_one gives the same entity and template as parse_one on every HDFS line."""
    from logwarden.train.mining import mine_log_lines

    settings = parser_settings(r"blk_-?\d+")
    parser = RawLineParser(settings, mine_log_lines(hdfs_lines, settings).templates)
    for line in hdfs_lines + ["081109 203615 148 INFO dfs.DataNode: something never seen blk_1"]:
        parsed = parser.parse_one(line)
        assert parser.classify_one(line.rstrip("\r\n")) == (parsed.entity, parsed.template_index)
