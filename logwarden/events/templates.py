"""Match message content against known templates, never learning: the daemon's per-event hot path.

Templates are Drain3 output over masked text: tokens joined by single spaces, ``<*>`` for a
token that varies, ``<NAME>`` where a masking rule replaced something.  Each template becomes
a regex over the *unmasked* content (a wildcard matches one whitespace-free token, ``<NAME>``
matches what rule NAME matches, tokens are separated and surrounded by whitespace the way
Drain3 splits them).  Templates are tried most-specific first (fewest wildcards, then fewest
masks) in one alternation per *anchor*: a template's first plain word and its position, when
only ``<*>`` tokens come before it (``<*> submitted by user <*>`` is anchored on "submitted"
at position 1).  A line is tried only against the templates anchored on its own words there,
plus the few with no anchor.  One regex call per line is several times faster than masking and
then walking Drain3's tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from logwarden.events.masking import DEFAULT_MASKING, MaskingRules, compile_rules

WILDCARD = "<*>"
NO_MATCH = -1

_MASK_REFERENCE = re.compile(r"<(\w+)>")


class TemplateMatcher:
    """Index of the template a message content fits, or ``NO_MATCH``; pure and thread-safe."""

    def __init__(self, templates: Sequence[str], masking: MaskingRules = DEFAULT_MASKING) -> None:
        self.templates: tuple[str, ...] = tuple(templates)
        self._rules = {name: regex for name, regex in compile_rules(masking)}
        ordered = sorted(range(len(self.templates)), key=self._specificity_order)
        self._order = {index: position for position, index in enumerate(ordered)}
        # Each anchored template is only tried on lines carrying its anchor word, which keeps
        # each alternation short however many templates there are.
        self._anchored: dict[tuple[int, str], list[int]] = {}
        self._unanchored: list[int] = []
        for index in ordered:
            anchor = self._anchor_of(self.templates[index])
            if anchor is None:
                self._unanchored.append(index)
            else:
                self._anchored.setdefault(anchor, []).append(index)
        self._positions = tuple(sorted({position for position, _ in self._anchored}))
        self._split_limit = self._positions[-1] + 1 if self._positions else 0
        self._generic = self._compile(self._unanchored)
        self._single = {anchor: self._compile_anchors((anchor,)) for anchor in self._anchored}
        self._combined = lru_cache(maxsize=1024)(self._compile_anchors)

    def match_one(self, content: str) -> int:
        """Template index for ``content`` (most specific when several fit), else ``NO_MATCH``."""
        words = content.split(None, self._split_limit)
        hits = [
            (position, words[position])
            for position in self._positions
            if position < len(words) and (position, words[position]) in self._anchored
        ]
        if not hits:
            pattern, template_of_group = self._generic
        elif len(hits) == 1:
            pattern, template_of_group = self._single[hits[0]]
        else:
            pattern, template_of_group = self._combined(tuple(hits))
        if pattern is None:
            return NO_MATCH
        match = pattern.fullmatch(content)
        if match is None:
            return NO_MATCH
        # A template's outer group closes after any group nested in it, so it is lastindex.
        return template_of_group[match.lastindex or 0]

    def _anchor_of(self, template: str) -> tuple[int, str] | None:
        """(position, word) of the first plain word of ``template`` if only ``<*>`` precede it.

        A mask could match text with spaces in it (a masking rule is any regex), which would
        shift the positions of the words after it, so a mask before the first plain word
        leaves the template unanchored.
        """
        for position, token in enumerate(template.split()):
            if token == WILDCARD:
                continue
            if self._mask_names(token):
                return None
            return position, token
        return None

    def _compile_anchors(
        self, anchors: tuple[tuple[int, str], ...]
    ) -> tuple[re.Pattern[str] | None, list[int]]:
        """The alternation a line carrying ``anchors`` is tried against, in specificity order."""
        indices = [index for anchor in anchors for index in self._anchored[anchor]] + self._unanchored
        return self._compile(sorted(indices, key=self._order.__getitem__))

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
                # Possessive (Python 3.11+): a token never gives characters back, which spares
                # the backtracking of every failed alternative without changing what matches.
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
