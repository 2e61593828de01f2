"""The pure rules for kafka-python passthrough options (daemon/config/kafka_options.py).

The config reader's own tests (test_config.py, test_config_robustness.py) prove these rules through
whole files; these name the module's contract: a problem in words for the reader to put after the
option's dotted key, None for an option kafka-python can take.
"""

from __future__ import annotations

from typing import Any

import pytest

from logwarden.daemon.config.kafka_options import (
    CONTROLLED_OPTIONS,
    KAFKA_INT32_MAXIMUM,
    as_passed,
    option_problem,
    security_problem,
)


@pytest.mark.parametrize(
    ("role", "name", "value"),
    [
        ("consumer", "max_poll_interval_ms", 5000),
        ("producer", "acks", "all"),
        ("producer", "compression_type", "gzip"),
        ("common", "security_protocol", "SASL_SSL"),
        ("common", "api_version", [3, 6]),
        ("consumer", "auto_offset_reset", "EARLIEST"),  # kafka-python compares it case-insensitively
        ("common", "ssl_cafile", None),  # null is kafka-python's default here
    ],
)
def test_option_problem_is_none_for_options_kafka_python_takes(role: Any, name: str, value: Any) -> None:
    """Valid names and values pass: any case where kafka-python ignores it, null where its default is None."""
    assert option_problem(role, name, value) is None


@pytest.mark.parametrize(
    ("role", "name", "value", "words"),
    [
        ("consumer", "group_id", "x", "set by logwarden itself"),
        ("consumer", "partition_assignment_strategy", [], "needs a Python object"),
        ("consumer", "max_poll_intervall_ms", 5000, 'did you mean "max_poll_interval_ms"'),
        ("common", "linger_ms", 5, "valid for both consumer and producer"),
        ("producer", "acks", 0, "0 would let alerts be lost"),
        ("consumer", "max_poll_records", 0, "from 1 to"),
        ("consumer", "fetch_max_wait_ms", KAFKA_INT32_MAXIMUM + 1, f"to {KAFKA_INT32_MAXIMUM:,}"),
        ("common", "request_timeout_ms", 1.5, "whole number of milliseconds"),
        ("common", "security_protocol", "TLS", "expected one of PLAINTEXT, SSL"),
        ("common", "api_version", "0.1", "broker version"),
        ("consumer", "max_poll_records", None, "got null"),
        ("consumer", 7, 1, "option names must be strings"),
    ],
)
def test_option_problem_says_what_is_wrong(role: Any, name: Any, value: Any, words: str) -> None:
    """Each refusal names its cause: a controlled option, a Python object, a typo, a type, a range."""
    problem = option_problem(role, name, value)

    assert problem is not None and words in problem


def test_option_problem_refuses_a_value_that_contains_itself() -> None:
    """A YAML alias cycle would never finish expanding in the start-up log: it is refused."""
    endless: list[Any] = []
    endless.append(endless)

    problem = option_problem("common", "socket_options", endless)

    assert problem is not None and "or itself" in problem


def test_every_controlled_option_is_refused_with_its_reason() -> None:
    """An option logwarden sets itself is refused with the reason, whatever value the file gives."""
    for name, reason in CONTROLLED_OPTIONS.items():
        role = "producer" if name.endswith("serializer") or name == "transactional_id" else "consumer"
        assert option_problem(role, name, None) == f"is set by logwarden itself: {reason}"


def test_as_passed_gives_api_version_as_the_tuple_kafka_python_needs() -> None:
    """YAML has no tuples and kafka-python takes api_version only as one; the result is read-only."""
    passed = as_passed({"api_version": [3, 6], "linger_ms": 5})

    assert passed == {"api_version": (3, 6), "linger_ms": 5}
    with pytest.raises(TypeError):
        passed["linger_ms"] = 0  # type: ignore[index]


def test_security_problem_names_the_section_that_set_the_ignored_option() -> None:
    """A TLS option set in kafka.common is named there, for the role whose protocol ignores it."""
    common = {"ssl_cafile": "/etc/ca.pem"}
    own = {"security_protocol": "PLAINTEXT"}

    found = security_problem("consumer", own, {**common, **own})

    assert found is not None
    key, problem = found
    assert key == "kafka.common.ssl_cafile"
    assert "has no effect with security_protocol PLAINTEXT (the consumer's)" in problem


def test_security_problem_asks_for_a_sasl_mechanism_under_sasl() -> None:
    """SASL without a mechanism is refused at the key that chose SASL."""
    own = {"security_protocol": "SASL_SSL"}

    assert security_problem("producer", own, own) == (
        "kafka.producer.security_protocol",
        "SASL_SSL needs sasl_mechanism (e.g. SCRAM-SHA-512)",
    )


def test_security_problem_is_none_when_the_protocol_uses_the_options() -> None:
    """TLS and SASL options under SASL_SSL act, so nothing is reported."""
    options = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "ssl_cafile": "/etc/ca.pem"}

    assert security_problem("consumer", {}, options) is None
