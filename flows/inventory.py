"""Stock and prices from M3 to Amazon listings (issue #15, items 1, 2, 4, 5): the whole story on one screen.

read back the listings earlier runs patched -> M3's balances, items and prices of the SKUs to
sync -> per SKU and marketplace: what Amazon last accepted (the state store, or read once from
Amazon) -> the plan (sync/inventory.py: allocatable minus buffer, the price list's price,
held when it moves too far) -> patchListingsItem for the changes only (``full``: everything)
within Amazon's 5 requests/second -> ACCEPTED recorded, INVALID dead-lettered -> the JSON
document ``m3sync inventory`` prints and the run's artifacts.

A listing fulfilled by Amazon is never patched. M3 out of reach stops the run before anything
is sent; Amazon out of reach stops the sending, and the next run sends what is left.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow

from connectors.amazon import AmazonError
from connectors.settings import ConfigurationError, load_settings
from flows import inventory_steps as steps
from flows.artifacts import artifact_environment, publish_inventory_artifacts
from flows.connections import Connections, open_connections
from flows.exit_codes import EXIT_OK
from flows.failures import contained, end_run, flow_boundary, one_line, run_logger
from sync.inventory import InventorySettings, InventorySettingsError, load_inventory_settings
from sync.routing import RoutingSettings, RoutingSettingsError, load_routing

FLOW_NAME = "inventory-sync"


@flow(name="inventory-sync")  # a literal: ops setup reads flow names from the source
@flow_boundary
def inventory_sync(full: bool = False, sandbox: bool = False, home: str | None = None) -> dict:
    """Publish M3's available-to-sell quantities and prices to the seller's Amazon listings,
    sending only what changed since Amazon last accepted it.

    Args:
        full: Send every listing's quantity and price, changed or not (a full resync).
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, inventory.yaml, order_routing.yaml and state
            (default $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        The run's JSON document (docs/cli-contract.md, "m3sync inventory"): listings patched,
        unchanged, held for review, rejected by Amazon (dead-lettered), and the exceptions.
    """
    with open_connections(home, sandbox=sandbox, need_m3=True, need_amazon=True) as connections:
        settings, routing = check_settings(connections.home, sandbox=sandbox)
        environment = artifact_environment(load_settings(connections.home), sandbox)  # the artifacts' keys end in it
        run = sync_listings(connections, settings, routing, full=full)
        document = steps.inventory_document(run, full=full)
        run_logger().info("%s", steps.inventory_summary(document))
        contained("publishing the run's artifacts", lambda: publish_inventory_artifacts(environment, document))
        return inventory_run_state(document)


def sync_listings(
    connections: Connections,
    settings: InventorySettings,
    routing: RoutingSettings,
    *,
    full: bool,
    only: tuple[str, str] | None = None,
) -> steps.Run:
    """One sync of every SKU and marketplace, or of the ``only`` pair (SKU, marketplace id) as
    a dead letter's replay does (no read back; the letter is resolved by the replay). The flow's
    path and the replay's. A pair with an open dead letter is read from Amazon again first
    (what Amazon refused may be a product type that changed there)."""
    run = steps.Run()
    accounts = connections.require_amazon()
    try:
        if only is None:
            steps.read_back(connections, settings, run, datetime.now(UTC))
        stock = steps.read_m3_stock(connections, settings, routing)
        marketplaces = steps.marketplaces_to_sync(settings, accounts.marketplace_ids)
        pairs = [(sku, m) for sku in stock.skus for m in marketplaces if only is None or (sku, m) == only]
        stale = steps.dead_lettered_pairs(connections.state) | ({only} if only is not None else set())
        recorded = {pair: state for pair, state in connections.state.listing_states().items() if pair not in stale}
        known = steps.discover(connections, pairs, recorded, run, full=full)
    except AmazonError as exc:  # out of reach (a refused request is the listing's exception)
        run.unreachable = one_line(str(exc))
        return run
    plans = steps.plan_all(settings, stock, known, full=full)
    steps.send(connections, plans, known, run, resolve_letters=only is None)
    return run


def check_settings(home: Path, *, sandbox: bool = False) -> tuple[InventorySettings, RoutingSettings]:
    """``home``'s inventory settings and order routing (its SKU -> item number map; the
    sandbox's for a sandbox run); a bad file is a ConfigurationError naming it (exit 2)."""
    try:
        return load_inventory_settings(home), load_routing(home, sandbox=sandbox)
    except (InventorySettingsError, RoutingSettingsError) as exc:
        raise ConfigurationError(str(exc)) from None


def inventory_run_state(document: dict[str, Any]) -> Any:
    """The document (Completed), or a Failed state carrying it with a one-line message."""
    code = steps.inventory_exit_code(document)
    return end_run(document, code, "" if code == EXIT_OK else steps.inventory_message(document))
