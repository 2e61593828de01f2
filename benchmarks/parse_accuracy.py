"""How well the trainer's template mining groups log lines, against loghub's hand-labelled events.

    LOGWARDEN_DATA=../shared/data .venv/bin/python benchmarks/parse_accuracy.py [HDFS BGL ...] [--show NAME]
        [--mask NAME=REGEX ...]

For each loghub 2k sample (loghub, https://github.com/logpai/loghub, its LICENSE beside the data):
mine templates from the lines with the project's defaults (header stripping, masking, Drain3 at
sim_th 0.4, depth 4), assign every line with the daemon's own matcher, and compare the groups
with the ``EventId`` column of ``<name>_2k.log_structured.csv``.

- grouping accuracy (GA, as in Zhu et al., "Tools and Benchmarks for Automated Log Parsing",
  ICSE-SEIP 2019): the share of lines whose mined group holds exactly the lines of their
  labelled event;
- split: labelled events spread over several mined templates (each template is a separate
  event to the model, so a split event looks rarer than it is);
- merged: mined templates holding lines of several labelled events (the model cannot tell
  them apart).

``--show NAME`` lists the merged and split groups of one sample with their line counts; ``--mask``
adds masking rules as ``logwarden train --mask`` does, to see what a rule changes before training.
Every line is mined here, whatever entity it names: accuracy is a property of the templates.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logwarden.cli_options import masking_rule_argument
from logwarden.events.raw import RawLineParser, parser_settings
from logwarden.train.cli_support import masking_rules
from logwarden.train.mining import mine_log_lines

SAMPLES = ("HDFS", "BGL", "OpenSSH", "Linux", "Thunderbird")
EVERY_LINE = r"^(\S+)"
"""An entity regex every loghub line matches (its first token), so that every line is mined."""


@dataclass(frozen=True)
class Accuracy:
    """How the mined templates group one sample's lines, against its labelled events."""

    lines: int
    labelled_events: int
    mined_templates: int
    grouping_accuracy: float
    split_events: int
    merged_templates: int


def grouping_accuracy(predicted: Sequence[int], labelled: Sequence[str]) -> float:
    """Share of lines whose predicted group is exactly their labelled group."""
    lines_of_prediction: dict[int, set[int]] = defaultdict(set)
    lines_of_label: dict[str, set[int]] = defaultdict(set)
    for line, (prediction, label) in enumerate(zip(predicted, labelled, strict=True)):
        lines_of_prediction[prediction].add(line)
        lines_of_label[label].add(line)
    exact = sum(
        len(lines)
        for lines in lines_of_label.values()
        if lines_of_prediction[predicted[next(iter(lines))]] == lines
    )
    return exact / len(predicted)


def measure(predicted: Sequence[int], labelled: Sequence[str]) -> Accuracy:
    """Grouping accuracy and split and merged counts of the mined groups against the labelled events."""
    templates_of_label: dict[str, set[int]] = defaultdict(set)
    labels_of_template: dict[int, set[str]] = defaultdict(set)
    for prediction, label in zip(predicted, labelled, strict=True):
        templates_of_label[label].add(prediction)
        labels_of_template[prediction].add(label)
    return Accuracy(
        lines=len(predicted),
        labelled_events=len(templates_of_label),
        mined_templates=len(labels_of_template),
        grouping_accuracy=grouping_accuracy(predicted, labelled),
        split_events=sum(1 for templates in templates_of_label.values() if len(templates) > 1),
        merged_templates=sum(1 for labels in labels_of_template.values() if len(labels) > 1),
    )


def mined_and_labelled(
    data: Path, name: str, masking: Sequence[tuple[str, str]]
) -> tuple[list[str], list[int], list[str], list[str]]:
    """Mined templates, each line's template index, each line's labelled event id and template."""
    sample = data / "loghub" / f"{name}_2k.log"
    lines = sample.read_text(encoding="utf-8", errors="replace").splitlines()
    settings = parser_settings(EVERY_LINE, masking=masking)
    mined = mine_log_lines(lines, settings)
    parser = RawLineParser(settings, mined.templates)
    predicted = [parser.classify_one(line)[1] for line in lines]
    with open(f"{sample}_structured.csv", encoding="utf-8", errors="replace", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != len(lines):
        raise SystemExit(f"{sample}: {len(lines)} lines but {len(rows)} labelled rows")
    return mined.templates, predicted, [r["EventId"] for r in rows], [r["EventTemplate"] for r in rows]


def show(templates: Sequence[str], predicted: Sequence[int], labels: Sequence[str]) -> None:
    """Print each mined template holding several labelled events, then each event split over templates."""
    mined = [templates[p] if p >= 0 else "(no template)" for p in predicted]
    print_groups("merged: one mined template, several labelled events", mined, labels)
    print_groups("split: one labelled event, several mined templates", labels, mined)


def print_groups(title: str, groups: Sequence[str], members: Sequence[str]) -> None:
    """Each group holding more than one distinct member, with the member's line count."""
    members_of: dict[str, Counter[str]] = defaultdict(Counter)
    for group, member in zip(groups, members, strict=True):
        members_of[group][member] += 1
    print(f"\n{title}")
    for group, counts in members_of.items():
        if len(counts) > 1:
            print(f"  {group}")
            for member, count in counts.most_common():
                print(f"    {count:5d}  {member}")


def main() -> None:
    """Print one accuracy row per sample, then with ``--show`` the merged and split groups of one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SAMPLES))
    parser.add_argument("--show", metavar="NAME", help="list the merged and split groups of one sample")
    parser.add_argument(
        "--mask", action="append", type=masking_rule_argument, metavar="NAME=REGEX", help="extra masking rule"
    )
    args = parser.parse_args()
    masking = masking_rules(args.mask)
    data = Path(os.environ.get("LOGWARDEN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    print(f"{'log':<12} {'lines':>6} {'labelled':>8} {'mined':>6} {'GA':>6} {'split':>6} {'merged':>7}")
    for name in args.names:
        _, predicted, event_ids, _ = mined_and_labelled(data, name, masking)
        a = measure(predicted, event_ids)
        print(
            f"{name:<12} {a.lines:>6} {a.labelled_events:>8} {a.mined_templates:>6} "
            f"{a.grouping_accuracy:>6.3f} {a.split_events:>6} {a.merged_templates:>7}"
        )
    if args.show:
        templates, predicted, _, labelled_templates = mined_and_labelled(data, args.show, masking)
        show(templates, predicted, labelled_templates)


if __name__ == "__main__":
    main()
