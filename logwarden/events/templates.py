"""Match message content against known templates, never learning: the daemon's per-event hot path.

Templates are Drain3 output over masked text: tokens joined by single spaces, ``<*>`` for a
token that varies, ``<NAME>`` where a masking rule replaced something.  Each template becomes
a regex over the *unmasked* content (a wildcard matches one whitespace-free token, ``<NAME>``
matches what rule NAME matches, tokens are separated and surrounded by whitespace the way
Drain3 splits them).  Templates are tried most-specific first (fewest wildcards, then fewest
masks) in one alternation per combination of leading plain tokens.  One regex call per line is several times faster
than masking and then walking Drain3's tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from logwarden.events.masking import DEFAULT_MASKING, MaskingRules, compile_rules

WILDCARD = "<*>"
NO_MATCH = -1

_MASK_REFERENCE = re.compile(r"<(\w+)>")
_KEY_TOKENS = 3
"""Leading tokens looked at to narrow the candidate templates of a line."""
_MAX_CANDIDATE_SETS = 4096
"""Compiled candidate alternations kept; each is one combination of leading plain tokens."""


class TemplateMatcher:
    """Index of the template a message content fits, or ``NO_MATCH``; pure and thread-safe."""

    def __init__(self, templates: Sequence[str], masking: MaskingRules = DEFAULT_MASKING) -> None:
        self.templates: tuple[str, ...] = tuple(templates)
        self._rules = {name: regex for name, regex in compile_rules(masking)}
        ordered = sorted(range(len(self.templates)), key=self._specificity_order)
        self._rank = {index: position for position, index in enumerate(ordered)}
        # A template is keyed by its first plain token among the leading few, e.g. (1, "queued")
        # for "<*> queued in <*> ...", and tried only on lines that have that token there: each
        # alternation stays short however many templates there are.
        self._by_key: dict[tuple[int, str], list[int]] = {}
        self._unkeyed: list[int] = []
        for index in ordered:
            key = self._key_of(self.templates[index].split())
            if key is None:
                self._unkeyed.append(index)
            else:
                self._by_key.setdefault(key, []).append(index)
        self._candidates: dict[tuple[tuple[int, str], ...], tuple[re.Pattern[str] | None, list[int]]] = {}

    def match_one(self, content: str) -> int:
        """Template index for ``content`` (most specific when several fit), else ``NO_MATCH``."""
        by_key = self._by_key
        keys = tuple(key for key in enumerate(content.split(None, _KEY_TOKENS)[:_KEY_TOKENS]) if key in by_key)
        compiled = self._candidates.get(keys)
        if compiled is None:
            compiled = self._compile_candidates(keys)
        pattern, template_of_group = compiled
        if pattern is None:
            return NO_MATCH
        match = pattern.fullmatch(content)
        if match is None:
            return NO_MATCH
        # A template's outer group closes after any group nested in it, so it is lastindex.
        return template_of_group[match.lastindex or 0]

    def _key_of(self, tokens: Sequence[str]) -> tuple[int, str] | None:
        for position, token in enumerate(tokens[:_KEY_TOKENS]):
            if token != WILDCARD and not self._mask_names(token):
                return (position, token)
        return None

    def _compile_candidates(self, keys: tuple[tuple[int, str], ...]) -> tuple[re.Pattern[str] | None, list[int]]:
        """The alternation of every template a line with these leading tokens may fit, most specific first."""
        indices = sorted([i for key in keys for i in self._by_key[key]] + self._unkeyed, key=self._rank.__getitem__)
        compiled = self._compile(indices)
        if len(self._candidates) < _MAX_CANDIDATE_SETS:
            self._candidates[keys] = compiled
        return compiled

    def _compile(self, indices: Sequence[int]) -> tuple[re.Pattern[str] | None, list[int]]:
        """One alternation over ``indices`` (already in trial order) and its group -> template map."""
        if not indices:
            return None, [NO_MATCH]
        alternatives: list[str] = []
        template_of_group = [NO_MATCH]
        for index in indices:
            body, inner_groups = self._template_regex(self.templates[index])
            alternatives.append(f"({body})")
            template_of_group.append(index)
            template_of_group.extend([NO_MATCH] * inner_groups)
        pattern = re.compile(r"\s*(?:" + "|".join(alternatives) + r")\s*", re.DOTALL)
        return pattern, template_of_group

    def _specificity_order(self, index: int) -> tuple[int, int, int]:
        tokens = self.templates[index].split()
        wildcards = sum(1 for token in tokens if token == WILDCARD)
        masks = sum(len(self._mask_names(token)) for token in tokens)
        return (wildcards, masks, index)

    def _mask_names(self, token: str) -> list[str]:
        return [name for name in _MASK_REFERENCE.findall(token) if name in self._rules]

    def _template_regex(self, template: str) -> tuple[str, int]:
        """Regex of one template, and how many groups the embedded masking rules add."""
        token_regexes: list[str] = []
        inner_groups = 0
        for token in template.split():
            if token == WILDCARD:
                token_regexes.append(r"\S++")
                continue
            parts: list[str] = []
            position = 0
            for reference in _MASK_REFERENCE.finditer(token):
                rule = self._rules.get(reference.group(1))
                if rule is None:
                    continue
                parts.append(re.escape(token[position : reference.start()]))
                parts.append(f"(?:{rule.pattern})")
                inner_groups += rule.groups
                position = reference.end()
            parts.append(re.escape(token[position:]))
            token_regexes.append("".join(parts))
        return r"\s+".join(token_regexes), inner_groups
