"""The ``logwarden`` command: train, score, eval, run.  Exit codes are decided here and only here.

Exit codes: 0 success, 1 unexpected error, 2 usage error, 3 invalid configuration (systemd's
``RestartPreventExitStatus=3`` stops a restart loop on it), 4 model cannot be loaded,
5 unreadable input file, 6 state store unusable, 7 training failed, 8 no Kafka broker answered.
An unexpected error in ``logwarden run`` is logged as one JSON ``fatal`` line (traceback included)
and exits 1; the offline commands let it print its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from logwarden import __version__
from logwarden.cli_options import (
    add_json_field_options,
    add_no_count_gate_option,
    check_json_field_options,
    finite_float_argument,
    masking_rule_argument,
    path_argument,
    seed_argument,
    similarity_argument,
)
from logwarden.errors import (
    BrokerUnavailableError,
    ConfigError,
    InputFormatError,
    LogwardenError,
    ModelLoadError,
    StateStoreError,
    TrainingError,
    shown,
)
from logwarden.events.json_events import JsonFields, trained_json_fields
from logwarden.model.contract import ModelMetadata

if TYPE_CHECKING:  # imported when scoring only: the scorer loads onnxruntime
    from logwarden.scoring.offline import LogScoringSummary

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_MODEL = 4
EXIT_INPUT = 5
EXIT_STATE = 6
EXIT_TRAINING = 7
EXIT_BROKER = 8

_EXIT_CODES: tuple[tuple[type[LogwardenError], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (ModelLoadError, EXIT_MODEL),
    (InputFormatError, EXIT_INPUT),
    (StateStoreError, EXIT_STATE),
    (TrainingError, EXIT_TRAINING),
    (BrokerUnavailableError, EXIT_BROKER),
)


EXIT_CODES_HELP = """exit codes:
  0  success                         5  unreadable input file
  1  unexpected error                6  state store unusable
  2  usage error                     7  training failed
  3  invalid configuration           8  no Kafka broker answered (run)
  4  model cannot be loaded        130  interrupted (Ctrl-C; train: also SIGTERM)"""
"""The exit codes, as ``logwarden --help`` lists them for operators and scripts."""


def exit_code_for(error: LogwardenError) -> int:
    """The documented exit code of an error type."""
    for error_type, code in _EXIT_CODES:
        if isinstance(error, error_type):
            return code
    return EXIT_UNEXPECTED


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line surface, documented by ``--help``."""
    parser = argparse.ArgumentParser(
        prog="logwarden",
        description="Streaming log and security-event anomaly detection: train an LSTM next-event\n"
        "model, score and evaluate offline, run the Kafka daemon.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"logwarden {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and export it to ONNX")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--sequences",
        type=path_argument,
        help="pre-parsed sessions: one per line, space-separated event keys",
    )
    source.add_argument("--logs", type=path_argument, help="raw log lines (templates are mined with Drain3)")
    source.add_argument(
        "--json",
        type=path_argument,
        help="JSON events, one object per line, as the daemon reads them with input.format: json",
    )
    train.add_argument(
        "--entity-regex",
        help=r"with --logs: regex naming each line's entity, e.g. 'blk_-?\d+'; with --json: run over "
        "the message",
    )
    add_json_field_options(train)
    train.add_argument(
        "--header-regex",
        help="with --logs or --json: regex with a (?P<content>...) group; default handles common headers",
    )
    train.add_argument(
        "--mask",
        action="append",
        type=masking_rule_argument,
        metavar="NAME=REGEX",
        help="with --logs or --json, repeatable: mask what REGEX matches as <NAME> before mining, tried "
        "before the default rules (BLK, IP, MAC, HEX, NUM); e.g. 'HOST=\\b[a-z]+\\d+\\b' makes lists "
        "of host names one template whatever their length",
    )
    train.add_argument(
        "--similarity",
        type=similarity_argument,
        metavar="X",
        help="with --logs or --json: Drain3's similarity threshold in (0, 1] (default 0.4); a line joins a "
        "template when this share of its words equals the template's, so lower merges more (messages "
        "of two or three words differing in one word stay apart at 0.4)",
    )
    train.add_argument(
        "--templates",
        type=path_argument,
        help="with --sequences or --event-field: CSV EventId,EventTemplate (key N <-> EN)",
    )
    train.add_argument(
        "--labelled", type=path_argument, help="labelled CSV (Sequence,label): threshold maximising F1 there"
    )
    train.add_argument("--out", type=path_argument, required=True, help="model directory to write")
    train.add_argument("--epochs", type=int, help="training epochs (default: the trainer's)")
    train.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        help="random seed in [0, 2**32); same seed, same data -> same model",
    )
    train.add_argument("--hidden-size", type=int, help="LSTM hidden size (default 64)")
    train.add_argument("--layers", type=int, help="LSTM layers (default 2)")
    add_no_count_gate_option(
        train, "learn no count gate, even when training sessions repeat their event counts"
    )
    train.add_argument(
        "--no-transition-rule",
        dest="transition_rule",
        action="store_false",
        help="learn no transition rule, even when training sessions repeat their transitions",
    )
    train.add_argument(
        "--no-cooccurrence-rule",
        dest="cooccurrence_rule",
        action="store_false",
        help="learn no co-occurrence rule, even when training sessions repeat their pairs of events",
    )
    train.add_argument(
        "--no-length-rule",
        dest="length_rule",
        action="store_false",
        help="learn no length rule (a session ending shorter than every training session alerts), "
        "e.g. when the daemon's state.ttl_seconds cuts sessions shorter than the training data's",
    )

    score = commands.add_parser("score", help="score a file offline with onnxruntime; JSON lines on stdout")
    score.add_argument(
        "--model", type=path_argument, required=True, help="model directory (model.onnx + model.json)"
    )
    target = score.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--sequences", type=path_argument, help="one session per line; one JSON object per line out"
    )
    target.add_argument("--logs", type=path_argument, help="raw log lines; one JSON object per entity out")
    target.add_argument(
        "--json", type=path_argument, help="JSON events, one per line; one JSON object per entity out"
    )
    score.add_argument(
        "--entity-regex", help="with --logs or --json: override the model's entity regex (over the message)"
    )
    add_json_field_options(score, defaults_from_model=True)
    score.add_argument("--threshold", type=finite_float_argument, help="override the calibrated threshold")
    add_no_count_gate_option(score, "ignore the model's count gate: judge sessions by the threshold alone")

    evaluate = commands.add_parser("eval", help="detection metrics on a labelled CSV (Sequence,label)")
    evaluate.add_argument("--model", type=path_argument, required=True)
    evaluate.add_argument("--labelled", type=path_argument, required=True)
    evaluate.add_argument(
        "--ratio",
        default="553366:16838",
        help="NORMAL:ANOMALOUS for the re-weighted F1 (default: DeepLog's HDFS test set)",
    )
    evaluate.add_argument("--threshold", type=finite_float_argument, help="override the calibrated threshold")
    add_no_count_gate_option(evaluate, "ignore the model's count gate: judge sessions by the threshold alone")

    run = commands.add_parser("run", help="run the Kafka daemon")
    run.add_argument(
        "--config", type=Path, required=True, help="YAML configuration (see config.example.yaml)"
    )
    run.add_argument(
        "--check", action="store_true", help="validate config and model, print the effective config, exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    if args.command != "run":
        from logwarden.logs import configure_logging

        configure_logging("info", sys.stderr)
    handlers = {"train": _handle_train, "score": _handle_score, "eval": _handle_eval, "run": _handle_run}
    try:
        return handlers[args.command](args)
    except LogwardenError as exc:
        # One line per problem (a config file can have several), each greppable on its own.
        for problem in str(exc).splitlines() or [""]:
            print(f"logwarden {args.command}: error: {problem}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (``| head``) has gone; point stdout at devnull so the interpreter's final
        # flush does not raise again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception:  # after BrokenPipeError, an Exception too
        if args.command != "run":
            raise
        _log_fatal_daemon_error()
        return EXIT_UNEXPECTED


def _log_fatal_daemon_error() -> None:
    """Log the exception being handled as the daemon's last JSON line.

    journald and ``jq`` read the daemon's stdout as JSON lines; a bare traceback on stderr would be
    a dozen loose lines that filters on ``level`` miss.  systemd restarts the daemon (exit 1) and it
    resumes from its last checkpoint, which the line says so an operator knows nothing was lost.
    """
    import structlog

    structlog.get_logger("logwarden.daemon").exception(
        "fatal", resumes_from="the last checkpoint; events after it are replayed on restart"
    )


TRAINING_EXTRA_MODULES = ("torch", "onnx")
"""What ``pip install 'logwarden[train]'`` adds, and the daemon's install leaves out."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _handle_train(args: argparse.Namespace) -> int:
    try:
        from logwarden.train.cli_support import run_training  # torch is imported only for training
    except ModuleNotFoundError as exc:
        if exc.name not in TRAINING_EXTRA_MODULES:
            raise
        raise TrainingError(
            f"training needs PyTorch and onnx, which this install lacks (no module {exc.name!r}): "
            "install the train extra (pip install 'logwarden[train]') in a virtualenv of its own; "
            "the daemon and score/eval run without it"
        ) from exc

    # SIGTERM (systemd, a scheduler, `timeout`) would end the process without unwinding, leaving
    # the export's scratch and staging directories beside --out: stop as Ctrl-C does instead.
    signal.signal(signal.SIGTERM, _interrupt)
    summary = run_training(args)
    print(json.dumps(summary, sort_keys=True))
    return EXIT_OK


def _load_model(directory: Path):  # noqa: ANN202 - returns OnnxStepModel, imported lazily
    from logwarden.model.bundle import load_bundle
    from logwarden.model.runtime import OnnxStepModel

    return OnnxStepModel.load(load_bundle(directory))


def _handle_score(args: argparse.Namespace) -> int:
    from logwarden.events.log_files import log_lines, opened_log_file
    from logwarden.events.sequences import read_sequences
    from logwarden.scoring.offline import (
        LogScoringSummary,
        score_json_lines,
        score_log_lines,
        score_sequence_lines,
    )

    if args.sequences is not None and args.entity_regex is not None:
        raise ConfigError("--entity-regex applies to --logs and --json only, not to --sequences")
    check_json_field_options(args)
    if args.json is not None and args.entity_field is not None and args.entity_regex is not None:
        raise ConfigError("--entity-field and --entity-regex exclude each other: give one")
    if args.entity_regex == "":
        raise ConfigError("--entity-regex is empty: give a regex, or leave the option out to use the model's")
    model = _load_model(args.model)
    out = sys.stdout
    if args.sequences is not None:
        for record in score_sequence_lines(
            model, read_sequences(args.sequences), args.threshold, count_gate=args.count_gate
        ):
            out.write(json.dumps(record) + "\n")
        return EXIT_OK
    summary = LogScoringSummary()
    path = args.logs if args.logs is not None else args.json
    fields = None
    with opened_log_file(path) as handle:
        lines = log_lines(handle, path)
        if args.logs is not None:
            records = score_log_lines(
                model, lines, summary, args.threshold, args.entity_regex, count_gate=args.count_gate
            )
        else:
            fields = _json_fields_for(model.metadata, args)
            records = score_json_lines(
                model, lines, summary, fields, args.threshold, args.entity_regex, count_gate=args.count_gate
            )
        for record in records:
            out.write(json.dumps(record) + "\n")
    warning = _no_entity_warning(summary, path, fields, args.entity_regex)
    if warning is not None:
        print(f"logwarden score: warning: {warning}", file=sys.stderr)
    print(json.dumps({"summary": summary.report(json_input=args.json is not None)}), file=sys.stderr)
    return EXIT_OK


def _no_entity_warning(
    summary: LogScoringSummary, path: Path, fields: JsonFields | None, entity_regex: str | None
) -> str | None:
    """What to say when no line was a usable event or none named an entity, so nothing was scored.

    A warning, not an error: a file whose lines all lack an entity may be what it is, and the
    summary's counts say so too, but an empty output is most often a mistyped regex.
    """
    events = summary.lines - summary.invalid_lines
    if summary.lines and not events:
        # A mistyped --message-field or --event-field makes every line invalid: as empty an output.
        return (
            f"{path}: none of its {summary.lines} lines is a usable event, so nothing was scored; "
            f"the first: {summary.first_invalid}"
        )
    if not events or summary.lines_without_entity < events:
        return None
    if fields is not None and fields.entity is not None:
        rule = f"the entity field '{fields.entity}'"
    elif entity_regex is not None:
        rule = f"--entity-regex {shown(entity_regex)}"
    else:
        rule = "the model's entity regex"
    return f"{path}: {rule} named no entity in any of its {events} lines, so nothing was scored"


def _json_fields_for(metadata: ModelMetadata, args: argparse.Namespace) -> JsonFields:
    """The fields ``score --json`` reads: the options given, else those the model was trained on.

    ``--entity-regex`` alone means no entity field, as in training; with neither option, a model
    trained on JSON events uses its own entity field, any other its entity regex.
    """
    trained = trained_json_fields(metadata) or JsonFields()
    entity_field = args.entity_field
    if entity_field is None and args.entity_regex is None:
        entity_field = trained.entity
    return JsonFields(args.message_field or trained.message, entity_field, args.event_field or trained.event)


def _parse_ratio(text: str) -> tuple[int, int]:
    try:
        normal, anomalous = (int(part) for part in text.split(":"))
    except ValueError as exc:
        raise InputFormatError(f"--ratio: expected NORMAL:ANOMALOUS integers, got {text!r}") from exc
    if normal <= 0 or anomalous <= 0:
        raise InputFormatError(f"--ratio: both counts must be positive, got {text!r}")
    return normal, anomalous


def _handle_eval(args: argparse.Namespace) -> int:
    from logwarden.events.sequences import read_labelled_csv
    from logwarden.scoring.metrics import confusion, one_class_problem
    from logwarden.scoring.offline import score_sequence_lines
    from logwarden.scoring.rule_breakdown import rule_breakdown

    normal, anomalous = _parse_ratio(args.ratio)
    model = _load_model(args.model)
    rows = read_labelled_csv(args.labelled)
    if not rows:
        raise InputFormatError(f"{args.labelled}: holds no sessions to evaluate (only a header?)")
    problem = one_class_problem([row.anomalous for row in rows])
    if problem is not None:
        raise InputFormatError(
            f"{args.labelled}: {problem}; TPR, precision and F1 need both normal and anomalous ones "
            "(logwarden score --sequences gives each session's verdict)"
        )
    records = list(
        score_sequence_lines(model, [row.keys for row in rows], args.threshold, count_gate=args.count_gate)
    )
    gate = model.metadata.count_gate if args.count_gate else None
    labels = [row.anomalous for row in rows]
    metrics = confusion(labels, [record["anomalous"] for record in records])
    report = {
        "sessions": len(rows),
        "threshold": model.metadata.threshold if args.threshold is None else args.threshold,
        "count_gate_threshold": None if gate is None else gate.threshold,
        **metrics.as_dict(),
        "ratio": f"{normal}:{anomalous}",
        "f1_at_ratio": metrics.f1_at_ratio(normal, anomalous),
        "by_rule": rule_breakdown(records, labels),
    }
    print(json.dumps(report, indent=2))
    return EXIT_OK


def _handle_run(args: argparse.Namespace) -> int:
    from logwarden.daemon.app import run_daemon

    return run_daemon(args.config, check_only=args.check)


if __name__ == "__main__":
    sys.exit(main())
