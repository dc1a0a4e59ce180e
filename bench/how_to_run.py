"""The static text of docs/benchmarks.md on running it: the opening paragraph (``make
bench`` and ``make bench-quick``) and the closing section on ``make bench-ab`` and
``make soak``."""

from __future__ import annotations

from targets import MEMORY_RUN_S, QUICK_MEMORY_S

HOW_TO_RUN = (
    "`make bench` keeps every core busy for the total time below: run it on an idle "
    "machine. `make bench-quick` runs every measurement briefly (one round, the memory "
    f"run {QUICK_MEMORY_S:.0f} s instead of {MEMORY_RUN_S:.0f} s) and writes this page "
    "to /tmp/tensorgate-bench (`BENCH_OUT=dir` to choose), leaving docs/ alone: a check "
    "that the benchmark runs, its figures indicative only; a target that needs a longer "
    "run than it made says `not judged`. `make bench-ab` and `make soak` are described "
    "[at the end](#ab-and-soak-runs)."
)

AB_AND_SOAK = [
    "## A/B and soak runs",
    "",
    "- `make bench-ab BASE=<git revision>` compares this tree with another revision, and "
    "with each fenced speed trick off, in alternating rounds (docs/benchmarks-ab.md). One "
    "variant turns fair share off (`TENSORGATE_FAIR_SHARE__ENABLED=false`): the page says "
    "what fair share costs a lone caller on `mlp` at 64 connections, against the target "
    "of at most 3% of req/s (issue 20).",
    "- `make soak` (bench/soak/, about 11 minutes; `make soak SOAK_SECONDS=90` for a short "
    "check) is a stability run, not a speed figure, and writes nothing here. It starts "
    "`tensorgate serve --workers 2` on a free loopback port with a scratch copy of the "
    "demo models and a remote model (`remote-mlp`) whose upstream is a second "
    "tensorgate, then sends 200 requests/s from 12 keep-alive connections of 3 token "
    "subjects, cycling through JSON, binary (Triton's binary tensor extension) and typed "
    "requests for each model. Meanwhile, every 30 s it adds a version of `mlp` or moves "
    "its traffic split (config.yaml, then the repository API's load), every 2 minutes "
    "from 45 s it SIGKILLs the oldest worker (stopped first, so that the client "
    "connections it held are read from /proc), and once it kills the upstream for 10 s. "
    "At the end it prints the requests sent, the answers by status and kind, the "
    "requests lost (no answer: a connection reset or closed without a response), the "
    "5xx answers the docs do not describe (documented: 503 with `Retry-After` for a full "
    "queue, 503 for a model not ready, 504 for a deadline, 502 and 503 from a remote "
    "model whose upstream is out), each fault and what it cost, and RSS and open files "
    "of the server's processes. Its targets, each printed met or not (the command exits "
    "1 when one is missed): no request lost but those on a killed worker's connections, "
    "at most one per connection; no 500; no undocumented 5xx; RSS and open files within "
    "5% between the medians of the samples 10-20% into the run and of its last 10%. In a "
    "run shorter than about 5 minutes that baseline comes before the first reload and "
    "kill, so its RSS figure says little. `python -m soak --help` (with "
    "`PYTHONPATH=scripts:bench`) lists the rate, caller and connection options; `--keep` "
    "keeps the scratch directory (the servers' logs, samples.csv).",
    "",
]
