"""Pure scoring logic over a step model: per-event surprise, per-session verdicts, metrics."""
