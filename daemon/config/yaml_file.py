"""Read the config file into plain data: UTF-8 YAML, strictly.

A key written twice in one mapping is an error (PyYAML would keep the last one silently), and every
failure is one ConfigError naming the file, with the line and column where YAML gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from logwarden.errors import ConfigError

_YAML_STR_TAG = "tag:yaml.org,2002:str"


def read_config_file(path: Path) -> object:
    """The YAML document of ``path`` as plain data, never None (an empty file is an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: config file is not readable (permission denied)") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text at byte {exc.start}") from exc
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}") from exc
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{path}: invalid YAML{_reader_error_place(text, exc)}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from exc
    if raw is None:
        raise ConfigError(f"{path}: config file is empty")
    return raw


def _reader_error_place(text: str, exc: yaml.reader.ReaderError) -> str:
    """`` at line L, column C: unacceptable character #x0007: ...`` for a character YAML refuses.

    PyYAML reports it by offset in a second line naming "<unicode string>", which the CLI would
    print as a line of its own; an operator looks for a line number.
    """
    before = text[: exc.position]
    line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
    return f" at line {line}, column {column}: unacceptable character #x{exc.character:04x}: {exc.reason}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping instead of keeping the last.

    Merge keys (``<<: *anchor``) are allowed, and a mapping's own keys override merged ones as
    YAML specifies.  Keys are compared on the composed document, before any mapping is built:
    SafeLoader flattens a merged mapping in place, so a merge source built after its first use
    would otherwise show the keys it overrides as written twice.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        _reject_duplicate_keys(node)
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # a scalar Python refuses: a date of month 13, an int of 5000 digits
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from exc


def _reject_duplicate_keys(root: yaml.Node) -> None:
    """ConstructorError at the second occurrence of a string key in any mapping under ``root``."""
    pending: list[yaml.Node] = [root]
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in visited:  # an alias: the anchored node was checked where it was written
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_STR_TAG:
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
            pending.extend(child for pair in reversed(node.value) for child in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(reversed(node.value))
