"""The check every transport calls once the caller is known and before its request is
admitted to a model's queue: the rules of the model and of the server, in that order."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.auth.principal import Principal
from gateway.errors import RateLimited
from gateway.limits.local import LocalLimits
from gateway.limits.rules import BucketId, Rule, compile_rules
from gateway.limits.shared import SharedBuckets
from gateway.settings import LimitRule

UNKNOWN_MODEL = "(unknown)"
"""The metrics label of a request for a model the registry does not know."""

Held = list[BucketId]
"""The in-flight slots one request holds; ``Limiter.leave`` gives them back."""


class LimitObserver(Protocol):
    """Told about each refusal (metrics implement it); labels are bounded: rule names,
    known model names, ``rate`` or ``concurrency``, never a caller."""

    def limited(self, rule: str, model: str, kind: str) -> None:
        """One request refused with 429."""


class Limiter:
    """Applies the limit rules; ``active`` is False while no rule is configured anywhere,
    and then nobody needs to call ``enter``."""

    def __init__(
        self,
        rules: Sequence[LimitRule] = (),
        *,
        processes: int = 1,
        max_keys: int = 100_000,
        shared: Callable[[LocalLimits], SharedBuckets] | None = None,
        observer: LimitObserver | None = None,
        knows: Callable[[str], bool] = lambda _: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``processes``: worker processes of this server, each keeping an even share of
        every limit unless ``shared`` makes the Redis buckets (over this process's
        buckets, its fallback). ``knows`` tells a model name from one a client made up."""
        self._processes = processes
        self._local = LocalLimits(max_keys)
        self.shared = None if shared is None else shared(self._local)
        self._observer = observer
        self._knows = knows
        self._clock = clock
        self._server = compile_rules(rules, None, processes)
        self._by_model: dict[str, tuple[Rule, ...]] = {}
        self.active = False
        self._changed()

    def set_model_rules(self, model: str, rules: Sequence[LimitRule]) -> None:
        """The rules of ``model``'s config from now on (none: only the server's apply).

        Buckets are kept by rule name and caller, so a rule whose limits change keeps its
        callers' buckets and applies the new limits to them at once."""
        if rules:
            self._by_model[model] = compile_rules(rules, model, self._processes) + self._server
        else:
            self._by_model.pop(model, None)
        self._changed()

    def _changed(self) -> None:
        every = [*self._server, *(rule for rules in self._by_model.values() for rule in rules)]
        self.active = bool(every)
        self._local.refill_s = max(
            (rule.local_burst / rule.local_rate for rule in every if rule.rate is not None),
            default=0.0,
        )

    async def enter(self, caller: Principal, model: str) -> Held | None:
        """Check a request of ``caller`` for ``model``: raises ``RateLimited`` past a limit;
        else returns the in-flight slots it now holds (None: none), which the caller must
        hand to ``leave`` when the request ends, however it ends."""
        rules = self._by_model.get(model, self._server)
        now = self._clock()
        held: Held | None = None
        taken: list[tuple[Rule, BucketId]] = []
        try:
            for rule in rules:
                key = caller.subject if rule.key_of is None else rule.key_of(caller, model)
                if key is None:
                    continue
                bucket_id = (rule.namespace, key)
                if rule.concurrency is not None:
                    if not self._local.acquire(bucket_id, rule.local_concurrency):
                        raise self._refused(rule, model, None)
                    if held is None:
                        held = []
                    held.append(bucket_id)
                if rule.rate is not None:
                    shared = self.shared
                    if shared is None:
                        wait = self._local.take(rule, bucket_id, now)
                    else:
                        wait = await shared.take(rule, bucket_id, now)
                    if wait > 0.0:
                        raise self._refused(rule, model, wait)
                    taken.append((rule, bucket_id))
        except BaseException:  # refused, or cancelled while Redis answered: give back
            self._undo(held, taken)
            raise
        return held

    def leave(self, held: Held) -> None:
        """The request holding ``held`` has ended: its in-flight slots are free."""
        for bucket_id in held:
            self._local.release(bucket_id)

    def _undo(self, held: Held | None, taken: list[tuple[Rule, BucketId]]) -> None:
        """A later rule refused: what the earlier ones took is given back."""
        if held is not None:
            self.leave(held)
        shared = self.shared
        for rule, bucket_id in taken:
            if shared is None:
                self._local.give_back(rule, bucket_id)
            else:
                shared.give_back(rule, bucket_id)

    def _refused(self, rule: Rule, model: str, wait_s: float | None) -> RateLimited:
        kind = "concurrency" if wait_s is None else "rate"
        if self._observer is not None:
            self._observer.limited(rule.name, model if self._knows(model) else UNKNOWN_MODEL, kind)
        where = "" if rule.model is None else f" of model '{rule.model}'"
        if wait_s is None:
            assert rule.concurrency is not None
            return RateLimited(
                f"concurrency limit '{rule.name}'{where} reached: {rule.concurrency} requests "
                f"in flight {rule.per}; retry once one of them is answered",
                rule=rule.name,
                retry_after_s=1.0,
                quota=rule.concurrency,
                window_s=None,
            )
        return RateLimited(
            f"rate limit '{rule.name}'{where} exceeded: {rule.rate:g} requests per second, "
            f"burst {rule.burst:g}, {rule.per}; retry in {wait_s:.3f} s",
            rule=rule.name,
            retry_after_s=wait_s,
            quota=rule.quota,
            window_s=rule.window_s,
        )
