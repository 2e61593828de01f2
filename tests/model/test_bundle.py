"""load_bundle: a model directory loads only when both files are present, well-formed and belong together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import load_bundle, sha256_hex
from logwarden.model.contract import FORMAT_VERSION, METADATA_FILE, ONNX_FILE, ModelMetadata


def _edit_metadata(model_dir: Path, **changes: object) -> None:
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.update(changes)
    path.write_text(json.dumps(raw), encoding="utf-8")


def test_load_bundle_valid_directory_returns_metadata_and_graph(
    model_dir: Path, exported_model: tuple[Path, ModelMetadata]
) -> None:
    """A directory written by the exporter loads with the metadata it was written with."""
    bundle = load_bundle(model_dir)
    assert bundle.metadata == exported_model[1]
    assert bundle.directory == model_dir
    assert sha256_hex(bundle.onnx_bytes) == bundle.metadata.onnx_sha256


def test_load_bundle_missing_metadata_raises_naming_model_json(model_dir: Path) -> None:
    """Without model.json the error names that file."""
    (model_dir / METADATA_FILE).unlink()
    with pytest.raises(ModelLoadError, match=METADATA_FILE):
        load_bundle(model_dir)


def test_load_bundle_missing_onnx_raises_naming_model_onnx(model_dir: Path) -> None:
    """Without model.onnx the error names that file."""
    (model_dir / ONNX_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx: model file not found"):
        load_bundle(model_dir)


def test_load_bundle_missing_directory_raises_model_load_error(tmp_path: Path) -> None:
    """A directory that does not exist is a ModelLoadError, not an OSError."""
    with pytest.raises(ModelLoadError, match="not found"):
        load_bundle(tmp_path / "absent")


def test_load_bundle_invalid_json_raises_naming_model_json(model_dir: Path) -> None:
    """A truncated model.json is reported as invalid JSON in that file."""
    path = model_dir / METADATA_FILE
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"model\.json: not valid JSON"):
        load_bundle(model_dir)


def test_load_bundle_json_array_raises_expected_object(model_dir: Path) -> None:
    """A JSON document that is not an object is rejected before any key is read."""
    (model_dir / METADATA_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="expected a JSON object"):
        load_bundle(model_dir)


def test_load_bundle_other_format_version_raises_naming_both_versions(model_dir: Path) -> None:
    """A model of another format version is refused, quoting its version and the supported one."""
    _edit_metadata(model_dir, format_version=FORMAT_VERSION + 1)
    with pytest.raises(
        ModelLoadError, match=rf"model\.json: format_version {FORMAT_VERSION + 1} .* reads {FORMAT_VERSION}"
    ):
        load_bundle(model_dir)


def test_load_bundle_missing_key_raises_naming_the_key(model_dir: Path) -> None:
    """A metadata document without a required key names that key."""
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw["threshold"]
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"model\.json: missing key 'threshold'"):
        load_bundle(model_dir)


def test_load_bundle_invalid_input_kind_raises_invalid_value(model_dir: Path) -> None:
    """An input_kind other than sequences/logs is an invalid value, not a crash later."""
    _edit_metadata(model_dir, input_kind="pcap")
    with pytest.raises(ModelLoadError, match=r"model\.json: invalid value.*input_kind"):
        load_bundle(model_dir)


def test_load_bundle_tampered_onnx_raises_sha_mismatch_naming_model_onnx(model_dir: Path) -> None:
    """One changed byte in the graph fails the checksum, and the error names model.onnx."""
    path = model_dir / ONNX_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 [0-9a-f]{64} does not match"):
        load_bundle(model_dir)
