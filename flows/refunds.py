"""Amazon refunds into M3 credit notes (issue #14, credit notes): the whole story on one screen.

read the settlements' Refund rows (the settlement reports Amazon created since this flow's
watermark, or the files given, read as the settlement flow reads them) -> per refund (one credit
key: Amazon's adjustment id) of an order order sync created: find it in our records or in M3 (a
return order with the Amazon order id as CUOR and the key as YREF), else plan the return order
(``sync.credits``) and create it, and record key -> M3 order number -> the JSON document
``m3sync refunds`` prints, and the run's artifacts (its counts, its dead letters). M3 books the
credit note when it invoices the return order.

Refunds of orders order sync did not create are counted (the settlement reports them as
before). A refund that cannot be planned, or that M3 refuses, becomes a dead letter and the
others go on; the run then ends Failed naming it. M3 or Amazon out of reach stops the run
(``flow_boundary``): the watermark stays, and the next run finds what this one created.
"""

from __future__ import annotations

from prefect import flow

from connectors.settings import ConfigurationError, load_settings
from flows import refunds_steps as steps
from flows import settlement_steps
from flows.artifacts import artifact_environment, publish_refund_artifacts
from flows.connections import open_connections
from flows.exit_codes import EXIT_HELD, EXIT_INVALID, EXIT_OK
from flows.failures import contained, end_run, flow_boundary
from sync.routing import RoutingSettingsError, load_routing


@flow(name="refund-credit")
@flow_boundary
def refund_credit(
    files: list[str] | None = None, from_amazon: bool = False, sandbox: bool = False, home: str | None = None
) -> dict:
    """Credit in M3, once each, the refunds of the Amazon orders order sync created.

    Args:
        files: Settlement flat files (V2, or legacy V1) whose Refund rows to credit, as paths on
            the worker; leave empty with from_amazon.
        from_amazon: Read the settlement reports Amazon created since this flow's last run
            (SP-API reports of every configured region).
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, order_routing.yaml, state and sandbox (default
            $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        The run's JSON document (docs/cli-contract.md): the refunds credited, already in M3,
        duplicated, not synced and dead-lettered, and the files that could not be read.
    """
    if bool(files) == from_amazon:
        raise ConfigurationError("refund-credit needs settlement files or from_amazon (Amazon's reports), not both")
    with open_connections(home, sandbox=sandbox, need_amazon=from_amazon) as connections:
        try:
            routing = load_routing(connections.home, sandbox=sandbox)
        except RoutingSettingsError as exc:
            raise ConfigurationError(str(exc)) from None
        environment = artifact_environment(load_settings(connections.home), sandbox)  # the artifacts' keys end in it
        if from_amazon:
            sources = settlement_steps.fetch_from_amazon(connections, watermark_name=steps.REFUNDS_WATERMARK)
        else:
            sources = settlement_steps.read_files(files or [])
        lookups = steps.ReturnOrderLookups(connections)
        results = [steps.credit_refund(connections, routing, r, lookups) for r in steps.refunds_in(sources)]
        if sources.watermark:
            connections.state.set_watermark(steps.REFUNDS_WATERMARK, sources.watermark)
        document = steps.refunds_document(results, sources)
        contained("publishing the run's artifacts", lambda: publish_refund_artifacts(environment, document))
        message = steps.refunds_message(document)
        code = EXIT_OK if message is None else EXIT_INVALID if document["unreadable"] else EXIT_HELD
        return end_run(document, code, message or "")
