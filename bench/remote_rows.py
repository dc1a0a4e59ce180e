"""The remote backend's rows of ``make bench``: ``mlp`` served in-process by the one-worker
tensorgate, and by a second tensorgate whose ``mlp`` is a remote model calling the first
one over loopback (binary tensors), the two taking turns: the cost of the hop."""

from __future__ import annotations

from pathlib import Path

from alternating import servers_in_turns
from progress import Progress
from results import ON, REMOTE, Measurement
from servers import Server
from tokens import mint

REMOTE_CONNECTIONS = (1, 64)
TOKEN_VARIABLE = "BENCH_UPSTREAM_TOKEN"


def remote_repository(work: Path, upstream: str) -> Path:
    """A repository whose ``mlp`` runs on ``upstream`` (batching as the shipped config)."""
    model = work / "repo-remote" / "mlp"
    (model / "1").mkdir(parents=True)
    (model / "config.yaml").write_text(
        f"remote:\n  urls: [{upstream}]\n  token_env: {TOKEN_VARIABLE}\n  wire: binary\n"
    )
    return model.parent


def upstream_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus a token the remote model presents upstream (metadata and inference)."""
    return {**env, TOKEN_VARIABLE: mint(env, "gateway", "models:read models:infer")}


def remote_rows(
    servers: dict[str, Server],
    body: Path,
    work: Path,
    seconds: int,
    rounds: int,
    progress: Progress,
) -> list[Measurement]:
    """``mlp`` at 1 and 64 connections, local and through the hop, in turns."""
    kinds = (ON, REMOTE)
    return servers_in_turns(
        servers, kinds, body, "mlp", REMOTE_CONNECTIONS, work, seconds, rounds, progress
    )
