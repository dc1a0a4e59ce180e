"""The PromQL reading the metric-name checks rely on: it finds every metric and label, and
reports what a /metrics page lacks."""

from __future__ import annotations

import pytest

from deploy.promql import Reads, Selector, exposed, label_values_query, problems, reads

PAGE = """\
# HELP tensorgate_inference_requests_total Inference requests answered
# TYPE tensorgate_inference_requests_total counter
tensorgate_inference_requests_total{model="adder",status="200"} 3.0
# HELP tensorgate_queue_seconds Time in the queue
# TYPE tensorgate_queue_seconds histogram
tensorgate_queue_seconds_bucket{le="0.1",model="adder",version="1"} 1.0
tensorgate_queue_seconds_bucket{le="+Inf",model="adder",version="1"} 1.0
tensorgate_queue_seconds_count{model="adder",version="1"} 1.0
tensorgate_queue_seconds_sum{model="adder",version="1"} 0.01
"""


def test_a_quantile_over_a_grafana_range_reads_the_bucket_series() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le, model)"
        ' (rate(tensorgate_queue_seconds_bucket{model=~"$model"}[$__rate_interval])))'
    )
    assert reads(expression) == Reads(
        (Selector("tensorgate_queue_seconds_bucket", frozenset({"model"})),),
        frozenset({"le", "model"}),
    )


def test_operators_offsets_and_vector_matching_are_not_metrics() -> None:
    what = reads(
        'sum(rate(a_total{status=~"5.."}[5m] offset 1h)) / on(model) group_left(version)'
        " sum(rate(b_total[5m])) > bool 0.5 and c"
    )
    assert what.metrics == {"a_total", "b_total", "c"}
    assert what.grouping == {"model", "version"}


def test_what_cannot_be_read_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="without a metric name"):
        reads('{__name__=~"tensorgate_.*"}')
    with pytest.raises(ValueError, match="unreadable matcher"):
        reads("x{<<.LabelMatchers>>}")
    with pytest.raises(ValueError, match="no metric"):
        reads("vector(1)")
    with pytest.raises(ValueError, match="label_values"):
        label_values_query("query_result(up)")


def test_a_metric_or_label_missing_from_the_page_is_reported() -> None:
    page = exposed(PAGE)
    assert page["tensorgate_inference_requests_total"] == {"model", "status"}
    assert not problems(
        reads("sum by (model) (rate(tensorgate_inference_requests_total[5m]))"), page
    )
    assert problems(reads("rate(tensorgate_inference_requests_count[5m])"), page) == [
        "metric tensorgate_inference_requests_count is not on /metrics"
    ]
    assert problems(reads('tensorgate_inference_requests_total{version="1"}'), page) == [
        "tensorgate_inference_requests_total has no label version"
    ]
    grouped = reads("sum by (version) (tensorgate_inference_requests_total)")
    assert problems(grouped, page) == ["no metric of the expression has label ['version']"]
    assert not problems(grouped, page, labels=False)
