"""CPU per record of the daemon's decoding, raw lines against the same events as JSON.

    .venv/bin/python benchmarks/decode_speed.py

``MessageDecoder.decode_one`` turns a record value into (entity, event id, text, time): for a raw
line the header, entity and template regexes; for a JSON record the JSON parse, the fields and
the template match of the message.  The events are the generated jobs of
``benchmarks/throughput.py``, as raw lines and as the JSON events ``make demo-json`` sends (job
id in ``job.id``, time in ``@timestamp``).  Each figure is the best of several passes on one
thread, because the machine is shared; the two formats are measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from logwarden.daemon.config import EntityConfig, InputConfig, JsonInputConfig
from logwarden.daemon.decode import MessageDecoder
from logwarden.events.json_events import JsonFields
from logwarden.events.raw import parser_settings
from logwarden.model.bundle import load_bundle
from logwarden.synthetic import ENTITY_REGEX, generate_logs
from logwarden.synthetic.json_events import ENTITY_FIELD, TIMESTAMP_FIELD, as_json_events

PASSES = 7
RECORDS = 20_000


def microseconds_per_record(decoder: MessageDecoder, values: Sequence[bytes], keys: Sequence[bytes]) -> float:
    """Best time per record over PASSES passes through ``values``."""
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        for value, key in zip(values, keys, strict=True):
            decoder.decode_one(value, key, 1_700_000_000_000)
        best = min(best, (time.perf_counter() - start) / len(values))
    return best * 1e6


def train_templates(out: Path, lines: Sequence[str], fields: JsonFields | None) -> Path:
    """A model of the lines' templates; two epochs, since only its templates matter here."""
    from logwarden.logs import configure_logging
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_logs

    configure_logging("warning", sys.stderr)
    warnings.filterwarnings("ignore")
    regex = None if fields is not None else ENTITY_REGEX
    train_on_logs(lines, parser_settings(regex), TrainingOptions(epochs=2, seed=3), out, json_fields=fields)
    return out


def main() -> None:
    """Print bytes and CPU per record for raw lines and for the same events as JSON."""
    training = generate_logs(seed=11, entities=1500, anomaly_fraction=0.0)
    stream = generate_logs(seed=5, entities=2_000, anomaly_fraction=0.004, first_job_id=1_000_000)
    json_events = as_json_events(stream)[:RECORDS]
    raw_lines = stream.lines[:RECORDS]
    keys = [entity.encode() for entity in stream.entity_of_line[:RECORDS]]
    with tempfile.TemporaryDirectory(prefix="logwarden-decode-") as work:
        raw_model = load_bundle(train_templates(Path(work) / "raw", training.lines, None)).metadata
        json_model = load_bundle(
            train_templates(Path(work) / "json", as_json_events(training), JsonFields(entity=ENTITY_FIELD))
        ).metadata
    cases = [
        (
            "raw line, entity regex",
            MessageDecoder.build(
                InputConfig(format="raw", entity=EntityConfig(regex=ENTITY_REGEX)), raw_model
            ),
            [line.encode() for line in raw_lines],
        ),
        (
            "JSON, entity field + timestamp field",
            MessageDecoder.build(
                InputConfig(
                    format="json",
                    entity=EntityConfig(field=ENTITY_FIELD),
                    json=JsonInputConfig(timestamp_field=TIMESTAMP_FIELD),
                ),
                json_model,
            ),
            [event.encode() for event in json_events],
        ),
    ]
    print(f"{'input':<40} {'bytes/record':>12} {'µs/record':>10} {'records/s':>12}")
    for name, decoder, values in cases:
        micros = microseconds_per_record(decoder, values, keys)
        size = sum(map(len, values)) / len(values)
        print(f"{name:<40} {size:>12.0f} {micros:>10.2f} {1e6 / micros:>12,.0f}")


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    main()
