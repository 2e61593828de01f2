"""The daemon config: defaults, the example file, and an error naming the key for every invalid value."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from logwarden.daemon.config import (
    DaemonConfig,
    ProcessingConfig,
    load_config,
    parse_config,
)
from logwarden.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT_ROOT / "config.example.yaml"

MINIMAL: dict[str, Any] = {
    "kafka": {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "group_id": "logwarden",
        "input_topics": ["logs"],
        "alerts_topic": "logwarden.alerts",
    },
    "input": {"format": "raw", "entity": {"regex": r"blk_-?\d+"}},
    "model": {"path": "/var/lib/logwarden/model"},
    "state": {"dir": "/var/lib/logwarden/state"},
}


def minimal() -> dict[str, Any]:
    """A deep copy of the minimal config from the product spec (helper)."""
    return copy.deepcopy(MINIMAL)


def with_value(dotted: str, value: Any) -> dict[str, Any]:
    """The minimal config with ``dotted`` set to ``value`` (None deletes the key) (helper)."""
    raw = minimal()
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        del node[last]
    else:
        node[last] = value
    return raw


def error_of(raw: Any) -> str:
    """The ConfigError message parse_config raises for ``raw`` (helper)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source="config.yaml")
    return str(caught.value)


def dotted_fields(cls: type, prefix: str = "") -> list[str]:
    """Every leaf field of a config dataclass as a dotted key, nested dataclasses expanded (helper)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name == "source":
            continue
        hint = hints[spec.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys.extend(dotted_fields(hint, f"{prefix}{spec.name}."))
        else:
            keys.append(f"{prefix}{spec.name}")
    return keys


def test_parse_config_minimal_fills_documented_defaults() -> None:
    """The minimal file from the product spec gives the documented defaults."""
    config = parse_config(minimal(), source="config.yaml")
    assert config.kafka.bootstrap_servers == ("127.0.0.1:9092",)
    assert config.kafka.dead_letter_topic == "logwarden.dead-letter"
    assert config.kafka.scores_topic is None
    assert config.input.entity.source == "regex"
    assert config.input.json.message_field == "message"
    assert config.input.max_message_bytes == 1024 * 1024
    assert config.model.path == Path("/var/lib/logwarden/model")
    assert config.model.threshold is None and config.model.top_k == 3
    assert config.state.ttl_seconds == 3600 and config.state.max_entities == 1_000_000
    assert config.state.checkpoint_every_events == 500_000 and config.state.checkpoint_interval_seconds == 5.0
    assert config.processing == ProcessingConfig(batch_max_events=8192, poll_timeout_ms=100, onnx_threads=1)
    assert config.shutdown.timeout_seconds == 8 and config.logging.level == "info"
    assert config.logging.kafka_level == "warning"
    assert config.source == "config.yaml"


def test_example_config_equals_minimal_with_defaults() -> None:
    """config.example.yaml spells out exactly the defaults of the minimal config."""
    assert load_config(EXAMPLE) == parse_config(minimal())


def test_load_config_relative_paths_are_relative_to_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd starts the daemon in /: a relative model.path must not depend on where --check ran."""
    raw = minimal()
    raw["model"]["path"] = "model"
    raw["state"]["dir"] = "../state"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config("etc/config.yaml")
    assert config.model.path == tmp_path / "etc" / "model"
    assert config.state.dir == tmp_path / "etc" / ".." / "state"
    assert load_config(EXAMPLE).model.path == Path("/var/lib/logwarden/model"), "absolute paths stay"


def test_example_config_documents_every_field() -> None:
    """Every field of the config model appears as a key in config.example.yaml."""
    text = EXAMPLE.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    missing = []
    for dotted in dotted_fields(DaemonConfig):
        node: Any = raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    # input.entity takes exactly one source, so the alternatives are documented in comments.
    alternatives = {"input.entity.field": "#   field:", "input.entity.key": "#   key: true"}
    assert sorted(missing) == sorted(alternatives)
    assert all(comment in text for comment in alternatives.values())


def test_example_config_every_key_has_comment() -> None:
    """Every key line of the example follows a comment, or the section header whose comment covers it."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    undocumented = []
    for previous, line in zip(lines, lines[1:], strict=False):
        if not line.strip() or line.lstrip().startswith("#") or line.rstrip().endswith(":"):
            continue
        if not (previous.lstrip().startswith("#") or previous.rstrip().endswith(":")):
            undocumented.append(line)
    assert undocumented == []


@pytest.mark.parametrize(
    ("dotted", "value", "named"),
    [
        ("kafka.bootstrap_servers", 9092, "kafka.bootstrap_servers"),
        ("kafka.bootstrap_servers", [], "kafka.bootstrap_servers"),
        ("kafka.bootstrap_servers", ["localhost"], "kafka.bootstrap_servers[0]"),
        ("kafka.bootstrap_servers", ["a:1", "b:99999"], "kafka.bootstrap_servers[1]"),
        ("kafka.bootstrap_servers", ["h:909\u00b2"], "kafka.bootstrap_servers[0]"),
        ("kafka.bootstrap_servers", ["h:\u0669\u0660\u0669\u0662"], "kafka.bootstrap_servers[0]"),
        ("kafka.group_id", "", "kafka.group_id"),
        ("kafka.group_id", 7, "kafka.group_id"),
        ("kafka.input_topics", "logs", "kafka.input_topics"),
        ("kafka.input_topics", ["logs", "bad topic"], "kafka.input_topics[1]"),
        ("kafka.input_topics", ["logs", "logs"], "kafka.input_topics"),
        ("kafka.alerts_topic", "a/b", "kafka.alerts_topic"),
        ("kafka.alerts_topic", "logs", "kafka.alerts_topic"),
        ("kafka.dead_letter_topic", "logwarden.alerts", "kafka.dead_letter_topic"),
        ("kafka.scores_topic", "", "kafka.scores_topic"),
        ("kafka.compiled_record_decoder", "yes", "kafka.compiled_record_decoder"),
        ("kafka.common", ["security_protocol"], "kafka.common"),
        ("kafka.consumer", "auto_offset_reset=earliest", "kafka.consumer"),
        ("kafka.producer", 5, "kafka.producer"),
        ("input.format", "csv", "input.format"),
        ("input.max_message_bytes", 0, "input.max_message_bytes"),
        ("input.max_message_bytes", 1.5, "input.max_message_bytes"),
        ("input.header_regex", "(", "input.header_regex"),
        ("input.header_regex", r"\d+ (.*)", "input.header_regex"),
        ("input.entity.regex", "blk_(", "input.entity.regex"),
        ("input.entity.regex", "a{4294967296}", "input.entity.regex"),
        ("input.header_regex", "a{4294967296}(?P<content>.*)", "input.header_regex"),
        ("model.path", "", "model.path"),
        ("model.threshold", "high", "model.threshold"),
        ("model.threshold", float("nan"), "model.threshold"),
        ("model.top_k", -1, "model.top_k"),
        ("model.top_k", 21, "model.top_k"),
        ("model.top_k", True, "model.top_k"),
        ("state.dir", 3, "state.dir"),
        ("state.ttl_seconds", 0, "state.ttl_seconds"),
        ("state.max_entities", 0, "state.max_entities"),
        ("state.checkpoint_every_events", "many", "state.checkpoint_every_events"),
        ("state.checkpoint_interval_seconds", -5, "state.checkpoint_interval_seconds"),
        ("processing.batch_max_events", 0, "processing.batch_max_events"),
        ("processing.poll_timeout_ms", -1, "processing.poll_timeout_ms"),
        ("processing.onnx_threads", 0, "processing.onnx_threads"),
        ("processing.onnx_threads", 100_000, "processing.onnx_threads"),
        ("shutdown.timeout_seconds", float("inf"), "shutdown.timeout_seconds"),
        ("shutdown.timeout_seconds", 3601, "shutdown.timeout_seconds"),
        ("logging.level", "verbose", "logging.level"),
        ("logging.kafka_level", "off", "logging.kafka_level"),
        ("processing", [1, 2], "processing"),
    ],
)
def test_parse_config_invalid_value_error_names_file_and_key(dotted: str, value: Any, named: str) -> None:
    """An invalid value is rejected with a message starting with the file and the dotted key."""
    assert error_of(with_value(dotted, value)).startswith(f"config.yaml: {named}: ")


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        pytest.param("model.threshold", 10**400, id="threshold-400-digit-int"),
        pytest.param("state.ttl_seconds", 10**400, id="ttl-400-digit-int"),
        pytest.param("state.checkpoint_interval_seconds", -(10**400), id="interval-negative-400-digit-int"),
        pytest.param("shutdown.timeout_seconds", 10**400, id="shutdown-400-digit-int"),
        pytest.param("kafka.bootstrap_servers", ["h:" + "9" * 5000], id="port-5000-digits"),
        pytest.param("input.entity.regex", "(" * 5000 + ")" * 5000, id="regex-nested-5000-deep"),
        pytest.param("kafka.group_id", 10**5000, id="int-too-long-to-print"),
    ],
)
def test_parse_config_value_beyond_python_limits_error_names_key(dotted: str, value: Any) -> None:
    """A number too large for a float, or a string Python cannot convert or compile, is a ConfigError."""
    assert error_of(with_value(dotted, value)).startswith(f"config.yaml: {dotted}")


@pytest.mark.parametrize(
    "dotted",
    ["processing.poll_timeout_ms", "state.max_entities", "processing.batch_max_events", "model.top_k"],
)
def test_parse_config_integer_beyond_kafkas_int32_is_refused_naming_key(dotted: str) -> None:
    """A 400-digit poll timeout would overflow in the poll loop, far from the config; it is refused here."""
    assert error_of(with_value(dotted, 10**400)).startswith(
        f"config.yaml: {dotted}: expected an integer from"
    )
    assert error_of(with_value(dotted, 2**31)).startswith(f"config.yaml: {dotted}: expected an integer from")


def test_parse_config_bootstrap_servers_number_message_is_readable() -> None:
    """The bootstrap_servers message says what was expected and what was found."""
    message = error_of(with_value("kafka.bootstrap_servers", 9092))
    assert (
        message
        == 'config.yaml: kafka.bootstrap_servers: expected a non-empty list of "host:port" strings, got 9092'
    )


@pytest.mark.parametrize(
    "dotted",
    [
        "kafka.bootstrap_servers",
        "kafka.group_id",
        "kafka.input_topics",
        "kafka.alerts_topic",
        "input.format",
        "model.path",
        "state.dir",
    ],
)
def test_parse_config_required_key_missing_is_named(dotted: str) -> None:
    """Leaving out a required key names it."""
    assert error_of(with_value(dotted, None)) == f"config.yaml: {dotted}: required key is missing"


@pytest.mark.parametrize(
    ("dotted", "suggestion"),
    [
        ("kafka.bootstrap_server", "bootstrap_servers"),
        ("input.entity.regexp", "regex"),
        ("state.ttl", "ttl_seconds"),
        ("modle", "model"),
        ("input.json.message_feild", "message_field"),
    ],
)
def test_parse_config_unknown_key_suggests_closest(dotted: str, suggestion: str) -> None:
    """An unknown key is rejected with a "did you mean" naming the closest known key."""
    raw = with_value(dotted, "x")
    if dotted.startswith("input.json"):
        raw["input"]["format"] = "json"
    message = error_of(raw)
    assert message.startswith(f"config.yaml: {dotted}: unknown key")
    assert f'did you mean "{suggestion}"?' in message


def test_parse_config_top_level_not_mapping_rejected() -> None:
    """A document that is not a mapping is rejected naming the file."""
    assert error_of(["kafka"]).startswith("config.yaml: expected a mapping")


@pytest.mark.parametrize(
    ("section", "option"),
    [
        ("consumer", "enable_auto_commit"),
        ("consumer", "group_id"),
        ("consumer", "bootstrap_servers"),
        ("consumer", "key_deserializer"),
        ("consumer", "value_deserializer"),
        ("producer", "key_serializer"),
        ("producer", "value_serializer"),
        ("producer", "bootstrap_servers"),
        ("common", "bootstrap_servers"),
        ("consumer", "allow_auto_create_topics"),
        ("producer", "allow_auto_create_topics"),
        ("common", "allow_auto_create_topics"),
        ("consumer", "enable_incremental_fetch_sessions"),
        ("producer", "transactional_id"),
    ],
)
def test_parse_config_controlled_kafka_option_rejected(section: str, option: str) -> None:
    """Options the daemon sets itself cannot be overridden through the passthrough maps."""
    message = error_of(with_value(f"kafka.{section}", {option: "x"}))
    assert message.startswith(f"config.yaml: kafka.{section}.{option}: is set by logwarden itself")


def test_parse_config_misspelt_kafka_option_suggests_closest() -> None:
    """A kafka-python option typo is caught at load with a suggestion, not at connect time."""
    message = error_of(with_value("kafka.consumer", {"auto_offset_rest": "earliest"}))
    assert message.startswith(
        "config.yaml: kafka.consumer.auto_offset_rest: not a kafka-python consumer option"
    )
    assert 'did you mean "auto_offset_reset"?' in message


def test_parse_config_common_consumer_only_option_rejected() -> None:
    """kafka.common takes only options valid for both consumer and producer."""
    message = error_of(with_value("kafka.common", {"auto_offset_reset": "earliest"}))
    assert message.startswith("config.yaml: kafka.common.auto_offset_reset: not a kafka-python common option")


def test_parse_config_python_object_option_rejected() -> None:
    """Options needing a live Python object are refused with the reason."""
    message = error_of(with_value("kafka.common", {"ssl_context": "x"}))
    assert "kafka.common.ssl_context: needs a Python object" in message


def test_parse_config_non_string_option_name_rejected() -> None:
    """kafka passthrough maps must have string keys."""
    assert error_of(with_value("kafka.producer", {1: "x"})).startswith("config.yaml: kafka.producer.1: ")


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [
        ("common", "request_timeout_ms", "30000"),
        ("consumer", "bootstrap_timeout_ms", None),
        ("producer", "request_timeout_ms", -1),
        ("producer", "request_timeout_ms", 2.5),
        ("common", "bootstrap_timeout_ms", True),
        ("consumer", "request_timeout_ms", float("inf")),
        ("producer", "bootstrap_timeout_ms", 2**31),
        pytest.param("common", "request_timeout_ms", 10**400, id="common-request_timeout_ms-400-digit-int"),
    ],
)
def test_parse_config_timeout_the_daemon_reads_not_milliseconds_rejected(
    section: str, option: str, value: Any
) -> None:
    """bootstrap_timeout_ms and request_timeout_ms bound the daemon's own wait: they must be milliseconds."""
    message = error_of(with_value(f"kafka.{section}", {option: value}))
    assert message.startswith(
        f"config.yaml: kafka.{section}.{option}: expected a whole number of milliseconds"
    )


def test_parse_config_timeout_the_daemon_reads_accepts_milliseconds() -> None:
    """Whole milliseconds within Kafka's range pass, zero included."""
    raw = with_value("kafka.common", {"request_timeout_ms": 40_000, "bootstrap_timeout_ms": 0})
    raw["kafka"]["consumer"] = {"bootstrap_timeout_ms": 2}
    raw["kafka"]["producer"] = {"request_timeout_ms": 2**31 - 1}
    kafka = parse_config(raw).kafka
    assert kafka.consumer_options() == {"request_timeout_ms": 40_000, "bootstrap_timeout_ms": 2}
    assert kafka.producer_options() == {"request_timeout_ms": 2**31 - 1, "bootstrap_timeout_ms": 0}


def test_kafka_options_common_overlaid_by_role_specific() -> None:
    """consumer_options/producer_options merge kafka.common with the role's own map, role winning."""
    raw = with_value("kafka.common", {"security_protocol": "SSL", "client_id": "common"})
    raw["kafka"]["consumer"] = {"client_id": "consumer", "auto_offset_reset": "latest"}
    raw["kafka"]["producer"] = {"acks": 1}
    kafka = parse_config(raw).kafka
    assert kafka.consumer_options() == {
        "security_protocol": "SSL",
        "client_id": "consumer",
        "auto_offset_reset": "latest",
    }
    assert kafka.producer_options() == {"security_protocol": "SSL", "client_id": "common", "acks": 1}


@pytest.mark.parametrize(
    ("entity", "fmt", "expected"),
    [
        ({}, "raw", "config.yaml: input.entity: expected exactly one of regex, field or key: true; got none"),
        ({"regex": "x", "key": True}, "raw", "got regex, key"),
        ({"regex": "x", "field": "host"}, "json", "got regex, field"),
        ({"field": "host"}, "raw", "config.yaml: input.entity.field: needs input.format: json"),
        ({"key": "yes"}, "raw", "config.yaml: input.entity.key: expected true or false"),
        ({"key": False}, "raw", "got none"),
    ],
)
def test_parse_config_entity_not_exactly_one_source_rejected(
    entity: dict[str, Any], fmt: str, expected: str
) -> None:
    """input.entity needs exactly one of regex, field (json only) or key: true."""
    raw = with_value("input.entity", entity)
    raw["input"]["format"] = fmt
    assert expected in error_of(raw)


@pytest.mark.parametrize(("entity", "source"), [({"field": "host"}, "field"), ({"key": True}, "key")])
def test_parse_config_json_entity_sources_accepted(entity: dict[str, Any], source: str) -> None:
    """field and key entities are accepted with JSON input."""
    raw = with_value("input.entity", entity)
    raw["input"]["format"] = "json"
    raw["input"]["json"] = {"timestamp_field": "ts", "event_field": "event"}
    config = parse_config(raw)
    assert config.input.entity.source == source
    assert config.input.json.timestamp_field == "ts" and config.input.json.event_field == "event"


def test_parse_config_json_section_with_raw_format_rejected() -> None:
    """input.json settings are refused with raw input instead of being silently ignored."""
    raw = with_value("input.json", {"message_field": "msg"})
    assert error_of(raw).startswith("config.yaml: input.json: only applies with input.format: json")


def test_load_config_missing_file_names_path(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming the path."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="absent.yaml: config file not found"):
        load_config(path)


def test_load_config_invalid_yaml_names_line(tmp_path: Path) -> None:
    """Invalid YAML is reported with its line number."""
    path = tmp_path / "config.yaml"
    path.write_text("kafka:\n  group_id: a\n  input_topics: [logs\nmodel: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.yaml: invalid YAML at line \d+"):
        load_config(path)


def test_load_config_duplicate_key_rejected_with_line(tmp_path: Path) -> None:
    """A key written twice is an error (YAML would silently keep the last one)."""
    path = tmp_path / "config.yaml"
    path.write_text("logging:\n  level: info\n  level: debug\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 3.*duplicate key 'level'"):
        load_config(path)


def with_kafka_yaml(tmp_path: Path, kafka_lines: str) -> Path:
    """A config file of the minimal config with ``kafka_lines`` added under ``kafka:`` (helper)."""
    text = yaml.safe_dump(minimal(), sort_keys=False).replace("kafka:\n", "kafka:\n" + kafka_lines, 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_merge_key_overlays_anchored_mapping(tmp_path: Path) -> None:
    """A YAML merge key (<<: *anchor) brings in the anchored keys, and the mapping's own keys win."""
    path = with_kafka_yaml(
        tmp_path,
        "  common: {}\n"
        "  consumer: &tls {security_protocol: SSL, client_id: consumer}\n"
        "  producer: {<<: *tls, acks: all, client_id: producer}\n",
    )
    kafka = load_config(path).kafka
    assert kafka.consumer_options() == {"security_protocol": "SSL", "client_id": "consumer"}
    assert kafka.producer_options() == {"security_protocol": "SSL", "acks": "all", "client_id": "producer"}


def test_load_config_merge_source_with_own_merge_built_late_not_a_duplicate(tmp_path: Path) -> None:
    """An anchored mapping that merges and overrides a key is not a duplicate when PyYAML builds it last.

    PyYAML flattens a merge source in place when a shallower mapping uses it, before it builds the
    source itself; here the source sits in kafka.consumer.socket_options, as deep as a file nests.
    The producer's merge of it is read without a duplicate-key error; the source itself is then
    refused only for what it is, no [level, option, value] triple.
    """
    path = with_kafka_yaml(
        tmp_path,
        "  consumer:\n    socket_options: [&acks {<<: {acks: 1}, acks: all}]\n  producer: {<<: *acks}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert "kafka.consumer.socket_options: expected a list of [level, option, value]" in line
    assert "{'acks': 'all'}" in line  # the merge was applied, and not reported as a duplicate key


@pytest.mark.parametrize(
    ("kafka_lines", "line"),
    [
        pytest.param(
            "  consumer: &tls {security_protocol: SSL}\n  producer: {<<: *tls, acks: all, acks: 1}\n",
            3,
            id="beside-merge-key",
        ),
        pytest.param("  producer: {<<: {acks: all, acks: 1}}\n", 2, id="inside-merged-mapping"),
        pytest.param(
            "  producer: {<<: [{acks: 1}, {linger_ms: 1, linger_ms: 2}]}\n", 2, id="inside-merged-list"
        ),
    ],
)
def test_load_config_duplicate_key_beside_merge_key_rejected(
    tmp_path: Path, kafka_lines: str, line: int
) -> None:
    """Merge keys do not hide a key written twice, in the mapping itself or in a merged mapping."""
    path = with_kafka_yaml(tmp_path, kafka_lines)
    with pytest.raises(
        ConfigError, match=rf"invalid YAML at line {line}, .*duplicate key '(acks|linger_ms)'"
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "kafka:\n  group_id: " + "1" * 5000 + "\n",
            " at line 2, column 13: .*digits",
            id="integer-5000-digits",
        ),
        pytest.param("kafka:\n  group_id: 2024-13-45\n", " at line 2, column 13: month", id="date-month-13"),
        pytest.param(
            "kafka: " + "[" * 5000 + "]" * 5000 + "\n", ": nested too deeply", id="nested-5000-deep"
        ),
    ],
)
def test_load_config_yaml_python_cannot_build_rejected(tmp_path: Path, text: str, problem: str) -> None:
    """A scalar Python refuses, or nesting too deep to build, is a ConfigError naming the file and line."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"config\.yaml: invalid YAML{problem}"):
        load_config(path)


def test_load_config_empty_file_rejected(tmp_path: Path) -> None:
    """An empty file is an error, not a config of defaults."""
    path = tmp_path / "config.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config file is empty"):
        load_config(path)


def test_load_config_error_names_given_path(tmp_path: Path) -> None:
    """Validation errors from load_config name the file that was read."""
    path = tmp_path / "daemon.yaml"
    raw = with_value("logging.level", "loud")
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: logging.level: expected one of debug, info, warning, error")


def test_as_loggable_masks_secrets() -> None:
    """Passwords, tokens and key material never reach the start-up log."""
    raw = with_value(
        "kafka.common",
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "logwarden",
            "sasl_plain_password": "hunter2-secret-value",
            "ssl_password": "key-passphrase-value",
            "ssl_keyfile": "/etc/keys/private-key-path",
        },
    )
    loggable = parse_config(raw).as_loggable()
    text = json.dumps(loggable)
    for secret in ("hunter2-secret-value", "key-passphrase-value", "private-key-path"):
        assert secret not in text
    assert loggable["kafka"]["common"]["sasl_plain_password"] == "***"
    assert loggable["kafka"]["common"]["sasl_plain_username"] == "logwarden"
    assert loggable["model"]["path"] == "/var/lib/logwarden/model"


def test_daemon_config_frozen_including_passthrough_maps() -> None:
    """The config cannot be changed after validation, passthrough maps included."""
    config = parse_config(with_value("kafka.consumer", {"auto_offset_reset": "latest"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.kafka.group_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.kafka.consumer["auto_offset_reset"] = "earliest"  # type: ignore[index]


def test_every_invalid_key_is_reported_in_one_error_one_line_each() -> None:
    """An operator fixes a hand-edited file in one pass: each invalid key, in any section, has a line."""
    raw = with_value("input.entity.regex", "blk_(")
    raw["state"]["ttl_seconds"] = -5
    raw["kafka"]["groupid"] = "x"
    del raw["model"]["path"]
    lines = error_of(raw).splitlines()
    assert len(lines) == 4
    assert all(line.startswith("config.yaml: ") for line in lines)
    named = [line.split(": ")[1] for line in lines]
    assert sorted(named) == ["input.entity.regex", "kafka.groupid", "model.path", "state.ttl_seconds"]


def test_checks_across_sections_wait_until_every_key_is_valid() -> None:
    """A clash between two keys is only judged on valid values: an invalid key is reported alone."""
    raw = with_value("kafka.alerts_topic", "logs")  # also an input topic: a cross-section clash
    assert error_of(raw).splitlines() == [
        "config.yaml: kafka.alerts_topic: 'logs' is also in kafka.input_topics; "
        "the daemon would read its own output"
    ]
    raw["state"]["ttl_seconds"] = 0
    assert error_of(raw).splitlines() == ["config.yaml: state.ttl_seconds: expected a number > 0, got 0"]


@pytest.mark.parametrize(
    ("section", "option", "value", "expected"),
    [
        ("consumer", "max_poll_interval_ms", "abc", "expected an integer, got 'abc'"),
        ("consumer", "max_poll_records", 500.5, "expected an integer, got 500.5"),
        ("consumer", "fetch_max_wait_ms", True, "expected an integer, got True"),
        ("consumer", "check_crcs", "yes", "expected true or false, got 'yes'"),
        ("producer", "acks", 2, "expected 1, -1 or all (0 would let alerts be lost), got 2"),
        ("producer", "acks", 0, "expected 1, -1 or all (0 would let alerts be lost), got 0"),
        ("producer", "linger_ms", None, "expected an integer, got null"),
        ("common", "security_protocol", 1, "expected a string, got 1"),
        ("common", "sasl_plain_password", 12345678, "expected a string, got ***"),
        ("common", "ssl_password", ["hunter2"], "expected a string, got ***"),
        ("common", "api_version", [3, "6"], 'expected a broker version such as "3.6" or [3, 6]'),
        ("common", "socket_options", "tcp_nodelay", "expected a list of [level, option, value] integers"),
        ("common", "socket_options", [[6, [1]]], "expected a list of [level, option, value] integers"),
        ("consumer", "isolation_level", "read_commited", "expected one of read_uncommitted, read_committed"),
        ("common", "client_dns_lookup", "all", "expected one of use_all_dns_ips, resolve_canonical_"),
        ("producer", "compression_type", "gz", "expected one of gzip, snappy, lz4, zstd; got 'gz'"),
        ("consumer", "auto_offset_reset", "oldest", "expected one of earliest, latest, none; got 'oldest'"),
        ("consumer", "max_poll_records", 0, "expected an integer from 1 to 2,147,483,647, got 0"),
        ("consumer", "session_timeout_ms", 2**31, "expected an integer from 0 to 2,147,483,647"),
        ("producer", "linger_ms", -5, "expected an integer from 0 to 2,147,483,647, got -5"),
    ],
)
def test_kafka_option_of_the_wrong_type_is_a_config_error_naming_it(
    section: str, option: str, value: Any, expected: str
) -> None:
    """A string where kafka-python wants a number would raise a TypeError only at the group join (exit 1,
    restarted in a loop): the config check refuses it at start instead, with what the option takes."""
    message = error_of(with_value(f"kafka.{section}", {option: value}))
    assert message.startswith(f"config.yaml: kafka.{section}.{option}: {expected}")


@pytest.mark.parametrize("value", [12345678, ["hunter2"], 1.5])
def test_a_secret_of_the_wrong_type_is_named_but_never_shown(value: Any) -> None:
    """An unquoted numeric password is an ordinary slip, and the error goes to the journal: masked there
    as in the config log line."""
    message = error_of(
        with_value("kafka.common", {"security_protocol": "SASL_PLAINTEXT", "sasl_plain_password": value})
    )
    assert "kafka.common.sasl_plain_password: expected a string, got ***" in message
    assert str(value) not in message and "hunter2" not in message


def test_kafka_options_of_the_right_type_pass_and_a_version_list_becomes_the_tuple_kafka_python_takes() -> (
    None
):
    """acks as a word or number, a version as text or list, null for an option whose default is None."""
    raw = with_value("kafka.producer", {"acks": "all", "linger_ms": 0, "compression_type": None})
    raw["kafka"]["consumer"] = {
        "max_poll_interval_ms": 5000,
        "consumer_timeout_ms": 1.5,
        "api_version": [3, 6],
        "auto_offset_reset": "LATEST",  # kafka-python reads it in any case
    }
    raw["kafka"]["common"] = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u",
        "ssl_cafile": None,
    }
    raw["kafka"]["consumer"]["socket_options"] = [[6, 1, 1], [1, 9, 1]]  # TCP_NODELAY, SO_KEEPALIVE
    raw["kafka"]["consumer"]["isolation_level"] = "READ_COMMITTED"
    kafka = parse_config(raw).kafka
    assert kafka.producer_options()["acks"] == "all"
    assert kafka.consumer_options()["api_version"] == (3, 6)
    assert kafka.consumer_options()["consumer_timeout_ms"] == 1.5
    assert parse_config(with_value("kafka.producer", {"acks": -1})).kafka.producer_options()["acks"] == -1


def test_compression_codec_without_its_library_is_a_config_error_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python looks for a codec's library only when the producer is built, after start-up: the
    check finds it missing first and names what to install; gzip, in the standard library, passes."""
    from kafka import codec

    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    message = error_of(with_value("kafka.producer", {"compression_type": "zstd"}))
    assert message == (
        "config.yaml: kafka.producer.compression_type: zstd needs its compression library, which is "
        "not installed (pip install zstandard)"
    )
    gzip = parse_config(with_value("kafka.producer", {"compression_type": "gzip"}))
    assert gzip.kafka.producer_options()["compression_type"] == "gzip"


@pytest.mark.parametrize(
    ("common", "role_options", "named", "message"),
    [
        (
            {"security_protocol": "ssl"},
            {},
            "kafka.common.security_protocol",
            "expected one of PLAINTEXT, SSL",
        ),
        (
            {"security_protocol": "SASL_SSL"},
            {},
            "kafka.common.security_protocol",
            "SASL_SSL needs sasl_mechanism",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM"},
            {},
            "kafka.common.sasl_mechanism",
            "expected one of",
        ),
        (
            {"ssl_cafile": "/etc/ca.pem"},
            {},
            "kafka.common.ssl_cafile",
            "has no effect with security_protocol PLAINTEXT",
        ),
        (
            {"security_protocol": "SSL"},
            {"sasl_plain_password": "x"},
            "kafka.consumer.sasl_plain_password",
            "has no effect with security_protocol SSL",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"},
            {"ssl_certfile": "/c"},
            "kafka.consumer.ssl_certfile",
            "set security_protocol to SSL or SASL_SSL",
        ),
    ],
)
def test_tls_and_sasl_settings_that_would_be_ignored_or_misread_are_config_errors(
    common: dict[str, Any], role_options: dict[str, Any], named: str, message: str
) -> None:
    """kafka-python connects in plain text when security_protocol is unknown, and ignores ssl_* and sasl_*
    options under a protocol that does not use them: a file that asks for TLS must get TLS or an error."""
    raw = with_value("kafka.common", common)
    raw["kafka"]["consumer"] = role_options
    error = error_of(raw)
    assert error.startswith(f"config.yaml: {named}: ") and message in error


def test_tls_and_sasl_settings_under_their_protocol_pass() -> None:
    """SASL over TLS with SCRAM and a CA file pass; ssl_check_hostname (set by default) passes anywhere."""
    raw = with_value(
        "kafka.common",
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl_cafile": "/etc/ca.pem"},
    )
    raw["kafka"]["consumer"] = {"sasl_plain_username": "u", "sasl_plain_password": "p"}
    raw["kafka"]["producer"] = {"ssl_check_hostname": False}
    assert parse_config(raw).kafka.consumer_options()["ssl_cafile"] == "/etc/ca.pem"
    assert parse_config(with_value("kafka.common", {"ssl_check_hostname": True})).kafka.common


def test_every_bad_option_of_a_kafka_section_gets_its_own_line() -> None:
    """The passthrough maps are checked option by option too, not only up to their first problem."""
    raw = with_value("kafka.producer", {"acks": 0, "transactional_id": "t", "linger_ms": "5"})
    lines = error_of(raw).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "kafka.producer.acks",
        "kafka.producer.transactional_id",
        "kafka.producer.linger_ms",
    ]


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("kafka.group_id", "${LOGWARDEN_GROUP}"),
        ("state.dir", "${STATE_DIRECTORY}/state"),
        ("model.path", "/var/lib/${NAME:-logwarden}/model"),
        ("kafka.consumer", {"client_id": "${HOSTNAME}"}),
    ],
)
def test_parse_config_environment_variable_placeholder_is_refused_naming_key(dotted: str, value: Any) -> None:
    """logwarden never expands ``${VARIABLE}``: a group literally named so would reread the whole
    retention, a state.dir of that name would sit beside the config."""
    message = error_of(with_value(dotted, value))
    assert message.startswith(f"config.yaml: {dotted}")
    assert "looks like an environment variable, which logwarden never expands" in message


def test_parse_config_placeholder_in_a_secret_is_refused_without_showing_it() -> None:
    """The value of a secret option is masked in the refusal too."""
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "logwarden",
        "sasl_plain_password": "${KAFKA_PASSWORD}",
    }
    message = error_of(with_value("kafka.common", sasl))
    assert "kafka.common.sasl_plain_password: *** looks like an environment variable" in message
    assert "KAFKA_PASSWORD" not in message


def test_parse_config_dollar_signs_that_are_no_placeholder_are_kept() -> None:
    """A password may start with ``$`` and a regex may end with ``$``: only ``${NAME}`` is refused."""
    config = with_value("kafka.group_id", "$team-logwarden")
    assert parse_config(config, source="config.yaml").kafka.group_id == "$team-logwarden"


@pytest.mark.parametrize(
    ("size", "dead_letter_max_bytes", "refused"),
    [
        (40_000, 30_000, "what the largest alert may need"),
        (600_000, 900_000, "cannot carry a dead letter cut to kafka.dead_letter_max_bytes"),
        (600_000, 500_000, None),
    ],
)
def test_parse_config_max_request_size_must_carry_the_largest_alert_and_a_cut_dead_letter(
    size: int, dead_letter_max_bytes: int, refused: str | None
) -> None:
    """A record the producer refuses at send stops the daemon, and again on it after every restart."""
    raw = with_value("kafka.producer", {"max_request_size": size})
    raw["kafka"]["dead_letter_max_bytes"] = dead_letter_max_bytes
    if refused is None:
        assert parse_config(raw, source="config.yaml").kafka.producer == {"max_request_size": size}
    else:
        message = error_of(raw)
        assert message.startswith("config.yaml: kafka.producer.max_request_size: ") and refused in message
