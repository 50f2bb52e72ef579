"""The steps of the catalog sync flow, one job each. The story is in ``flows/catalog.py``.

A listing is one SKU in one marketplace. Its product type is read from Amazon once
(``getListingsItem`` summaries; again on a full resync or a replay) and kept in the state store
with a hash of each attribute's value as Amazon last accepted it; M3's item master is read once
per item number per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import task

from connectors.amazon import AmazonRequestError, ListingSubmission
from connectors.m3 import M3TransactionError
from connectors.settings import ConfigurationError
from connectors.state import CatalogListing
from flows.connections import Connections
from flows.settlement_steps import CONNECTOR_RETRIES
from sync.catalog import (
    CatalogSettings,
    CatalogSettingsError,
    check_patch,
    listing_attributes,
    load_catalog,
    plan_patch,
)
from sync.routing import RoutingSettings, RoutingSettingsError, load_routing

FLOW = "catalog"  # the dead letters' flow
LISTING_ENTITY = "listing"
Outcome = Literal["sent", "unchanged", "held", "rejected", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "unchanged", "held", "rejected", "skipped")
_AUTH_STATUSES = frozenset({401, 403})  # Amazon refusing the seller, not the listing: the run stops


@dataclass(frozen=True)
class ListingKey:
    sku: str
    itno: str  # the M3 item number of the SKU (order_routing.yaml's items, else the SKU itself)
    marketplace_id: str

    @property
    def letter_key(self) -> str:
        """The dead letter's entity key: one open letter per listing."""
        return f"{self.sku}@{self.marketplace_id}"


@dataclass(frozen=True)
class ListingResult:
    sku: str
    marketplace_id: str
    outcome: Outcome
    product_type: str = ""
    attributes: tuple[str, ...] = ()  # the attributes sent, held or rejected
    reason: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "marketplace": self.marketplace_id,
            "product_type": self.product_type,
            "outcome": self.outcome,
            "attributes": list(self.attributes),
            "reason": self.reason,
        }


def load_settings_of(home: Path, *, sandbox: bool) -> tuple[RoutingSettings, CatalogSettings]:
    """The routing (its SKU -> item number map) and the catalog mapping; one-line ConfigurationError."""
    try:
        return load_routing(home, sandbox=sandbox), load_catalog(home)
    except (RoutingSettingsError, CatalogSettingsError) as exc:
        raise ConfigurationError(str(exc)) from None


def listings_to_sync(
    routing: RoutingSettings, catalog: CatalogSettings, marketplace_ids: Sequence[str]
) -> list[ListingKey]:
    """Every SKU of the mapping (``skus``, else the routing's items) in every marketplace the
    mapping gives a language and an Amazon account serves."""
    skus = catalog.skus if catalog.skus is not None else tuple(sorted(routing.items))
    markets = [m for m in catalog.languages if m in marketplace_ids]
    return [ListingKey(sku, routing.item_number(sku), m) for m in markets for sku in skus]


@task(**CONNECTOR_RETRIES)
def read_items(connections: Connections, itnos: Sequence[str]) -> dict[str, Mapping[str, str] | str]:
    """M3's item master of each item number (MMS200MI GetItmBasic) by field name, or why there is
    none (M3 answered: no such item). M3 out of reach raises: the run stops."""
    m3 = connections.require_m3()
    items: dict[str, Mapping[str, str] | str] = {}
    for itno in dict.fromkeys(itnos):
        try:
            items[itno] = asdict(m3.get_item(itno))
        except M3TransactionError as exc:
            items[itno] = f"no M3 item {itno}: {exc}"
    return items


def product_type_on_amazon(connections: Connections, key: ListingKey) -> str | None:
    """The listing's product type as Amazon has it (None: the SKU is not listed in that marketplace)."""
    connector = connections.require_amazon().for_marketplace(key.marketplace_id)
    try:
        listing = connector.get_listing(key.sku, key.marketplace_id, included_data="summaries")
    except AmazonRequestError as exc:
        if exc.status == 404:
            return None
        raise
    summaries = [s for s in listing.get("summaries") or [] if s.get("marketplaceId") == key.marketplace_id]
    return str(summaries[0]["productType"]) if summaries and summaries[0].get("productType") else None


def sync_listing(
    connections: Connections,
    catalog: CatalogSettings,
    key: ListingKey,
    item: Mapping[str, str] | str,
    known: CatalogListing | None,
    *,
    full: bool = False,
    reread_product_type: bool = False,
) -> ListingResult:
    """One listing: the changed attributes, checked against the product type's schema, sent once.
    ``full``: every mapped attribute, changed or not; ``reread_product_type``: ask Amazon again."""

    def result(outcome: Outcome, reason: str = "", product_type: str = "", names: Sequence[str] = ()) -> ListingResult:
        return ListingResult(key.sku, key.marketplace_id, outcome, product_type, tuple(names), reason)

    if isinstance(item, str):  # a mapped SKU without an M3 item: a person must fix the mapping
        return result("held", f"SKU {key.sku}: {item}")
    if item.get("status") not in catalog.statuses:
        return result("skipped", f"M3 item {key.itno} has status {item.get('status')!r}, not kept in step")
    if known is None or full or reread_product_type:
        on_amazon = product_type_on_amazon(connections, key)
        if on_amazon is None:
            return result("skipped", f"SKU {key.sku} is not listed in {key.marketplace_id}")
        known = connections.state.record_catalog_listing(key.sku, key.marketplace_id, on_amazon)
    product_type = known.product_type
    wanted = listing_attributes(catalog, item, key.marketplace_id)
    patch = plan_patch(key.sku, key.marketplace_id, product_type, wanted, known.accepted, full=full)
    if patch.empty:
        return result("unchanged", product_type=product_type)
    names = list(patch.attributes)
    connector = connections.require_amazon().for_marketplace(key.marketplace_id)
    errors = check_patch(patch, connector.product_type_schema(product_type, key.marketplace_id).schema)
    if errors:  # not sent: Amazon would refuse it the same way
        return result("held", "; ".join(e.message for e in errors), product_type, names)
    try:
        submission = connector.patch_listing(key.sku, key.marketplace_id, product_type, patch.patches)
    except AmazonRequestError as exc:
        if exc.status in _AUTH_STATUSES:
            raise
        return dead_letter(connections, key, product_type, names, f"SKU {key.sku}: Amazon refused the patch: {exc}")
    if submission.status != "ACCEPTED":
        return dead_letter(connections, key, product_type, names, rejection(key, submission), submission)
    connections.state.record_catalog_listing(key.sku, key.marketplace_id, product_type, dict(patch.hashes))
    return result("sent", "ACCEPTED", product_type, names)


def rejection(key: ListingKey, submission: ListingSubmission) -> str:
    issues = "; ".join(
        f"{issue.code} {','.join(issue.attribute_names) or '-'}: {issue.message}" for issue in submission.issues
    )
    return f"SKU {key.sku} in {key.marketplace_id}: Amazon answered {submission.status}: {issues or 'no issues given'}"


def dead_letter(
    connections: Connections,
    key: ListingKey,
    product_type: str,
    names: Sequence[str],
    reason: str,
    submission: ListingSubmission | None = None,
) -> ListingResult:
    """Keep the listing for a person (``m3sync deadletters``): what finds it again and Amazon's issues."""
    payload = {
        "sku": key.sku,
        "itno": key.itno,
        "marketplace_id": key.marketplace_id,
        "product_type": product_type,
        "attributes": list(names),
        "issues": [
            {"code": i.code, "message": i.message, "attributes": list(i.attribute_names)}
            for i in (submission.issues if submission is not None else ())
        ],
    }
    connections.state.add_dead_letter(FLOW, LISTING_ENTITY, key.letter_key, payload, reason)
    return ListingResult(key.sku, key.marketplace_id, "rejected", product_type, tuple(names), reason)


def catalog_document(results: Sequence[ListingResult], full: bool) -> dict[str, Any]:
    """The JSON document ``m3sync catalog --json`` prints (docs/cli-contract.md): the counts, and
    every listing not unchanged (unchanged ones are counted only: most listings, most days)."""
    counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in OUTCOMES}
    return {
        "catalog": {
            "full": full,
            **counts,
            "items": [r.document() for r in results if r.outcome != "unchanged"],
        }
    }


def catalog_message(document: Mapping[str, Any]) -> str | None:
    """The one-line reason a run fails (``1 of 80 listings held, 1 rejected: HOM-10001 in … (…)``), or None."""
    catalog = document["catalog"]
    problems = [i for i in catalog["items"] if i["outcome"] in ("held", "rejected")]
    if not problems:
        return None
    total = sum(catalog[outcome] for outcome in OUTCOMES)
    first = problems[0]
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return (
        f"{catalog['held']} of {total} listings held, {catalog['rejected']} rejected: "
        f"{first['sku']} in {first['marketplace']} ({first['reason']}){more}"
    )
