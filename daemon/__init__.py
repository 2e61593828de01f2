"""The Kafka daemon: consume events, keep per-entity LSTM state, score with onnxruntime, emit alerts."""
