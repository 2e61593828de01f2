"""Environment variable placeholders in config values: refused, since logwarden does not expand them."""

from __future__ import annotations

import re

ENVIRONMENT_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?=+-][^}]*)?\}")
"""``${NAME}``, or with a shell default such as ``${NAME:-x}``.  Not a bare ``$NAME``: a password
may well start with ``$``."""


def placeholder_problem(value: str, *, shown_as: str | None = None) -> str | None:
    """Why ``value`` is refused if it holds an environment variable placeholder, else None.

    logwarden reads its config as written: a ``group_id: ${GROUP}`` would join a group literally named
    so (and a new group rereads the whole retention), a ``state.dir`` of ``${STATE_DIR}`` would be a
    directory of that name beside the config.  ``shown_as`` replaces the placeholder in the message
    (a secret's value is never shown).
    """
    found = ENVIRONMENT_PLACEHOLDER.search(value)
    if found is None:
        return None
    placeholder = shown_as or repr(found.group(0))
    return f"{placeholder} looks like an environment variable, which logwarden never expands: write the value"
