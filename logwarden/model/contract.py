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
import json
from dataclasses import dataclass, field
from typing import Any, Literal

FORMAT_VERSION = 1
ONNX_FILE = "model.onnx"
METADATA_FILE = "model.json"

INPUT_EVENT_IDS = "event_ids"
INPUT_H = "h0"
INPUT_C = "c0"
OUTPUT_LOG_PROBS = "log_probs"
OUTPUT_H = "hn"
OUTPUT_C = "cn"

START_ID = 0
END_ID = 1
UNKNOWN_ID = 2
FIRST_EVENT_ID = 3
RESERVED_TOKENS = ("<START>", "<END>", "<UNKNOWN>")

InputKind = Literal["sequences", "logs"]


@dataclass(frozen=True)
class ParserSettings:
    """How raw lines become (entity, template) pairs; stored with a model trained on raw logs."""

    header_regex: str
    entity_regex: str
    masking: tuple[tuple[str, str], ...]


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

    @property
    def vocab_size(self) -> int:
        """Number of output classes: reserved tokens plus known events."""
        return FIRST_EVENT_ID + len(self.vocabulary)

    @property
    def model_version(self) -> str:
        """Short identifier quoted in alerts: format version and the ONNX hash prefix."""
        return f"v{self.format_version}-{self.onnx_sha256[:12]}"

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
        """Serialise as stable, human-readable JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        """Build from parsed JSON; raises KeyError/TypeError/ValueError on a malformed document."""
        parser_raw = raw.get("parser")
        parser = None
        if parser_raw is not None:
            parser = ParserSettings(
                header_regex=str(parser_raw["header_regex"]),
                entity_regex=str(parser_raw["entity_regex"]),
                masking=tuple((str(name), str(pattern)) for name, pattern in parser_raw["masking"]),
            )
        input_kind = raw["input_kind"]
        if input_kind not in ("sequences", "logs"):
            raise ValueError(f"input_kind must be 'sequences' or 'logs', got {input_kind!r}")
        vocabulary = tuple(str(v) for v in raw["vocabulary"])
        templates = tuple(str(t) for t in raw["templates"])
        if len(vocabulary) != len(templates):
            raise ValueError("vocabulary and templates differ in length")
        return cls(
            format_version=int(raw["format_version"]),
            input_kind=input_kind,
            vocabulary=vocabulary,
            templates=templates,
            embedding_dim=int(raw["embedding_dim"]),
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_layers"]),
            threshold=float(raw["threshold"]),
            threshold_method=str(raw["threshold_method"]),
            onnx_sha256=str(raw["onnx_sha256"]),
            parser=parser,
            training=dict(raw.get("training", {})),
        )
