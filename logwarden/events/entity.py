"""Find the entity a line belongs to (an HDFS block, a pid, a user): the key of its session."""

from __future__ import annotations

import functools
import re

from logwarden.events.masking import compile_regex
from logwarden.events.templates import WILDCARD


class RegexEntityExtractor:
    """The first match of a regex, or of its group 1 when it has groups, is the entity."""

    def __init__(self, regex: str) -> None:
        self._pattern = compile_regex(regex, "entity regex")
        self.regex = regex
        self._group = 1 if self._pattern.groups else 0

    def entity_of(self, text: str) -> str | None:
        """The entity named in ``text``, or None when there is none (or group 1 did not take part)."""
        match = self._pattern.search(text)
        if match is None:
            return None
        entity = match.group(self._group)
        return entity or None


def entity_as_wildcard(masked_content: str, entity: str) -> str:
    """``masked_content`` with each token that names ``entity`` replaced by Drain's wildcard ``<*>``.

    An entity the masking rules leave in place (``job_12``: digits glued to a word are no number)
    would otherwise reach Drain3 as a word.  On short messages (``job_12 start``, ``job_12
    done``) Drain3 then merges the events of one entity instead of one event of all entities, and
    mines one template per entity, none of which fits the next entity's lines (UNKNOWN, an alert,
    for every event of every new entity).  A whole token goes, punctuation around the entity
    included (``job_12:``), because the matcher's wildcard stands for a whole token; a token merely
    containing the entity's text inside a longer word (``job_123`` for ``job_12``) stays.  Mining
    uses it, and the matcher's ``<*>`` then fits any entity's token at that place; so does the
    offline scorer's list of new templates, so one new event of many entities is one entry.
    """
    if entity not in masked_content:
        return masked_content
    naming = _entity_token_pattern(entity)
    return " ".join(WILDCARD if naming.search(token) else token for token in masked_content.split())


@functools.lru_cache(maxsize=4096)
def _entity_token_pattern(entity: str) -> re.Pattern[str]:
    """The entity's text, not inside a longer word: what makes a token name it."""
    return re.compile(rf"(?<![\w-]){re.escape(entity)}(?![\w-])")
