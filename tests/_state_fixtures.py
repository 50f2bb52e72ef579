"""Helpers for tests/test_state_store.py that must be importable by spawned processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any


def claim_in_fresh_process(home: str, key: str, content_hash: str, barrier: Barrier, results: Any) -> None:
    """Open the store (creating the schema, racing the others) and claim ``key``."""
    from connectors.state import StateStore

    barrier.wait(timeout=60)
    store = StateStore.for_home(Path(home))
    claim = store.claim_posting(key, kind="voucher", source="race.tsv", content_hash=content_hash)
    results.put((content_hash, claim.won, claim.posting.content_hash))
    # Stay alive until every process has claimed: a claimer that is gone may be taken over.
    barrier.wait(timeout=60)
    store.close()


class FakeClock:
    """A settable UTC clock for ageing rows."""

    def __init__(self, start: datetime = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
