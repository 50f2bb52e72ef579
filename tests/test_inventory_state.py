"""What Amazon last accepted per SKU and marketplace (connectors/state.py ``listing_states``), on
SQLite and PostgreSQL: recorded, overwritten, read back exactly; copied with the store; a store
at schema version 6 gains the table on open."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from _postgres import postgres_server, postgres_url, state_url  # noqa: F401 - fixtures

from connectors.state import ListingState, StateStore

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"


def test_recorded_overwritten_and_read_exactly(state_url: str) -> None:
    accepted = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    with StateStore(state_url) as store:
        assert store.listing_states() == {}
        seen = ListingState("HOM-1", US, "HOME", "MFN", quantity=12, price=Decimal("19.99"), currency="USD")
        stored = store.record_listing_state(seen)
        assert stored.updated_at is not None
        store.record_listing_state(ListingState("HOM-1", UK, "HOME", "AFN", quantity=None, price=None, currency="GBP"))
        patched = ListingState(
            "HOM-1", US, "HOME", "MFN", 7, Decimal("1234567890.10"), "USD", accepted, "sub-1", readback_due=True
        )
        store.record_listing_state(patched)
        states = store.listing_states()
        assert set(states) == {("HOM-1", US), ("HOM-1", UK)}
        us = states[("HOM-1", US)]
        assert (us.quantity, us.price, str(us.price), us.accepted_at, us.submission_id, us.readback_due) == (
            7,
            Decimal("1234567890.10"),
            "1234567890.10",  # exact, trailing zero kept
            accepted,
            "sub-1",
            True,
        )
        assert list(store.listing_states(UK)) == [("HOM-1", UK)]
        assert states[("HOM-1", UK)].fulfillment == "AFN" and states[("HOM-1", UK)].price is None


def test_copied_with_the_store(tmp_path: Path, state_url: str) -> None:
    with StateStore(state_url) as source:
        source.record_listing_state(ListingState("A", US, "TOY", "MFN", 1, Decimal("2.50"), "USD"))
        with StateStore(f"sqlite:///{tmp_path / 'copy.sqlite'}") as target:
            assert source.copy_to(target)["listing_states"] == 1
            assert target.listing_states()[("A", US)].price == Decimal("2.50")


def test_a_store_at_version_6_gains_the_table(state_url: str) -> None:
    StateStore(state_url).close()
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE listing_states")
        conn.exec_driver_sql("DELETE FROM m3sync_schema WHERE version > 6")
    engine.dispose()
    with StateStore(state_url) as store:
        assert store.schema_version() == 7
        store.record_listing_state(ListingState("A", US, "TOY", "MFN", 1, None, "USD"))
        assert len(store.listing_states()) == 1
