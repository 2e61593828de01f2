"""Seeded synthetic data with ground truth: raw scheduler logs and DeepLog-style key sequences.

It lets the demo and the tests run on a fresh clone, without the shared data sets, and
check detection against known anomalies of each kind.
"""

from __future__ import annotations

from logwarden.synthetic.lifecycle import ALL_KINDS, AnomalyKind, is_normal_lifecycle
from logwarden.synthetic.logs import ENTITY_REGEX, SyntheticLog, generate_logs, write_lines
from logwarden.synthetic.sequences import (
    STEP_KEYS,
    SyntheticSequences,
    generate_sequences,
    write_labelled_csv,
    write_sequences,
)

__all__ = [
    "ALL_KINDS",
    "ENTITY_REGEX",
    "STEP_KEYS",
    "AnomalyKind",
    "SyntheticLog",
    "SyntheticSequences",
    "generate_logs",
    "generate_sequences",
    "is_normal_lifecycle",
    "write_labelled_csv",
    "write_lines",
    "write_sequences",
]
