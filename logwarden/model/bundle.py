"""Read and verify a model directory (format version, checksums, parser rules) without loading a runtime."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from logwarden.errors import ConfigError, ModelLoadError, shown
from logwarden.events.entity import RegexEntityExtractor
from logwarden.events.header import HeaderStripper
from logwarden.events.masking import compile_rules
from logwarden.model.contract import (
    FORMAT_VERSION,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    ONNX_FILE,
    SUPPORTED_FORMAT_VERSIONS,
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
    export (its ``metadata_sha256``), a parser rule that does not compile, or a sha256 that does
    not match the graph.
    """
    directory = Path(directory)
    metadata_path = directory / METADATA_FILE
    onnx_path = directory / ONNX_FILE
    for path in (metadata_path, onnx_path):
        if not _read(path, Path.is_file):
            found = "is not a file" if _read(path, Path.exists) else "model file not found"
            raise ModelLoadError(f"{path}: {found} (a model directory holds {METADATA_FILE} and {ONNX_FILE})")
    raw = _parse_json(metadata_path)
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{metadata_path}: expected a JSON object at the top level")
    version = raw.get("format_version")
    if isinstance(version, bool) or version not in SUPPORTED_FORMAT_VERSIONS:
        *earlier, last = (str(v) for v in SUPPORTED_FORMAT_VERSIONS)
        readable = f"{', '.join(earlier)} and {last}" if earlier else last
        raise ModelLoadError(
            f"{metadata_path}: format_version {shown(version)} is not supported "
            f"(this logwarden reads {readable}, and writes {FORMAT_VERSION}); "
            "retrain or export the model with this version"
        )
    try:
        metadata = ModelMetadata.from_dict(raw)
    except KeyError as exc:
        raise ModelLoadError(f"{metadata_path}: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelLoadError(f"{metadata_path}: invalid value: {exc}") from exc
    recorded = raw.get(METADATA_DIGEST_KEY)
    # Models exported before the digest existed (format version 1) carry none; they load as before.
    # Every later format was only ever written with one, so a file without it was edited by hand.
    if recorded is None and metadata.format_version >= 2:
        raise ModelLoadError(
            f"{metadata_path}: no {METADATA_DIGEST_KEY}, which every model of format_version 2 or later "
            "is exported with; the file was edited after export. Export or train the model again (to "
            "change the alert threshold, set model.threshold in the daemon's config or pass --threshold)"
        )
    if recorded is not None and recorded != metadata_digest(raw):
        raise ModelLoadError(
            f"{metadata_path}: content does not match its {METADATA_DIGEST_KEY} "
            f"{shown(recorded)}; the file was edited or damaged after export. Export or train the "
            "model again (to change the alert threshold, set model.threshold in the daemon's config "
            "or pass --threshold)"
        )
    _check_parser(metadata_path, metadata)
    onnx_bytes = _read(onnx_path, Path.read_bytes)
    actual = sha256_hex(onnx_bytes)
    if actual != metadata.onnx_sha256:
        raise ModelLoadError(
            f"{onnx_path}: sha256 {actual} does not match "
            f"onnx_sha256 {metadata.onnx_sha256} in {METADATA_FILE}; "
            "the graph was modified or belongs to another model"
        )
    return ModelBundle(directory=directory, metadata=metadata, onnx_bytes=onnx_bytes)


def _check_parser(metadata_path: Path, metadata: ModelMetadata) -> None:
    """Build every regex of the model's parser once, so a bad one is refused here naming its field.

    Why: otherwise they are first compiled at the first line scored, where a bad one is a
    configuration error (exit 3) that does not name ``model.json``.  ``compile_rules`` also refuses
    masking rules that compile alone but not inside a template's regex, so the templates themselves
    (literal text, escaped, around the rules' patterns) need not be compiled here: the scorer does
    that anyway, and for thousands of templates it takes long.
    """
    parser = metadata.parser
    if parser is None:
        return
    checks: list[tuple[str, Callable[[], object]]] = [
        ("parser.header_regex", lambda: HeaderStripper(parser.header_regex)),
        ("parser.masking", lambda: compile_rules(parser.masking)),
    ]
    entity_regex = parser.entity_regex
    if entity_regex is not None:
        checks.insert(1, ("parser.entity_regex", lambda: RegexEntityExtractor(entity_regex)))
    quoted = [parser.header_regex, parser.entity_regex, *(pattern for _, pattern in parser.masking)]
    for field, build in checks:
        try:
            build()
        except ConfigError as exc:
            reason = _shorten_quoted(str(exc), quoted)
            raise ModelLoadError(f"{metadata_path}: invalid value: {field}: {reason}") from exc


def _shorten_quoted(text: str, values: list[str | None]) -> str:
    """``text`` with each quoted regex of ``values`` cut to 80 characters: a 100 kB regex is not repeated
    in full, yet the reason after it ("has no named group ...") stays readable."""
    for value in values:
        if value is not None and len(value) > 80:
            text = text.replace(repr(value), shown(value))
    return text


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
