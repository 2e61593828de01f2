"""The daemon names the ways its input settings differ from the input its model was trained on."""

from __future__ import annotations

import dataclasses

from model_metadata import model_metadata

from logwarden.daemon.config import EntityConfig, InputConfig, JsonInputConfig
from logwarden.daemon.training_input import training_input_differences
from logwarden.events.raw import parser_settings
from logwarden.model.contract import ModelMetadata

JSON_BY_FIELD = {"format": "json", "message_field": "message", "entity_field": "job.id"}


def model(training_input: dict[str, object] | None, entity_regex: str | None) -> ModelMetadata:
    """Metadata of a model trained with ``entity_regex`` and ``training_input`` (None: an older model)."""
    return model_metadata(
        parser=parser_settings(entity_regex),
        training={} if training_input is None else {"input": training_input},
    )


def json_input(entity: EntityConfig, message_field: str = "message") -> InputConfig:
    """JSON input settings with ``entity`` and the messages in ``message_field``."""
    return InputConfig(format="json", entity=entity, json=JsonInputConfig(message_field=message_field))


def test_the_settings_the_model_was_trained_with_give_no_difference() -> None:
    """Input set as in training, by JSON field or by raw regex, gives no difference."""
    assert (
        training_input_differences(json_input(EntityConfig(field="job.id")), model(JSON_BY_FIELD, None)) == []
    )
    raw = InputConfig(format="raw", entity=EntityConfig(regex=r"job_\d+"))
    assert training_input_differences(raw, model({"format": "raw"}, r"job_\d+")) == []


def test_another_entity_field_or_message_field_is_named_with_the_trained_one() -> None:
    """Another message field and entity field each give one line naming the setting and what training used."""
    differences = training_input_differences(
        json_input(EntityConfig(field="host.name"), message_field="msg"), model(JSON_BY_FIELD, None)
    )
    assert differences == [
        "input.json.message_field is 'msg'; the model was trained on the messages in field 'message'",
        "input.entity.field is 'host.name'; the model's training grouped events by the field 'job.id'",
    ]


def test_raw_input_for_a_model_trained_on_json_events_is_named() -> None:
    """Raw input for a model trained on JSON events is one difference naming both formats."""
    raw = InputConfig(format="raw", entity=EntityConfig(regex=r"job_\d+"))
    [difference] = training_input_differences(raw, model(JSON_BY_FIELD, None))
    assert "trained on JSON events" in difference and "input.format is raw" in difference


def test_another_entity_regex_is_named_for_old_and_new_models_alike() -> None:
    """Another entity regex is named whether the model records its training input or predates that record."""
    raw = InputConfig(format="raw", entity=EntityConfig(regex=r"blk_-?\d+"))
    for training_input in ({"format": "raw"}, None):
        [difference] = training_input_differences(raw, model(training_input, r"job_\d+"))
        assert difference == (
            r"input.entity.regex 'blk_-?\d+' differs from the entity regex the model was trained with, "
            r"'job_\d+'"
        )


def test_settings_that_cannot_be_compared_give_no_difference() -> None:
    """The record key or a field may name the entity a regex found in training: no false alarm."""
    trained_by_regex = model({"format": "raw"}, r"job_\d+")
    for entity in (EntityConfig(key=True), EntityConfig(field="job")):
        assert training_input_differences(json_input(entity), trained_by_regex) == []
    sequences = dataclasses.replace(trained_by_regex, input_kind="sequences", parser=None)
    assert training_input_differences(json_input(EntityConfig(key=True)), sequences) == []


def test_a_model_of_event_keys_names_another_event_field_and_entity_regex() -> None:
    """A model trained with ``train --json --event-field`` has no parser: its input record decides."""
    keys_model = model_metadata(
        input_kind="sequences",
        training={
            "input": {
                "format": "json",
                "message_field": "message",
                "entity_field": None,
                "entity_regex": r"user=(\w+)",
                "event_field": "event.code",
            }
        },
    )
    same = InputConfig(
        format="json",
        entity=EntityConfig(regex=r"user=(\w+)"),
        json=JsonInputConfig(event_field="event.code"),
    )
    assert training_input_differences(same, keys_model) == []
    other = InputConfig(
        format="json", entity=EntityConfig(regex=r"uid=(\d+)"), json=JsonInputConfig(event_field="action")
    )
    assert training_input_differences(other, keys_model) == [
        "input.json.event_field is 'action'; the model was trained on the event keys in field 'event.code'",
        r"input.entity.regex 'uid=(\d+)' differs from the entity regex the model was trained with, "
        r"'user=(\w+)'",
    ]


def test_an_event_field_for_a_model_trained_on_messages_is_named_raw_or_json_alike() -> None:
    """Its event keys are mined template ids: a field of upstream event codes would make every event
    UNKNOWN, and that is worth a line at start (T<i> keys sent on purpose remain possible)."""
    by_event_field = InputConfig(
        format="json", entity=EntityConfig(field="job.id"), json=JsonInputConfig(event_field="event.code")
    )
    for trained_on in ({"format": "raw"}, JSON_BY_FIELD):
        differences = training_input_differences(by_event_field, model(trained_on, None))
        assert any(d.startswith("input.json.event_field is 'event.code'") for d in differences), differences
