"""Lines per second of the daemon's line parser, against Drain3's own match(), on loghub samples.

    LOGWARDEN_DATA=../shared/data .venv/bin/python benchmarks/parse_speed.py [HDFS OpenSSH ...]

Single thread.  Each figure is the best of several passes, because the machine is shared.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction

from logwarden.events.header import HeaderStripper
from logwarden.events.raw import RawLineParser, parser_settings
from logwarden.events.templates import TemplateMatcher
from logwarden.train.mining import drain_config, mine_log_lines

ENTITY_REGEX = {
    "HDFS": r"blk_-?\d+",
    "OpenSSH": r"sshd\[(\d+)\]",
    "Linux": r"\[(\d+)\]",
    "BGL": r"^\S+ \d+ \S+ (\S+)",
    "Thunderbird": r"^\S+ \d+ \S+ (\S+)",
}
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
    data = Path(os.environ.get("LOGWARDEN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    print(f"{'log':<12} {'templates':>9} {'parse_one':>12} {'match_one':>12} {'drain3 match':>13}  lines/s")
    for name in names:
        path = data / "loghub" / f"{name}_2k.log"
        if not path.is_file():
            raise SystemExit(f"{path} not found: set LOGWARDEN_DATA to the shared data folder")
        lines = path.read_text(encoding="utf-8").splitlines()
        settings = parser_settings(ENTITY_REGEX[name])
        mined = mine_log_lines(lines, settings)
        parser = RawLineParser(settings, mined.templates)
        header = HeaderStripper(settings.header_regex)
        contents = [header.content_of(line) for line in lines]
        matcher = TemplateMatcher(mined.templates, settings.masking)
        miner = drain3_matcher(contents, settings.masking)
        parse_rate = lines_per_second(parser.parse_one, lines)
        match_rate = lines_per_second(matcher.match_one, contents)
        drain_rate = lines_per_second(miner.match, contents)
        rates = f"{parse_rate:>12,.0f} {match_rate:>12,.0f} {drain_rate:>13,.0f}"
        print(f"{name:<12} {len(mined.templates):>9} {rates}")
    print("parse_one: header, entity and template of the raw line; match_one, drain3 match: content only")


if __name__ == "__main__":
    main(sys.argv[1:] or ["HDFS"])
