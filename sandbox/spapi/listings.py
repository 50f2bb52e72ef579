"""Listings Items API 2021-08-01: patchListingsItem, getListingsItem and searchListingsItems
(not payload-wrapped).

Only the attributes the integration writes are understood in depth (quantity in
``fulfillment_availability``, price in ``purchasable_offer``); other top-level attributes are
stored as sent. Problems with the content are answered as Amazon does: HTTP 200, status
``INVALID`` with issues; a malformed request is a 400.

Amazon accepts a patch (``ACCEPTED``) and processes it later; issues found then appear on later
reads only. The sandbox does that processing at once, deterministically, from the checks set on a
listing through ``POST /sandbox/listings`` (none by default):

- an accepted price below the listing's ``min_price`` or above its ``max_price`` (Amazon's
  minimum/maximum seller-allowed price) is stored, and the listing gets an ERROR issue
  ``PRICE_OUTSIDE_SELLER_ALLOWED_RANGE`` (category ``INVALID_PRICE``);
- an accepted quantity above zero on a ``suppressed`` listing is stored, and the listing gets an
  ERROR issue ``LISTING_SUPPRESSED`` (category ``INVALID_ATTRIBUTE``).

The codes are the sandbox's own (Amazon's codes for these are not published in the models). A
later accepted patch that passes the checks clears the issues. A listing with an ERROR issue is
not ``BUYABLE`` in its summary.

Reads show a listing's fulfillment channels as stored in ``fulfillment_availability``: DEFAULT
(merchant-fulfilled) with the listing's quantity, and AMAZON_NA, AMAZON_EU, ... (fulfilled by
Amazon) as set.
"""

from __future__ import annotations

import copy
import re
import uuid
from decimal import Decimal, InvalidOperation

from starlette.requests import Request

from .context import (
    Reply,
    Sandbox,
    date_param,
    decode_token,
    encode_token,
    int_param,
    json_body,
    marketplace_ids,
    values,
)
from .definitions import attribute_issues
from .errors import ApiError, invalid_input
from .store import ListingRecord, ListingSearch
from .timeutil import amazon_time

PATCH_OPS = frozenset({"add", "replace", "merge", "delete"})
_PATH = re.compile(r"/attributes/([a-z][a-z0-9_]*)")
GET_INCLUDED = frozenset(
    {
        "summaries",
        "attributes",
        "issues",
        "offers",
        "fulfillmentAvailability",
        "procurement",
        "relationships",
        "productTypes",
    }
)
PATCH_INCLUDED = frozenset({"identifiers", "issues"})
SEARCH_IDENTIFIERS = 20  # searchListingsItems: at most 20 identifiers
SEARCH_PAGE_SIZE = (10, 20)  # its default and largest pageSize
SEARCH_RESULTS = 1000  # "the maximum number of items (SKUs) that can be returned and paged through"
SORT_BY = frozenset({"sku", "createdDate", "lastUpdatedDate"})
SEVERITIES = frozenset({"WARNING", "ERROR"})
STATUSES = frozenset({"BUYABLE", "DISCOVERABLE"})
# Elements inside these attributes are matched by a selector field when merging (Amazon's rule).
_SELECTORS = {"fulfillment_availability": "fulfillment_channel_code", "purchasable_offer": "marketplace_id"}


class _Invalid(Exception):
    """One content problem: becomes an Issue of an INVALID submission."""

    def __init__(self, code: str, message: str, attribute: str, category: str = "INVALID_ATTRIBUTE") -> None:
        super().__init__(message)
        self.issue = {
            "code": code,
            "message": message,
            "severity": "ERROR",
            "attributeNames": [attribute],
            "categories": [category],
        }


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "InvalidInput", message)


def _resolve(request: Request, sb: Sandbox) -> tuple[str, str, list[str]]:
    seller_id, sku = request.path_params["seller_id"], request.path_params["sku"]
    if seller_id != sb.store.seller_id:
        raise ApiError(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
            f"The caller is not authorised for seller {seller_id}.",
        )
    markets = marketplace_ids(request)
    if not markets:
        raise _bad_request("Missing required parameter marketplaceIds.")
    sb.check_served(markets)
    return seller_id, sku, markets


def _included(request: Request, allowed: frozenset[str], default: str) -> list[str]:
    included = values(request, "includedData") or [default]
    bad = [v for v in included if v not in allowed]
    if bad:
        raise _bad_request(f"Invalid includedData: {', '.join(bad)}. Allowed: {', '.join(sorted(allowed))}.")
    return included


async def patch_listings_item(request: Request, sb: Sandbox) -> Reply:
    seller_id, sku, markets = _resolve(request, sb)
    included = _included(request, PATCH_INCLUDED, "issues")
    mode = request.query_params.get("mode")
    if mode not in (None, "", "VALIDATION_PREVIEW"):
        raise _bad_request(f"Invalid mode {mode!r}; the only mode is VALIDATION_PREVIEW.")
    body = await json_body(request)
    product_type, patches = _validate_patch_request(body)
    submission: dict = {"sku": sku, "submissionId": uuid.uuid4().hex}
    issues: list[dict] = []
    results: list[tuple[ListingRecord, dict, int, Decimal | None]] = []
    for marketplace_id in markets:
        listing = sb.store.get_listing(seller_id, sku, marketplace_id)
        if listing is None:
            issues.append(
                {
                    "code": "4000003",
                    "severity": "ERROR",
                    "categories": ["INVALID_ATTRIBUTE"],
                    "message": f"The SKU '{sku}' does not exist in marketplace {marketplace_id}; "
                    "patchListingsItem only updates existing listings.",
                    "marketplaceIds": [marketplace_id],
                }
            )
            continue
        if listing.product_type != product_type:
            issues.append(
                {
                    "code": "90244",
                    "severity": "ERROR",
                    "categories": ["INVALID_ATTRIBUTE"],
                    "message": f"productType {product_type} does not match the listing's "
                    f"product type {listing.product_type}.",
                    "marketplaceIds": [marketplace_id],
                }
            )
            continue
        try:
            attributes = _apply(listing.attributes, patches)
            quantity, price = _quantity_and_price(attributes, listing)
        except _Invalid as invalid:
            issues.append(dict(invalid.issue, marketplaceIds=[marketplace_id]))
            continue
        # What the patch set, against the product type's schema (getDefinitionsProductType serves it).
        patched = {name: attributes[name] for name in _patched_names(patches) if name in attributes}
        schema_issues = attribute_issues(product_type, marketplace_id, patched)
        if schema_issues:
            issues.extend(schema_issues)
            continue
        results.append((listing, attributes, quantity, price))
    if issues:
        submission["status"] = "INVALID"
    elif mode == "VALIDATION_PREVIEW":
        submission["status"] = "VALID"
    else:
        submission["status"] = "ACCEPTED"
        for listing, attributes, quantity, price in results:
            found = _processing_issues(listing, quantity, price)  # shown on later reads only
            sb.store.save_listing_attributes(listing, attributes, quantity, price, found)
    if "issues" in included:
        submission["issues"] = issues
    if "identifiers" in included:
        submission["identifiers"] = [
            {"marketplaceId": listing.marketplace_id, "asin": listing.asin} for listing, *_ in results if listing.asin
        ]
    return Reply(200, submission)


def _processing_issues(listing: ListingRecord, quantity: int, price: Decimal | None) -> list[dict]:
    """What Amazon's processing of an accepted patch finds (the checks of the module docstring)."""
    issues = []
    low, high = listing.min_price, listing.max_price
    if price is not None and ((low is not None and price < low) or (high is not None and price > high)):
        issues.append(
            {
                "code": "PRICE_OUTSIDE_SELLER_ALLOWED_RANGE",
                "message": f"The price {price} is outside the seller-allowed range "
                f"{low if low is not None else '-'} to {high if high is not None else '-'}; the offer is inactive.",
                "severity": "ERROR",
                "attributeNames": ["purchasable_offer"],
                "categories": ["INVALID_PRICE"],
            }
        )
    if listing.suppressed and quantity > 0:
        issues.append(
            {
                "code": "LISTING_SUPPRESSED",
                "message": f"The listing is suppressed: the quantity {quantity} is not offered to buyers.",
                "severity": "ERROR",
                "attributeNames": ["fulfillment_availability"],
                "categories": ["INVALID_ATTRIBUTE"],
            }
        )
    return issues


def _validate_patch_request(body: object) -> tuple[str, list[dict]]:
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a ListingsItemPatchRequest JSON object.")
    product_type = body.get("productType")
    if not isinstance(product_type, str) or not product_type:
        raise _bad_request("Missing required field productType.")
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches:
        raise _bad_request("Missing required field patches (at least one patch operation).")
    for n, patch in enumerate(patches):
        where = f"patches[{n}]"
        if not isinstance(patch, dict):
            raise _bad_request(f"{where} must be an object with op, path and value.")
        if patch.get("op") not in PATCH_OPS:
            raise _bad_request(f"{where}.op must be one of {', '.join(sorted(PATCH_OPS))}, got {patch.get('op')!r}.")
        if not isinstance(patch.get("path"), str) or not _PATH.fullmatch(patch["path"]):
            raise _bad_request(
                f"{where}.path must look like /attributes/<attribute_name>, got {patch.get('path')!r} "
                "(patching inside an attribute is not supported)."
            )
        if patch["op"] != "delete":
            value = patch.get("value")
            if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
                raise _bad_request(f"{where}.value must be a non-empty array of objects for op {patch['op']}.")
    return product_type, patches


def _apply(attributes: dict, patches: list[dict]) -> dict:
    result = copy.deepcopy(attributes)
    for patch in patches:
        name = _PATH.fullmatch(patch["path"]).group(1)  # type: ignore[union-attr]  # validated above
        if patch["op"] == "delete":
            result.pop(name, None)
        elif patch["op"] == "merge" and name in _SELECTORS:
            result[name] = _merge(result.get(name, []), patch["value"], _SELECTORS[name], name)
        else:  # add and replace both set the whole attribute
            result[name] = copy.deepcopy(patch["value"])
    return result


def _patched_names(patches: list[dict]) -> list[str]:
    return list(dict.fromkeys(_PATH.fullmatch(p["path"]).group(1) for p in patches if p["op"] != "delete"))  # type: ignore[union-attr]  # validated in _validate_patch_request


def _merge(existing: list[dict], incoming: list[dict], selector: str, name: str) -> list[dict]:
    merged = [dict(e) for e in existing]
    for element in incoming:
        if not element.get(selector):
            raise _Invalid("90220", f"'{selector}' is required in every {name} element for merge.", name)
        for current in merged:
            if current.get(selector) == element[selector]:
                current.update(element)
                break
        else:
            merged.append(dict(element))
    return merged


def _quantity_and_price(attributes: dict, listing: ListingRecord) -> tuple[int, Decimal | None]:
    quantity = 0
    for element in attributes.get("fulfillment_availability", []):
        code = element.get("fulfillment_channel_code")
        if not isinstance(code, str) or not code:
            raise _Invalid(
                "90220", "'fulfillment_channel_code' is required but not supplied.", "fulfillment_availability"
            )
        value = element.get("quantity", 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _Invalid(
                "8560", f"quantity must be a whole number of 0 or more, got {value!r}.", "fulfillment_availability"
            )
        if code == "DEFAULT":
            quantity = value
    price = None
    for element in attributes.get("purchasable_offer", []):
        if element.get("marketplace_id", listing.marketplace_id) != listing.marketplace_id:
            continue
        if listing.currency and element.get("currency") != listing.currency:
            raise _Invalid(
                "8567",
                f"currency must be {listing.currency} in marketplace {listing.marketplace_id}, "
                f"got {element.get('currency')!r}.",
                "purchasable_offer",
                "INVALID_PRICE",
            )
        try:
            raw = element["our_price"][0]["schedule"][0]["value_with_tax"]
            price = Decimal(str(raw))
        except (KeyError, IndexError, TypeError, InvalidOperation):
            raise _Invalid(
                "90220",
                "'our_price[0].schedule[0].value_with_tax' is required but not supplied.",
                "purchasable_offer",
                "MISSING_PRICE",
            ) from None
        if isinstance(raw, bool) or not price.is_finite() or price <= 0:
            raise _Invalid(
                "8567", f"value_with_tax must be a positive number, got {raw!r}.", "purchasable_offer", "INVALID_PRICE"
            )
    return quantity, price


async def get_listings_item(request: Request, sb: Sandbox) -> Reply:
    seller_id, sku, markets = _resolve(request, sb)
    included = _included(request, GET_INCLUDED, "summaries")
    listings = [found for m in markets if (found := sb.store.get_listing(seller_id, sku, m)) is not None]
    if not listings:
        raise ApiError(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace(s) {', '.join(markets)}.")
    return Reply(200, _item(sku, listings, included))


async def search_listings_items(request: Request, sb: Sandbox) -> Reply:
    """searchListingsItems: one marketplace's listings by SKU (``identifiers``, at most 20, with
    ``identifiersType=SKU``) or all of them, filtered by creation and last-update dates, issue
    severity and status, sorted, in pages of ``pageSize`` (at most 20) up to 1000 results."""
    seller_id = request.path_params["seller_id"]
    if seller_id != sb.store.seller_id:
        raise ApiError(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
            f"The caller is not authorised for seller {seller_id}.",
        )
    markets = marketplace_ids(request)
    if len(markets) != 1:
        raise _bad_request("marketplaceIds must hold exactly one marketplace id.")
    sb.check_served(markets)
    included = _included(request, GET_INCLUDED, "summaries")
    search, severities, with_status, without_status = _search_filters(request)
    page_size = int_param(request, "pageSize", SEARCH_PAGE_SIZE[0], 1, SEARCH_PAGE_SIZE[1])
    token = request.query_params.get("pageToken")
    offset = int(decode_token(token, "listings")["offset"]) if token else 0
    found = []
    for listing in sb.store.search_listings(seller_id, markets[0], search):
        severity = {str(i.get("severity")) for i in listing.issues}
        status = set(_status(listing))
        if severities and not severity & severities:
            continue
        if (with_status and not status & with_status) or status & without_status:
            continue
        found.append(listing)
        if len(found) == SEARCH_RESULTS:
            break
    page = found[offset : offset + page_size]
    body: dict = {"numberOfResults": len(found), "items": [_item(l.sku, [l], included) for l in page]}
    pagination = {}
    if offset + page_size < len(found):
        pagination["nextToken"] = encode_token({"kind": "listings", "offset": offset + page_size})
    if offset > 0:
        pagination["previousToken"] = encode_token({"kind": "listings", "offset": max(0, offset - page_size)})
    if pagination:
        body["pagination"] = pagination
    return Reply(200, body)


def _search_filters(request: Request) -> tuple[ListingSearch, set[str], set[str], set[str]]:
    identifiers = values(request, "identifiers")
    kind = request.query_params.get("identifiersType")
    if identifiers and kind is None:
        raise _bad_request("identifiersType is required when identifiers is given.")
    if kind is not None and kind != "SKU":
        raise _bad_request(f"identifiersType {kind!r} is not supported by the sandbox; use SKU.")
    if len(identifiers) > SEARCH_IDENTIFIERS:
        raise _bad_request(f"identifiers holds {len(identifiers)} values; at most {SEARCH_IDENTIFIERS} are allowed.")
    for unsupported in ("variationParentSku", "packageHierarchySku"):
        if request.query_params.get(unsupported):
            raise _bad_request(f"{unsupported} is not supported by the sandbox (it has no relationships).")
    sort_by = request.query_params.get("sortBy") or "lastUpdatedDate"
    sort_order = request.query_params.get("sortOrder") or "DESC"
    if sort_by not in SORT_BY or sort_order not in ("ASC", "DESC"):
        raise _bad_request(f"Invalid sortBy/sortOrder: {sort_by!r}/{sort_order!r}.")
    severities, with_status, without_status = (
        set(values(request, "withIssueSeverity")),
        set(values(request, "withStatus")),
        set(values(request, "withoutStatus")),
    )
    if not severities <= SEVERITIES or not (with_status | without_status) <= STATUSES:
        raise invalid_input("Invalid withIssueSeverity, withStatus or withoutStatus value.")
    search = ListingSearch(
        skus=identifiers or None,
        created_after=date_param(request, "createdAfter"),
        created_before=date_param(request, "createdBefore"),
        updated_after=date_param(request, "lastUpdatedAfter"),
        updated_before=date_param(request, "lastUpdatedBefore"),
        sort_by=sort_by,
        ascending=sort_order == "ASC",
    )
    return search, severities, with_status, without_status


def _item(sku: str, listings: list[ListingRecord], included: list[str]) -> dict:
    """One Item of getListingsItem or searchListingsItems: ``listings`` are the SKU's in the
    requested marketplaces."""
    item: dict = {"sku": sku}
    if "summaries" in included:
        item["summaries"] = [_summary(listing) for listing in listings]
    if "attributes" in included:
        item["attributes"] = _merged_attributes(listings)
    if "issues" in included:
        item["issues"] = [dict(issue, marketplaceIds=[l.marketplace_id]) for l in listings for issue in l.issues]
    if "offers" in included:
        item["offers"] = [
            {
                "marketplaceId": l.marketplace_id,
                "offerType": "B2C",
                "price": {"currencyCode": l.currency, "amount": str(l.price)},
            }
            for l in listings
            if l.price is not None and l.currency
        ]
    if "fulfillmentAvailability" in included:
        item["fulfillmentAvailability"] = _availability(listings[0])
    if "productTypes" in included:
        item["productTypes"] = [{"marketplaceId": l.marketplace_id, "productType": l.product_type} for l in listings]
    if "relationships" in included:
        item["relationships"] = [{"marketplaceId": l.marketplace_id, "relationships": []} for l in listings]
    if "procurement" in included:
        item["procurement"] = []
    return item


def _availability(listing: ListingRecord) -> list[dict]:
    """The listing's fulfillment channels as set: DEFAULT (merchant-fulfilled, also when none is
    set) with its quantity, AMAZON_NA, AMAZON_EU, ... (fulfilled by Amazon) as stored."""
    channels = []
    for element in listing.attributes.get("fulfillment_availability", []):
        code = element.get("fulfillment_channel_code")
        if code == "DEFAULT":
            channels.append({"fulfillmentChannelCode": code, "quantity": listing.quantity})
        elif isinstance(code, str) and code:
            channel: dict = {"fulfillmentChannelCode": code}
            quantity = element.get("quantity")
            if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 0:
                channel["quantity"] = quantity
            channels.append(channel)
    return channels or [{"fulfillmentChannelCode": "DEFAULT", "quantity": listing.quantity}]


def _status(listing: ListingRecord) -> list[str]:
    if listing.suppressed:
        return []
    errors = any(issue.get("severity") == "ERROR" for issue in listing.issues)
    return ["BUYABLE", "DISCOVERABLE"] if listing.quantity > 0 and not errors else ["DISCOVERABLE"]


def _summary(listing: ListingRecord) -> dict:
    summary = {
        "marketplaceId": listing.marketplace_id,
        "productType": listing.product_type,
        "conditionType": "new_new",
        "status": _status(listing),
        "createdDate": amazon_time(listing.created),
        "lastUpdatedDate": amazon_time(listing.updated),
    }
    if listing.asin:
        summary["asin"] = listing.asin
    if listing.title:
        summary["itemName"] = listing.title
    return summary


def _merged_attributes(listings: list[ListingRecord]) -> dict:
    """Attributes across the requested marketplaces (elements carry their marketplace_id)."""
    merged: dict = {}
    for listing in listings:
        for name, elements in listing.attributes.items():
            for element in elements:
                if element not in merged.setdefault(name, []):
                    merged[name].append(element)
    return merged
