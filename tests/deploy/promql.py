"""What a PromQL expression reads (metric and label names), checked against a /metrics page.

A deliberately small reading of PromQL, enough for the dashboard, the documented queries and
the Prometheus Adapter rule: selectors ``name{label="v"}``, ranges, function calls,
aggregations with ``by``/``without`` and vector matching with ``on``/``ignoring``. Grafana's
``$variables`` are dropped first; an expression it cannot read is an error, never a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]\[]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_SELECTOR = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*""\s*')
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
# Words that are neither metrics nor functions (operators, modifiers, literals).
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "Inf", "NaN"}
)
# Grafana's template variable query: label_values(metric, label).
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Selector:
    """One metric an expression reads and the labels its matchers name."""

    metric: str
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reads:
    """Everything an expression reads: its selectors and its grouping labels."""

    selectors: tuple[Selector, ...]
    grouping: frozenset[str] = field(default_factory=frozenset)

    @property
    def metrics(self) -> frozenset[str]:
        """The metric names alone."""
        return frozenset(selector.metric for selector in self.selectors)


def reads(expression: str) -> Reads:
    """The metrics and labels ``expression`` reads; ValueError when it cannot be read."""
    text = _STRING.sub('""', _GRAFANA_VARIABLE.sub("", expression))
    text = _RANGE.sub(" ", text)
    grouping = frozenset(
        label.strip() for labels in _GROUPING.findall(text) for label in labels.split(",")
    ) - {""}
    text = _GROUPING.sub(" ", text)
    selectors: list[Selector] = []

    def selector(match: re.Match[str]) -> str:
        name, matchers = match.group(1), match.group(2)
        if not name:
            raise ValueError(f"a selector without a metric name in {expression!r}")
        labels = set()
        for part in filter(str.strip, matchers.split(",")):  # strings are "" by now
            matcher = _MATCHER.fullmatch(part)
            if matcher is None:
                raise ValueError(f"unreadable matcher {part!r} in {expression!r}")
            labels.add(matcher.group(1))
        selectors.append(Selector(name, frozenset(labels)))
        return " "

    text = _SELECTOR.sub(selector, text)
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if not call and name not in _KEYWORDS:
            selectors.append(Selector(name))
    if not selectors:
        raise ValueError(f"no metric in {expression!r}")
    return Reads(tuple(selectors), grouping)


def label_values_query(query: str) -> Reads:
    """Grafana's ``label_values(metric, label)`` variable query as what it reads."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"not a label_values(metric, label) query: {query!r}")
    return Reads((Selector(match.group(1), frozenset({match.group(2)})),))


def exposed(page: str) -> dict[str, frozenset[str]]:
    """Every sample name on a /metrics page and the label names its samples carry."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def problems(
    what: Reads, exposition: dict[str, frozenset[str]], *, labels: bool = True
) -> list[str]:
    """What ``what`` reads that the exposition lacks: metrics, and (with ``labels``) the
    labels its matchers and groupings name."""
    found: list[str] = []
    for selector in what.selectors:
        if selector.metric not in exposition:
            found.append(f"metric {selector.metric} is not on /metrics")
        elif labels and not selector.labels <= exposition[selector.metric]:
            missing = sorted(selector.labels - exposition[selector.metric])
            found.append(f"{selector.metric} has no label {', '.join(missing)}")
    known = set().union(*(exposition.get(s.metric, frozenset()) for s in what.selectors))
    if labels and not what.grouping <= known:
        found.append(f"no metric of the expression has label {sorted(what.grouping - known)}")
    return found
