"""logwarden: streaming log anomaly detection with a stateful LSTM next-event model.

Shared code lives here (errors, event parsing, the model contract, scoring, the CLI);
the trainer installs as ``logwarden.train`` and the Kafka daemon as ``logwarden.daemon``.
"""

__version__ = "0.1.0"
