"""Amazon's usage plans as token buckets (rate = refill per second, burst = bucket size)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class UsagePlan:
    rate: float  # requests per second
    burst: int

    @property
    def header(self) -> str:
        """``x-amzn-RateLimit-Limit`` as Amazon writes it (``0.0167``, ``2.0``)."""
        return f"{self.rate:.4f}".rstrip("0").rstrip(".") if self.rate < 1 else f"{self.rate:.1f}"


# Rates and bursts from the official models (https://github.com/amzn/selling-partner-api-models;
# https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits).
USAGE_PLANS: dict[str, UsagePlan] = {
    "getOrders": UsagePlan(0.0167, 20),
    "getOrder": UsagePlan(0.5, 30),
    "getOrderItems": UsagePlan(0.5, 30),
    "getOrderAddress": UsagePlan(0.5, 30),
    "getOrderBuyerInfo": UsagePlan(0.5, 30),
    "confirmShipment": UsagePlan(2.0, 10),
    "searchOrders": UsagePlan(0.0056, 20),  # Orders 2026-01-01
    "getOrder2026": UsagePlan(0.5, 30),  # Orders 2026-01-01 getOrder (its own bucket beside v0's)
    "getReports": UsagePlan(0.0222, 10),
    "getReport": UsagePlan(2.0, 15),
    "createReport": UsagePlan(0.0167, 15),
    "getReportDocument": UsagePlan(0.0167, 15),
    "patchListingsItem": UsagePlan(5.0, 5),
    "getListingsItem": UsagePlan(5.0, 10),
    "searchListingsItems": UsagePlan(5.0, 5),
    "getDefinitionsProductType": UsagePlan(5.0, 10),  # Product Type Definitions 2020-09-01
    "createRestrictedDataToken": UsagePlan(1.0, 10),
}


class RateLimiter:
    """One bucket per (operation, caller). ``time_scale`` speeds refilling up for tests."""

    def __init__(
        self, *, time_scale: float = 1.0, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.time_scale = time_scale
        self.enabled = enabled
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def allow(self, operation: str, caller: str) -> bool:
        """Take one token; False when the bucket is empty (the call is throttled)."""
        if not self.enabled:
            return True
        plan = USAGE_PLANS[operation]
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get((operation, caller), (float(plan.burst), now))
            tokens = min(float(plan.burst), tokens + (now - last) * plan.rate * self.time_scale)
            allowed = tokens >= 1.0
            self._buckets[(operation, caller)] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
