"""Fit the next-event LSTM on normal sessions; deterministic for a given seed and thread count."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import structlog
import torch
from torch import nn

from logwarden.errors import TrainingError

from .calibrate import DEFAULT_THRESHOLD_MARGIN
from .dataset import DEFAULT_SEGMENT_LENGTH, bptt_chunks, make_batches, training_pieces, validate_sessions
from .network import NextEventLSTM
from .progress import Progress

logger = structlog.get_logger(__name__)

# numpy rejects negative seeds and torch.manual_seed those of 2**64 or more; 32 bits is a range every seeded
# generator (numpy's legacy RandomState included) accepts, so a seed written down works anywhere.
SEED_LIMIT = 2**32

# Upper bounds of the sizes an operator sets.  Beyond them a run is a typo, not a model: torch overflows
# (a hidden size past 2**63), builds layers until memory runs out, or trains for ever.  Each is far above
# any useful value (DeepLog: 2 x 64, tens of epochs); 4,096 x 16 already holds some 2 billion weights.
MAX_EPOCHS = 10_000
MAX_HIDDEN_SIZE = 4_096
MAX_LAYERS = 16


@dataclass(frozen=True)
class TrainingOptions:
    """Everything that shapes a trained model; two runs with equal options give identical models.

    ``holdout_fraction`` of the sessions is set aside (seeded) to pick the threshold and is
    never trained on; ``threshold_quantile`` and ``threshold_margin`` shape that choice (see
    ``calibrate.threshold_from_normal``).  ``swap_probability`` > 0 swaps neighbouring events
    while training (``dataset.swap_adjacent``) so concurrent-worker reorderings look normal; it
    is off by default because it also teaches the network that swapped steps are normal, which
    hides genuine out-of-order and missing-step anomalies.  ``count_gate`` lets training learn the
    session-level count check (``logwarden/model/count_gate.py``) when the data supports one, and
    ``transition_rule`` the graph's penalty on transitions no training session contains
    (``logwarden/model/transition_rule.py``), likewise, and ``cooccurrence_rule`` its penalty on
    pairs of events no training session holds together (``logwarden/model/cooccurrence_rule.py``),
    and ``length_rule`` its penalty on a session ending shorter than every training session
    (``logwarden/model/length_rule.py``; it needs ``num_layers`` of at least 2).  A session of more
    than ``segment_length`` events is trained as segments side by side, each warmed up on the
    ``segment_warmup`` events before it (``dataset.training_pieces``), so one very long entity does
    not make every epoch wait for its steps one after another.
    """

    epochs: int = 30
    seed: int = 0
    embedding_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-3
    final_learning_rate: float = 5e-4
    gradient_clip: float = 1.0
    bptt_length: int = 128
    segment_length: int = DEFAULT_SEGMENT_LENGTH
    segment_warmup: int = 128
    holdout_fraction: float = 0.1
    swap_probability: float = 0.0
    threshold_quantile: float = 1.0
    threshold_margin: float = DEFAULT_THRESHOLD_MARGIN
    threads: int = 2
    count_gate: bool = True
    transition_rule: bool = True
    cooccurrence_rule: bool = True
    length_rule: bool = True

    def validate(self, names: Mapping[str, str] | None = None) -> None:
        """Raise TrainingError naming the first invalid option, as ``names`` calls it (default: its field).

        The command line passes its option names, so ``--layers 0`` is reported as ``--layers``,
        not as the field ``num_layers`` the operator never typed.
        """
        name_of = dict(names or {})
        limits = {"epochs": MAX_EPOCHS, "hidden_size": MAX_HIDDEN_SIZE, "num_layers": MAX_LAYERS}
        positive = (
            "epochs",
            "embedding_dim",
            "hidden_size",
            "num_layers",
            "batch_size",
            "bptt_length",
            "segment_length",
            "threads",
        )
        for field_name in positive:
            value = getattr(self, field_name)
            name = name_of.get(field_name, field_name)
            if value < 1:
                raise TrainingError(f"{name} must be at least 1, got {value}")
            limit = limits.get(field_name)
            if limit is not None and value > limit:
                raise TrainingError(f"{name} must be at most {limit:,}, got {_shorten_int(value)}")
        if self.segment_warmup < 0:
            raise TrainingError(f"segment_warmup must be non-negative, got {self.segment_warmup}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise TrainingError(f"{name_of.get('seed', 'seed')} must be in [0, 2**32), got {self.seed}")
        if not (self.learning_rate > 0 and self.final_learning_rate > 0):
            raise TrainingError("learning_rate and final_learning_rate must be positive")
        if not 0.0 <= self.swap_probability < 1.0:
            raise TrainingError(f"swap_probability must be in [0, 1), got {self.swap_probability}")
        if not 0.0 < self.threshold_quantile <= 1.0:
            raise TrainingError(f"threshold_quantile must be in (0, 1], got {self.threshold_quantile}")
        if self.threshold_margin < 0:
            raise TrainingError(f"threshold_margin must be non-negative, got {self.threshold_margin}")


def _shorten_int(value: int) -> str:
    """``value`` as written, or its digit count when too long to quote in a one-line error."""
    text = str(value)
    return text if len(text) <= 20 else f"a {len(text)}-digit number"


@dataclass(frozen=True)
class FitResult:
    """The trained network and how training went."""

    network: NextEventLSTM
    epoch_losses: tuple[float, ...]
    seconds: float
    epoch_seconds: tuple[float, ...] = ()
    """Wall time of each epoch: never written to ``model.json``, whose bytes a seed alone decides."""

    @property
    def final_loss(self) -> float:
        """Mean next-event negative log-likelihood (nats) over the last epoch."""
        return self.epoch_losses[-1]


def fit(sessions: Sequence[np.ndarray], vocab_size: int, options: TrainingOptions) -> FitResult:
    """Train on ``sessions`` (int64 ids ≥ FIRST_EVENT_ID, below ``vocab_size``) and return the network.

    Adam with a learning rate decaying geometrically from ``learning_rate`` to
    ``final_learning_rate``: a high rate finds the sequence structure quickly, the low
    tail sharpens rare-but-normal transitions so their surprise stays below the threshold.
    """
    options.validate()
    validate_sessions(sessions, vocab_size)
    torch.manual_seed(options.seed)
    torch.set_num_threads(options.threads)
    rng = np.random.default_rng(options.seed)
    network = NextEventLSTM(vocab_size, options.embedding_dim, options.hidden_size, options.num_layers)
    optimiser = torch.optim.Adam(network.parameters(), lr=options.learning_rate)
    decay = (options.final_learning_rate / options.learning_rate) ** (1.0 / max(options.epochs - 1, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=decay)
    loss_function = nn.NLLLoss(reduction="sum")
    pieces = training_pieces(sessions, options.segment_length, options.segment_warmup)
    if len(pieces) > len(sessions):
        cut = [len(s) for s in sessions if len(s) > options.segment_length]
        logger.info(
            "long_sessions_cut",
            sessions=len(cut),
            longest=max(cut),
            segments=len(pieces) - len(sessions) + len(cut),
            segment_length=options.segment_length,
            warmup=options.segment_warmup,
        )
    started = time.perf_counter()
    losses: list[float] = []
    epoch_seconds: list[float] = []
    network.train()
    for epoch in range(options.epochs):
        epoch_started = time.perf_counter()
        total_loss, total_targets = 0.0, 0
        batches = make_batches(pieces, options.batch_size, rng, options.swap_probability)
        progress = Progress("training_progress")
        for done, batch in enumerate(batches):
            progress.tick(epoch=epoch + 1, batches_done=done, batches=len(batches))
            h, c = network.zero_state(batch.tokens.shape[1])
            for chunk in bptt_chunks(batch, options.bptt_length):
                log_probs, h, c = network(chunk.tokens, h, c)
                count = chunk.target_count
                if count:
                    loss = loss_function(log_probs[chunk.loss_mask], chunk.tokens[chunk.loss_mask])
                    optimiser.zero_grad()
                    (loss / count).backward()
                    nn.utils.clip_grad_norm_(network.parameters(), options.gradient_clip)
                    optimiser.step()
                    total_loss += float(loss.detach())
                    total_targets += count
                h, c = h.detach(), c.detach()
        scheduler.step()
        losses.append(total_loss / max(total_targets, 1))
        epoch_seconds.append(time.perf_counter() - epoch_started)
        logger.info(
            "training_epoch",
            epoch=epoch + 1,
            epochs=options.epochs,
            loss=round(losses[-1], 6),
            seconds=round(epoch_seconds[-1], 2),
        )
    network.eval()
    seconds = time.perf_counter() - started
    return FitResult(
        network=network, epoch_losses=tuple(losses), seconds=seconds, epoch_seconds=tuple(epoch_seconds)
    )
