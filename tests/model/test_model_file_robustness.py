"""Model file robustness: every malformed model directory is a ModelLoadError naming the file and the field.

A seeded, systematic sweep over one real exported model: keys deleted, values of the wrong type,
list entries and lengths, metadata that disagrees with the graph, bad parser regexes, unreadable
files and foreign graphs.  Each case either loads as an equivalent model (the reason is written
next to it) or raises ModelLoadError whose message names the file and the field; any other
exception fails the sweep.  Metadata edits recompute ``metadata_sha256`` (and graph swaps the
``onnx_sha256``) so that the validators behind the checksums are reached.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
import yaml

from logwarden.cli import EXIT_MODEL, main
from logwarden.errors import ModelLoadError
from logwarden.events.header import DEFAULT_HEADER_REGEX, HeaderStripper
from logwarden.events.masking import DEFAULT_MASKING
from logwarden.events.templates import TemplateMatcher
from logwarden.model.bundle import load_bundle, sha256_hex
from logwarden.model.contract import (
    INPUT_EVENT_IDS,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    ONNX_FILE,
    OUTPUT_H,
    START_ID,
    ModelMetadata,
    ParserSettings,
    metadata_digest,
)
from logwarden.model.runtime import OnnxStepModel
from logwarden.train.export import onnx_bytes
from logwarden.train.network import NextEventLSTM

SEED = 20_241_207
"""Seeds the random byte damage; the systematic cases need no randomness."""

MAX_MESSAGE_CHARS = 1_000
"""An error an operator reads in a terminal or a journal: a 100 kB value must not be quoted whole."""

ENTITY_REGEX = r"job_\d+"
VOCABULARY = ("T0", "T1", "T2", "T3")
TEMPLATES = (
    "job started with <NUM> tasks",
    "reading block <BLK> from <IP>",
    "job <*> finished",
    "error <HEX> in step <NUM>",
)
PARSER_KEYS = ("header_regex", "entity_regex", "masking", "collapse_repeated_masks")
WRONG_VALUES: tuple[tuple[str, Any], ...] = (
    ("null", None),
    ("true", True),
    ("minus_one", -1),
    ("zero", 0),
    ("one_and_a_half", 1.5),
    ("x", "x"),
    ("empty_list", []),
    ("empty_object", {}),
    ("huge_int", 10**40),
    ("long_string", "x" * 100_000),
    ("nan", math.nan),  # json.dumps writes the bare token NaN, which json.loads reads back
)
DELETED = "deleted"


@dataclass(frozen=True)
class Refused:
    """Loading must raise ModelLoadError whose message holds every one of ``names`` (file, field)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    """Loading must succeed with metadata ``expected(original)``; ``because`` says why that is right."""

    because: str
    expected: Callable[[ModelMetadata], ModelMetadata] = lambda metadata: metadata


Outcome = Refused | Accepted
Mutation = Callable[[Path], None]


@dataclass(frozen=True)
class LogsModel:
    """The exported test graph described as a raw-log model (it has every key ``model.json`` can have)."""

    directory: Path
    metadata: ModelMetadata
    initial_h: np.ndarray


@pytest.fixture(scope="session")
def logs_model(
    exported_model: tuple[Path, ModelMetadata], tmp_path_factory: pytest.TempPathFactory
) -> LogsModel:
    """The exported model with a raw-log parser, templates and a training record, written as the exporter
    writes ``model.json`` (``to_json``): the graph is the same, so no second network is trained."""
    source, exported = exported_model
    directory = tmp_path_factory.mktemp("logs-model") / "model"
    shutil.copytree(source, directory)
    metadata = dataclasses.replace(
        exported,
        input_kind="logs",
        vocabulary=VOCABULARY,
        templates=TEMPLATES,
        parser=ParserSettings(DEFAULT_HEADER_REGEX, ENTITY_REGEX, DEFAULT_MASKING, True),
        training={"input": {"format": "raw"}, "seed": 3},
    )
    (directory / METADATA_FILE).write_text(metadata.to_json() + "\n", encoding="utf-8")
    initial_h = OnnxStepModel.load(load_bundle(directory)).initial_h
    return LogsModel(directory, metadata, initial_h)


def _rename_graph_value(graph: bytes, old: str, new: str) -> bytes:
    """The graph with input or output ``old`` called ``new`` everywhere it is referenced."""
    model = onnx.load_from_string(graph)
    for value in [*model.graph.input, *model.graph.output]:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                if name == old:
                    names[i] = new
    return model.SerializeToString()


def _with_input_type(graph: bytes, name: str, elem_type: int) -> bytes:
    """The graph with input ``name`` declared of another element type."""
    model = onnx.load_from_string(graph)
    for value in model.graph.input:
        if value.name == name:
            value.type.tensor_type.elem_type = elem_type
    return model.SerializeToString()


def _with_symbolic_sizes(graph: bytes) -> bytes:
    """The graph with every fixed dimension of its inputs and outputs declared symbolic (``d0``, ``d2``):
    a valid graph whose sizes only running it reveals."""
    model = onnx.load_from_string(graph)
    for value in [*model.graph.input, *model.graph.output]:
        for position, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                dim.dim_param = f"d{position}"
    return model.SerializeToString()


@pytest.fixture(scope="session")
def foreign_graphs(logs_model: LogsModel) -> dict[str, bytes]:
    """Valid ONNX graphs that do not fit the test model's metadata, by name."""
    own = (logs_model.directory / ONNX_FILE).read_bytes()
    meta = logs_model.metadata

    def exported(vocab_size: int, hidden_size: int, num_layers: int) -> bytes:
        torch.manual_seed(SEED)
        return onnx_bytes(NextEventLSTM(vocab_size, meta.embedding_dim, hidden_size, num_layers))

    return {
        "more_events": exported(meta.vocab_size + 2, meta.hidden_size, meta.num_layers),
        "wider_state": exported(meta.vocab_size, meta.hidden_size + 3, meta.num_layers),
        "fewer_layers": exported(meta.vocab_size, meta.hidden_size, meta.num_layers - 1),
        "input_renamed": _rename_graph_value(own, INPUT_EVENT_IDS, "ids"),
        "output_renamed": _rename_graph_value(own, OUTPUT_H, "h_next"),
        "int32_event_ids": _with_input_type(own, INPUT_EVENT_IDS, onnx.TensorProto.INT32),
        "float64_state": _with_input_type(own, "h0", onnx.TensorProto.DOUBLE),
        "symbolic_sizes": _with_symbolic_sizes(own),
    }


def _read_raw(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))


def _write_raw(model_dir: Path, raw: object, *, resign: bool = True) -> None:
    """Write ``raw`` as model.json; ``resign``: record the digest of the new content, as an exporter would."""
    if resign and isinstance(raw, dict):
        raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    (model_dir / METADATA_FILE).write_text(json.dumps(raw), encoding="utf-8")


def _edit(change: Callable[[dict[str, Any]], None], *, resign: bool = True) -> Mutation:
    """A mutation applying ``change`` to the parsed model.json."""

    def mutate(model_dir: Path) -> None:
        raw = _read_raw(model_dir)
        change(raw)
        _write_raw(model_dir, raw, resign=resign)

    return mutate


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting the value at ``path`` (or deleting it, for ``DELETED``)."""

    def change(raw: dict[str, Any]) -> None:
        parent: Any = raw
        for step in path[:-1]:
            parent = parent[step]
        if value is DELETED:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(value)

    return change


def _replace_onnx(data: bytes | Callable[[bytes], bytes], *, resign: bool = True) -> Mutation:
    """A mutation replacing model.onnx; ``resign``: record its sha256 in model.json (and re-sign that)."""

    def mutate(model_dir: Path) -> None:
        path = model_dir / ONNX_FILE
        new = data(path.read_bytes()) if callable(data) else data
        path.write_bytes(new)
        if resign:
            raw = _read_raw(model_dir)
            raw["onnx_sha256"] = sha256_hex(new)
            _write_raw(model_dir, raw)

    return mutate


def _write_bytes(name: str, data: bytes) -> Mutation:
    return lambda model_dir: (model_dir / name).write_bytes(data)


def _make_directory(name: str) -> Mutation:
    def mutate(model_dir: Path) -> None:
        (model_dir / name).unlink()
        (model_dir / name).mkdir()

    return mutate


def _delete(name: str) -> Mutation:
    return lambda model_dir: (model_dir / name).unlink()


def _replaced(**changes: Any) -> Callable[[ModelMetadata], ModelMetadata]:
    return lambda metadata: dataclasses.replace(metadata, **changes)


def _parser_replaced(**changes: Any) -> Callable[[ModelMetadata], ModelMetadata]:
    def expected(metadata: ModelMetadata) -> ModelMetadata:
        assert metadata.parser is not None
        return dataclasses.replace(metadata, parser=dataclasses.replace(metadata.parser, **changes))

    return expected


_THRESHOLD_IS_POLICY = (
    "any finite threshold is a policy choice, as the daemon's model.threshold and --threshold accept; "
    "surprise is never negative, so a threshold at or below 0 flags every event, a huge one none"
)
_FREE_TEXT_LABEL = "threshold_method is a free-text label of how the threshold was chosen, never parsed"
_EMBEDDING_IS_INTERNAL = (
    "embedding_dim describes a weight inside the graph that no input, output or state exposes; "
    "onnxruntime cannot read it without the onnx package (a training-only dependency) and no score "
    "depends on it"
)
_TRAINING_IS_A_RECORD = "training is a free-form record of the run; models from sequence files record {}"
_NO_GATE = (
    "a model whose training declined the count gate, or of format version 1, has none: sessions are "
    "then judged by the threshold alone"
)
_NO_RULE = (
    "a model whose training declined the transition rule, or of a format version before 3, has none: its "
    "graph's state is hidden_size wide (with a rule it is one wider, and the graph check refuses a "
    "model.json that drops the rule)"
)
_NO_PAIRS = (
    "a model whose training declined the co-occurrence rule, or of a format version before 4, has none "
    "(with a rule the state is one wider, and the graph check refuses a model.json that drops it)"
)
_NO_LENGTH = (
    "a model whose training declined the length rule, or of a format version before 5, has none "
    "(with a rule the state is one wider, and the graph check refuses a model.json that drops every rule)"
)
_ANY_VALID_REGEX = "any valid regex is an entity rule a model may be trained with"
_ANY_EVENT_KEY = "any unique string is a valid event key; nothing ties a key's spelling to the graph"
_ANY_TEMPLATE = "any string is a valid template: it is matched, as a model trained on such lines would"

ACCEPTED_TOP_LEVEL: dict[tuple[str, str], Accepted] = {
    ("count_gate", DELETED): Accepted(_NO_GATE, _replaced(count_gate=None)),
    ("count_gate", "null"): Accepted(_NO_GATE, _replaced(count_gate=None)),
    ("transition_rule", DELETED): Accepted(_NO_RULE, _replaced(transition_rule=None)),
    ("transition_rule", "null"): Accepted(_NO_RULE, _replaced(transition_rule=None)),
    ("cooccurrence_rule", DELETED): Accepted(_NO_PAIRS, _replaced(cooccurrence_rule=None)),
    ("cooccurrence_rule", "null"): Accepted(_NO_PAIRS, _replaced(cooccurrence_rule=None)),
    ("length_rule", DELETED): Accepted(_NO_LENGTH, _replaced(length_rule=None)),
    ("length_rule", "null"): Accepted(_NO_LENGTH, _replaced(length_rule=None)),
    ("training", DELETED): Accepted(_TRAINING_IS_A_RECORD, _replaced(training={})),
    ("training", "empty_object"): Accepted(_TRAINING_IS_A_RECORD, _replaced(training={})),
    ("threshold", "minus_one"): Accepted(_THRESHOLD_IS_POLICY, _replaced(threshold=-1.0)),
    ("threshold", "zero"): Accepted(_THRESHOLD_IS_POLICY, _replaced(threshold=0.0)),
    ("threshold", "one_and_a_half"): Accepted(_THRESHOLD_IS_POLICY, _replaced(threshold=1.5)),
    ("threshold", "huge_int"): Accepted(_THRESHOLD_IS_POLICY, _replaced(threshold=1e40)),
    ("threshold_method", "x"): Accepted(_FREE_TEXT_LABEL, _replaced(threshold_method="x")),
    ("threshold_method", "long_string"): Accepted(
        _FREE_TEXT_LABEL, _replaced(threshold_method="x" * 100_000)
    ),
    ("embedding_dim", "huge_int"): Accepted(_EMBEDDING_IS_INTERNAL, _replaced(embedding_dim=10**40)),
}

ACCEPTED_PARSER: dict[tuple[str, str], Accepted] = {
    ("collapse_repeated_masks", DELETED): Accepted(
        "models trained before the option existed have none: their templates were mined without it",
        _parser_replaced(collapse_repeated_masks=False),
    ),
    ("collapse_repeated_masks", "true"): Accepted("true is the model's own value"),
    ("entity_regex", "null"): Accepted(
        "a model trained on JSON events grouped by a field has no entity regex",
        _parser_replaced(entity_regex=None),
    ),
    ("entity_regex", "x"): Accepted(_ANY_VALID_REGEX, _parser_replaced(entity_regex="x")),
    ("entity_regex", "long_string"): Accepted(_ANY_VALID_REGEX, _parser_replaced(entity_regex="x" * 100_000)),
    ("masking", "empty_list"): Accepted(
        "a model trained without masking rules stores an empty list", _parser_replaced(masking=())
    ),
}

TOP_LEVEL_KEYS = (
    "cooccurrence_rule",
    "count_gate",
    "embedding_dim",
    "format_version",
    "hidden_size",
    "input_kind",
    "length_rule",
    METADATA_DIGEST_KEY,
    "num_layers",
    "onnx_sha256",
    "parser",
    "templates",
    "threshold",
    "threshold_method",
    "training",
    "transition_rule",
    "vocabulary",
)


def _top_level_cases() -> list[Any]:
    cases = []
    for key in TOP_LEVEL_KEYS:
        # The digest itself is never re-signed: a new value must be checked against the content.
        resign = key != METADATA_DIGEST_KEY
        for value_name, value in ((DELETED, DELETED), *WRONG_VALUES):
            outcome = ACCEPTED_TOP_LEVEL.get((key, value_name), Refused((METADATA_FILE, key)))
            mutation = _edit(_set((key,), value), resign=resign)
            cases.append(pytest.param(mutation, outcome, id=f"{key}-{value_name}"))
    return cases


def _parser_cases() -> list[Any]:
    cases = []
    for key in PARSER_KEYS:
        for value_name, value in ((DELETED, DELETED), *WRONG_VALUES):
            outcome = ACCEPTED_PARSER.get((key, value_name), Refused((METADATA_FILE, f"parser.{key}")))
            cases.append(pytest.param(_edit(_set(("parser", key), value)), outcome, id=f"{key}-{value_name}"))
    return cases


def _list_entry_cases() -> list[Any]:
    cases = []
    for key, accepted_because in (("vocabulary", _ANY_EVENT_KEY), ("templates", _ANY_TEMPLATE)):
        for value_name, value in WRONG_VALUES:
            outcome: Outcome = Refused((METADATA_FILE, f"{key}[1]"))
            if isinstance(value, str):
                outcome = Accepted(accepted_because, _list_entry_replaced(key, 1, value))
            cases.append(pytest.param(_edit(_set((key, 1), value)), outcome, id=f"{key}[1]-{value_name}"))
    return cases


def _list_entry_replaced(key: str, index: int, value: str) -> Callable[[ModelMetadata], ModelMetadata]:
    def expected(metadata: ModelMetadata) -> ModelMetadata:
        entries = list(getattr(metadata, key))
        entries[index] = value
        return dataclasses.replace(metadata, **{key: tuple(entries)})

    return expected


def _append_both(raw: dict[str, Any]) -> None:
    raw["vocabulary"].append("T9")
    raw["templates"].append("one more event")


def _drop_last_of_both(raw: dict[str, Any]) -> None:
    del raw["vocabulary"][-1]
    del raw["templates"][-1]


def _empty_both(raw: dict[str, Any]) -> None:
    raw["vocabulary"], raw["templates"] = [], []


def _shift(key: str, delta: int) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw[key] += delta

    return change


def _scale(key: str, factor: int) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw[key] *= factor

    return change


def _duplicate_first_key(raw: dict[str, Any]) -> None:
    raw["vocabulary"][1] = raw["vocabulary"][0]


LIST_SHAPE_CASES = [
    pytest.param(
        _edit(_set(("vocabulary",), [*VOCABULARY, "T9"])), ("vocabulary", "templates"), id="vocab-longer"
    ),
    pytest.param(
        _edit(_set(("templates",), list(TEMPLATES[:-1]))), ("vocabulary", "templates"), id="tpl-shorter"
    ),
    pytest.param(
        _edit(_set(("vocabulary",), []), resign=True), ("vocabulary", "templates"), id="vocab-empty"
    ),
    pytest.param(_edit(_duplicate_first_key), ("vocabulary", "'T0'"), id="vocab-duplicate-key"),
]

GRAPH_DISAGREEMENT_CASES = [
    pytest.param(_edit(_shift("hidden_size", 1)), ("hidden_size",), id="hidden_size-plus-1"),
    pytest.param(_edit(_shift("hidden_size", -1)), ("hidden_size",), id="hidden_size-minus-1"),
    pytest.param(_edit(_scale("hidden_size", 10**9)), ("hidden_size",), id="hidden_size-times-1e9"),
    pytest.param(_edit(_shift("num_layers", 1)), ("num_layers",), id="num_layers-plus-1"),
    pytest.param(_edit(_shift("num_layers", -1)), ("num_layers",), id="num_layers-minus-1"),
    pytest.param(_edit(_scale("num_layers", 10**9)), ("num_layers",), id="num_layers-times-1e9"),
    pytest.param(_edit(_append_both), ("vocabulary",), id="one-event-more"),
    pytest.param(_edit(_drop_last_of_both), ("vocabulary",), id="one-event-fewer"),
    pytest.param(_edit(_empty_both), ("vocabulary",), id="no-events"),
]

BAD_PARSER_REGEX_CASES = [
    pytest.param("header_regex", "(", id="header-unbalanced"),
    pytest.param("header_regex", r"(?P<message>.*)", id="header-without-content-group"),
    pytest.param("header_regex", "[a-", id="header-bad-class"),
    # re.compile raises RecursionError and OverflowError, not re.error, for these two.
    pytest.param("header_regex", "(" * 2_000 + ")" * 2_000, id="header-nested-too-deep"),
    pytest.param("entity_regex", "a{4294967296}", id="entity-repeat-count-too-large"),
    pytest.param("masking", [["NUM", r"\d{4294967296}"]], id="masking-repeat-count-too-large"),
    pytest.param("entity_regex", "(", id="entity-unbalanced"),
    pytest.param("entity_regex", "*job", id="entity-nothing-to-repeat"),
    pytest.param("masking", [["NUM", "("]], id="masking-unbalanced"),
    pytest.param("masking", [["NUM", r"\d+"], ["NUM", r"\w+"]], id="masking-name-twice"),
    pytest.param("masking", [["not a name", r"\d+"]], id="masking-bad-name"),
    pytest.param("masking", [["NUM", r"\d*"]], id="masking-matches-empty"),
    pytest.param("masking", [["NUM", r"(?P<n>\d+)"]], id="masking-named-group"),
    # Each compiles alone and breaks only inside a template's regex (a group number, a global flag).
    pytest.param("masking", [["NUM", r"(\d)\1"]], id="masking-backreference"),
    pytest.param("masking", [["NUM", r"(?i)\d+"]], id="masking-inline-global-flag"),
    pytest.param("masking", [["NUM"]], id="masking-rule-of-one"),
    pytest.param("masking", [["NUM", 7]], id="masking-rule-not-text"),
    pytest.param("masking", "NUM", id="masking-a-string"),
]

_MODEL_JSON_NAMES = (METADATA_FILE,)
UNREADABLE_METADATA_CASES = [
    pytest.param(_write_bytes(METADATA_FILE, b"{"), id="not-json"),
    pytest.param(_write_bytes(METADATA_FILE, b""), id="empty"),
    pytest.param(_write_bytes(METADATA_FILE, b"   \n"), id="blank"),
    pytest.param(_write_bytes(METADATA_FILE, b"[1, 2]"), id="a-list"),
    pytest.param(_write_bytes(METADATA_FILE, b'"model"'), id="a-string"),
    pytest.param(_write_bytes(METADATA_FILE, b"null"), id="null"),
    pytest.param(_write_bytes(METADATA_FILE, b"NaN"), id="nan"),
    pytest.param(_write_bytes(METADATA_FILE, b'{"format_version": 1\xff}'), id="not-utf8"),
    pytest.param(_write_bytes(METADATA_FILE, '{"format_version": 1'.encode("utf-16")), id="utf16"),
    pytest.param(_write_bytes(METADATA_FILE, b"[" * 100_000 + b"]" * 100_000), id="nested-too-deep"),
    pytest.param(
        _write_bytes(METADATA_FILE, b'{"format_version": ' + b"9" * 10_000 + b"}"), id="huge-digits"
    ),
    pytest.param(_make_directory(METADATA_FILE), id="a-directory"),
    pytest.param(_delete(METADATA_FILE), id="missing"),
    pytest.param(_edit(_set(("vocabulary",), ["T0", "T9", "T2", "T3"]), resign=False), id="edited-unsigned"),
]


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


DAMAGED_GRAPH_CASES = [
    pytest.param(_delete(ONNX_FILE), (ONNX_FILE,), id="missing"),
    pytest.param(_make_directory(ONNX_FILE), (ONNX_FILE,), id="a-directory"),
    pytest.param(_replace_onnx(b""), (ONNX_FILE,), id="empty-resigned"),
    pytest.param(_replace_onnx(b"", resign=False), (ONNX_FILE, "onnx_sha256"), id="empty"),
    pytest.param(_replace_onnx(_truncate(0.5)), (ONNX_FILE,), id="half-resigned"),
    pytest.param(_replace_onnx(_truncate(0.99)), (ONNX_FILE,), id="last-bytes-lost-resigned"),
    pytest.param(_replace_onnx(_truncate(0.5), resign=False), (ONNX_FILE, "onnx_sha256"), id="half"),
    pytest.param(_replace_onnx(b"not a graph" * 100), (ONNX_FILE,), id="garbage-resigned"),
    pytest.param(_replace_onnx(lambda data: data + b"\0"), (ONNX_FILE,), id="trailing-byte-resigned"),
]

FOREIGN_GRAPH_CASES = [
    pytest.param("more_events", ("vocabulary", ONNX_FILE), id="more-events"),
    pytest.param("wider_state", ("hidden_size", ONNX_FILE), id="wider-state"),
    pytest.param("fewer_layers", ("num_layers", ONNX_FILE), id="fewer-layers"),
    pytest.param("input_renamed", (INPUT_EVENT_IDS, ONNX_FILE), id="input-renamed"),
    pytest.param("output_renamed", (OUTPUT_H, ONNX_FILE), id="output-renamed"),
    pytest.param("int32_event_ids", (INPUT_EVENT_IDS, "int64", ONNX_FILE), id="int32-event-ids"),
    pytest.param("float64_state", (ONNX_FILE,), id="float64-state"),
]


def _copy(logs_model: LogsModel, tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(logs_model.directory, directory)
    return directory


def _assert_outcome(model_dir: Path, outcome: Outcome, logs_model: LogsModel) -> None:
    """Load ``model_dir`` as ``score`` and the daemon do and check the result against ``outcome``."""
    try:
        model = OnnxStepModel.load(load_bundle(model_dir))
    except ModelLoadError as exc:
        message = str(exc)
        if isinstance(outcome, Accepted):
            pytest.fail(f"refused although {outcome.because}: {message}")
        missing = [name for name in outcome.names if name not in message]
        assert not missing, f"message does not name {missing}: {message[:MAX_MESSAGE_CHARS]}"
        assert len(message) <= MAX_MESSAGE_CHARS, f"{len(message)}-character message: {message[:300]}..."
        return
    except Exception as exc:  # the product rule: never a raw exception for a bad model file
        pytest.fail(f"raw {type(exc).__name__} instead of ModelLoadError: {exc!r}"[:MAX_MESSAGE_CHARS])
    if isinstance(outcome, Refused):
        pytest.fail(f"loaded, but must be refused naming {outcome.names}")
    assert model.metadata == outcome.expected(logs_model.metadata)
    np.testing.assert_array_equal(model.initial_h, logs_model.initial_h)
    _assert_scoring_parts_build(model.metadata)


def _assert_scoring_parts_build(metadata: ModelMetadata) -> None:
    """What the first scored line builds from the metadata builds now: nothing is left to fail later."""
    parser = metadata.parser
    assert parser is not None
    HeaderStripper(parser.header_regex)
    TemplateMatcher(metadata.templates, parser.masking, parser.collapse_repeated_masks)


def test_sweep_covers_every_key_the_exporter_writes(logs_model: LogsModel) -> None:
    """The sweep mutates every key of model.json and of its parser: a key added later is swept too."""
    raw = _read_raw(logs_model.directory)
    assert sorted(raw) == sorted(TOP_LEVEL_KEYS)
    assert sorted(raw["parser"]) == sorted(PARSER_KEYS)


@pytest.mark.parametrize(("mutate", "outcome"), _top_level_cases())
def test_load_model_json_top_level_key_deleted_or_wrong_value_is_refused_naming_it(
    mutate: Mutation, outcome: Outcome, logs_model: LogsModel, tmp_path: Path
) -> None:
    """Each top-level key deleted or set to each wrong value: ModelLoadError naming it, or an equal model."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, outcome, logs_model)


@pytest.mark.parametrize(("mutate", "outcome"), _parser_cases())
def test_load_model_json_parser_key_deleted_or_wrong_value_is_refused_naming_it(
    mutate: Mutation, outcome: Outcome, logs_model: LogsModel, tmp_path: Path
) -> None:
    """Each key of ``parser`` deleted or wrong: ModelLoadError naming ``parser.<key>``, or an equal model."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, outcome, logs_model)


@pytest.mark.parametrize(("mutate", "outcome"), _list_entry_cases())
def test_load_model_json_list_entry_of_wrong_type_is_refused_naming_its_index(
    mutate: Mutation, outcome: Outcome, logs_model: LogsModel, tmp_path: Path
) -> None:
    """A vocabulary or template entry that is no string is refused naming ``<list>[i]``."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, outcome, logs_model)


@pytest.mark.parametrize(("mutate", "names"), LIST_SHAPE_CASES)
def test_load_model_json_inconsistent_lists_are_refused_naming_them(
    mutate: Mutation, names: tuple[str, ...], logs_model: LogsModel, tmp_path: Path
) -> None:
    """Vocabulary and templates of different lengths, or a repeated event key, are refused."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, Refused((METADATA_FILE, *names)), logs_model)


@pytest.mark.parametrize(("mutate", "names"), GRAPH_DISAGREEMENT_CASES)
def test_load_model_metadata_disagreeing_with_graph_is_refused_at_load_naming_the_field(
    mutate: Mutation, names: tuple[str, ...], logs_model: LogsModel, tmp_path: Path
) -> None:
    """A self-consistent model.json (digest re-signed, graph sha valid) describing another graph is refused
    when the model is loaded, naming the field, not at the first event scored."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, Refused((METADATA_FILE, ONNX_FILE, *names)), logs_model)


def test_load_model_embedding_dim_disagreeing_with_graph_loads_unchanged(
    logs_model: LogsModel, tmp_path: Path
) -> None:
    """A wrong embedding_dim loads: it is internal to the graph and no score depends on it."""
    model_dir = _copy(logs_model, tmp_path)
    _edit(_shift("embedding_dim", 1))(model_dir)
    wrong = logs_model.metadata.embedding_dim + 1
    _assert_outcome(model_dir, Accepted(_EMBEDDING_IS_INTERNAL, _replaced(embedding_dim=wrong)), logs_model)


@pytest.mark.parametrize(("key", "value"), BAD_PARSER_REGEX_CASES)
def test_load_model_invalid_parser_rule_is_refused_at_load_naming_the_field(
    key: str, value: Any, logs_model: LogsModel, tmp_path: Path
) -> None:
    """A parser regex or masking rule that cannot be used is refused at load naming ``parser.<key>``,
    not raised as a configuration error at the first line scored."""
    model_dir = _copy(logs_model, tmp_path)
    _edit(_set(("parser", key), value))(model_dir)
    _assert_outcome(model_dir, Refused((METADATA_FILE, f"parser.{key}")), logs_model)


def test_load_model_logs_kind_without_parser_is_refused_naming_parser(
    logs_model: LogsModel, tmp_path: Path
) -> None:
    """A model of raw logs with ``parser: null`` cannot parse a line; it is refused naming both fields."""
    model_dir = _copy(logs_model, tmp_path)
    _edit(_set(("parser",), None))(model_dir)
    _assert_outcome(model_dir, Refused((METADATA_FILE, "parser", "input_kind")), logs_model)


def test_load_model_sequences_kind_without_parser_loads(
    exported_model: tuple[Path, ModelMetadata], tmp_path: Path
) -> None:
    """A model of event-key sequences has no parser (it never reads raw lines) and loads as exported."""
    directory = tmp_path / "model"
    shutil.copytree(exported_model[0], directory)
    assert _read_raw(directory)["parser"] is None
    assert OnnxStepModel.load(load_bundle(directory)).metadata == exported_model[1]


def test_load_model_unknown_top_level_key_loads_unchanged(logs_model: LogsModel, tmp_path: Path) -> None:
    """An extra key (written by a newer trainer, say) is ignored: the keys this version reads are intact."""
    model_dir = _copy(logs_model, tmp_path)
    _edit(_set(("notes",), {"author": "x"}))(model_dir)
    _assert_outcome(model_dir, Accepted("unknown keys are ignored"), logs_model)


@pytest.mark.parametrize("mutate", UNREADABLE_METADATA_CASES)
def test_load_model_unreadable_model_json_is_refused_naming_the_file(
    mutate: Mutation, logs_model: LogsModel, tmp_path: Path
) -> None:
    """model.json that is no JSON object (empty, not UTF-8, a directory, missing...) is refused naming it."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, Refused(_MODEL_JSON_NAMES), logs_model)


@pytest.mark.parametrize(("mutate", "names"), DAMAGED_GRAPH_CASES)
def test_load_model_damaged_model_onnx_is_refused_naming_the_file(
    mutate: Mutation, names: tuple[str, ...], logs_model: LogsModel, tmp_path: Path
) -> None:
    """model.onnx missing, empty or truncated, with or without a matching sha256, is refused naming it."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    _assert_outcome(model_dir, Refused(names), logs_model)


@pytest.mark.parametrize(("graph_name", "names"), FOREIGN_GRAPH_CASES)
def test_load_model_valid_graph_of_another_model_is_refused_naming_the_difference(
    graph_name: str,
    names: tuple[str, ...],
    foreign_graphs: dict[str, bytes],
    logs_model: LogsModel,
    tmp_path: Path,
) -> None:
    """A valid ONNX graph that does not fit model.json (sha256 re-recorded) is refused naming what differs."""
    model_dir = _copy(logs_model, tmp_path)
    _replace_onnx(foreign_graphs[graph_name])(model_dir)
    _assert_outcome(model_dir, Refused(names), logs_model)


SYMBOLIC_SIZE_CASES = [
    pytest.param(_shift("hidden_size", 1), (ONNX_FILE, "hidden_size"), id="hidden_size-plus-1"),
    pytest.param(_shift("num_layers", 1), (ONNX_FILE, "num_layers"), id="num_layers-plus-1"),
    pytest.param(_append_both, (METADATA_FILE, "vocabulary"), id="one-event-more"),
]


@pytest.mark.parametrize(("change", "names"), SYMBOLIC_SIZE_CASES)
def test_load_model_graph_declaring_no_input_sizes_is_still_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None],
    names: tuple[str, ...],
    foreign_graphs: dict[str, bytes],
    logs_model: LogsModel,
    tmp_path: Path,
) -> None:
    """A graph whose inputs and outputs declare no fixed size still has its sizes checked: onnxruntime infers
    the outputs' from the weights, and the one probe step at load runs the metadata's state through it."""
    model_dir = _copy(logs_model, tmp_path)
    graph = foreign_graphs["symbolic_sizes"]
    _replace_onnx(graph)(model_dir)
    same_graph = Accepted(
        "the same graph, its sizes left undeclared", _replaced(onnx_sha256=sha256_hex(graph))
    )
    _assert_outcome(model_dir, same_graph, logs_model)
    _edit(change)(model_dir)
    _assert_outcome(model_dir, Refused(names), logs_model)


def _seeded_damage(seed: int) -> list[Any]:
    """Byte flips and truncations at positions drawn from ``seed``: the same cases on every run."""
    rng = random.Random(seed)
    cases = []
    for i in range(8):
        positions = sorted(rng.random() for _ in range(rng.randint(1, 4)))
        cases.append(pytest.param(ONNX_FILE, "flip", positions, id=f"onnx-flip-{i}"))
        cases.append(pytest.param(METADATA_FILE, "flip", positions, id=f"json-flip-{i}"))
    for i in range(4):
        fraction = rng.random()
        cases.append(pytest.param(ONNX_FILE, "truncate", [fraction], id=f"onnx-truncate-{i}"))
        cases.append(pytest.param(METADATA_FILE, "truncate", [fraction], id=f"json-truncate-{i}"))
    return cases


def _damaged(data: bytes, kind: str, positions: list[float]) -> bytes:
    if kind == "truncate":
        return data[: int(len(data) * positions[0])]
    damaged = bytearray(data)
    for position in positions:
        index = int(len(damaged) * position)
        damaged[index] ^= 1 << (index % 8)
    return bytes(damaged)


@pytest.mark.parametrize(("file_name", "kind", "positions"), _seeded_damage(SEED))
def test_load_model_seeded_byte_damage_is_refused_naming_the_file_or_loads(
    file_name: str, kind: str, positions: list[float], logs_model: LogsModel, tmp_path: Path
) -> None:
    """Random (seeded) damage never raises a raw exception.  model.onnx is re-signed, so a flip inside a
    weight may load (a valid graph with other weights); model.json is not, so it loads only when the flip
    leaves the parsed content unchanged."""
    model_dir = _copy(logs_model, tmp_path)
    path = model_dir / file_name
    damaged = _damaged(path.read_bytes(), kind, positions)
    if file_name == ONNX_FILE:
        _replace_onnx(damaged)(model_dir)
    else:
        path.write_bytes(damaged)
    try:
        model = OnnxStepModel.load(load_bundle(model_dir))
    except ModelLoadError as exc:
        assert file_name in str(exc)
        assert len(str(exc)) <= MAX_MESSAGE_CHARS
        return
    except Exception as exc:
        pytest.fail(f"raw {type(exc).__name__} instead of ModelLoadError: {exc!r}"[:MAX_MESSAGE_CHARS])
    if file_name == METADATA_FILE:
        assert model.metadata == logs_model.metadata
    model.run(np.full((2, 1), START_ID, np.int64), *model.zero_state(1))


CLI_CASES = [
    pytest.param(_edit(_shift("hidden_size", 1)), "hidden_size", id="hidden-size-disagrees"),
    pytest.param(_edit(_set(("parser", "header_regex"), "(")), "parser.header_regex", id="bad-header-regex"),
    pytest.param(_edit(_set(("parser", "masking"), [["NUM", "("]])), "parser.masking", id="bad-masking"),
    pytest.param(_edit(_set(("threshold_method",), None)), "threshold_method", id="threshold-method-null"),
    pytest.param(_edit(_set(("parser", "masking"), DELETED)), "parser.masking", id="masking-missing"),
    pytest.param(_write_bytes(METADATA_FILE, b"\xff\xfe"), METADATA_FILE, id="not-utf8"),
    pytest.param(_replace_onnx(_truncate(0.5)), ONNX_FILE, id="onnx-truncated"),
]
"""The first and the last case are revealed only by opening the graph (model.json and the sha256 agree)."""


def _assert_one_error_line(err: str, command: str, names: tuple[str, ...]) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"logwarden {command}: error: ")]
    assert len(lines) == 1, err[-2000:]
    assert all(name in lines[0] for name in names), lines[0]


@pytest.mark.parametrize(("mutate", "field"), CLI_CASES)
def test_cli_score_malformed_model_exits_4_with_one_line_naming_file_and_field(
    mutate: Mutation,
    field: str,
    logs_model: LogsModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``logwarden score`` on a malformed model exits 4 with one error line naming the file and the field."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    logs = tmp_path / "app.log"
    logs.write_text("job job_1 finished\n", encoding="utf-8")
    code = main(["score", "--model", str(model_dir), "--logs", str(logs)])
    err = capsys.readouterr().err
    assert code == EXIT_MODEL, err[-2000:]
    _assert_one_error_line(err, "score", (str(model_dir), field))


def _check_config(tmp_path: Path, model_dir: Path) -> Path:
    """A daemon config for ``run --check``, which reads the model and contacts no broker."""
    config = {
        "kafka": {
            "bootstrap_servers": ["127.0.0.1:9"],
            "group_id": "g-check",
            "input_topics": ["logs"],
            "alerts_topic": "alerts",
        },
        "input": {"format": "raw", "entity": {"regex": ENTITY_REGEX}},
        "model": {"path": str(model_dir)},
        "state": {"dir": str(tmp_path / "state")},
    }
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_cli_run_check_valid_model_exits_0(
    logs_model: LogsModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config used below passes ``run --check`` with the intact model, so a failure is the model's."""
    model_dir = _copy(logs_model, tmp_path)
    code = main(["run", "--config", str(_check_config(tmp_path, model_dir)), "--check"])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("gate", "configured", "reported"), [(None, True, None), (7.5, True, 7.5), (7.5, False, None)]
)
def test_cli_run_check_reports_the_count_gate_the_daemon_will_apply(
    logs_model: LogsModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    gate: float | None,
    configured: bool,
    reported: float | None,
) -> None:
    """``run --check`` says which count-gate threshold applies: the model's, or none when the model has
    no gate or ``model.count_gate: false`` turns it off."""
    model_dir = _copy(logs_model, tmp_path)
    if gate is not None:
        raw = _read_raw(model_dir)
        raw["count_gate"] = {"threshold": gate, "profiles": ["00000000000000ff"]}
        _write_raw(model_dir, raw)
    config_path = _check_config(tmp_path, model_dir)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["model"]["count_gate"] = configured
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["run", "--config", str(config_path), "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["count_gate_threshold"] == reported


@pytest.mark.parametrize(("mutate", "field"), CLI_CASES)
def test_cli_run_check_malformed_model_exits_4_with_one_line_naming_file_and_field(
    mutate: Mutation,
    field: str,
    logs_model: LogsModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``run --check`` on a malformed model, its graph included, exits 4 (not 3, the config's code) naming
    file and field: it refuses what the daemon would refuse at start."""
    model_dir = _copy(logs_model, tmp_path)
    mutate(model_dir)
    code = main(["run", "--config", str(_check_config(tmp_path, model_dir)), "--check"])
    err = capsys.readouterr().err
    assert code == EXIT_MODEL, err[-2000:]
    _assert_one_error_line(err, "run", (str(model_dir), field))
