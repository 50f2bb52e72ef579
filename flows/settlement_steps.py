"""The tasks of the settlement flow, one job each. The story is in ``flows/settlement.py``.

Tasks that call M3 or Amazon retry on connector failures only (unreachable, throttled, 5xx);
a business refusal from M3 is an answer, not a failure, and is never retried.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from anomaly import AnomalyHistory, score_items, suggest_categories
from connectors.amazon import AmazonUnavailable
from connectors.m3 import (
    JournalEntry,
    JournalLine,
    M3AuthError,
    M3Error,
    M3Operations,
    M3TransactionError,
    M3Unavailable,
    M3WriteInDoubt,
    PostedVoucher,
    SubmittedVoucher,
)
from connectors.m3.ledger import CustomerPayment, LedgerSetup, PaymentLine, detect_setup, pay_invoices
from connectors.m3.records import CustomerInvoice
from connectors.settings import ConfigurationError, M3Settings, load_settings
from connectors.state import Posting, StateStore
from flows.connections import Connections
from flows.failures import UnexpectedError, contained, run_logger
from reconciliation.audit import AuditRecord, tool_version, voucher_audits
from reconciliation.gates import FIRST_OPEN_SEARCH_MONTHS
from reconciliation.ledger import (
    LEDGER_INVOICE_COLUMNS,
    WRITE_OFF_CATEGORY,
    PaymentAllocation,
    allocate_payment,
    clearing_string,
    limit_in_minor_units,
    payment_batches,
    receivable_to_clearing,
)
from reconciliation.local_currency import LocalLine, LocalVoucher, checked_local_voucher, fx_accounts
from reconciliation.m3_fields import VTXT_LENGTH
from reconciliation.mapping import GLMapping
from reconciliation.marketplaces import find_marketplace, resolve_marketplace
from reconciliation.matching import (
    INVOICE_COLUMNS,
    SETTLED_ORDER_COLUMNS,
    Reconciliation,
    reconcile_orders,
    settled_orders,
    tolerance_minor,
)
from reconciliation.model import Settlement, decimal_to_minor, format_amount, minor_to_decimal
from reconciliation.outcome import (
    PostedVoucherRef,
    PostingResult,
    PostingUnknown,
    ReconciliationSkipped,
    RunOptions,
    SettlementOutcome,
    SubmittedVoucherRef,
    decide_outcome,
)
from reconciliation.parse import (
    DuplicateSettlement,
    ParseResult,
    SettlementFileError,
    dedupe_settlements,
    parse_settlement_bytes,
    read_settlement_file,
)
from reconciliation.pipeline import PreparedSettlement, prepare_settlement, with_invoice_policy
from reconciliation.tax import TaxProfiles, tax_profiles
from reconciliation.vouchers import (
    Voucher,
    at_version,
    key_at_version,
    key_version,
    planned_vouchers,
    reversal_key,
)

logger = logging.getLogger(__name__)
SETTLEMENT_REPORTS_WATERMARK = "amazon.settlement_reports.created_since"
# getReports serves 90 days: https://developer-docs.amazon.com/sp-api/docs/reports-api-v2021-06-30-reference
RETENTION_DAYS = 90


def connector_failure(task: object, task_run: object, state: State[Any]) -> bool:
    """Retry condition: only M3/Amazon being unreachable or throttled is worth another try."""
    try:
        state.result()
    except (M3Unavailable, AmazonUnavailable):
        return True
    except Exception:  # noqa: BLE001 - anything else is final
        return False
    return False


# Task-level retries on top of the connectors' own backoff, for outages longer than a few
# seconds. M3SYNC_CONNECTOR_RETRIES sets how many (0 turns them off; operators of a flaky
# gateway may want more).
_RETRIES = int(os.environ.get("M3SYNC_CONNECTOR_RETRIES", "3"))
CONNECTOR_RETRIES: dict[str, Any] = dict(
    retries=_RETRIES,
    retry_delay_seconds=[2, 8, 30, 60, 120][: max(_RETRIES, 1)],
    retry_condition_fn=connector_failure,
    cache_policy=NO_CACHE,
)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFailure:
    """A file (or Amazon report) whose reading failed unexpectedly: no settlement, status ``failed``."""

    source: str
    error: UnexpectedError

    def as_file_error(self) -> SettlementFileError:
        """The same, as a file-level row of the workbook's Exceptions sheet."""
        return SettlementFileError(self.source, None, None, f"failed: {self.error.reason()}")


@dataclass(frozen=True)
class Sources:
    """Settlements to process, and what could not be read (errors as data)."""

    settlements: tuple[Settlement, ...]
    errors: tuple[SettlementFileError, ...] = ()
    duplicates_in_input: tuple[DuplicateSettlement, ...] = ()  # second copies in this run's input (same content)
    watermark: str | None = None  # new watermark to store after a successful run
    failures: tuple[FileFailure, ...] = ()  # files whose reading failed unexpectedly


@task(cache_policy=NO_CACHE)
def read_files(paths: Sequence[str]) -> Sources:
    """Parse files as they are (never moved or altered)."""
    return _read_each((Path(p).name, functools.partial(read_settlement_file, Path(p))) for p in paths)


@task(**CONNECTOR_RETRIES)
def fetch_from_amazon(connections: Connections, watermark_name: str = SETTLEMENT_REPORTS_WATERMARK) -> Sources:
    """Settlement reports created since the watermark (Amazon keeps 90 days), from every region's
    account; ``watermark_name`` names it (another flow reading the same reports keeps its own)."""
    amazon = connections.require_amazon()
    now = datetime.now(UTC)
    since_text = connections.state.get_watermark(watermark_name)
    since = datetime.fromisoformat(since_text) if since_text else now - timedelta(days=RETENTION_DAYS - 1)
    documents, created, accepted = [], [], {}
    for connector in amazon:
        reports = connector.list_settlement_reports(since, now)
        created += [r.created_time for r in reports]
        # Downloads first: Amazon being unreachable fails the whole task (and is retried).
        for report in sorted(reports, key=lambda r: r.created_time):
            if report.report_document_id is not None:
                source = f"report {report.report_id}"
                documents.append((source, connector.download_report_document(report.report_document_id)))
                accepted[source] = connector.account.marketplace_ids
    # The connector has decompressed and decoded each (header charset, else UTF-8, else cp1252).
    sources = _read_each(
        (
            source,
            lambda source=source, document=document: parse_settlement_bytes(  # type: ignore[misc]  # binds the loop's values
                document.text.encode("utf-8"), source, charset="utf-8"
            ),
        )
        for source, document in documents
    )
    settlements = tuple(s for s in sources.settlements if _of_account(s, accepted.get(s.source, ())))
    newest = max(created, default=None)
    watermark = (newest + timedelta(seconds=1)).isoformat() if newest else None
    return Sources(settlements, sources.errors, sources.duplicates_in_input, watermark, sources.failures)


def _of_account(settlement: Settlement, marketplace_ids: Sequence[str]) -> bool:
    """Amazon lists every settlement of the seller's region whatever ``marketplaceIds`` says: keep the
    ones whose rows name one of the account's marketplaces. One whose rows name none (account-level
    fees only) stays: marketplace resolution decides it, or holds it saying why."""
    marketplace = find_marketplace(settlement.marketplace)
    if marketplace is None or marketplace.marketplace_id in marketplace_ids:
        return True
    logger.info(
        "settlement %s (%s) is not in this Amazon account's marketplaces %s; skipped",
        settlement.settlement_id,
        marketplace.name,
        ", ".join(marketplace_ids),
    )
    return False


def _read_each(parsers: Iterable[tuple[str, Callable[[], ParseResult]]]) -> Sources:
    """Parse each source; one whose parsing fails unexpectedly becomes a failure, the others go on."""
    results: list[ParseResult] = []
    failures: list[FileFailure] = []
    for source, parse in parsers:
        result = contained(f"reading {source}", parse)
        if isinstance(result, UnexpectedError):
            failures.append(FileFailure(source, result))
        else:
            results.append(result)
    errors = [e for r in results for e in r.errors]
    unique, duplicates = dedupe_settlements(results)
    errors += [d.conflict for d in duplicates if d.conflict is not None]
    return Sources(
        tuple(unique), tuple(errors), tuple(d for d in duplicates if d.conflict is None), failures=tuple(failures)
    )


@dataclass(frozen=True)
class PeriodLocks:
    """M3's closed accounting periods around one settlement, and its vouchers already posted."""

    closed: frozenset[str]  # YYYYMM
    already_posted: frozenset[str] = frozenset()  # posting keys: in M3 already, whatever their period

    def is_closed(self, day: date) -> bool:
        return f"{day:%Y%m}" in self.closed


@task(**CONNECTOR_RETRIES)
def read_period_locks(connections: Connections, settlement: Settlement) -> PeriodLocks | None:
    """M3's period status from the settlement's first voucher month to ``FIRST_OPEN_SEARCH_MONTHS``
    after its last (where a voucher in a closed month may move to); None when M3 cannot tell (a
    tenant without the period transaction): then M3 itself refuses a voucher in a closed period."""
    m3 = connections.require_m3()
    planned = planned_vouchers(settlement)
    dates = [accounting_date for _, accounting_date in planned]
    try:
        closed = m3.closed_periods(
            min(dates), _months_after(max(dates), FIRST_OPEN_SEARCH_MONTHS), divi=division_of(connections, settlement)
        )
    except M3TransactionError as exc:
        logger.warning("M3 did not tell its closed periods (%s); posting without the period check", exc)
        return None
    # The gate sees version-1 keys; what is posted is the settlement's current version (``-v2``
    # once ``m3sync reverse`` reversed version 1, whose vouchers must not count as posted).
    version = connections.state.settlement_version(settlement.settlement_id)
    posted = frozenset(key for key, _ in planned if _is_posted(connections.state, key_at_version(key, version)))
    return PeriodLocks(closed, posted)


def division_of(connections: Connections, settlement: Settlement) -> str:
    """The M3 division the settlement's marketplace posts to ([m3.divisions], else the default).
    The marketplace is resolved as ``prepare`` resolves it, so periods are read in the division
    the vouchers go to even before the settlement is prepared."""
    names = settlement.lines["marketplace_name"]
    marketplace = resolve_marketplace(names, settlement.currency, configured_marketplaces(connections)).marketplace
    return connections.division_for(marketplace.code if marketplace is not None else None)


def _is_posted(state: StateStore, key: str) -> bool:
    posting = state.get_posting(key)
    return posting is not None and posting.status == "posted"


def _months_after(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, 1)


@task(cache_policy=NO_CACHE)
def prepare(
    settlement: Settlement,
    mapping: GLMapping,
    configured_marketplaces: Sequence[str] = (),
    periods: PeriodLocks | None = None,
    first_open_period: bool = False,
    tax: TaxProfiles | None = None,
) -> PreparedSettlement:
    """The pure stages; ``periods`` None (a dry run, or M3 not telling) leaves the period gate open."""
    return prepare_settlement(
        settlement,
        mapping,
        closed_periods=periods.is_closed if periods is not None else None,
        first_open_period=first_open_period,
        already_posted=periods.already_posted if periods is not None else (),
        configured_marketplaces=configured_marketplaces,
        tax=tax,
    )


def configured_marketplaces(connections: Connections) -> tuple[str, ...]:
    """The seller account's marketplace ids (``[amazon] marketplaces``, or the sandbox account's);
    () when Amazon is not configured. They place a settlement whose rows name no marketplace."""
    if connections.amazon is not None:
        return connections.amazon.marketplace_ids
    try:
        amazon = load_settings(connections.home).amazon  # secrets are resolved only when revealed
    except ConfigurationError:
        return ()
    return tuple(amazon.marketplaces) if amazon is not None else ()


@task(**CONNECTOR_RETRIES)
def fetch_invoices(connections: Connections, settlement: Settlement) -> pd.DataFrame:
    """M3 invoices of the settlement's orders, and of the marketplace's other orders invoiced in its window.

    ``settlement`` is ``PreparedSettlement.settlement`` (its marketplace resolved); one whose
    marketplace could not be told is held, and reconciles against its own orders only."""
    m3 = connections.require_m3()
    start = settlement.start.date() - timedelta(days=60)  # orders invoiced before the window settle in it
    # Until today: a credit note (or invoice) M3 made after the settlement's window still
    # clears the hold of a refund (or order) in it (``invoices_frame`` keeps only those orders'
    # documents beyond the window).
    end = max(settlement.end.date(), datetime.now(UTC).date())
    invoices = m3.list_invoices(start, end, divi=division_of(connections, settlement))
    # Which Amazon orders belong to this marketplace: the id map order sync (and the demo) keep.
    marketplace = find_marketplace(settlement.marketplace)
    marketplace_orders = (
        set(connections.state.all_ids("order", marketplace=marketplace.code)) if marketplace is not None else set()
    )
    return invoices_frame(invoices, settlement, marketplace_orders)


def invoices_frame(
    invoices: Sequence[CustomerInvoice], settlement: Settlement, marketplace_orders: set[str]
) -> pd.DataFrame:
    """INVOICE_COLUMNS for the invoices to reconcile: those of the settlement's orders, and, as
    "not settled" candidates, those of the marketplace's orders invoiced within its window."""
    decimals = settlement.decimals
    window_start, window_end = settlement.start.date(), settlement.end.date()
    orders = set(settlement.lines["order_id"].unique())  # unique first: 1M lines are ~200k orders (5x faster)
    rows = [
        {
            "orno": inv.orno,
            "cuor": inv.cuor,
            "ivno": inv.ivno,
            "ivdt": pd.Timestamp(inv.ivdt),
            "currency": inv.currency,
            "net_minor": decimal_to_minor(inv.net, decimals),
            "tax_minor": decimal_to_minor(inv.tax, decimals),
            "gross_minor": decimal_to_minor(inv.gross, decimals),
            "cuno": inv.cuno,
            "cino": inv.extended_number or inv.ivno,
            "year": inv.year,
        }
        for inv in invoices
        if inv.currency == settlement.currency
        and inv.cuor
        and (
            inv.cuor in orders
            or (inv.cuor in marketplace_orders and inv.ivdt is not None and window_start <= inv.ivdt <= window_end)
        )
    ]
    columns = {**INVOICE_COLUMNS, **LEDGER_INVOICE_COLUMNS}  # the customer ledger's allocation reads the latter
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


@task(cache_policy=NO_CACHE)
def reconcile(
    settlement: Settlement,
    invoices: pd.DataFrame,
    tolerance_minor: int,
    tax: TaxProfiles | None = None,
    settled_elsewhere: pd.DataFrame | None = None,
) -> Reconciliation:
    """Per order against M3's invoices; where M3 invoices a facilitator marketplace gross, the
    withheld tax is part of what M3 invoiced (``reconcile_orders``' ``withheld_tax_invoiced``).
    ``settled_elsewhere``: see ``settled_elsewhere``."""
    marketplace = find_marketplace(settlement.marketplace)
    profile = (tax or tax_profiles())[marketplace.code] if marketplace is not None else None
    return reconcile_orders(
        settlement.lines,
        invoices,
        tolerance_minor=tolerance_minor,
        withheld_tax_invoiced=profile is not None and profile.invoices_withheld_tax,
        settled_elsewhere=settled_elsewhere,
        settlement_id=settlement.settlement_id,
    )


def settled_in_run(settlements: Sequence[Settlement]) -> pd.DataFrame:
    """``SETTLED_ORDER_COLUMNS`` of every settlement of the run: read before any is reconciled, so
    each knows the orders the others settle (they are reconciled concurrently)."""
    parts = [settled_orders(s.lines, s.settlement_id) for s in settlements]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SETTLED_ORDER_COLUMNS.items()})
    return pd.concat(parts, ignore_index=True)


def settled_elsewhere(
    state: StateStore, settlement_id: str, invoices: pd.DataFrame, in_run: pd.DataFrame | None
) -> pd.DataFrame:
    """The settlements other than ``settlement_id`` that settled the orders of ``invoices``: the
    run's others (``in_run``, see ``settled_in_run``) and those earlier runs recorded (one query
    per 10,000 invoiced orders)."""
    order_ids = invoices["cuor"].dropna().unique()
    recorded = pd.DataFrame(
        state.settlements_of_orders(order_ids.tolist()), columns=list(SETTLED_ORDER_COLUMNS)
    ).astype(SETTLED_ORDER_COLUMNS)
    known = recorded if in_run is None else pd.concat([in_run[in_run["order_id"].isin(order_ids)], recorded])
    return known[known["settlement_id"] != settlement_id].drop_duplicates(ignore_index=True)


def record_settled_orders(state: StateStore, outcomes: Sequence[SettlementOutcome]) -> None:
    """The orders of each posted settlement (or one posted before: a store from before this record
    catches up), for later runs' ``settled_elsewhere``."""
    for outcome in outcomes:
        if outcome.status in ("posted", "duplicate"):
            settlement = outcome.settlement
            state.record_settled_orders(
                settlement.settlement_id, settled_orders(settlement.lines, settlement.settlement_id)["order_id"]
            )


def reconcile_with_m3(
    connections: Connections, settlement: Settlement, options: RunOptions, in_run: pd.DataFrame | None = None
) -> tuple[pd.DataFrame | None, Reconciliation | ReconciliationSkipped]:
    """M3's invoices and credit notes as read (``None`` when not read), and the settlement's orders
    against them; skipped, saying why, when M3 is not configured (a dry run) or does not answer. A
    dry run with M3 configured reads them too (read only): it reports what would be held. An
    invoice another settlement settled (``in_run``: the run's; or one recorded earlier) is
    reconciled there, not "not settled" here."""
    if connections.m3 is None:
        return None, ReconciliationSkipped("M3 is not configured (dry run)")
    try:
        invoices = fetch_invoices(connections, settlement)
        tolerance = tolerance_minor(options.tolerance, settlement.decimals)
        elsewhere = settled_elsewhere(connections.state, settlement.settlement_id, invoices, in_run)
        return invoices, reconcile(settlement, invoices, tolerance, options.tax, elsewhere)
    except M3Error as exc:
        return None, ReconciliationSkipped(m3_problem(exc))


@task(cache_policy=NO_CACHE)
def apply_invoice_policy(
    prepared: PreparedSettlement,
    reconciliation: Reconciliation | ReconciliationSkipped,
    mapping: GLMapping,
    periods: PeriodLocks | None,
    options: RunOptions,
) -> PreparedSettlement:
    """Orders without an M3 invoice or credit note held, or posted where the user chose
    (``reconciliation.invoice_policy``); the gates and vouchers built again as ``prepare`` built them."""
    if not isinstance(reconciliation, Reconciliation):
        return prepared  # nothing known: ``invoices_unread`` keeps it from being posted
    return with_invoice_policy(
        prepared,
        reconciliation,
        mapping,
        options.invoice_policy,
        closed_periods=periods.is_closed if periods is not None else None,
        first_open_period=options.first_open_period,
        already_posted=periods.already_posted if periods is not None else (),
        tax=options.tax,
    )


def invoices_unread(
    connections: Connections, reconciliation: Reconciliation | ReconciliationSkipped, mapping: GLMapping
) -> str | None:
    """Why M3's invoices could not be read, when that keeps the settlement from being posted: a
    refund or sale without its M3 document would go unchecked. None when they were read (or M3
    is not configured: a dry run, which posts nothing)."""
    if connections.m3 is None or not mapping.invoices_in_m3 or not isinstance(reconciliation, ReconciliationSkipped):
        return None
    return reconciliation.reason


# A claim taken over from a process that is gone (or from a claim this old, when its owner is
# on another host) is checked in M3 first: whatever that process sent, it sent before now.
RECLAIM_CLAIMED_AFTER = timedelta(minutes=15)


@task(**CONNECTOR_RETRIES)
def post_vouchers(
    connections: Connections,
    settlement: Settlement,
    vouchers: Sequence[Voucher],
    audits: Mapping[str, AuditRecord] | None = None,
    fx_accounts: frozenset[str] = frozenset(),
) -> PostingResult:
    """Post in date order, each exactly once (`post_entry`, with its audit record), into the
    marketplace's division with the configured rate type (and fixed rate); each voucher M3 books
    is read back and checked in local currency (``fx_accounts``: where M3's rounding may go).
    The first refusal stops the rest."""
    division = division_of(connections, settlement)
    ledger = connections.ledger
    posted_refs: list[PostedVoucherRef] = []
    refused: list[str] = []
    submitted: list[SubmittedVoucherRef] = []
    confirmed: list[str] = []
    for voucher in sorted(vouchers, key=lambda v: v.accounting_date):
        one = post_entry(
            connections,
            journal_entry(
                voucher, division, rate_type=ledger.rate_type, rate=ledger.rate_for(division, voucher.currency)
            ),
            kind="voucher",
            source=settlement.source,
            content_hash=voucher_hash(voucher),
            detail={"settlement_id": settlement.settlement_id},
            audit=audits[voucher.key].as_dict() if audits and voucher.key in audits else None,
        )
        if one.refused is not None:
            refused.append(one.refused)
            break
        if one.batch is not None:
            submitted.append(SubmittedVoucherRef(voucher.key, one.batch))
            continue
        local = local_voucher(one.booked, fx_accounts) if one.booked is not None else None
        posted_refs.append(PostedVoucherRef(voucher.key, one.reference or "", one.already, local))
        if one.confirmed is not None:
            confirmed.append(one.confirmed)
    return PostingResult(tuple(posted_refs), tuple(refused), tuple(submitted), tuple(confirmed))


def audit_records(settlement: Settlement, mapping: GLMapping, vouchers: Sequence[Voucher]) -> dict[str, AuditRecord]:
    """Each voucher's audit record: the settlement file's and the mapping's SHA-256, this release."""
    return voucher_audits(
        settlement.source_sha256,
        mapping.name,
        mapping.content_sha256,
        (v.key for v in vouchers),
        tool_version=tool_version(),
    )


@dataclass(frozen=True)
class EntryPosted:
    """What `post_entry` came to: ``reference`` (M3's voucher) when posted, ``already`` when
    found there before this call; ``batch`` when submitted and not booked yet; ``refused`` (the
    reason) when M3 refused it or another run holds its claim; ``confirmed`` when an earlier
    run's batch has been booked since."""

    key: str
    reference: str | None = None
    already: bool = False
    batch: str | None = None
    refused: str | None = None
    confirmed: str | None = None
    booked: PostedVoucher | None = None  # the voucher as M3 read it back (None: not read this run)


def local_voucher(booked: PostedVoucher, fx_accounts: frozenset[str]) -> LocalVoucher:
    """M3's read-back of a voucher in local currency, checked (``reconciliation.local_currency``)."""
    lines = (
        LocalLine(line.dimensions, line.amount, line.local_amount, line.rate_type, line.rate, line.added_by_m3)
        for line in booked.lines
    )
    return checked_local_voucher(booked.key, booked.divi, lines, fx_accounts)


def post_entry(
    connections: Connections,
    entry: JournalEntry,
    *,
    kind: str,
    source: str,
    content_hash: str,
    detail: Any,
    audit: dict[str, Any] | None = None,
    write: Callable[[datetime | None], PostedVoucher | SubmittedVoucher] | None = None,
) -> EntryPosted:
    """Post one journal entry exactly once: its key is claimed in the state store and looked up in M3 first.

    A write whose answer never came leaves its claim ``in_doubt`` (never ``failed``) and raises:
    the next attempt waits for M3 to show it, or for the connector's settle time, before writing
    again. A GLS840 batch M3 has not booked yet leaves it ``submitted``: the next run confirms it.
    Settlement vouchers, their reversals (``flows/reversal.py``) and customer payments (``write``:
    what writes the entry, given when an earlier attempt's write went unanswered) all go through here."""
    m3, state, key = connections.require_m3(), connections.state, entry.key
    claim = state.claim_posting(
        key,
        kind=kind,
        source=source,
        content_hash=content_hash,
        reclaim_claimed_after=RECLAIM_CLAIMED_AFTER,
        audit=audit,
    )
    if not claim.won and claim.posting.status == "posted":
        if claim.content_changed:
            return EntryPosted(
                key,
                refused=f"{key} was already posted with different content (M3 voucher "
                f"{claim.posting.target_ref}); reverse it (m3sync reverse) before posting again",
            )
        return EntryPosted(key, reference=claim.posting.target_ref or "", already=True)
    if not claim.won:
        return EntryPosted(
            key,
            refused=f"{key} is being posted by another run (process "
            f"{claim.posting.owner or 'unknown'}, claimed {claim.posting.updated_at:%Y-%m-%d %H:%M:%S} UTC)",
        )
    previous = claim.previous.status if claim.previous is not None else None
    in_doubt_since = (
        claim.previous.updated_at
        if claim.previous is not None and previous == "in_doubt"
        else datetime.now(UTC)
        if previous == "claimed"
        else None
    )
    try:
        posted = write(in_doubt_since) if write is not None else m3.post_voucher(entry, in_doubt_since=in_doubt_since)
    except M3TransactionError as exc:
        state.mark_failed(key, str(exc))
        return EntryPosted(key, refused=f"M3 refused {key}: {exc.message.strip()} ({exc.code or exc.error_type})")
    except M3WriteInDoubt as exc:
        state.mark_in_doubt(key, str(exc))
        raise
    except M3Unavailable as exc:  # nothing was sent; an earlier attempt's doubt still stands
        (state.mark_failed if in_doubt_since is None else state.mark_in_doubt)(key, str(exc))
        raise
    except BaseException as exc:  # may have written: the next attempt looks in M3 first
        state.mark_in_doubt(key, type(exc).__name__)
        raise
    if isinstance(posted, SubmittedVoucher):
        state.mark_submitted(key, posted.batch, detail=detail)
        return EntryPosted(key, batch=posted.batch)
    reference = f"{posted.divi}/{posted.year}/{posted.series}/{posted.vono}"
    state.mark_posted(key, reference, detail=detail)
    confirmed = None
    if previous == "submitted" and claim.previous is not None:  # booked by M3's batch job since then
        confirmed = f"{key} ({reference}, batch {claim.previous.target_ref})"
    already = posted.already_posted and previous != "submitted"  # a confirmed batch is this run's news
    return EntryPosted(key, reference=reference, already=already, confirmed=confirmed, booked=posted)


# --- the customer ledger (docs/m3-contract.md "Customer ledger") -----------------------------------


@dataclass(frozen=True)
class LedgerChoice:
    """How this run settles the Amazon invoices: ``allocate`` (customer payments in M3's ledger),
    ``gl-clearing`` (the GL voucher alone), or ``unknown`` (M3 could not be asked: nothing posts)."""

    mode: str
    reason: str
    receivable_account: str = ""
    clearing_account: str = ""
    write_off_limit: Decimal = Decimal(0)  # [m3] payment_write_off: per invoice, in the settlement's currency

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "clearing_account": self.clearing_account or None}


@dataclass(frozen=True)
class LedgerChoices:
    """The choice per M3 division the run may post to (``[m3] divi`` and each ``[m3.divisions]``
    target): each division has its own customer ledger, so each is asked on its own."""

    default: str
    by_division: Mapping[str, LedgerChoice]

    def for_division(self, divi: str) -> LedgerChoice:
        return self.by_division.get(divi, self.by_division[self.default])

    def as_dict(self) -> dict[str, Any]:
        """The default division's choice; with routed divisions, every division's as ``divisions``."""
        document = self.by_division[self.default].as_dict()
        if len(self.by_division) > 1:
            document["divisions"] = {divi: c.as_dict() for divi, c in sorted(self.by_division.items())}
        return document


def customer_ledger_choice(connections: Connections, mapping: GLMapping) -> LedgerChoices:
    """``[m3] customer_ledger`` (auto: asked of M3 with harmless reads, in each division); logged once per run."""
    divisions = list(dict.fromkeys([connections.divi, *connections.ledger.divisions.values()]))
    choices = {divi: _division_ledger_choice(connections, mapping, divi) for divi in divisions}
    for divi, choice in choices.items():
        run_logger().info("customer ledger of M3 division %s: %s (%s)", divi, choice.mode, choice.reason)
    return LedgerChoices(connections.divi, choices)


def _division_ledger_choice(connections: Connections, mapping: GLMapping, divi: str) -> LedgerChoice:
    m3_settings = load_settings(connections.home).m3 or M3Settings()
    configured, receivable = m3_settings.customer_ledger, m3_settings.receivable_account
    clearing = m3_settings.payment_clearing_account
    if connections.m3 is None:
        return LedgerChoice("gl-clearing", "M3 is not configured (dry run)")
    if not any(c.account == receivable for c in mapping.categories.values()):
        return LedgerChoice(
            "gl-clearing",
            f"mapping {mapping.name} books nothing to the receivable {receivable} ([m3] receivable_account)",
        )
    if configured != "auto":
        return LedgerChoice(configured, "[m3] customer_ledger", receivable, clearing, m3_settings.payment_write_off)
    try:
        setup: LedgerSetup = detect_setup(connections.m3, divi=divi)
    except M3Error as exc:
        return LedgerChoice("unknown", f"cannot tell M3's customer ledger set-up: {m3_problem(exc)}")
    return LedgerChoice(setup.mode, f"auto: {setup.reason}", receivable, clearing, m3_settings.payment_write_off)


def with_customer_ledger(prepared: PreparedSettlement, ledger: LedgerChoice) -> PreparedSettlement:
    """``allocate``: the vouchers' receivable lines on the payment clearing account instead."""
    if ledger.mode != "allocate" or not prepared.gates.vouchers:
        return prepared
    vouchers = tuple(
        receivable_to_clearing(v, ledger.receivable_account, ledger.clearing_account) for v in prepared.gates.vouchers
    )
    return dataclasses.replace(prepared, gates=dataclasses.replace(prepared.gates, vouchers=vouchers))


@task(**CONNECTOR_RETRIES)
def settle_customer_ledger(
    connections: Connections,
    prepared: PreparedSettlement,
    invoices: pd.DataFrame | None,
    posting: PostingResult,
    ledger: LedgerChoice,
    mapping: GLMapping,
) -> PostingResult:
    """After the vouchers: the settlement pays its invoices in M3's customer ledger (``allocate``),
    each payment batch exactly once (``post_entry``), in the settlement's division at the rate its
    vouchers were sent with (``[m3.rates.<division>]``, else M3's own); each payment's voucher is
    read back and checked in local currency like the vouchers. Its references join ``posting``;
    what no invoice took stays on the clearing account and is said."""
    vouchers = prepared.gates.vouchers
    if not vouchers or posting.refused or posting.submitted or not posting.posted:
        return posting
    if ledger.mode != "allocate" or invoices is None:
        note = (
            f"customer ledger ({ledger.mode}): {ledger.reason}; the GL voucher alone settles the receivable"
            if ledger.mode != "allocate"
            else f"customer ledger (allocate): M3's invoices could not be read; the receivable waits on clearing "
            f"account {ledger.clearing_account} until the next run pays the invoices"
        )
        return dataclasses.replace(posting, notes=(*posting.notes, note))
    settlement = prepared.settlement
    write_off = write_off_target(mapping, ledger, prepared.mapped.marketplace_code, settlement.currency)
    limit_minor = limit_in_minor_units(ledger.write_off_limit, settlement.decimals) if write_off else 0
    # Lines by their account: tax the profile booked to the facilitator clearing is not the
    # customer's to pay (M3 invoiced those orders net); other orders' tax is (gross invoices).
    allocation = allocate_payment(
        prepared.mapped.lines, invoices, ledger.receivable_account, settlement.total_minor, limit_minor
    )
    posted, refused = list(posting.posted), list(posting.refused)
    clearing = clearing_string(vouchers, ledger.clearing_account)
    m3 = connections.require_m3()
    division = division_of(connections, settlement)
    accounting_date = max(v.accounting_date for v in vouchers)
    rounding_accounts = fx_accounts(mapping)
    batches = payment_batches(settlement.settlement_id, key_version(vouchers[0].key), allocation.allocations)
    for key, chunk in batches:
        payment = CustomerPayment(
            key=key,
            divi=division,
            accounting_date=accounting_date,
            currency=settlement.currency,
            clearing=clearing,
            rate=connections.ledger.rate_for(division, settlement.currency),
            lines=tuple(
                PaymentLine(
                    a.customer,
                    a.invoice,
                    a.year,
                    minor_to_decimal(a.amount_minor, settlement.decimals),
                    minor_to_decimal(a.write_off_minor, settlement.decimals),
                )
                for a in chunk
            ),
            write_off_account=write_off,
        )
        one = post_entry(
            connections,
            payment,  # type: ignore[arg-type]  # post_entry reads only the key of what ``write`` posts
            kind="payment",
            source=settlement.source,
            content_hash=hashlib.sha256(repr(payment).encode()).hexdigest(),
            detail=payment_detail(settlement.settlement_id, payment),
            write=functools.partial(_pay, m3, payment),
        )
        if one.refused is not None:
            refused.append(one.refused)
            break
        local = local_voucher(one.booked, rounding_accounts) if one.booked is not None else None
        posted.append(PostedVoucherRef(payment.key, one.reference or "", one.already, local))
    paid = [f"{p.key} ({p.m3_ref})" for p in posted[len(posting.posted) :]]
    note = payment_note(allocation, ledger, settlement.currency, paid, write_off[:1])
    return dataclasses.replace(posting, posted=tuple(posted), refused=tuple(refused), notes=(*posting.notes, note))


def payment_detail(settlement_id: str, payment: CustomerPayment) -> dict[str, Any]:
    """What the state store keeps of a payment: enough to reverse it (``reverse_payment``)."""
    return {
        "settlement_id": settlement_id,
        "divi": payment.divi,
        "currency": payment.currency,
        "rate": None if payment.rate is None else str(payment.rate),
        "clearing": list(payment.clearing),
        "write_off_account": list(payment.write_off_account),
        "lines": [[ln.customer, ln.invoice, ln.year, str(ln.amount), str(ln.write_off)] for ln in payment.lines],
    }


def is_payment_of(key: str, settlement_id: str) -> bool:
    """``PAY-{id}``, ``PAY-{id}-P{n}``, at any key version."""
    return re.fullmatch(rf"PAY-{re.escape(settlement_id)}(-P\d+)?(-v\d+)?", key) is not None


def reverse_payment(connections: Connections, original: Posting, accounting_date: date) -> EntryPosted:
    """The customer payment posted under ``original`` paid back, exactly once (``REV-`` + its key),
    in its division at its rate: its invoices open again, its GL side reversed (clearing
    credited, receivable debited)."""
    detail = original.detail or {}
    rate = detail.get("rate")
    payment = CustomerPayment(
        key=reversal_key(original.posting_key),
        divi=str(detail.get("divi") or (original.target_ref or connections.divi).split("/")[0]),
        accounting_date=accounting_date,
        currency=str(detail.get("currency", "")),
        clearing=tuple(detail.get("clearing", ())),
        rate=None if rate is None else Decimal(str(rate)),
        # the amounts and write-offs paid back (a payment stored before write-offs has no fifth field)
        lines=tuple(
            PaymentLine(c, i, int(y), -Decimal(a), -Decimal(rest[0]) if rest else Decimal(0))
            for c, i, y, a, *rest in detail.get("lines", ())
        ),
        write_off_account=tuple(detail.get("write_off_account", ())),
    )
    if not payment.lines:
        return EntryPosted(payment.key, refused=f"{original.posting_key}: the state store keeps no lines to reverse")
    return post_entry(
        connections,
        payment,  # type: ignore[arg-type]  # post_entry reads only the key of what ``write`` posts
        kind="payment_reversal",
        source=f"reversal of {original.posting_key} ({original.target_ref})",
        content_hash=hashlib.sha256(repr(payment).encode()).hexdigest(),
        detail={**payment_detail(str(detail.get("settlement_id", "")), payment), "reverses": original.posting_key},
        write=functools.partial(_pay, connections.require_m3(), payment),
    )


def _pay(m3: M3Operations, payment: CustomerPayment, _in_doubt_since: datetime | None) -> PostedVoucher:
    """A payment batch resumes at once after a lost answer: M3 refuses its head and lines twice."""
    return pay_invoices(m3, payment)


def write_off_target(mapping: GLMapping, ledger: LedgerChoice, marketplace_code: str, currency: str) -> tuple[str, ...]:
    """AIT1..AIT7 the payment differences are written off to (mapping category
    ``payment_differences``); empty when the mapping names none or the limit is 0 (nothing is written off)."""
    if ledger.write_off_limit <= 0 or WRITE_OFF_CATEGORY not in mapping.categories:
        return ()
    account, dimensions = mapping.account_for(WRITE_OFF_CATEGORY, marketplace_code, currency)
    return (account, *dimensions)


def payment_note(
    allocation: PaymentAllocation,
    ledger: LedgerChoice,
    currency: str,
    paid: Sequence[str] = (),
    write_off_account: Sequence[str] = (),
) -> str:
    """One line for the outcome: what the customer payment settled, deducted, wrote off and left over."""
    invoices = len({(a.customer, a.invoice, a.year) for a in allocation.allocations})
    text = (
        f"customer ledger ({ledger.mode}): the settlement pays {invoices} invoice(s) "
        f"{format_amount(allocation.allocated_minor, currency)} {currency} less Amazon's deductions "
        f"{format_amount(-allocation.deductions_minor, currency)} {currency}"
        + (f" (payment {', '.join(paid)})" if paid else "")
    )
    if allocation.written_off_minor or allocation.written_off_invoices:
        account = f" to {write_off_account[0]}" if write_off_account else ""
        text += (
            f"; payment differences of {allocation.written_off_invoices} invoice(s) within "
            f"{ledger.write_off_limit} {currency} each written off{account} "
            f"(net {format_amount(allocation.written_off_minor, currency)} {currency}; paid short is positive)"
        )
    if allocation.unallocated_minor:
        orders = ", ".join(allocation.unallocated_orders[:5]) + (
            " ..." if len(allocation.unallocated_orders) > 5 else ""
        )
        text += (
            f"; {format_amount(allocation.unallocated_minor, currency)} {currency} of the receivable found no "
            f"invoice and stays on clearing account {ledger.clearing_account}"
            + (f" (orders {orders})" if orders else "")
        )
    return text


def at_current_version(state: StateStore, prepared: PreparedSettlement) -> PreparedSettlement:
    """``prepared`` with its vouchers under the posting keys of the settlement's current version
    (``AMZ-…-v2`` once version 1 was reversed by ``m3sync reverse``)."""
    version = state.settlement_version(prepared.settlement.settlement_id)
    if version == 1 or not prepared.gates.vouchers:
        return prepared
    vouchers = tuple(at_version(v, version) for v in prepared.gates.vouchers)
    return dataclasses.replace(prepared, gates=dataclasses.replace(prepared.gates, vouchers=vouchers))


def journal_entry(
    voucher: Voucher, divi: str, *, rate_type: int | None = None, rate: Decimal | None = None
) -> JournalEntry:
    room = VTXT_LENGTH - len(voucher.key) - 1  # each line's text follows the posting key in VTXT
    lines = tuple(
        JournalLine(
            dimensions=(line.account, *line.dimensions),
            amount=minor_to_decimal(line.amount_minor, voucher.decimals),
            text=line.description[:room].rstrip(),
            vat_code=line.vat_code,
        )
        for line in voucher.lines
    )
    text = voucher.text[len(voucher.key) :].strip()
    return JournalEntry(
        key=voucher.key,
        divi=divi,
        accounting_date=voucher.accounting_date,
        currency=voucher.currency,
        text=text,
        lines=lines,
        rate_type=rate_type,
        rate=rate,
    )


def voucher_hash(voucher: Voucher) -> str:
    body = "|".join(
        [
            voucher.key,
            voucher.accounting_date.isoformat(),
            voucher.currency,
            # a VAT code joins the hash only when there is one: hashes of vouchers without any stay as they were
            *(
                f"{l.account}:{','.join(l.dimensions)}:{l.amount_minor}" + (f":{l.vat_code}" if l.vat_code else "")
                for l in voucher.lines
            ),
        ]
    )
    return hashlib.sha256(body.encode()).hexdigest()


def m3_problem(exc: M3Error) -> str:
    """One line for M3 not answering, rejecting our credentials, or refusing a request."""
    if isinstance(exc, M3Unavailable):
        return f"M3 unreachable: {exc}"
    if isinstance(exc, M3AuthError):
        return f"M3 rejected the credentials: {exc}"
    return f"M3 refused: {exc}"


def posted_in_state(state: StateStore, vouchers: Sequence[Voucher]) -> list[PostedVoucherRef]:
    """The vouchers the state store records as posted: what a run that stopped half-way did write."""
    found = []
    for voucher in vouchers:
        posting = state.get_posting(voucher.key)
        if posting is not None and posting.status == "posted":
            found.append(PostedVoucherRef(voucher.key, posting.target_ref or "", False))
    return found


@dataclass
class Progress:
    """How far settling one settlement got; a failure's outcome keeps all of it."""

    settlement: Settlement
    stage: str = "starting"
    prepared: PreparedSettlement | None = None
    reconciliation: Reconciliation | ReconciliationSkipped | None = None
    posting_started: bool = False
    posting: PostingResult | None = None
    audits: dict[str, AuditRecord] | None = None  # by voucher key, once the vouchers are made


def failed_outcome(
    progress: Progress, error: UnexpectedError, state: StateStore, anomalies: pd.DataFrame | None, options: RunOptions
) -> SettlementOutcome:
    """Status ``failed`` (``reconciliation.outcome.decide_outcome``), with what was posted before the error."""
    return decide_outcome(
        progress.settlement,
        progress.prepared,
        progress.reconciliation,
        posted_before_error(progress, state),
        options,
        error=error,
        anomalies=anomalies,
        audits=progress.audits,
    )


def posted_before_error(progress: Progress, state: StateStore) -> PostingResult | PostingUnknown | None:
    """What posting got before an unexpected error; when posting had begun without an answer, what
    the state store records as posted (unknown when that cannot be read either)."""
    if progress.posting is not None or not progress.posting_started:
        return progress.posting
    prepared = progress.prepared
    if prepared is None:
        return PostingUnknown()
    found = contained("looking up what was posted", lambda: posted_in_state(state, prepared.gates.vouchers))
    return PostingUnknown() if isinstance(found, UnexpectedError) else PostingResult(posted=tuple(found))


@task(cache_policy=NO_CACHE, task_run_name="anomalies-{settlement.settlement_id}")
def score_anomalies(connections: Connections, settlement: Settlement, dry_run: bool) -> pd.DataFrame:
    """Scores against the home's history (call oldest first); a dry run saves no model and no history.
    A settlement scored again (held, then rerun) is judged as the first time and recorded once
    (``anomaly.history``)."""
    history = AnomalyHistory(connections.home)
    scored = score_items(settlement, history, persist_model=not dry_run)
    if not dry_run:
        history.add(settlement, scores=scored.flagged(0.0))  # every score: the notebook plots them all
    return scored.flagged()


def mapping_suggestions(prepared: PreparedSettlement, mapping: GLMapping) -> tuple[str, ...]:
    """For a settlement held on unmapped fee types: the likely GL category and the YAML line to add."""
    if not prepared.mapped.unmapped:
        return ()
    return tuple(s.reason() for s in suggest_categories(prepared.mapped.unmapped, mapping))
