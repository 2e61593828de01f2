"""The kafka-python options a config file may pass through, and the values kafka-python can take.

``kafka.common``, ``kafka.consumer`` and ``kafka.producer`` go to KafkaConsumer and KafkaProducer
verbatim.  kafka-python checks few of them when a client is built: a value of the wrong type, an
unknown choice or a missing codec library fails only after start-up (exit 1, restarted in a loop by
systemd), and some are silently read as something else (an unknown ``security_protocol`` means
PLAINTEXT, no TLS).  The functions here say what is wrong with one option, in the words the config
reader puts after the option's dotted key (``checks`` collects them with the file's other
problems); they read kafka-python's own option tables, so a new kafka-python's options are known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from logwarden.daemon.config.placeholders import placeholder_problem
from logwarden.errors import did_you_mean, shown

Role = Literal["common", "consumer", "producer"]

KAFKA_INT32_MAXIMUM = 2**31 - 1
"""Kafka's bound for sizes, counts and milliseconds, which travel in requests as an Int32."""

# Options the daemon sets itself, with the reason quoted when a file tries to override one.
_BYTES_REASON = "records are handled as raw bytes so a dead-lettered record keeps its original value and key"
CONTROLLED_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "bootstrap_servers": "set kafka.bootstrap_servers instead",
        "group_id": "set kafka.group_id instead",
        "enable_auto_commit": "offsets are committed by logwarden only after alerts are flushed",
        "allow_auto_create_topics": "logwarden never creates topics; create them before it starts "
        "(deploy/README.md, section 5)",
        "enable_incremental_fetch_sessions": "logwarden fetches without sessions: a broker leaves a quiet "
        "partition out of a session's answers, and idle time needs every answer to show each partition",
        "transactional_id": "logwarden sets none; its outputs are at-least-once, outside transactions, "
        "with alert ids stable across replays (deploy/README.md)",
        "key_deserializer": _BYTES_REASON,
        "value_deserializer": _BYTES_REASON,
        "key_serializer": _BYTES_REASON,
        "value_serializer": _BYTES_REASON,
    }
)
# Options that take a live Python object (callable, SSLContext, class) and cannot come from YAML.
PYTHON_OBJECT_OPTIONS = frozenset(
    {
        "default_offset_commit_callback",
        "kafka_client",
        "metric_reporters",
        "partition_assignment_strategy",
        "partitioner",
        "sasl_oauth_token_provider",
        "selector",
        "ssl_context",
    }
)
# Passthrough options the daemon also reads itself: they bound its wait for a client to start.
TIMEOUT_OPTIONS = frozenset({"bootstrap_timeout_ms", "request_timeout_ms"})


def option_problem(role: Role, name: object, value: object) -> str | None:
    """Why ``name: value`` cannot be passed to kafka-python's ``role`` client, or None when it can."""
    if not isinstance(name, str):
        return f"option names must be strings, got {shown(name)}"
    if name in CONTROLLED_OPTIONS:
        return f"is set by logwarden itself: {CONTROLLED_OPTIONS[name]}"
    if name in PYTHON_OBJECT_OPTIONS:
        return "needs a Python object and cannot be set from a config file"
    allowed = _kafka_option_names(role)
    if name not in allowed:
        hint = did_you_mean(name, sorted(allowed))
        both = " (common options must be valid for both consumer and producer)" if role == "common" else ""
        return f"not a kafka-python {role} option{hint}{both}"
    if _expands_beyond(value, PASSTHROUGH_ITEMS_MAXIMUM):
        return (
            f"holds more than {PASSTHROUGH_ITEMS_MAXIMUM:,} items, or itself, once YAML aliases are expanded"
        )
    if name in TIMEOUT_OPTIONS and not is_kafka_int(value, 0):
        # Whole milliseconds: kafka-python sends request_timeout_ms in Produce requests as an Int32.
        return (
            f"expected a whole number of milliseconds from 0 to {KAFKA_INT32_MAXIMUM:,}, got {shown(value)}"
        )
    return _value_problem(role, name, value)


def as_passed(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """Checked options as kafka-python takes them: read-only, ``api_version`` as the tuple it needs."""
    passed = dict(options)
    if isinstance(passed.get("api_version"), list):
        passed["api_version"] = tuple(passed["api_version"])
    return MappingProxyType(passed)


def security_problem(
    role: Literal["consumer", "producer"], own: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The first TLS or SASL option of ``role`` that would not act, as (dotted key, problem), or None.

    kafka-python ignores TLS and SASL options under a protocol that does not use them, so
    ``ssl_cafile`` without ``security_protocol: SSL`` would connect in plain text.  ``own`` is the
    role's own section, ``options`` that section over ``kafka.common``.
    """
    protocol = options.get("security_protocol", "PLAINTEXT")

    def key(name: str) -> str:
        """The dotted key that set ``name`` for this role: its own section wins over common."""
        return f"kafka.{role if name in own else 'common'}.{name}"

    if protocol in _PROTOCOLS_USING["sasl_"] and options.get("sasl_mechanism") is None:
        return key("security_protocol"), f"{protocol} needs sasl_mechanism (e.g. SCRAM-SHA-512)"
    for name, value in options.items():
        prefix = next((p for p in _PROTOCOLS_USING if name.startswith(p)), None)
        if prefix is None or value is None or name in _ALWAYS_SET_SECURITY:
            continue
        if protocol not in _PROTOCOLS_USING[prefix]:
            needed = " or ".join(_PROTOCOLS_USING[prefix])
            return key(name), (
                f"has no effect with security_protocol {protocol} (the {role}'s): set "
                f"security_protocol to {needed} (kafka.common), or remove it"
            )
    return None


def is_kafka_int(value: Any, minimum: int) -> bool:
    """Whether ``value`` is an integer (not a bool) from ``minimum`` up to Kafka's Int32 bound."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= KAFKA_INT32_MAXIMUM


PASSTHROUGH_ITEMS_MAXIMUM = 10_000
"""Most items in one passthrough value (``socket_options`` takes any list).  The start-up log and
``--check`` expand YAML aliases, so a list that contains itself would never end, and aliases nested
a few levels deep (``[*a, *a]`` of ``[*b, *b]`` ...) would take hours."""


def _expands_beyond(value: Any, limit: int) -> bool:
    """Whether ``value`` holds more than ``limit`` lists, mappings and scalars once aliases are expanded."""
    pending, count = [value], 0
    while pending:
        count += 1
        if count > limit:
            return True
        item = pending.pop()
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _kafka_defaults(role: Role) -> list[Mapping[str, Any]]:
    # Imported here: reading a config needs kafka-python for its option names and defaults only.
    from kafka import KafkaConsumer, KafkaProducer

    consumer, producer = KafkaConsumer.DEFAULT_CONFIG, KafkaProducer.DEFAULT_CONFIG
    return {"common": [consumer, producer], "consumer": [consumer], "producer": [producer]}[role]


def _kafka_option_names(role: Role) -> frozenset[str]:
    return frozenset.intersection(*(frozenset(defaults) for defaults in _kafka_defaults(role)))


# Passthrough options whose kafka-python default (None, or one of several accepted forms) does not
# show what a file must give.  The others are checked against their default's type.
_OPTION_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "acks": "acks",
        "api_version": "version",
        "socket_options": "socket_options",
        "receive_buffer_bytes": "integer",
        "send_buffer_bytes": "integer",
        **{
            name: "string"
            for name in (
                "client_id",
                "compression_type",
                "group_instance_id",
                "proxy_url",
                "sasl_kerberos_domain_name",
                "sasl_kerberos_name",
                "sasl_mechanism",
                "sasl_plain_password",
                "sasl_plain_username",
                "socks5_proxy",
                "ssl_cafile",
                "ssl_certfile",
                "ssl_ciphers",
                "ssl_crlfile",
                "ssl_keyfile",
                "ssl_password",
            )
        },
    }
)
_KIND_RULES: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "boolean": (lambda v: isinstance(v, bool), "true or false"),
        "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        "string": (lambda v: isinstance(v, str), "a string"),
        "list": (lambda v: isinstance(v, list), "a list"),
        # acks 0 is refused: the producer then never hears of a lost alert, and the daemon commits
        # offsets past it as delivered (the checkpoint order waits for acknowledged writes).
        "acks": (
            lambda v: v in ("all",) or (type(v) is int and v in (-1, 1)),
            "1, -1 or all (0 would let alerts be lost)",
        ),
        # Each entry is passed to socket.setsockopt when a connection opens; a malformed one fails
        # there, which the daemon reports as "no broker answered" (exit 8) and systemd retries forever.
        "socket_options": (
            lambda v: (
                isinstance(v, list)
                and all(
                    isinstance(entry, list)
                    and len(entry) == 3
                    and all(type(part) is int for part in entry[:2])
                    and (type(entry[2]) is int or isinstance(entry[2], bytes))
                    for entry in v
                )
            ),
            "a list of [level, option, value] integers, e.g. [[6, 1, 1]] "
            "(TCP_NODELAY, kafka-python's default)",
        ),
        "version": (
            lambda v: _broker_version(v) is not None,
            'a broker version such as "3.6" or [3, 6], not older than kafka-python knows',
        ),
    }
)


def _broker_version(value: Any) -> tuple[int, ...] | None:
    """``value`` as the version tuple kafka-python takes, or None when it cannot use it.

    kafka-python parses a version string only when a client starts (a ValueError then), and raises
    UnrecognizedBrokerVersion, an error no config check names, for one older than it knows.
    """
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9}){0,3}", value):
        version = tuple(int(part) for part in value.split("."))
    elif isinstance(value, list) and value and all(type(part) is int and part >= 0 for part in value):
        version = tuple(value)
    else:
        return None
    oldest = _oldest_broker_version()
    # kafka-python pads a short version with a zero: [0, 8] means 0.8.0.
    return version if oldest is None or version + (0,) >= oldest else None


def _oldest_broker_version() -> tuple[int, ...] | None:
    """The oldest broker version this kafka-python knows (None when its table cannot be read)."""
    try:
        from kafka.protocol.broker_version_data import BROKER_API_VERSIONS
    except ImportError:  # another kafka-python layout: kafka-python checks the version when starting
        return None
    return min(BROKER_API_VERSIONS)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Where kafka-python takes any value of the right type and misreads it (an unknown reset policy
# silently means none, an unknown security_protocol silently means PLAINTEXT, no TLS), or refuses it
# only when a client is built, after start-up (the others).
# Each: (choices, whether kafka-python compares them case-insensitively).
_OPTION_CHOICES: Mapping[str, tuple[tuple[str, ...], bool]] = MappingProxyType(
    {
        "auto_offset_reset": (("earliest", "latest", "none"), True),
        "security_protocol": (SECURITY_PROTOCOLS, False),
        "isolation_level": (("read_uncommitted", "read_committed"), True),
        "client_dns_lookup": (("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"), False),
        "compression_type": (("gzip", "snappy", "lz4", "zstd"), False),
    }
)
_POSITIVE_OPTIONS = frozenset(
    {
        "fetch_max_bytes",
        "max_in_flight_requests_per_connection",
        "max_partition_fetch_bytes",
        "max_poll_records",
        "max_request_size",
        "metrics_num_samples",
    }
)


def _kafka_option_kind(role: Role, name: str) -> str | None:
    """What ``name`` takes, or None when neither the table nor kafka-python's default tells."""
    if name in _OPTION_KINDS:
        return _OPTION_KINDS[name]
    kinds = {_kind_of(defaults[name]) for defaults in _kafka_defaults(role)}
    return kinds.pop() if len(kinds) == 1 else None


def _kind_of(default: Any) -> str | None:
    for python_type, kind in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(default, python_type):
            return kind
    return "list" if isinstance(default, (list, tuple)) else None


SECRET_MARKERS = ("password", "secret", "token", "ssl_key", "credential")
MASK = "***"


def is_secret(key: str) -> bool:
    """Whether an option's value must never be shown: the config log line, ``--check`` and errors mask it."""
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def _value_problem(role: Role, name: str, value: Any) -> str | None:
    """A value of the wrong type fails here, not deep inside kafka-python after the daemon started.

    kafka-python checks few option types when a client is built; a string where it expects a number
    raises a TypeError only when the option is first used (``max_poll_interval_ms`` at the group
    join), which exits 1 and restarts in a loop instead of exit 3.  null is kafka-python's default
    only where that default is None.
    """
    kind = _kafka_option_kind(role, name)
    if value is None:
        if all(defaults[name] is None for defaults in _kafka_defaults(role)):
            return None
        expected = _KIND_RULES[kind][1] if kind is not None else "a value"
        return f"expected {expected}, got null (leave the option out for kafka-python's default)"
    if isinstance(value, str) and placeholder_problem(value) is not None:
        return placeholder_problem(value, shown_as=MASK if is_secret(name) else None)
    if kind is None:
        return None
    accepts, expected = _KIND_RULES[kind]
    if not accepts(value):  # an unquoted numeric password is a common slip, and stderr goes to the journal
        return f"expected {expected}, got {MASK if is_secret(name) else shown(value)}"
    minimum = 1 if name in _POSITIVE_OPTIONS else 0
    if kind == "integer" and not is_kafka_int(value, minimum):  # sizes, counts and milliseconds
        return f"expected an integer from {minimum} to {KAFKA_INT32_MAXIMUM:,}, got {shown(value)}"
    choices, case_insensitive = _OPTION_CHOICES.get(name, (None, False))
    if name == "sasl_mechanism":
        choices = _sasl_mechanisms()
    if choices is not None and (value.lower() if case_insensitive else value) not in choices:
        return f"expected one of {', '.join(choices)}; got {shown(value)}"
    if name == "compression_type" and not _codec_available(value):
        package = _CODEC_PACKAGES.get(value, value)
        return f"{value} needs its compression library, which is not installed (pip install {package})"
    return None


_CODEC_PACKAGES = MappingProxyType({"snappy": "python-snappy", "zstd": "zstandard", "lz4": "lz4"})


def _codec_available(codec: str) -> bool:
    """Whether kafka-python finds the library of ``codec``: it checks only when the producer is built."""
    try:
        from kafka import codec as codecs
    except ImportError:  # another kafka-python layout: the producer checks it at start
        return True
    checker = getattr(codecs, f"has_{codec}", None)
    return True if checker is None else bool(checker())


def _sasl_mechanisms() -> tuple[str, ...] | None:
    """The SASL mechanisms this kafka-python can use (None when its registry cannot be read)."""
    try:
        from kafka.net.sasl import SASL_MECHANISMS
    except ImportError:  # another kafka-python layout: kafka-python checks the name when connecting
        return None
    return tuple(sorted(SASL_MECHANISMS))


# Security options with a non-None kafka-python default, harmless under any protocol.
_ALWAYS_SET_SECURITY = frozenset({"ssl_check_hostname", "sasl_kerberos_service_name"})
# The protocols under which kafka-python reads sasl_* and ssl_* options.
_PROTOCOLS_USING: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"sasl_": ("SASL_PLAINTEXT", "SASL_SSL"), "ssl_": ("SSL", "SASL_SSL")}
)
