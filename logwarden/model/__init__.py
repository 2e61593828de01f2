"""The model contract shared by the trainer (which writes it) and the scorers (which read it)."""
