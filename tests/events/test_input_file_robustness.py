"""Seeded fuzzing of the offline input files: every bad line is an error naming it, or a counted line.

``logwarden train`` and ``score`` read sequences files, labelled and templates CSVs, JSON-lines and
raw log files.  Whatever bytes such a file holds, the readers either return what they read or raise
InputFormatError naming the file and the line; JSON and raw lines that are no event are counted
and reported instead.  Never another exception, which the CLI would print as a traceback.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from logwarden.daemon.decode import DECODE_REASONS
from logwarden.errors import InputFormatError
from logwarden.events.csv_input import read_csv_rows
from logwarden.events.json_events import JsonEventReader, JsonFields, read_json_lines
from logwarden.events.line_tally import LineTally
from logwarden.events.log_files import log_lines, not_utf8, open_log_file
from logwarden.events.raw import RawLineParser, parser_settings
from logwarden.events.sequences import LabelledSession, read_labelled_csv, read_sequences
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import FIRST_EVENT_ID
from logwarden.train.mining import mine_log_lines

SEED = 20_251_206
FILES = 300
HUGE_NUMBER = "9" * 5000  # more digits than int() converts (sys.get_int_max_str_digits, 4,300)
TERMINATING = (
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_3886 terminating"
)
PIECES = (
    b"5",
    b"22",
    b" ",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b",",
    b'"',
    b"0",
    b"1",
    b"label",
    b"Sequence",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xa8",
    b"-1",
    b"abc",
    b"1e999",
    HUGE_NUMBER.encode(),
)


def random_file(rng: random.Random, prefix: bytes = b"") -> bytes:
    """Random bytes or a random run of the pieces these formats are made of (helper)."""
    if rng.random() < 0.2:
        return prefix + rng.randbytes(rng.randrange(200))
    return prefix + b"".join(rng.choice(PIECES) for _ in range(rng.randrange(40)))


def csv_line_count(data: bytes) -> int:
    """How many lines the csv module counts in ``data``: '\r', '\n' and '\r\n' all end one (helper)."""
    return len(re.split(rb"\r\n|\r|\n", data.removesuffix(b"\n").removesuffix(b"\r")))


def _split_at_newlines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def first_bad_utf8_line(data: bytes) -> int | None:
    """The number (from 1) of the first line that is not UTF-8, or None (helper)."""
    for number, line in enumerate(_split_at_newlines(data), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def error_line(error: InputFormatError, path: Path) -> int:
    """The line an InputFormatError names; fails unless it names ``path`` and a line (helper)."""
    match = re.match(rf"{re.escape(str(path))}:(\d+): ", str(error))
    assert match is not None, f"no file and line in {error}"
    return int(match.group(1))


# -- sequences files ----------------------------------------------------------------------------


def test_read_sequences_random_files_give_one_session_per_line_or_name_the_bad_line(tmp_path: Path) -> None:
    """Any file is one session per '\\n' line of keys, or an error naming the first non-UTF-8 line."""
    rng = random.Random(SEED)
    path = tmp_path / "sessions.txt"
    for _ in range(FILES):
        data = random_file(rng)
        path.write_bytes(data)
        bad_line = first_bad_utf8_line(data)
        try:
            sessions = read_sequences(path)
        except InputFormatError as error:
            assert error_line(error, path) == bad_line, data
            continue
        assert bad_line is None, data
        assert len(sessions) == len(_split_at_newlines(data)), data
        assert all(key and not key.isspace() for session in sessions for key in session), data
        Vocabulary.from_sessions(sessions).encode(sessions[0] if sessions else [])


def test_read_sequences_huge_numbers_and_odd_tokens_are_keys(tmp_path: Path) -> None:
    """Non-integer tokens, NUL, a 5,000-digit number and blank lines are read as keys and sessions."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"5 x-1 \x00 1e999\n\n" + HUGE_NUMBER.encode() + b" 22 -0\n   \n")
    assert read_sequences(path) == [["5", "x-1", "\x00", "1e999"], [], [HUGE_NUMBER, "22", "-0"], []]


def test_vocabulary_of_keys_longer_than_int_limit_is_ordered_by_value(tmp_path: Path) -> None:
    """Training on a sequences file holding a 5,000-digit key builds its vocabulary, numbers by value."""
    path = tmp_path / "sessions.txt"
    path.write_bytes(f"{HUGE_NUMBER} 22\n0{HUGE_NUMBER} 5 x\n".encode())
    vocabulary = Vocabulary.from_sessions(read_sequences(path))
    assert vocabulary.keys == ("5", "22", f"0{HUGE_NUMBER}", HUGE_NUMBER, "x")
    assert vocabulary.id_of(HUGE_NUMBER) == FIRST_EVENT_ID + 3


# -- labelled CSV -------------------------------------------------------------------------------


def test_read_labelled_csv_random_files_give_sessions_or_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    """Any file under a valid header, or none, is read or rejected with its file and a line in it."""
    rng = random.Random(SEED)
    path = tmp_path / "labelled.csv"
    lines_named = 0
    for index in range(FILES):
        data = random_file(rng, prefix=b"Sequence,label\n" if index % 3 else b"")
        path.write_bytes(data)
        try:
            sessions = read_labelled_csv(path)
        except InputFormatError as error:
            if str(error).startswith(f"{path}: empty file,"):
                assert data in (b"", b"\xef\xbb\xbf"), data
                continue
            assert 1 <= error_line(error, path) <= csv_line_count(data), (data, str(error))
            lines_named += 1
            continue
        assert all(isinstance(session, LabelledSession) for session in sessions), data
    # Random bytes rarely make a valid row, so most files must reach the line check above (288 of the
    # 300 with this seed): a sweep that never reached it would prove nothing.
    assert lines_named >= FILES // 2, lines_named


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(b"1 2,0\n", 1, "header must have 'Sequence' and 'label'", id="no header"),
        pytest.param(b"Sequence;label\n1 2;0\n", 1, "header must have", id="other delimiter"),
        pytest.param(b"\nSequence,label\n1 2,0\n", 1, "header must have", id="blank first line"),
        pytest.param(
            b"Sequence,label\n1 2,0\n3 4,1,1\n", 3, "the row has 3 fields, the header 2", id="extra"
        ),
        pytest.param(b"Sequence,label\n1 2,0\n3 4\n", 3, "the row has 1 field, the header 2", id="missing"),
        pytest.param(b"Sequence,label\n1,2,0\n", 2, "the row has 3 fields", id="unquoted comma"),
        pytest.param(b"Sequence,label\n1 2,2\n", 2, "label must be 0 or 1, got '2'", id="label 2"),
        pytest.param(b"Sequence,label\n1 2,yes\n", 2, "label must be 0 or 1", id="label yes"),
        pytest.param(b"Sequence,label\n1 2,\n", 2, "label must be 0 or 1, got ''", id="label empty"),
        pytest.param(b"Sequence,label\n1 2,1.0\n", 2, "label must be 0 or 1", id="label 1.0"),
        pytest.param(b"Sequence,label\n1 2,-1\n", 2, "label must be 0 or 1", id="label -1"),
        pytest.param(b"Sequence,label\n1 2,0\x00\n", 2, "label must be 0 or 1", id="label NUL"),
        pytest.param(
            "Sequence,label\n1 2,\uff11\n".encode(), 2, "label must be 0 or 1", id="label fullwidth"
        ),
        pytest.param(b'Sequence,label\n"1 2"x,0\n', 2, "not a valid CSV row", id="text after quote"),
        pytest.param(
            b'Sequence,label\n1 2,0\n"3 4,1\n5 6,0\n',
            3,
            "not a valid CSV row (the row runs to line 4): unexpected end of data",
            id="unterminated quote",
        ),
        pytest.param(b"Sequence,label\n1 2,0\n5 \xe9,1\n", 3, "not UTF-8 text", id="latin-1"),
        pytest.param(b"Sequence,label\n1 2,0\n\xed\xa0\x80,1\n", 3, "not UTF-8 text", id="surrogate bytes"),
        pytest.param(b"\xff\xfeS\x00e\x00q\x00", 1, "not UTF-8 text", id="utf-16"),
    ],
)
def test_read_labelled_csv_malformed_line_named_with_file_and_line(
    tmp_path: Path, text: bytes, line: int, message: str
) -> None:
    """Each kind of malformed labelled CSV is an InputFormatError naming the file, the line and why."""
    path = tmp_path / "labelled.csv"
    path.write_bytes(text)
    with pytest.raises(InputFormatError) as caught:
        read_labelled_csv(path)
    assert error_line(caught.value, path) == line
    assert message in str(caught.value)


def test_read_labelled_csv_empty_file_says_so(tmp_path: Path) -> None:
    """An empty file (or one of only a byte order mark) has no header line to name: it says it is empty."""
    for data in (b"", b"\xef\xbb\xbf"):
        path = tmp_path / "labelled.csv"
        path.write_bytes(data)
        with pytest.raises(InputFormatError, match=rf"^{re.escape(str(path))}: empty file, header must have"):
            read_labelled_csv(path)


def test_read_labelled_csv_odd_but_valid_rows_are_read(tmp_path: Path) -> None:
    """Blank lines, NUL in a key, CRLF, quoted commas and padded labels are valid and read as written."""
    path = tmp_path / "labelled.csv"
    path.write_bytes(b'Sequence,label\r\n\r\n5 \x00 22, 1 \r\n"1,2 3",0\n')
    assert read_labelled_csv(path) == [
        LabelledSession(["5", "\x00", "22"], True),
        LabelledSession(["1,2", "3"], False),
    ]


def test_read_csv_rows_template_with_unquoted_comma_is_an_error_not_a_cut_template(tmp_path: Path) -> None:
    """A templates CSV row with one comma too many would lose the template's end: named instead."""
    path = tmp_path / "templates.csv"
    path.write_text("EventId,EventTemplate\nE1,Receiving <*>\nE2,Closed <*>, reason <*>\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"templates\.csv:3: the row has 3 fields, the header 2"):
        read_csv_rows(path, ("EventId", "EventTemplate"), "templates CSV")


# -- JSON-lines files ---------------------------------------------------------------------------

JSON_LINES = (
    json.dumps({"host": "dn-3", "message": TERMINATING, "event": "22"}).encode(),
    json.dumps({"host": 7, "message": "blk_1 x", "event": 5}).encode(),
    b'{"host": "dn-\\ud800", "message": "m \\udfff", "event": "\\ud800"}',
    b'{"host": [], "message": {}, "event": null}',
    b'{"host": "a", "message": "  ", "event": ""}',
    b'{"host": "a", "message": NaN}',
    b'{"host": "a", "message": "m", "n": 1e999}',
    b'{"host": "a", "message": "m", "n": ' + HUGE_NUMBER.encode() + b"}",
    b'{"host": "a", "event": "' + HUGE_NUMBER.encode() + b'"}',
    b"[" * 100_000,
    b"[1, 2]",
    b"null",
    b'{"host": "a", "message": "cut',
    b"\xef\xbb\xbf{}",
    b'{"host": "\xff\xfe", "message": "m"}',
    b'{"host": "a", "message": "a\rb"}',
    b"",
    b"   ",
    b"\r",
)
JSON_FIELDS = (
    JsonFields(entity="host"),
    JsonFields(entity=None),
    JsonFields(entity="host", event="event"),
    JsonFields(message="log.message", entity="host.name"),
)


@pytest.mark.parametrize("fields", JSON_FIELDS, ids=lambda fields: f"{fields.entity}-{fields.event}")
def test_read_json_lines_random_files_count_every_line(tmp_path: Path, fields: JsonFields) -> None:
    """Each line of a JSON-lines file is an event, blank, without entity, or invalid with reason and line."""
    rng = random.Random(SEED)
    path = tmp_path / "events.jsonl"
    reader = JsonEventReader(fields, r"blk_-?\d+" if fields.entity is None else None)
    for _ in range(FILES // 3):
        chosen = [rng.choice(JSON_LINES) for _ in range(rng.randrange(1, 12))]
        if rng.random() < 0.5:
            chosen.append(random_file(rng))
        data = b"\n".join(chosen) + rng.choice((b"", b"\n", b"\r\n"))
        path.write_bytes(data)
        tally = LineTally()
        with open_log_file(path) as handle:
            events = list(read_json_lines(handle, reader, tally))
        assert tally.lines + tally.blank_lines == len(_split_at_newlines(data.removeprefix(b"\xef\xbb\xbf")))
        assert len(events) + tally.lines_without_entity + tally.invalid_lines == tally.lines
        assert set(tally.invalid_reasons) <= set(DECODE_REASONS), tally.invalid_reasons
        assert sum(tally.invalid_reasons.values()) == tally.invalid_lines
        if tally.invalid_lines:
            assert tally.first_invalid is not None and re.match(r"line \d+: \w+", tally.first_invalid)
        assert all(type(entity) is str and entity for entity, _ in events)


def test_read_json_lines_huge_event_key_builds_a_vocabulary(tmp_path: Path) -> None:
    """An event key of 5,000 digits in a JSON-lines file trains like any key (``train --event-field``)."""
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(json.dumps({"user": "u", "event": key}) for key in (HUGE_NUMBER, "22", "5")) + "\n",
        encoding="utf-8",
    )
    tally = LineTally()
    with open_log_file(path) as handle:
        events = list(
            read_json_lines(handle, JsonEventReader(JsonFields(entity="user", event="event")), tally)
        )
    keys = [event.event_key or "" for _, event in events]
    assert Vocabulary.from_sessions([keys]).keys == ("5", "22", HUGE_NUMBER)


# -- raw log files ------------------------------------------------------------------------------


def test_raw_log_file_of_any_bytes_reads_every_line_with_bad_bytes_escaped(tmp_path: Path) -> None:
    """Raw logs are split at '\\n' only and undecodable bytes are kept escaped, as log_files documents."""
    rng = random.Random(SEED)
    path = tmp_path / "app.log"
    parser = RawLineParser(
        parser_settings(r"blk_-?\d+"), ["PacketResponder <NUM> for block <BLK> terminating"]
    )
    for _ in range(FILES):
        data = random_file(rng, prefix=rng.choice((b"", TERMINATING.encode(), b"\xef\xbb\xbf")))
        path.write_bytes(data)
        with open_log_file(path) as handle:
            lines = list(log_lines(handle, path))
        expected = _split_at_newlines(data.removeprefix(b"\xef\xbb\xbf"))
        assert len(lines) == len(expected), data
        for line, raw in zip(lines, expected, strict=True):
            # Each line without a leading byte order mark, as the daemon reads each record.
            assert line == raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape"), raw
            assert (not_utf8(line) is None) == _is_utf8(raw), raw
            parser.parse_one(line)


def test_log_files_joined_with_their_byte_order_marks_read_as_the_daemon_reads_records(
    tmp_path: Path,
) -> None:
    """``cat a.log b.log`` keeps b's BOM at the start of a line; the daemon drops it from a record."""
    path = tmp_path / "joined.log"
    path.write_bytes(
        b"\xef\xbb\xbfjob_1 started\n\xef\xbb\xbfjob_2 started\njob_3 \xef\xbb\xbf kept inside\n"
    )
    with open_log_file(path) as handle:
        assert list(log_lines(handle, path)) == [
            "job_1 started\n",
            "job_2 started\n",
            "job_3 \ufeff kept inside\n",
        ]


def test_raw_log_file_invalid_utf8_is_an_invalid_line_as_in_the_daemon(tmp_path: Path) -> None:
    """A line with invalid UTF-8 is counted invalid (the daemon dead-letters such a record), not trained
    on with U+FFFD in it, and training goes on with the other lines."""
    path = tmp_path / "app.log"
    path.write_bytes(
        TERMINATING.encode().replace(b"for", b"f\xffr") + b"\n\xed\xa0\x80\n" + TERMINATING.encode() + b"\n"
    )
    with open_log_file(path) as handle:
        lines = handle.readlines()
    problems = [not_utf8(line) for line in lines]
    assert [p.reason if p else None for p in problems] == ["invalid_utf8", "invalid_utf8", None]
    assert problems[0] is not None and "byte offset" in str(problems[0])
    mined = mine_log_lines(lines, parser_settings(r"blk_-?\d+"))
    assert (mined.lines_total, mined.invalid_lines, mined.invalid_reasons) == (3, 2, {"invalid_utf8": 2})
    assert sum(len(s) for s in mined.sessions.values()) == 1


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_json_line_that_is_no_utf8_is_invalid_as_in_the_daemon(tmp_path: Path) -> None:
    """The daemon refuses such a record before it parses its JSON: invalid_utf8, not an event."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"host": "a", "message": "caf\xe9"}\n{"host": "a", "message": "ok"}\n')
    tally = LineTally()
    with open_log_file(path) as handle:
        events = list(read_json_lines(handle, JsonEventReader(JsonFields(entity="host")), tally))
    assert [event.text for _, event in events] == ["ok"]
    assert tally.invalid_reasons == {"invalid_utf8": 1}
