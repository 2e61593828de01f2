"""Offline scoring of files with onnxruntime only: pre-parsed sequences or raw log lines.

This is what ``logwarden score`` and ``logwarden eval`` run; it never imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logwarden.errors import InputFormatError
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID, ModelMetadata
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import SessionScore, score_sessions


@dataclass
class LogScoringSummary:
    """Counts for raw-log scoring; lines without an entity are reported, never silently dropped."""

    lines: int = 0
    blank_lines: int = 0
    lines_without_entity: int = 0
    unknown_template_lines: int = 0
    new_templates: dict[str, int] = field(default_factory=dict)
    """Masked content of each line no template matched, with its count: one entry per new event,
    not per IP address or number it was logged with."""


def threshold_of(model: OnnxStepModel, override: float | None) -> float:
    """The calibrated threshold unless the caller overrides it."""
    return model.metadata.threshold if override is None else override


def encode_sessions(metadata: ModelMetadata, sessions: Iterable[Sequence[str]]) -> list[np.ndarray]:
    """Event keys to model ids; keys absent from the training vocabulary become UNKNOWN."""
    vocabulary = Vocabulary(metadata.vocabulary)
    return [vocabulary.encode(keys) for keys in sessions]


def session_record(metadata: ModelMetadata, ids: np.ndarray, verdict: SessionScore) -> dict[str, Any]:
    """The JSON fields shared by sequence and log output."""
    worst = "<END>" if verdict.worst_index >= len(ids) else metadata.token_name(int(ids[verdict.worst_index]))
    return {
        "anomalous": verdict.anomalous,
        "score": round(verdict.score, 6),
        "length": verdict.length,
        "worst_index": verdict.worst_index,
        "worst_event": worst,
        "unknown_events": verdict.unknown_events,
    }


def score_sequence_lines(
    model: OnnxStepModel, sessions: Sequence[Sequence[str]], threshold: float | None = None
) -> Iterator[dict[str, Any]]:
    """One record per input session, in input order, ``line`` counting from 0."""
    if model.metadata.input_kind != "sequences":
        raise InputFormatError(
            "this model was trained on raw logs and scores raw log lines only (logwarden score --logs), "
            "not sessions of event keys"
        )
    encoded = encode_sessions(model.metadata, sessions)
    verdicts = score_sessions(model, encoded, threshold_of(model, threshold))
    for line, (ids, verdict) in enumerate(zip(encoded, verdicts, strict=True)):
        yield {"line": line, **session_record(model.metadata, ids, verdict)}


def group_log_lines(
    model: OnnxStepModel, lines: Iterable[str], summary: LogScoringSummary, entity_regex: str | None = None
) -> dict[str, list[int]]:
    """Parse raw lines with the model's stored parser into per-entity id lists, in first-seen order."""
    # imported here: sequence-only users need no parser
    from logwarden.events.masking import Masker
    from logwarden.events.raw import RawLineParser

    metadata = model.metadata
    if metadata.parser is None:
        raise InputFormatError("this model was trained on pre-parsed sequences: score it with --sequences")
    settings = metadata.parser
    if entity_regex is not None:
        settings = dataclasses.replace(settings, entity_regex=entity_regex)
    parser = RawLineParser(settings, metadata.templates)
    masker = Masker(settings.masking, settings.collapse_repeated_masks)
    sessions: dict[str, list[int]] = {}
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            summary.blank_lines += 1
            continue
        summary.lines += 1
        parsed = parser.parse_one(line)
        if parsed.entity is None:
            summary.lines_without_entity += 1
            continue
        if parsed.template_index < 0:
            summary.unknown_template_lines += 1
            new_template = masker.mask(parsed.content)
            summary.new_templates[new_template] = summary.new_templates.get(new_template, 0) + 1
            event_id = UNKNOWN_ID
        else:
            event_id = FIRST_EVENT_ID + parsed.template_index
        sessions.setdefault(parsed.entity, []).append(event_id)
    return sessions


def score_log_lines(
    model: OnnxStepModel,
    lines: Iterable[str],
    summary: LogScoringSummary,
    threshold: float | None = None,
    entity_regex: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per entity, in order of the entity's first line."""
    sessions = group_log_lines(model, lines, summary, entity_regex)
    entities = list(sessions)
    encoded = [np.asarray(sessions[e], np.int64) for e in entities]
    verdicts = score_sessions(model, encoded, threshold_of(model, threshold))
    for entity, ids, verdict in zip(entities, encoded, verdicts, strict=True):
        yield {"entity": entity, **session_record(model.metadata, ids, verdict)}
