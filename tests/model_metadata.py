"""A ``ModelMetadata`` for tests that need a model's description but no trained graph."""

from __future__ import annotations

import dataclasses
from typing import Any

from logwarden.events.raw import parser_settings
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


HDFS_BLOCK = r"blk_-?\d+"
HDFS_TEMPLATES = (
    "Receiving block <BLK> src: /<IP> dest: /<IP>",
    "PacketResponder <NUM> for block <BLK> terminating",
    "BLOCK* ask <IP> to delete <BLK>",
)
"""Three HDFS templates, as mined with the default masking: what the decoding tests match lines against."""


def hdfs_metadata(input_kind: str = "logs") -> ModelMetadata:
    """A model of three HDFS events: trained on raw lines (entity regex ``HDFS_BLOCK``), or on event keys."""
    logs = input_kind == "logs"
    return model_metadata(
        input_kind=input_kind,
        vocabulary=("T0", "T1", "T2") if logs else ("5", "22", "11"),
        templates=HDFS_TEMPLATES if logs else ("E5", "E22", "E11"),
        threshold=5.0,
        onnx_sha256="ab" * 32,
        parser=parser_settings(HDFS_BLOCK) if logs else None,
    )
