"""Fault injection for the MI paths: latency, error statuses, hangs, commit-then-drop, record locks.

Configured per app instance through ``/sandbox/faults`` (not shared between instances).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from typing import Any

ERROR_STATUSES = frozenset({500, 502, 503, 429})


class FaultConfigError(ValueError):
    """A ``/sandbox/faults`` body that cannot be used; the message names the key."""


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: int = 0
    error_rate: float = 0.0  # share of matching requests answered with ``status``, not executed
    status: int = 500
    timeout_rate: float = 0.0  # share of matching requests held ``hang_ms`` and then answered 504
    hang_ms: int = 30_000
    drop_after_commit: int = 0  # next N matching writes: executed, committed, connection dropped
    record_locked: int = 0  # next N matching write transactions: M3's XUP0001 NOK, nothing written
    locked_by: str = "M3BATCH"  # the user XUP0001 names ("changed by user &1")
    transactions: tuple[str, ...] = ()  # "PGM/TRN"; empty = every transaction
    seed: int | None = None

    @classmethod
    def from_json(cls, body: Any) -> FaultConfig:
        if not isinstance(body, dict):
            raise FaultConfigError("faults body must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name in ("latency_ms", "status", "hang_ms", "drop_after_commit", "record_locked"):
            if name in body:
                if not isinstance(body[name], int) or body[name] < 0:
                    raise FaultConfigError(f"{name} must be a non-negative integer, got {body[name]!r}")
                values[name] = body[name]
        for name in ("error_rate", "timeout_rate"):
            if name in body:
                rate = body[name]
                if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                    raise FaultConfigError(f"{name} must be a number between 0 and 1, got {rate!r}")
                values[name] = float(rate)
        if values.get("status", 500) not in ERROR_STATUSES:
            raise FaultConfigError(f"status must be one of {sorted(ERROR_STATUSES)}, got {values['status']!r}")
        if "transactions" in body:
            txs = body["transactions"]
            if not isinstance(txs, list) or not all(isinstance(t, str) and "/" in t for t in txs):
                raise FaultConfigError("transactions must be a list of 'PGM/TRN' strings")
            values["transactions"] = tuple(txs)
        if "locked_by" in body:
            user = body["locked_by"]
            if not (isinstance(user, str) and 0 < len(user) <= 10):
                raise FaultConfigError("locked_by must be an M3 user id (1-10 characters)")
            values["locked_by"] = user
        if body.get("seed") is not None:
            if not isinstance(body["seed"], int):
                raise FaultConfigError("seed must be an integer")
            values["seed"] = body["seed"]
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    latency_s: float = 0.0
    hang_s: float = 0.0
    error_status: int | None = None


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random()
        self._drops_left = 0
        self._locks_left = 0

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)
            self._drops_left = config.drop_after_commit
            self._locks_left = config.record_locked

    def clear(self) -> None:
        self.configure(FaultConfig())

    def _matches(self, keys: list[str]) -> bool:
        wanted = self._config.transactions
        return not wanted or any(k in wanted for k in keys)

    def before(self, keys: list[str]) -> Decision:
        """What to do before executing a request for transactions ``keys``."""
        with self._lock:
            cfg = self._config
            if not self._matches(keys):
                return Decision()
            latency = cfg.latency_ms / 1000
            if cfg.timeout_rate and self._rng.random() < cfg.timeout_rate:
                return Decision(latency, hang_s=cfg.hang_ms / 1000)
            if cfg.error_rate and self._rng.random() < cfg.error_rate:
                return Decision(latency, error_status=cfg.status)
            return Decision(latency)

    def take_drop(self, keys: list[str], writes: bool) -> bool:
        """True (and one fewer left) when this executed write must lose its answer."""
        with self._lock:
            if self._drops_left <= 0 or not writes or not self._matches(keys):
                return False
            self._drops_left -= 1
            return True

    def take_lock(self, key: str, writes: bool) -> str | None:
        """The user holding the record when this write transaction must meet a lock, else None.

        Per transaction, so in a bulk request only the matching items meet the lock.
        """
        with self._lock:
            if self._locks_left <= 0 or not writes or not self._matches([key]):
                return None
            self._locks_left -= 1
            return self._config.locked_by

    def state(self) -> dict[str, Any]:
        with self._lock:
            cfg = self._config
            return {
                **{f.name: getattr(cfg, f.name) for f in fields(cfg)},
                "transactions": list(cfg.transactions),
                "drops_left": self._drops_left,
                "locks_left": self._locks_left,
            }
