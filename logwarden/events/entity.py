"""Find the entity a line belongs to (an HDFS block, a pid, a user): the key of its session."""

from __future__ import annotations

from logwarden.events.masking import compile_regex


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
