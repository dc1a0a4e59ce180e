"""Garbage-collector settings for a serving process, applied once its models are loaded.

Two costs showed in profiles under load (docs/batching.md):

- After start-up the heap holds about 90,000 long-lived objects (FastAPI, pydantic,
  ONNX Runtime bindings, the models) that every full collection walked again: 7 full
  collections cost 450 ms in a 16 s overload run, one of them a 77 ms pause. Frozen
  (``gc.freeze``), they are never walked: 36 ms in all, 9 ms at most.
- Each request allocates containers that die young (its parsed JSON, a 256-element list
  for ``mlp``); at the default threshold of 700 allocations the collector walked the
  requests in flight many times per batch. At 20,000 it does so about thirty times less.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def settle_heap() -> None:
    """Collect once, freeze what survives start-up, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
