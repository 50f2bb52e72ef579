"""Client-side token buckets, one per SP-API operation, so a run never exceeds its quota.

Amazon throttles with a token bucket per operation and selling partner: ``rate`` tokens
per second refill a bucket of ``burst``. We keep the same bucket locally and wait before
a call instead of collecting 429s. ``time_scale`` speeds the refill up for tests against
the sandbox (which scales its own buckets the same way); production uses 1.0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    rate: float  # tokens per second
    burst: int  # bucket size

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"rate limit needs rate > 0 and burst >= 1, got {self.rate}/{self.burst}")


# Amazon's published default usage plans (rate per second / burst), in the models of
# https://github.com/amzn/selling-partner-api-models and
# https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits.
PUBLISHED_LIMITS: Mapping[str, RateLimit] = {
    "getOrders": RateLimit(0.0167, 20),
    "getOrder": RateLimit(0.5, 30),
    "getOrderItems": RateLimit(0.5, 30),
    "getOrderAddress": RateLimit(0.5, 30),
    "getOrderBuyerInfo": RateLimit(0.5, 30),
    "createRestrictedDataToken": RateLimit(1.0, 10),
    "confirmShipment": RateLimit(2.0, 10),
    "getReports": RateLimit(0.0222, 10),
    "getReportDocument": RateLimit(0.0167, 15),
    "patchListingsItem": RateLimit(5.0, 5),
    "getListingsItem": RateLimit(5.0, 10),
    "searchListingsItems": RateLimit(5.0, 5),
    "getDefinitionsProductType": RateLimit(5.0, 10),
    "searchOrders": RateLimit(0.0056, 20),
}


class _Bucket:
    """Mutable bucket state; ``tokens`` may go negative: that is a reservation someone waits out."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.rate = limit.rate
        self.burst = limit.burst
        self.tokens = float(limit.burst)
        self.updated = now

    def refill(self, now: float, time_scale: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate * time_scale)
        self.updated = now


class RateLimiter:
    """Token buckets keyed by operation name; thread-safe; clock and sleep are injectable."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit] = PUBLISHED_LIMITS,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self._limits = dict(limits)
        self._time_scale = time_scale
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, operation: str) -> _Bucket:
        bucket = self._buckets.get(operation)
        if bucket is None:
            try:
                limit = self._limits[operation]
            except KeyError:
                raise ValueError(f"no rate limit known for SP-API operation {operation!r}") from None
            bucket = self._buckets[operation] = _Bucket(limit, self._clock())
        return bucket

    def acquire(self, operation: str) -> float:
        """Take one token for ``operation``, sleeping until it exists; returns the seconds waited."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            bucket.tokens -= 1.0
            # Reserve now, wait outside the lock: concurrent callers queue up behind each other.
            wait = -bucket.tokens / (bucket.rate * self._time_scale) if bucket.tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def refund(self, operation: str) -> None:
        """Give back the token of a request that never reached Amazon (connection refused, DNS
        failure): Amazon counted nothing, so neither do we (a retry must not wait a refill)."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            bucket.tokens = min(float(bucket.burst), bucket.tokens + 1.0)

    def available(self, operation: str) -> float:
        """Tokens in the bucket right now (negative while callers are waiting)."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            return bucket.tokens

    def drain(self, operation: str) -> None:
        """Amazon answered 429: its bucket is empty whatever ours says, so empty ours too."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            bucket.tokens = min(bucket.tokens, 0.0)

    def seconds_until_token(self, operation: str) -> float:
        """How long until one whole token is available (0 if one is there now)."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            missing = 1.0 - bucket.tokens
            return max(0.0, missing / (bucket.rate * self._time_scale))

    def update_rate(self, operation: str, header_value: str | None) -> None:
        """Adopt the rate Amazon reports in ``x-amzn-RateLimit-Limit`` (per-seller dynamic plans)."""
        if not header_value:
            return
        try:
            rate = float(header_value)
        except ValueError:
            return  # best-effort header: a malformed value is ignored, the published rate stays
        if rate <= 0:
            return
        with self._lock:
            bucket = self._bucket(operation)
            bucket.refill(self._clock(), self._time_scale)
            bucket.rate = rate

    def rate(self, operation: str) -> float:
        with self._lock:
            return self._bucket(operation).rate
