"""Event parsing shared by trainer and daemon: one implementation of every step from line to event id."""
