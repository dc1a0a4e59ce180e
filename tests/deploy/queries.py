"""The PromQL the deployment ships: the Grafana dashboard's, the documented queries of
docs/operations.md and the Prometheus Adapter rule, each with where it comes from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from deploy.promql import Reads, label_values_query, reads
from support.paths import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tensorgate.json"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
ADAPTER_VALUES = ROOT / "deploy" / "kubernetes" / "examples" / "prometheus-adapter-values.yaml"
_PROMQL_BLOCK = re.compile(r"^```promql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def dashboard_queries() -> dict[str, Reads]:
    """Every panel target and template variable of the dashboard, by where it is."""
    board = dashboard()
    found = {
        f"panel {panel['title']!r} {target['refId']}": reads(target["expr"])
        for panel in board["panels"]
        for target in panel["targets"]
    }
    for variable in board["templating"]["list"]:
        found[f"variable ${variable['name']}"] = label_values_query(variable["query"]["query"])
    return found


def documented_queries(path: Path = OPERATIONS_DOC) -> dict[str, Reads]:
    """The expressions in the ```promql blocks of a Markdown file: one per paragraph,
    ``#`` lines being comments."""
    found: dict[str, Reads] = {}
    for number, block in enumerate(_PROMQL_BLOCK.findall(path.read_text()), start=1):
        for paragraph in re.split(r"\n\s*\n", block):
            lines = [line for line in paragraph.splitlines() if not line.lstrip().startswith("#")]
            if expression := " ".join(lines).strip():
                found[f"{path.name} block {number}: {expression}"] = reads(expression)
    return found


def adapter_queries() -> dict[str, Reads]:
    """The Prometheus Adapter rules' series and metrics queries, its templates filled in
    (``<<.Series>>`` is the series the rule found)."""
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    found: dict[str, Reads] = {}
    for rule in values["rules"]["custom"]:
        series = reads(rule["seriesQuery"])
        (metric,) = series.metrics
        query = (
            rule["metricsQuery"]
            .replace("<<.Series>>", metric)
            .replace("<<.LabelMatchers>>", 'pod="p"')
            .replace("<<.GroupBy>>", "pod")
        )
        found[f"adapter series {metric}"] = series
        found[f"adapter metrics query {query}"] = reads(query)
    return found
