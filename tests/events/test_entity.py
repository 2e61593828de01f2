"""Entity extraction: whole match, group 1, no match, invalid regex."""

from __future__ import annotations

import pytest

from logwarden.errors import ConfigError
from logwarden.events.entity import RegexEntityExtractor


def test_entity_extractor_without_group_returns_first_whole_match() -> None:
    """With no group the first match is the entity."""
    extractor = RegexEntityExtractor(r"blk_-?\d+")
    assert extractor.entity_of("Deleting block blk_-42 file /x/blk_7") == "blk_-42"


def test_entity_extractor_with_group_returns_group_one() -> None:
    """With groups, group 1 of the first match is the entity."""
    extractor = RegexEntityExtractor(r"sshd\[(\d+)\]")
    assert extractor.entity_of("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user") == "24200"


def test_entity_extractor_no_match_returns_none() -> None:
    """A line naming no entity gives None."""
    assert RegexEntityExtractor(r"blk_-?\d+").entity_of("no block here") is None


def test_entity_extractor_unused_group_returns_none() -> None:
    """A match whose group 1 took no part names no entity."""
    assert RegexEntityExtractor(r"user (\w+)|anonymous").entity_of("anonymous login") is None


def test_entity_extractor_invalid_regex_raises_config_error_naming_it() -> None:
    """An invalid regex is a ConfigError quoting it."""
    regex = r"blk_(\d+"
    with pytest.raises(ConfigError) as caught:
        RegexEntityExtractor(regex)
    assert repr(regex) in str(caught.value)
