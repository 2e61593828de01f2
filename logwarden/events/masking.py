"""Replace variable parts of a message (block ids, addresses, numbers) with ``<NAME>`` tokens.

The same ordered rules drive template mining (text is masked before Drain3 sees it) and
template matching (each ``<NAME>`` in a template matches what its rule matches), so there is
one masking definition in the project, stored with every model in ``ParserSettings.masking``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence

from logwarden.errors import ConfigError, shown

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

    A rule's pattern is repeated inside larger regexes (the masker's alternation, each template's
    regex), so what compiles only on its own is refused here, where the rule is named: named groups
    (a repeated group name does not compile), backreferences (``\\1`` would point at another
    rule's group there) and global inline flags such as ``(?i)`` (allowed only at the start of a
    whole regex; ``(?i:...)`` is the form that nests).
    """
    compiled: list[tuple[str, re.Pattern[str]]] = []
    seen: set[str] = set()
    for name, pattern in rules:
        if not _RULE_NAME.fullmatch(name):
            raise ConfigError(f"masking rule name {name!r} must be letters, digits or '_'")
        if name in seen:
            raise ConfigError(f"masking rule name {name!r} appears twice")
        seen.add(name)
        regex = compile_regex(pattern, f"masking rule {name!r}: regex")
        try:
            re.compile(f"(?:{pattern})")
        except (re.error, RecursionError) as exc:
            raise ConfigError(
                f"masking rule {name!r}: regex {pattern!r} cannot sit inside a template's regex: {exc} "
                "(write a flag as (?i:...) around the part it applies to)"
            ) from exc
        if _has_backreference(pattern):
            raise ConfigError(
                f"masking rule {name!r}: regex {pattern!r} must not use backreferences: inside a "
                "template's regex they would refer to another group"
            )
        if regex.groupindex:
            raise ConfigError(f"masking rule {name!r}: regex {pattern!r} must not use named groups")
        if regex.match("") is not None:
            raise ConfigError(f"masking rule {name!r}: regex {pattern!r} matches the empty string")
        compiled.append((name, regex))
    return compiled


def compile_regex(pattern: str, what: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile``, with every way it can fail as a ConfigError: "{what} {pattern!r} is invalid: ...".

    Besides ``re.error``, the compiler raises RecursionError for groups nested too deeply and
    OverflowError for a repeat count beyond its range (``a{4294967296}``): a rule from a config or
    a model file must not turn into a traceback.
    """
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"{what} {pattern!r} is invalid: {exc}") from exc
    except (RecursionError, OverflowError) as exc:
        raise ConfigError(f"{what} {shown(pattern)} is invalid: {type(exc).__name__}: {exc}") from exc


def _has_backreference(pattern: str) -> bool:
    """Whether the (valid) ``pattern`` refers back to a group: ``\\1``, ``(?P=name)`` or ``(?(1)...)``.

    Read from the regex parser's tree: a scan of the text would have to know escapes and classes.
    """
    try:  # CPython's own parser: private but present in 3.11+
        _parser = importlib.import_module("re._parser")
        _constants = importlib.import_module("re._constants")
    except ImportError:  # pragma: no cover - another Python; the template regex then shows the error
        return False
    references = {_constants.GROUPREF, _constants.GROUPREF_EXISTS}
    pending: list[object] = [_parser.parse(pattern)]
    while pending:  # a loop, not recursion: a rule may nest groups as deep as the compiler allows
        node = pending.pop()
        if isinstance(node, _parser.SubPattern):
            for op, argument in node.data:
                if op in references:
                    return True
                pending.append(argument)
        elif isinstance(node, (list, tuple)):
            pending.extend(node)
    return False


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
