"""Which rule flags how many normal and anomalous sessions: what ``eval`` and ``hdfs_eval.py`` report.

A verdict alone does not say whether the LSTM or a fact of the training data made it.  On DeepLog's
HDFS dev set every anomaly breaks a rule and the threshold adds only false positives in some
training draws, something an operator choosing settings for their own data should be able to see.
Pure: it reads the per-session records ``score`` writes (``offline.session_record``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RULE_FIELDS = (
    ("unseen_key", "unknown_events"),
    ("transition", "unseen_transitions"),
    ("pair", "unmet_pairs"),
    ("length", "ended_early"),
)
"""Each rule's name in the report, and the field of a session record that counts its breaches (a
record has the field only when the model has the rule; UNKNOWN events are always counted)."""


def rule_breakdown(records: Sequence[Mapping[str, Any]], labels: Sequence[bool]) -> dict[str, dict[str, int]]:
    """Normal and anomalous sessions each rule flags, those any rule flags, and those flagged with no
    rule broken (``threshold_alone``: the LSTM's threshold, or the count gate).

    ``records[i]`` is session i's record (``anomalous`` plus the rules' fields), ``labels[i]`` whether
    it is labelled anomalous.  A session breaking two rules is counted under both.
    """
    if len(records) != len(labels):
        raise ValueError(f"{len(records)} records but {len(labels)} labels")
    names = [(name, field) for name, field in RULE_FIELDS if any(field in r for r in records)]
    report: dict[str, dict[str, int]] = {
        key: {"normal": 0, "anomalous": 0} for key in [*(n for n, _ in names), "any_rule", "threshold_alone"]
    }
    for record, anomalous in zip(records, labels, strict=True):
        side = "anomalous" if anomalous else "normal"
        broken = False
        for name, field in names:
            if record.get(field):
                report[name][side] += 1
                broken = True
        if broken:
            report["any_rule"][side] += 1
        elif record["anomalous"]:
            report["threshold_alone"][side] += 1
    return report
