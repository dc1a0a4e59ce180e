"""Samples of a Prometheus text page, looked up by name and labels in any order."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition page, keyed by name and its set of labels."""
    return {
        (found.name, frozenset(found.labels.items())): found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
    }


def sample(values: Samples, name: str, **labels: str) -> float:
    """One sample of ``values`` (0 when absent: a series not yet observed)."""
    return values.get((name, frozenset(labels.items())), 0.0)
