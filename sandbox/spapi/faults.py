"""Injected failures (admin ``POST /sandbox/faults``): the next N calls fail on purpose."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import INTERNAL_FAILURE, QUOTA_EXCEEDED, SERVICE_UNAVAILABLE, ApiError
from .ratelimit import USAGE_PLANS

FAULT_ERRORS: dict[int, ApiError] = {429: QUOTA_EXCEEDED, 500: INTERNAL_FAILURE, 503: SERVICE_UNAVAILABLE}


@dataclass(frozen=True)
class Fault:
    status: int
    operations: frozenset[str]  # empty = every API operation
    with_body: bool  # False: no errors body (the client then reports an empty success)

    @property
    def error(self) -> ApiError:
        return FAULT_ERRORS[self.status]


class FaultPlan:
    """Counts down injected failures per request. Thread-safe."""

    def __init__(self) -> None:
        self._fault: Fault | None = None
        self._remaining = 0
        self._lock = threading.Lock()

    def arm(self, spec: object) -> Fault:
        """Validate an admin request body and arm it. Raises ValueError naming the bad field."""
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        status = spec.get("status")
        if status not in FAULT_ERRORS:
            raise ValueError(f"status must be one of {sorted(FAULT_ERRORS)}, got {status!r}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        operations = spec.get("operations") or []
        if not isinstance(operations, list) or any(op not in USAGE_PLANS for op in operations):
            raise ValueError(f"operations must be a list drawn from {sorted(USAGE_PLANS)}, got {operations!r}")
        with_body = spec.get("with_body", True)
        if not isinstance(with_body, bool):
            raise ValueError(f"with_body must be true or false, got {with_body!r}")
        fault = Fault(status, frozenset(operations), with_body)
        with self._lock:
            self._fault, self._remaining = fault, count
        return fault

    def clear(self) -> None:
        with self._lock:
            self._fault, self._remaining = None, 0

    def take(self, operation: str) -> Fault | None:
        """The fault to apply to this call, if one is armed for it (consumes one count)."""
        with self._lock:
            fault = self._fault
            if fault is None or (fault.operations and operation not in fault.operations):
                return None
            self._remaining -= 1
            if self._remaining <= 0:
                self._fault = None
            return fault

    def describe(self) -> dict | None:
        with self._lock:
            if self._fault is None:
                return None
            return {
                "status": self._fault.status,
                "remaining": self._remaining,
                "operations": sorted(self._fault.operations),
                "with_body": self._fault.with_body,
            }
