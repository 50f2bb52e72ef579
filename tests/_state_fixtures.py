"""Helpers for the state store's tests that must be importable by spawned processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

# What each racing process does, given its index; it reports the value to the parent.
RACE_ACTIONS = ("claim", "watermark", "dead_letter", "settled_orders", "reversal")


def race_in_fresh_process(url: str, action: str, index: int, barrier: Barrier, results: Any) -> None:
    """Open the store at ``url`` (creating the schema, racing the others) and do ``action`` on
    the one row every process wants; put ``(index, value)`` on ``results``, or ``(index, error)``
    after breaking the barrier, so that no one waits for a process that failed."""
    from connectors.state import StateStore

    try:
        barrier.wait(timeout=60)
        store = StateStore(url)
        results.put((index, _act(store, action, index)))
        # Stay alive until every process has acted: a claimer that is gone may be taken over.
        barrier.wait(timeout=60)
        store.close()
    except BaseException as exc:
        barrier.abort()
        results.put((index, RaceError(f"{type(exc).__name__}: {exc}")))
        raise


class RaceError(str):
    """What went wrong in a racing process (a value the parent tells from a result)."""


def _act(store: Any, action: str, index: int) -> Any:
    if action == "claim":
        claim = store.claim_posting("RACE", kind="voucher", source="race.tsv", content_hash=f"p{index}")
        return (f"p{index}", claim.won, claim.posting.content_hash)
    if action == "watermark":
        store.set_watermark("orders:ATVPDKIKX0DER", f"2024-10-{index + 1:02d}T00:00:00Z")
        return index
    if action == "dead_letter":
        return store.add_dead_letter("orders", "order", "112-0000001-0000001", {"try": index}, f"HTTP 50{index}").id
    if action == "settled_orders":
        # Process i settles orders i .. i+9: neighbours overlap, so they race for the same rows.
        return store.record_settled_orders("S1", [f"111-{n:02d}" for n in range(index, index + 10)])
    if action == "reversal":
        from connectors.state import AlreadyReversed

        try:
            store.record_reversal("S9", 1, {"AMZ-S9-202410": "V1"}, {"AMZ-S9-202410-R1": f"R{index}"}, "2024-11-01")
        except AlreadyReversed:
            return False
        return True
    raise ValueError(f"unknown race action {action!r}; one of {RACE_ACTIONS}")


class FakeClock:
    """A settable UTC clock for ageing rows."""

    def __init__(self, start: datetime = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
