"""Local emulator of Amazon's Selling Partner API for the unmodified python-amazon-sp-api client.

    app = create_app(data_dir, base_url)          # Starlette; serve with sandbox.server.serve_in_thread
    SpApiStore(data_dir).seed(orders, documents, listings, seller_id)
    credentials(data_dir, "eu")                   # the client's ``credentials=`` dict for a region

Amazon serves each region (na, eu, fe) from its own host with its own refresh token; the
sandbox does the same with one app per region (``create_app(..., region="eu")``) on its own
port, all sharing the data folder. ``region=None`` answers for every marketplace on one host
(only for tests of the API shapes).
"""

from __future__ import annotations

from pathlib import Path

from .app import create_app
from .store import REGIONS, SpApiStore


def credentials(data_dir: Path, region: str = "na") -> dict[str, str]:
    """LWA app id, client secret and ``region``'s refresh token generated for this data folder."""
    store = SpApiStore(Path(data_dir))
    try:
        return store.credentials(region)
    finally:
        store.close()


__all__ = ["REGIONS", "SpApiStore", "create_app", "credentials"]


def seed_world(data_dir: Path, world: object) -> None:
    """Seed the sandbox in ``data_dir`` from a ``sandbox.generator`` World (idempotent)."""
    store = SpApiStore(Path(data_dir))
    try:
        store.seed(
            world.orders_v0(),
            world.settlement_documents(),
            world.listings(),  # type: ignore[attr-defined]
            world.seller_id,
        )  # type: ignore[attr-defined]
    finally:
        store.close()


__all__ += ["seed_world"]
