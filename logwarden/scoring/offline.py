"""Offline scoring of files with onnxruntime only: pre-parsed sequences, raw log lines or JSON events.

This is what ``logwarden score`` and ``logwarden eval`` run; it never imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logwarden.errors import ConfigError, InputFormatError
from logwarden.events.entity import RegexEntityExtractor, entity_as_wildcard, entity_refusal
from logwarden.events.header import HeaderStripper
from logwarden.events.json_events import (
    JsonEventReader,
    JsonFields,
    read_json_lines,
    trained_entity_regex,
    trained_json_fields,
)
from logwarden.events.line_tally import LineTally
from logwarden.events.log_files import not_utf8
from logwarden.events.masking import Masker
from logwarden.events.sequences import keys_a_sequence_cannot_name
from logwarden.events.templates import TemplateMatcher
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID, ModelMetadata, ParserSettings
from logwarden.model.count_gate import CountGate
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import SessionScore, score_sessions

NEW_TEMPLATES_SHOWN = 20
"""How many new templates the score summary names."""

NEW_TEMPLATE_CHARS = 500
"""The most characters of a new template the summary keeps (then "..."): one 20 MB line would
otherwise make the one-line summary 20 MB, and a file of long new lines fill memory with them."""


def shortened_template(masked: str) -> str:
    """``masked`` cut to ``NEW_TEMPLATE_CHARS`` characters, marked "..." where it was cut."""
    return masked if len(masked) <= NEW_TEMPLATE_CHARS else masked[: NEW_TEMPLATE_CHARS - 3] + "..."


@dataclass
class LogScoringSummary(LineTally):
    """Counts for log scoring: the lines left out (``LineTally``: blank, without an entity, invalid,
    never silently dropped) and the lines no template fitted."""

    unknown_template_lines: int = 0
    new_templates: dict[str, int] = field(default_factory=dict)
    """Masked content of each line no template matched, with its count: one entry per new event,
    not per IP address or number it was logged with."""

    def add_json_counts(self, tally: LineTally) -> None:
        """Add what a JSON-lines reader counted."""
        self.lines += tally.lines
        self.blank_lines += tally.blank_lines
        self.lines_without_entity += tally.lines_without_entity
        self.invalid_lines += tally.invalid_lines
        for reason, count in tally.invalid_reasons.items():
            self.invalid_reasons[reason] = self.invalid_reasons.get(reason, 0) + count
        self.first_invalid = self.first_invalid or tally.first_invalid

    def report(
        self, *, json_input: bool, new_templates_shown: int = NEW_TEMPLATES_SHOWN
    ) -> dict[str, object]:
        """What ``logwarden score`` prints to stderr after the records: counts, then the new events.

        New templates come most frequent first and are cut to ``new_templates_shown``: one noisy
        new event can log thousands of distinct lines, and the summary is a single JSON line.
        Raw lines are invalid only when their entity is one the daemon refuses (``entity_refusal``),
        so for raw logs the invalid-line counts are shown only when there are some.
        """
        by_count = sorted(self.new_templates, key=self.new_templates.__getitem__, reverse=True)
        report: dict[str, object] = {
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "lines_without_entity": self.lines_without_entity,
            "unknown_template_lines": self.unknown_template_lines,
            "new_templates": by_count[:new_templates_shown],
        }
        if json_input or self.invalid_lines:
            report["invalid_lines"] = self.invalid_lines
            report["invalid_reasons"] = self.invalid_reasons
            if self.first_invalid is not None:
                report["first_invalid"] = self.first_invalid
        return report


def threshold_of(model: OnnxStepModel, override: float | None) -> float:
    """The calibrated threshold unless the caller overrides it."""
    return model.metadata.threshold if override is None else override


def count_gate_of(model: OnnxStepModel, use: bool) -> CountGate | None:
    """The model's count gate, unless the caller turns it off (``--no-count-gate``)."""
    return model.metadata.count_gate if use else None


def encode_sessions(metadata: ModelMetadata, sessions: Iterable[Sequence[str]]) -> list[np.ndarray]:
    """Event keys to model ids; keys absent from the training vocabulary become UNKNOWN."""
    vocabulary = Vocabulary(metadata.vocabulary)
    return [vocabulary.encode(keys) for keys in sessions]


def session_record(metadata: ModelMetadata, ids: np.ndarray, verdict: SessionScore) -> dict[str, Any]:
    """The JSON fields shared by sequence and log output."""
    worst = "<END>" if verdict.worst_index >= len(ids) else metadata.token_name(int(ids[verdict.worst_index]))
    record: dict[str, Any] = {
        "anomalous": verdict.anomalous,
        "score": round(verdict.score, 6),
        "length": verdict.length,
        "worst_index": verdict.worst_index,
        "worst_event": worst,
        "unknown_events": verdict.unknown_events,
    }
    if verdict.unseen_counts is not None:
        record["unseen_counts"] = verdict.unseen_counts
    if metadata.transition_rule is not None:
        # Counted from the rule's list; the graph has already added the penalty to these events' scores.
        record["unseen_transitions"] = metadata.transition_rule.unseen(ids)
    if metadata.cooccurrence_rule is not None:
        # Events arriving after an event they never met in training, penalised by the graph likewise.
        record["unmet_pairs"] = metadata.cooccurrence_rule.unseen(ids)
    if metadata.length_rule is not None:
        # The session ended with fewer events than every training session: END carries the penalty.
        record["ended_early"] = metadata.length_rule.ends_early(ids)
    return record


def score_sequence_lines(
    model: OnnxStepModel,
    sessions: Sequence[Sequence[str]],
    threshold: float | None = None,
    *,
    count_gate: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per input session, in input order, ``line`` counting from 0.

    A blank line holds no session (training and ``eval`` skip it too): its record says so
    (``"skipped": "blank line"``, not anomalous, score 0) instead of judging an empty session, which
    every model flags (it ends before any training session did), so that a stray blank line in a
    file raises no alert while the records still follow the input line for line.
    """
    if model.metadata.input_kind != "sequences":
        raise InputFormatError(
            "this model was trained on raw logs and scores raw log lines only (logwarden score --logs), "
            "not sessions of event keys"
        )
    unnamable = keys_a_sequence_cannot_name(model.metadata.vocabulary)
    if unnamable:
        raise InputFormatError(
            f"this model's event keys include {unnamable[0]!r}, which holds whitespace: sessions of keys "
            "split on whitespace cannot name it, so every such event would score as UNKNOWN; score its "
            "JSON events instead (logwarden score --json)"
        )
    encoded = encode_sessions(model.metadata, (keys for keys in sessions if keys))
    verdicts = score_sessions(
        model, encoded, threshold_of(model, threshold), count_gate=count_gate_of(model, count_gate)
    )
    scored = zip(encoded, verdicts, strict=True)
    for line, keys in enumerate(sessions):
        if not keys:
            yield {"line": line, "anomalous": False, "score": 0.0, "length": 0, "skipped": "blank line"}
            continue
        ids, verdict = next(scored)
        yield {"line": line, **session_record(model.metadata, ids, verdict)}


def group_log_lines(
    model: OnnxStepModel, lines: Iterable[str], summary: LogScoringSummary, entity_regex: str | None = None
) -> dict[str, list[int]]:
    """Parse raw lines with the model's stored parser into per-entity id lists, in first-seen order."""
    settings = _log_parser_settings(model, entity_regex)
    assert settings.entity_regex is not None  # _log_parser_settings refuses a model without one
    entity_of = RegexEntityExtractor(settings.entity_regex).entity_of

    def events() -> Iterator[tuple[str | None, str]]:
        for line_number, raw_line in enumerate(lines, 1):
            line = raw_line.rstrip("\r\n")
            if not line.strip():
                summary.blank_lines += 1
                continue
            summary.lines += 1
            refusal = not_utf8(line)
            entity = None if refusal is not None else entity_of(line)
            if entity is not None:
                refusal = entity_refusal(entity, "entity regex")
            if refusal is not None:  # the daemon's dead letter: no session holds this line
                summary.count_invalid(line_number, refusal)
                continue
            yield entity, line

    return _group_events(model, settings, events(), summary)


def group_json_lines(
    model: OnnxStepModel,
    lines: Iterable[str],
    summary: LogScoringSummary,
    fields: JsonFields,
    entity_regex: str | None = None,
) -> dict[str, list[int]]:
    """``group_log_lines`` for JSON events, read as the daemon reads JSON records.

    The entity is ``fields.entity``'s value, or with no entity field the entity regex's first
    match in the message (``entity_regex``, else the model's).
    """
    settings = _log_parser_settings(model, entity_regex, needs_regex=fields.entity is None)
    tally = LineTally()
    events = read_json_lines(lines, JsonEventReader(fields, settings.entity_regex), tally)
    sessions = _group_events(model, settings, ((entity, event.text) for entity, event in events), summary)
    summary.add_json_counts(tally)
    return sessions


def group_json_event_keys(
    model: OnnxStepModel,
    lines: Iterable[str],
    summary: LogScoringSummary,
    fields: JsonFields,
    entity_regex: str | None = None,
) -> dict[str, list[int]]:
    """Per-entity id lists of JSON events whose event key is in ``fields.event``: a model trained on
    event keys (``logwarden train --json --event-field``); keys it never saw become UNKNOWN.

    With no entity field, the entities are found by ``entity_regex``, else by the regex the model
    was trained with."""
    metadata = model.metadata
    if metadata.input_kind != "sequences":
        raise ConfigError(
            "this model matches messages against mined templates; an event field applies to models "
            "trained on event keys (logwarden train --sequences, or --json with --event-field)"
        )
    if fields.event is None:
        raise ConfigError(
            "this model was trained on event keys: give the field that holds them (--event-field)"
        )
    if fields.entity is None and entity_regex is None:
        entity_regex = trained_entity_regex(metadata)
    if fields.entity is None and entity_regex is None:
        raise ConfigError("give the field naming each event's entity (--entity-field) or an --entity-regex")
    vocabulary = Vocabulary(metadata.vocabulary)
    tally = LineTally()
    sessions: dict[str, list[int]] = {}
    for entity, event in read_json_lines(lines, JsonEventReader(fields, entity_regex), tally):
        key = event.event_key
        assert key is not None  # an event field is set, so every event read carries its key
        event_id = vocabulary.id_of(key)
        if event_id == UNKNOWN_ID:
            summary.unknown_template_lines += 1
            summary.new_templates[key] = summary.new_templates.get(key, 0) + 1
        sessions.setdefault(entity, []).append(event_id)
    summary.add_json_counts(tally)
    return sessions


def _log_parser_settings(
    model: OnnxStepModel, entity_regex: str | None, *, needs_regex: bool = True
) -> ParserSettings:
    """The model's parser, with ``entity_regex`` in place of its own when given."""
    metadata = model.metadata
    if metadata.parser is None:
        trained = trained_json_fields(metadata)
        if trained is not None and trained.event is not None:
            raise InputFormatError(
                f"this model was trained on event keys of JSON events (field '{trained.event}'): score it "
                "with --json, or with --sequences on sessions of those keys"
            )
        raise InputFormatError("this model was trained on pre-parsed sequences: score it with --sequences")
    settings = metadata.parser
    if entity_regex is not None:
        settings = dataclasses.replace(settings, entity_regex=entity_regex)
    if needs_regex and settings.entity_regex is None:
        trained = trained_json_fields(metadata)
        grouped_by = f" grouped by the field '{trained.entity}'" if trained and trained.entity else ""
        raise ConfigError(
            f"this model was trained on JSON events{grouped_by} and has no entity regex: "
            "score JSON events (--json) by their entity field, or give --entity-regex"
        )
    return settings


def _group_events(
    model: OnnxStepModel,
    settings: ParserSettings,
    events: Iterable[tuple[str | None, str]],
    summary: LogScoringSummary,
) -> dict[str, list[int]]:
    """(entity, line) pairs to per-entity id lists; each line parsed as the daemon parses it.

    ``events`` is consumed once, as it comes: a file is never held in memory, only its event ids.
    """
    header = HeaderStripper(settings.header_regex)
    matcher = TemplateMatcher(model.metadata.templates, settings.masking, settings.collapse_repeated_masks)
    masker = Masker(settings.masking, settings.collapse_repeated_masks)
    sessions: dict[str, list[int]] = {}
    for entity, line in events:
        if entity is None:
            summary.lines_without_entity += 1
            continue
        content = header.content_of(line)
        template_index = matcher.match_one(content)
        if template_index < 0:
            summary.unknown_template_lines += 1
            new_template = shortened_template(entity_as_wildcard(masker.mask(content), entity))
            summary.new_templates[new_template] = summary.new_templates.get(new_template, 0) + 1
            event_id = UNKNOWN_ID
        else:
            event_id = FIRST_EVENT_ID + template_index
        sessions.setdefault(entity, []).append(event_id)
    return sessions


def score_log_lines(
    model: OnnxStepModel,
    lines: Iterable[str],
    summary: LogScoringSummary,
    threshold: float | None = None,
    entity_regex: str | None = None,
    *,
    count_gate: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per entity, in order of the entity's first line."""
    sessions = group_log_lines(model, lines, summary, entity_regex)
    return score_entity_sessions(model, sessions, threshold, count_gate=count_gate)


def score_json_lines(
    model: OnnxStepModel,
    lines: Iterable[str],
    summary: LogScoringSummary,
    fields: JsonFields,
    threshold: float | None = None,
    entity_regex: str | None = None,
    *,
    count_gate: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per entity of a JSON-lines file, in order of the entity's first event.

    A model of event keys reads them from ``fields.event``; a model of mined templates matches
    the messages, and refuses an event field.
    """
    if model.metadata.input_kind == "sequences":
        sessions = group_json_event_keys(model, lines, summary, fields, entity_regex)
    elif fields.event is not None:
        raise ConfigError(
            "an event field applies to models trained on event keys; this one matches messages "
            "against the templates it mined"
        )
    else:
        sessions = group_json_lines(model, lines, summary, fields, entity_regex)
    return score_entity_sessions(model, sessions, threshold, count_gate=count_gate)


def score_entity_sessions(
    model: OnnxStepModel,
    sessions: dict[str, list[int]],
    threshold: float | None = None,
    *,
    count_gate: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per entity of ``sessions``, in their order."""
    entities = list(sessions)
    encoded = [np.asarray(sessions[e], np.int64) for e in entities]
    verdicts = score_sessions(
        model, encoded, threshold_of(model, threshold), count_gate=count_gate_of(model, count_gate)
    )
    for entity, ids, verdict in zip(entities, encoded, verdicts, strict=True):
        yield {"entity": entity, **session_record(model.metadata, ids, verdict)}
