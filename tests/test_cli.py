"""The ``logwarden`` command end to end: train, score and eval on small synthetic data, and exit codes.

Models are trained once per run through the real command in a subprocess; score and eval
run in subprocesses too where the process boundary matters (stdout, exit status, imports).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from cli_runner import json_lines, run_cli, stderr_summary

from logwarden import __version__, cli
from logwarden.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_MODEL, EXIT_TRAINING, EXIT_USAGE, main
from logwarden.events.entity import MAX_ENTITY_CHARS
from logwarden.events.sequences import read_sequences
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import METADATA_DIGEST_KEY, METADATA_FILE, ONNX_FILE, metadata_digest
from logwarden.synthetic import (
    ENTITY_REGEX,
    generate_logs,
    generate_sequences,
    write_labelled_csv,
    write_lines,
    write_sequences,
)

TINY_TRAINING = ("--epochs", "2", "--hidden-size", "16", "--layers", "1", "--seed", "5")


@dataclass(frozen=True)
class CliData:
    """Input files written once per run."""

    train_sequences: Path
    test_sequences: Path
    labelled: Path
    templates: Path
    train_logs: Path
    test_logs: Path
    test_log_entities: list[str]


@dataclass(frozen=True)
class TrainedModel:
    """A model directory written by ``logwarden train`` and the summary it printed."""

    directory: Path
    summary: dict[str, Any]


@pytest.fixture(scope="session")
def cli_data(tmp_path_factory: pytest.TempPathFactory) -> CliData:
    """Seeded synthetic training and test files: key sequences, a labelled CSV, templates, raw logs."""
    root = tmp_path_factory.mktemp("cli-data")
    data = CliData(
        train_sequences=root / "train.txt",
        test_sequences=root / "test.txt",
        labelled=root / "labelled.csv",
        templates=root / "templates.csv",
        train_logs=root / "train.log",
        test_logs=root / "test.log",
        test_log_entities=[],
    )
    write_sequences(
        data.train_sequences, generate_sequences(seed=1, sessions=200, anomaly_fraction=0.0).sessions
    )
    test = generate_sequences(seed=2, sessions=60, anomaly_fraction=0.2)
    write_sequences(data.test_sequences, test.sessions)
    write_labelled_csv(data.labelled, test.sessions, test.labels)
    write_lines(
        data.templates, ["EventId,EventTemplate", *(f"E{n},step number {n} <*>" for n in range(1, 15))]
    )
    write_lines(data.train_logs, generate_logs(seed=1, entities=150, anomaly_fraction=0.0).lines)
    test_logs = generate_logs(seed=2, entities=30, anomaly_fraction=0.2)
    write_lines(data.test_logs, test_logs.lines)
    data.test_log_entities.extend(dict.fromkeys(test_logs.entity_of_line))
    return data


def _train(out_dir: Path, *args: str | Path) -> TrainedModel:
    result = run_cli("train", *args, "--out", out_dir, *TINY_TRAINING)
    assert result.returncode == 0, result.stderr
    return TrainedModel(out_dir, json.loads(result.stdout))


@pytest.fixture(scope="session")
def sequence_model(tmp_path_factory: pytest.TempPathFactory, cli_data: CliData) -> TrainedModel:
    """``logwarden train --sequences`` with a templates CSV."""
    out_dir = tmp_path_factory.mktemp("cli-models") / "sequences"
    return _train(out_dir, "--sequences", cli_data.train_sequences, "--templates", cli_data.templates)


@pytest.fixture(scope="session")
def log_model(tmp_path_factory: pytest.TempPathFactory, cli_data: CliData) -> TrainedModel:
    """``logwarden train --logs --entity-regex`` on raw synthetic scheduler lines."""
    out_dir = tmp_path_factory.mktemp("cli-models") / "logs"
    return _train(out_dir, "--logs", cli_data.train_logs, "--entity-regex", ENTITY_REGEX)


FAILS_WHEN_READ = Path("/proc/self/mem")
"""Opens, and fails with EIO at its first byte (the first page of a process is never mapped): an I/O
error in the middle of reading, as a failing disk or a network file system gives."""


@pytest.mark.skipif(not FAILS_WHEN_READ.exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("option", ["--logs", "--json"])
def test_cli_score_log_file_failing_while_it_is_read_exits_5_naming_it(
    option: str, log_model: TrainedModel
) -> None:
    """An error reading the file after it opened is the input's exit status and one line naming the
    file, as an error opening it is; never a traceback with exit 1."""
    result = run_cli("score", "--model", log_model.directory, option, FAILS_WHEN_READ)
    assert result.returncode == EXIT_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"logwarden score: error: {FAILS_WHEN_READ}: cannot read log file: Input/output error"
    )


def test_cli_train_sequences_prints_summary_of_written_model(sequence_model: TrainedModel) -> None:
    """The printed summary describes the model directory that was written."""
    metadata = load_bundle(sequence_model.directory).metadata
    summary = sequence_model.summary
    assert summary["out"] == str(sequence_model.directory)
    assert summary["vocabulary_size"] == len(metadata.vocabulary) == 11
    assert summary["threshold"] == pytest.approx(metadata.threshold)
    assert summary["threshold_method"] == metadata.threshold_method
    assert "counts do not repeat" in summary["count_gate"]["off"]  # generated jobs vary their counts
    assert summary["transition_rule"] == {  # generated jobs repeat their transitions
        "transitions": len(metadata.transition_rule.transitions) if metadata.transition_rule else None,
        "checks": ["boundaries", "inner"],
        "penalty": 100.0,
    }
    assert summary["cooccurrence_rule"] == (  # what the generated jobs show, either way
        metadata.cooccurrence_rule.describe()
        if metadata.cooccurrence_rule
        else {"off": metadata.training["cooccurrence_rule"]["off"]}
    )
    assert "one-layer model" in summary["length_rule"]["off"]  # trained with --layers 1
    assert summary["sessions"] == 200
    assert summary["epochs"] == 2
    assert summary["seconds"] >= 0
    assert (metadata.input_kind, metadata.hidden_size, metadata.num_layers) == ("sequences", 16, 1)


def test_cli_train_templates_csv_maps_event_id_to_key(sequence_model: TrainedModel) -> None:
    """With --templates, key N gets the text of EventId EN."""
    metadata = load_bundle(sequence_model.directory).metadata
    assert [metadata.template_of(3 + i) for i in range(3)] == [
        f"step number {k} <*>" for k in ("1", "2", "3")
    ]


def test_cli_train_labelled_uses_max_f1_threshold(tmp_path: Path, cli_data: CliData) -> None:
    """--labelled replaces the threshold rule with max-F1 on the labelled sessions."""
    result = run_cli(
        "train",
        "--sequences",
        cli_data.train_sequences,
        "--labelled",
        cli_data.labelled,
        "--out",
        tmp_path / "m",
        "--epochs",
        "1",
        "--hidden-size",
        "8",
        "--layers",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["threshold_method"] == "labelled-max-f1"


def test_cli_score_sequences_one_record_per_input_line_in_order(
    sequence_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """score --sequences writes one object per input line, numbered from 0, an unknown key flagged."""
    lines = cli_data.test_sequences.read_text(encoding="utf-8").splitlines()[:8]
    lines[3] = lines[3] + " 99"
    scored = tmp_path / "score.txt"
    scored.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("score", "--model", sequence_model.directory, "--sequences", scored)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [r["line"] for r in records] == list(range(8))
    assert [r["length"] for r in records] == [len(keys) for keys in read_sequences(scored)]
    for record in records:
        assert {"line", "anomalous", "score"} <= record.keys()
        assert isinstance(record["anomalous"], bool)
        assert isinstance(record["score"], float)
    assert records[3]["anomalous"]
    assert records[3]["unknown_events"] == 1


def test_cli_score_counts_unseen_transitions_and_their_penalty_shows_in_the_score(
    sequence_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """A training session scores with no unseen transition; the same session with its last two keys
    swapped, an order training never shows, is anomalous with a score of at least the penalty."""
    metadata = load_bundle(sequence_model.directory).metadata
    rule = metadata.transition_rule
    assert rule is not None
    session = cli_data.train_sequences.read_text(encoding="utf-8").splitlines()[0].split()
    swapped = [*session[:-2], session[-1], session[-2]]
    scored = tmp_path / "score.txt"
    scored.write_text(f"{' '.join(session)}\n{' '.join(swapped)}\n", encoding="utf-8")
    result = run_cli("score", "--model", sequence_model.directory, "--sequences", scored)
    assert result.returncode == 0, result.stderr
    trained, changed = json_lines(result.stdout)
    assert trained["unseen_transitions"] == 0 and trained["score"] < rule.penalty
    expected = rule.unseen(Vocabulary(metadata.vocabulary).encode(swapped))
    assert expected >= 1, "the generated sessions never end with their last two steps swapped"
    assert changed["unseen_transitions"] == expected
    assert changed["anomalous"] and changed["score"] >= rule.penalty


def test_cli_score_threshold_override_changes_verdicts(
    sequence_model: TrainedModel, cli_data: CliData
) -> None:
    """--threshold below every score flags every session."""
    result = run_cli(
        "score",
        "--model",
        sequence_model.directory,
        "--sequences",
        cli_data.test_sequences,
        "--threshold",
        "-1",
    )
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert len(records) == 60
    assert all(r["anomalous"] for r in records)


def test_cli_score_logs_one_record_per_entity_in_first_seen_order(
    log_model: TrainedModel, cli_data: CliData
) -> None:
    """score --logs writes one object per entity, in order of its first line, and a summary on stderr."""
    result = run_cli("score", "--model", log_model.directory, "--logs", cli_data.test_logs)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [r["entity"] for r in records] == cli_data.test_log_entities
    for record in records:
        assert {"entity", "anomalous", "score"} <= record.keys()
    summary = stderr_summary(result)
    assert summary["lines"] == len(cli_data.test_logs.read_text(encoding="utf-8").splitlines())
    assert summary["lines_without_entity"] == 0


def test_cli_score_logs_reads_lines_as_the_daemon_receives_them(
    log_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """A BOM, CRLF endings, a stray \\r inside a line and blank lines change no event: every known
    line still matches its template and names its entity; blank lines are counted apart."""
    lines = cli_data.test_logs.read_text(encoding="utf-8").splitlines()[:40]
    lines[0] = "\ufeff" + lines[0]
    lines[1] = re.sub(r"(job_\d+) ", "\\1\r", lines[1], count=1)
    path = tmp_path / "test.log"
    path.write_bytes(("\r\n".join(lines[:20]) + "\r\n\r\n\n" + "\n".join(lines[20:]) + "\n").encode())
    result = run_cli("score", "--model", log_model.directory, "--logs", path)
    assert result.returncode == 0, result.stderr
    summary = stderr_summary(result)
    assert (summary["lines"], summary["blank_lines"]) == (40, 2)
    assert (summary["lines_without_entity"], summary["unknown_template_lines"]) == (0, 0)


def test_cli_score_logs_counts_a_line_whose_entity_the_daemon_refuses_as_invalid(
    log_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """An entity past MAX_ENTITY_CHARS is a dead letter in the daemon; offline its line is an invalid
    line (reason oversize, quoted), and no session, so both keep the same events."""
    lines = cli_data.test_logs.read_text(encoding="utf-8").splitlines()[:20]
    long_job = "job_" + "7" * MAX_ENTITY_CHARS
    lines.insert(3, re.sub(r"job_\d+", long_job, lines[0], count=1))
    path = tmp_path / "long-entity.log"
    write_lines(path, lines)
    result = run_cli("score", "--model", log_model.directory, "--logs", path)
    assert result.returncode == 0, result.stderr
    summary = stderr_summary(result)
    assert (summary["lines"], summary["invalid_lines"], summary["invalid_reasons"]) == (
        21,
        1,
        {"oversize": 1},
    )
    assert summary["first_invalid"].startswith(
        f"line 4: oversize: entity regex: entity of {len(long_job)} characters"
    )
    assert long_job not in {record["entity"] for record in json_lines(result.stdout)}


def test_cli_score_logs_lists_a_new_event_once_whatever_its_values(
    log_model: TrainedModel, tmp_path: Path
) -> None:
    """new_templates names new events, masked, the entity a wildcard: three lines of three jobs
    differing only in a number are one."""
    path = tmp_path / "new.log"
    write_lines(
        path,
        [
            f"2026-11-21T10:00:0{n}.000Z host-3 scheduler[7]: job_100{n} exploded with code {n}"
            for n in (1, 2, 3)
        ],
    )
    result = run_cli("score", "--model", log_model.directory, "--logs", path)
    assert result.returncode == 0, result.stderr
    summary = stderr_summary(result)
    assert summary["unknown_template_lines"] == 3
    assert summary["new_templates"] == ["<*> exploded with code <NUM>"]


def test_cli_score_logs_with_an_entity_regex_that_names_nothing_warns_naming_it(
    log_model: TrainedModel, cli_data: CliData
) -> None:
    """A regex that fits no line scores nothing: exit 0 with no records, as the input says, and a
    warning line naming the regex, since an empty output is most often a mistyped regex."""
    result = run_cli(
        "score", "--model", log_model.directory, "--logs", cli_data.test_logs, "--entity-regex", "(x)?nomatch"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    warning, summary = result.stderr.strip().splitlines()
    lines = stderr_summary(result)["lines"]
    assert warning == (
        f"logwarden score: warning: {cli_data.test_logs}: --entity-regex '(x)?nomatch' named no entity "
        f"in any of its {lines} lines, so nothing was scored"
    )
    assert stderr_summary(result)["lines_without_entity"] == lines > 0


def test_cli_score_logs_with_an_empty_entity_regex_is_refused(
    log_model: TrainedModel, cli_data: CliData
) -> None:
    """An empty --entity-regex is no regex: refused as a config error, as train refuses it."""
    result = run_cli(
        "score", "--model", log_model.directory, "--logs", cli_data.test_logs, "--entity-regex", ""
    )
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.strip() == (
        "logwarden score: error: --entity-regex is empty: give a regex, or leave the option out to use "
        "the model's"
    )


def test_cli_train_logs_records_parser_settings(log_model: TrainedModel) -> None:
    """A model trained with --logs stores its entity regex so score --logs needs no options."""
    metadata = load_bundle(log_model.directory).metadata
    assert metadata.input_kind == "logs"
    assert metadata.parser is not None
    assert metadata.parser.entity_regex == ENTITY_REGEX
    assert log_model.summary["sessions"] == 150


def test_cli_eval_prints_detection_metrics(sequence_model: TrainedModel, cli_data: CliData) -> None:
    """eval prints TPR, FPR, precision, recall, F1 and the re-weighted F1 for the labelled sessions."""
    result = run_cli(
        "eval", "--model", sequence_model.directory, "--labelled", cli_data.labelled, "--ratio", "9:1"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"tpr", "fpr", "precision", "recall", "f1", "f1_at_ratio"} <= report.keys()
    assert report["sessions"] == 60
    counts = ("true_positives", "false_positives", "true_negatives", "false_negatives")
    assert sum(report[k] for k in counts) == 60
    assert report["true_positives"] + report["false_negatives"] == 12
    assert report["ratio"] == "9:1"
    for rate in ("tpr", "fpr", "precision", "recall", "f1", "f1_at_ratio"):
        assert 0.0 <= report[rate] <= 1.0
    # Every session breaking a rule alerts (100 nats above the threshold), so the breakdown splits the
    # flagged sessions exactly into those a rule flags and those the threshold alone flags.
    by_rule = report["by_rule"]
    assert (
        by_rule["any_rule"]["anomalous"] + by_rule["threshold_alone"]["anomalous"] == report["true_positives"]
    )
    assert by_rule["any_rule"]["normal"] + by_rule["threshold_alone"]["normal"] == report["false_positives"]
    assert by_rule["unseen_key"]["anomalous"] > 0  # the generated anomalies include unknown templates


_NO_TORCH_WRAPPER = """
import json, sys
from logwarden.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules}), file=sys.stderr)
"""


def test_cli_eval_with_a_threshold_override_reports_it_and_weights_f1_by_the_ratio(
    sequence_model: TrainedModel, cli_data: CliData
) -> None:
    """Every session flagged (threshold -1): TPR = FPR = 1, so at 9 normal to 1 anomalous the
    precision is 1/10 and F1 2 x 0.1 / 1.1; the report shows the threshold used."""
    result = run_cli(
        "eval",
        "--model",
        sequence_model.directory,
        "--labelled",
        cli_data.labelled,
        "--ratio",
        "9:1",
        "--threshold=-1",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["threshold"] == -1.0
    assert report["tpr"] == report["fpr"] == 1.0
    assert report["f1_at_ratio"] == pytest.approx(2 * 0.1 / 1.1)


@pytest.mark.parametrize("source", ["sequences", "logs"])
def test_cli_score_does_not_import_torch(
    source: str, sequence_model: TrainedModel, log_model: TrainedModel, cli_data: CliData
) -> None:
    """Scoring runs on onnxruntime alone: torch is never imported."""
    model, data = (
        (sequence_model, cli_data.test_sequences)
        if source == "sequences"
        else (log_model, cli_data.test_logs)
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_TORCH_WRAPPER,
            "score",
            "--model",
            str(model.directory),
            f"--{source}",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {"code": 0, "torch": False}
    assert json_lines(result.stdout)


def test_cli_score_missing_model_dir_exits_4(
    tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model directory without model files exits with the model-load code and names the file."""
    code = main(["score", "--model", str(tmp_path), "--sequences", str(cli_data.test_sequences)])
    assert code == EXIT_MODEL == 4
    assert METADATA_FILE in capsys.readouterr().err


def test_cli_score_tampered_model_exits_4(
    tmp_path: Path, sequence_model: TrainedModel, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """A graph that fails its checksum exits 4, naming model.onnx."""
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / METADATA_FILE).write_bytes((sequence_model.directory / METADATA_FILE).read_bytes())
    (copy / ONNX_FILE).write_bytes((sequence_model.directory / ONNX_FILE).read_bytes() + b"\0")
    code = main(["eval", "--model", str(copy), "--labelled", str(cli_data.labelled)])
    assert code == EXIT_MODEL
    assert ONNX_FILE in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["score", "--sequences", "{missing}"],
        ["score", "--logs", "{missing}"],
        ["eval", "--labelled", "{missing}"],
    ],
)
def test_cli_missing_input_file_exits_5(
    command: list[str], tmp_path: Path, sequence_model: TrainedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing input file exits with the input code and names the file."""
    missing = str(tmp_path / "absent.txt")
    args = [
        command[0],
        "--model",
        str(sequence_model.directory),
        *(a.format(missing=missing) for a in command[1:]),
    ]
    assert main(args) == EXIT_INPUT == 5
    assert "absent.txt" in capsys.readouterr().err


def test_cli_train_missing_input_file_exits_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """train on a file that does not exist fails before training, with the input code."""
    code = main(["train", "--sequences", str(tmp_path / "absent.txt"), "--out", str(tmp_path / "m")])
    assert code == EXIT_INPUT
    assert "absent.txt" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_train_logs_without_entity_regex_exits_3(
    tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """--logs without --entity-regex is a configuration error naming the option."""
    code = main(["train", "--logs", str(cli_data.train_logs), "--out", str(tmp_path / "m")])
    assert code == EXIT_CONFIG
    assert "--entity-regex is required with --logs" in capsys.readouterr().err


def test_cli_train_templates_with_logs_exits_3(tmp_path: Path, cli_data: CliData) -> None:
    """--templates makes no sense with mined templates and is refused."""
    code = main(
        [
            "train",
            "--logs",
            str(cli_data.train_logs),
            "--entity-regex",
            ENTITY_REGEX,
            "--templates",
            str(cli_data.templates),
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == EXIT_CONFIG


def test_cli_train_zero_epochs_exits_7(
    tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid training option is a training error naming the option."""
    code = main(
        ["train", "--sequences", str(cli_data.train_sequences), "--out", str(tmp_path / "m"), "--epochs", "0"]
    )
    assert code == EXIT_TRAINING
    assert "epochs" in capsys.readouterr().err


def test_cli_score_keeps_no_onnxruntime_usage_data_under_home(
    sequence_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """onnxruntime 1.32 would write a device id and queued usage events under $HOME/.cache: logwarden
    turns that off unless the operator set ORT_DISABLE_TELEMETRY, so $HOME stays empty."""
    environment = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "logwarden.cli",
            "score",
            "--model",
            str(sequence_model.directory),
            "--sequences",
            str(cli_data.test_sequences),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**environment, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_score_sequences_on_logs_model_exits_5(log_model: TrainedModel, cli_data: CliData) -> None:
    """Scoring key sequences with a raw-log model is refused with the input code."""
    assert (
        main(["score", "--model", str(log_model.directory), "--sequences", str(cli_data.test_sequences)]) == 5
    )


def test_cli_eval_labelled_csv_with_only_a_header_exits_5(
    sequence_model: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No sessions to evaluate is an input error, not a report of metrics over nothing."""
    empty = tmp_path / "empty.csv"
    empty.write_text("Sequence,label\n", encoding="utf-8")
    assert main(["eval", "--model", str(sequence_model.directory), "--labelled", str(empty)]) == 5
    assert "holds no sessions" in capsys.readouterr().err


def test_cli_eval_bad_ratio_exits_5(sequence_model: TrainedModel, cli_data: CliData) -> None:
    """A malformed --ratio is reported, not a traceback."""
    args = [
        "eval",
        "--model",
        str(sequence_model.directory),
        "--labelled",
        str(cli_data.labelled),
        "--ratio",
        "9-1",
    ]
    assert main(args) == EXIT_INPUT


@pytest.mark.parametrize(
    "args",
    [
        ["score", "--sequences", "x.txt"],
        ["frobnicate"],
        ["score", "--model", "m", "--sequences", "a", "--logs", "b"],
    ],
)
def test_cli_usage_error_exits_2(args: list[str]) -> None:
    """A missing required option, an unknown command or exclusive options exit 2 with usage on stderr."""
    result = run_cli(*args)
    assert result.returncode == EXIT_USAGE == 2
    assert "usage: logwarden" in result.stderr


def test_cli_help_lists_every_exit_code_the_command_can_return(capsys: pytest.CaptureFixture[str]) -> None:
    """Operators script against exit codes: ``--help`` lists each one the CLI defines, no other."""
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    help_text = capsys.readouterr().out
    listed = {int(code) for code in re.findall(r"(?:^|\s{2})(\d)  \S", help_text.split("exit codes:")[1])}
    defined = {
        value for name, value in vars(cli).items() if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert listed == defined


def test_cli_run_unexpected_error_is_one_json_fatal_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An error nobody anticipated (a broker refusing a topic at runtime, a bug) ends the daemon with
    a JSON log line carrying the traceback, so journald/jq see it, and exit 1 so systemd restarts it."""
    import logwarden.daemon.app
    from logwarden.logs import configure_logging

    def failing_daemon(config: Path, *, check_only: bool) -> int:
        configure_logging("info")
        raise RuntimeError("topic authorization failed for logwarden.alerts")

    monkeypatch.setattr(logwarden.daemon.app, "run_daemon", failing_daemon)
    try:
        assert main(["run", "--config", str(tmp_path / "config.yaml")]) == 1
    finally:
        structlog.reset_defaults()  # the JSON logger above writes to this test's captured stdout
    lines = capsys.readouterr().out.splitlines()
    fatal = json.loads(lines[-1])
    assert fatal["event"] == "fatal" and fatal["level"] == "error"
    assert "RuntimeError: topic authorization failed for logwarden.alerts" in fatal["exception"]
    assert "checkpoint" in fatal["resumes_from"]


def test_cli_offline_command_unexpected_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the daemon turns an unexpected error into a log line; train/score/eval raise it as is."""
    import logwarden.cli

    def broken(args: object) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr(logwarden.cli, "_handle_score", broken)
    with pytest.raises(RuntimeError, match="bug"):
        main(["score", "--model", "m", "--sequences", "s"])


def test_cli_score_into_a_closed_pipe_exits_0_without_a_traceback(
    sequence_model: TrainedModel, cli_data: CliData, tmp_path: Path
) -> None:
    """``logwarden score … | head -1``: the reader leaving early is a normal end, not an error."""
    lines = cli_data.test_sequences.read_text(encoding="utf-8").splitlines()
    many = tmp_path / "many.txt"
    many.write_text("\n".join(lines * 400) + "\n", encoding="utf-8")  # far more than a pipe buffers
    with subprocess.Popen(
        [sys.executable, "-m", "logwarden.cli", "score", "--model", str(sequence_model.directory)]
        + ["--sequences", str(many)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=300) == 0, stderr
    assert json.loads(first)["line"] == 0
    assert "Traceback" not in stderr


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``logwarden train`` fail the test if it gets as far as training."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started; the check should have failed before it")

    monkeypatch.setattr("logwarden.train.cli_support.train_on_sequences", refuse)
    monkeypatch.setattr("logwarden.train.cli_support.train_on_logs", refuse)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["train", "--sequences", "{train}", "--out", "{tmp}/m", "--seed", "-1"], "--seed"),
        (["train", "--sequences", "{train}", "--out", "{tmp}/m", "--seed", "4294967296"], "--seed"),
        (
            ["train", "--logs", "{train}", "--entity-regex", "x", "--out", "{tmp}/m", "--similarity", "0"],
            "--similarity",
        ),
        (
            ["train", "--logs", "{train}", "--entity-regex", "x", "--out", "{tmp}/m", "--similarity", "1.5"],
            "--similarity",
        ),
        (["score", "--model", "{model}", "--sequences", "{test}", "--threshold", "nan"], "--threshold"),
        (["score", "--model", "{model}", "--sequences", "{test}", "--threshold", "inf"], "--threshold"),
        (["eval", "--model", "{model}", "--labelled", "{labelled}", "--threshold=-inf"], "--threshold"),
        (["eval", "--model", "{model}", "--labelled", "{labelled}", "--threshold", "x"], "--threshold"),
    ],
)
def test_cli_out_of_range_option_value_is_a_usage_error_naming_it(
    command: list[str],
    option: str,
    tmp_path: Path,
    cli_data: CliData,
    sequence_model: TrainedModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A seed numpy cannot take, a threshold that is not a finite number or a similarity outside (0, 1]
    exits 2 naming the option."""
    names = {
        "train": cli_data.train_sequences,
        "test": cli_data.test_sequences,
        "labelled": cli_data.labelled,
        "model": sequence_model.directory,
        "tmp": tmp_path,
    }
    with pytest.raises(SystemExit) as stopped:
        main([argument.format(**names) for argument in command])
    assert stopped.value.code == EXIT_USAGE
    assert f"argument {option}:" in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("out", ["afile", "afile/model"])
def test_cli_train_out_not_a_directory_exits_3_before_training(
    out: str, tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming a file, or a path below one, is refused before any training, naming --out."""
    (tmp_path / "afile").write_text("", encoding="utf-8")
    code = main(["train", "--sequences", str(cli_data.train_sequences), "--out", str(tmp_path / out)])
    assert code == EXIT_CONFIG
    assert f"--out {tmp_path / out}:" in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
def test_cli_train_labelled_with_logs_exits_3(tmp_path: Path, cli_data: CliData) -> None:
    """--labelled cannot match a raw-log model's mined keys, so the combination is refused."""
    args = ["train", "--logs", str(cli_data.train_logs), "--entity-regex", ENTITY_REGEX]
    code = main([*args, "--labelled", str(cli_data.labelled), "--out", str(tmp_path / "m")])
    assert code == EXIT_CONFIG


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("rows", "message"),
    [([], "holds no sessions"), (["1 2,1", "2 1,1"], "only anomalous"), (["1 2,0"], "only normal")],
)
def test_cli_train_labelled_without_both_labels_exits_7_before_training(
    rows: list[str], message: str, tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty or one-class labelled CSV cannot choose a threshold by F1; it fails naming the file."""
    labelled = tmp_path / "one-class.csv"
    write_lines(labelled, ["Sequence,label", *rows])
    args = ["train", "--sequences", str(cli_data.train_sequences), "--labelled", str(labelled)]
    assert main([*args, "--out", str(tmp_path / "m")]) == EXIT_TRAINING
    err = capsys.readouterr().err
    assert "one-class.csv" in err and message in err


@pytest.mark.parametrize(
    "command",
    [["score", "--sequences", "{dir}"], ["score", "--logs", "{dir}"], ["eval", "--labelled", "{dir}"]],
)
def test_cli_directory_as_input_file_exits_5(
    command: list[str], tmp_path: Path, sequence_model: TrainedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as an input file is an input error naming it, not a traceback."""
    args = [command[0], "--model", str(sequence_model.directory), command[1], str(tmp_path)]
    assert main(args) == EXIT_INPUT
    assert str(tmp_path) in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
def test_cli_train_templates_directory_exits_5(tmp_path: Path, cli_data: CliData) -> None:
    """A directory given as --templates is an input error before training."""
    args = ["train", "--sequences", str(cli_data.train_sequences), "--templates", str(tmp_path)]
    assert main([*args, "--out", str(tmp_path / "m")]) == EXIT_INPUT


def test_cli_score_sequences_with_entity_regex_exits_3(
    sequence_model: TrainedModel, cli_data: CliData, capsys: pytest.CaptureFixture[str]
) -> None:
    """--entity-regex applies to --logs and --json; with --sequences it is refused, not ignored."""
    args = ["score", "--model", str(sequence_model.directory), "--sequences", str(cli_data.test_sequences)]
    assert main([*args, "--entity-regex", r"job_\d+"]) == EXIT_CONFIG
    assert "--entity-regex applies to --logs and --json only" in capsys.readouterr().err


def test_cli_train_logs_summary_counts_mined_lines(log_model: TrainedModel, cli_data: CliData) -> None:
    """The printed summary of a raw-log model says how many lines were read and how many were dropped."""
    mining = log_model.summary["mining"]
    assert mining["lines"] == len(cli_data.train_logs.read_text(encoding="utf-8").splitlines())
    assert (mining["lines_without_entity"], mining["unmatched_lines"]) == (0, 0)


def host_list_log(path: Path) -> None:
    """Jobs whose middle line names a list of hosts of varying length, as Thunderbird's ganglia does."""
    lines = []
    for block in range(40):
        hosts = " ".join(f"an{block + n}" for n in range(1 + block % 6))
        lines += [
            f"Receiving blk_{block}",
            f"cannot resolve data source {hosts} for blk_{block}",
            f"Deleting blk_{block}",
        ]
    write_lines(path, lines)


def test_cli_train_mask_rule_makes_a_list_of_any_length_one_template(tmp_path: Path) -> None:
    """Host names are words with digits, which no default rule masks: each list length was a template."""
    log = tmp_path / "hosts.log"
    host_list_log(log)
    common = ("--logs", log, "--entity-regex", r"blk_\d+")
    plain = _train(tmp_path / "plain", *common)
    masked = _train(tmp_path / "masked", *common, "--mask", r"HOST=\b[a-z]+\d+\b")
    assert plain.summary["vocabulary_size"] == 2 + 6
    assert masked.summary["vocabulary_size"] == 3
    metadata = load_bundle(masked.directory).metadata
    assert metadata.parser is not None and metadata.parser.masking[0] == ("HOST", r"\b[a-z]+\d+\b")
    assert "cannot resolve data source <HOST> for <BLK>" in metadata.templates
    # Scoring matches with the model's own rules: a list longer than any seen is no new event.
    longer = tmp_path / "longer.log"
    hosts = " ".join(f"bn{n}" for n in range(9))
    write_lines(
        longer, ["Receiving blk_7", f"cannot resolve data source {hosts} for blk_7", "Deleting blk_7"]
    )
    scored = run_cli("score", "--model", masked.directory, "--logs", longer)
    assert scored.returncode == 0, scored.stderr
    assert json_lines(scored.stdout)[0]["unknown_events"] == 0


@pytest.mark.parametrize(
    ("mask", "code", "message"),
    [
        ("NUM=\\d+", EXIT_CONFIG, "NUM is a default rule's name"),
        ("HOST=[a-z", EXIT_CONFIG, "masking rule 'HOST': regex '[a-z' is invalid"),
        ("HOST", EXIT_USAGE, "expected NAME=REGEX"),
    ],
)
def test_cli_train_bad_mask_rule_is_refused_naming_it(
    tmp_path: Path, cli_data: CliData, capsys: pytest.CaptureFixture[str], mask: str, code: int, message: str
) -> None:
    """--mask reusing a default name or with a bad regex exits 3, without ``=`` exits 2; no model written."""
    args = ["train", "--logs", str(cli_data.train_logs), "--entity-regex", ENTITY_REGEX, "--mask", mask]
    try:
        exit_code = main([*args, "--out", str(tmp_path / "m")])
    except SystemExit as stopped:  # argparse refuses a malformed option itself
        exit_code = stopped.code  # type: ignore[assignment]
    assert exit_code == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_version_prints_the_version_the_installed_distribution_carries() -> None:
    """``logwarden --version`` for bug reports; pyproject.toml takes it from ``logwarden.__version__``."""
    result = run_cli("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"logwarden {__version__}"
    assert importlib.metadata.version("logwarden") == __version__


@pytest.fixture
def gated_sequence_model(sequence_model: TrainedModel, tmp_path: Path) -> Path:
    """The sequence model with a count gate added by hand: no combination of counts known and a
    threshold of 0 nats, so every session alerts by the gate (training declines one on this data)."""
    model_dir = tmp_path / "gated"
    shutil.copytree(sequence_model.directory, model_dir)
    raw = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    raw["count_gate"] = {"threshold": 0.0, "profiles": []}
    raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    (model_dir / METADATA_FILE).write_text(json.dumps(raw), encoding="utf-8")
    return model_dir


def test_cli_score_applies_the_count_gate_unless_told_not_to(
    gated_sequence_model: Path, cli_data: CliData
) -> None:
    """With the gate every session has unseen counts and alerts; ``--no-count-gate`` gives the
    verdicts of the threshold alone and no ``unseen_counts`` key, as a model without a gate."""
    gated = run_cli("score", "--model", gated_sequence_model, "--sequences", cli_data.test_sequences)
    plain = run_cli(
        "score", "--model", gated_sequence_model, "--sequences", cli_data.test_sequences, "--no-count-gate"
    )
    assert gated.returncode == plain.returncode == 0, gated.stderr + plain.stderr
    with_gate, without = json_lines(gated.stdout), json_lines(plain.stdout)
    assert all(r["unseen_counts"] and r["anomalous"] for r in with_gate)
    assert all("unseen_counts" not in r for r in without)
    assert not all(r["anomalous"] for r in without)


def test_cli_eval_reports_the_count_gate_threshold_in_force(
    gated_sequence_model: Path, cli_data: CliData
) -> None:
    """eval names the gate's threshold it applied, and null with ``--no-count-gate``; the gate that
    flags every session gives TPR = FPR = 1."""
    args = ("eval", "--model", gated_sequence_model, "--labelled", cli_data.labelled)
    gated, plain = run_cli(*args), run_cli(*args, "--no-count-gate")
    assert gated.returncode == plain.returncode == 0, gated.stderr + plain.stderr
    with_gate, without = json.loads(gated.stdout), json.loads(plain.stdout)
    assert with_gate["count_gate_threshold"] == 0.0 and with_gate["tpr"] == with_gate["fpr"] == 1.0
    assert without["count_gate_threshold"] is None and without["fpr"] < 1.0


def test_train_without_the_train_extra_says_what_to_install(tmp_path: Path) -> None:
    """The daemon's virtualenv has no PyTorch: ``train`` there says so, not a ModuleNotFoundError."""
    sequences = tmp_path / "s.txt"
    sequences.write_text("1 2 3\n", encoding="utf-8")
    # A process of its own, where import torch fails as when it is absent.
    script = (
        "import sys; sys.modules['torch'] = None; from logwarden.cli import main; "
        f"sys.exit(main(['train', '--sequences', {str(sequences)!r}, '--out', {str(tmp_path / 'm')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_TRAINING, result.stderr
    assert "no module 'torch'" in result.stderr and "pip install 'logwarden[train]'" in result.stderr
    assert "Traceback" not in result.stderr
