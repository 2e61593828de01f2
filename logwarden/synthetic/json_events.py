"""Synthetic data as JSON events, the way a log shipper or an audit pipeline sends them.

``as_json_events``: each scheduler line becomes one object with the timestamp, host and process in
fields of their own and the job id only in ``job.id``: its message no longer names the job, so a
JSON model has to take the entity from the field, as ``input.entity.field`` makes the daemon do.
``sessions_as_keyed_events``: sessions of event keys as events classified upstream, the key in
``event.code`` and the user in ``user.name`` (``input.json.event_field``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from logwarden.synthetic.logs import SyntheticLog

ENTITY_FIELD = "job.id"
MESSAGE_FIELD = "message"
TIMESTAMP_FIELD = "@timestamp"

_LINE = re.compile(r"(?P<ts>\S+) (?P<host>\S+) (?P<process>[^\[]+)\[(?P<pid>\d+)\]: (?P<message>.*)")


def as_json_events(log: SyntheticLog) -> list[str]:
    """One compact JSON object per line of ``log``, in the same order (entity in ``job.id``)."""
    events = []
    for line, entity in zip(log.lines, log.entity_of_line, strict=True):
        match = _LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"not a synthetic scheduler line: {line!r}")
        event = {
            TIMESTAMP_FIELD: match["ts"],
            "host": {"name": match["host"]},
            "process": {"name": match["process"], "pid": int(match["pid"])},
            "job": {"id": entity},
            MESSAGE_FIELD: match["message"].replace(entity, "job"),
        }
        events.append(json.dumps(event, separators=(",", ":")))
    return events


EVENT_FIELD = "event.code"
USER_FIELD = "user.name"


@dataclass(frozen=True)
class KeyedEvents:
    """JSON events whose event key was parsed upstream, with the session (entity) of each line."""

    lines: list[str]
    entity_of_line: list[str]


def sessions_as_keyed_events(sessions: Sequence[Sequence[str]]) -> KeyedEvents:
    """Sessions of event keys as a stream of security-style events, ``user-<i>`` acting out session i.

    The users act at once, one event each in turn, as concurrent users do; each event names its
    user in ``user.name`` and its kind in ``event.code``, as an audit pipeline classifies events.
    """
    users = [f"user-{index:05d}" for index in range(len(sessions))]
    lines: list[str] = []
    entity_of_line: list[str] = []
    for step in range(max((len(s) for s in sessions), default=0)):
        for user, session in zip(users, sessions, strict=True):
            if step < len(session):
                event = {"user": {"name": user}, "event": {"code": session[step]}, "message": "audit event"}
                lines.append(json.dumps(event, separators=(",", ":")))
                entity_of_line.append(user)
    return KeyedEvents(lines, entity_of_line)
