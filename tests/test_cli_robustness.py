"""A seeded sweep of the offline commands' options and inputs (``train``, ``score``, ``eval``).

Every mistake an operator can make must exit 2, 3, 4, 5 or 7 with exactly one
``logwarden <cmd>: error:`` line naming the option or file: never a traceback (exit 1), never a
silently wrong result such as a NaN F1, a model of nothing, or a model directory half replaced.

Commands run in process through ``logwarden.cli.main``; an exception escaping it is what a user
would see as a traceback, and fails the test with it.  Where only the checks made before training
are under test, ``fit`` is replaced by a sentinel; real training is one epoch of a tiny network.
Nothing is skipped: run as root, the permission cases drop to the ``nobody`` user (``privileges``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import random
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import structlog
from privileges import give_to_nobody, unprivileged, world_reachable_dir

from logwarden.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_MODEL, EXIT_OK, EXIT_TRAINING, EXIT_USAGE, main
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import METADATA_FILE, ONNX_FILE
from logwarden.scoring.metrics import f1_from
from logwarden.synthetic import (
    ENTITY_REGEX,
    generate_logs,
    generate_sequences,
    write_labelled_csv,
    write_lines,
    write_sequences,
)
from logwarden.synthetic.json_events import ENTITY_FIELD, as_json_events
from logwarden.train import export
from logwarden.train.fit import MAX_EPOCHS, MAX_HIDDEN_SIZE, MAX_LAYERS, SEED_LIMIT

SEED = 20_261_206
TINY = ("--epochs", "1", "--hidden-size", "8", "--layers", "1", "--seed", "3")
REACHED_FIT = "reached fit"
"""The outcome of a command that passed every check and started training (``fit`` replaced)."""


class FitReached(Exception):
    """Raised in place of ``fit``: every check before training passed."""


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit code (or REACHED_FIT) and what it printed."""

    code: int | str | None
    out: str
    err: str


def run(*args: object) -> Outcome:
    """Run ``logwarden ARGS`` in process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(arg) for arg in args])
    except SystemExit as stopped:  # argparse's usage errors
        code = stopped.code  # type: ignore[assignment]
    except FitReached:
        code = REACHED_FIT
    finally:
        structlog.reset_defaults()  # the command pointed structlog at the StringIO above
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_refused(outcome: Outcome, command: str, code: int, *names: object) -> str:
    """``code``, no traceback, exactly one error line of ``command`` naming each of ``names``; that line."""
    assert outcome.code == code, outcome.err
    assert "Traceback" not in outcome.err
    prefix = f"logwarden {command}: error: "
    errors = [line for line in outcome.err.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, outcome.err
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


@dataclass(frozen=True)
class Files:
    """Small seeded inputs, a model trained on them, and odd files standing in for mistakes."""

    root: Path
    train: Path
    test: Path
    labelled: Path
    log: Path
    events: Path
    model: Path

    def odd(self, kind: str) -> Path:
        """A path that is no usable input: empty, blank lines, binary, a directory, missing."""
        return self.root / "odd" / kind


def _write_odd_files(folder: Path) -> None:
    """The files behind ``Files.odd``; the binary one is seeded random bytes, invalid UTF-8 early on."""
    folder.mkdir()
    (folder / "empty").write_bytes(b"")
    (folder / "blank").write_bytes(b"\n  \n\t\n\r\n\n")
    (folder / "binary").write_bytes(random.Random(SEED).randbytes(4096))
    (folder / "directory").mkdir()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """The inputs and a one-epoch model trained on them by ``logwarden train``, once for the module."""
    root = tmp_path_factory.mktemp("robustness")
    data = Files(
        root,
        train=root / "train.txt",
        test=root / "test.txt",
        labelled=root / "labelled.csv",
        log=root / "app.log",
        events=root / "events.jsonl",
        model=root / "model",
    )
    write_sequences(data.train, generate_sequences(seed=1, sessions=40, anomaly_fraction=0.0).sessions)
    test = generate_sequences(seed=2, sessions=20, anomaly_fraction=0.3)
    write_sequences(data.test, test.sessions)
    write_labelled_csv(data.labelled, test.sessions, test.labels)
    logs = generate_logs(seed=1, entities=12, anomaly_fraction=0.0)
    write_lines(data.log, logs.lines)
    write_lines(data.events, as_json_events(logs))
    _write_odd_files(root / "odd")
    trained = run("train", "--sequences", data.train, "--out", data.model, *TINY)
    assert trained.code == EXIT_OK, trained.err
    return data


@pytest.fixture
def reachable(files: Files) -> Iterator[Files]:
    """A copy of the module's inputs and model owned by ``nobody``, in a directory every user may enter.

    Why: a permission case must fail for the path it locks, not because ``nobody`` (whom the tests
    become as root) cannot enter pytest's mode 0700 ``tmp_path`` to reach the other inputs.
    """
    with world_reachable_dir() as parent:
        root = parent / "robustness"
        shutil.copytree(files.root, root, symlinks=True)
        give_to_nobody(root)
        moved = {
            field.name: root / getattr(files, field.name).relative_to(files.root)
            for field in fields(Files)
            if field.name != "root"
        }
        yield Files(root, **moved)


@pytest.fixture
def no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop ``logwarden train`` with FitReached where it would start training."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise FitReached

    monkeypatch.setattr("logwarden.train.pipeline.fit", refuse)


def expand(args: tuple[str, ...], files: Files, tmp_path: Path, bad: Path | None = None) -> list[str]:
    """``args`` with {train}, {test}, {labelled}, {log}, {events}, {model}, {out} and {bad} filled in."""
    names = {
        "train": files.train,
        "test": files.test,
        "labelled": files.labelled,
        "log": files.log,
        "events": files.events,
        "model": files.model,
        "out": tmp_path / "out",
        "bad": bad,
    }
    return [arg.format(**names) for arg in args]


# --- numeric options -------------------------------------------------------------------------------

HUGE = str(10**30)
TRAIN = ("train", "--sequences", "{train}", "--out", "{out}")


NUMERIC_CASES = [
    ("--epochs", "-1", EXIT_TRAINING, "--epochs must be at least 1, got -1"),
    ("--epochs", HUGE, EXIT_TRAINING, f"--epochs must be at most {MAX_EPOCHS:,}, got a 31-digit number"),
    ("--hidden-size", "0", EXIT_TRAINING, "--hidden-size must be at least 1, got 0"),
    ("--hidden-size", "-8", EXIT_TRAINING, "--hidden-size must be at least 1, got -8"),
    ("--hidden-size", HUGE, EXIT_TRAINING, f"--hidden-size must be at most {MAX_HIDDEN_SIZE:,}"),
    ("--layers", "0", EXIT_TRAINING, "--layers must be at least 1, got 0"),
    ("--layers", "-2", EXIT_TRAINING, "--layers must be at least 1, got -2"),
    ("--layers", HUGE, EXIT_TRAINING, f"--layers must be at most {MAX_LAYERS}"),
    ("--seed", HUGE, EXIT_USAGE, "argument --seed: must be in [0, 2**32)"),
    *(
        (option, value, EXIT_USAGE, f"argument {option}:")
        for option in ("--epochs", "--seed", "--hidden-size", "--layers")
        for value in ("x", "nan", "inf", "-inf", "", "1.5", "1e3")
    ),
]


@pytest.mark.usefixtures("no_fit")
@pytest.mark.parametrize(
    ("option", "value", "code", "says"),
    NUMERIC_CASES,
    ids=[f"{option}={value!r}" for option, value, _, _ in NUMERIC_CASES],
)
def test_train_numeric_option_out_of_range_or_not_an_integer_is_refused_naming_it(
    option: str, value: str, code: int, says: str, files: Files, tmp_path: Path
) -> None:
    """0, negative, 10**30, non-numeric, NaN, inf and empty values stop before training, naming the option."""
    outcome = run(*expand(TRAIN, files, tmp_path), f"{option}={value}")
    assert_refused(outcome, "train", code, says)
    assert not (tmp_path / "out").exists()


def _random_option_value(rng: random.Random) -> str:
    """What an operator might type where an integer goes: small and huge integers of either sign,
    integers with a stray sign, space, suffix or separator, and fragments of numbers and words."""
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randint(-3, 40))
    if kind == 1:
        return str(rng.choice((1, -1)) * rng.randint(0, 10 ** rng.randint(2, 40)))
    if kind == 2:
        prefix = rng.choice(("", " ", "+", "-", "0"))
        return prefix + str(rng.randint(0, 99)) + rng.choice(("", " ", "_0", ".0", "e1", "x", "_"))
    pieces = ("0", "1", "-", "+", "_", ".", "e", " ", "nan", "inf", "x", "0x1")
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))


_FUZZ_RNG = random.Random(SEED)
FUZZED = [
    (option, _random_option_value(_FUZZ_RNG))
    for option in ("--epochs", "--seed", "--hidden-size", "--layers")
    for _ in range(8)
]
OPTION_RANGES = {
    "--epochs": (1, MAX_EPOCHS),
    "--seed": (0, SEED_LIMIT - 1),
    "--hidden-size": (1, MAX_HIDDEN_SIZE),
    "--layers": (1, MAX_LAYERS),
}


@pytest.mark.usefixtures("no_fit")
@pytest.mark.parametrize(("option", "value"), FUZZED, ids=[f"{option}={value!r}" for option, value in FUZZED])
def test_train_seeded_random_option_values_train_or_are_refused_naming_the_option(
    option: str, value: str, files: Files, tmp_path: Path
) -> None:
    """Whatever is typed, an integer in range reaches training and anything else is refused, naming it."""
    outcome = run(*expand(TRAIN, files, tmp_path), f"{option}={value}")
    try:
        number: int | None = int(value)
    except ValueError:
        number = None
    low, high = OPTION_RANGES[option]
    if number is not None and low <= number <= high:
        assert outcome.code == REACHED_FIT, outcome.err
    elif number is None or option == "--seed":
        assert_refused(outcome, "train", EXIT_USAGE, f"argument {option}:")
    else:
        assert_refused(outcome, "train", EXIT_TRAINING, option)


SCORE = ("score", "--model", "{model}", "--sequences", "{test}")
EVAL = ("eval", "--model", "{model}", "--labelled", "{labelled}")


@pytest.mark.parametrize("command", [SCORE, EVAL], ids=["score", "eval"])
@pytest.mark.parametrize("value", ["", "1e400", "-1e400", "-nan", "infinity", "1:2", "0x10"])
def test_threshold_that_is_not_a_finite_number_is_a_usage_error(
    command: tuple[str, ...], value: str, files: Files, tmp_path: Path
) -> None:
    """A threshold that overflows to inf, is NaN, empty or not a number exits 2 naming --threshold."""
    outcome = run(*expand(command, files, tmp_path), f"--threshold={value}")
    assert_refused(outcome, command[0], EXIT_USAGE, "argument --threshold:")
    assert outcome.out == ""


@pytest.mark.parametrize("value", ["0", HUGE, f"-{HUGE}"])
def test_score_threshold_at_any_finite_value_is_applied(value: str, files: Files, tmp_path: Path) -> None:
    """0 and +-10**30 are thresholds like any other: a session is anomalous iff it scores above it
    or holds an event the model never saw."""
    outcome = run(*expand(SCORE, files, tmp_path), f"--threshold={value}")
    assert outcome.code == EXIT_OK, outcome.err
    records = [json.loads(line) for line in outcome.out.splitlines()]
    assert len(records) == 20
    for record in records:
        expected = record["score"] > float(value) or record["unknown_events"] > 0
        assert record["anomalous"] == expected


# --- --ratio -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "code", "says"),
    [
        ("1:0", EXIT_INPUT, "--ratio: both counts must be positive"),
        ("0:1", EXIT_INPUT, "--ratio: both counts must be positive"),
        ("0:0", EXIT_INPUT, "--ratio: both counts must be positive"),
        ("-1:2", EXIT_INPUT, "--ratio: both counts must be positive"),
        ("a:b", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("1:2:3", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        (":", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("1.5:2", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("nan:1", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("inf:1", EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
        ("1:" + "9" * 5000, EXIT_INPUT, "--ratio: expected NORMAL:ANOMALOUS integers"),
    ],
)
def test_eval_ratio_malformed_or_without_both_classes_is_refused_naming_it(
    ratio: str, code: int, says: str, files: Files, tmp_path: Path
) -> None:
    """A ratio with a zero or negative class, or not two integers, never reaches a NaN F1."""
    outcome = run(*expand(EVAL, files, tmp_path), f"--ratio={ratio}")
    assert_refused(outcome, "eval", code, says)
    assert outcome.out == ""


@pytest.mark.parametrize(
    ("normal", "anomalous"),
    [(10**30, 1), (1, 10**30), (10**400, 1), (1, 10**400), (10**400, 10**400)],
    ids=["1e30:1", "1:1e30", "1e400:1", "1:1e400", "1e400:1e400"],
)
def test_eval_ratio_of_huge_counts_gives_the_f1_of_those_shares(
    normal: int, anomalous: int, files: Files, tmp_path: Path
) -> None:
    """Counts past a float's range weigh the classes by their shares, with no OverflowError or NaN."""
    outcome = run(*expand(EVAL, files, tmp_path), f"--ratio={normal}:{anomalous}")
    assert outcome.code == EXIT_OK, outcome.err
    report = json.loads(outcome.out)
    tpr, fpr = report["tpr"], report["fpr"]
    share = anomalous / (normal + anomalous)
    flagged = tpr * share + fpr * (1 - share)
    precision = tpr * share / flagged if flagged else 0.0
    assert math.isfinite(report["f1_at_ratio"]) and 0.0 <= report["f1_at_ratio"] <= 1.0
    assert report["f1_at_ratio"] == pytest.approx(f1_from(precision, tpr))


# --- input files --------------------------------------------------------------------------------------

TRAIN_LOGS = ("train", "--logs", "{bad}", "--entity-regex", ENTITY_REGEX, "--out", "{out}")
TRAIN_JSON = ("train", "--json", "{bad}", "--entity-field", ENTITY_FIELD, "--out", "{out}")
TRAIN_SEQUENCES = ("train", "--sequences", "{bad}", "--out", "{out}")
TRAIN_LABELLED = ("train", "--sequences", "{train}", "--labelled", "{bad}", "--out", "{out}")
TRAIN_TEMPLATES = ("train", "--sequences", "{train}", "--templates", "{bad}", "--out", "{out}")
SCORE_SEQUENCES = ("score", "--model", "{model}", "--sequences", "{bad}")
SCORE_JSON = ("score", "--model", "{model}", "--json", "{bad}")
EVAL_LABELLED = ("eval", "--model", "{model}", "--labelled", "{bad}")


def _input_id(command: tuple[str, ...]) -> str:
    """The command and the option naming the file under test, e.g. ``train--labelled``."""
    return f"{command[0]}{command[command.index('{bad}') - 1]}"


INPUT_CASES = [
    (TRAIN_SEQUENCES, "empty", EXIT_TRAINING, "no non-empty training sessions"),
    (TRAIN_SEQUENCES, "blank", EXIT_TRAINING, "no non-empty training sessions"),
    (TRAIN_SEQUENCES, "binary", EXIT_INPUT, "not UTF-8 text"),
    (TRAIN_SEQUENCES, "directory", EXIT_INPUT, "cannot read sequences file"),
    (TRAIN_LOGS, "empty", EXIT_TRAINING, "no log lines to train on"),
    (TRAIN_LOGS, "blank", EXIT_TRAINING, "no log lines to train on"),
    (TRAIN_LOGS, "binary", EXIT_TRAINING, "invalid_utf8"),
    (TRAIN_LOGS, "directory", EXIT_INPUT, "cannot read log file"),
    (TRAIN_LOGS, "missing", EXIT_INPUT, "log file not found"),
    (TRAIN_JSON, "empty", EXIT_TRAINING, "no log lines to train on"),
    (TRAIN_JSON, "blank", EXIT_TRAINING, "no log lines to train on"),
    (TRAIN_JSON, "binary", EXIT_TRAINING, "is a JSON object with a message"),
    (TRAIN_JSON, "directory", EXIT_INPUT, "cannot read log file"),
    (TRAIN_LABELLED, "empty", EXIT_INPUT, "header must have 'Sequence' and 'label' columns"),
    (TRAIN_LABELLED, "blank", EXIT_INPUT, "header must have 'Sequence' and 'label' columns"),
    (TRAIN_LABELLED, "binary", EXIT_INPUT, "not UTF-8 text"),
    (TRAIN_LABELLED, "missing", EXIT_INPUT, "labelled CSV not found"),
    (TRAIN_TEMPLATES, "empty", EXIT_INPUT, "header must have 'EventId' and 'EventTemplate' columns"),
    (TRAIN_TEMPLATES, "binary", EXIT_INPUT, "not UTF-8 text"),
    (TRAIN_TEMPLATES, "missing", EXIT_INPUT, "templates CSV not found"),
    (SCORE_SEQUENCES, "binary", EXIT_INPUT, "not UTF-8 text"),
    (SCORE_JSON, "directory", EXIT_INPUT, "cannot read log file"),
    (SCORE_JSON, "missing", EXIT_INPUT, "log file not found"),
    (EVAL_LABELLED, "empty", EXIT_INPUT, "header must have 'Sequence' and 'label' columns"),
    (EVAL_LABELLED, "blank", EXIT_INPUT, "header must have 'Sequence' and 'label' columns"),
    (EVAL_LABELLED, "binary", EXIT_INPUT, "not UTF-8 text"),
]


@pytest.mark.usefixtures("no_fit")
@pytest.mark.parametrize(
    ("command", "kind", "code", "says"),
    INPUT_CASES,
    ids=[f"{_input_id(command)}-{kind}" for command, kind, _, _ in INPUT_CASES],
)
def test_unusable_input_file_is_refused_naming_the_file(
    command: tuple[str, ...], kind: str, code: int, says: str, files: Files, tmp_path: Path
) -> None:
    """Empty, blank-only, binary, directory or missing inputs fail before training with the file's
    name and what is wrong with it (binary text: with its line too)."""
    bad = files.odd(kind)
    outcome = run(*expand(command, files, tmp_path, bad))
    line = assert_refused(outcome, command[0], code, bad, says)
    if kind == "binary" and code == EXIT_INPUT:
        assert f"{bad}:{_first_line_not_utf8(bad)}: not UTF-8 text" in line
    assert not (tmp_path / "out").exists()


UNREADABLE_CASES = [
    (TRAIN_SEQUENCES, "cannot read sequences file"),
    (TRAIN_LOGS, "cannot read log file"),
    (TRAIN_LABELLED, "cannot read labelled CSV"),
    (SCORE_SEQUENCES, "cannot read sequences file"),
    (EVAL_LABELLED, "cannot read labelled CSV"),
]


@pytest.mark.usefixtures("no_fit")
@pytest.mark.parametrize(
    ("command", "says"), UNREADABLE_CASES, ids=[_input_id(command) for command, _ in UNREADABLE_CASES]
)
def test_unreadable_input_file_exits_5_naming_the_file(
    command: tuple[str, ...], says: str, reachable: Files
) -> None:
    """An input file this user may not read fails before training with the file's name, every other
    input and --out being usable."""
    bad = reachable.root / "unreadable"
    bad.write_text("1 2 3\n", encoding="utf-8")
    give_to_nobody(bad)
    bad.chmod(0)
    with unprivileged():
        outcome = run(*expand(command, reachable, reachable.root, bad))
    assert_refused(outcome, command[0], EXIT_INPUT, bad, says, "Permission denied")
    assert outcome.out == ""
    assert not (reachable.root / "out").exists()


def _first_line_not_utf8(path: Path) -> int:
    """The number of the first line of ``path`` that is not UTF-8, counting from 1."""
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    raise AssertionError(f"{path} is UTF-8 throughout")


@pytest.mark.usefixtures("no_fit")
def test_train_sequences_of_one_event_each_is_refused_before_training(files: Files, tmp_path: Path) -> None:
    """A file of one key per line has no event following another: no model is trained or written."""
    one_per_line = tmp_path / "keys.txt"
    write_lines(one_per_line, [str(key) for key in range(1, 15)])
    outcome = run("train", "--sequences", one_per_line, "--out", tmp_path / "out")
    assert_refused(outcome, "train", EXIT_TRAINING, one_per_line, "holds a single event")
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("no_fit")
def test_train_logs_whose_entity_names_single_lines_is_refused_before_training(
    files: Files, tmp_path: Path
) -> None:
    """An entity regex matching a per-line value (here a request number) makes sessions of one line each."""
    log = tmp_path / "requests.log"
    shapes = ("request {} opened", "request {} failed with a timeout", "closing request {} for good")
    write_lines(log, [shapes[n % 3].format(n) for n in range(30)])
    outcome = run("train", "--logs", log, "--entity-regex", r"request (\d+)", "--out", tmp_path / "out")
    assert_refused(
        outcome, "train", EXIT_TRAINING, log, "each of the 30 training sessions holds a single event"
    )


@pytest.mark.parametrize("label", ["0", "1"])
def test_eval_labelled_csv_of_one_class_is_refused_rather_than_reporting_zero_rates(
    label: str, files: Files, tmp_path: Path
) -> None:
    """With one class TPR, precision and F1 are undefined; eval says so instead of printing 0.0."""
    one_class = tmp_path / "one-class.csv"
    write_lines(one_class, ["Sequence,label", f"1 2 3 4,{label}", f"1 2 4,{label}"])
    outcome = run("eval", "--model", files.model, "--labelled", one_class)
    kind = "normal (label 0)" if label == "0" else "anomalous (label 1)"
    assert_refused(outcome, "eval", EXIT_INPUT, one_class, f"holds only {kind} sessions (2)")
    assert outcome.out == ""


def test_eval_unreadable_model_directory_exits_4(reachable: Files) -> None:
    """A model directory this user may not read is a model-load error naming model.json."""
    locked = reachable.model
    locked.chmod(0)
    with unprivileged():
        outcome = run("eval", "--model", locked, "--labelled", reachable.labelled)
    assert_refused(outcome, "eval", EXIT_MODEL, locked / METADATA_FILE, "Permission denied")
    assert outcome.out == ""


@pytest.mark.parametrize("kind", ["a_file", "foreign_files", "metadata_only", "garbage_metadata"])
def test_score_model_that_is_not_a_model_directory_exits_4_naming_the_file(
    kind: str, files: Files, tmp_path: Path
) -> None:
    """--model naming a file, a folder of other files, or half a model, is a model-load error."""
    model = tmp_path / "model"
    if kind == "a_file":
        model.write_text("not a model\n", encoding="utf-8")
    else:
        model.mkdir()
        if kind == "foreign_files":
            (model / "notes.txt").write_text("x", encoding="utf-8")
        elif kind == "metadata_only":
            (model / METADATA_FILE).write_bytes((files.model / METADATA_FILE).read_bytes())
        else:
            (model / METADATA_FILE).write_bytes(random.Random(SEED).randbytes(512))
            (model / ONNX_FILE).write_bytes((files.model / ONNX_FILE).read_bytes())
    outcome = run("score", "--model", model, "--sequences", files.test)
    missing = ONNX_FILE if kind == "metadata_only" else METADATA_FILE
    assert_refused(outcome, "score", EXIT_MODEL, model / missing)
    assert outcome.out == ""


# --- option combinations the docs forbid, and empty values -----------------------------------------


COMBINATIONS = [
    (("train", "--sequences", "{train}", "--logs", "{log}", "--out", "{out}"), EXIT_USAGE, "--logs"),
    (("train", "--sequences", "{train}", "--out", ""), EXIT_USAGE, "argument --out: expected a path"),
    (
        ("train", "--sequences", " ", "--out", "{out}"),
        EXIT_USAGE,
        "argument --sequences: expected a path",
    ),
    (("score", "--model", "", "--sequences", "{test}"), EXIT_USAGE, "argument --model: expected a path"),
    (
        ("eval", "--model", "{model}", "--labelled", ""),
        EXIT_USAGE,
        "argument --labelled: expected a path",
    ),
    (
        ("train", "--sequences", "{train}", "--entity-regex", "x", "--out", "{out}"),
        EXIT_CONFIG,
        "--entity-regex applies to --logs and --json only",
    ),
    (
        ("train", "--sequences", "{train}", "--entity-field", "host", "--out", "{out}"),
        EXIT_CONFIG,
        "--entity-field applies to --json only",
    ),
    (
        ("train", "--json", "{events}", "--entity-field", "a", "--entity-regex", "b", "--out", "{out}"),
        EXIT_CONFIG,
        "--json needs exactly one of --entity-field",
    ),
    (
        ("train", "--json", "{events}", "--out", "{out}"),
        EXIT_CONFIG,
        "--json needs exactly one of --entity-field",
    ),
    (
        ("train", "--logs", "{log}", "--entity-regex", ENTITY_REGEX, "--labelled", "{labelled}")
        + ("--templates", "{labelled}", "--out", "{out}"),
        EXIT_CONFIG,
        "--templates applies to --sequences and --event-field only",
    ),
    (
        (
            "train",
            "--logs",
            "{log}",
            "--entity-regex",
            ENTITY_REGEX,
            "--header-regex",
            "",
            "--out",
            "{out}",
        ),
        EXIT_CONFIG,
        "header regex '' has no named group (?P<content>...)",
    ),
    (
        ("train", "--logs", "{log}", "--entity-regex", "(", "--out", "{out}"),
        EXIT_CONFIG,
        "entity regex '(' is invalid",
    ),
    (
        ("train", "--json", "{events}", "--entity-field", "e", "--event-field", "k", "--mask", "A=a")
        + ("--out", "{out}"),
        EXIT_CONFIG,
        "--mask applies to messages",
    ),
    (
        ("score", *SCORE[1:], "--message-field", "m"),
        EXIT_CONFIG,
        "--message-field applies to --json only",
    ),
    (("score", *SCORE[1:], "--event-field", "e"), EXIT_CONFIG, "--event-field applies to --json only"),
    (
        ("score", "--model", "{model}", "--logs", "{log}", "--entity-field", "host"),
        EXIT_CONFIG,
        "--entity-field applies to --json only",
    ),
    (
        (
            "score",
            "--model",
            "{model}",
            "--json",
            "{events}",
            "--entity-field",
            "a",
            "--entity-regex",
            "b",
        ),
        EXIT_CONFIG,
        "--entity-field and --entity-regex exclude each other",
    ),
    (
        ("score", "--model", "{model}", "--json", "{events}", "--event-field", "k"),
        EXIT_CONFIG,
        "give the field naming each event's entity",
    ),
    (
        ("score", "--model", "{model}", "--logs", "{log}"),
        EXIT_INPUT,
        "trained on pre-parsed sequences: score it with --sequences",
    ),
]


def _combination_id(args: tuple[str, ...]) -> str:
    """The command and the options of ``args``, with ``=''`` marking an empty value."""
    words = [args[0]]
    for option, value in zip(args[1:], (*args[2:], None), strict=True):
        if option.startswith("--"):
            words.append(f"{option}=''" if value is not None and not value.strip() else option)
    return " ".join(words)


@pytest.mark.usefixtures("no_fit")
@pytest.mark.parametrize(
    ("args", "code", "says"), COMBINATIONS, ids=[_combination_id(args) for args, _, _ in COMBINATIONS]
)
def test_option_combination_the_docs_forbid_is_refused_naming_the_option(
    args: tuple[str, ...], code: int, says: str, files: Files, tmp_path: Path
) -> None:
    """Options that do not apply to the chosen input, exclude each other, or are empty never run."""
    outcome = run(*expand(args, files, tmp_path))
    assert_refused(outcome, args[0], code, says)
    assert outcome.out == ""
    assert not (tmp_path / "out").exists()


# --- --out ---------------------------------------------------------------------------------------------


def _model_bytes(directory: Path) -> dict[str, bytes]:
    """The content of each model file in ``directory``."""
    return {name: (directory / name).read_bytes() for name in (ONNX_FILE, METADATA_FILE)}


def _copy_model(files: Files, directory: Path) -> dict[str, bytes]:
    """``directory`` made a copy of the module's model (standing in for an earlier training); its files."""
    directory.mkdir()
    model = _model_bytes(files.model)
    for name, data in model.items():
        (directory / name).write_bytes(data)
    return model


@pytest.mark.usefixtures("no_fit")
def test_train_out_directory_holding_other_files_is_refused_and_left_alone(
    files: Files, tmp_path: Path
) -> None:
    """--out . or a home folder would be replaced whole by the model: it is refused, naming a file in it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n", encoding="utf-8")
    (folder / ONNX_FILE).write_bytes(b"an old graph")
    outcome = run("train", "--sequences", files.train, "--out", folder, *TINY)
    assert_refused(outcome, "train", EXIT_CONFIG, f"--out {folder}:", "notes.txt")
    assert sorted(path.name for path in folder.iterdir()) == [ONNX_FILE, "notes.txt"]
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me\n"


@pytest.mark.usefixtures("no_fit")
def test_train_out_in_an_unwritable_directory_exits_3_before_training(reachable: Files) -> None:
    """A model that could not be written is refused before training, naming --out."""
    locked = reachable.root / "locked"
    locked.mkdir()
    give_to_nobody(locked)
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with unprivileged():
        outcome = run("train", "--sequences", reachable.train, "--out", locked / "model")
    assert_refused(outcome, "train", EXIT_CONFIG, f"--out {locked / 'model'}:", f"{locked} is not writable")
    assert not (locked / "model").exists()


def test_train_over_an_existing_model_replaces_it_whole_keeping_its_mode(
    files: Files, tmp_path: Path
) -> None:
    """Retraining into a model directory leaves exactly the new model there, nothing beside it."""
    out = tmp_path / "model"
    old = _copy_model(files, out)
    out.chmod(0o750)
    outcome = run("train", "--sequences", files.train, "--out", out, *TINY[:-1], "4")
    assert outcome.code == EXIT_OK, outcome.err
    new = _model_bytes(out)
    assert new[ONNX_FILE] != old[ONNX_FILE]
    assert load_bundle(out).metadata.training["seed"] == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    assert sorted(path.name for path in out.iterdir()) == [METADATA_FILE, ONNX_FILE]
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_train_out_through_a_symbolic_link_keeps_the_link(files: Files, tmp_path: Path) -> None:
    """A deployment's ``model -> model-v3`` link still points at the retrained model afterwards."""
    _copy_model(files, tmp_path / "model-v3")
    link = tmp_path / "model"
    link.symlink_to("model-v3")
    outcome = run("train", "--sequences", files.train, "--out", link, *TINY[:-1], "4")
    assert outcome.code == EXIT_OK, outcome.err
    assert link.is_symlink() and os.readlink(link) == "model-v3"
    assert load_bundle(link).metadata.training["seed"] == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "model-v3"]


def _fail_on(name: str, error: BaseException) -> Callable[[Path, bytes], None]:
    """A stand-in for export's file writer that writes files until it reaches ``name``."""
    write = export._write_synced

    def write_or_fail(path: Path, data: bytes) -> None:
        if path.name == name:
            raise error
        write(path, data)

    return write_or_fail


@pytest.mark.parametrize(
    "failing_file", [ONNX_FILE, METADATA_FILE], ids=["graph-write-fails", "metadata-write-fails"]
)
def test_train_whose_export_fails_leaves_the_previous_model_untouched(
    failing_file: str, files: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while writing either file exits 7 naming the directory; the old model still loads
    as it was (no new graph beside old metadata) and no partial files are left behind."""
    out = tmp_path / "model"
    old = _copy_model(files, out)
    monkeypatch.setattr(
        export, "_write_synced", _fail_on(failing_file, OSError(errno.ENOSPC, "No space left"))
    )
    outcome = run("train", "--sequences", files.train, "--out", out, *TINY[:-1], "4")
    assert_refused(outcome, "train", EXIT_TRAINING, f"cannot write the model to {out}", "No space left")
    assert _model_bytes(out) == old
    assert load_bundle(out).metadata.onnx_sha256 == load_bundle(files.model).metadata.onnx_sha256
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_export_interrupted_between_its_renames_restores_the_previous_model(
    files: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the old model is moved aside, a failure to move the new one in puts the old one back."""
    out = tmp_path / "model"
    old = _copy_model(files, out)
    rename = os.rename

    def rename_but_not_into_place(source: str | Path, target: str | Path) -> None:
        if Path(source).name.startswith(".model.new-") and not Path(out).exists():
            raise KeyboardInterrupt
        rename(source, target)

    monkeypatch.setattr(export.os, "rename", rename_but_not_into_place)
    with pytest.raises(KeyboardInterrupt):
        export.publish_model_dir(out, {ONNX_FILE: b"new graph", METADATA_FILE: b"{}"})
    assert _model_bytes(out) == old
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_export_into_a_new_or_empty_directory_creates_it_with_only_the_model(tmp_path: Path) -> None:
    """A new path (below folders that do not exist yet) and an empty folder both end as the model alone."""
    files = {ONNX_FILE: b"graph", METADATA_FILE: b"{}"}
    new = tmp_path / "a" / "b" / "model"
    empty = tmp_path / "empty"
    empty.mkdir()
    for directory in (new, empty):
        export.publish_model_dir(directory, files)
        assert _model_bytes(directory) == files
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "empty"]
    assert sorted(path.name for path in new.parent.iterdir()) == ["model"]
