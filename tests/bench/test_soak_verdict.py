"""make soak's judgement: documented answers, lost requests put down to a killed worker or
not, flat resources, the targets and the printed report."""

from __future__ import annotations

import math

import pytest

from soak.faults import Kill
from soak.outcomes import KEPT_SAMPLES, Lost, Tally, documented
from soak.summary import report
from soak.verdict import Change, Sample, SoakResult, attribute, flatness, targets


@pytest.mark.parametrize(
    ("status", "retry_after", "message", "remote", "expected"),
    [
        (503, True, "model 'mlp' queue is full", False, True),
        (503, False, "model 'mlp' has no ready version (loading)", False, True),
        (503, False, "server is not ready: it is shutting down", False, True),
        (503, False, "the server is at its connection limit", False, False),
        (503, False, "no upstream replica can take the batch", True, True),
        (504, False, "deadline exceeded", False, True),
        (502, False, "broke off the call", True, True),
        (502, False, "broke off the call", False, False),
        (500, False, "internal server error", True, False),
    ],
)
def test_documented_5xx(
    status: int, retry_after: bool, message: str, remote: bool, expected: bool
) -> None:
    assert documented(status, retry_after, message, remote) is expected


def test_the_tally_counts_every_answer_and_keeps_the_first_odd_ones() -> None:
    tally = Tally()
    tally.answer(1.0, "json mlp", False, 200, False, b"{}")
    tally.answer(2.0, "json remote-mlp", True, 503, False, b'{"error": "replica out"}')
    for n in range(KEPT_SAMPLES + 5):
        tally.answer(3.0 + n, "typed mlp", False, 500, False, b'{"error": "internal"}')
    assert tally.by_status() == {200: 1, 503: 1, 500: KEPT_SAMPLES + 5}
    assert tally.odd == KEPT_SAMPLES + 5
    assert len(tally.odd_samples) == KEPT_SAMPLES
    assert tally.odd_samples[0].message == '{"error": "internal"}'
    assert tally.remote_failures == [2.0]


KILL = Kill(pid=100, stopped=45.0, killed=45.02, ports=frozenset({5001, 5002}))


def lost(port: int, sent: float, failed: float) -> Lost:
    return Lost("json mlp", port, sent, failed, "ConnectionResetError")


def test_a_request_lost_on_a_killed_workers_connection_as_it_died_is_the_kills() -> None:
    requests = [
        lost(5001, 44.99, 45.03),  # in flight
        lost(5002, 45.01, 45.03),  # sent while the worker was stopped
        lost(5003, 44.99, 45.03),  # another worker's connection
        lost(5001, 30.0, 30.01),  # before the kill
        lost(5001, 60.0, 60.01),  # long after: the port was reused
    ]
    losses = attribute(requests, [KILL])
    assert losses.by_kill == {100: requests[:2]}
    assert losses.elsewhere == requests[2:]
    assert losses.bounded([KILL])
    assert not attribute([*requests[:2], lost(5001, 45.1, 45.2)], [KILL]).bounded([KILL])


def samples(rss: list[int], seconds: float = 100.0) -> list[Sample]:
    step = seconds / len(rss)
    return [Sample(n * step, value, 100) for n, value in enumerate(rss)]


def test_flatness_compares_the_median_after_warm_up_with_the_median_at_the_end() -> None:
    # 20 samples over 100 s: 10-20% into the run is t=10 and 15 s, the last 10% t=90 and 95.
    values = [1, 1, 100, 102, *[500] * 14, 104, 106]
    flat = flatness(samples(values), 100.0, lambda s: s.rss_bytes)
    assert (flat.start, flat.end) == (101.0, 105.0)
    assert flat.flat
    assert not flatness(samples([100] * 18 + [106, 106]), 100.0, lambda s: s.rss_bytes).flat
    assert not flatness(samples([100] * 18 + [94, 94]), 100.0, lambda s: s.rss_bytes).flat
    empty = flatness([], 100.0, lambda s: s.rss_bytes)
    assert math.isnan(empty.change)
    assert not empty.flat


def result(tally: Tally) -> SoakResult:
    return SoakResult(
        seconds=100.0,
        connections=12,
        callers=3,
        tally=tally,
        kills=[KILL],
        replaced_after_s=[3.5],
        changes=[Change(30.0, "version 3 added", 200), Change(60.0, "split", 200)],
        upstream_down=25.0,
        upstream_back=36.0,
        samples=samples([100 * 2**20] * 20),
        idle_before=Sample(0.0, 90 * 2**20, 80),
        idle_after=Sample(101.0, 101 * 2**20, 82),
        exit_status=0,
    )


def test_a_clean_run_meets_every_target_and_says_so() -> None:
    tally = Tally(sent=1001)
    tally.answer(1.0, "json mlp", False, 200, False, b"{}")
    tally.lost.append(lost(5001, 44.99, 45.03))
    soak = result(tally)
    assert all(ok for _, _, ok in targets(soak))
    text = report(soak)
    assert "requests sent: 1001 (0 not sent: no connection)" in text
    assert "lost (no answer): 1: 1 on killed workers' connections, 0 elsewhere" in text
    assert "held 2 client connections; lost on them 1 (1 sent before the SIGKILL" in text
    assert "remote upstream: killed at t=25s, back at 36s" in text
    assert "[NOT MET]" not in text
    assert "open files flat within 5% (after warm-up vs end): 100 -> 100 (+0.0%)" in text


def test_medians_of_an_odd_count_of_samples_are_whole_numbers_and_print() -> None:
    soak = result(Tally())
    soak.samples = samples([100 * 2**20] * 30)  # three samples in each window
    assert flatness(soak.samples, 100.0, lambda s: s.open_files).start == 100
    assert "100 -> 100 (+0.0%)" in report(soak)


def test_a_500_a_stray_loss_or_an_undocumented_answer_fails_its_target() -> None:
    tally = Tally()
    tally.answer(1.0, "json mlp", False, 500, False, b'{"error": "internal server error"}')
    tally.lost.append(lost(5009, 10.0, 10.5))
    soak = result(tally)
    soak.changes.append(Change(90.0, "version 4 added", 500, "worker 812: ..."))
    verdicts = {name: (measured, ok) for name, measured, ok in targets(soak)}
    assert not verdicts["no 500 (inference and repository calls)"][1]
    assert verdicts["no 500 (inference and repository calls)"][0] == "1 inference, 1 repository"
    assert not verdicts["no undocumented 5xx"][1]
    assert not verdicts[
        "no request lost but those on a killed worker's connections (at most one each)"
    ][1]
    assert "elsewhere: t=10.00-10.50s json mlp port 5009: ConnectionResetError" in report(soak)
