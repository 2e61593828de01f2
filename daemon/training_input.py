"""Compare the daemon's input settings with the input its model was trained on.

A model learns sessions as its training input grouped them.  A daemon that groups events by
another field, or reads the message from another one, still runs, but feeds the model sessions
unlike any it has seen: its alerts then say more about the mismatch than about the events.  The
differences are logged as a warning at start (and printed by ``logwarden run --check``), not
refused: a field renamed between the training export and the live stream is a legitimate setup.

Pure: the settings and the model's metadata in, sentences out.
"""

from __future__ import annotations

from logwarden.daemon.config import InputConfig
from logwarden.events.json_events import trained_entity_regex, trained_json_fields
from logwarden.model.contract import ModelMetadata


def training_input_differences(config: InputConfig, metadata: ModelMetadata) -> list[str]:
    """How ``config`` reads or groups events differently from the model's training; empty when alike.

    Only like is compared with like (a field with a field, a regex with a regex): whether the
    record key or a field names the same entity as the training's regex did cannot be told from
    the settings.  Models trained on a sequences file record no input and give none.
    """
    trained = trained_json_fields(metadata)
    trained_regex = _trained_entity_regex(metadata)
    differences = []
    if metadata.input_kind == "logs" and config.format == "json" and config.json.event_field is not None:
        differences.append(
            f"input.json.event_field is '{config.json.event_field}'; the model was trained on messages, "
            "so its event keys are its mined template ids (T0, T1, ...) and any other key is UNKNOWN "
            "and alerts: remove it to match the messages against the templates"
        )
    if trained is not None:
        if config.format != "json":
            return [
                "the model was trained on JSON events (logwarden train --json) and input.format is raw: "
                "each whole record is matched as a message"
            ]
        if trained.event is None and config.json.message_field != trained.message:
            differences.append(
                f"input.json.message_field is '{config.json.message_field}'; the model was trained on "
                f"the messages in field '{trained.message}'"
            )
        if trained.event is not None and config.json.event_field != trained.event:
            differences.append(
                f"input.json.event_field is '{config.json.event_field}'; the model was trained on the "
                f"event keys in field '{trained.event}'"
            )
        if trained.entity is not None and config.entity.field not in (None, trained.entity):
            differences.append(
                f"input.entity.field is '{config.entity.field}'; the model's training grouped events by "
                f"the field '{trained.entity}'"
            )
    if trained_regex is not None and config.entity.regex not in (None, trained_regex):
        differences.append(
            f"input.entity.regex '{config.entity.regex}' differs from the entity regex the model was "
            f"trained with, '{trained_regex}'"
        )
    return differences


def _trained_entity_regex(metadata: ModelMetadata) -> str | None:
    """The entity regex the model's training used: its parser's, or for event keys its input's."""
    if metadata.parser is not None:
        return metadata.parser.entity_regex
    return trained_entity_regex(metadata)
