"""Small models trained on synthetic logs for the daemon tests (the fixtures in conftest.py use them)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from logwarden.events.json_events import JsonFields
from logwarden.events.raw import parser_settings


def train_small_model(
    out: Path,
    lines: Sequence[str],
    entity_regex: str | None,
    fields: JsonFields | None,
    *,
    transition_rule: bool = True,
) -> Path:
    """A model directory trained on ``lines`` (small and quick, not tuned)."""
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_logs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_on_logs(
            lines,
            parser_settings(entity_regex),
            TrainingOptions(
                epochs=4, hidden_size=32, embedding_dim=16, seed=3, transition_rule=transition_rule
            ),
            out,
            json_fields=fields,
        )
    return out
