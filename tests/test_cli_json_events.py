"""``logwarden train --json`` and ``score --json``: JSON events grouped by a field, end to end.

Both kinds of JSON model are covered: one mined from the messages, and one of event keys parsed
upstream (``--event-field``), trained and scored like the same sessions in a sequences file.

The synthetic scheduler logs are written twice, as raw lines and as JSON events whose message no
longer names the job (the job id is only in the nested field ``job.id``), so the JSON model can
only find its sessions through the field, as the daemon does with ``input.entity.field``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import json_lines, run_cli, stderr_summary

from logwarden.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_TRAINING, main
from logwarden.model.bundle import load_bundle
from logwarden.synthetic import (
    ENTITY_REGEX,
    SyntheticLog,
    generate_logs,
    generate_sequences,
    write_lines,
    write_sequences,
)
from logwarden.synthetic.json_events import (
    ENTITY_FIELD,
    EVENT_FIELD,
    USER_FIELD,
    as_json_events,
    sessions_as_keyed_events,
)

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
    """Training logs of 400 normal jobs, raw and as JSON, and 40 test jobs (a quarter anomalous) as JSON."""
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
    """A model trained once per module by ``train --json`` grouping by ``job.id``, for the scoring tests."""
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
    assert json_training["input"] == {
        "format": "json",
        "message_field": "message",
        "entity_field": "job.id",
        "entity_regex": None,
        "event_field": None,
    }
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


def test_score_json_with_a_mistyped_message_field_warns_that_no_line_was_an_event(
    json_data: JsonData, json_model: Path
) -> None:
    """Every line invalid (a wrong --message-field) scores nothing: exit 0, as the input says, and a
    warning line quoting the first, since an empty output is most often a mistyped option."""
    result = run_cli("score", "--model", json_model, "--json", json_data.test_json, "--message-field", "msg")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = stderr_summary(result)["lines"]
    warning = result.stderr.splitlines()[0]
    assert warning.startswith(
        f"logwarden score: warning: {json_data.test_json}: none of its {lines} lines is a usable event, "
        "so nothing was scored; the first: line 1: missing_message: field 'msg'"
    )


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
            "--templates applies to --sequences and --event-field only",
        ),
        (["--json", "X", "--entity-field", " "], "--entity-field must name a field, got ' '"),
    ],
)
def test_train_json_option_mistakes_exit_3_naming_the_option(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No or both entity rules, --templates with --json, JSON-only flags on --logs, a blank field: exit 3."""
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
    """An entity field no event has (``job.name``) is a training error naming it, not a model of nothing."""
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
    assert "the entity field 'job.name' names no entity in any of the" in capsys.readouterr().err


def test_train_json_with_an_entity_field_of_fractional_numbers_says_what_an_entity_may_be(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipeline that turned integer ids into floats (24200.0): the field is in every event, so the
    error must say which values name an entity, not that the field is missing."""
    lines = [json.dumps({"pid": 24200.0 + i % 3, "message": f"step {i % 4} done"}) for i in range(60)]
    data = tmp_path / "events.jsonl"
    data.write_text("\n".join(lines) + "\n")
    code = main(["train", "--json", str(data), "--entity-field", "pid", "--out", str(tmp_path / "m")])
    assert code == EXIT_TRAINING
    err = capsys.readouterr().err
    assert "names no entity in any of the 60 events" in err and "24200.0" in err


@dataclass(frozen=True)
class KeyedData:
    """The same sessions of event keys as a sequences file and as JSON events of users."""

    train_sequences: Path
    train_json: Path
    test_sequences: Path
    test_json: Path
    test_users: list[str]


@pytest.fixture(scope="module")
def keyed_data(tmp_path_factory: pytest.TempPathFactory) -> KeyedData:
    """300 normal and 60 test sessions (a fifth anomalous) as sequences files and as JSON events of users."""
    root = tmp_path_factory.mktemp("keyed-data")
    training = generate_sequences(seed=1, sessions=300, anomaly_fraction=0.0).sessions
    test = generate_sequences(seed=2, sessions=60, anomaly_fraction=0.2).sessions
    data = KeyedData(root / "train.txt", root / "train.jsonl", root / "test.txt", root / "test.jsonl", [])
    write_sequences(data.train_sequences, training)
    write_sequences(data.test_sequences, test)
    write_lines(data.train_json, sessions_as_keyed_events(training).lines)
    keyed_test = sessions_as_keyed_events(test)
    write_lines(data.test_json, keyed_test.lines)
    data.test_users.extend(dict.fromkeys(keyed_test.entity_of_line))
    return data


KEYED_FIELDS = ("--entity-field", USER_FIELD, "--event-field", EVENT_FIELD)


def test_train_json_event_keys_equals_training_on_the_same_sessions_as_sequences(
    tmp_path: Path, keyed_data: KeyedData
) -> None:
    """Events of users classified upstream (``event.code``), interleaved as concurrent users act,
    train the model the sequences file of the same sessions trains: same vocabulary and losses."""
    from_json = run_cli(
        "train", "--json", keyed_data.train_json, *KEYED_FIELDS, "--out", tmp_path / "j", *TRAINING
    )
    assert from_json.returncode == 0, from_json.stderr
    from_sequences = run_cli(
        "train", "--sequences", keyed_data.train_sequences, "--out", tmp_path / "s", *TRAINING
    )
    assert from_sequences.returncode == 0, from_sequences.stderr
    json_metadata = load_bundle(tmp_path / "j").metadata
    sequences_metadata = load_bundle(tmp_path / "s").metadata
    assert json_metadata.input_kind == "sequences" and json_metadata.parser is None
    assert json_metadata.vocabulary == sequences_metadata.vocabulary
    assert json_metadata.training["epoch_losses"] == pytest.approx(
        sequences_metadata.training["epoch_losses"], rel=1e-6
    )
    assert json_metadata.training["input"]["event_field"] == EVENT_FIELD
    assert json.loads(from_json.stdout)["reading"]["lines"] == sum(
        len(line.split()) for line in keyed_data.train_sequences.read_text(encoding="utf-8").splitlines()
    )

    # score --json reads the model's own fields and gives each user the verdict of its session.
    scored_json = run_cli("score", "--model", tmp_path / "j", "--json", keyed_data.test_json)
    assert scored_json.returncode == 0, scored_json.stderr
    scored_sequences = run_cli("score", "--model", tmp_path / "j", "--sequences", keyed_data.test_sequences)
    assert scored_sequences.returncode == 0, scored_sequences.stderr
    by_user = json_lines(scored_json.stdout)
    by_line = json_lines(scored_sequences.stdout)
    assert [r["entity"] for r in by_user] == keyed_data.test_users
    assert [r["anomalous"] for r in by_user] == [r["anomalous"] for r in by_line]
    assert [r["score"] for r in by_user] == pytest.approx([r["score"] for r in by_line], abs=1e-4)


def test_event_keys_holding_spaces_are_refused_where_sessions_are_read_as_text(
    tmp_path: Path, keyed_data: KeyedData
) -> None:
    """Actions like ``user login`` train a model that ``score --json`` serves; ``score --sequences``
    and ``eval``, whose keys are split on whitespace, refuse it instead of scoring every event
    UNKNOWN, and training with a labelled CSV is refused before it starts."""
    spaced = tmp_path / "spaced.jsonl"
    events = [json.loads(line) for line in keyed_data.train_json.read_text(encoding="utf-8").splitlines()]
    for event in events:
        event["event"]["code"] = f"action {event['event']['code']}"
    write_lines(spaced, [json.dumps(event) for event in events])
    assert EVENT_FIELD == "event.code"
    trained = run_cli("train", "--json", spaced, *KEYED_FIELDS, "--out", tmp_path / "m", *TRAINING)
    assert trained.returncode == 0, trained.stderr
    assert load_bundle(tmp_path / "m").metadata.vocabulary[0].startswith("action ")
    assert run_cli("score", "--model", tmp_path / "m", "--json", spaced).returncode == 0
    sequences = tmp_path / "s.txt"
    write_lines(sequences, ["action 1 action 2"])
    labelled = tmp_path / "l.csv"
    write_lines(labelled, ["Sequence,label", "action 1,0", "action 2,1"])
    for command in (
        ("score", "--model", tmp_path / "m", "--sequences", sequences),
        ("eval", "--model", tmp_path / "m", "--labelled", labelled),
    ):
        refused = run_cli(*command)
        assert refused.returncode == EXIT_INPUT, refused.stderr
        assert "'action 1', which holds whitespace" in refused.stderr
        assert "logwarden score --json" in refused.stderr
    as_logs = run_cli("score", "--model", tmp_path / "m", "--logs", sequences)
    assert as_logs.returncode == EXIT_INPUT
    assert "trained on event keys of JSON events (field 'event.code'): score it with --json" in as_logs.stderr
    with_labels = run_cli(
        "train", "--json", spaced, *KEYED_FIELDS, "--labelled", labelled, "--out", tmp_path / "m2", *TRAINING
    )
    assert with_labels.returncode == EXIT_TRAINING
    assert "event key 'action 1' holds whitespace" in with_labels.stderr


def test_score_json_of_an_event_key_model_finds_entities_by_the_regex_it_was_trained_with(
    tmp_path: Path, keyed_data: KeyedData
) -> None:
    """Trained on event keys with the user named in the message: ``score --json`` with no entity
    option uses the model's recorded regex, as it uses a recorded entity field."""

    def user_in_message(source: Path, target: Path) -> None:
        events = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
        write_lines(
            target,
            [
                json.dumps({"event": e["event"], "message": f"audit event by {e['user']['name']}"})
                for e in events
            ],
        )

    user_in_message(keyed_data.train_json, tmp_path / "train.jsonl")
    user_in_message(keyed_data.test_json, tmp_path / "test.jsonl")
    regex = r"user-\d+"
    trained = run_cli(
        "train",
        "--json",
        tmp_path / "train.jsonl",
        "--event-field",
        EVENT_FIELD,
        "--entity-regex",
        regex,
        "--out",
        tmp_path / "m",
        *TRAINING,
    )
    assert trained.returncode == 0, trained.stderr
    assert load_bundle(tmp_path / "m").metadata.training["input"]["entity_regex"] == regex
    by_default = run_cli("score", "--model", tmp_path / "m", "--json", tmp_path / "test.jsonl")
    assert by_default.returncode == 0, by_default.stderr
    given = run_cli(
        "score", "--model", tmp_path / "m", "--json", tmp_path / "test.jsonl", "--entity-regex", regex
    )
    assert json_lines(by_default.stdout) == json_lines(given.stdout)
    assert [r["entity"] for r in json_lines(by_default.stdout)] == keyed_data.test_users


def test_event_field_on_a_model_of_mined_templates_exits_3(
    json_data: JsonData, json_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """score --event-field with a model of mined templates exits 3: only event-key models read that field."""
    code = main(
        ["score", "--model", str(json_model), "--json", str(json_data.test_json), "--event-field", "e"]
    )
    assert code == EXIT_CONFIG
    assert "an event field applies to models trained on event keys" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sequences", "S", "--header-regex", "(?P<content>.*)"], "--header-regex applies to messages"),
        (["--json", "X", *KEYED_FIELDS, "--mask", "A=a"], "--mask applies to messages"),
        (["--sequences", "S", "--similarity", "0.3"], "--similarity applies to messages"),
        (
            ["--logs", "X", "--entity-regex", "b", "--event-field", "e"],
            "--event-field applies to --json only",
        ),
    ],
)
def test_train_event_key_option_mistakes_exit_3_naming_the_option(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--header-regex, --mask or --similarity with no messages to parse, or --event-field on --logs, exit 3
    naming it."""
    assert main(["train", *args, "--out", str(tmp_path / "m")]) == EXIT_CONFIG
    assert message in capsys.readouterr().err
