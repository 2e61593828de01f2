"""From training data to a model directory: vocabulary → holdout split → fit → calibrate → export.

The vocabulary, the network and the default threshold all come from the training data
alone; a labelled set, when given, only replaces the threshold rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from logwarden.errors import InputFormatError, TrainingError
from logwarden.events.json_events import (
    JsonEventReader,
    JsonFields,
    describe_fields,
    read_json_lines,
)
from logwarden.events.line_tally import LineTally
from logwarden.events.sequences import LabelledSession, keys_a_sequence_cannot_name
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID, InputKind, ModelMetadata, ParserSettings
from logwarden.model.cooccurrence_rule import CooccurrenceDecision, learn_cooccurrence_rule
from logwarden.model.count_gate import GateDecision, learn_count_gate
from logwarden.model.length_rule import LengthDecision, learn_length_rule
from logwarden.model.transition_rule import TransitionDecision, learn_transition_rule

from .calibrate import Calibration, LabelledSessions, calibrate
from .dataset import holdout_size, sessions_needed_for_holdout, split_holdout
from .export import export_model, out_dir_problem
from .fit import TrainingOptions, fit
from .mining import DEFAULT_SIMILARITY, MinedLogs, mine_json_lines, mine_log_lines
from .network import TorchStepModel

logger = structlog.get_logger(__name__)


def train_on_sequences(
    sessions_keys: Sequence[Sequence[str]],
    options: TrainingOptions,
    out_dir: str | Path,
    labelled: Sequence[LabelledSession] | None = None,
    templates: Mapping[str, str] | None = None,
    *,
    data_file: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModelMetadata:
    """Train on pre-parsed sessions of event keys; ``templates`` maps a key to its text (default: the key).

    ``data_file``, when given, is recorded in the metadata by name and sha256; ``extra`` in its
    training summary.
    """
    vocabulary = Vocabulary.from_sessions(sessions_keys)
    texts = [templates.get(key, key) if templates else key for key in vocabulary.keys]
    return _train(
        sessions_keys,
        vocabulary,
        texts,
        options,
        out_dir,
        labelled,
        "sequences",
        None,
        data_file,
        dict(extra or {}),
    )


def train_on_json_event_keys(
    lines: Sequence[str],
    fields: JsonFields,
    entity_regex: str | None,
    options: TrainingOptions,
    out_dir: str | Path,
    labelled: Sequence[LabelledSession] | None = None,
    templates: Mapping[str, str] | None = None,
    *,
    data_file: str | Path | None = None,
) -> ModelMetadata:
    """Train on JSON events whose event key was parsed upstream (``fields.event``), grouped per entity.

    What a security pipeline gives: events already classified (a Windows event id, an audit
    action) with the user or host in a field.  The model is one of event keys, as with
    ``--sequences``; the daemon serves it with ``input.json.event_field``.
    """
    if fields.event is None:
        raise ValueError("training on event keys needs the field that holds them (fields.event)")
    check_out_dir(out_dir)
    tally = LineTally()
    sessions: dict[str, list[str]] = {}
    for entity, event in read_json_lines(lines, JsonEventReader(fields, entity_regex), tally):
        assert event.event_key is not None  # an event field is set, so every event read carries its key
        sessions.setdefault(entity, []).append(event.event_key)
    reading = tally.as_dict()
    where = _where(data_file)
    unnamable = (
        keys_a_sequence_cannot_name(sorted({key for keys in sessions.values() for key in keys}))
        if labelled is not None
        else []
    )
    if unnamable:
        raise TrainingError(
            f"{where}event key {unnamable[0]!r} holds whitespace, which a labelled CSV (keys split on "
            "whitespace) cannot name: its sessions would hold UNKNOWN events where training has that key; "
            "train without --labelled"
        )
    left_out = tally.invalid_lines or tally.lines_without_entity
    (logger.warning if left_out else logger.info)("events_read", **reading)
    if not tally.lines:
        raise TrainingError(f"{where}no events to train on")
    if tally.invalid_lines == tally.lines:
        raise TrainingError(
            f"{where}none of the {tally.lines} lines is a JSON object with an event key in field "
            f"'{fields.event}'; the first: {tally.first_invalid}"
        )
    if not sessions:
        raise TrainingError(
            f"{where}{_no_entity_found(fields, entity_regex, tally)}, so no event belongs to a session"
        )
    return train_on_sequences(
        list(sessions.values()),
        options,
        out_dir,
        labelled,
        templates,
        data_file=data_file,
        extra={"reading": reading, "input": describe_fields(fields, entity_regex)},
    )


def train_on_logs(
    lines: Iterable[str],
    settings: ParserSettings,
    options: TrainingOptions,
    out_dir: str | Path,
    labelled: Sequence[LabelledSession] | None = None,
    *,
    data_file: str | Path | None = None,
    json_fields: JsonFields | None = None,
    similarity: float = DEFAULT_SIMILARITY,
) -> ModelMetadata:
    """Mine templates from raw lines, group them per entity, and train on those sessions.

    With ``json_fields`` each line is a JSON event, read as the daemon reads one with
    ``input.format: json``; the fields are recorded in the model's ``training.input``.
    ``similarity`` is Drain3's similarity threshold (``mining.DEFAULT_SIMILARITY``).
    """
    check_out_dir(out_dir)
    if not 0.0 < similarity <= 1.0:
        raise TrainingError(f"the similarity threshold must be in (0, 1], got {similarity}")
    if json_fields is None:
        mined = mine_log_lines(lines, settings, sim_th=similarity)
        source: dict[str, Any] = {"format": "raw"}
    else:
        mined = mine_json_lines(lines, settings, json_fields, sim_th=similarity)
        source = describe_fields(json_fields, settings.entity_regex)
    mining: dict[str, Any] = {
        "similarity": similarity,
        "lines": mined.lines_total,
        "blank_lines": mined.blank_lines,
        "lines_without_entity": mined.lines_without_entity,
        "unmatched_lines": mined.unmatched_lines,
        "templates_mined": len(mined.templates),
    }
    if json_fields is None:
        mining["lines_without_header"] = mined.lines_without_header
    if json_fields is not None or mined.invalid_lines:
        mining["invalid_lines"] = mined.invalid_lines
        mining["invalid_reasons"] = mined.invalid_reasons
        if mined.first_invalid is not None:
            mining["first_invalid"] = mined.first_invalid
    # A warning when lines are left out: a too-narrow entity regex would otherwise silently train on
    # a fraction of the log.
    left_out = mined.lines_without_entity or mined.unmatched_lines or mined.invalid_lines
    (logger.warning if left_out else logger.info)("logs_mined", **mining)
    mined_lines = mined.lines_total - mined.lines_without_entity - mined.invalid_lines
    if json_fields is None and mined_lines and mined.lines_without_header * 2 > mined_lines:
        # Mined whole, a line's timestamp becomes part of its template (a date no masking rule
        # folds, such as "[2015-12-10"), and tomorrow's lines fit no template: every one UNKNOWN.
        logger.warning(
            "header_regex_unmatched",
            lines_without_header=mined.lines_without_header,
            lines=mined_lines,
            hint="the header regex matched fewer than half of the lines, so they were mined whole, "
            "timestamps included; give --header-regex with a (?P<content>...) group for this format",
        )
    where = _where(data_file)
    if not mined.lines_total:
        raise TrainingError(f"{where}no log lines to train on")
    if mined.invalid_lines == mined.lines_total:
        what = (
            f"is a JSON object with a message in field '{json_fields.message}'"
            if json_fields is not None
            else "names an entity the daemon would keep"
        )
        raise TrainingError(
            f"{where}none of the {mined.lines_total} lines {what}; the first: {mined.first_invalid}"
        )
    if mined.lines_without_entity == mined.lines_total - mined.invalid_lines:
        found = _no_entity_found(json_fields, settings.entity_regex, mined)
        raise TrainingError(f"{where}{found}, so no line belongs to a session")
    sessions_keys = [[mined.keys[i] for i in indices] for indices in mined.sessions.values()]
    text_of = dict(zip(mined.keys, mined.templates, strict=True))
    used = {key for keys in sessions_keys for key in keys}
    vocabulary = Vocabulary([key for key in mined.keys if key in used])
    return _train(
        sessions_keys,
        vocabulary,
        [text_of[key] for key in vocabulary.keys],
        options,
        out_dir,
        labelled,
        "logs",
        settings,
        data_file,
        {"mining": mining, "input": source},
    )


def _no_entity_found(
    fields: JsonFields | None, entity_regex: str | None, tally: LineTally | MinedLogs
) -> str:
    """What the entity rule found in no event, for the error that stops training."""
    lines = tally.lines if isinstance(tally, LineTally) else tally.lines_total
    events = lines - tally.invalid_lines
    if fields is not None and fields.entity is not None:
        return (
            f"the entity field '{fields.entity}' names no entity in any of the {events} events: it is "
            "missing, null or empty, or neither a string nor an integer (a number with a fraction such "
            "as 24200.0, a boolean, an array or an object)"
        )
    if entity_regex is not None and re.compile(entity_regex).groups:
        # '(x)?blk_\d+' matches every line and names no entity: its group 1 never takes part.
        return (
            f"the entity regex '{entity_regex}' named no entity in any of the {events} lines: it matched "
            "none, or its group 1 (which names the entity) was empty or took no part in the match"
        )
    if entity_regex is not None and re.compile(entity_regex).fullmatch(""):
        # '^' or '\d*' match every line, empty where no entity is: an empty match names none.
        return (
            f"the entity regex '{entity_regex}' named no entity in any of the {events} lines: it matched "
            "none, or matched only empty text (it can match nothing at all, as '^' or '\\d*' do)"
        )
    return f"the entity regex '{entity_regex}' matched none of the {events} lines"


def _train(
    sessions_keys: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    templates: list[str],
    options: TrainingOptions,
    out_dir: str | Path,
    labelled: Sequence[LabelledSession] | None,
    input_kind: InputKind,
    parser: ParserSettings | None,
    data_file: str | Path | None,
    extra: dict[str, Any],
) -> ModelMetadata:
    options.validate()
    check_out_dir(out_dir)
    data = _describe_file(data_file)
    where = _where(data_file)
    sessions = [vocabulary.encode(keys) for keys in sessions_keys if len(keys)]
    if not sessions:
        raise TrainingError(
            f"{where}no non-empty training sessions (is the file empty, or only blank lines?)"
        )
    if len(vocabulary) < 2:
        raise TrainingError(
            f"{where}training data holds {len(vocabulary)} distinct event(s); at least 2 are needed"
        )
    if all(len(session) == 1 for session in sessions):
        # Why refused: with no event ever following another, the model learns only which events
        # start and end a session, and flags every real session; this is what a file of one key per
        # line, or an entity regex matching a per-line value (a request id, a time), gives.
        raise TrainingError(
            f"{where}each of the {len(sessions)} training sessions holds a single event, so no event "
            "follows another to learn from: a sequences file holds one session per line (its keys "
            "separated by spaces), and an entity must name a session (a job, a block, a user), not one line"
        )
    labelled_ids = None
    if labelled is not None:
        labelled_ids = LabelledSessions(
            [vocabulary.encode(s.keys) for s in labelled], [s.anomalous for s in labelled]
        )
        unknown = [s for s in labelled if any(vocabulary.id_of(key) == UNKNOWN_ID for key in s.keys)]
        if unknown:
            # Such a session alerts whatever the threshold: when most do (keys named otherwise than in
            # training, "E5" for "5"), the F1 the threshold is chosen by says nothing about it.
            normal_unknown = sum(1 for s in unknown if not s.anomalous)
            logger.warning(
                "labelled_unknown_keys",
                sessions=len(unknown),
                of=len(labelled),
                normal_sessions=normal_unknown,
                first_unknown_key=next(k for k in unknown[0].keys if vocabulary.id_of(k) == UNKNOWN_ID),
                hint="these sessions alert at any threshold; do the labelled CSV's keys name the "
                "training data's events?",
            )
    fit_sessions, holdout = split_holdout(sessions, options.holdout_fraction, options.seed)
    moved_to_fit = holdout_size(len(sessions), options.holdout_fraction) - len(holdout)
    # A labelled set is only read with event keys (sequences): say so only where it can be given.
    or_labelled = ", or a labelled set to choose the threshold on" if input_kind == "sequences" else ""
    if not holdout and labelled_ids is None and moved_to_fit:
        raise TrainingError(
            f"{where}the {moved_to_fit} session(s) held out to calibrate the threshold on each hold an "
            f"event no other training session holds, so they were trained on instead: give more "
            f"sessions{or_labelled}"
        )
    if not holdout and labelled_ids is None:
        needed = sessions_needed_for_holdout(options.holdout_fraction)
        raise TrainingError(
            f"{where}{len(sessions)} training sessions leave none held out to calibrate the threshold on "
            f"(holdout_fraction {options.holdout_fraction:g}): at least {needed} are needed{or_labelled}"
        )
    vocab_size = vocabulary_size(vocabulary)
    logger.info(
        "training_started",
        sessions=len(sessions),
        fit_sessions=len(fit_sessions),
        holdout_sessions=len(holdout),
        vocabulary=len(vocabulary),
        options=dataclasses.asdict(options),
    )
    result = fit(fit_sessions, vocab_size, options)
    calibration = calibrate(
        TorchStepModel(result.network),
        holdout,
        quantile=options.threshold_quantile,
        margin=options.threshold_margin,
        labelled=labelled_ids,
    )
    gate = _count_gate(options, fit_sessions, holdout, calibration, vocab_size)
    transitions = _transition_rule(options, sessions, vocab_size)
    pairs = _cooccurrence_rule(options, sessions, vocab_size)
    length = _length_rule(options, sessions)
    training: dict[str, Any] = {
        "sessions": len(sessions),
        "events": int(sum(len(s) for s in sessions)),
        "fit_sessions": len(fit_sessions),
        "holdout_sessions": len(holdout),
        "holdout_moved_to_fit": moved_to_fit,
        "epochs": options.epochs,
        "seed": options.seed,
        "final_loss": result.final_loss,
        "epoch_losses": list(result.epoch_losses),
        # No wall-clock time here: the same seed and data must give the same model.json, and so the
        # same metadata_sha256 in every alert (the model_written log line says how long fitting took).
        "options": dataclasses.asdict(options),
        "calibration": calibration.summary,
        "count_gate": gate.summary,
        "transition_rule": transitions.summary,
        "cooccurrence_rule": pairs.summary,
        "length_rule": length.summary,
        **data,
        **extra,
    }
    metadata = export_model(
        result.network,
        out_dir,
        input_kind=input_kind,
        vocabulary=vocabulary.keys,
        templates=templates,
        threshold=calibration.threshold,
        threshold_method=calibration.method,
        training=training,
        parser=parser,
        count_gate=gate.gate,
        transition_rule=transitions.rule,
        cooccurrence_rule=pairs.rule,
        length_rule=length.rule,
    )
    logger.info(
        "model_written",
        out_dir=str(out_dir),
        model_version=metadata.model_version,
        threshold=round(calibration.threshold, 4),
        threshold_method=calibration.method,
        count_gate=None if gate.gate is None else round(gate.gate.threshold, 4),
        final_loss=round(result.final_loss, 6),
        fit_seconds=round(result.seconds, 2),
    )
    return metadata


def _count_gate(
    options: TrainingOptions,
    fit_sessions: Sequence[np.ndarray],
    holdout: Sequence[np.ndarray],
    calibration: Calibration,
    vocab_size: int,
) -> GateDecision:
    """The count gate learned from the training data, or why there is none."""
    if not options.count_gate:
        return GateDecision(None, {"off": "turned off (TrainingOptions.count_gate, --no-count-gate)"})
    decision = learn_count_gate(
        fit_sessions, holdout, calibration.summary.get("holdout_max_score"), vocab_size
    )
    logger.info("count_gate", learned=decision.gate is not None, **decision.summary)
    return decision


MAX_TRANSITION_RULE_VOCABULARY = 8_192
"""Above this many output classes the transition rule is declined: its [V, V] matrix (256 MiB here)."""


def _transition_rule(
    options: TrainingOptions, sessions: Sequence[np.ndarray], vocab_size: int
) -> TransitionDecision:
    """The transition rule learned from every training session, or why there is none.

    Every session, held-out ones included: a transition the holdout alone shows is still normal,
    and the threshold calibrated on the holdout is then unaffected by the rule.
    """
    if not options.transition_rule:
        return TransitionDecision(
            None, {"off": "turned off (TrainingOptions.transition_rule, --no-transition-rule)"}
        )
    if vocab_size > MAX_TRANSITION_RULE_VOCABULARY:
        # The graph carries the rule as a dense [V, V] float32 matrix: 100 MB at 5,000 events, past
        # protobuf's 2 GiB limit (an export traceback after the whole training) from about 23,000.
        return TransitionDecision(
            None,
            {
                "off": f"{vocab_size - FIRST_EVENT_ID} events: the graph's dense transition matrix would "
                f"take {vocab_size * vocab_size * 4 / 2**20:,.0f} MiB; at most "
                f"{MAX_TRANSITION_RULE_VOCABULARY - FIRST_EVENT_ID:,} events carry the rule"
            },
        )
    decision = learn_transition_rule(sessions)
    logger.info("transition_rule", learned=decision.rule is not None, **decision.summary)
    return decision


def _cooccurrence_rule(
    options: TrainingOptions, sessions: Sequence[np.ndarray], vocab_size: int
) -> CooccurrenceDecision:
    """The co-occurrence rule learned from every training session, or why there is none (every
    session, as for the transition rule)."""
    if not options.cooccurrence_rule:
        return CooccurrenceDecision(
            None, {"off": "turned off (TrainingOptions.cooccurrence_rule, --no-cooccurrence-rule)"}
        )
    decision = learn_cooccurrence_rule(sessions, vocab_size)
    logger.info("cooccurrence_rule", learned=decision.rule is not None, **decision.summary)
    return decision


def _length_rule(options: TrainingOptions, sessions: Sequence[np.ndarray]) -> LengthDecision:
    """The length rule learned from every training session, or why there is none (every session,
    as for the transition rule)."""
    if not options.length_rule:
        return LengthDecision(None, {"off": "turned off (TrainingOptions.length_rule, --no-length-rule)"})
    if options.num_layers < 2:
        return LengthDecision(
            None, {"off": "a one-layer model has no state unit to count events in (--layers 2 or more)"}
        )
    decision = learn_length_rule(sessions)
    logger.info("length_rule", learned=decision.rule is not None, **decision.summary)
    return decision


def check_out_dir(out_dir: str | Path) -> None:
    """TrainingError before any training when the model directory could not be written."""
    problem = out_dir_problem(out_dir)
    if problem is not None:
        raise TrainingError(f"{out_dir}: {problem}")


def vocabulary_size(vocabulary: Vocabulary) -> int:
    """Output classes of a network for ``vocabulary``: reserved tokens plus its events."""
    return FIRST_EVENT_ID + len(vocabulary)


def _where(data_file: str | Path | None) -> str:
    """``"FILE: "`` to start an error about the training data with the file it came from, if known."""
    return "" if data_file is None else f"{data_file}: "


HASH_CHUNK_BYTES = 1 << 20


def _describe_file(path: str | Path | None) -> dict[str, str]:
    """The training file's name and sha256, read in chunks (never a second copy of a large log).

    The file is read again for this, so a pipe (``--logs <(zcat app.log.gz)``), which the training
    has already read to its end, has no digest to give: its sha256 would be that of nothing.  Such
    a source is named, with why it has no digest.
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        return {"data_file": path.name, "data_sha256_missing": "not a regular file (a pipe?): read once"}
    digest = hashlib.sha256()
    try:
        with path.open("rb") as data:
            while chunk := data.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read training data file: {exc}") from exc
    return {"data_file": path.name, "data_sha256": digest.hexdigest()}
