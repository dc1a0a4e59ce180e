"""Limit rules as the checks use them: made once (at start, when a model's config is
loaded), each with its bucket namespace, its share of this process, and the function from
a caller to the key of its bucket."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.auth.principal import Principal
from gateway.settings import LimitRule

KeyOf = Callable[[Principal, str], "str | None"]
"""(caller, model name) -> the caller's bucket key, or None when the rule does not apply."""
BucketId = tuple[str, str]
"""(rule namespace, caller's key): one bucket, one in-flight count."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One configured rule, ready to check."""

    name: str
    namespace: str
    """Where its buckets live: ``s:<name>`` server-wide, ``m:<model>:<name>`` per model."""
    key_of: KeyOf | None
    """None: one bucket per subject, for every caller (the common rule, checked inline)."""
    rate: float | None
    burst: float
    concurrency: int | None
    local_rate: float
    """``rate`` shared evenly between this server's processes (what one process keeps to
    without Redis, or while Redis is unreachable)."""
    local_burst: float
    local_concurrency: int
    per: str
    """Whose bucket, in words: ``per subject``, ``per value of claim 'tenant'``."""
    model: str | None = None
    """The model whose ``config.yaml`` set it; None: server-wide."""

    @property
    def window_s(self) -> int:
        """The ``w`` of its ``RateLimit-Policy``: the burst's refill time in whole seconds."""
        assert self.rate is not None
        return max(1, round(self.burst / self.rate))

    @property
    def quota(self) -> int:
        """The ``q`` of its ``RateLimit-Policy``: requests per ``window_s`` at its rate."""
        assert self.rate is not None
        return max(1, round(self.rate * self.window_s))


def compile_rules(
    rules: Sequence[LimitRule], model: str | None, processes: int
) -> tuple[Rule, ...]:
    """``rules`` of one model's config (``model``) or of the server (None), for a server of
    ``processes`` worker processes."""
    return tuple(_compile(rule, model, processes) for rule in rules)


def _compile(rule: LimitRule, model: str | None, processes: int) -> Rule:
    burst = float(rule.bucket_size)
    rate = rule.rate_per_s
    concurrency = rule.concurrency
    namespace = f"s:{rule.name}" if model is None else f"m:{model}:{rule.name}"
    return Rule(
        name=rule.name,
        namespace=namespace,
        key_of=_key_function(rule),
        rate=rate,
        burst=burst,
        concurrency=concurrency,
        local_rate=(rate or 1.0) / processes,
        # At least one token and one slot per process, or nothing would ever pass.
        local_burst=max(1.0, burst / processes),
        local_concurrency=max(1, (concurrency or 1) // processes),
        per=_per(rule.key),
        model=model,
    )


def _per(key: str) -> str:
    if key == "subject":
        return "per subject"
    if key == "shared":
        return "shared by every caller it applies to"
    return f"per value of claim '{key.removeprefix('claim:')}'"


def _key_function(rule: LimitRule) -> KeyOf | None:
    """The caller's key, or None when ``rule`` does not apply to the caller."""
    match = rule.match
    scopes = frozenset(match.scopes)
    claims = {
        name: frozenset([wanted] if isinstance(wanted, str) else wanted)
        for name, wanted in match.claims.items()
    }
    models = frozenset(match.models)
    key = rule.key
    if key == "subject" and not (scopes or claims or models):
        return None
    claim = key.removeprefix("claim:") if key.startswith("claim:") else None

    def key_of(caller: Principal, model: str) -> str | None:
        if models and model not in models:
            return None
        if scopes and scopes.isdisjoint(caller.scopes):
            return None
        for name, wanted in claims.items():
            if claim_text(caller.claims.get(name)) not in wanted:
                return None
        if claim is not None:
            return claim_text(caller.claims.get(claim))
        return caller.subject if key == "subject" else ""

    return key_of


def claim_text(value: object) -> str | None:
    """A claim's value as a key: strings and integers; None for anything else (absent,
    a list, an object, a boolean)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
