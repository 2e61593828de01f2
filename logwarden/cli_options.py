"""The options the ``logwarden`` commands share, and the argparse types that check their values.

Why apart from ``cli.py``: the trainer's argument handling (``train/cli_support.py``) and the
benchmarks reuse these rules, and a value an argparse type refuses is a usage error (exit 2) before
any work starts or torch is imported.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from logwarden.errors import ConfigError


def add_no_count_gate_option(command: argparse.ArgumentParser, help_text: str) -> None:
    """``--no-count-gate`` (``args.count_gate`` False); see 'The count gate' in the README."""
    command.add_argument("--no-count-gate", dest="count_gate", action="store_false", help=help_text)


def path_argument(text: str) -> Path:
    """argparse type: a path that is not empty.

    ``Path("")`` is the current directory, so an empty value (an unset shell variable) would
    read it as an input, or with ``--out`` replace it by the model, instead of being refused.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


def finite_float_argument(text: str) -> float:
    """argparse type: a finite number (a NaN threshold would silence every alert)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def similarity_argument(text: str) -> float:
    """argparse type: Drain3's similarity threshold, a number in (0, 1]."""
    value = finite_float_argument(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def masking_rule_argument(text: str) -> tuple[str, str]:
    """argparse type: NAME=REGEX (the name and regex themselves are checked with the other rules)."""
    name, separator, pattern = text.partition("=")
    if not separator or not name or not pattern:
        raise argparse.ArgumentTypeError(f"expected NAME=REGEX, got {text!r}")
    return name, pattern


def seed_argument(text: str) -> int:
    """argparse type: an integer seed in [0, 2**32), the range TrainingOptions.validate accepts.

    Checked here too so a bad seed is a usage error at once, without importing torch.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def add_json_field_options(command: argparse.ArgumentParser, *, defaults_from_model: bool = False) -> None:
    """``--entity-field`` and ``--message-field``: where a JSON event keeps its entity and message."""
    default = "the model's, else " if defaults_from_model else ""
    command.add_argument(
        "--entity-field",
        help="with --json: field naming each event's entity (dotted names reach nested objects, "
        "e.g. host.name), as input.entity.field in the daemon's config"
        + ("; default: the model's" if defaults_from_model else ""),
    )
    command.add_argument(
        "--message-field",
        help=f"with --json: field holding the log message (default: {default}message), "
        "as input.json.message_field",
    )
    command.add_argument(
        "--event-field",
        help="with --json: field holding an event key parsed upstream (a Windows event id, an audit "
        "action), as input.json.event_field: events are these keys, no templates are mined"
        + ("; default: the model's" if defaults_from_model else ""),
    )


def check_json_field_options(args: argparse.Namespace) -> None:
    """ConfigError when a JSON field option is given without ``--json``, or empty."""
    for option, value in (
        ("--entity-field", args.entity_field),
        ("--message-field", args.message_field),
        ("--event-field", args.event_field),
    ):
        if value is None:
            continue
        if args.json is None:
            raise ConfigError(f"{option} applies to --json only")
        if not value.strip():
            raise ConfigError(f"{option} must name a field, got {value!r}")
