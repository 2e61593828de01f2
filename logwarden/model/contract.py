"""What a model directory holds and how the ONNX graph is called: the trainer/scorer contract.

A model directory has ``model.onnx`` and ``model.json``.  The ONNX graph is one stateful
step function over event ids, used unchanged for a single event per entity (T=1) and for
whole sessions (T>1):

    inputs   event_ids  int64   [T, B]
             h0, c0     float32 [L, B, H]   state *before* the first of the T events
    outputs  log_probs  float32 [T, B, V]   log P(next event = v) before event t is consumed
             hn, cn     float32 [L, B, H]   state after all T events

so the anomaly score of event t is ``-log_probs[t, b, event_ids[t, b]]`` (surprise in nats),
computed from the state that precedes it.  A fresh entity starts from the state reached by
feeding ``START_ID`` to zero state; an ended session is scored by feeding ``END_ID``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from logwarden.errors import shown
from logwarden.model.cooccurrence_rule import CooccurrenceRule
from logwarden.model.count_gate import CountGate
from logwarden.model.length_rule import LengthRule
from logwarden.model.tokens import END_ID as END_ID  # re-exported: the contract names every reserved id
from logwarden.model.tokens import FIRST_EVENT_ID as FIRST_EVENT_ID
from logwarden.model.tokens import RESERVED_TOKENS as RESERVED_TOKENS
from logwarden.model.tokens import START_ID as START_ID
from logwarden.model.tokens import UNKNOWN_ID as UNKNOWN_ID
from logwarden.model.transition_rule import TransitionRule

FORMAT_VERSION = 5
"""Version 2 added the optional ``count_gate``, version 3 the optional ``transition_rule`` (whose
graph has a state one unit wider), version 4 the optional ``cooccurrence_rule`` and the transition
rule's ``boundaries`` and ``inner`` (which kinds it checks), version 5 the optional ``length_rule``;
an older logwarden refuses such a model rather than score it wrongly, while models of earlier
versions still load."""
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3, 4, 5)
ONNX_FILE = "model.onnx"
METADATA_FILE = "model.json"
METADATA_DIGEST_KEY = "metadata_sha256"
"""Key of ``model.json`` holding the sha256 of the rest of it (``metadata_digest``)."""

INPUT_EVENT_IDS = "event_ids"
INPUT_H = "h0"
INPUT_C = "c0"
OUTPUT_LOG_PROBS = "log_probs"
OUTPUT_H = "hn"
OUTPUT_C = "cn"

InputKind = Literal["sequences", "logs"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ParserSettings:
    """How raw lines become (entity, template) pairs; stored with a model trained on raw logs."""

    header_regex: str
    entity_regex: str | None
    """None for a model trained on JSON events grouped by a field: its entity rule is the input's."""
    masking: tuple[tuple[str, str], ...]
    collapse_repeated_masks: bool = False
    """Whether a run of one mask token ("<BLK> <BLK> <BLK>", a list of block ids) is one token, so a
    list of any length fits one template.  Absent (false) in models trained before it existed,
    whose templates were mined without it."""


@dataclass(frozen=True)
class ModelMetadata:
    """Everything ``model.json`` records, besides the graph itself.

    ``vocabulary[i]`` is the event key of template id ``FIRST_EVENT_ID + i`` (for pre-parsed
    sequences the key as written, e.g. ``"22"``; for raw logs ``"T<i>"``) and ``templates[i]``
    its template text.  ``threshold`` is in the same unit as the score: nats of surprise.
    """

    format_version: int
    input_kind: InputKind
    vocabulary: tuple[str, ...]
    templates: tuple[str, ...]
    embedding_dim: int
    hidden_size: int
    num_layers: int
    threshold: float
    threshold_method: str
    onnx_sha256: str
    parser: ParserSettings | None = None
    training: dict[str, Any] = field(default_factory=dict)
    count_gate: CountGate | None = None
    """The session-level count check (``count_gate.py``); None when training declined it, and in
    models of format version 1."""
    transition_rule: TransitionRule | None = None
    """The transitions of the training sessions, whose absence the graph penalises
    (``transition_rule.py``); None when training declined it, and in models before format version 3."""
    cooccurrence_rule: CooccurrenceRule | None = None
    """The pairs of events the training sessions hold together, whose absence the graph penalises
    (``cooccurrence_rule.py``); None when training declined it, and in models before format version 4."""
    length_rule: LengthRule | None = None
    """The fewest events a training session held; the graph penalises END before that many
    (``length_rule.py``); None when training declined it, and in models before format version 5."""

    @property
    def has_rules(self) -> bool:
        """Whether the graph carries the novelty rules' unit in its state (``train/rules_graph.py``)."""
        return (
            self.transition_rule is not None
            or self.cooccurrence_rule is not None
            or self.length_rule is not None
        )

    def describe_rules(self) -> dict[str, dict[str, Any] | None]:
        """Each novelty rule's summary (``describe()``), None for a rule the model lacks: what
        ``run --check`` and the daemon's ``started`` line report, under ``model.json``'s keys."""
        rules = (
            ("transition_rule", self.transition_rule),
            ("cooccurrence_rule", self.cooccurrence_rule),
            ("length_rule", self.length_rule),
        )
        return {name: None if rule is None else dict(rule.describe()) for name, rule in rules}

    @property
    def state_size(self) -> int:
        """Width of the graph's ``h`` and ``c``: ``hidden_size``, plus the rules' unit when it has rules."""
        return self.hidden_size + (1 if self.has_rules else 0)

    @property
    def vocab_size(self) -> int:
        """Number of output classes: reserved tokens plus known events."""
        return FIRST_EVENT_ID + len(self.vocabulary)

    @property
    def model_version(self) -> str:
        """Short identifier quoted in alerts: format version and the ONNX hash prefix."""
        return f"v{self.format_version}-{self.onnx_sha256[:12]}"

    @functools.cached_property
    def metadata_sha256(self) -> str:
        """The digest of this metadata's ``model.json`` content (``metadata_digest``).

        Why beside the graph's sha256: two models with the same graph can differ in what decides an
        alert (threshold, count gate, templates, parser), e.g. a retrain with ``--labelled``.
        """
        return metadata_digest(json.loads(self.to_json()))

    def identity(self) -> dict[str, str]:
        """What alerts and the ``started`` line quote to name the model: version and both digests."""
        return {
            "version": self.model_version,
            "sha256": self.onnx_sha256,
            "metadata_sha256": self.metadata_sha256,
        }

    def token_name(self, event_id: int) -> str:
        """Human-readable name of an output class (reserved token or event key)."""
        if event_id < FIRST_EVENT_ID:
            return RESERVED_TOKENS[event_id]
        return self.vocabulary[event_id - FIRST_EVENT_ID]

    def template_of(self, event_id: int) -> str:
        """Template text of an output class, or the reserved token's name."""
        if event_id < FIRST_EVENT_ID:
            return RESERVED_TOKENS[event_id]
        return self.templates[event_id - FIRST_EVENT_ID]

    def to_json(self) -> str:
        """Serialise as stable, human-readable JSON, with the digest of its content."""
        # Through JSON and back first, so the digest covers what a loader parses (tuples become
        # lists, non-string keys strings) and both sides sort the same keys.
        content = dataclasses.asdict(self)
        content["count_gate"] = None if self.count_gate is None else self.count_gate.to_dict()
        content["transition_rule"] = None if self.transition_rule is None else self.transition_rule.to_dict()
        content["cooccurrence_rule"] = (
            None if self.cooccurrence_rule is None else self.cooccurrence_rule.to_dict()
        )
        content["length_rule"] = None if self.length_rule is None else self.length_rule.to_dict()
        content = json.loads(json.dumps(content))
        content[METADATA_DIGEST_KEY] = metadata_digest(content)
        return json.dumps(content, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        """Build from parsed JSON: KeyError naming a missing key (``parser.masking`` for a nested one),
        ValueError naming the key of a bad value."""
        parser_raw = raw.get("parser")
        parser = None
        if parser_raw is not None:
            parser = _parser_settings(parser_raw)
        input_kind = raw["input_kind"]
        if input_kind not in ("sequences", "logs"):
            raise ValueError(f"input_kind must be 'sequences' or 'logs', got {shown(input_kind)}")
        if input_kind == "logs" and parser is None:
            # Without its header, entity and masking rules a raw-log model cannot turn a line into an
            # event; scoring would later blame the input ("trained on pre-parsed sequences").
            raise ValueError("parser is missing: a model of input_kind 'logs' needs its parser settings")
        vocabulary = _strings(raw, "vocabulary")
        templates = _strings(raw, "templates")
        if len(vocabulary) != len(templates):
            raise ValueError("vocabulary and templates differ in length")
        repeated = [key for key, count in Counter(vocabulary).items() if count > 1]
        if repeated:
            raise ValueError(
                f"vocabulary lists {shown(repeated[0])} more than once; event keys must be unique"
            )
        training = raw.get("training", {})
        if not isinstance(training, dict):
            raise ValueError(f"training must be an object, got {shown(training)}")
        num_layers = _positive_int(raw, "num_layers")
        length_rule = None if raw.get("length_rule") is None else LengthRule.from_dict(raw["length_rule"])
        if length_rule is not None and num_layers < 2:
            raise ValueError(
                f"length_rule needs num_layers of at least 2 (its count travels in the second "
                f"layer's state), got {num_layers}"
            )
        return cls(
            format_version=_positive_int(raw, "format_version"),
            input_kind=input_kind,
            vocabulary=vocabulary,
            templates=templates,
            embedding_dim=_positive_int(raw, "embedding_dim"),
            hidden_size=_positive_int(raw, "hidden_size"),
            num_layers=num_layers,
            threshold=_finite_number(raw, "threshold"),
            threshold_method=_string(raw, "threshold_method"),
            onnx_sha256=_sha256_hex(raw, "onnx_sha256"),
            parser=parser,
            training=dict(training),
            count_gate=None if raw.get("count_gate") is None else CountGate.from_dict(raw["count_gate"]),
            transition_rule=None
            if raw.get("transition_rule") is None
            else TransitionRule.from_dict(raw["transition_rule"], FIRST_EVENT_ID + len(vocabulary)),
            cooccurrence_rule=None
            if raw.get("cooccurrence_rule") is None
            else CooccurrenceRule.from_dict(raw["cooccurrence_rule"], FIRST_EVENT_ID + len(vocabulary)),
            length_rule=length_rule,
        )


def metadata_digest(content: dict[str, Any]) -> str:
    """sha256 of ``model.json``'s content without its digest key, as canonical JSON.

    Why: the ONNX graph's sha256 is in ``model.json``, but nothing covered ``model.json`` itself, so
    an edited vocabulary or template list (keys swapped, a line lost) would load and score events
    as other events without a word.  Canonical JSON (sorted keys, no spaces) makes the digest the
    same for the dict written at export and the one parsed at load.
    """
    canonical = json.dumps(
        {key: value for key, value in content.items() if key != METADATA_DIGEST_KEY},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parser_settings(raw: object) -> ParserSettings:
    if not isinstance(raw, dict):
        raise ValueError(f"parser must be an object, got {shown(raw)}")
    masking = _required(raw, "masking", "parser.")
    if not isinstance(masking, list) or not all(
        isinstance(rule, list) and len(rule) == 2 and all(isinstance(part, str) for part in rule)
        for rule in masking
    ):
        raise ValueError(f"parser.masking must be a list of [name, regex] string pairs, got {shown(masking)}")
    collapse = raw.get("collapse_repeated_masks", False)
    if not isinstance(collapse, bool):
        raise ValueError(f"parser.collapse_repeated_masks must be true or false, got {shown(collapse)}")
    return ParserSettings(
        header_regex=_string(raw, "header_regex", "parser."),
        entity_regex=_optional_string(raw, "entity_regex", "parser."),
        masking=tuple((name, pattern) for name, pattern in masking),
        collapse_repeated_masks=collapse,
    )


def _required(raw: dict[str, Any], key: str, prefix: str = "") -> Any:
    """``raw[key]``; the KeyError of a missing key names its dotted path (``parser.masking``)."""
    try:
        return raw[key]
    except KeyError:
        raise KeyError(f"{prefix}{key}") from None


def _string(raw: dict[str, Any], key: str, prefix: str = "") -> str:
    value = _required(raw, key, prefix)
    if not isinstance(value, str):
        raise ValueError(f"{prefix}{key} must be a string, got {shown(value)}")
    return value


def _optional_string(raw: dict[str, Any], key: str, prefix: str = "") -> str | None:
    return None if _required(raw, key, prefix) is None else _string(raw, key, prefix)


def _sha256_hex(raw: dict[str, Any], key: str) -> str:
    """A lowercase hex sha256, as ``sha256_hex`` writes it; refused here rather than quoted whole in a
    checksum mismatch (a 100 kB value would make an unreadable error)."""
    value = _string(raw, key)
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{key} must be 64 lowercase hex digits (a sha256), got {shown(value)}")
    return value


def _strings(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    """A JSON list of strings; any other value is refused (``str()`` would split a string into characters)."""
    values = raw[key]
    if not isinstance(values, list):
        raise ValueError(f"{key} must be a list of strings, got {shown(values)}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"{key}[{i}] must be a string, got {shown(value)}")
    return tuple(values)


def _positive_int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {shown(value)}")
    return value


def _finite_number(raw: dict[str, Any], key: str) -> float:
    """A JSON number that is finite as a float: NaN, Infinity and 1e999 (read as infinity) are refused."""
    value = raw[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the range of a float
            number = math.inf
        if math.isfinite(number):
            return number
    raise ValueError(f"{key} must be a finite number, got {shown(value)}")
