"""Fixtures of the record reader tests: the daemon's reader class with either record decoder."""

from __future__ import annotations

import pytest

from logwarden.daemon.kafka_client import compiled_records


@pytest.fixture(scope="module")
def compiled_class() -> type:
    """The daemon's reader with aiokafka's compiled decoder and no reports; an error if it is unusable."""
    batch_class, error_class, reason = compiled_records.compiled_batch_class()
    assert batch_class is not None and error_class is not None, reason
    return compiled_records.make_partition_records_class(batch_class, error_class)


@pytest.fixture(scope="module", params=["compiled", "kafka-python"])
def either_class(request: pytest.FixtureRequest) -> type:
    """The daemon's reader with either record decoder: with ``kafka.compiled_record_decoder: false``
    kafka-python's batches read the records, through the same generator."""
    if request.param == "kafka-python":
        return compiled_records.make_partition_records_class(None, None)
    batch_class, error_class, reason = compiled_records.compiled_batch_class()
    assert batch_class is not None and error_class is not None, reason
    return compiled_records.make_partition_records_class(batch_class, error_class)
