"""The synthetic scheduler logs as JSON events, the way a log shipper sends them.

Each line becomes one object with the timestamp, host and process in fields of their own and the
job id only in ``job.id``: its message no longer names the job, so a JSON model has to take the
entity from the field, as ``input.entity.field`` makes the daemon do.
"""

from __future__ import annotations

import json
import re

from logwarden.synthetic.logs import SyntheticLog

ENTITY_FIELD = "job.id"
MESSAGE_FIELD = "message"

_LINE = re.compile(r"(?P<ts>\S+) (?P<host>\S+) (?P<process>[^\[]+)\[(?P<pid>\d+)\]: (?P<message>.*)")


def as_json_events(log: SyntheticLog) -> list[str]:
    """One compact JSON object per line of ``log``, in the same order (entity in ``job.id``)."""
    events = []
    for line, entity in zip(log.lines, log.entity_of_line, strict=True):
        match = _LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"not a synthetic scheduler line: {line!r}")
        event = {
            "@timestamp": match["ts"],
            "host": {"name": match["host"]},
            "process": {"name": match["process"], "pid": int(match["pid"])},
            "job": {"id": entity},
            MESSAGE_FIELD: match["message"].replace(entity, "job"),
        }
        events.append(json.dumps(event, separators=(",", ":")))
    return events
