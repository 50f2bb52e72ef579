"""Prefect artifacts of a settlement run: a markdown summary, a table of exceptions, a table of
anomalies and a link to the workbook; when a run from Amazon found nothing new, one markdown
artifact saying since when. Of an order-sync, shipment-sync or refund-credit run: a markdown
summary of its counts and a table of its dead letters (Amazon order id and reason: no buyer data,
as in the run's document). Of a catalog-sync run: a markdown summary (patches sent, skipped as unchanged, held,
rejected) and a table of the listings patched, held or rejected.

Keys end in the home's environment (``[m3sync] environment``, default ``live``; sandbox runs
``sandbox``): ``settlement-summary-production``, so sandbox and live runs never share a key and
each key's history in the UI is one environment's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from connectors.settings import ConfigurationError, Settings, environment_name
from flows.failures import UnexpectedError
from flows.reports import NothingNew, PublishedWorkbook, RunReport
from reconciliation.model import format_amount
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError

if TYPE_CHECKING:
    from flows.settlement_steps import FileFailure

LIVE_ENVIRONMENT, SANDBOX_ENVIRONMENT = "live", "sandbox"
# The exceptions artifact lists this many rows; the rest are counted (the workbook has them all).
EXCEPTION_ROWS_SHOWN = 200
SUMMARY, EXCEPTIONS, ANOMALIES, WORKBOOK = (
    "settlement-summary",
    "settlement-exceptions",
    "settlement-anomalies",
    "settlement-workbook",
)

ORDER_SUMMARY, ORDER_DEAD_LETTERS = "order-sync-summary", "order-sync-dead-letters"
SHIPMENT_SUMMARY, SHIPMENT_DEAD_LETTERS = "shipment-sync-summary", "shipment-sync-dead-letters"
CATALOG_SUMMARY, CATALOG_LISTINGS = "catalog-sync-summary", "catalog-sync-listings"
# The catalog-sync document's outcomes (flows/catalog_steps.py OUTCOMES) as the summary words them.
CATALOG_COUNTS = (
    ("sent", "patches sent (accepted by Amazon)"),
    ("unchanged", "skipped as unchanged"),
    ("held", "held (breaks the product type's schema, or no M3 item): not sent"),
    ("rejected", "rejected by Amazon (dead-lettered)"),
    ("skipped", "skipped (not listed there, or an M3 item status not kept in step)"),
)
REFUND_SUMMARY, REFUND_DEAD_LETTERS = "refund-credit-summary", "refund-credit-dead-letters"
# The refund-credit document's counts (flows/refunds_steps.py OUTCOMES, then unreadable files).
REFUND_COUNTS = (
    ("credited", "credited (return order made in M3)"),
    ("already_in_m3", "already in M3"),
    ("duplicate", "duplicate (a refund Amazon repeated)"),
    ("not_synced", "not synced (order not created by order sync)"),
    ("dead_lettered", "dead-lettered"),
    ("unreadable", "settlement files unreadable"),
)
INVENTORY_SUMMARY, INVENTORY_LISTINGS = "inventory-sync-summary", "inventory-sync-listings"
NO_LISTINGS = "no listing was patched, held or rejected"
# The order-sync document's outcomes (flows/orders_steps.py OUTCOMES) as the summary words them.
ORDER_COUNTS = (
    ("created", "created in M3"),
    ("already_in_m3", "already in M3"),
    ("cancelled", "cancelled in M3"),
    ("skipped", "skipped"),
    ("waiting", "waiting (not confirmed by Amazon yet)"),
    ("dead_lettered", "dead-lettered"),
)


def artifact_environment(settings: Settings, sandbox: bool) -> str:
    """The environment this run's artifact keys end in: ``[m3sync] environment`` (default
    ``live``); a sandbox run's is ``sandbox``, or ``<environment>-sandbox``. Raises
    ConfigurationError for a live home naming itself like a sandbox (their keys would mix)."""
    configured = settings.environment
    if sandbox:
        return SANDBOX_ENVIRONMENT if configured is None else environment_name(f"{configured}-{SANDBOX_ENVIRONMENT}")
    if configured is not None and configured.split("-")[-1] == SANDBOX_ENVIRONMENT:
        raise ConfigurationError(
            f"[m3sync] environment {configured!r} (M3SYNC_ENVIRONMENT) is kept for sandbox runs' artifacts: "
            "choose another name for a home that posts to a live M3"
        )
    return configured or LIVE_ENVIRONMENT


def artifact_key(kind: str, environment: str) -> str:
    return f"{kind}-{environment}"


def summary_markdown(
    outcomes: Sequence[SettlementOutcome],
    errors: Sequence[SettlementFileError],
    workbook: PublishedWorkbook | UnexpectedError | None,
    failures: Sequence[FileFailure] = (),
) -> str:
    rows = [
        "| settlement | marketplace | deposit | total | status | vouchers | reconciliation |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.settlement
        rec = o.reconciliation
        rec_text = (
            f"{rec.counts['matched']} matched, {len(rec.exceptions)} exceptions"
            if rec is not None
            else f"skipped ({o.reconciliation_skipped_reason})"
        )
        rows.append(
            f"| {s.settlement_id} | {s.marketplace} | {s.deposit_date.date()} | "
            f"{format_amount(s.total_minor, s.currency)} {s.currency} | {o.status} | "
            f"{', '.join(p.m3_ref for p in o.posted) or '-'} | {rec_text} |"
        )
    if errors:
        rows.append(f"\n{len(errors)} input problem(s); see the Exceptions sheet.")
    if failures:
        rows.append(f"\n{len(failures)} file(s) failed with an unexpected error; see the Exceptions sheet.")
    if isinstance(workbook, PublishedWorkbook):
        where = f"Workbook: [{workbook.name}]({workbook.link})"
        if workbook.upload_error:
            where += f" ({workbook.upload_error})"
    elif isinstance(workbook, UnexpectedError):
        where = f"Workbook not written: {workbook.reason()}"
    else:
        where = "No workbook."
    return "# Amazon settlements\n\n" + "\n".join(rows) + f"\n\n{where}\n"


def nothing_new_markdown(quiet: NothingNew) -> str:
    return (
        f"# Amazon settlements\n\nNothing new since {quiet.since_text}: Amazon listed no new settlement "
        "report. Nothing was processed and no workbook was written.\n"
    )


def exceptions_artifact_rows(frame: pd.DataFrame, shown: int = EXCEPTION_ROWS_SHOWN) -> list[dict[str, str]]:
    """The workbook's Exceptions rows (``RunReport.exceptions``) for the table artifact, at most
    ``shown`` of them and then one row counting the others: each names the settlement, the
    order (or fee type or file) and the amount (for an order differing from its M3 invoice,
    the difference) in the settlement's currency."""
    rows = [
        {
            "settlement": row.settlement_id,
            "kind": row.kind,
            "order, fee type or file": row.reference,
            "amount": ""
            if pd.isna(row.amount_minor)
            else f"{format_amount(int(row.amount_minor), row.currency)} {row.currency}",
            "what": row.what,
            "next step": row.next_step,
        }
        for row in frame.head(shown).itertuples(index=False)
    ]
    if len(frame) > shown:
        more = {key: "" for key in rows[0]}
        rows.append({**more, "kind": f"and {len(frame) - shown} more in the workbook (Exceptions sheet)"})
    return rows


def anomaly_rows(outcomes: Sequence[SettlementOutcome]) -> list[dict[str, Any]]:
    rows = []
    for o in outcomes:
        if o.anomalies is None:
            continue
        for a in o.anomalies.itertuples(index=False):
            rows.append(
                {
                    "settlement": o.settlement.settlement_id,
                    "order_id": a.order_id,
                    "sku": a.sku,
                    "kind": a.kind,
                    "score": round(float(a.score), 3),
                    "reasons": "; ".join(a.reasons),
                }
            )
    return sorted(rows, key=lambda r: -r["score"])


def publish_settlement_artifacts(
    environment: str,
    report: RunReport,
    errors: Sequence[SettlementFileError],
    failures: Sequence[FileFailure],
    workbook: PublishedWorkbook | UnexpectedError | None,
    quiet: NothingNew | None = None,
) -> None:
    """The run's artifacts (module docstring); ``quiet``: nothing new arrived, one markdown artifact."""
    if quiet is not None:
        create_markdown_artifact(
            nothing_new_markdown(quiet),
            key=artifact_key(SUMMARY, environment),
            description="Nothing new from Amazon in this run",
        )
        return
    create_markdown_artifact(
        summary_markdown(report.outcomes, errors, workbook, failures),
        key=artifact_key(SUMMARY, environment),
        description="Settlements processed in this run",
    )
    create_table_artifact(
        exceptions_artifact_rows(report.exceptions()),
        key=artifact_key(EXCEPTIONS, environment),
        description="What needs a person: the workbook's Exceptions sheet",
    )
    create_table_artifact(
        anomaly_rows(report.outcomes)
        or [{"settlement": "", "order_id": "", "sku": "", "kind": "", "score": "", "reasons": "none flagged"}],
        key=artifact_key(ANOMALIES, environment),
        description="Items flagged by the anomaly model and rules",
    )
    if isinstance(workbook, PublishedWorkbook):
        create_link_artifact(
            workbook.link,
            link_text=workbook.name,
            key=artifact_key(WORKBOOK, environment),
            description="The run's workbook" + (" (kept locally: its upload failed)" if workbook.upload_error else ""),
        )


def counts_markdown(title: str, counts: Sequence[tuple[str, int]], note: str | None = None) -> str:
    """A markdown summary: a table of what happened how often, then ``note`` (why the run stopped)."""
    rows = ["| | count |", "|---|---|", *(f"| {what} | {count} |" for what, count in counts)]
    return f"# {title}\n\n" + "\n".join(rows) + (f"\n\n{note}" if note else "") + "\n"


def dead_letter_rows(letters: Sequence[tuple[str, str]], what: str = "order") -> list[dict[str, str]]:
    """The run's dead letters (Amazon order id, reason) as table rows; one row saying no ``what``
    was when empty (an empty table artifact shows nothing at all)."""
    return [{"order": order, "reason": reason} for order, reason in letters] or [
        {"order": "", "reason": f"no {what} was dead-lettered"}
    ]


def publish_order_artifacts(environment: str, document: Mapping[str, Any]) -> None:
    """The order-sync run's summary and dead letters, from its document (``orders_document``)."""
    counts = [(label, len(document[outcome])) for outcome, label in ORDER_COUNTS]
    letters = [(entry["amazon_order_id"], entry["reason"]) for entry in document["dead_lettered"]]
    _publish_sync_artifacts(
        environment, (ORDER_SUMMARY, ORDER_DEAD_LETTERS), counts_markdown("Amazon orders into M3", counts), letters
    )


def publish_shipment_artifacts(environment: str, document: Mapping[str, Any]) -> None:
    """The shipment-sync run's summary and dead letters, from its document (``shipment_sync``)."""
    counts = [
        ("orders checked", document["orders"]),
        ("packages confirmed", len(document["confirmed"])),
        ("packages confirmed before", document["already_confirmed"]),
        ("deliveries waiting for a tracking number", len(document["waiting"])),
        ("orders dead-lettered", len(document["dead_lettered"])),
    ]
    note = f"Stopped: {document['unreachable']}" if document.get("unreachable") else None
    letters = [(entry["order"], entry["error"]) for entry in document["dead_lettered"]]
    _publish_sync_artifacts(
        environment,
        (SHIPMENT_SUMMARY, SHIPMENT_DEAD_LETTERS),
        counts_markdown("Shipment confirmations to Amazon", counts, note),
        letters,
    )


def publish_refund_artifacts(environment: str, document: Mapping[str, Any]) -> None:
    """The refund-credit run's summary and dead letters, from its document (``refunds_document``);
    a dead letter's reason names the refund (its credit key)."""
    counts = [(label, document["counts"][outcome]) for outcome, label in REFUND_COUNTS]
    letters = [(entry["amazon_order_id"], entry["reason"]) for entry in document["dead_lettered"]]
    _publish_sync_artifacts(
        environment,
        (REFUND_SUMMARY, REFUND_DEAD_LETTERS),
        counts_markdown("Amazon refunds into M3 credit notes", counts),
        letters,
        what="refund",
    )


def publish_inventory_artifacts(environment: str, document: Mapping[str, Any]) -> None:
    """The inventory-sync run's summary (counts, exceptions) and its listings: patches sent,
    held and rejected, one row each (unchanged ones are counted only)."""
    body = document["inventory"]
    counts = [
        ("listings patched", body["sent"]),
        ("skipped as unchanged", body["unchanged"]),
        ("held", body["held"]),
        ("rejected (dead-lettered)", body["rejected"]),
        ("fulfilled by Amazon (never patched)", body["fba"]),
        ("read back", body["read_back"]),
        ("exceptions", len(body["exceptions"])),
    ]
    note = f"Stopped: {body['unreachable']}" if body.get("unreachable") else None
    summary = counts_markdown("Stock and prices to Amazon listings", counts, note)
    shown = body["exceptions"][:EXCEPTION_ROWS_SHOWN]
    if shown:
        summary += "\n\n## Exceptions\n\n" + "\n".join(
            f"- {e['sku']} ({e['marketplace']}): {e['reason']}" for e in shown
        )
    create_markdown_artifact(summary, key=artifact_key(INVENTORY_SUMMARY, environment), description="What this run did")
    rows = [
        {
            "outcome": e["outcome"],
            "sku": e["sku"],
            "marketplace": e["marketplace"],
            "quantity": str(e["quantity"]),
            "price": f"{e['price']} {e['currency']}" if e["price"] is not None else "",
            "sent": ", ".join(e["sent"]),
            "reason": e["reason"],
        }
        for e in body["items"][:EXCEPTION_ROWS_SHOWN]
    ] or [dict.fromkeys(("outcome", "sku", "marketplace", "quantity", "price", "sent"), "") | {"reason": NO_LISTINGS}]
    create_table_artifact(
        rows,
        key=artifact_key(INVENTORY_LISTINGS, environment),
        description="Listings patched, held and rejected in this run (unchanged ones are counted in the summary)",
    )


def _publish_sync_artifacts(
    environment: str,
    kinds: tuple[str, str],
    summary: str,
    letters: Sequence[tuple[str, str]],
    *,
    what: str = "order",
) -> None:
    summary_kind, letters_kind = kinds
    create_markdown_artifact(summary, key=artifact_key(summary_kind, environment), description="What this run did")
    create_table_artifact(
        dead_letter_rows(letters, what),
        key=artifact_key(letters_kind, environment),
        description=f"{what.capitalize()}s dead-lettered in this run (the state store keeps every open one)",
    )


def publish_catalog_artifacts(environment: str, document: Mapping[str, Any]) -> None:
    """The catalog-sync run's summary and its listings patched, held or rejected (``catalog_document``)."""
    catalog = document["catalog"]
    counts = [(label, catalog[outcome]) for outcome, label in CATALOG_COUNTS]
    title = "M3 item master to Amazon listings" + (" (full resync)" if catalog["full"] else "")
    create_markdown_artifact(
        counts_markdown(title, counts), key=artifact_key(CATALOG_SUMMARY, environment), description="What this run did"
    )
    rows = [
        {
            "sku": item["sku"],
            "marketplace": item["marketplace"],
            "outcome": item["outcome"],
            "attributes": ", ".join(item["attributes"]),
            "reason": item["reason"],
        }
        for item in catalog["items"]
        if item["outcome"] in ("sent", "held", "rejected")
    ]
    create_table_artifact(
        rows
        or [
            {"sku": "", "marketplace": "", "outcome": "", "attributes": "", "reason": "nothing sent, held or rejected"}
        ],
        key=artifact_key(CATALOG_LISTINGS, environment),
        description="Listings patched, held or rejected in this run (rejected ones are dead letters)",
    )
