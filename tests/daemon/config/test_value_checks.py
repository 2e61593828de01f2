"""One config value's checks, called directly: what each accepts, as what, and what it refuses."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from logwarden.daemon.config import value_checks as checks
from logwarden.errors import ConfigError


class NamingErrors:
    """The ``KeyErrors`` a check raises through, naming the key as the config reader does."""

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"config.yaml: {key}: {message}")


ERRORS = NamingErrors()


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (checks.non_empty_string, "logwarden", "logwarden"),
        (checks.file_path, "/var/lib/logwarden", Path("/var/lib/logwarden")),
        (checks.topic_name, "logwarden.alerts-1_x", "logwarden.alerts-1_x"),
        (checks.topic_list, ["a", "b"], ("a", "b")),
        (checks.bootstrap_servers, ["broker-1:9092", "[::1]:9093"], ("broker-1:9092", "[::1]:9093")),
        (checks.integer_at_least(0), 0, 0),
        (checks.integer_at_least(1), checks.INTEGER_MAXIMUM, checks.INTEGER_MAXIMUM),
        (checks.number(positive=True), 2, 2.0),
        (checks.number(positive=False), -1.5, -1.5),
        (checks.number(positive=True, maximum=10.0), 10, 10.0),
        (checks.non_negative_number, 0, 0.0),
        (checks.boolean, False, False),
        (checks.one_of(("raw", "json")), "json", "json"),
        (checks.regex, r"blk_-?\d+", r"blk_-?\d+"),
        (checks.header_regex, r"^\S+ (?P<content>.*)$", r"^\S+ (?P<content>.*)$"),
        (
            checks.kafka_options("consumer"),
            {"max_poll_interval_ms": 5000},
            MappingProxyType({"max_poll_interval_ms": 5000}),
        ),
    ],
)
def test_a_valid_value_comes_back_as_the_typed_model_holds_it(check: Any, value: Any, expected: Any) -> None:
    """Each check returns the value as the model holds it: a Path, a tuple, a float, a read-only mapping."""
    checked = check(ERRORS, "some.key", value)
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("check", "value", "says"),
    [
        (checks.non_empty_string, "  ", "non-empty string"),
        (checks.non_empty_string, "\ud800", "lone surrogate"),
        (checks.file_path, "/var/\0lib", "NUL"),
        (checks.topic_name, "..", "Kafka topic name"),
        (checks.topic_name, "a" * 250, "Kafka topic name"),
        (checks.topic_list, [], "non-empty list of topic names"),
        (checks.topic_list, ["a", "a"], "topic listed more than once: a"),
        (checks.bootstrap_servers, ["broker-1"], "host:port"),
        (checks.bootstrap_servers, ["broker-1:65536"], "host:port"),
        (checks.integer_at_least(1), 0, "integer from 1"),
        (checks.integer_at_least(0), True, "integer from 0"),
        (checks.integer_at_least(0), checks.INTEGER_MAXIMUM + 1, "integer from 0"),
        (checks.number(positive=True), 0, "number > 0"),
        (checks.number(positive=False), float("nan"), "finite number"),
        (checks.number(positive=False), 10**400, "finite number"),
        (checks.number(positive=True, maximum=10.0), 10.5, "at most 10"),
        (checks.non_negative_number, -0.1, "number >= 0"),
        (checks.boolean, 1, "true or false"),
        (checks.one_of(("raw", "json")), "csv", "one of raw, json"),
        (checks.regex, "blk_(", "invalid regular expression"),
        (checks.regex, "a{4294967296}", "invalid regular expression"),
        (checks.header_regex, r"^\S+ (.*)$", "(?P<content>...)"),
        (
            checks.kafka_options("consumer"),
            ["max_poll_interval_ms"],
            "mapping of kafka-python consumer options",
        ),
    ],
)
def test_an_invalid_value_is_a_config_error_naming_the_key(check: Any, value: Any, says: str) -> None:
    """A refused value raises the error of ``some.key`` with a message that says what was expected."""
    with pytest.raises(ConfigError) as raised:
        check(ERRORS, "some.key", value)
    assert str(raised.value).startswith("config.yaml: some.key")
    assert says in str(raised.value)


def test_bad_server_names_its_place_in_the_list() -> None:
    """The second server of a list is reported as ``key[1]``, so a long list is fixed at the right entry."""
    with pytest.raises(ConfigError, match=r"some\.key\[1\]: expected a non-empty list"):
        checks.bootstrap_servers(ERRORS, "some.key", ["broker-1:9092", "broker-2"])


def test_every_bad_kafka_option_of_a_section_is_one_line_naming_it() -> None:
    """Two unknown options of ``kafka.consumer`` give two lines, each with its own dotted key."""
    with pytest.raises(ConfigError) as raised:
        checks.kafka_options("consumer")(ERRORS, "kafka.consumer", {"no_such": 1, "nor_this": 2})
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["kafka.consumer.no_such", "kafka.consumer.nor_this"]


def test_finite_float_takes_ints_and_floats_but_not_bools_or_overflowing_ints() -> None:
    """``True`` is no number here, and an int beyond a float's range is refused rather than made inf."""
    assert checks.finite_float(3) == 3.0
    assert checks.finite_float(True) is None
    assert checks.finite_float(10**400) is None
    assert checks.finite_float(float("inf")) is None
