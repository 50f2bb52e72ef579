"""The catalog state (issue #15, item 3): what Amazon last accepted per SKU and marketplace, on
SQLite and PostgreSQL, and the schema step that adds it to an older store."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from _postgres import postgres_server, postgres_url, state_url  # noqa: F401 - fixtures

from connectors.state import StateStore

DE, US = "A1PA6795UKMFR9", "ATVPDKIKX0DER"
CATALOG_STEP = "catalog_listings: the listing attributes Amazon last accepted, per SKU and marketplace"


def test_accepted_attributes_are_merged_per_sku_and_marketplace(state_url: str) -> None:
    moments = iter([datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 2, 8, tzinfo=UTC)] * 3)
    with StateStore(state_url, clock=lambda: next(moments)) as store:
        assert store.catalog_listing("HOM-10001", DE) is None and store.catalog_listings() == {}
        first = store.record_catalog_listing("HOM-10001", DE, "HOME")  # known before anything was accepted
        assert (first.product_type, first.accepted) == ("HOME", {})
        store.record_catalog_listing("HOM-10001", DE, "HOME", {"item_name": "h1", "bullet_point": "b1"})
        store.record_catalog_listing("HOM-10001", US, "HOME", {"item_name": "u1"})
        # A later accept of one attribute keeps the others; the product type may change (Amazon moved it).
        later = store.record_catalog_listing("HOM-10001", DE, "KITCHEN", {"item_name": "h2"})
        assert later.accepted == {"item_name": "h2", "bullet_point": "b1"}
        stored = store.catalog_listing("HOM-10001", DE)
        assert stored is not None
        assert (stored.product_type, stored.accepted) == ("KITCHEN", {"item_name": "h2", "bullet_point": "b1"})
        assert stored.updated_at == datetime(2026, 11, 2, 8, tzinfo=UTC)
        listings = store.catalog_listings()
        assert set(listings) == {("HOM-10001", DE), ("HOM-10001", US)}
        assert listings[("HOM-10001", US)].accepted == {"item_name": "u1"}


def test_a_store_of_version_5_gets_the_catalog_table_and_keeps_its_rows(state_url: str) -> None:
    with StateStore(state_url) as store:
        store.set_watermark("orders.last_updated", "2026-11-01T00:00:00+00:00")
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:  # back to version 5: before the catalog
        conn.exec_driver_sql("DROP TABLE catalog_listings")
        conn.exec_driver_sql("DROP TABLE listing_states")
        conn.exec_driver_sql("DELETE FROM m3sync_schema WHERE version > 5")
    engine.dispose()
    with StateStore(state_url) as store:
        assert store.schema_version() == 7
        assert store.get_watermark("orders.last_updated") == "2026-11-01T00:00:00+00:00"
        assert store.record_catalog_listing("KIT-10002", DE, "KITCHEN", {"item_name": "k"}).accepted == {
            "item_name": "k"
        }
    engine = sa.create_engine(state_url)
    with engine.connect() as conn:
        steps = conn.exec_driver_sql("SELECT version, description FROM m3sync_schema WHERE version = 6").all()
    engine.dispose()
    assert [tuple(step) for step in steps] == [(6, CATALOG_STEP)]


def test_state_migrate_copies_the_catalog(tmp_path) -> None:
    with (
        StateStore(f"sqlite:///{tmp_path / 'a.sqlite'}") as source,
        StateStore(f"sqlite:///{tmp_path / 'b.sqlite'}") as target,
    ):
        source.record_catalog_listing("TOY-10004", US, "TOY", {"item_name": "t"})
        copied = source.copy_to(target)
        assert copied["catalog_listings"] == 1
        copy = target.catalog_listing("TOY-10004", US)
        assert copy is not None and (copy.product_type, copy.accepted) == ("TOY", {"item_name": "t"})
