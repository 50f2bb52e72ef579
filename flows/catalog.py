"""M3's item master into Amazon listing attributes (issue #15, item 3): the whole story on one screen.

the mapped SKUs (catalog.yaml's ``skus``, else order_routing.yaml's items) in every marketplace
catalog.yaml gives a language -> M3's item master of their items (MMS200MI GetItmBasic, once per
item) -> per listing: its product type (Amazon's, read once and kept), the attributes the user
maps (``sync.catalog``), only those whose value changed since Amazon last accepted them (all with
``full``) -> checked against the product type's schema (Product Type Definitions API): a patch
that breaks it is held, not sent -> ``patchListingsItem`` -> ACCEPTED: recorded; INVALID: a dead
letter -> the run's document and artifacts.

A held or rejected listing ends the run Failed (exit 3) and the others go on. M3 or Amazon out of
reach stops the run (``flow_boundary``, exit 4): what was accepted is recorded, so the next run
sends only the rest.
"""

from __future__ import annotations

from prefect import flow

from connectors.settings import load_settings
from flows import catalog_steps as steps
from flows.artifacts import artifact_environment, publish_catalog_artifacts
from flows.connections import open_connections
from flows.exit_codes import EXIT_HELD, EXIT_OK
from flows.failures import contained, end_run, flow_boundary


@flow(name="catalog-sync")
@flow_boundary
def catalog_sync(full: bool = False, sandbox: bool = False, home: str | None = None) -> dict:
    """Keep Amazon's listing attributes in step with M3's item master, sending only what changed.

    Args:
        full: Send every mapped attribute of every listing, changed or not, and read each
            listing's product type from Amazon again (a full resync).
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, catalog.yaml, order_routing.yaml, state and
            sandbox (default $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        The run's JSON document (docs/cli-contract.md, "m3sync catalog"): how many listings were
        sent, unchanged, held, rejected and skipped, and each listing that was not unchanged.
    """
    with open_connections(home, sandbox=sandbox, need_m3=True, need_amazon=True) as connections:
        routing, catalog = steps.load_settings_of(connections.home, sandbox=sandbox)
        environment = artifact_environment(load_settings(connections.home), sandbox)  # the artifacts' keys end in it
        listings = steps.listings_to_sync(routing, catalog, connections.require_amazon().marketplace_ids)
        items = steps.read_items(connections, [listing.itno for listing in listings])
        known = connections.state.catalog_listings()
        results = [
            steps.sync_listing(
                connections,
                catalog,
                listing,
                items[listing.itno],
                known.get((listing.sku, listing.marketplace_id)),
                full=full,
            )
            for listing in listings
        ]
        document = steps.catalog_document(results, full)
        contained("publishing the run's artifacts", lambda: publish_catalog_artifacts(environment, document))
    message = steps.catalog_message(document)
    return end_run(document, EXIT_OK if message is None else EXIT_HELD, message or "")
