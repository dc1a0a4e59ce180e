"""Micro-batching: the batcher, its policy, observer and drain rate, pure tensor merge/split."""
