"""Per-entity LSTM state: the preallocated table the loop scores against, and the stores that keep it.

``table.py`` holds (h, c) per entity in arrays; ``store.py`` is the port a checkpoint writes
through; ``sqlite_store.py`` and ``sqlite_format.py`` are the SQLite file under ``state.dir`` that
a restart resumes from; ``memory_store.py`` keeps a checkpoint in process memory, for tests.
"""
