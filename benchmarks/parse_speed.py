"""Lines per second of the daemon's line parser, against Drain3's own match(), on loghub samples.

    LOGWARDEN_DATA=../shared/data .venv/bin/python benchmarks/parse_speed.py [HDFS OpenSSH ... synthetic]

``synthetic`` is the project's generated job log (ISO 8601 headers, templates that start with the
job id), the input of benchmarks/throughput.py.

Single thread.  Each figure is the best of several passes, because the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction

from logwarden.events.header import HeaderStripper
from logwarden.events.raw import RawLineParser, parser_settings
from logwarden.events.templates import TemplateMatcher
from logwarden.synthetic import ENTITY_REGEX as SYNTHETIC_ENTITY_REGEX
from logwarden.synthetic.logs import generate_logs
from logwarden.train.mining import drain_config, mine_log_lines

ENTITY_REGEX = {
    "HDFS": r"blk_-?\d+",
    "OpenSSH": r"sshd\[(\d+)\]",
    "Linux": r"\[(\d+)\]",
    "BGL": r"^\S+ \d+ \S+ (\S+)",
    "Thunderbird": r"^\S+ \d+ \S+ (\S+)",
    "synthetic": SYNTHETIC_ENTITY_REGEX,
}
SYNTHETIC_LINES = 20_000
PASSES = 7
REPEAT = 5


def lines_per_second(function: Callable[[str], object], items: Sequence[str]) -> float:
    """Best rate over PASSES passes of REPEAT sweeps through ``items``."""
    best = 0.0
    for _ in range(PASSES):
        start = time.perf_counter()
        for _ in range(REPEAT):
            for item in items:
                function(item)
        best = max(best, REPEAT * len(items) / (time.perf_counter() - start))
    return best


def drain3_matcher(contents: Sequence[str], masking: Sequence[tuple[str, str]]) -> TemplateMiner:
    """A Drain3 miner trained on ``contents`` with the same masking, done by Drain3 itself."""
    config = drain_config(sim_th=0.4, depth=4)
    config.masking_instructions = [MaskingInstruction(pattern, name) for name, pattern in masking]
    miner = TemplateMiner(persistence_handler=None, config=config)
    for content in contents:
        miner.add_log_message(content)
    return miner


def main(names: Sequence[str]) -> None:
    """Print the lines per second of each parsing stage and of Drain3's match for each sample."""
    data = Path(os.environ.get("LOGWARDEN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    columns = f"{'parse_one':>12} {'header':>12} {'match_one':>12} {'drain3 match':>13}"
    print(f"{'log':<12} {'templates':>9} {columns}  lines/s")
    for name in names:
        lines = sample_lines(data, name)
        settings = parser_settings(ENTITY_REGEX[name])
        mined = mine_log_lines(lines, settings)
        parser = RawLineParser(settings, mined.templates)
        header = HeaderStripper(settings.header_regex)
        contents = [header.content_of(line) for line in lines]
        matcher = TemplateMatcher(mined.templates, settings.masking)
        miner = drain3_matcher(contents, settings.masking)
        parse_rate = lines_per_second(parser.parse_one, lines)
        header_rate = lines_per_second(header.content_of, lines)
        match_rate = lines_per_second(matcher.match_one, contents)
        drain_rate = lines_per_second(miner.match, contents)
        rates = f"{parse_rate:>12,.0f} {header_rate:>12,.0f} {match_rate:>12,.0f} {drain_rate:>13,.0f}"
        print(f"{name:<12} {len(mined.templates):>9} {rates}")
    print(
        "parse_one: header, entity and template of the raw line; header: the header alone; "
        "match_one, drain3 match: content only"
    )


def sample_lines(data: Path, name: str) -> list[str]:
    """The 2,000-line loghub sample ``name``, or generated lines for ``synthetic``."""
    if name == "synthetic":
        stream = generate_logs(seed=5, entities=2_000, anomaly_fraction=0.004, first_job_id=1_000_000)
        return stream.lines[:SYNTHETIC_LINES]
    path = data / "loghub" / f"{name}_2k.log"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set LOGWARDEN_DATA to the shared data folder")
    return path.read_text(encoding="utf-8").splitlines()


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    known = ", ".join(sorted(ENTITY_REGEX))
    arguments.add_argument("samples", nargs="*", help=f"logs to measure, of {known} (default HDFS)")
    samples = arguments.parse_args().samples or ["HDFS"]
    unknown = [name for name in samples if name not in ENTITY_REGEX]
    if unknown:
        arguments.error(f"unknown sample {unknown[0]!r}; known: {known}")
    main(samples)
