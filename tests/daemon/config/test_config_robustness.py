"""A seeded sweep of config loading: a malformed file is a ConfigError naming the key, never a traceback.

Each leaf key and section of config.example.yaml (and of its JSON and record-key variants, and of the
README's minimal file) is deleted, set to null and to each value of ``MUTATIONS``; each level gets
unknown keys; whole files are broken the ways editors and shells break them.  The outcome is judged
against what the docs say each key takes (``KEYS``): the loader accepts exactly those values, and
otherwise raises a ConfigError whose every line starts with the file and which names the dotted key.
The README's configuration table and prose are checked against the code too (config.example.yaml
against the code is in test_config.py).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import re
import string
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import run_cli
from kafka import KafkaConsumer, KafkaProducer

from logwarden.cli import EXIT_CONFIG, main
from logwarden.daemon.config import DaemonConfig, load_config, parse_config
from logwarden.daemon.config.kafka_options import CONTROLLED_OPTIONS, PYTHON_OBJECT_OPTIONS
from logwarden.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "config.example.yaml"
README = PROJECT_ROOT / "README.md"
SOURCE = "config.yaml"
SEED = 20261206
INT32_MAX = 2**31 - 1
LOG_LEVELS = ("debug", "info", "warning", "error")

DELETE = object()
MUTATIONS: dict[str, Any] = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "minus_one": -1,
    "one_and_a_half": 1.5,
    "huge_int": 10**30,
    "empty_string": "",
    "word": "not-a-number",
    "empty_list": [],
    "empty_map": {},
    "nested_list": [[1, [2, []]], {"a": [None]}],
}


# -- what the docs say each key takes ---------------------------------------------------------------
def non_empty_string(value: Any) -> bool:
    """Text with something in it (names, paths, field names)."""
    return isinstance(value, str) and bool(value.strip())


def topic(value: Any) -> bool:
    """A legal Kafka topic name."""
    return (
        isinstance(value, str)
        and bool(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value))
        and value not in (".", "..")
    )


def topic_list(value: Any) -> bool:
    """A non-empty list of distinct topic names."""
    return (
        isinstance(value, list) and bool(value) and all(map(topic, value)) and len(set(value)) == len(value)
    )


def host_port_list(value: Any) -> bool:
    """A non-empty list of "host:port" strings."""
    pattern = re.compile(r".*\S.*:([0-9]{1,5})")
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(item, str)
            and (found := pattern.fullmatch(item)) is not None
            and 0 < int(found[1]) < 65536
            for item in value
        )
    )


def boolean(value: Any) -> bool:
    """true or false (not 0 or 1)."""
    return type(value) is bool


def integer(minimum: int, maximum: int = INT32_MAX) -> Callable[[Any], bool]:
    """A whole number from ``minimum`` to ``maximum``, by default the Int32 bound
    (``value_checks.INTEGER_MAXIMUM`` says why)."""
    return lambda value: type(value) is int and minimum <= value <= maximum


def finite(value: Any) -> bool:
    """An int or float that is finite as a float (seconds and nats have no upper bound in the docs)."""
    if type(value) not in (int, float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def number_above(minimum: float) -> Callable[[Any], bool]:
    """A finite number greater than ``minimum``."""
    return lambda value: finite(value) and value > minimum


def number_from(minimum: float) -> Callable[[Any], bool]:
    """A finite number at least ``minimum``."""
    return lambda value: finite(value) and value >= minimum


def one_of(*choices: str) -> Callable[[Any], bool]:
    """One of the listed words."""
    return lambda value: isinstance(value, str) and value in choices


def regex(value: Any) -> bool:
    """A Python regular expression that compiles."""
    if not non_empty_string(value):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def header_regex(value: Any) -> bool:
    """A regex with the (?P<content>...) group the docs require."""
    return regex(value) and "content" in re.compile(value).groupindex


def empty_options(value: Any) -> bool:
    """A map of kafka-python options; of the sweep's values only ``{}`` (options are swept on their own)."""
    return isinstance(value, dict) and not value


@dataclass(frozen=True)
class Key:
    """What the docs say a key takes, whether it is required, and whether null has a documented meaning."""

    allows: Callable[[Any], bool]
    required: bool = False
    null_means_something: bool = False


KEYS: dict[str, Key] = {
    "kafka.bootstrap_servers": Key(host_port_list, required=True),
    "kafka.group_id": Key(non_empty_string, required=True),
    "kafka.input_topics": Key(topic_list, required=True),
    "kafka.alerts_topic": Key(topic, required=True),
    "kafka.dead_letter_topic": Key(topic),
    "kafka.dead_letter_max_bytes": Key(integer(1024)),
    "kafka.scores_topic": Key(topic, null_means_something=True),  # "null = off"
    "kafka.compiled_record_decoder": Key(boolean),
    # An options map left empty is like an empty section: kafka-python's defaults.
    "kafka.common": Key(empty_options, null_means_something=True),
    "kafka.consumer": Key(empty_options, null_means_something=True),
    "kafka.producer": Key(empty_options, null_means_something=True),
    "input.format": Key(one_of("raw", "json"), required=True),
    # The entity takes exactly one source: null or absent means "not this one".
    "input.entity.regex": Key(regex, null_means_something=True),
    "input.entity.field": Key(non_empty_string, null_means_something=True),
    "input.entity.key": Key(boolean),
    "input.json.message_field": Key(non_empty_string),
    "input.json.timestamp_field": Key(non_empty_string, null_means_something=True),  # record timestamp
    "input.json.event_field": Key(non_empty_string, null_means_something=True),  # "null = off"
    "input.max_message_bytes": Key(integer(1)),
    "input.header_regex": Key(header_regex, null_means_something=True),  # the model's own
    "model.path": Key(non_empty_string, required=True),
    # Surprise is in nats, so any finite number is a threshold (0 or below alerts on every event).
    "model.threshold": Key(finite, null_means_something=True),  # the model's calibrated one
    "model.top_k": Key(integer(0, 20)),
    "model.count_gate": Key(boolean),
    "state.dir": Key(non_empty_string, required=True),
    "state.ttl_seconds": Key(number_above(0)),
    "state.allowed_lateness_seconds": Key(number_from(0)),
    "state.max_entities": Key(integer(1)),
    "state.checkpoint_every_events": Key(integer(1)),
    "state.checkpoint_interval_seconds": Key(number_above(0)),
    "processing.batch_max_events": Key(integer(1)),
    "processing.poll_timeout_ms": Key(integer(0)),
    "processing.onnx_threads": Key(integer(1, 64)),
    "shutdown.timeout_seconds": Key(lambda value: number_above(0)(value) and value <= 3600),  # an hour
    "logging.level": Key(one_of(*LOG_LEVELS)),
    "logging.kafka_level": Key(one_of(*LOG_LEVELS)),
}
# Sections, and whether leaving one out is an error (its required keys are then named).
SECTIONS: dict[str, bool] = {
    "kafka": True,
    "input": True,
    "input.entity": True,
    "input.json": False,
    "model": True,
    "state": True,
    "processing": False,
    "shutdown": False,
    "logging": False,
}
OPTION_MAPS = ("kafka.common", "kafka.consumer", "kafka.producer")


# -- the configs the sweep starts from ---------------------------------------------------------------
def readme_configuration() -> str:
    """The README's "Configuration" section."""
    text = README.read_text(encoding="utf-8")
    return text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


def readme_minimal() -> dict[str, Any]:
    """The minimal file the README's configuration section shows."""
    after = readme_configuration().split("A minimal file:", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", after, re.DOTALL)
    assert block is not None, "the README's minimal config block is gone"
    return typing.cast(dict[str, Any], yaml.safe_load(block[1]))


def example() -> dict[str, Any]:
    """config.example.yaml as a plain mapping."""
    return typing.cast(dict[str, Any], yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


def example_with_input(section: dict[str, Any]) -> dict[str, Any]:
    """The example with ``input`` keys replaced by ``section``'s."""
    raw = example()
    raw["input"].update(section)
    return raw


BASES: dict[str, dict[str, Any]] = {
    "example": example(),
    "example-json": example_with_input(
        {
            "format": "json",
            "entity": {"field": "host"},
            "json": {"message_field": "msg", "timestamp_field": "ts", "event_field": "event"},
        }
    ),
    "example-record-key": example_with_input({"entity": {"key": True}}),
    "readme-minimal": readme_minimal(),
}


def leaf_keys(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of ``node`` that is not a section (an options map counts as a leaf)."""
    keys: list[str] = []
    for name, value in node.items():
        dotted = f"{prefix}{name}"
        if dotted in SECTIONS:
            keys.extend(leaf_keys(value or {}, f"{dotted}."))
        else:
            keys.append(dotted)
    return keys


def config_fields(cls: type, prefix: str = "") -> list[str]:
    """Every leaf field of a config dataclass as a dotted key."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name == "source":
            continue
        if isinstance(hints[spec.name], type) and dataclasses.is_dataclass(hints[spec.name]):
            keys.extend(config_fields(hints[spec.name], f"{prefix}{spec.name}."))
        else:
            keys.append(f"{prefix}{spec.name}")
    return keys


def code_default(dotted: str) -> Any:
    """The default the config model gives ``dotted`` (a KeyError for a key it does not have)."""
    cls: type = DaemonConfig
    *sections, leaf = dotted.split(".")
    for name in sections:
        cls = typing.get_type_hints(cls)[name]
    spec = {f.name: f for f in dataclasses.fields(cls)}[leaf]
    default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default  # type: ignore[misc]
    return dict(default) if isinstance(default, Mapping) else default


def mutated(raw: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``dotted`` set to ``value`` (DELETE removes it)."""
    result = copy.deepcopy(dict(raw))
    *parents, last = dotted.split(".")
    node = result
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)
    return result


# -- judging an outcome ----------------------------------------------------------------------------
def names(message: str, dotted: str) -> bool:
    """Whether ``message`` names ``dotted`` as a whole key (or a key under it)."""
    return re.search(rf"(?<![\w.]){re.escape(dotted)}(?!\w)", message) is not None


def outcome_of(load: Callable[[], DaemonConfig]) -> tuple[str, str]:
    """("accepted", "") / ("error", message) / ("crash", what) of one load and its --check output."""
    try:
        config = load()
        json.dumps(config.as_loggable(), default=str)  # what --check prints, and the start-up log line
    except ConfigError as exc:
        return "error", str(exc)
    except Exception as exc:  # collected, so one run lists every case that escapes
        return "crash", f"{type(exc).__name__}: {exc}"
    return "accepted", ""


def judge(outcome: tuple[str, str], expected: tuple[str, ...] | None, source: str = SOURCE) -> str | None:
    """What is wrong with ``outcome`` if the load should name ``expected`` (None: load), else None."""
    kind, message = outcome
    if kind == "crash":
        return f"raised {message}"
    if expected is None:
        return f"refused a value the docs allow: {message}" if kind == "error" else None
    if kind == "accepted":
        return f"accepted; expected an error naming {', '.join(expected)}"
    stray = [line for line in message.splitlines() if not line.startswith(f"{source}: ")]
    if stray or not message:
        return f"error lines not starting with the file: {stray or [message]}"
    unnamed = [key for key in expected if not names(message, key)]
    return f"error does not name {', '.join(unnamed)}: {message}" if unnamed else None


def cross_key_problem(raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The keys a rule across keys must name for ``raw`` (every key valid on its own), or None."""
    section = raw.get("input") or {}
    entity = section.get("entity") or {}
    sources = [
        name
        for name, is_set in (
            ("regex", entity.get("regex") is not None),
            ("field", entity.get("field") is not None),
            ("key", entity.get("key") is True),
        )
        if is_set
    ]
    if len(sources) != 1:
        return ("input.entity", *sources)
    if sources == ["field"] and section.get("format") != "json":
        return ("input.entity.field", "input.format")
    if section.get("format") != "json":
        changed = tuple(
            f"input.json.{name}"
            for name, value in (section.get("json") or {}).items()
            if value != code_default(f"input.json.{name}")
        )
        if changed:
            return (*changed, "input.format")
    state, processing = raw.get("state") or {}, raw.get("processing") or {}
    max_entities = state.get("max_entities", code_default("state.max_entities"))
    if max_entities < processing.get("batch_max_events", code_default("processing.batch_max_events")):
        return ("state.max_entities", "processing.batch_max_events")
    return None


def expected_problem(raw: Mapping[str, Any], dotted: str, value: Any) -> tuple[str, ...] | None:
    """The keys the error must name once ``dotted`` of a valid base became ``value`` (None: it loads)."""
    key = KEYS[dotted]
    if value is DELETE or value is None:
        if key.required:
            return (dotted,)
        if value is None and not key.null_means_something:
            return (dotted,)
    elif not key.allows(value):
        return (dotted,)
    return cross_key_problem(raw)


def sweep_cases() -> list[Any]:
    """(base, leaf key) pairs, one test each."""
    return [
        pytest.param(base, dotted, id=f"{base}:{dotted}")
        for base in BASES
        for dotted in leaf_keys(BASES[base])
    ]


# -- the sweep ----------------------------------------------------------------------------------------
def test_bases_load_and_the_sweep_knows_every_config_key() -> None:
    """Each starting config loads, and KEYS lists every key of the config model, so none escapes the sweep."""
    for name, raw in BASES.items():
        assert outcome_of(lambda raw=raw: parse_config(raw, source=SOURCE)) == ("accepted", ""), name
    assert sorted(KEYS) == sorted(config_fields(DaemonConfig))
    assert sorted(SECTIONS) == sorted({key.rsplit(".", 1)[0] for key in KEYS if "." in key} - {""})
    swept = {dotted for raw in BASES.values() for dotted in leaf_keys(raw)}
    assert swept == set(KEYS)


@pytest.mark.parametrize(("base", "dotted"), sweep_cases())
def test_leaf_key_deleted_or_set_to_any_value_loads_only_where_documented_else_names_key(
    base: str, dotted: str
) -> None:
    """Every mutation of a leaf key loads exactly when the docs allow the value, else names the key."""
    mismatches = []
    for label, value in [("deleted", DELETE), *MUTATIONS.items()]:
        raw = mutated(BASES[base], dotted, value)
        problem = judge(
            outcome_of(lambda raw=raw: parse_config(raw, source=SOURCE)), expected_problem(raw, dotted, value)
        )
        if problem is not None:
            mismatches.append(f"{dotted} {label}: {problem}")
    assert mismatches == [], "\n".join(mismatches)


@pytest.mark.parametrize(
    ("base", "section"), [(base, s) for base in ("example", "readme-minimal") for s in SECTIONS]
)
def test_section_deleted_emptied_or_replaced_by_scalar_or_list_is_named(base: str, section: str) -> None:
    """An empty or absent optional section means its defaults; any other non-mapping section is named."""
    mismatches = []
    for label, value in [("deleted", DELETE), *MUTATIONS.items(), ("list_of_maps", [{"a": 1}])]:
        raw = mutated(BASES[base], section, value)
        if value is DELETE or value is None or value == {}:
            expected = (section,) if SECTIONS[section] else cross_key_problem(raw)
        else:
            expected = (section,)
        problem = judge(outcome_of(lambda raw=raw: parse_config(raw, source=SOURCE)), expected)
        if problem is not None:
            mismatches.append(f"{section} {label}: {problem}")
    assert mismatches == [], "\n".join(mismatches)


@pytest.mark.parametrize("value", [*MUTATIONS.values(), "kafka: x"], ids=[*MUTATIONS, "yaml-text"])
def test_document_that_is_not_a_mapping_is_refused_naming_the_file(value: Any) -> None:
    """A scalar or list document is refused naming the file; an empty one names the required sections."""
    outcome = outcome_of(lambda: parse_config(value, source=SOURCE))
    if value is None or value == {}:
        assert judge(outcome, ("kafka", "input", "model", "state")) is None
    else:
        assert outcome[0] == "error" and outcome[1].startswith(f"{SOURCE}: expected a mapping, got "), outcome


def misspellings(word: str, rng: random.Random, count: int) -> list[str]:
    """``count`` one-edit typos of ``word``: a letter dropped, doubled, swapped with the next, or replaced."""
    typos = []
    for _ in range(count):
        at = rng.randrange(len(word))
        edit = rng.choice(("drop", "double", "swap", "replace"))
        if edit == "drop":
            typos.append(word[:at] + word[at + 1 :])
        elif edit == "double":
            typos.append(word[:at] + word[at] + word[at:])
        elif edit == "swap" and at + 1 < len(word):
            typos.append(word[:at] + word[at + 1] + word[at] + word[at + 2 :])
        else:
            typos.append(word[:at] + rng.choice(string.ascii_lowercase) + word[at + 1 :])
    return typos


def known_names(level: str) -> set[str]:
    """The keys that are valid directly under ``level`` ("" is the document)."""
    if level in OPTION_MAPS:
        return set(kafka_options(level.split(".")[1]))
    prefix = f"{level}." if level else ""
    return {key[len(prefix) :].split(".")[0] for key in KEYS if key.startswith(prefix)}


@pytest.mark.parametrize("level", ["", *SECTIONS, *OPTION_MAPS], ids=["document", *SECTIONS, *OPTION_MAPS])
def test_unknown_key_at_every_level_is_named(level: str) -> None:
    """A typo, an invented name or a non-string key, at any level, is a ConfigError naming it (seeded)."""
    rng = random.Random(f"{SEED}:{level}")
    known = known_names(level)
    invented = ["".join(rng.choices(string.ascii_lowercase + "_", k=rng.randint(3, 20))) for _ in range(5)]
    typos = [typo for word in sorted(known) for typo in misspellings(word, rng, 2)]
    empty = [""] if level else []  # "kafka.": an empty name under a section
    mismatches = []
    for name in [name for name in ["unknown_key", "Kafka", *empty, *invented, *typos] if name not in known]:
        mismatches.extend(unknown_key_mismatches(level, name))
    for odd in (1, True, None, 1.5):
        mismatches.extend(unknown_key_mismatches(level, odd))
    assert mismatches == [], "\n".join(mismatches)


def unknown_key_mismatches(level: str, name: Any) -> list[str]:
    """What is wrong with loading the JSON example with ``name: x`` added under ``level``."""
    raw = copy.deepcopy(BASES["example-json"])
    node = raw
    for part in level.split(".") if level else []:
        node = node.setdefault(part, {})
    node[name] = "x"
    dotted = f"{level}.{name}" if level else str(name)
    problem = judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), (dotted,))
    return [] if problem is None else [f"{name!r}: {problem}"]


def single_key_errors() -> list[tuple[str, str, Any]]:
    """(key, label, value) of the example whose one mutation is an error naming that key alone."""
    errors = []
    for dotted in leaf_keys(BASES["example"]):
        for label, value in [("deleted", DELETE), *MUTATIONS.items()]:
            if expected_problem(mutated(BASES["example"], dotted, value), dotted, value) == (dotted,):
                errors.append((dotted, label, value))
    return errors


def test_several_invalid_keys_at_once_get_one_line_each_seeded() -> None:
    """Random sets of two to six invalid keys (seeded) give one error line per key, each naming its key."""
    rng = random.Random(SEED)
    pool = single_key_errors()
    mismatches = []
    for _ in range(300):
        picks: dict[str, tuple[str, Any]] = {}
        size = rng.randint(2, 6)
        while len(picks) < size:
            dotted, label, value = rng.choice(pool)
            picks.setdefault(dotted, (label, value))
        raw = BASES["example"]
        for dotted, (_, value) in picks.items():
            raw = mutated(raw, dotted, value)
        kind, message = outcome_of(lambda raw=raw: parse_config(raw, source=SOURCE))
        lines = message.splitlines()
        named = (
            sorted(re.sub(r"\[\d+\]$", "", line.split(": ")[1]) for line in lines) if kind == "error" else []
        )
        if named != sorted(picks):
            mismatches.append(f"{ {k: v[0] for k, v in picks.items()} }: {kind} {message}")
    assert mismatches == [], "\n".join(mismatches)


# -- kafka-python options ---------------------------------------------------------------------------
def kafka_options(role: str) -> dict[str, list[Any]]:
    """kafka-python's option names for ``role``, each with its default(s)."""
    consumer, producer = KafkaConsumer.DEFAULT_CONFIG, KafkaProducer.DEFAULT_CONFIG
    sources = {"common": [consumer, producer], "consumer": [consumer], "producer": [producer]}[role]
    shared = set.intersection(*(set(defaults) for defaults in sources))
    return {name: [defaults[name] for defaults in sources] for name in shared}


def family(value: Any) -> str:
    """The YAML type of a value: bool, int, float, str, list, map or another Python type."""
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


# Where the docs say more than kafka-python's default type shows.
DOCUMENTED_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "acks": lambda value: value == "all" or (type(value) is int and value in (1, -1)),
    "api_version": lambda value: (
        (isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)*", value) is not None)
        or (isinstance(value, list) and bool(value) and all(type(part) is int for part in value))
    ),
}


def option_allowed(role: str, name: str, value: Any) -> bool:
    """Whether the docs allow ``value`` for option ``name``: the type of kafka-python's default, null only
    where that default is null; never an option the daemon sets itself or one needing a Python object."""
    defaults = kafka_options(role)[name]
    if name in CONTROLLED_OPTIONS or name in PYTHON_OBJECT_OPTIONS:
        return False
    if value is None:
        return all(default is None for default in defaults)
    if name in DOCUMENTED_OPTIONS:
        return DOCUMENTED_OPTIONS[name](value)
    families = {family(default) for default in defaults if default is not None}
    if not families:  # a null default: text (paths, names, mechanisms) or a number (buffer sizes)
        return family(value) in ("str", "int")
    return family(value) in families or (family(value) == "int" and "float" in families)


@pytest.mark.parametrize("role", ["common", "consumer", "producer"])
def test_every_kafka_option_set_to_any_value_loads_only_with_its_documented_type_else_names_it(
    role: str,
) -> None:
    """Each kafka-python option set to each value of MUTATIONS is refused naming it, unless documented."""
    mismatches = []
    for name in sorted(kafka_options(role)):
        dotted = f"kafka.{role}.{name}"
        for label, value in MUTATIONS.items():
            raw = mutated(BASES["example"], f"kafka.{role}", {name: value})
            kind, message = outcome = outcome_of(lambda raw=raw: parse_config(raw, source=SOURCE))
            if kind == "accepted" and not option_allowed(role, name, value):
                mismatches.append(f"{dotted} {label}: accepted a value of another type than the docs give")
            elif (problem := judge(outcome, None if kind == "accepted" else (dotted,))) is not None:
                mismatches.append(f"{dotted} {label}: {problem}")
    assert mismatches == [], "\n".join(mismatches)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("3.6", True),
        ([3, 6], True),
        ("0.10.2", True),
        ([0, 8], True),
        ("not-a-number", False),
        ("", False),
        ("3.x", False),
        ([0, 1], False),
        ("0.7", False),
        ([3, -6], False),
        ([], False),
    ],
)
def test_api_version_loads_only_as_a_version_kafka_python_can_use(value: Any, accepted: bool) -> None:
    """A version kafka-python rejects at start (ValueError) or does not know (UnrecognizedBrokerVersion,
    exit 1 in a restart loop) is refused at load, naming the option."""
    raw = mutated(BASES["example"], "kafka.common", {"api_version": value})
    outcome = outcome_of(lambda: parse_config(raw, source=SOURCE))
    assert judge(outcome, None if accepted else ("kafka.common.api_version",)) is None


def test_partition_assignment_strategy_is_refused_as_needing_a_python_object() -> None:
    """kafka-python calls each entry as a class, so no YAML value can work: refused, naming the option."""
    raw = mutated(BASES["example"], "kafka.consumer", {"partition_assignment_strategy": ["range"]})
    kind, message = outcome_of(lambda: parse_config(raw, source=SOURCE))
    assert kind == "error"
    assert message.startswith(
        f"{SOURCE}: kafka.consumer.partition_assignment_strategy: needs a Python object"
    )


# -- rules across keys ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "entity",
    [
        {"regex": "x", "field": "host"},
        {"regex": "x", "key": True},
        {"field": "host", "key": True},
        {"regex": "x", "field": "host", "key": True},
        {},
        {"key": False},
        {"regex": None, "field": None},
    ],
)
def test_entity_without_exactly_one_source_names_the_section_and_each_source_set(
    entity: dict[str, Any],
) -> None:
    """input.entity takes one of regex, field or key: true; the error names the section and sources set."""
    raw = mutated(BASES["example-json"], "input.entity", entity)
    kind, message = outcome_of(lambda: parse_config(raw, source=SOURCE))
    set_sources = [name for name, value in entity.items() if value not in (None, False)]
    assert judge((kind, message), ("input.entity",)) is None
    assert all(re.search(rf"\b{name}\b", message.split("got ")[-1]) for name in set_sources), message


def test_entity_field_with_raw_format_names_both_keys() -> None:
    """A JSON field as entity needs format json: the error names input.entity.field and input.format."""
    raw = mutated(BASES["example-json"], "input.format", "raw")
    raw["input"].pop("json")
    assert (
        judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), ("input.entity.field", "input.format"))
        is None
    )


@pytest.mark.parametrize("name", ["message_field", "timestamp_field", "event_field"])
def test_json_option_with_raw_format_names_the_option_and_the_format(name: str) -> None:
    """A JSON field name set with raw input would be ignored; the error names it and input.format."""
    raw = mutated(BASES["example"], f"input.json.{name}", "host")
    expected = (f"input.json.{name}", "input.format")
    assert judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), expected) is None


def test_json_options_at_their_defaults_with_raw_format_load() -> None:
    """The example spells out input.json's defaults with raw input, as documented: that is not an error."""
    raw = mutated(BASES["example"], "input.json", {"message_field": "message", "timestamp_field": None})
    assert outcome_of(lambda: parse_config(raw, source=SOURCE)) == ("accepted", "")


@pytest.mark.parametrize("output", ["alerts_topic", "dead_letter_topic", "scores_topic"])
def test_output_topic_equal_to_an_input_topic_names_both_keys(output: str) -> None:
    """The daemon would read its own output: the error names the output key and kafka.input_topics."""
    raw = mutated(BASES["example"], "kafka.input_topics", ["logs", "other"])
    raw["kafka"][output] = "other"
    kind, message = outcome_of(lambda: parse_config(raw, source=SOURCE))
    assert judge((kind, message), (f"kafka.{output}", "kafka.input_topics")) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alerts_topic", "dead_letter_topic"),
        ("alerts_topic", "scores_topic"),
        ("dead_letter_topic", "scores_topic"),
    ],
)
def test_two_outputs_on_one_topic_name_both_keys(first: str, second: str) -> None:
    """Two outputs on one topic would mix alerts, dead letters and scores: both dotted keys are named."""
    raw = mutated(BASES["example"], f"kafka.{first}", "shared.out")
    raw["kafka"][second] = "shared.out"
    assert (
        judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), (f"kafka.{first}", f"kafka.{second}"))
        is None
    )


def test_empty_input_topics_names_the_key() -> None:
    """No input topic is an error naming kafka.input_topics."""
    raw = mutated(BASES["example"], "kafka.input_topics", [])
    assert judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), ("kafka.input_topics",)) is None


def test_max_entities_below_batch_max_events_names_both_keys() -> None:
    """A batch can hold more distinct entities than the table: both keys are named."""
    raw = mutated(BASES["example"], "state.max_entities", 100)
    raw["processing"]["batch_max_events"] = 101
    expected = ("state.max_entities", "processing.batch_max_events")
    assert judge(outcome_of(lambda: parse_config(raw, source=SOURCE)), expected) is None


def test_null_on_a_key_with_a_default_is_refused_saying_the_default() -> None:
    """``dead_letter_topic: null`` reads as "off", as ``scores_topic: null`` is: refused, not the default."""
    raw = mutated(BASES["example"], "kafka.dead_letter_topic", None)
    raw["state"]["ttl_seconds"] = None
    raw["kafka"]["group_id"] = None
    assert outcome_of(lambda: parse_config(raw, source=SOURCE)) == (
        "error",
        f"{SOURCE}: kafka.group_id: required key has no value (null)\n"
        f"{SOURCE}: kafka.dead_letter_topic: null is not a value of this key; leave it out for its default, "
        "'logwarden.dead-letter'\n"
        f"{SOURCE}: state.ttl_seconds: null is not a value of this key; leave it out for its default, 3600.0",
    )


# -- whole files ------------------------------------------------------------------------------------
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")


def example_line(text: str) -> int:
    """The 1-based line of the example holding ``text``."""
    return next(number for number, line in enumerate(EXAMPLE_TEXT.splitlines(), 1) if text in line)


def example_replacing(old: str, new: str) -> str:
    """The example's text with its one ``old`` replaced by ``new``."""
    assert EXAMPLE_TEXT.count(old) == 1, old
    return EXAMPLE_TEXT.replace(old, new)


def alias_bomb(levels: int) -> str:
    """A small file whose group_id, aliases expanded, holds 10**levels items."""
    anchors = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    anchors += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return (
        "anchors:\n"
        + "\n".join(anchors)
        + "\n"
        + example_replacing("group_id: logwarden", f"group_id: *a{levels - 1}")
    )


FILE_CASES: list[Any] = [
    pytest.param(b"", "config file is empty", id="empty"),
    pytest.param(b"# all commented out\n", "config file is empty", id="only-comments"),
    pytest.param(b"- kafka\n- input\n", "expected a mapping, got", id="top-level-list"),
    pytest.param(b"logwarden\n", "expected a mapping, got", id="top-level-scalar"),
    pytest.param(
        example_replacing('input_topics: ["logs"]', 'input_topics: ["logs"').encode(),
        r"invalid YAML at line \d+, column \d+: ",
        id="unclosed-bracket",
    ),
    pytest.param(
        example_replacing("  group_id: logwarden", "  group_id: logwarden: x").encode(),
        rf"invalid YAML at line {example_line('  group_id: logwarden')}, column \d+: mapping values",
        id="colon-in-plain-value",
    ),
    pytest.param(
        example_replacing("  group_id: logwarden", "\tgroup_id: logwarden").encode(),
        rf"invalid YAML at line {example_line('  group_id: logwarden')}, column 1: .*'\\t'",
        id="tab-indent",
    ),
    pytest.param(
        example_replacing("  group_id: logwarden", "  group_id: log\x00warden").encode(),
        rf"invalid YAML at line {example_line('  group_id: logwarden')}, column 16: .*character #x0000",
        id="nul-byte",
    ),
    pytest.param(
        example_replacing("  top_k: 3", "  top_k: 3\x07").encode(),
        rf"invalid YAML at line {example_line('  top_k: 3')}, column 11: unacceptable character #x0007",
        id="control-character",
    ),
    pytest.param(
        example_replacing("group_id: logwarden", "group_id: café").encode("latin-1"),
        r"not UTF-8 text at byte \d+",
        id="latin-1",
    ),
    pytest.param(EXAMPLE_TEXT.encode("utf-16"), "not UTF-8 text at byte 0", id="utf-16"),
    pytest.param(
        EXAMPLE_TEXT.encode() + b"---\nkafka: {}\n", r"invalid YAML at line \d+", id="two-documents"
    ),
    pytest.param(
        b"kafka: !!python/object/apply:os.system [true]\n", "invalid YAML at line 1", id="python-tag"
    ),
    pytest.param(
        b"? [a, b]\n: 1\n", "invalid YAML at line 1, column 3: found unhashable key", id="list-as-key"
    ),
    pytest.param(b"kafka: *nowhere\n", "invalid YAML at line 1.*undefined alias", id="undefined-alias"),
    pytest.param(
        example_replacing("  consumer: {}", "  consumer: {socket_options: &loop [*loop]}").encode(),
        "kafka.consumer.socket_options: holds more than",
        id="list-containing-itself",
    ),
    pytest.param(
        example_replacing("  dir: /var/lib/logwarden/state", '  dir: "/var/lib/\\ud800"').encode(),
        "state.dir: contains '\\\\ud800', a lone surrogate",
        id="lone-surrogate-path",
    ),
    pytest.param(
        example_replacing("  path: /var/lib/logwarden/model", '  path: "/var/lib/a\\0b"').encode(),
        "model.path: a path cannot contain a NUL character",
        id="nul-escape-in-path",
    ),
    pytest.param(
        example_replacing("  bootstrap_servers: [", "  bootstrap_servers: !!binary aGk= #[").encode(),
        "kafka.bootstrap_servers: expected",
        id="binary-value",
    ),
]


@pytest.mark.parametrize(("content", "error"), FILE_CASES)
def test_load_config_malformed_file_is_one_config_error_line_per_problem_naming_file(
    tmp_path: Path, content: bytes, error: str
) -> None:
    """Broken files are a ConfigError whose every line starts with the path (YAML's own two-line
    messages included), with a line number for YAML syntax."""
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    kind, message = outcome_of(lambda: load_config(path))
    assert kind == "error", message
    assert all(line.startswith(f"{path}: ") for line in message.splitlines()), message
    assert re.search(error, message), message


def test_load_config_alias_bomb_is_refused_quickly_naming_key(tmp_path: Path) -> None:
    """Aliases nested to a billion items once expanded are named at once, not printed in full."""
    path = tmp_path / "config.yaml"
    path.write_text(alias_bomb(9), encoding="utf-8")
    started = time.perf_counter()
    kind, message = outcome_of(lambda: load_config(path))
    assert time.perf_counter() - started < 2.0
    assert judge((kind, message), ("anchors", "kafka.group_id"), source=str(path)) is None
    assert len(message) < 1000


@pytest.mark.parametrize(
    "content",
    [b"\xef\xbb\xbf" + EXAMPLE_TEXT.encode(), EXAMPLE_TEXT.replace("\n", "\r\n").encode()],
    ids=["utf-8-bom", "crlf-line-ends"],
)
def test_load_config_example_with_bom_or_crlf_loads_the_same(tmp_path: Path, content: bytes) -> None:
    """Files saved by Windows editors (byte-order mark, CRLF) mean the same config."""
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert load_config(path) == load_config(EXAMPLE)


def test_load_config_directory_names_it(tmp_path: Path) -> None:
    """A directory given as the config file is a ConfigError naming it."""
    kind, message = outcome_of(lambda: load_config(tmp_path))
    assert (kind, message) == ("error", f"{tmp_path}: is a directory, expected a YAML config file")


# -- the command ------------------------------------------------------------------------------------
CLI_CASES: list[Any] = [
    pytest.param(
        example_replacing("  ttl_seconds: 3600.0", "  ttl_seconds: -1").encode(),
        "state.ttl_seconds",
        id="bad-value",
    ),
    pytest.param(
        example_replacing("  consumer: {}", "  consumer: {max_poll_interval_ms: soon}").encode(),
        "kafka.consumer.max_poll_interval_ms",
        id="bad-kafka-option",
    ),
    pytest.param(
        example_replacing("  top_k: 3", "  top_k: 3\x07").encode(), "invalid YAML at line", id="control-char"
    ),
    pytest.param("kafka: café\n".encode("latin-1"), "not UTF-8", id="latin-1"),
    pytest.param(None, "config file not found", id="missing-file"),
    pytest.param(b"", "config file is empty", id="empty-file"),
]


@pytest.mark.parametrize(("content", "named"), CLI_CASES)
def test_cli_run_check_malformed_config_prints_the_key_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, named: str
) -> None:
    """``logwarden run --check`` prints each problem as one error line naming the file and key, exit 3."""
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_bytes(content)
    assert main(["run", "--check", "--config", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() and all(
        line.startswith(f"logwarden run: error: {path}: ") for line in err.splitlines()
    ), err
    assert named in err and "Traceback" not in err


def test_cli_run_check_subprocess_lists_every_problem_and_exits_3(tmp_path: Path) -> None:
    """The installed entry point, as systemd runs it: three problems, three lines, exit status 3."""
    raw = mutated(BASES["example"], "kafka.dead_letter_topic", None)
    raw["kafka"]["producer"] = {"acks": 0}
    raw["logging"]["level"] = "loud"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = run_cli("run", "--check", "--config", path)
    assert result.returncode == EXIT_CONFIG, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == [
        "kafka.dead_letter_topic",
        "kafka.producer.acks",
        "logging.level",
    ], result.stderr
    assert all(line.startswith(f"logwarden run: error: {path}: ") for line in lines)


# -- docs against code ------------------------------------------------------------------------------
def readme_table() -> list[tuple[list[str], list[str]]]:
    """(dotted keys, default texts) of each row of the README's configuration table."""
    rows = []
    for line in readme_configuration().splitlines():
        if not line.startswith("| `"):
            continue
        key_cell, default_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
        first, *others = re.findall(r"`([^`]+)`", key_cell)
        parent = first.rsplit(".", 1)[0]
        keys = [first, *(parent + (other if other.startswith(".") else f".{other}") for other in others)]
        defaults = [text.strip() for text in default_cell.split(" / ")]
        rows.append((keys, defaults if len(defaults) == len(keys) else defaults * len(keys)))
    return rows


def documented_default(text: str) -> Any:
    """A default as the README writes it: a `literal`, a number (``5 s``, ``1,000,000``), or words: null."""
    literal = re.fullmatch(r"`([^`]*)`", text)
    if literal:
        return yaml.safe_load(literal[1])
    number = re.fullmatch(r"([0-9][0-9,]*(?:\.[0-9]+)?)(?: s)?", text)
    if number:
        return float(number[1].replace(",", ""))
    return None  # "off", "record time", "the model's calibrated value": no value set


def test_readme_configuration_table_keys_exist_with_the_defaults_the_code_gives() -> None:
    """Every key in the README's table is a config key, and its default column says the code's default."""
    rows = readme_table()
    assert len(rows) >= 10
    wrong = []
    for keys, defaults in rows:
        for key, text in zip(keys, defaults, strict=True):
            if key not in KEYS:
                wrong.append(f"{key}: not a config key")
            elif documented_default(text) != code_default(key):
                wrong.append(f"{key}: README says {text!r}, the code {code_default(key)!r}")
    assert wrong == []


def test_readme_configuration_prose_names_only_existing_keys() -> None:
    """Dotted keys quoted in the configuration section's prose exist (the example error line aside)."""
    prose = re.sub(r"```.*?```", "", readme_configuration(), flags=re.DOTALL)
    quoted = re.findall(rf"`((?:{'|'.join(s for s in SECTIONS if '.' not in s)})\.[\w.]+)", prose)
    assert quoted
    unknown = [key for key in quoted if key not in KEYS and key not in SECTIONS and key not in OPTION_MAPS]
    assert unknown == []


def test_readme_minimal_config_loads_with_the_documented_defaults() -> None:
    """The README's minimal file loads, and what it leaves out equals config.example.yaml's values."""
    minimal = parse_config(BASES["readme-minimal"])
    spelled_out = parse_config(mutated(BASES["example"], "kafka.bootstrap_servers", ["kafka1:9092"]))
    assert minimal == spelled_out
