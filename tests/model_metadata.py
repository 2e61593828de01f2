"""A ``ModelMetadata`` for tests that need a model's description but no trained graph."""

from __future__ import annotations

import dataclasses
from typing import Any

from logwarden.model.contract import FORMAT_VERSION, ModelMetadata

_RAW_LOG_MODEL = ModelMetadata(
    format_version=FORMAT_VERSION,
    input_kind="logs",
    vocabulary=("T0",),
    templates=("t",),
    embedding_dim=4,
    hidden_size=4,
    num_layers=1,
    threshold=1.0,
    threshold_method="test",
    onnx_sha256="0" * 64,
)


def model_metadata(**changes: Any) -> ModelMetadata:
    """A one-template raw-log model's metadata, with ``changes`` to its fields."""
    return dataclasses.replace(_RAW_LOG_MODEL, **changes)
