"""Listings Items API 2021-08-01: patchListingsItem and getListingsItem (not payload-wrapped).

Only the attributes the integration writes are understood in depth (quantity in
``fulfillment_availability``, price in ``purchasable_offer``); other top-level attributes are
stored as sent. Problems with the content are answered as Amazon does: HTTP 200, status
``INVALID`` with issues; a malformed request is a 400.
"""

from __future__ import annotations

import copy
import re
import uuid
from decimal import Decimal, InvalidOperation

from starlette.requests import Request

from .context import Reply, Sandbox, json_body, marketplace_ids, values
from .definitions import attribute_issues
from .errors import ApiError
from .store import ListingRecord
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
            sb.store.save_listing_attributes(listing, attributes, quantity, price)
    if "issues" in included:
        submission["issues"] = issues
    if "identifiers" in included:
        submission["identifiers"] = [
            {"marketplaceId": listing.marketplace_id, "asin": listing.asin} for listing, *_ in results if listing.asin
        ]
    return Reply(200, submission)


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
    item: dict = {"sku": sku}
    if "summaries" in included:
        item["summaries"] = [_summary(listing) for listing in listings]
    if "attributes" in included:
        item["attributes"] = _merged_attributes(listings)
    if "issues" in included:
        item["issues"] = []
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
        item["fulfillmentAvailability"] = [{"fulfillmentChannelCode": "DEFAULT", "quantity": listings[0].quantity}]
    if "productTypes" in included:
        item["productTypes"] = [{"marketplaceId": l.marketplace_id, "productType": l.product_type} for l in listings]
    if "relationships" in included:
        item["relationships"] = [{"marketplaceId": l.marketplace_id, "relationships": []} for l in listings]
    if "procurement" in included:
        item["procurement"] = []
    return Reply(200, item)


def _summary(listing: ListingRecord) -> dict:
    summary = {
        "marketplaceId": listing.marketplace_id,
        "productType": listing.product_type,
        "conditionType": "new_new",
        "status": ["BUYABLE", "DISCOVERABLE"] if listing.quantity > 0 else ["DISCOVERABLE"],
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
