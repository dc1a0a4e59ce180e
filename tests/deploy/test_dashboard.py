"""The Grafana dashboard, the documented PromQL and the adapter rule read only metrics and
labels that a live tensorgate serves after traffic, so none of them can silently break
(issue 13, items 2 and 4)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.dockerfile import parse
from deploy.promql import Reads, exposed, problems
from deploy.queries import adapter_queries, dashboard, dashboard_queries, documented_queries
from support.app import bearer, make_settings
from support.onnx_models import adder_model, write_model
from support.paths import ROOT
from support.server_process import serving

REQUESTS = 12
ROW = {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}
GOOD = {"inputs": [ROW, {**ROW, "name": "b"}]}
BAD = {"inputs": [ROW]}  # input b is missing: 400


@dataclass(frozen=True)
class Live:
    """A live server's address and its /metrics page (names and labels) after traffic."""

    base_url: str
    metrics: dict[str, frozenset[str]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``tensorgate serve`` of a one-model repository, after health, metadata, good and bad
    inference requests."""
    repository = tmp_path_factory.mktemp("models")
    write_model(repository, "adder", adder_model())
    headers = {"Authorization": bearer(make_settings(repository))}
    with (
        serving(repository) as server,
        httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client,
    ):
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/adder").status_code == 200
        for _ in range(REQUESTS):
            assert client.post("/v2/models/adder/infer", json=GOOD).status_code == 200
        assert client.post("/v2/models/adder/infer", json=BAD).status_code == 400
        page = client.get("/metrics")
        assert page.status_code == 200
        yield Live(server.base_url, exposed(page.text))


def test_the_dashboard_has_a_panel_for_each_signal() -> None:
    board = dashboard()
    titles = " | ".join(panel["title"].lower() for panel in board["panels"])
    for signal in ("throughput", "latency", "errors by status", "queue depth", "batch size"):
        assert signal in titles
    assert "rejections and expiries per model" in titles
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    metrics = set().union(*(q.metrics for q in dashboard_queries().values()))
    assert {
        "tensorgate_inference_requests_total",
        "tensorgate_inference_request_seconds_bucket",
        "tensorgate_queue_depth",
        "tensorgate_batch_size_bucket",
        "tensorgate_rejected_total",
        "tensorgate_expired_total",
    } <= metrics


def test_the_deployment_guide_documents_each_query() -> None:
    documented = " ".join(documented_queries())
    for needle in (
        "tensorgate_inference_requests_total",  # throughput and error ratio
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
        "tensorgate_queue_depth",  # queue saturation
        "tensorgate_batch_size_sum",  # batch fill
    ):
        assert needle in documented


def assert_served(queries: dict[str, Reads], live: Live, *, labels: bool = True) -> None:
    found = {
        where: issues
        for where, query in queries.items()
        if (issues := problems(query, live.metrics, labels=labels))
    }
    assert not found, found


@pytest.mark.e2e
def test_every_dashboard_query_reads_served_metrics_and_labels(live: Live) -> None:
    assert_served(dashboard_queries(), live)


@pytest.mark.e2e
def test_every_documented_query_reads_served_metrics_and_labels(live: Live) -> None:
    assert_served(documented_queries(), live)


@pytest.mark.e2e
def test_the_adapter_rule_reads_a_served_metric(live: Live) -> None:
    # Its labels (namespace, pod) come from Prometheus' Kubernetes discovery, not /metrics.
    assert_served(adapter_queries(), live, labels=False)


@pytest.mark.e2e
def test_a_dashboard_naming_an_unserved_metric_fails(live: Live, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```promql\nsum(rate(tensorgate_inference_total[5m]))\n```\n")
    with pytest.raises(AssertionError, match="tensorgate_inference_total is not on /metrics"):
        assert_served(documented_queries(doc), live)


@pytest.mark.e2e
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_the_images_health_check_passes_on_a_live_server_and_fails_without(
    live: Live, dockerfile: str
) -> None:
    (command,) = [parse((ROOT / dockerfile).read_text()).image.last("HEALTHCHECK").exec_form()]
    code = command[2]
    address = re.sub(r"^http://", "", live.base_url)

    def check(target: str) -> int:
        source = code.replace("127.0.0.1:8000", target)
        assert source != code
        return subprocess.run(
            [sys.executable, "-c", source], capture_output=True, timeout=30
        ).returncode

    assert check(address) == 0
    assert check("127.0.0.1:9") != 0  # the discard port: nothing listens there
