"""Turn one raw log line into (entity, template index, content): the parse both trainer and daemon run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from logwarden.errors import ConfigError
from logwarden.events.entity import RegexEntityExtractor
from logwarden.events.header import DEFAULT_HEADER_REGEX, HeaderStripper
from logwarden.events.masking import DEFAULT_MASKING
from logwarden.events.templates import TemplateMatcher
from logwarden.model.contract import ParserSettings


class ParsedLine(NamedTuple):
    """One parsed line; ``template_index`` is -1 when no known template fits."""

    entity: str | None
    template_index: int
    content: str


def parser_settings(
    entity_regex: str | None,
    *,
    header_regex: str = DEFAULT_HEADER_REGEX,
    masking: Sequence[tuple[str, str]] = DEFAULT_MASKING,
    collapse_repeated_masks: bool = True,
) -> ParserSettings:
    """ParserSettings with the project's default header and masking unless given (what new models get)."""
    return ParserSettings(
        header_regex=header_regex,
        entity_regex=entity_regex,
        masking=tuple((str(name), str(pattern)) for name, pattern in masking),
        collapse_repeated_masks=collapse_repeated_masks,
    )


class RawLineParser:
    """Header stripping, entity extraction and template matching, configured once.

    The entity regex runs over the whole line, so header fields (a pid, a host) can be the
    entity; templates are matched on the content only.  Constructing it validates every
    regex and raises ConfigError naming the bad one, or saying that there is no entity regex.
    """

    def __init__(self, settings: ParserSettings, templates: Sequence[str]) -> None:
        if settings.entity_regex is None:
            raise ConfigError(
                "no entity regex: the model was trained on JSON events grouped by a field; "
                "give an entity regex for raw lines"
            )
        self.settings = settings
        self._header = HeaderStripper(settings.header_regex)
        self._entity = RegexEntityExtractor(settings.entity_regex)
        self._matcher = TemplateMatcher(templates, settings.masking, settings.collapse_repeated_masks)

    @property
    def templates(self) -> tuple[str, ...]:
        """The templates indices refer to."""
        return self._matcher.templates

    def classify_one(self, line: str) -> tuple[str | None, int]:
        """(entity, template index) of a line without its newline: ``parse_one`` for the hot path."""
        return self._entity.entity_of(line), self._matcher.match_one(self._header.content_of(line))

    def parse_one(self, line: str) -> ParsedLine:
        """Parse one line; a trailing newline is ignored."""
        line = line.rstrip("\r\n")
        content = self._header.content_of(line)
        return ParsedLine(self._entity.entity_of(line), self._matcher.match_one(content), content)
