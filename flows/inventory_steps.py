"""The steps of inventory sync (flows/inventory.py): M3 read, Amazon read back and discovery, the
plans (sync/inventory.py), the patches sent and recorded, the run's document.

The state store's ``listing_states`` hold, per SKU and marketplace, what Amazon last accepted:
a pair never seen is first read from Amazon (searchListingsItems, 20 SKUs of one marketplace a
call: its product type, whether it is merchant- or Amazon-fulfilled, its quantity and price), so
that a first run sends only real differences. A patch Amazon accepts is recorded with its
submission id and read back (searchListingsItems too) by a later run once
``readback_after_seconds`` have passed: Amazon's quantity or price differing from what was sent,
or issues on the listing (Amazon processes an accepted patch later and may find some), are
exceptions of that run (and Amazon's values become the known ones, so the next run sends the
right values again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from prefect import task

from connectors.amazon import AmazonError, AmazonRequestError
from connectors.amazon.client import SEARCH_SKUS
from connectors.amazon.records import ListingSubmission
from connectors.state import ListingState, StateStore
from flows.connections import Connections
from flows.exit_codes import EXIT_HELD, EXIT_OK, EXIT_UNREACHABLE
from flows.failures import one_line, run_logger
from flows.settlement_steps import CONNECTOR_RETRIES
from reconciliation.marketplaces import MARKETPLACES
from sync.inventory import (
    DEFAULT_CHANNEL,
    InventorySettings,
    ItemFacts,
    KnownListing,
    ListingPlan,
    checked_against,
    plan_listing,
    skus_to_sync,
)
from sync.routing import RoutingSettings

DEAD_LETTER_FLOW = "inventory"  # the dead letters' flow (flows/dead_letters.py REPLAYERS)
DEAD_LETTER_ENTITY = "listing"
ABSENT = "ABSENT"  # listing_states.fulfillment of a SKU not listed in that marketplace
READ_DATA = "summaries,attributes,issues,offers,fulfillmentAvailability"
_CODES = {m.marketplace_id: m.code for m in MARKETPLACES}

Pair = tuple[str, str]  # (SKU, marketplace id)


def letter_key(sku: str, marketplace_id: str) -> str:
    return f"{sku}@{marketplace_id}"


@dataclass(frozen=True)
class M3Stock:
    """What M3 says, for the SKUs to sync: SKU -> item number, the items, the allocatable
    quantity per item and warehouse, the prices per (item, price list, currency), and the items'
    own sales prices (item -> (price, currency); read when a marketplace's price source is "item")."""

    skus: Mapping[str, str]
    items: Mapping[str, ItemFacts | None]
    allocatable: Mapping[str, Mapping[str, Decimal]]
    prices: Mapping[tuple[str, str, str], Decimal | None]
    item_prices: Mapping[str, tuple[Decimal | None, str] | None] = field(default_factory=dict)


@dataclass
class Run:
    """What one run did, filled in as it goes (becomes the JSON document)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    held: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    fba: int = 0
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    read_back: int = 0
    unreachable: str | None = None


@task(**CONNECTOR_RETRIES, task_run_name="read-m3-stock")
def read_m3_stock(connections: Connections, settings: InventorySettings, routing: RoutingSettings) -> M3Stock:
    """M3's balances in every configured warehouse (read_balances: MMS080MI/LstItemBal on the
    brief profile, MMS060MI/LstBalID on cloudsuite), the items (MMS200MI/GetItmBasic) and prices
    (OIS017MI/GetBasePrice; MMS200MI/GetItmPrice where the price source is the item's) of the SKUs
    to sync. When the settings name the SKUs, their items' balances are read item by item in bulk
    requests (LstItemBal / MMS200MI GetItmWhsBal): an M3 list stops at its most records (10,000), a
    warehouse may hold more items."""
    m3 = connections.require_m3()
    named = skus_to_sync(settings, routing, []) if settings.skus else None
    wanted = sorted(set(named.values())) if named is not None else None
    allocatable: dict[str, dict[str, Decimal]] = {}
    for whlo in settings.warehouses:
        for balance in m3.read_balances(whlo, wanted):
            per_item = allocatable.setdefault(balance.itno, {})
            per_item[whlo] = per_item.get(whlo, Decimal(0)) + balance.allocatable
    skus = named if named is not None else skus_to_sync(settings, routing, sorted(allocatable))
    itnos = sorted(set(skus.values()))
    items = {
        itno: None if item is None else ItemFacts(item.itno, item.status, item.item_group)
        for itno, item in m3.get_items(itnos).items()
    }
    prices: dict[tuple[str, str, str], Decimal | None] = {}
    lists = {(s.price_list, s.currency) for s in settings.marketplaces.values() if s.price_list is not None}
    for price_list, currency in sorted(lists):
        for itno, price in m3.base_prices(itnos, price_list, currency).items():
            prices[(itno, price_list, currency)] = price
    item_prices: dict[str, tuple[Decimal | None, str] | None] = {}
    if any(s.price_source == "item" for s in settings.marketplaces.values()):
        for itno, sales in m3.item_sales_prices(itnos).items():
            item_prices[itno] = None if sales is None else (sales.price, sales.currency)
    return M3Stock(skus, items, allocatable, prices, item_prices)


def marketplaces_to_sync(settings: InventorySettings, served: Iterable[str]) -> list[str]:
    """The configured marketplaces the seller account serves, in the settings' order."""
    served_ids = set(served)
    return [m for m in settings.marketplaces if m in served_ids]


def read_listings(connections: Connections, pairs: Sequence[Pair]) -> dict[Pair, dict[str, Any] | str | None]:
    """Amazon's listing of each pair, read with searchListingsItems, 20 SKUs of one marketplace a
    call: the Item, None when the SKU is not listed there, or the one-line reason Amazon refused
    the read (its pairs' exception). Amazon out of reach raises AmazonError."""
    accounts = connections.require_amazon()
    by_marketplace: dict[str, list[str]] = {}
    for sku, marketplace_id in pairs:
        by_marketplace.setdefault(marketplace_id, []).append(sku)
    answers: dict[Pair, dict[str, Any] | str | None] = {}
    for marketplace_id, skus in by_marketplace.items():
        connector = accounts.for_marketplace(marketplace_id)
        for start in range(0, len(skus), SEARCH_SKUS):
            chunk = skus[start : start + SEARCH_SKUS]
            try:
                found: Mapping[str, dict[str, Any]] = connector.search_listings(chunk, marketplace_id, READ_DATA)
            except AmazonRequestError as exc:  # refused (400, 403): these pairs' exception
                answers.update(((sku, marketplace_id), one_line(str(exc))) for sku in chunk)
                continue
            answers.update(((sku, marketplace_id), found.get(sku)) for sku in chunk)
    return answers


def read_back(connections: Connections, settings: InventorySettings, run: Run, now: datetime) -> None:
    """Read back the listings patched by earlier runs (readback due, old enough; 20 a call):
    Amazon's quantity or price differing from what was sent, or issues, are exceptions; Amazon's
    values become the known ones."""
    state = connections.state
    due_before = now - timedelta(seconds=settings.readback_after_seconds)
    due = [
        known
        for known in state.listing_states().values()
        if known.readback_due
        and known.accepted_at is not None
        and known.accepted_at <= due_before
        and known.marketplace_id in settings.marketplaces
    ]
    answers = read_listings(connections, [(known.sku, known.marketplace_id) for known in due])
    for known in due:
        listing = answers[(known.sku, known.marketplace_id)]
        if not isinstance(listing, dict):  # gone, or refused: this listing's exception
            reason = listing or "the listing is no longer on Amazon"
            _exception(run, known.sku, known.marketplace_id, f"read back: {reason}")
            state.record_listing_state(replace(known, readback_due=False))
            continue
        run.read_back += 1
        shown = _shown(listing, known.marketplace_id)
        problems = []
        if known.quantity is not None and shown.quantity != known.quantity:
            problems.append(f"Amazon shows quantity {shown.quantity}, {known.quantity} was sent")
        if known.price is not None and shown.price != known.price:
            problems.append(f"Amazon shows price {shown.price}, {known.price} was sent")
        problems += [
            f"issue {i.get('code', '')}: {i.get('message', '')}"
            for i in listing.get("issues") or []
            if known.marketplace_id in (i.get("marketplaceIds") or [known.marketplace_id])
        ]
        for problem in problems:
            _exception(run, known.sku, known.marketplace_id, f"read back (submission {known.submission_id}): {problem}")
        state.record_listing_state(
            replace(known, quantity=shown.quantity, price=shown.price, readback_due=False)
            if problems
            else replace(known, readback_due=False)
        )


def discover(
    connections: Connections, pairs: Iterable[Pair], known: Mapping[Pair, ListingState], run: Run, *, full: bool
) -> dict[Pair, ListingState]:
    """The known state of every pair: recorded, or read from Amazon once (a pair recorded
    absent is looked at again on a full run). A read Amazon refuses is the pair's exception,
    and the pair waits for the next run; a SKU Amazon does not list there is recorded absent."""
    result: dict[Pair, ListingState] = {}
    to_read: list[Pair] = []
    for pair in pairs:
        recorded = known.get(pair)
        if recorded is not None and not (full and recorded.fulfillment == ABSENT):
            result[pair] = recorded
        else:
            to_read.append(pair)
    answers = read_listings(connections, to_read)
    for sku, marketplace_id in to_read:
        listing = answers[(sku, marketplace_id)]
        if isinstance(listing, str):
            _exception(run, sku, marketplace_id, f"cannot read the listing: {listing}")
            continue
        currency = next(m.currency for m in MARKETPLACES if m.marketplace_id == marketplace_id)
        if listing is None:
            seen = ListingState(sku, marketplace_id, "", ABSENT, None, None, currency)
        else:
            shown = _shown(listing, marketplace_id)
            seen = ListingState(
                sku, marketplace_id, shown.product_type, shown.fulfillment, shown.quantity, shown.price, currency
            )
        result[(sku, marketplace_id)] = connections.state.record_listing_state(seen)
    return result


@dataclass(frozen=True)
class _Shown:
    product_type: str
    fulfillment: str
    quantity: int | None
    price: Decimal | None


def _shown(listing: Mapping[str, Any], marketplace_id: str) -> _Shown:
    """A getListingsItem answer as the sync compares it: product type, MFN or AFN (a channel
    other than DEFAULT, in the attributes or the availability, is Amazon's: AMAZON_NA,
    AMAZON_EU, ...), the DEFAULT channel's quantity, the offer's price."""
    summaries = [s for s in listing.get("summaries") or [] if s.get("marketplaceId") == marketplace_id]
    product_type = str(summaries[0].get("productType", "")) if summaries else ""
    channels = {
        str(a.get("fulfillment_channel_code")): a.get("quantity")
        for a in (listing.get("attributes") or {}).get("fulfillment_availability") or []
    }
    channels.update(
        (str(a.get("fulfillmentChannelCode")), a.get("quantity")) for a in listing.get("fulfillmentAvailability") or []
    )
    fulfillment = "AFN" if any(code != DEFAULT_CHANNEL for code in channels) else "MFN"
    raw_quantity = channels.get(DEFAULT_CHANNEL)
    quantity = raw_quantity if isinstance(raw_quantity, int) and not isinstance(raw_quantity, bool) else None
    price = None
    for offer in listing.get("offers") or []:
        if offer.get("marketplaceId") == marketplace_id:
            try:
                price = Decimal(str(offer["price"]["amount"]))
            except (KeyError, TypeError, InvalidOperation):
                price = None
    return _Shown(product_type, fulfillment, quantity, price)


def plan_all(
    settings: InventorySettings, stock: M3Stock, known: Mapping[Pair, ListingState], *, full: bool
) -> list[ListingPlan]:
    """The plan of every listed pair (absent ones have nothing to plan)."""
    plans = []
    for (sku, marketplace_id), state in sorted(known.items()):
        if state.fulfillment == ABSENT:
            continue
        itno = stock.skus[sku]
        stock_settings = settings.marketplaces[marketplace_id]
        price, price_currency = None, None
        if stock_settings.price_source == "item":
            price, price_currency = stock.item_prices.get(itno) or (None, None)
        elif stock_settings.price_list is not None:
            price = stock.prices.get((itno, stock_settings.price_list, stock_settings.currency))
        plans.append(
            plan_listing(
                settings,
                sku,
                marketplace_id,
                stock.items.get(itno),
                itno,
                stock.allocatable.get(itno, {}),
                price,
                KnownListing(
                    state.product_type, "AFN" if state.fulfillment == "AFN" else "MFN", state.quantity, state.price
                ),
                full=full,
                price_currency=price_currency,
            )
        )
    return plans


def send(
    connections: Connections,
    plans: Iterable[ListingPlan],
    known: Mapping[Pair, ListingState],
    run: Run,
    *,
    resolve_letters: bool = True,
) -> None:
    """Each plan's outcome into ``run``; patches sent one by one within Amazon's rate (the
    connector's limiter). An INVALID answer is a dead letter; an accepted patch resolves the
    pair's open letter (``resolve_letters``); Amazon out of reach stops the sending
    (``run.unreachable``)."""
    accounts = connections.require_amazon()
    open_letters = {
        letter.entity_key: letter.id
        for letter in (connections.state.list_dead_letters(flow=DEAD_LETTER_FLOW) if resolve_letters else [])
    }
    for plan in plans:
        if plan.outcome == "sent" and run.unreachable is None:
            try:
                plan = schema_checked(accounts.for_marketplace(plan.marketplace_id), plan)
            except AmazonError as exc:  # out of reach: stop sending (nothing was recorded)
                run.unreachable = one_line(str(exc))
        for note in plan.notes:
            _exception(run, plan.sku, plan.marketplace_id, note)
        for reason in plan.held:
            run.held.append(_entry(plan, "held", reason))
        letter_id = open_letters.get(letter_key(plan.sku, plan.marketplace_id))
        if plan.outcome in ("fba", "unchanged") and letter_id is not None:  # read again: Amazon agrees now
            connections.state.resolve_dead_letter(letter_id, "replayed")
        if plan.outcome == "fba":
            run.fba += 1
            continue
        if plan.outcome != "sent":
            if plan.outcome == "unchanged":
                run.unchanged += 1
            continue
        if run.unreachable is not None:
            continue  # stopped: the next run sends it (nothing was recorded)
        connector = accounts.for_marketplace(plan.marketplace_id)
        try:
            answer = connector.patch_listing(plan.sku, plan.marketplace_id, plan.product_type, plan.patches())
        except AmazonRequestError as exc:  # refused as a request (400, 403): this listing's problem
            _reject(connections.state, plan, run, one_line(str(exc)))
            continue
        except AmazonError as exc:
            run.unreachable = one_line(str(exc))
            continue
        if not answer.accepted:
            _reject(connections.state, plan, run, _issues(answer))
            continue
        record_accepted(connections.state, plan, known[(plan.sku, plan.marketplace_id)], answer)
        run.sent.append(_entry(plan, "sent", ""))
        if letter_id is not None:  # a later run got it accepted
            connections.state.resolve_dead_letter(letter_id, "replayed")


def schema_checked(connector: Any, plan: ListingPlan) -> ListingPlan:
    """``plan`` checked against its product type's schema (read once per product type and
    marketplace): a patch that breaks it is held. A schema Amazon will not give (a product type it
    does not know) leaves the plan as it is, with a note: Amazon checks the patch itself, and a
    quantity must not wait for a pre-check."""
    try:
        schema = connector.product_type_schema(plan.product_type, plan.marketplace_id).schema
    except AmazonRequestError as exc:
        note = f"sent without the schema check: product type {plan.product_type!r}'s schema: {one_line(str(exc))}"
        return replace(plan, notes=(*plan.notes, note))
    return checked_against(plan, schema)


def record_accepted(state: StateStore, plan: ListingPlan, before: ListingState, answer: ListingSubmission) -> None:
    state.record_listing_state(
        replace(
            before,
            quantity=plan.quantity if plan.send_quantity else before.quantity,
            price=plan.price if plan.send_price else before.price,
            accepted_at=datetime.now(UTC),
            submission_id=answer.submission_id,
            readback_due=True,
        )
    )


def dead_lettered_pairs(state: StateStore) -> set[Pair]:
    """The (SKU, marketplace id) of every open inventory dead letter."""
    return {
        (str(letter.payload["sku"]), str(letter.payload["marketplace_id"]))
        for letter in state.list_dead_letters(flow=DEAD_LETTER_FLOW)
    }


def _reject(state: StateStore, plan: ListingPlan, run: Run, error: str) -> None:
    payload = {"sku": plan.sku, "marketplace_id": plan.marketplace_id, "patches": list(plan.patches())}
    letter = state.add_dead_letter(
        DEAD_LETTER_FLOW, DEAD_LETTER_ENTITY, letter_key(plan.sku, plan.marketplace_id), payload, error
    )
    run_logger().warning("Listing %s in %s dead-lettered: %s", plan.sku, plan.marketplace_id, one_line(error))
    run.rejected.append({**_entry(plan, "rejected", error), "dead_letter": letter.id})


def _issues(answer: ListingSubmission) -> str:
    issues = "; ".join(f"{i.code} {i.message}".strip() for i in answer.issues) or "no issues given"
    return f"Amazon answered {answer.status} (submission {answer.submission_id}): {issues}"


def _entry(plan: ListingPlan, outcome: str, reason: str) -> dict[str, Any]:
    return {
        "sku": plan.sku,
        "marketplace": _CODES.get(plan.marketplace_id, plan.marketplace_id),
        "marketplace_id": plan.marketplace_id,
        "itno": plan.itno,
        "quantity": plan.quantity,
        "price": None if plan.price is None else str(plan.price),
        "currency": plan.currency,
        "sent": [name for name, sent in (("quantity", plan.send_quantity), ("price", plan.send_price)) if sent],
        "outcome": outcome,
        "reason": reason,
    }


def _exception(run: Run, sku: str, marketplace_id: str, reason: str) -> None:
    run.exceptions.append({"sku": sku, "marketplace": _CODES.get(marketplace_id, marketplace_id), "reason": reason})


def inventory_document(run: Run, *, full: bool) -> dict[str, Any]:
    """The run's JSON document (docs/cli-contract.md, ``m3sync inventory``)."""
    return {
        "inventory": {
            "full": full,
            "sent": len(run.sent),
            "unchanged": run.unchanged,
            "held": len(run.held),
            "rejected": len(run.rejected),
            "fba": run.fba,
            "read_back": run.read_back,
            "items": run.sent + run.held + run.rejected,
            "exceptions": run.exceptions,
            "unreachable": run.unreachable,
        }
    }


def inventory_exit_code(document: Mapping[str, Any]) -> int:
    """4 out of reach, else 3 when anything was held, rejected or is an exception, else 0."""
    body = document["inventory"]
    if body.get("unreachable"):
        return EXIT_UNREACHABLE
    return EXIT_HELD if body["held"] or body["rejected"] or body["exceptions"] else EXIT_OK


def inventory_summary(document: Mapping[str, Any]) -> str:
    """The one line ``m3sync inventory`` prints without --json."""
    body = document["inventory"]
    line = (
        f"Inventory: {body['sent']} listings patched, {body['unchanged']} unchanged, {body['held']} held, "
        f"{body['rejected']} rejected (dead-lettered), {len(body['exceptions'])} exceptions, "
        f"{body['fba']} fulfilled by Amazon (left alone), {body['read_back']} read back"
    )
    return line + (f"; stopped: {body['unreachable']}" if body.get("unreachable") else "")


def inventory_message(document: Mapping[str, Any]) -> str:
    """The Failed state's one line (only when the exit code is not 0)."""
    body = document["inventory"]
    if body.get("unreachable"):
        return f"inventory sync stopped: {body['unreachable']}"
    parts = []
    for key, what in (("held", "held"), ("rejected", "rejected (dead-lettered)")):
        if body[key]:
            entries = [e for e in body["items"] if e["outcome"] == key]
            names = ", ".join(f"{e['sku']}@{e['marketplace']}" for e in entries[:3])
            parts.append(
                f"{len(entries)} {what}: {names}" + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            )
    if body["exceptions"]:
        parts.append(f"{len(body['exceptions'])} exception(s): {body['exceptions'][0]['reason']}")
    return "; ".join(parts)
