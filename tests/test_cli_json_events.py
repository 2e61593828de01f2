"""``logwarden train --json`` and ``score --json``: JSON events grouped by a field, end to end.

The synthetic scheduler logs are written twice, as raw lines and as JSON events whose message no
longer names the job (the job id is only in the nested field ``job.id``), so the JSON model can
only find its sessions through the field, as the daemon does with ``input.entity.field``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import json_lines, run_cli, stderr_summary

from logwarden.cli import EXIT_CONFIG, EXIT_TRAINING, main
from logwarden.model.bundle import load_bundle
from logwarden.synthetic import ENTITY_REGEX, SyntheticLog, generate_logs, write_lines
from logwarden.synthetic.json_events import ENTITY_FIELD, as_json_events

# The trainer's default network and epochs: enough to learn the synthetic lifecycle, in seconds.
TRAINING = ("--seed", "5")


@dataclass(frozen=True)
class JsonData:
    """The same synthetic logs as raw lines and as JSON events, for training and for testing."""

    train_logs: Path
    train_json: Path
    test_json: Path
    test: SyntheticLog


@pytest.fixture(scope="module")
def json_data(tmp_path_factory: pytest.TempPathFactory) -> JsonData:
    root = tmp_path_factory.mktemp("json-data")
    training = generate_logs(seed=1, entities=400, anomaly_fraction=0.0)
    test = generate_logs(seed=2, entities=40, anomaly_fraction=0.25, first_job_id=90_000)
    data = JsonData(root / "train.log", root / "train.jsonl", root / "test.jsonl", test)
    write_lines(data.train_logs, training.lines)
    write_lines(data.train_json, as_json_events(training))
    write_lines(data.test_json, as_json_events(test))
    return data


@pytest.fixture(scope="module")
def json_model(tmp_path_factory: pytest.TempPathFactory, json_data: JsonData) -> Path:
    out = tmp_path_factory.mktemp("json-model") / "model"
    result = run_cli(
        "train", "--json", json_data.train_json, "--entity-field", ENTITY_FIELD, "--out", out, *TRAINING
    )
    assert result.returncode == 0, result.stderr
    return out


def test_train_json_groups_events_by_the_entity_field_as_raw_lines_by_the_regex(
    tmp_path: Path, json_data: JsonData, json_model: Path
) -> None:
    """Trained on the same events, a JSON model grouped by ``job.id`` and a raw-line model grouped by
    the entity regex see the same sessions: same template count, sessions, events and losses."""
    raw_out = tmp_path / "raw"
    raw = run_cli(
        "train", "--logs", json_data.train_logs, "--entity-regex", ENTITY_REGEX, "--out", raw_out, *TRAINING
    )
    assert raw.returncode == 0, raw.stderr
    raw_training = load_bundle(raw_out).metadata.training
    json_metadata = load_bundle(json_model).metadata
    json_training = json_metadata.training
    assert json_training["input"] == {"format": "json", "message_field": "message", "entity_field": "job.id"}
    assert json_metadata.parser is not None and json_metadata.parser.entity_regex is None
    assert json_training["mining"]["invalid_lines"] == 0
    assert json_training["mining"]["templates_mined"] == raw_training["mining"]["templates_mined"]
    for key in ("sessions", "events"):
        assert json_training[key] == raw_training[key]
    assert json_training["epoch_losses"] == pytest.approx(raw_training["epoch_losses"], rel=1e-6)


def test_score_json_flags_the_injected_anomalies_per_entity_of_the_field(
    json_data: JsonData, json_model: Path
) -> None:
    """score --json with no field options reads the fields the model was trained on: one record per
    job, in first-seen order, and the anomalous ones are the injected anomalies."""
    result = run_cli("score", "--model", json_model, "--json", json_data.test_json)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [r["entity"] for r in records] == list(dict.fromkeys(json_data.test.entity_of_line))
    flagged = {r["entity"] for r in records if r["anomalous"]}
    anomalies = set(json_data.test.anomalies)
    assert len(flagged & anomalies) >= 0.8 * len(anomalies)
    assert len(flagged - anomalies) <= 1
    summary = stderr_summary(result)
    assert summary["lines"] == len(json_data.test.lines)
    assert (summary["lines_without_entity"], summary["invalid_lines"]) == (0, 0)


def test_score_json_counts_bad_lines_by_reason_and_names_the_first(
    tmp_path: Path, json_data: JsonData, json_model: Path
) -> None:
    """A line that is not JSON, an array, a missing message and a missing entity are each counted,
    never scored or dropped silently; the first bad line is quoted with its number (from 1)."""
    good = json_data.test_json.read_text(encoding="utf-8").splitlines()[:10]
    bad = [
        "Dec 10 06:55:46 LabSZ sshd[24200]: not json",
        "[1, 2]",
        '{"job": {"id": "job_1"}, "msg": "wrong field"}',
        '{"job": {}, "message": "job started"}',
        "",
    ]
    path = tmp_path / "mixed.jsonl"
    write_lines(path, [*good[:3], *bad, *good[3:]])
    result = run_cli("score", "--model", json_model, "--json", path)
    assert result.returncode == 0, result.stderr
    summary = stderr_summary(result)
    assert summary["lines"] == 14 and summary["blank_lines"] == 1
    assert summary["invalid_lines"] == 3
    assert summary["invalid_reasons"] == {"invalid_json": 1, "not_an_object": 1, "missing_message": 1}
    assert summary["first_invalid"].startswith("line 4: invalid_json: line 1 column 1")
    assert summary["lines_without_entity"] == 1
    scored_events = sum(r["length"] for r in json_lines(result.stdout))
    assert scored_events == 10


def test_score_json_model_on_raw_lines_without_a_regex_exits_3_saying_what_to_give(
    json_data: JsonData, json_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model grouped by a field has no entity regex: raw lines need one, and the error says so."""
    path = tmp_path / "raw.log"
    write_lines(path, json_data.test.lines[:20])
    assert main(["score", "--model", str(json_model), "--logs", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "grouped by the field 'job.id'" in err and "--entity-regex" in err
    assert (
        main(["score", "--model", str(json_model), "--logs", str(path), "--entity-regex", ENTITY_REGEX]) == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "X"], "--json needs exactly one of --entity-field"),
        (["--json", "X", "--entity-field", "a", "--entity-regex", "b"], "--json needs exactly one of"),
        (
            ["--logs", "X", "--entity-regex", "b", "--entity-field", "a"],
            "--entity-field applies to --json only",
        ),
        (
            ["--logs", "X", "--entity-regex", "b", "--message-field", "m"],
            "--message-field applies to --json only",
        ),
        (
            ["--json", "X", "--entity-field", "a", "--templates", "T"],
            "--templates applies to --sequences only",
        ),
        (["--json", "X", "--entity-field", " "], "--entity-field must name a field, got ' '"),
    ],
)
def test_train_json_option_mistakes_exit_3_naming_the_option(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *args, "--out", str(tmp_path / "m")]) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_train_json_on_a_raw_log_exits_7_quoting_the_first_line(
    json_data: JsonData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A raw log given as --json is named for what it is, not trained on as nothing."""
    code = main(
        [
            "train",
            "--json",
            str(json_data.train_logs),
            "--entity-field",
            "job.id",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == EXIT_TRAINING
    err = capsys.readouterr().err
    assert "none of the" in err and "is a JSON object with a message in field 'message'" in err
    assert "line 1: invalid_json" in err


def test_train_json_with_a_wrong_entity_field_exits_7_naming_it(
    json_data: JsonData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--json",
            str(json_data.train_json),
            "--entity-field",
            "job.name",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == EXIT_TRAINING
    assert "the entity field 'job.name' is missing or empty in all" in capsys.readouterr().err
