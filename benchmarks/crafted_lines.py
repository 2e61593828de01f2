"""CPU per line of the template matcher on lines an attacker can write, against an ordinary line.

    .venv/bin/python benchmarks/crafted_lines.py [--tokens 1000 2000 4000 8000]

Each crafted line is a long run of tokens two masking rules both match (``00000001``: HEX and NUM),
after a prefix that selects templates with adjacent collapsed runs, and ends in a token no template
ends with, so every template must fail on it.  A matcher that gives a run back token by token is
quadratic in the run's length (each doubling 4x the time; a 72 KB line took 22.8 s, and the
daemon's watchdog kills a loop stuck 60 s, which then meets the same record again); one that does
not is linear (2x).  The templates are shaped like BGL's (loghub), mined with runs collapsed.
Single thread, best of several passes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from logwarden.events.templates import TemplateMatcher

TEMPLATES = (
    "Error receiving packet on tree network, expecting type <NUM> instead of type <NUM> "
    "(softheader=<HEX> <NUM> <HEX> <HEX>) PSR0=<HEX> PSR1=<HEX> PRXF=<HEX> PIXF=<HEX>",
    "<NUM> <*> <NUM> end",
    "<HEX> <NUM> something",
    "<NUM> double-hummer alignment exceptions",
)
PREFIX = "Error receiving packet on tree network, expecting type 57 instead of type 3 (softheader=0000000c "
ORDINARY = PREFIX + "00000001 00000002 00000003) PSR0=00000000 PSR1=00000000 PRXF=00000000 PIXF=00000000"
PASSES = 3


def seconds_per_line(matcher: TemplateMatcher, line: str, passes: int = PASSES) -> float:
    """The best of ``passes`` timings of one match of ``line``."""
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        matcher.match_one(line)
        best = min(best, time.process_time() - start)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    """Print the ordinary line's time, then each crafted line's and its growth against the last."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    args = parser.parse_args(argv)
    matcher = TemplateMatcher(TEMPLATES, collapse_runs=True)
    ordinary = min(seconds_per_line(matcher, ORDINARY) for _ in range(100))
    print(f"ordinary line ({len(ORDINARY)} bytes): {ordinary * 1e3:.3f} ms")
    last: tuple[int, float] | None = None
    for tokens in args.tokens:
        line = PREFIX + "00000001 " * tokens + "x"
        took = seconds_per_line(matcher, line)
        growth = "" if last is None else f", x{took / last[1]:.1f} for x{tokens / last[0]:.0f} tokens"
        print(f"crafted line of {tokens:,} tokens ({len(line):,} bytes): {took * 1e3:.3f} ms{growth}")
        last = (tokens, took)


if __name__ == "__main__":
    main()
