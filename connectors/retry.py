"""Exponential backoff with full jitter, shared by every connector.

One policy object, no hidden state: callers decide which failures are retryable (reads:
timeouts, 5xx, 429; writes only where the write is idempotent) and pass a predicate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the wait before try n+1 is uniform in [0, min(cap, base * 2**n)]."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * (2**attempt))
        return (rng or random).uniform(0, ceiling)


def call_with_retries(
    fn: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    min_wait: Callable[[BaseException], float] = lambda exc: 0.0,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error is raised, or attempts run out.

    ``min_wait`` lets a caller honour a server's own hint (Retry-After, a rate limiter's
    refill time): the wait is the larger of that and the jittered backoff.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except BaseException as exc:  # noqa: BLE001 - the predicate decides
            attempt += 1
            if attempt >= backoff.attempts or not retryable(exc):
                raise
            wait = max(min_wait(exc), backoff.delay(attempt - 1))
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
