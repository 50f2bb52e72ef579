"""Local emulator of Amazon's Selling Partner API for the unmodified python-amazon-sp-api client.

    app = create_app(data_dir, base_url)          # Starlette; serve with sandbox.server.serve_in_thread
    SpApiStore(data_dir).seed(orders, documents, listings, seller_id)
    credentials(data_dir)                         # the client's ``credentials=`` dict
"""
from __future__ import annotations

from pathlib import Path

from .app import create_app
from .store import SpApiStore


def credentials(data_dir: Path) -> dict[str, str]:
    """LWA app id, client secret and refresh token generated for this data folder."""
    store = SpApiStore(Path(data_dir))
    try:
        return store.credentials()
    finally:
        store.close()


__all__ = ["SpApiStore", "create_app", "credentials"]


def seed_world(data_dir: Path, world: object) -> None:
    """Seed the sandbox in ``data_dir`` from a ``sandbox.generator`` World (idempotent)."""
    store = SpApiStore(Path(data_dir))
    try:
        store.seed(world.orders_v0(), world.settlement_documents(), world.listings(),  # type: ignore[attr-defined]
                   world.seller_id)  # type: ignore[attr-defined]
    finally:
        store.close()


__all__ += ["seed_world"]
