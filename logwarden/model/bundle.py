"""Read and verify a model directory (format version, checksum) without loading a runtime."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from logwarden.errors import ModelLoadError
from logwarden.model.contract import (
    FORMAT_VERSION,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    ONNX_FILE,
    ModelMetadata,
    metadata_digest,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ModelBundle:
    """A verified model directory: its metadata and the bytes of its ONNX graph."""

    directory: Path
    metadata: ModelMetadata
    onnx_bytes: bytes


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``; the model's identity in metadata, alerts and state headers."""
    return hashlib.sha256(data).hexdigest()


def load_bundle(directory: str | Path) -> ModelBundle:
    """Load ``model.json`` and ``model.onnx`` from ``directory`` and verify they belong together.

    Raises ModelLoadError naming the file and the problem: missing or unreadable file, invalid
    JSON, missing key or invalid value, unsupported format version, ``model.json`` edited after
    export (its ``metadata_sha256``), or a sha256 that does not match the graph.
    """
    directory = Path(directory)
    metadata_path = directory / METADATA_FILE
    onnx_path = directory / ONNX_FILE
    for path in (metadata_path, onnx_path):
        if not _read(path, Path.is_file):
            raise ModelLoadError(
                f"{path}: model file not found (a model directory holds {METADATA_FILE} and {ONNX_FILE})"
            )
    raw = _parse_json(metadata_path)
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{metadata_path}: expected a JSON object at the top level")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{metadata_path}: format_version {version!r} is not supported "
            f"(this logwarden reads {FORMAT_VERSION}); "
            "retrain or export the model with this version"
        )
    try:
        metadata = ModelMetadata.from_dict(raw)
    except KeyError as exc:
        raise ModelLoadError(f"{metadata_path}: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelLoadError(f"{metadata_path}: invalid value: {exc}") from exc
    recorded = raw.get(METADATA_DIGEST_KEY)
    # Models exported before the digest existed carry none; they load as before.
    if recorded is not None and recorded != metadata_digest(raw):
        raise ModelLoadError(
            f"{metadata_path}: content does not match its {METADATA_DIGEST_KEY} "
            f"{_shorten(recorded)}; the file was edited or damaged after export. Export or train the "
            "model again (to change the alert threshold, set model.threshold in the daemon's config "
            "or pass --threshold)"
        )
    onnx_bytes = _read(onnx_path, Path.read_bytes)
    actual = sha256_hex(onnx_bytes)
    if actual != metadata.onnx_sha256:
        raise ModelLoadError(
            f"{onnx_path}: sha256 {actual} does not match "
            f"onnx_sha256 {metadata.onnx_sha256} in {METADATA_FILE}; "
            "the graph was modified or belongs to another model"
        )
    return ModelBundle(directory=directory, metadata=metadata, onnx_bytes=onnx_bytes)


def _shorten(value: object) -> str:
    """A recorded digest as shown in an error: quoted, at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``, with an OS error (permission denied, I/O error) as a ModelLoadError naming the file."""
    try:
        return read(path)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


def _parse_json(path: Path) -> Any:
    """The JSON document in ``path``; ModelLoadError naming the file if Python cannot read it."""
    try:
        return json.loads(_read(path, lambda p: p.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON: {exc}") from exc
    except ValueError as exc:  # an integer of more digits than int() converts
        raise ModelLoadError(f"{path}: cannot read a value: {exc}") from exc
    except RecursionError as exc:
        raise ModelLoadError(f"{path}: JSON nested too deeply to read") from exc
