"""The daemon's side of Kafka, on kafka-python: its clients, the reading of fetched records, the group.

``clients.py`` builds the consumer and producer from config and sends outputs; ``compiled_records.py``
reads fetched record batches (``corrupt_batches.py``: those that cannot be read; ``record_batches.py``
writes them, for the reader's self-check); ``group_commit.py`` commits saved offsets to the consumer
group, and ``rebalance.py`` checkpoints before partitions move.
"""
