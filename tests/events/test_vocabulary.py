"""The training vocabulary: numeric keys in numeric order, and one order whatever the hash seed."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from logwarden.events.vocabulary import Vocabulary

# Keys equal as numbers ('22', '022'), a digit int() cannot read ('²') and another script's digits.
TRICKY_KEYS = ["22", "022", "0022", "5", "05", "²", "٣", "10", "abc", "T1"]

_VOCABULARY_IN_SUBPROCESS = """
import json, sys
from logwarden.events.vocabulary import Vocabulary
print(json.dumps(Vocabulary.from_sessions([json.loads(sys.argv[1])]).keys))
"""


def test_vocabulary_numeric_keys_sorted_by_value_then_text() -> None:
    """ASCII number keys come first by value (ties by text), every other key after them by text."""
    vocabulary = Vocabulary.from_sessions([TRICKY_KEYS[:5], TRICKY_KEYS[5:]])
    assert vocabulary.keys == ("05", "5", "10", "0022", "022", "22", "T1", "abc", "²", "٣")


def test_vocabulary_order_independent_of_the_order_keys_are_seen() -> None:
    """Every arrangement of the keys gives the same vocabulary, so training is reproducible."""
    shuffler = random.Random(0)
    orders = {
        Vocabulary.from_sessions([shuffler.sample(TRICKY_KEYS, len(TRICKY_KEYS))]).keys for _ in range(200)
    }
    assert len(orders) == 1


def test_vocabulary_order_independent_of_python_hash_seed() -> None:
    """Set iteration order changes with PYTHONHASHSEED; the vocabulary built from that set does not."""
    orders = set()
    for seed in ("1", "2", "3", "4"):
        result = subprocess.run(
            [sys.executable, "-c", _VOCABULARY_IN_SUBPROCESS, json.dumps(TRICKY_KEYS)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        orders.add(tuple(json.loads(result.stdout)))
    assert len(orders) == 1
