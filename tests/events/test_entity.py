"""Entity extraction: whole match, group 1, no match, invalid regex; an entity's token as a wildcard."""

from __future__ import annotations

import random
import re

import pytest

from logwarden.errors import ConfigError
from logwarden.events.entity import RegexEntityExtractor, entity_as_wildcard, names_entity


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


@pytest.mark.parametrize(
    ("masked", "entity", "expected"),
    [
        ("job_12 start", "job_12", "<*> start"),
        ("ended job_12: ok (job_12)", "job_12", "ended <*> ok <*>"),
        ("job_123 start", "job_12", "job_123 start"),
        ("user alice logged in from <IP>", "alice", "user <*> logged in from <IP>"),
        ("malice aforethought", "alice", "malice aforethought"),
        ("deleted <BLK>", "blk_7", "deleted <BLK>"),
    ],
)
def test_entity_as_wildcard_replaces_whole_tokens_naming_the_entity_only(
    masked: str, entity: str, expected: str
) -> None:
    """The matcher's wildcard stands for one whole token, so the token goes whole; a longer word stays."""
    assert entity_as_wildcard(masked, entity) == expected


def test_names_entity_agrees_with_the_regex_it_replaces_on_random_tokens() -> None:
    """The string search finds the entity where ``(?<![\\w-])ENTITY(?![\\w-])`` would: 20,000 seeded
    random tokens and entities, with non-ASCII letters and digits, punctuation and repeats."""
    rng = random.Random(5)
    for _ in range(20_000):
        entity = "".join(rng.choice("ab1_-é.") for _ in range(rng.randint(1, 3)))
        token = "".join(rng.choice("ab_-1.:é²x/") for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.5:
            at = rng.randint(0, len(token))
            token = token[:at] + entity + token[at:]
        expected = re.search(rf"(?<![\w-]){re.escape(entity)}(?![\w-])", token) is not None
        assert names_entity(token, entity) == expected, (token, entity)
