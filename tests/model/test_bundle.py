"""load_bundle: a model directory loads only when both files are present, well-formed and belong together."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import load_bundle, sha256_hex
from logwarden.model.contract import (
    FORMAT_VERSION,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    ONNX_FILE,
    ModelMetadata,
    metadata_digest,
)


def _edit_metadata(model_dir: Path, *, resign: bool = True, **changes: object) -> None:
    """Change keys of model.json; ``resign``: record the new content's digest, as an exporter would."""
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.update(changes)
    if resign:
        raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    path.write_text(json.dumps(raw), encoding="utf-8")


def test_load_bundle_model_json_edited_after_export_raises_naming_the_digest(model_dir: Path) -> None:
    """Two event keys swapped by hand still make a valid file, which would score each as the other."""
    vocabulary = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))["vocabulary"]
    vocabulary[0], vocabulary[1] = vocabulary[1], vocabulary[0]
    _edit_metadata(model_dir, resign=False, vocabulary=vocabulary)
    with pytest.raises(ModelLoadError, match=r"model\.json: content does not match its metadata_sha256 "):
        load_bundle(model_dir)


def test_load_bundle_current_model_json_without_digest_raises(model_dir: Path) -> None:
    """Only format 1 predates the digest: a later model.json without one was edited by hand."""
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw[METADATA_DIGEST_KEY]
    raw["threshold"] = 50.0
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"model\.json: no metadata_sha256"):
        load_bundle(model_dir)


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
    """A model of another format version is refused, quoting its version and the supported ones."""
    _edit_metadata(model_dir, format_version=FORMAT_VERSION + 1)
    with pytest.raises(
        ModelLoadError,
        match=rf"model\.json: format_version {FORMAT_VERSION + 1} .* reads 1, 2, 3, 4 and 5, "
        rf"and writes {FORMAT_VERSION}",
    ):
        load_bundle(model_dir)


def test_load_bundle_reads_format_version_1_models_without_a_count_gate(model_dir: Path) -> None:
    """A model exported before the count gate (format version 1) still loads, with no gate."""
    _edit_metadata(model_dir, format_version=1, count_gate=None)
    assert load_bundle(model_dir).metadata.count_gate is None


def test_load_bundle_format_version_1_model_json_without_digest_loads_as_before(model_dir: Path) -> None:
    """Models exported before the digest existed (format version 1) carry none and still load."""
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.update(format_version=1, count_gate=None)
    del raw[METADATA_DIGEST_KEY]
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert load_bundle(model_dir).metadata.format_version == 1


def test_load_bundle_refuses_a_damaged_count_gate_naming_the_key(model_dir: Path) -> None:
    """A count gate whose hashes are not hex is refused, the file and key named."""
    _edit_metadata(model_dir, count_gate={"threshold": 1.0, "profiles": ["not hex at all!"]})
    with pytest.raises(ModelLoadError, match=r"model\.json: invalid value: count_gate\.profiles\[0\]"):
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


def _replace_in_metadata(model_dir: Path, old: str, new: str) -> None:
    """Rewrite model.json text, for values json.dumps cannot write (NaN, 1e999, 5000 digits) (helper)."""
    path = model_dir / METADATA_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "written",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        pytest.param("1" + "0" * 400, id="400-digit-integer"),
        '"nan"',
        '"5.0"',
        "true",
        "null",
        "[5]",
    ],
)
def test_load_bundle_threshold_not_finite_number_raises_naming_threshold(
    model_dir: Path, written: str
) -> None:
    """A threshold that is not a finite JSON number is refused at load, not when the policy is built."""
    _replace_in_metadata(model_dir, '"threshold": 5.0', f'"threshold": {written}')
    with pytest.raises(
        ModelLoadError, match=r"model\.json: invalid value: threshold must be a finite number"
    ):
        load_bundle(model_dir)


@pytest.mark.parametrize("key", ["embedding_dim", "hidden_size", "num_layers"])
@pytest.mark.parametrize("written", ["1e999", "NaN", "8.5", "0", "-2", "true", '"8"'])
def test_load_bundle_size_not_positive_integer_raises_naming_key(
    model_dir: Path, key: str, written: str
) -> None:
    """Network sizes must be JSON integers >= 1; infinity, fractions and strings are named, not crashed on."""
    path = model_dir / METADATA_FILE
    value = json.loads(path.read_text(encoding="utf-8"))[key]
    _replace_in_metadata(model_dir, f'"{key}": {value}', f'"{key}": {written}')
    with pytest.raises(ModelLoadError, match=rf"model\.json: invalid value: {key} must be an integer >= 1"):
        load_bundle(model_dir)


def test_load_bundle_integer_too_long_for_python_raises_naming_model_json(model_dir: Path) -> None:
    """An integer of more digits than Python converts is a ModelLoadError, not a ValueError."""
    _replace_in_metadata(model_dir, '"hidden_size": 8', '"hidden_size": ' + "8" * 5000)
    with pytest.raises(ModelLoadError, match=r"model\.json: .*digits"):
        load_bundle(model_dir)


def test_load_bundle_deeply_nested_json_raises_naming_model_json(model_dir: Path) -> None:
    """JSON nested deeper than Python's recursion limit is a ModelLoadError, not a RecursionError."""
    (model_dir / METADATA_FILE).write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"model\.json: .*nested too deeply"):
        load_bundle(model_dir)


@pytest.mark.parametrize(("method", "name"), [("read_text", METADATA_FILE), ("read_bytes", ONNX_FILE)])
def test_load_bundle_unreadable_file_raises_naming_the_file(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, method: str, name: str
) -> None:
    """A model file the daemon may not read is a ModelLoadError naming it (faked: tests may run as root)."""

    def deny(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, method, deny)
    with pytest.raises(
        ModelLoadError, match=rf"{re.escape(name)}: cannot read the file: .*Permission denied"
    ):
        load_bundle(model_dir)


def test_load_bundle_directory_not_searchable_raises_model_load_error(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory whose files cannot even be looked at is a ModelLoadError, not a PermissionError."""

    def deny(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", deny)
    with pytest.raises(ModelLoadError, match=r"model\.json: cannot read the file: .*Permission denied"):
        load_bundle(model_dir)


def test_load_bundle_duplicate_vocabulary_key_raises_naming_the_key(model_dir: Path) -> None:
    """Two template ids with the same event key are refused at load, naming the key."""
    _edit_metadata(model_dir, vocabulary=["1", "2", "3", "2"])
    with pytest.raises(
        ModelLoadError, match=r"model\.json: invalid value: vocabulary lists '2' more than once"
    ):
        load_bundle(model_dir)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        pytest.param({"vocabulary": "1234"}, "vocabulary", id="vocabulary-string"),
        pytest.param({"templates": "abcd"}, "templates", id="templates-string"),
        pytest.param({"vocabulary": {"1": 0, "2": 1, "3": 2, "4": 3}}, "vocabulary", id="vocabulary-object"),
        pytest.param({"templates": None}, "templates", id="templates-null"),
        pytest.param({"vocabulary": ["1", "2", 3, "4"]}, r"vocabulary\[2\]", id="vocabulary-item-number"),
    ],
)
def test_load_bundle_vocabulary_or_templates_not_list_of_strings_raises_naming_key(
    model_dir: Path, changes: dict[str, object], key: str
) -> None:
    """vocabulary and templates must be JSON lists of strings; a string is not split into characters."""
    _edit_metadata(model_dir, **changes)
    with pytest.raises(ModelLoadError, match=rf"model\.json: invalid value: {key} must be "):
        load_bundle(model_dir)


PARSER = {"header_regex": r"(?P<content>.*)", "entity_regex": r"blk_\d+", "masking": [["NUM", r"\d+"]]}


def test_load_bundle_parser_settings_read_as_written(model_dir: Path) -> None:
    """A model trained on raw logs keeps its header, entity and masking regexes as strings."""
    _edit_metadata(model_dir, parser=PARSER)
    parser = load_bundle(model_dir).metadata.parser
    assert parser is not None
    assert (parser.header_regex, parser.entity_regex) == (PARSER["header_regex"], PARSER["entity_regex"])
    assert parser.masking == (("NUM", r"\d+"),)
    assert parser.collapse_repeated_masks is False, "a model from before the setting keeps its old matching"
    _edit_metadata(model_dir, parser={**PARSER, "collapse_repeated_masks": True})
    parser = load_bundle(model_dir).metadata.parser
    assert parser is not None and parser.collapse_repeated_masks is True


@pytest.mark.parametrize(
    ("parser", "key"),
    [
        pytest.param("blk_\\d+", "parser", id="parser-string"),
        pytest.param({**PARSER, "header_regex": 5}, "parser.header_regex", id="header-regex-number"),
        pytest.param({**PARSER, "masking": "NUM"}, "parser.masking", id="masking-string"),
        pytest.param({**PARSER, "masking": [["NUM", r"\d+", "x"]]}, "parser.masking", id="masking-triple"),
        pytest.param(
            {**PARSER, "collapse_repeated_masks": "yes"},
            "parser.collapse_repeated_masks",
            id="collapse-string",
        ),
    ],
)
def test_load_bundle_parser_malformed_raises_naming_key(model_dir: Path, parser: object, key: str) -> None:
    """Malformed parser settings are named by key instead of being turned into strings or unpacked blindly."""
    _edit_metadata(model_dir, parser=parser)
    with pytest.raises(ModelLoadError, match=rf"model\.json: invalid value: {re.escape(key)} must be "):
        load_bundle(model_dir)


def test_model_json_digest_holds_for_what_json_changes_on_the_way(
    tmp_path: Path, exported_model: tuple[Path, ModelMetadata]
) -> None:
    """Integer keys come back from JSON as strings and sort differently ("10" before "9"): the digest
    must be the one of what a loader reads."""
    metadata = dataclasses.replace(exported_model[1], training={"by_length": {9: 1, 10: 2}})
    raw = json.loads(metadata.to_json())
    assert raw[METADATA_DIGEST_KEY] == metadata_digest(raw)
