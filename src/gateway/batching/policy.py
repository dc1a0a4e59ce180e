"""How one version's batcher forms and runs batches, and the defaults every config starts from."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_QUEUE_DELAY_MS = 2.0
DEFAULT_MAX_QUEUE_SIZE = 128
DEFAULT_INSTANCES = 1
DEFAULT_DISPATCH_AHEAD_MS = 50.0
DEFAULT_INLINE_MAX_MS = 0.5


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How one version's batcher forms and runs batches.

    The defaults are those of a model without a ``config.yaml`` (``BatchingConfig`` reads
    the same constants), so a batcher built in a test behaves as one the registry builds.
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_queue_delay_s: float = DEFAULT_MAX_QUEUE_DELAY_MS / 1000
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    preferred_batch_sizes: tuple[int, ...] = ()
    instances: int = DEFAULT_INSTANCES
    batching: bool = True
    """False: one request per backend call (batching off, or no dynamic batch axis)."""
    dispatch_ahead_s: float = DEFAULT_DISPATCH_AHEAD_MS / 1000
    """Backend time, in batches that cannot grow any more, handed over beyond the running
    batches so that the runtime never waits for the event loop between two calls; 0: none."""
    inline_max_s: float = DEFAULT_INLINE_MAX_MS / 1000
    """A batch whose call is measured to take at most this long runs on the event loop
    (with a backend that can, ``infer_now``), saving the hand-over to a thread; 0: never."""
