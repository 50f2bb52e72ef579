"""Inventory sync when M3 does not answer (issue #15, "Bad input and faults"): every balance read
times out, so the run stops naming M3 (exit 4); nothing is patched or recorded (Amazon keeps what
it last accepted); once M3 answers, the next run sends the lower quantity. Settings and balances
as in tests/test_inventory_sync.py (SPO-10003: 15 on hand, 3 allocated -> 10 published)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_inventory_sync import DE, FR, SPO, UK, amazon_listings, prepare, set_stock, sync

from connectors.m3 import M3Unavailable
from flows import inventory_steps as steps
from flows.connections import open_connections

BALANCE_READS = ["MMS080MI/LstItemBal", "MMS060MI/LstBalID", "MMS200MI/GetItmWhsBal"]  # both profiles'


def test_m3_timing_out_stops_the_run_and_publishes_nothing(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same task without Prefect's task-level retries (2 s, 8 s, 30 s: for long outages); the
    # client's own retries of each read still run.
    monkeypatch.setattr(steps, "read_m3_stock", steps.read_m3_stock.with_options(retries=0))
    prepare(tmp_path)
    with open_connections(tmp_path, sandbox=True) as connections:
        assert sync(connections).unreachable is None
        assert {amazon_listings(connections)[(SPO, m)][0] for m in (DE, FR, UK)} == {10}

        def published() -> dict[tuple[str, str], tuple[object, object]]:
            """What the state store says Amazon accepted (the read back may change other fields)."""
            return {pair: (s.quantity, s.price) for pair, s in connections.state.listing_states().items()}

        before = published()
        set_stock(connections, "A10003", whlo="100", on_hand=15, allocated=12)  # 3 - max(2, 10%) = 1
        faults = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"
        hang = {"timeout_rate": 1.0, "hang_ms": 50, "transactions": BALANCE_READS}
        assert httpx.post(faults, json=hang, timeout=30).status_code == 200
        # M3 out of reach stops the run (the flow's boundary makes it exit 4 with this message).
        with pytest.raises(M3Unavailable, match=r"M3 unavailable for MMS080MI/LstItemBal"):
            sync(connections)
        assert {amazon_listings(connections)[(SPO, m)][0] for m in (DE, FR, UK)} == {10}
        assert published() == before
        assert httpx.delete(faults, timeout=30).status_code in (200, 204)
        resumed = sync(connections)
        assert resumed.unreachable is None
        assert sorted(e["marketplace"] for e in resumed.sent if e["sku"] == SPO) == ["DE", "FR", "UK"]
        assert {amazon_listings(connections)[(SPO, m)][0] for m in (DE, FR, UK)} == {1}
