"""Amazon orders into M3 customer orders (issue #14, item 4): the whole story on one screen.

read the orders Amazon updated since the watermark (less an overlap; a first run looks back a
week) with their items, page by page as Amazon answers (the next page is read meanwhile) -> per
order: wait while Amazon has not confirmed it, find it in our records or in M3 (its CUOR is the
Amazon order id; found there, its lines are checked), else map it -> create the page's new
orders in a few M3 bulk requests and record Amazon id -> M3 order number as each answer comes
(a lost answer: look in M3 again before writing again) -> move the watermark past the orders
that are done -> the JSON document ``m3sync orders`` prints.

An order Amazon cancelled is deleted from M3 while nothing of it is picked (``cancel_in_m3``).
An order that cannot be mapped, or that M3 refuses, becomes a dead letter and the others go on;
the run then ends Failed naming it. M3 or Amazon out of reach stops the run (``flow_boundary``):
the watermark stays, and the next run finds what this one created.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from connectors.settings import ConfigurationError, load_settings
from flows import orders_steps as steps
from flows.artifacts import artifact_environment, publish_order_artifacts
from flows.connections import open_connections
from flows.exit_codes import EXIT_HELD, EXIT_OK
from flows.failures import contained, end_run, flow_boundary
from sync.routing import RoutingSettingsError, load_routing


@flow(name="order-sync")
@flow_boundary
def order_sync(since: str | None = None, sandbox: bool = False, home: str | None = None) -> dict:
    """Create M3 customer orders for the Amazon orders updated since the last run.

    Args:
        since: Read the orders Amazon updated after this ISO 8601 moment (with its zone) instead
            of the stored watermark.
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, order_routing.yaml, state and sandbox (default
            $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        The run's JSON document (docs/cli-contract.md): the orders created, already in M3,
        skipped, waiting and dead-lettered.
    """
    start = parse_since(since)
    with open_connections(home, sandbox=sandbox, need_amazon=True) as connections:
        try:
            routing = load_routing(connections.home, sandbox=sandbox)
        except RoutingSettingsError as exc:
            raise ConfigurationError(str(exc)) from None
        environment = artifact_environment(load_settings(connections.home), sandbox)  # the artifacts' keys end in it
        now = datetime.now(UTC)
        read_from = steps.read_since(connections.state.get_watermark(steps.ORDERS_WATERMARK), start, now)
        pages = steps.order_pages(
            connections, read_from, steps.profile_of(connections), buyers=routing.customers == "buyer"
        )
        m3 = steps.M3Lookups(connections, routing)
        results = [result for page in pages for result in steps.sync_orders(connections, routing, m3, page)]
        watermark = steps.next_watermark(results, now)
        connections.state.set_watermark(steps.ORDERS_WATERMARK, watermark)
        document = steps.orders_document(results, read_from, watermark)
        contained("publishing the run's artifacts", lambda: publish_order_artifacts(environment, document))
        message = steps.orders_message(document)
        return end_run(document, EXIT_OK if message is None else EXIT_HELD, message or "")


def parse_since(since: str | None) -> datetime | None:
    """``--since`` as an aware moment; a moment without a zone is refused (its zone would be a guess)."""
    if not since:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise ConfigurationError(f"--since {since!r} is not an ISO 8601 moment (2026-10-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"--since {since!r} has no time zone (add Z or +02:00)")
    return moment
