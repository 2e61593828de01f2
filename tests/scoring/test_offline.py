"""Offline file scoring: records per input line, unknown keys, and refusal of the wrong input kind."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from model_metadata import model_metadata

from logwarden.errors import InputFormatError
from logwarden.model.bundle import ModelBundle
from logwarden.model.contract import FIRST_EVENT_ID, ParserSettings
from logwarden.model.cooccurrence_rule import CooccurrenceRule
from logwarden.model.length_rule import LengthRule
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import (
    NEW_TEMPLATE_CHARS,
    LogScoringSummary,
    encode_sessions,
    score_log_lines,
    score_sequence_lines,
    session_record,
)
from logwarden.scoring.session import SessionScore


def test_encode_sessions_unseen_key_becomes_unknown(trained_model: OnnxStepModel) -> None:
    """Keys outside the training vocabulary map to UNKNOWN (2), known keys to their ids."""
    first_key = trained_model.metadata.vocabulary[0]
    [ids] = encode_sessions(trained_model.metadata, [[first_key, "no-such-key"]])
    assert ids.tolist() == [3, 2]


def test_score_sequence_lines_records_follow_input_lines(
    trained_model: OnnxStepModel, normal_test_keys: list[list[str]]
) -> None:
    """One record per session, line numbers from 0, an unknown key flagged and named as worst."""
    sessions = [normal_test_keys[0], [*normal_test_keys[1][:3], "999"], normal_test_keys[2]]
    records = list(score_sequence_lines(trained_model, sessions, threshold=float("inf")))
    assert [r["line"] for r in records] == [0, 1, 2]
    assert [r["length"] for r in records] == [len(s) for s in sessions]
    assert [r["anomalous"] for r in records] == [False, True, False]
    assert records[1]["unknown_events"] == 1


def test_score_sequence_lines_blank_line_is_reported_skipped_not_judged(
    trained_model: OnnxStepModel, normal_test_keys: list[list[str]]
) -> None:
    """A blank line holds no session: its record keeps its place, not anomalous, and the sessions
    around it get the verdicts they get without it."""
    sessions = [normal_test_keys[0], [], [*normal_test_keys[1][:3], "999"], []]
    records = list(score_sequence_lines(trained_model, sessions))
    alone = list(score_sequence_lines(trained_model, [sessions[0], sessions[2]]))
    assert [r["line"] for r in records] == [0, 1, 2, 3]
    skipped = {"anomalous": False, "score": 0.0, "length": 0, "skipped": "blank line"}
    assert (records[1], records[3]) == ({"line": 1, **skipped}, {"line": 3, **skipped})
    assert [records[0], records[2]] == [{**alone[0], "line": 0}, {**alone[1], "line": 2}]
    assert records[2]["anomalous"]


def test_score_sequence_lines_threshold_override_flags_everything(
    trained_model: OnnxStepModel, normal_test_keys: list[list[str]]
) -> None:
    """A threshold below every score flags every session."""
    records = list(score_sequence_lines(trained_model, normal_test_keys[:5], threshold=-1.0))
    assert all(r["anomalous"] for r in records)


def _with_metadata(bundle: ModelBundle, **changes: Any) -> OnnxStepModel:
    return OnnxStepModel.load(
        dataclasses.replace(bundle, metadata=dataclasses.replace(bundle.metadata, **changes))
    )


def test_score_sequence_lines_logs_model_raises_input_format_error(trained_bundle: ModelBundle) -> None:
    """A model trained on raw logs is not silently applied to key sequences; the hint fits score and eval."""
    model = _with_metadata(trained_bundle, input_kind="logs")
    with pytest.raises(InputFormatError, match=r"raw log lines only \(logwarden score --logs\)"):
        list(score_sequence_lines(model, [["1"]]))


def test_score_log_lines_sequence_model_raises_input_format_error(trained_model: OnnxStepModel) -> None:
    """A model without stored parser settings cannot parse raw lines."""
    with pytest.raises(InputFormatError, match="--sequences"):
        list(score_log_lines(trained_model, ["a line"], LogScoringSummary()))


def test_score_log_lines_lines_without_entity_are_counted(trained_bundle: ModelBundle) -> None:
    """Lines naming no entity are reported in the summary, never silently dropped."""
    settings = ParserSettings(header_regex=r"(?P<content>.*)", entity_regex=r"job_\d+", masking=())
    templates = tuple(f"step {key} <*>" for key in trained_bundle.metadata.vocabulary)
    model = _with_metadata(trained_bundle, input_kind="logs", parser=settings, templates=templates)
    summary = LogScoringSummary()
    records = list(
        score_log_lines(
            model, ["step 1 job_7\n", "no entity here\n", "\n", "step 2 job_7\n", "weird job_8\n"], summary
        )
    )
    assert [r["entity"] for r in records] == ["job_7", "job_8"]
    assert (summary.lines, summary.lines_without_entity, summary.unknown_template_lines) == (4, 1, 1)
    assert summary.new_templates == {"weird <*>": 1}
    assert records[1]["anomalous"]


def test_score_log_lines_keeps_a_long_new_template_cut_to_its_first_characters(
    trained_bundle: ModelBundle,
) -> None:
    """A 2 MB line no template fits is one new template of NEW_TEMPLATE_CHARS characters, ending "...",
    in the summary; the line itself is still counted and scored."""
    settings = ParserSettings(header_regex=r"(?P<content>.*)", entity_regex=r"job_\d+", masking=())
    model = _with_metadata(trained_bundle, input_kind="logs", parser=settings, templates=("step <*>",))
    summary = LogScoringSummary()
    long_line = "job_8 " + "x" * 2_000_000 + "\n"
    records = list(score_log_lines(model, [long_line, long_line], summary))
    [(template, count)] = summary.new_templates.items()
    assert len(template) == NEW_TEMPLATE_CHARS and template.startswith("<*> xxx") and template.endswith("...")
    assert count == 2 and summary.unknown_template_lines == 2
    assert [r["entity"] for r in records] == ["job_8"] and records[0]["anomalous"]


def test_log_scoring_report_names_the_most_frequent_new_templates_first_and_cuts_them() -> None:
    """New templates seen 3, 2, 1 times show as ``b``, ``c`` when two fit; raw input has no invalid_lines."""
    summary = LogScoringSummary(lines=9, unknown_template_lines=6, new_templates={"a": 1, "b": 3, "c": 2})
    report = summary.report(json_input=False, new_templates_shown=2)
    assert report["new_templates"] == ["b", "c"]
    assert (report["lines"], report["unknown_template_lines"]) == (9, 6)
    assert "invalid_lines" not in report


def test_log_scoring_report_for_json_input_adds_invalid_lines_and_the_first_one() -> None:
    """JSON input adds the invalid reasons, and the first invalid line only once one has been recorded."""
    summary = LogScoringSummary(invalid_lines=2, invalid_reasons={"invalid_json": 2})
    assert summary.report(json_input=True)["invalid_reasons"] == {"invalid_json": 2}
    assert "first_invalid" not in summary.report(json_input=True)
    summary.first_invalid = "line 3: invalid JSON"
    assert summary.report(json_input=True)["first_invalid"] == "line 3: invalid JSON"


def test_session_record_says_unseen_counts_only_for_a_model_with_a_count_gate() -> None:
    """A verdict with a count-gate answer carries ``unseen_counts``; without a gate the key is absent,
    so the output of models without one is unchanged."""
    metadata = model_metadata(vocabulary=("a", "b"), templates=("a", "b"))
    ids = np.array([FIRST_EVENT_ID, FIRST_EVENT_ID + 1], np.int64)
    gated = SessionScore(3.0, True, 1, 0, 2, unseen_counts=True)
    plain = dataclasses.replace(gated, unseen_counts=None)
    assert session_record(metadata, ids, gated)["unseen_counts"] is True
    assert "unseen_counts" not in session_record(metadata, ids, plain)


def test_session_record_counts_unmet_pairs_only_for_a_model_with_a_cooccurrence_rule() -> None:
    """With a co-occurrence rule in which a and c never met, the session a b c says ``unmet_pairs: 1``
    (c after a) and a b says 0; a model without the rule has no such key."""
    a, b, c = FIRST_EVENT_ID, FIRST_EVENT_ID + 1, FIRST_EVENT_ID + 2
    plain = model_metadata(vocabulary=("a", "b", "c"), templates=("a", "b", "c"))
    with_rule = dataclasses.replace(plain, cooccurrence_rule=CooccurrenceRule(((a, b), (b, c))))
    verdict = SessionScore(3.0, True, 1, 0, 3)
    assert session_record(with_rule, np.array([a, b, c]), verdict)["unmet_pairs"] == 1
    assert session_record(with_rule, np.array([a, b]), verdict)["unmet_pairs"] == 0
    assert "unmet_pairs" not in session_record(plain, np.array([a, b, c]), verdict)


def test_session_record_says_whether_the_session_ended_early_only_for_a_model_with_a_length_rule() -> None:
    """With a length rule of 3 events, a b says ``ended_early: true`` and a b a ``false``; a model without
    the rule has no such key."""
    a, b = FIRST_EVENT_ID, FIRST_EVENT_ID + 1
    plain = model_metadata(vocabulary=("a", "b"), templates=("a", "b"), num_layers=2)
    with_rule = dataclasses.replace(plain, length_rule=LengthRule(3))
    verdict = SessionScore(3.0, True, 1, 0, 3)
    assert session_record(with_rule, np.array([a, b]), verdict)["ended_early"] is True
    assert session_record(with_rule, np.array([a, b, a]), verdict)["ended_early"] is False
    assert "ended_early" not in session_record(plain, np.array([a, b]), verdict)


def test_score_log_lines_a_line_of_no_utf8_is_invalid_as_in_the_daemon(trained_bundle: ModelBundle) -> None:
    """A line read with undecodable bytes (kept escaped by open_log_file) is the daemon's dead letter:
    counted invalid_utf8, in no session and no new template."""
    settings = ParserSettings(header_regex=r"(?P<content>.*)", entity_regex=r"job_\d+", masking=())
    templates = tuple(f"step {key} <*>" for key in trained_bundle.metadata.vocabulary)
    model = _with_metadata(trained_bundle, input_kind="logs", parser=settings, templates=templates)
    summary = LogScoringSummary()
    bad = b"caf\xe9 job_8\n".decode("utf-8", "surrogateescape")
    records = list(score_log_lines(model, ["step 1 job_7\n", bad], summary))
    assert [r["entity"] for r in records] == ["job_7"]
    assert (summary.lines, summary.invalid_lines, summary.invalid_reasons) == (2, 1, {"invalid_utf8": 1})
    assert not summary.new_templates
