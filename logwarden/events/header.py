"""Strip a line's header (timestamp, host, level, component) and keep the message content.

Templates are mined and matched on the content only, so a timestamp or pid never splits one
event kind into many.
"""

from __future__ import annotations

import re

from logwarden.errors import ConfigError
from logwarden.events.masking import compile_regex

# Quantifiers are possessive wherever the next character can never be one they consume, which
# matches the same lines but spares the backtracking of the formats a line does not have.
_SYSLOG_COMPONENT = r"[^\s\[:]++(?: \d[\d.]*+)?(?:\[\d++\])?:\s+"
# The component is optional: a message without one still loses its timestamp and host.
_SYSLOG = r"[A-Z][a-z]{2} ++\d{1,2} \d{2}:\d{2}:\d{2} \S++ " + f"(?:{_SYSLOG_COMPONENT})?"

# Tried in this order; ISO 8601 first, the common format of today's services: the other formats
# reject such a line only after reading its first token, while ISO 8601 rejects theirs within
# five characters.  No line of the loghub samples is split differently for it.  Measured with
# benchmarks/parse_speed.py (two alternating runs): ISO 8601 lines (``synthetic``) 928k-941k ->
# 1.25M-1.29M lines/s, HDFS 1.77M-1.94M -> 1.66M-1.71M, the other loghub samples within the noise.
_HEADER_FORMATS = (
    # ISO 8601: 2026-11-21T10:00:00Z host svc[12]: msg
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d++)?(?:Z|[+-]\d{2}:?\d{2})? \S++ "
    + f"(?:{_SYSLOG_COMPONENT})?",
    # HDFS:     081109 203615 148 INFO dfs.DataNode$PacketResponder: msg
    r"\d{6} \d{6} \d++ [A-Z]++ [^\s:]++:\s+",
    # BGL:      - 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872
    #           R02-M1-N0-C:J12-U11 RAS KERNEL INFO msg
    r"\S++ \d++ \d{4}\.\d{2}\.\d{2} \S++ \d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d++ \S++ \S++ \S++ \S++\s+",
    # syslog (OpenSSH, Linux), optionally behind Thunderbird's "label epoch date user" prefix:
    #           Dec 10 06:55:46 LabSZ sshd[24200]: msg
    r"(?:\S++ \d++ \d{4}\.\d{2}\.\d{2} \S++ )?" + _SYSLOG,
)

DEFAULT_HEADER_REGEX = "(?:" + "|".join(_HEADER_FORMATS) + ")(?P<content>.*)"

CONTENT_GROUP = "content"


class HeaderStripper:
    """Applies a header regex anchored at the line start; its group ``content`` is the message."""

    def __init__(self, regex: str = DEFAULT_HEADER_REGEX) -> None:
        self._pattern = compile_regex(regex, "header regex", re.DOTALL)
        if CONTENT_GROUP not in self._pattern.groupindex:
            raise ConfigError(f"header regex {regex!r} has no named group (?P<{CONTENT_GROUP}>...)")
        self.regex = regex
        self._content_group = self._pattern.groupindex[CONTENT_GROUP]

    def content_of(self, line: str) -> str:
        """The message content of ``line``; the whole line when the header regex does not match."""
        content = self.content_or_none(line)
        return line if content is None else content

    def content_or_none(self, line: str) -> str | None:
        """The message content of ``line``; None when the header regex does not match (or its group
        ``content`` took no part), so a reader can count the lines mined whole, header and all."""
        match = self._pattern.match(line)
        return None if match is None else match.group(self._content_group)
