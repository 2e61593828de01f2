"""An entity the daemon cannot key a record by is refused alike by trainer, offline scorer and daemon."""

from __future__ import annotations

import json

import pytest

from logwarden.errors import DecodeError
from logwarden.events.entity import MAX_ENTITY_CHARS, entity_refusal
from logwarden.events.json_events import JsonEventReader, JsonFields
from logwarden.events.raw import parser_settings
from logwarden.train.mining import mine_json_lines, mine_log_lines

SURROGATE_PID = '{"pid": "\\ud800", "message": "session opened for user root"}'
LONG_PID = json.dumps({"pid": "p" * (MAX_ENTITY_CHARS + 1), "message": "session opened for user root"})
GOOD_LINES = [
    json.dumps({"pid": "p" * MAX_ENTITY_CHARS, "message": "session opened for user root"}),
    json.dumps({"pid": 7, "message": "session closed for user root"}),
]


def test_entity_refusal_names_the_reason_and_where_the_entity_came_from() -> None:
    """Past MAX_ENTITY_CHARS: oversize; a lone surrogate: invalid_utf8; the source named in both."""
    assert entity_refusal("x" * MAX_ENTITY_CHARS, "field 'pid'") is None
    assert entity_refusal("hôte-ü", "field 'pid'") is None
    long = entity_refusal("x" * (MAX_ENTITY_CHARS + 1), "entity regex")
    assert long is not None and long.reason == "oversize"
    assert long.detail == f"entity regex: entity of {MAX_ENTITY_CHARS + 1} characters > {MAX_ENTITY_CHARS}"
    lone = entity_refusal("ab\ud800", "field 'pid'")
    assert lone is not None and lone.reason == "invalid_utf8"
    assert lone.detail.startswith(
        "field 'pid': the entity holds a lone UTF-16 surrogate (\\ud800) at character 2"
    )


@pytest.mark.parametrize(("line", "reason"), [(LONG_PID, "oversize"), (SURROGATE_PID, "invalid_utf8")])
def test_json_reader_refuses_an_entity_the_daemon_cannot_key_by(line: str, reason: str) -> None:
    """The reader the trainer, the scorer and the daemon share raises the daemon's dead-letter reason."""
    with pytest.raises(DecodeError) as raised:
        JsonEventReader(JsonFields(entity="pid")).read(line)
    assert raised.value.reason == reason
    assert "field 'pid'" in raised.value.detail


def test_json_mining_counts_refused_entities_as_invalid_and_trains_no_session_of_theirs() -> None:
    """No model learns a session the daemon would never keep: such lines are invalid, by reason."""
    mined = mine_json_lines(
        [LONG_PID, SURROGATE_PID, *GOOD_LINES], parser_settings(None), JsonFields(entity="pid")
    )
    assert mined.invalid_reasons == {"oversize": 1, "invalid_utf8": 1}
    assert list(mined.sessions) == ["p" * MAX_ENTITY_CHARS, "7"]


def test_raw_mining_counts_an_entity_regex_match_past_the_limit_as_invalid() -> None:
    """A raw line whose entity regex match is too long is invalid (oversize), quoted with its line number."""
    lines = [f"job_{'9' * MAX_ENTITY_CHARS} started", "job_1 started", "job_1 finished"]
    mined = mine_log_lines(lines, parser_settings(r"job_\d+"))
    assert (mined.lines_total, mined.invalid_lines, mined.invalid_reasons) == (3, 1, {"oversize": 1})
    assert mined.first_invalid is not None and mined.first_invalid.startswith(
        "line 1: oversize: entity regex:"
    )
    assert list(mined.sessions) == ["job_1"]
