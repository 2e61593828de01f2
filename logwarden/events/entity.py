"""Find the entity a line belongs to (an HDFS block, a pid, a user): the key of its session."""

from __future__ import annotations

from logwarden.errors import DecodeError
from logwarden.events.masking import compile_regex
from logwarden.events.templates import WILDCARD

MAX_ENTITY_CHARS = 1024
"""Longest entity accepted.  An entity is an identifier (host, user, session, block id); it becomes
the key of every alert and score record and of its state row, so a megabyte-long one would make
its alerts larger than Kafka accepts and stop the daemon at each restart.  The daemon sends a
longer one to the dead-letter topic (reason ``oversize``); the trainer and the offline scorer
count its line as invalid, so a model is never trained on sessions the daemon would not keep."""


def entity_refusal(entity: str, source: str) -> DecodeError | None:
    """Why ``entity`` (read from ``source``: a field, the entity regex, the record key) cannot be one.

    ``oversize`` past ``MAX_ENTITY_CHARS``; ``invalid_utf8`` for a lone UTF-16 surrogate, which
    JSON can spell (``"\\ud800"``) and UTF-8 cannot encode: the entity becomes a Kafka record key
    and a state-store key, both UTF-8, and left in it would crash every attempt to write its alert
    or save the state, after each restart again.  None when the entity is fine.
    """
    if len(entity) > MAX_ENTITY_CHARS:
        return DecodeError("oversize", f"{source}: entity of {len(entity)} characters > {MAX_ENTITY_CHARS}")
    if not entity.isascii():
        try:
            entity.encode("utf-8")
        except UnicodeEncodeError as exc:
            return DecodeError(
                "invalid_utf8",
                f"{source}: the entity holds a lone UTF-16 surrogate "
                f"(\\u{ord(entity[exc.start]):04x}) at character {exc.start}, which UTF-8 cannot encode",
            )
    return None


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
    return " ".join(WILDCARD if names_entity(token, entity) else token for token in masked_content.split())


def names_entity(token: str, entity: str) -> bool:
    """Whether ``token`` holds ``entity``'s text not inside a longer word (no letter, digit, ``_`` or
    ``-`` right before or after it), as ``(?<![\\w-])ENTITY(?![\\w-])`` would find.

    String search, not a regex per entity: mining meets every entity once, and compiling a pattern
    for each of 500,000 short-lived ones cost a third of mining time.
    """
    start = token.find(entity)
    while start >= 0:
        end = start + len(entity)
        if (start == 0 or not _word_character(token[start - 1])) and (
            end == len(token) or not _word_character(token[end])
        ):
            return True
        start = token.find(entity, start + 1)
    return False


def _word_character(character: str) -> bool:
    """What regex ``[\\w-]`` matches: a letter or digit of any script, ``_`` or ``-``."""
    return character.isalnum() or character in "_-"
