"""Seeded fuzzing of record decoding: any value and key give an event or a documented DecodeError.

The daemon must never stop on a record, so ``decode_one`` may only return an event or raise
DecodeError with one of the reasons deploy/README.md documents.  Each configuration the daemon
supports is fed random bytes, random JSON documents, mutations of valid records and hand-picked
edge cases; the generator is seeded, so a failure reproduces and names the input that caused it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from model_metadata import HDFS_BLOCK, hdfs_metadata

from logwarden.daemon.config import EntityConfig, InputConfig, JsonInputConfig
from logwarden.daemon.decode import DECODE_REASONS, NO_EVENT_TIME, DecodedEvent, MessageDecoder
from logwarden.errors import DecodeError
from logwarden.events.entity import MAX_ENTITY_CHARS

SEED = 20_251_206
HEADER = "081109 203615 148 INFO dfs.DataNode$PacketResponder: "
TERMINATING = HEADER + "PacketResponder 1 for block blk_3886 terminating"
RECEIVING = HEADER + "Receiving block blk_-16089 src: /10.250.19.102:54106 dest: /10.250.19.102:50010"
ASKING = "081109 203615 148 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.1:50010 to delete blk_1 blk_2"
RECORD_TS = 1_700_000_000_123
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TIMESTAMP_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, the decoder's documented bound

FieldPath = tuple[str, ...]

CASE_KEY: Any = object()
"""``outcome``'s default key: the record key of the case's valid records."""


@dataclass(frozen=True)
class DecoderCase:
    """One decoder configuration, valid records for it, and where its JSON records keep each field."""

    name: str
    decoder: MessageDecoder
    samples: tuple[bytes, ...]
    key: bytes | None
    documents: tuple[dict[str, Any], ...] = ()
    entity_path: FieldPath | None = None
    message_path: FieldPath | None = None
    event_path: FieldPath | None = None
    timestamp_path: FieldPath | None = None

    @property
    def is_json(self) -> bool:
        """Whether the decoder reads JSON records (else raw lines)."""
        return self.decoder.json_input


def build(
    fmt: str, entity: EntityConfig, json_input: JsonInputConfig | None = None, kind: str = "logs"
) -> MessageDecoder:
    """A decoder as the daemon builds it from its config and model (helper)."""
    config = InputConfig(
        format=fmt,  # type: ignore[arg-type]
        entity=entity,
        json=json_input or JsonInputConfig(),
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    return MessageDecoder.build(config, hdfs_metadata(kind))


def encode(document: Any) -> bytes:
    """JSON of ``document`` as a producer would send it; lone surrogates stay ``\\ud800`` escapes."""
    return json.dumps(document).encode("ascii")


def with_field(document: dict[str, Any], path: FieldPath, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with ``value`` at ``path`` (nested objects made as needed)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    node = copy
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return copy


def json_case(
    name: str, documents: Sequence[dict[str, Any]], decoder: MessageDecoder, **paths: Any
) -> DecoderCase:
    """A JSON decoder case whose samples are ``documents`` encoded (helper)."""
    return DecoderCase(
        name,
        decoder,
        tuple(encode(document) for document in documents),
        b"host-7",
        tuple(documents),
        **paths,
    )


CASES = (
    DecoderCase(
        "raw_entity_regex",
        build("raw", EntityConfig(regex=HDFS_BLOCK)),
        tuple(line.encode() for line in (TERMINATING, RECEIVING, ASKING)),
        None,
    ),
    DecoderCase(
        "raw_entity_key",
        build("raw", EntityConfig(key=True)),
        tuple(line.encode() for line in (TERMINATING, "Dec 10 06:55:46 LabSZ sshd[24200]: closed")),
        b"host-7",
    ),
    json_case(
        "json_entity_field",
        [{"host": "dn-3", "message": TERMINATING}, {"host": 42, "message": ASKING, "extra": [1, {"a": 2.5}]}],
        build("json", EntityConfig(field="host")),
        entity_path=("host",),
        message_path=("message",),
    ),
    json_case(
        "json_dotted_fields",
        [{"host": {"name": "dn-3"}, "log": {"message": TERMINATING}, "meta": {"ts": 1_700_000_000}}],
        build(
            "json",
            EntityConfig(field="host.name"),
            JsonInputConfig(message_field="log.message", timestamp_field="meta.ts"),
        ),
        entity_path=("host", "name"),
        message_path=("log", "message"),
        timestamp_path=("meta", "ts"),
    ),
    json_case(
        "json_entity_regex",
        [{"message": TERMINATING}, {"message": RECEIVING, "level": "INFO"}],
        build("json", EntityConfig(regex=HDFS_BLOCK)),
        message_path=("message",),
    ),
    json_case(
        "json_event_field",
        [{"user": "alice", "event": "22"}, {"user": "bob", "event": 5, "message": "login ok"}],
        build("json", EntityConfig(field="user"), JsonInputConfig(event_field="event"), kind="sequences"),
        entity_path=("user",),
        message_path=("message",),
        event_path=("event",),
    ),
    json_case(
        "json_entity_key",
        [{"message": TERMINATING}],
        build("json", EntityConfig(key=True)),
        message_path=("message",),
    ),
    json_case(
        "json_timestamp_field",
        [
            {"host": "dn-3", "message": TERMINATING, "ts": "2023-11-14T22:13:20Z"},
            {"host": "dn-4", "message": RECEIVING, "ts": 1_700_000_000_250},
        ],
        build("json", EntityConfig(field="host"), JsonInputConfig(timestamp_field="ts")),
        entity_path=("host",),
        message_path=("message",),
        timestamp_path=("ts",),
    ),
)
JSON_CASES = tuple(case for case in CASES if case.is_json)
RAW_CASES = tuple(case for case in CASES if not case.is_json)


def case_id(case: DecoderCase) -> str:
    """The case's name, as its pytest id."""
    return case.name


# -- the property -----------------------------------------------------------------------------


def outcome(
    case: DecoderCase,
    value: bytes | None,
    *,
    key: bytes | None = CASE_KEY,
    timestamp_ms: int | None = RECORD_TS,
    reasons: Iterable[str] = DECODE_REASONS,
) -> DecodedEvent | DecodeError:
    """The event of one record, or its DecodeError; fails the test on anything else (helper).

    A decoded event must also be one the daemon can act on: a non-empty entity it can encode as a
    Kafka key, of at most MAX_ENTITY_CHARS, and an event time in the documented range.
    """
    record_key = case.key if key is CASE_KEY else key
    try:
        event = case.decoder.decode_one(value, record_key, timestamp_ms)
    except DecodeError as error:
        allowed = set(reasons)
        if error.reason not in allowed:
            pytest.fail(f"{case.name}: reason {error.reason!r} not in {sorted(allowed)} for {shown(value)}")
        return error
    except Exception as exc:  # any other exception is the failure this module hunts
        pytest.fail(f"{case.name}: {type(exc).__name__}: {str(exc)[:200]} for {shown(value)}")
    check_event(case, event, timestamp_ms, value)
    return event


def check_event(
    case: DecoderCase, event: DecodedEvent, timestamp_ms: int | None, value: bytes | None
) -> None:
    """Fails unless ``event`` is one the daemon can score, key and store (helper)."""
    where = f"{case.name}: {event!r:.200} for {shown(value)}"
    assert type(event.entity) is str and 0 < len(event.entity) <= MAX_ENTITY_CHARS, where
    event.entity.encode("utf-8")  # a Kafka key and state-store key; UnicodeEncodeError fails the test
    assert type(event.event_id) is int and type(event.text) is str, where
    assert type(event.event_time_ms) is int, where
    if case.timestamp_path is not None:
        # An unreadable timestamp field leaves the event without a time (NO_EVENT_TIME), not unscored.
        assert event.event_time_ms == NO_EVENT_TIME or 0 <= event.event_time_ms < MAX_TIMESTAMP_MS, where
    else:
        assert event.event_time_ms == (-1 if timestamp_ms is None else timestamp_ms), where


def shown(value: bytes | None) -> str:
    """A short, reproducible description of an input for a failure message."""
    if value is None:
        return "None"
    return f"{len(value)} bytes {value[:120]!r}{'...' if len(value) > 120 else ''}"


# -- generators -------------------------------------------------------------------------------

FIELD_NAMES = ("host", "name", "message", "log", "event", "user", "ts", "meta", "level", "")
# Literal dotted keys, which a dotted field name prefers to the nested path.
DOTTED_NAMES = ("host.name", "log.message", "meta.ts")
STRINGS = (
    "",
    " ",
    "\t\r\n",
    "\u2028",
    "dn-3",
    TERMINATING,
    "blk_1",
    "blk_-",
    "\ud800",
    "\udfff blk_7",
    "\x00",
    "é",
    "\U0001f600",
    "2023-11-14T22:13:20Z",
    "99999-01-01",
    "NaN",
)
NUMBERS = (0, -1, 1, 22, 10**19, -(10**19), 0.5, -0.0, 1e300, 5e-324, 1_700_000_000, 1_700_000_000_250)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased towards the field names and values decoders look at."""
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {rng.choice(FIELD_NAMES): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    if depth < 4 and roll < 0.35:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if roll < 0.6:
        return rng.choice(STRINGS)
    if roll < 0.8:
        return rng.choice(NUMBERS)
    return rng.choice((True, False, None))


def random_document(rng: random.Random, case: DecoderCase) -> dict[str, Any]:
    """A valid document of ``case`` with each of its fields replaced by a random value at random."""
    document = rng.choice(case.documents)
    for path in (case.entity_path, case.message_path, case.event_path, case.timestamp_path):
        if path is not None and rng.random() < 0.5:
            document = with_field(document, path, random_json(rng))
    if rng.random() < 0.3:
        document = with_field(document, (rng.choice(FIELD_NAMES + DOTTED_NAMES),), random_json(rng))
    return document


NASTY_INSERTS = (
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",  # a surrogate encoded as UTF-8 bytes (CESU-8), which UTF-8 forbids
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\r",
    b"\n",
    b"\\ud800",
    b"\\udfff",
    b"\\u0000",
    b'"',
    b"\\",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"[",
    b"{",
    b",",
    b"9" * 5000,
)


# -- random bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_random_bytes_give_event_or_documented_reason(case: DecoderCase) -> None:
    """Random bytes of every short length and some long ones never raise anything but DecodeError."""
    rng = random.Random(SEED)
    lengths = [length for length in range(64) for _ in range(8)] + [
        rng.randrange(64, 5000) for _ in range(60)
    ]
    for length in lengths:
        outcome(case, rng.randbytes(length))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_random_ascii_and_json_tokens_give_event_or_documented_reason(case: DecoderCase) -> None:
    """Random text built from JSON punctuation, digits and escapes reaches the parser's error paths."""
    rng = random.Random(SEED)
    alphabet = list('{}[]":,.-+eE0123456789 \\u tnrfalsNIy') + ["\\ud800", "blk_1", '"host"', '"message"']
    for _ in range(600):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60)))
        outcome(case, text.encode())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_random_record_keys_give_event_or_documented_reason(case: DecoderCase) -> None:
    """Record keys of random bytes, empty, absent or longer than an entity never crash the decoder."""
    rng = random.Random(SEED)
    keys: list[bytes | None] = [None, b"", b"\xff", b"\xed\xa0\x80", b"k" * (MAX_ENTITY_CHARS + 1)]
    keys += [rng.randbytes(rng.randrange(1, 40)) for _ in range(200)]
    for key in keys:
        result = outcome(case, case.samples[0], key=key)
        if key == b"k" * (MAX_ENTITY_CHARS + 1) and case.name.endswith("_key"):
            assert isinstance(result, DecodeError) and result.reason == "oversize"


# -- random JSON documents ----------------------------------------------------------------------


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_decode_one_random_documents_give_event_or_documented_reason(case: DecoderCase) -> None:
    """Valid records whose fields hold random JSON values of any type decode or are dead-lettered."""
    rng = random.Random(SEED)
    for _ in range(1500):
        outcome(case, encode(random_document(rng, case)), timestamp_ms=rng.choice((RECORD_TS, -1, None)))


# -- mutations of valid records -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_valid_record_decodes(case: DecoderCase) -> None:
    """Every sample is a valid record: the mutations below start from something that decodes."""
    for sample in case.samples:
        assert isinstance(outcome(case, sample), DecodedEvent), sample


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_truncated_record_gives_event_or_documented_reason(case: DecoderCase) -> None:
    """A record cut at any byte (a producer's partial write, a cut UTF-8 sequence) never crashes."""
    for sample in case.samples:
        for end in range(len(sample) + 1):
            outcome(case, sample[:end])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_byte_flipped_record_gives_event_or_documented_reason(case: DecoderCase) -> None:
    """A record with one byte replaced by any other value decodes or is dead-lettered."""
    rng = random.Random(SEED)
    for sample in case.samples:
        for _ in range(400):
            position = rng.randrange(len(sample))
            flipped = sample[:position] + bytes([rng.randrange(256)]) + sample[position + 1 :]
            outcome(case, flipped)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_record_with_inserted_bad_bytes_gives_event_or_documented_reason(
    case: DecoderCase,
) -> None:
    """NUL, invalid UTF-8, BOMs, CR/LF, surrogate escapes and number literals anywhere never crash."""
    rng = random.Random(SEED)
    for sample in case.samples:
        for insert in NASTY_INSERTS:
            for position in {0, len(sample), *(rng.randrange(len(sample)) for _ in range(25))}:
                outcome(case, sample[:position] + insert + sample[position:])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_record_of_max_size_decodes_one_byte_more_is_oversize(case: DecoderCase) -> None:
    """A valid record padded to exactly input.max_message_bytes decodes; one byte longer is oversize."""
    for size in (MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 4 * MAX_MESSAGE_BYTES):
        value = padded(case, size)
        assert len(value) == size
        result = outcome(case, value)
        if size <= MAX_MESSAGE_BYTES:
            assert isinstance(result, DecodedEvent), result
        else:
            assert isinstance(result, DecodeError) and result.reason == "oversize", result


def padded(case: DecoderCase, size: int) -> bytes:
    """The case's first sample grown to exactly ``size`` bytes and still valid (helper)."""
    if not case.is_json:
        sample = case.samples[0] + b" "
        return sample + b"x" * (size - len(sample))
    document = dict(case.documents[0])
    document["pad"] = ""
    overhead = len(encode(document))
    document["pad"] = "x" * (size - overhead)
    return encode(document)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decode_one_long_single_token_line_gives_event_or_documented_reason(case: DecoderCase) -> None:
    """Messages near the size limit made of one long token, digits, addresses or ids do not crash."""
    for chunk in (b"x", b"1", b"1.", b"blk_1 ", b"10.0.0.1 ", b"aa:", b"-", b"\t", b"\xc3\xa9"):
        if case.is_json:
            body = chunk * (MAX_MESSAGE_BYTES // 6 // len(chunk))
            assert case.message_path is not None
            value = encode(with_field(case.documents[0], case.message_path, HEADER + body.decode()))
        else:
            value = HEADER.encode() + chunk * ((MAX_MESSAGE_BYTES - 100) // len(chunk))
        outcome(case, value)


# -- JSON edge cases ----------------------------------------------------------------------------

JSON_EDGE_VALUES = (
    b"",
    b" ",
    b"\n",
    b"null",
    b"true",
    b"0",
    b'""',
    b"[]",
    b"{}",
    b"[" * 100_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000,
    b'{"x": ' + b"1" * 5000 + b"}",
    b'{"x": -' + b"1" * 5000 + b"}",
    b'{"x": 1' + b"0" * 5000 + b".5}",
    b'{"x": 0.' + b"0" * 5000 + b"1}",
    b'{"x": 1e-99999}',
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"x": 1e999}',
    b'{"x": -1e999}',
    b'{"x": nan}',
    b'{"x": "\\ud800"}',
    b'{"\\ud800": 1}',
    b'{"x": 1} {"y": 2}',
    b'{"x": 1}x',
    b'{"x": "\x00"}',
    b'{"x": "a\nb"}',
    b'{"x": "\\u00"}',
    b'{"x": 01}',
    b'{"x": .5}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
)


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_decode_one_json_edge_case_gives_event_or_documented_reason(case: DecoderCase) -> None:
    """Deep nesting, oversized integers, non-finite literals and broken escapes are all dead letters."""
    for value in JSON_EDGE_VALUES:
        assert isinstance(outcome(case, value), DecodeError), value[:80]


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_decode_one_json_nested_or_huge_values_in_fields_give_documented_reason(case: DecoderCase) -> None:
    """Deeply nested arrays and objects or 5,000-digit numbers inside a valid record are rejected."""
    sample = case.samples[0]
    assert sample.startswith(b"{")
    for value in (
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b"[" * 900 + b"]" * 900,
        b"1" * 5000,
        b"-" + b"9" * 5000,
        b"NaN",
        b"-Infinity",
        b"1e999",
    ):
        for name in ("host", "user", "message", "event", "ts", "unused"):
            outcome(case, b'{"' + name.encode() + b'": ' + value + b", " + sample[1:])
            outcome(case, sample[:-1] + b', "' + name.encode() + b'": ' + value + b"}")


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_decode_one_json_duplicate_keys_and_bom_give_event_or_documented_reason(case: DecoderCase) -> None:
    """A key given twice (the last one counts) and a byte order mark never crash the decoder."""
    sample = case.samples[0]
    for extra in (b'"host": null, ', b'"message": 1, ', b'"event": [], ', b'"user": "", ', b'"ts": "x", '):
        outcome(case, b"{" + extra + sample[1:])
        outcome(case, sample[:-1] + b", " + extra[:-2] + b"}")
    outcome(case, b"\xef\xbb\xbf" + sample)


WRONG_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    [],
    ["dn-3"],
    {},
    {"name": "dn-3"},
    0,
    -1,
    10**4000,
    -(10**4000),
    0.5,
    -0.0,
    1e300,
    "",
    " ",
    "\t\r\n",
    "\u2028\u3000",
    "\ud800",
    "a\udfffb",
    "\x00",
    "x" * (MAX_ENTITY_CHARS + 1),
    "x" * 5000,
    TERMINATING,
    json.loads("[" * 500 + "]" * 500),
)
FIELD_REASONS = {
    "entity": {"missing_entity", "oversize", "invalid_utf8"},
    "message": {"missing_message", "missing_entity", "oversize", "invalid_utf8"},
    "event": {"missing_event", "missing_entity", "oversize", "invalid_utf8"},
    "timestamp": set(),
}


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_decode_one_json_field_of_wrong_type_gives_its_own_reason(case: DecoderCase) -> None:
    """A configured field holding any JSON type or an odd string decodes or gets that field's reason."""
    paths = {
        "entity": case.entity_path,
        "message": case.message_path,
        "event": case.event_path,
        "timestamp": case.timestamp_path,
    }
    for field, path in paths.items():
        if path is None:
            continue
        for document in case.documents:
            for value in WRONG_VALUES:
                outcome(case, encode(with_field(document, path, value)), reasons=FIELD_REASONS[field])


def test_decode_one_json_blank_entity_field_is_missing_entity() -> None:
    """An empty entity, or an entity of another type than string or integer, belongs to no session."""
    case = next(case for case in JSON_CASES if case.name == "json_entity_field")
    for value in ("", None, True, [], {}, 0.5):
        result = outcome(case, encode(with_field(case.documents[0], ("host",), value)))
        assert isinstance(result, DecodeError) and result.reason == "missing_entity", value


TIMESTAMPS: tuple[Any, ...] = (
    None,
    True,
    [],
    {},
    "",
    " ",
    "NaN",
    "Infinity",
    "yesterday",
    "1700000000",
    "99999-01-01T00:00:00",
    "+99999-01-01",
    "-0001-01-01",
    "0000-01-01",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59.999999",
    "1969-12-31T23:59:59Z",
    "2023-13-45",
    "2023-11-14T25:00:00",
    "2023-11-14T22:13:20+24:00",
    "2023-11-14T22:13:20.123456789Z",
    "2023-11-14\x00",
    "2023-11-14T22:13:20\ud800",
    "9" * 5000,
    -1,
    -1.5,
    -(10**4000),
    10**4000,
    10**20,
    MAX_TIMESTAMP_MS - 1,
    MAX_TIMESTAMP_MS,
    99_999_999_999.9999,
    1e300,
    -1e300,
    5e-324,
    -0.0,
)


@pytest.mark.parametrize("case", [c for c in JSON_CASES if c.timestamp_path is not None], ids=case_id)
def test_decode_one_timestamp_of_any_type_or_range_gives_an_event_in_range_or_without_time(
    case: DecoderCase,
) -> None:
    """Every wrong type, out-of-range number or odd ISO string still gives the event (scored), its time
    in range or NO_EVENT_TIME, and each unreadable one is counted."""
    assert case.timestamp_path is not None
    for value in TIMESTAMPS:
        for document in case.documents:
            counted = case.decoder.unreadable_event_times
            result = outcome(case, encode(with_field(document, case.timestamp_path, value)), reasons=())
            assert isinstance(result, DecodedEvent)
            unreadable = result.event_time_ms == NO_EVENT_TIME
            assert case.decoder.unreadable_event_times == counted + unreadable, value
    for value in (b"NaN", b"-Infinity", b"1e999", b"1" * 5000):
        document = dict(case.documents[0])
        placeholder = "__timestamp__"
        document = with_field(document, case.timestamp_path, placeholder)
        raw = encode(document).replace(b'"' + placeholder.encode() + b'"', value)
        outcome(case, raw, reasons={"non_finite_number", "invalid_json"})


# -- raw-line edge cases ------------------------------------------------------------------------

RAW_EDGE_LINES = (
    b"",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n\n",
    b" \t ",
    b"\x00",
    b"\x0b\x0c\x1c\x1d",
    "\u2028".encode(),
    "\x85".encode(),
    HEADER.encode(),
    HEADER.rstrip().encode(),
    HEADER.encode() + b"blk_1",
    b"081109 203615 148 INFO",
    TERMINATING.replace(" for ", "\r\nfor ").encode(),
    TERMINATING.replace(" for ", "\n").encode(),
    b"\r" + TERMINATING.encode(),
    TERMINATING.encode() + b"\r\r\n\n",
    b"\xef\xbb\xbf" + TERMINATING.encode(),
    b"\xef\xbb\xbf",
    b"blk_" + b"1" * 5000,
    b"blk_1" + b"\x00" * 100,
    TERMINATING.encode() + "\ud800".encode("utf-8", "surrogatepass"),
)


@pytest.mark.parametrize("case", RAW_CASES, ids=case_id)
def test_decode_one_raw_edge_line_gives_event_or_documented_reason(case: DecoderCase) -> None:
    """Empty lines, a header alone, CR/LF inside a line and a BOM decode or are dead-lettered."""
    for line in RAW_EDGE_LINES:
        for timestamp_ms in (RECORD_TS, -1, None):
            outcome(case, line, timestamp_ms=timestamp_ms)


@pytest.mark.parametrize("case", RAW_CASES, ids=case_id)
def test_decode_one_raw_blank_line_is_missing_message(case: DecoderCase) -> None:
    """A line of nothing but whitespace and line ends has no event: missing_message."""
    for line in (b"", b"\n", b"\r\n", b"\r", b" \t ", b"\n\n\n", "\u2028".encode()):
        result = outcome(case, line)
        assert isinstance(result, DecodeError) and result.reason == "missing_message", line


def test_decode_one_tombstone_is_null_value() -> None:
    """A record without a value is null_value in every configuration."""
    for case in CASES:
        result = outcome(case, None)
        assert isinstance(result, DecodeError) and result.reason == "null_value", case.name
