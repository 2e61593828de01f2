"""Match message content against known templates, never learning: the daemon's per-event hot path.

Templates are Drain3 output over masked text: tokens joined by single spaces, ``<*>`` for a
token that varies, ``<NAME>`` where a masking rule replaced something.  Each template becomes
a regex over the *unmasked* content (a wildcard matches one whitespace-free token, ``<NAME>``
matches what rule NAME matches or the token itself, tokens are separated and surrounded by
whitespace the way Drain3 splits them).  Templates are tried most-specific first (fewest
wildcards, then fewest masks) in one alternation per first word.  One regex call per line is
several times faster than masking and then walking Drain3's tree.  Leading wildcards that
every template of an alternation shares are matched once, before it, so the engine reads a
line's first words once rather than once per template.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from logwarden.events.masking import DEFAULT_MASKING, MaskingRules, compile_rules

WILDCARD = "<*>"
NO_MATCH = -1

_MASK_REFERENCE = re.compile(r"<(\w+)>")

# Possessive (Python 3.11+): a token never gives characters back, which spares the backtracking
# of every failed alternative without changing what matches.
_WILDCARD_REGEX = r"\S++"


def _leading_wildcards(tokens: Sequence[str]) -> int:
    count = 0
    for token in tokens:
        if token != WILDCARD:
            break
        count += 1
    return count


class TemplateMatcher:
    """Index of the template a message content fits, or ``NO_MATCH``; pure and thread-safe."""

    def __init__(
        self, templates: Sequence[str], masking: MaskingRules = DEFAULT_MASKING, collapse_runs: bool = False
    ) -> None:
        """``collapse_runs``: the templates were mined from text masked with ``Masker(collapse_runs=True)``,
        so a token that is a whole ``<NAME>`` matches a whitespace-separated run of what NAME matches."""
        self.templates: tuple[str, ...] = tuple(templates)
        self._rules = {name: regex for name, regex in compile_rules(masking)}
        self._collapse_runs = collapse_runs
        ordered = sorted(range(len(self.templates)), key=self._specificity_order)
        # Templates that start with a plain word are only tried on lines starting with that
        # word, which keeps each alternation short however many templates there are.
        by_first_word: dict[str, list[int]] = {}
        generic: list[int] = []
        for index in ordered:
            tokens = self.templates[index].split()
            if tokens and tokens[0] != WILDCARD and not self._mask_names(tokens[0]):
                by_first_word.setdefault(tokens[0], []).append(index)
            else:
                generic.append(index)
        order = {index: position for position, index in enumerate(ordered)}
        self._generic = self._compile(generic)
        self._by_first_word = {
            word: self._compile(sorted(indices + generic, key=order.__getitem__))
            for word, indices in by_first_word.items()
        }

    def match_one(self, content: str) -> int:
        """Template index for ``content`` (most specific when several fit), else ``NO_MATCH``."""
        if self._by_first_word:
            words = content.split(None, 1)
            pattern, template_of_group = (
                self._by_first_word.get(words[0], self._generic) if words else self._generic
            )
        else:
            pattern, template_of_group = self._generic
        if pattern is None:
            return NO_MATCH
        match = pattern.fullmatch(content)
        if match is None:
            return NO_MATCH
        # A template's outer group closes after any group nested in it, so it is lastindex.
        return template_of_group[match.lastindex or 0]

    def _compile(self, indices: Sequence[int]) -> tuple[re.Pattern[str] | None, list[int]]:
        """One alternation over ``indices`` (already in trial order) and its group -> template map."""
        if not indices:
            return None, [NO_MATCH]
        token_lists = [self.templates[index].split() for index in indices]
        shared = self._shared_wildcard_prefix(token_lists)
        alternatives: list[str] = []
        template_of_group = [NO_MATCH]
        for index, tokens in zip(indices, token_lists, strict=True):
            body, inner_groups = self._tokens_regex(tokens[shared:])
            alternatives.append(f"({body})")
            template_of_group.append(index)
            template_of_group.extend([NO_MATCH] * inner_groups)
        prefix = (_WILDCARD_REGEX + r"\s+") * shared
        pattern = re.compile(r"\s*" + prefix + "(?:" + "|".join(alternatives) + r")\s*", re.DOTALL)
        return pattern, template_of_group

    def _shared_wildcard_prefix(self, token_lists: Sequence[list[str]]) -> int:
        """How many leading ``<*>`` tokens every template shares, each keeping at least one token.

        Matching them once before the alternation finds the same template as matching them in
        every alternative, because what follows each shared separator cannot itself start with
        whitespace: a literal token or a wildcard.  A template whose next token starts with a
        masking rule (which may match spaces) keeps its last shared wildcard instead.
        """
        if not token_lists or not all(token_lists):
            return 0
        shared = min(min(_leading_wildcards(tokens), len(tokens) - 1) for tokens in token_lists)
        if shared and any(self._starts_with_mask(tokens[shared]) for tokens in token_lists):
            shared -= 1
        return shared

    def _starts_with_mask(self, token: str) -> bool:
        reference = _MASK_REFERENCE.match(token)
        return reference is not None and reference.group(1) in self._rules

    def _specificity_order(self, index: int) -> tuple[int, int, int]:
        tokens = self.templates[index].split()
        wildcards = sum(1 for token in tokens if token == WILDCARD)
        masks = sum(len(self._mask_names(token)) for token in tokens)
        return (wildcards, masks, index)

    def _rules_before(self, name: str) -> list[re.Pattern[str]]:
        """The masking rules tried before ``name``'s: a token one of them matches was masked by it."""
        names = list(self._rules)
        return [self._rules[earlier] for earlier in names[: names.index(name)]]

    def _mask_names(self, token: str) -> list[str]:
        return [name for name in _MASK_REFERENCE.findall(token) if name in self._rules]

    def _tokens_regex(self, tokens: Sequence[str]) -> tuple[str, int]:
        """Regex of a template's tokens, and how many groups the embedded masking rules add."""
        token_regexes: list[str] = []
        inner_groups = 0
        for token in tokens:
            if token == WILDCARD:
                token_regexes.append(_WILDCARD_REGEX)
                continue
            whole = _MASK_REFERENCE.fullmatch(token)
            name = whole.group(1) if whole is not None and self._collapse_runs else None
            run_rule = self._rules.get(name) if name is not None else None
            if name is not None and run_rule is not None:
                # A run is of whole tokens that no earlier rule claims (the masker's first rule
                # wins), taken possessively: a run given back token by token, before another run
                # its rule overlaps, made a failed match quadratic in the line's length
                # (benchmarks/crafted_lines.py: 22.8 s for a 72 KB line).
                earlier_rules = self._rules_before(name)
                earlier = "|".join(rule.pattern for rule in earlier_rules)
                claimed = f"(?!(?:{earlier})(?!\\S))" if earlier else ""
                one = f"{claimed}(?:{run_rule.pattern}|{re.escape(token)})(?!\\S)"
                token_regexes.append(rf"{one}(?:\s+{one})*+")
                earlier_groups: int = sum(rule.groups for rule in earlier_rules)
                inner_groups += 2 * (run_rule.groups + earlier_groups)
                continue
            parts: list[str] = []
            position = 0
            for reference in _MASK_REFERENCE.finditer(token):
                rule = self._rules.get(reference.group(1))
                if rule is None:
                    continue
                parts.append(re.escape(token[position : reference.start()]))
                # The token itself matches too: logs scrubbed upstream carry "<IP>" literally,
                # and such a line was mined into this very template.
                parts.append(f"(?:{rule.pattern}|{re.escape(reference.group(0))})")
                inner_groups += rule.groups
                position = reference.end()
            parts.append(re.escape(token[position:]))
            token_regexes.append("".join(parts))
        return r"\s+".join(token_regexes), inner_groups
