"""End-to-end training: a loadable, checksummed, reproducible model directory."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import structlog

from logwarden.errors import ModelLoadError, TrainingError
from logwarden.events.raw import parser_settings
from logwarden.events.sequences import LabelledSession, read_sequences
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.bundle import load_bundle, sha256_hex
from logwarden.model.contract import ModelMetadata
from logwarden.model.cooccurrence_rule import session_pairs
from logwarden.model.count_gate import GATE_MARGIN, count_profile, event_weights
from logwarden.model.length_rule import LengthRule
from logwarden.model.runtime import OnnxStepModel
from logwarden.model.transition_rule import session_transitions
from logwarden.scoring.session import score_sessions
from logwarden.train.fit import DEFAULT_THRESHOLD_MARGIN, TrainingOptions
from logwarden.train.mining import DEFAULT_SIMILARITY
from logwarden.train.pipeline import HASH_CHUNK_BYTES, _describe_file, train_on_logs, train_on_sequences


def test_pipeline_small_run_model_loads_with_matching_sha(trained_model: tuple[Path, ModelMetadata]) -> None:
    """The written directory loads through the daemon's loader and its sha256 is the graph's."""
    out_dir, metadata = trained_model
    bundle = load_bundle(out_dir)
    assert bundle.metadata == metadata
    assert metadata.onnx_sha256 == sha256_hex((out_dir / "model.onnx").read_bytes())
    assert OnnxStepModel.load(bundle).metadata.vocab_size == metadata.vocab_size


def test_pipeline_small_run_records_training_facts(
    trained_model: tuple[Path, ModelMetadata],
    hdfs_keys: list[list[str]],
    small_options: TrainingOptions,
    hdfs_train_file: Path,
) -> None:
    """model.json records the data file, session and event counts, seed, epochs, loss and holdout size."""
    _, metadata = trained_model
    training = metadata.training
    assert training["sessions"] == len(hdfs_keys)
    assert training["events"] == sum(len(s) for s in hdfs_keys)
    assert training["holdout_sessions"] == round(len(hdfs_keys) * small_options.holdout_fraction)
    assert training["holdout_moved_to_fit"] == 0, "every HDFS event is in many sessions"
    assert (training["epochs"], training["seed"]) == (small_options.epochs, small_options.seed)
    assert training["data_file"] == "hdfs_train"
    assert training["data_sha256"] == sha256_hex(hdfs_train_file.read_bytes())
    assert np.isfinite(training["final_loss"]) and training["final_loss"] < training["epoch_losses"][0]
    assert metadata.input_kind == "sequences" and metadata.templates == metadata.vocabulary


def test_pipeline_default_threshold_flags_few_training_sessions(
    trained_model: tuple[Path, ModelMetadata], hdfs_keys: list[list[str]]
) -> None:
    """The default threshold is the held-out maximum plus the margin; it flags at most 1% of normal ones."""
    out_dir, metadata = trained_model
    model = OnnxStepModel.load(load_bundle(out_dir))
    holdout_max = metadata.training["calibration"]["holdout_max_score"]
    assert metadata.threshold == pytest.approx(holdout_max + DEFAULT_THRESHOLD_MARGIN)
    vocabulary = Vocabulary(metadata.vocabulary)
    results = score_sessions(model, [vocabulary.encode(s) for s in hdfs_keys], metadata.threshold)
    assert sum(r.anomalous for r in results) <= len(results) * 0.01


def test_pipeline_same_seed_identical_model(
    trained_model: tuple[Path, ModelMetadata],
    hdfs_keys: list[list[str]],
    small_options: TrainingOptions,
    hdfs_train_file: Path,
    tmp_path: Path,
) -> None:
    """Retraining with the same seed and data reproduces both files byte for byte, so the model's
    identity in alerts (ONNX and metadata sha256) is the same too."""
    first_dir, first = trained_model
    second = train_on_sequences(hdfs_keys, small_options, tmp_path, data_file=hdfs_train_file)
    assert second.onnx_sha256 == first.onnx_sha256
    assert second.threshold == first.threshold
    assert second.metadata_sha256 == first.metadata_sha256
    for name in ("model.onnx", "model.json"):
        assert (tmp_path / name).read_bytes() == (first_dir / name).read_bytes(), name


def test_pipeline_tampered_onnx_load_fails(trained_model: tuple[Path, ModelMetadata], tmp_path: Path) -> None:
    """Changing one byte of model.onnx makes loading fail with ModelLoadError."""
    out_dir, _ = trained_model
    for name in ("model.onnx", "model.json"):
        (tmp_path / name).write_bytes((out_dir / name).read_bytes())
    graph = bytearray((tmp_path / "model.onnx").read_bytes())
    graph[len(graph) // 2] ^= 0xFF
    (tmp_path / "model.onnx").write_bytes(bytes(graph))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_bundle(tmp_path)


def test_pipeline_single_event_vocabulary_raises_training_error(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """Training data with one distinct event cannot make a next-event model."""
    with pytest.raises(TrainingError, match="distinct event"):
        train_on_sequences([["a", "a"], ["a"]], small_options, tmp_path)


def test_pipeline_raw_logs_model_records_parser_and_templates(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """Training on raw lines stores the parser settings, T<i> keys and mined template texts."""
    lines = []
    for block in range(60):
        lines += [
            f"081109 2035{block:02d} 143 INFO dfs.DataNode: Receiving block blk_{block} src: /10.0.0.{block}",
            f"081109 2035{block:02d} 145 INFO dfs.DataNode: Received block blk_{block} of size {block * 7}",
            f"081109 2035{block:02d} 147 INFO dfs.FSNamesystem: Deleting block blk_{block} file /x{block}",
        ]
    settings = parser_settings(r"blk_-?\d+")
    metadata = train_on_logs(lines, settings, small_options, tmp_path)
    assert metadata.input_kind == "logs" and metadata.parser == settings
    assert all(key.startswith("T") for key in metadata.vocabulary)
    assert any("Receiving block" in text for text in metadata.templates)
    mining = json.loads((tmp_path / "model.json").read_text())["training"]["mining"]
    assert (mining["lines"], mining["similarity"]) == (len(lines), DEFAULT_SIMILARITY)
    assert load_bundle(tmp_path).metadata == metadata


@pytest.fixture
def fit_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any call to fit() fail the test: the check under test must come before training."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("fit() ran; the check should have failed before training")

    monkeypatch.setattr("logwarden.train.pipeline.fit", refuse)


FORTY_SESSIONS = [["1", "2", "3"], ["1", "3"], ["2", "1", "3", "3"], ["1", "2"]] * 10


@pytest.mark.usefixtures("fit_must_not_run")
@pytest.mark.parametrize("where", ["a_file", "below_a_file"])
def test_pipeline_out_dir_not_a_directory_raises_before_fit(
    small_options: TrainingOptions, tmp_path: Path, where: str
) -> None:
    """An output path that is a file, or lies below one, is refused before training, naming it."""
    (tmp_path / "afile").write_text("", encoding="utf-8")
    out_dir = tmp_path / "afile" if where == "a_file" else tmp_path / "afile" / "model"
    with pytest.raises(TrainingError, match=r"afile.* not a directory"):
        train_on_sequences(FORTY_SESSIONS, small_options, out_dir)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_too_few_sessions_for_a_holdout_says_how_many_before_fit(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """Sessions too few to hold one out for calibration fail before training, with the count needed."""
    options = dataclasses.replace(small_options, holdout_fraction=0.1)
    with pytest.raises(TrainingError, match=r"5 training sessions .* at least 6 are needed"):
        train_on_sequences(FORTY_SESSIONS[:5], options, tmp_path)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_holdout_of_sessions_each_with_an_event_of_its_own_says_why_before_fit(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """Ten sessions, each with an event no other holds: the one held out goes to training, leaving none."""
    sessions = [["1", "2", str(100 + n)] for n in range(10)]
    options = dataclasses.replace(small_options, holdout_fraction=0.1)
    with pytest.raises(
        TrainingError, match=r"the 1 session\(s\) held out .* event no other training session holds"
    ):
        train_on_sequences(sessions, options, tmp_path)


@pytest.mark.usefixtures("fit_must_not_run")
@pytest.mark.parametrize(
    ("labels", "message"),
    [([], "labelled set holds no sessions"), ([False, False], "only normal"), ([True], "only anomalous")],
)
def test_pipeline_labelled_set_without_both_labels_raises_before_fit(
    small_options: TrainingOptions, tmp_path: Path, labels: list[bool], message: str
) -> None:
    """A threshold chosen by F1 needs normal and anomalous sessions; anything less fails before training."""
    labelled = [LabelledSession(["1", "2"], anomalous) for anomalous in labels]
    with pytest.raises(TrainingError, match=message):
        train_on_sequences(FORTY_SESSIONS, small_options, tmp_path, labelled)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_raw_logs_entity_regex_whose_group_never_takes_part_says_so(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """A regex that matches every line while its group 1 names nothing is not said to match none."""
    lines = ["081109 blk_1 started\n", "081109 blk_1 done\n"]
    with pytest.raises(TrainingError, match=r"named no entity in any of the 2 lines: .* group 1") as raised:
        train_on_logs(lines, parser_settings(r"(x)?blk_\d+"), small_options, tmp_path)
    assert "matched none of the" not in str(raised.value)


@pytest.mark.parametrize("regex", ["^", r"\d*"])
@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_raw_logs_entity_regex_matching_only_empty_text_says_so(
    small_options: TrainingOptions, tmp_path: Path, regex: str
) -> None:
    """``^`` matches every line and names nothing: the error says an empty match names no entity."""
    lines = ["sshd started\n", "sshd stopped\n"]
    with pytest.raises(
        TrainingError, match=r"named no entity in any of the 2 lines: .* only empty text"
    ) as raised:
        train_on_logs(lines, parser_settings(regex), small_options, tmp_path)
    assert "matched none of the" not in str(raised.value)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_raw_logs_too_few_sessions_suggest_no_labelled_set(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """A labelled set is for event keys only: a raw-log training with too few sessions asks for more
    sessions, not for a labelled set its command line refuses; event keys are offered one."""
    options = dataclasses.replace(small_options, holdout_fraction=0.1)
    lines = [f"job_{n} {step}\n" for n in range(3) for step in ("start", "stop")]
    with pytest.raises(TrainingError, match=r"at least 6 are needed$"):
        train_on_logs(lines, parser_settings(r"job_\d+"), options, tmp_path)
    with pytest.raises(TrainingError, match=r"at least 6 are needed, or a labelled set"):
        train_on_sequences(FORTY_SESSIONS[:3], options, tmp_path)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_raw_logs_entity_regex_matching_no_line_says_so(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """When the entity regex finds no entity in any line the error says that, not '0 distinct events'."""
    lines = ["2026-11-21T10:00:00Z h svc: job 1 started\n", "2026-11-21T10:00:01Z h svc: job 1 done\n"]
    with pytest.raises(TrainingError, match=r"entity regex 'job_\\d\+' matched none of the 2 lines"):
        train_on_logs(lines, parser_settings(r"job_\d+"), small_options, tmp_path)


@pytest.mark.usefixtures("fit_must_not_run")
def test_pipeline_raw_logs_without_lines_says_so(small_options: TrainingOptions, tmp_path: Path) -> None:
    """An empty log file is reported as such before training."""
    with pytest.raises(TrainingError, match="no log lines to train on"):
        train_on_logs([], parser_settings(r"job_\d+"), small_options, tmp_path)


def test_pipeline_learns_the_count_gate_when_held_out_counts_repeat(
    tmp_path: Path, small_options: TrainingOptions, hdfs_train_file: Path
) -> None:
    """1,500 HDFS sessions (300 held out), whose event counts repeat: model.json holds a gate at the
    held-out maximum + GATE_MARGIN with the counts of every training session, and it loads back; the
    same run with the gate turned off stores none and says so."""
    keys = [s for s in read_sequences(hdfs_train_file) if s][:1500]
    options = dataclasses.replace(small_options, epochs=1)  # what the gate holds needs no good model
    metadata = train_on_sequences(keys, options, tmp_path / "gated")
    gate = metadata.count_gate
    assert gate is not None
    calibration = metadata.training["calibration"]
    assert gate.threshold == pytest.approx(calibration["holdout_max_score"] + GATE_MARGIN)
    vocabulary = Vocabulary(metadata.vocabulary)
    weights = event_weights(metadata.vocab_size)
    assert set(gate.profiles) == {count_profile(vocabulary.encode(s), weights) for s in keys}
    assert metadata.training["count_gate"]["sessions_with_a_unique_profile"] == 11
    assert load_bundle(tmp_path / "gated").metadata.count_gate == gate

    off = train_on_sequences(keys, dataclasses.replace(options, count_gate=False), tmp_path / "off")
    assert off.count_gate is None
    assert "turned off" in off.training["count_gate"]["off"]


def test_pipeline_learns_the_novelty_rules_from_every_training_session(
    tmp_path: Path, small_options: TrainingOptions, hdfs_train_file: Path
) -> None:
    """All 4,855 HDFS sessions: the transition rule checks boundaries only (2 sessions with a unique
    boundary, 7 with a unique inner transition: over 0.1 %), the co-occurrence rule holds every pair
    of every training session, held-out ones included, and the length rule the shortest session (13
    events); the graph's state is one unit wider, and the model loads back.  With the rules turned off
    there are none, the state is hidden_size wide, and the summaries say why."""
    keys = [s for s in read_sequences(hdfs_train_file) if s]
    options = dataclasses.replace(small_options, epochs=1)  # what the rules hold needs no good model
    metadata = train_on_sequences(keys, options, tmp_path / "rule")
    rule, pairs = metadata.transition_rule, metadata.cooccurrence_rule
    assert rule is not None and pairs is not None
    vocabulary = Vocabulary(metadata.vocabulary)
    encoded = [vocabulary.encode(s) for s in keys]
    assert set(rule.transitions) == set().union(*(session_transitions(s) for s in encoded))
    assert rule.boundaries and not rule.inner
    assert metadata.training["transition_rule"]["checks"] == ["boundaries"]
    assert set(pairs.pairs) == set().union(*(session_pairs(s) for s in encoded))
    assert metadata.training["cooccurrence_rule"]["sessions_with_a_unique_pair"] == 0
    assert metadata.length_rule == LengthRule(min(len(s) for s in keys)) == LengthRule(13)
    assert metadata.state_size == metadata.hidden_size + 1
    loaded = load_bundle(tmp_path / "rule").metadata
    assert loaded.transition_rule == rule and loaded.cooccurrence_rule == pairs
    assert loaded.length_rule == metadata.length_rule

    off = train_on_sequences(
        keys,
        dataclasses.replace(options, transition_rule=False, cooccurrence_rule=False, length_rule=False),
        tmp_path / "off",
    )
    assert off.transition_rule is None and off.cooccurrence_rule is None and off.length_rule is None
    assert off.state_size == off.hidden_size
    for name in ("transition_rule", "cooccurrence_rule", "length_rule"):
        assert "turned off" in off.training[name]["off"]


def test_pipeline_declines_the_count_gate_when_counts_do_not_repeat_enough(
    trained_model: tuple[Path, ModelMetadata],
) -> None:
    """The first 400 HDFS sessions hold more than 1 % with a combination of counts found once: no
    gate, and model.json says why."""
    _, metadata = trained_model
    assert metadata.count_gate is None
    summary = metadata.training["count_gate"]
    assert summary["sessions_with_a_unique_profile"] > 4
    assert "counts do not repeat" in summary["off"]


def test_training_file_is_hashed_in_chunks_and_a_pipe_is_named_without_a_digest(tmp_path: Path) -> None:
    """A file larger than one chunk gets the sha256 of all its bytes; a pipe, which training has
    already read to its end, gets no digest (it would be the digest of nothing) and says why."""
    data = tmp_path / "train.log"
    content = bytes(range(256)) * (HASH_CHUNK_BYTES // 256 * 2 + 3)
    data.write_bytes(content)
    assert _describe_file(data) == {"data_file": "train.log", "data_sha256": sha256_hex(content)}
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    described = _describe_file(pipe)
    assert described["data_file"] == "pipe" and "data_sha256" not in described
    assert "not a regular file" in described["data_sha256_missing"]


def test_pipeline_raw_logs_in_a_header_format_the_regex_misses_warns(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """Lines mined whole keep their timestamps in their templates, so the next day's lines fit none:
    training says so, and a header the regex knows makes no warning."""
    messages = ["Accepted password for root", "session opened for user root", "session closed"]
    bracketed = [
        f"[2015-12-10 06:55:{n % 60:02d}] LabSZ sshd[{24_000 + n}]: {message}\n"
        for n in range(40)
        for message in messages
    ]
    with structlog.testing.capture_logs() as logs:
        train_on_logs(bracketed, parser_settings(r"sshd\[(\d+)\]"), small_options, tmp_path / "bracketed")
    warned = [log for log in logs if log["event"] == "header_regex_unmatched"]
    assert len(warned) == 1 and warned[0]["lines_without_header"] == warned[0]["lines"] == len(bracketed)
    syslog = [
        line.replace("[2015-12-10 06:55:", "Dec 10 06:55:").replace("] LabSZ", " LabSZ") for line in bracketed
    ]
    with structlog.testing.capture_logs() as logs:
        train_on_logs(syslog, parser_settings(r"sshd\[(\d+)\]"), small_options, tmp_path / "syslog")
    assert not [log for log in logs if log["event"] == "header_regex_unmatched"]


def test_pipeline_transition_rule_declined_past_its_vocabulary_bound(small_options: TrainingOptions) -> None:
    """The graph carries the rule as a dense [V, V] matrix (past protobuf's 2 GiB from ~23,000 events,
    an export traceback after the whole training): above the bound it is declined, with the reason."""
    from logwarden.train.pipeline import MAX_TRANSITION_RULE_VOCABULARY, _transition_rule

    sessions = [np.array([3, 4, 5], np.int64)] * 300
    decision = _transition_rule(small_options, sessions, MAX_TRANSITION_RULE_VOCABULARY + 1)
    assert decision.rule is None and "dense transition matrix" in decision.summary["off"]
    assert _transition_rule(small_options, sessions, 6).rule is not None


def test_pipeline_labelled_sessions_with_keys_training_never_saw_are_warned(
    small_options: TrainingOptions, tmp_path: Path
) -> None:
    """A labelled CSV naming events otherwise than training ("E1" for "1") alerts at any threshold, so
    the F1 the threshold is chosen by means nothing: the log says so."""
    labelled = [
        LabelledSession(tuple(f"E{key}" for key in keys), n % 2 == 1) for n, keys in enumerate(FORTY_SESSIONS)
    ]
    with structlog.testing.capture_logs() as logs:
        train_on_sequences(FORTY_SESSIONS, small_options, tmp_path, labelled=labelled)
    warned = [entry for entry in logs if entry["event"] == "labelled_unknown_keys"]
    assert len(warned) == 1 and warned[0]["sessions"] == warned[0]["of"] == 40
    assert warned[0]["first_unknown_key"] == "E1"
