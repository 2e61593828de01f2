"""``logwarden train``: turn the parsed command line into TrainingOptions and one pipeline call.

Only the CLI imports this module, so torch is loaded for training and never for scoring.
Option combinations argparse cannot express (``--entity-regex`` required with ``--logs``, one of
``--entity-field`` and ``--entity-regex`` with ``--json``, ``--templates`` and ``--labelled`` only
with ``--sequences``) and an unusable ``--out`` are checked
here and raise ConfigError, before any input is read.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from logwarden.cli_options import check_json_field_options
from logwarden.errors import ConfigError, InputFormatError
from logwarden.events.csv_input import read_csv_rows
from logwarden.events.entity import RegexEntityExtractor
from logwarden.events.header import DEFAULT_HEADER_REGEX, HeaderStripper
from logwarden.events.json_events import DEFAULT_MESSAGE_FIELD, JsonFields
from logwarden.events.log_files import log_lines, opened_log_file
from logwarden.events.masking import DEFAULT_MASKING, Masker
from logwarden.events.raw import parser_settings
from logwarden.events.sequences import LabelledSession, read_labelled_csv, read_sequences
from logwarden.logs import configure_logging
from logwarden.model.contract import ModelMetadata

from .calibrate import validate_labels
from .export import out_dir_problem
from .fit import TrainingOptions
from .mining import DEFAULT_SIMILARITY
from .pipeline import train_on_json_event_keys, train_on_logs, train_on_sequences

_EVENT_ID = re.compile(r"E(\d+)")

OPTION_NAMES = {
    "epochs": "--epochs",
    "seed": "--seed",
    "hidden_size": "--hidden-size",
    "num_layers": "--layers",
}
"""TrainingOptions field -> the command-line option that sets it, for errors an operator can act on."""


def training_options(args: argparse.Namespace) -> TrainingOptions:
    """TrainingOptions with the trainer's defaults, overridden by the options given on the command line."""
    overrides: dict[str, Any] = {
        "seed": args.seed,
        "count_gate": getattr(args, "count_gate", True),
        "transition_rule": getattr(args, "transition_rule", True),
        "cooccurrence_rule": getattr(args, "cooccurrence_rule", True),
        "length_rule": getattr(args, "length_rule", True),
    }
    for option, field_name in (
        ("epochs", "epochs"),
        ("hidden_size", "hidden_size"),
        ("layers", "num_layers"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            overrides[field_name] = value
    return dataclasses.replace(TrainingOptions(), **overrides)


def read_templates_csv(path: str | Path) -> dict[str, str]:
    """Event key -> template text from an ``EventId,EventTemplate`` CSV; EventId ``E<n>`` is key ``<n>``.

    Sequence files name events by number while loghub's template files say ``E5``, so the
    prefix is dropped; any other EventId is used as the key unchanged.
    """
    path = Path(path)
    templates: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for line_number, row in read_csv_rows(path, ("EventId", "EventTemplate"), "templates CSV"):
        event_id = (row["EventId"] or "").strip()
        if not event_id:
            raise InputFormatError(f"{path}:{line_number}: empty EventId")
        match = _EVENT_ID.fullmatch(event_id)
        key = match.group(1) if match else event_id
        if key in line_of:  # which of two templates an event has is not for the reader to guess
            raise InputFormatError(
                f"{path}:{line_number}: EventId {event_id!r} names key {key!r}, as line {line_of[key]} does"
            )
        line_of[key] = line_number
        templates[key] = row["EventTemplate"] or ""
    return templates


def read_log_lines(path: str | Path) -> list[str]:
    """All lines of a raw log file, read the way the scorer reads them (``log_lines``)."""
    path = Path(path)
    with opened_log_file(path) as handle:
        return list(log_lines(handle, path))


def check_option_combination(args: argparse.Namespace) -> None:
    """ConfigError naming the option when a combination makes no sense for the chosen input."""
    check_json_field_options(args)
    if args.logs is not None and not args.entity_regex:
        raise ConfigError(
            "--entity-regex is required with --logs: it names the entity each line belongs to "
            r"(e.g. 'blk_-?\d+' for HDFS, 'job_\d+' for the synthetic scheduler logs)"
        )
    if args.json is not None and (args.entity_field is None) == (args.entity_regex is None):
        raise ConfigError(
            "--json needs exactly one of --entity-field (the field naming each event's entity, e.g. "
            "host.name) and --entity-regex (run over the message)"
        )
    mines_templates = args.sequences is None and args.event_field is None
    if mines_templates:
        input_option = "--logs" if args.logs is not None else "--json"
        if args.templates is not None:
            raise ConfigError(
                f"--templates applies to --sequences and --event-field only; with {input_option} templates "
                "are mined"
            )
        if args.labelled is not None:
            raise ConfigError(
                f"--labelled applies to --sequences and --event-field only: a model trained with "
                f"{input_option} names its events by mined templates (T0, T1, ...), which the event keys "
                "of a labelled CSV never match"
            )
    else:
        keys_from = "--sequences" if args.sequences is not None else "--event-field"
        for option, value in (
            ("--header-regex", args.header_regex),
            ("--mask", args.mask),
            ("--similarity", args.similarity),
        ):
            if value is not None:
                raise ConfigError(
                    f"{option} applies to messages matched against mined templates, not to the event keys "
                    f"of {keys_from}"
                )
        if args.sequences is not None and args.entity_regex is not None:
            raise ConfigError("--entity-regex applies to --logs and --json only, not to --sequences")


def masking_rules(extra: Sequence[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """``--mask`` rules first, then the default ones: at each position the first rule that matches wins.

    A name already used by a default rule is refused here, with the names to avoid; the regexes
    are checked when the parser is built.
    """
    defaults = {name for name, _ in DEFAULT_MASKING}
    for name, _ in extra or ():
        if name in defaults:
            raise ConfigError(
                f"--mask {name}=...: {name} is a default rule's name ({', '.join(sorted(defaults))}); "
                "choose another"
            )
    return (*(extra or ()), *DEFAULT_MASKING)


def run_training(args: argparse.Namespace) -> dict[str, Any]:
    """Train as the command line says, write the model directory, return a JSON-able summary.

    Options and input files are checked before anything is logged or trained, so a typo
    fails at once.  Training logs go to stderr as JSON lines so stdout carries only the summary.
    """
    check_option_combination(args)
    problem = out_dir_problem(args.out)
    if problem is not None:
        raise ConfigError(f"--out {args.out}: {problem}")
    options = training_options(args)
    options.validate(OPTION_NAMES)
    labelled: list[LabelledSession] | None = None
    if args.labelled is not None:
        labelled = read_labelled_csv(args.labelled)
        validate_labels([session.anomalous for session in labelled], f"labelled CSV {args.labelled}")
    started = time.perf_counter()
    if args.sequences is not None:
        metadata = _train_sequences(args, options, labelled)
    elif args.json is not None and args.event_field is not None:
        metadata = _train_json_event_keys(args, options, labelled)
    else:
        metadata = _train_logs(args, options, labelled)
    return training_summary(metadata, Path(args.out), time.perf_counter() - started)


def _train_sequences(
    args: argparse.Namespace, options: TrainingOptions, labelled: list[LabelledSession] | None
) -> ModelMetadata:
    """``--sequences``: sessions of event keys, one per line."""
    sessions = read_sequences(args.sequences)
    templates = read_templates_csv(args.templates) if args.templates is not None else None
    _configure_training_logs()
    return train_on_sequences(sessions, options, args.out, labelled, templates, data_file=args.sequences)


def _train_json_event_keys(
    args: argparse.Namespace, options: TrainingOptions, labelled: list[LabelledSession] | None
) -> ModelMetadata:
    """``--json --event-field``: JSON events whose key was parsed upstream, grouped per entity."""
    fields = JsonFields(args.message_field or DEFAULT_MESSAGE_FIELD, args.entity_field, args.event_field)
    if args.entity_regex is not None:
        RegexEntityExtractor(args.entity_regex)  # ConfigError names a bad regex before training
    templates = read_templates_csv(args.templates) if args.templates is not None else None
    lines = read_log_lines(args.json)
    _configure_training_logs()
    return train_on_json_event_keys(
        lines, fields, args.entity_regex, options, args.out, labelled, templates, data_file=args.json
    )


def _train_logs(
    args: argparse.Namespace, options: TrainingOptions, labelled: list[LabelledSession] | None
) -> ModelMetadata:
    """``--logs``, or ``--json`` without an event field: templates mined from lines or messages."""
    settings = parser_settings(
        args.entity_regex,
        # An empty --header-regex is refused by HeaderStripper below, not taken for the default.
        header_regex=DEFAULT_HEADER_REGEX if args.header_regex is None else args.header_regex,
        masking=masking_rules(args.mask),
    )
    # Validates the regexes: ConfigError names a bad one before training.
    HeaderStripper(settings.header_regex)
    if settings.entity_regex is not None:
        RegexEntityExtractor(settings.entity_regex)
    Masker(settings.masking, settings.collapse_repeated_masks)
    json_fields = None
    if args.json is not None:
        json_fields = JsonFields(args.message_field or DEFAULT_MESSAGE_FIELD, args.entity_field)
    data_file = Path(args.logs if args.logs is not None else args.json)
    # Streamed into mining, never held whole: mining keeps what it needs of each line.
    with opened_log_file(data_file) as handle:
        _configure_training_logs()
        return train_on_logs(
            log_lines(handle, data_file),
            settings,
            options,
            args.out,
            labelled,
            data_file=data_file,
            json_fields=json_fields,
            similarity=DEFAULT_SIMILARITY if args.similarity is None else args.similarity,
        )


def training_summary(metadata: ModelMetadata, out_dir: Path, seconds: float) -> dict[str, Any]:
    """What ``logwarden train`` prints: where the model went and the figures that describe it.

    A raw-log model's summary also counts the lines read and those left out (no entity, no template).
    """
    training = metadata.training
    summary: dict[str, Any] = {
        "out": str(out_dir),
        "model_version": metadata.model_version,
        "input_kind": metadata.input_kind,
        "vocabulary_size": len(metadata.vocabulary),
        "threshold": metadata.threshold,
        "threshold_method": metadata.threshold_method,
        "count_gate": _count_gate_summary(metadata),
        **_rule_summaries(metadata),
        "sessions": training.get("sessions"),
        "epochs": training.get("epochs"),
        "final_loss": training.get("final_loss"),
        "seconds": round(seconds, 3),
    }
    for counts in ("mining", "reading"):
        if counts in training:
            summary[counts] = training[counts]
    return summary


def _count_gate_summary(metadata: ModelMetadata) -> dict[str, Any]:
    """The gate's threshold and how many count combinations it knows, or why training declined one."""
    gate = metadata.count_gate
    if gate is None:
        return {"off": metadata.training.get("count_gate", {}).get("off", "no count gate")}
    return {"threshold": gate.threshold, "combinations": len(gate.profiles)}


def _rule_summaries(metadata: ModelMetadata) -> dict[str, dict[str, Any]]:
    """Each novelty rule's summary (``ModelMetadata.describe_rules``), or why training declined it."""
    return {
        name: summary
        if summary is not None
        else {"off": metadata.training.get(name, {}).get("off", f"no {name.replace('_', ' ')}")}
        for name, summary in metadata.describe_rules().items()
    }


def _configure_training_logs() -> None:
    configure_logging("info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
