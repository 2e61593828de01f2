"""Replace variable parts of a message (block ids, addresses, numbers) with ``<NAME>`` tokens.

The same ordered rules drive template mining (text is masked before Drain3 sees it) and
template matching (each ``<NAME>`` in a template matches what its rule matches), so there is
one masking definition in the project, stored with every model in ``ParserSettings.masking``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from logwarden.errors import ConfigError

MaskingRules = Sequence[tuple[str, str]]

DEFAULT_MASKING: tuple[tuple[str, str], ...] = (
    ("BLK", r"blk_-?\d+"),
    # A full stop after the address ends a sentence ("unknown lease 10.0.4.251.") and is not masked.
    ("IP", r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?!\d|\.\d)"),
    # Six or more colon-separated hex bytes: MAC addresses and longer hardware ids, masked whole so
    # that no byte of them is left in a template ("00:11:43:e3:ba:c3", "FF:F2:9F:16:CF:0F:00:0D").
    ("MAC", r"(?<![\w:])[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5,}(?![\w:])"),
    # 0x-prefixed; a run of 8+ hex digits holding a letter (ids, hashes); or a run of 8+ digits with
    # a leading zero, the same zero-padded field without a letter this time ("iar 00106570" as well
    # as "iar 0010a570"), which would otherwise become a <NUM> and another template.
    (
        "HEX",
        r"\b(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}|0\d{7,})\b",
    ),
    # Digits glued to a word, dot or dash (ssh2, 2.6.5-1.358, part-00001) stay part of that word; a
    # full stop that ends a sentence ("closed after 5.") does not glue.
    ("NUM", r"(?<![\w.-])[-+]?\d+(?:\.\d+)?(?![\w-]|\.\w)"),
)

_RULE_NAME = re.compile(r"\w+")


def mask_token(name: str) -> str:
    """The token a rule writes in place of what it matches."""
    return f"<{name}>"


def compile_rules(rules: MaskingRules) -> list[tuple[str, re.Pattern[str]]]:
    """Validate and compile masking rules; ConfigError naming the rule on a bad name or regex.

    Named groups are refused because a rule's pattern is repeated inside template regexes,
    where a repeated group name does not compile.
    """
    compiled: list[tuple[str, re.Pattern[str]]] = []
    seen: set[str] = set()
    for name, pattern in rules:
        if not _RULE_NAME.fullmatch(name):
            raise ConfigError(f"masking rule name {name!r} must be letters, digits or '_'")
        if name in seen:
            raise ConfigError(f"masking rule name {name!r} appears twice")
        seen.add(name)
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"masking rule {name!r}: invalid regex {pattern!r}: {exc}") from exc
        if regex.groupindex:
            raise ConfigError(f"masking rule {name!r}: regex {pattern!r} must not use named groups")
        if regex.match("") is not None:
            raise ConfigError(f"masking rule {name!r}: regex {pattern!r} matches the empty string")
        compiled.append((name, regex))
    return compiled


class Masker:
    """Masks text in one left-to-right pass; at each position the first rule that matches wins.

    ``collapse_runs``: a run of one token separated by whitespace ("<BLK> <BLK> <BLK>", a list of
    block ids) becomes a single token, so a list of any length gives one template; the template
    matcher then lets that token match a run (``TemplateMatcher(collapse_runs=True)``).
    """

    def __init__(self, rules: MaskingRules = DEFAULT_MASKING, collapse_runs: bool = False) -> None:
        compiled = compile_rules(rules)
        self.rules: tuple[tuple[str, str], ...] = tuple((name, regex.pattern) for name, regex in compiled)
        # Each rule sits in its own outer group; lastindex names the rule that matched because
        # an outer group closes after any group nested inside it.
        self._replacement_of_group: dict[int, str] = {}
        alternatives: list[str] = []
        group = 1
        for name, regex in compiled:
            self._replacement_of_group[group] = mask_token(name)
            alternatives.append(f"({regex.pattern})")
            group += 1 + regex.groups
        self._pattern: re.Pattern[str] | None = re.compile("|".join(alternatives)) if alternatives else None
        tokens = "|".join(re.escape(mask_token(name)) for name, _ in compiled)
        self._runs = re.compile(rf"(?<!\S)({tokens})(?:\s+\1)+(?!\S)") if collapse_runs and compiled else None

    def mask(self, text: str) -> str:
        """``text`` with every rule match replaced by its ``<NAME>`` token."""
        if self._pattern is None:
            return text
        replacement_of_group = self._replacement_of_group
        masked = self._pattern.sub(lambda m: replacement_of_group[m.lastindex or 0], text)
        return masked if self._runs is None else self._runs.sub(r"\1", masked)
