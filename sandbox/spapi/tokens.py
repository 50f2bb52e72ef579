"""Tokens API 2021-03-01 (createRestrictedDataToken) and the PII rules it unlocks.

Without a restricted data token Amazon leaves buyer names, e-mail, phone and street address
out of Orders v0 and 2026-01-01 answers (restricted data tokens:
https://developer-docs.amazon.com/sp-api/docs/tokens-api-use-case-guide); the sandbox does the same (PII
restriction is on unless turned off). An RDT is issued for operation paths that handle
restricted data only, as ``tokens_2021-03-01.json`` describes, and unlocks exactly the
method, path and data elements it names.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from .context import Reply, Sandbox, json_body
from .errors import invalid_input

DATA_ELEMENTS = frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"})
_METHODS = frozenset({"GET", "PUT", "POST", "DELETE"})  # RestrictedResource.method's enum
_MAX_RESOURCES = 50  # "Maximum: 50"
_ID = r"(?:[^/{}]+|\{[A-Za-z]+\})"  # a concrete id or a {placeholder}
# Restricted operations the sandbox serves: path pattern -> data elements the path itself grants
# (getOrderAddress/getOrderBuyerInfo need an RDT without dataElements).
_RESTRICTED_PATHS: tuple[tuple[re.Pattern[str], frozenset[str] | None], ...] = (
    (re.compile(r"/orders/v0/orders"), None),
    (re.compile(rf"/orders/v0/orders/{_ID}"), None),
    (re.compile(rf"/orders/v0/orders/{_ID}/orderItems"), None),
    (re.compile(rf"/orders/v0/orders/{_ID}/address"), frozenset({"shippingAddress"})),
    (re.compile(rf"/orders/v0/orders/{_ID}/buyerInfo"), frozenset({"buyerInfo"})),
    (re.compile(r"/orders/2026-01-01/orders"), None),
    (re.compile(rf"/orders/2026-01-01/orders/{_ID}"), None),
)
# What remains of an address without the shippingAddress data element.
_PUBLIC_ADDRESS_FIELDS = frozenset({"City", "StateOrRegion", "PostalCode", "CountryCode"})


async def create_restricted_data_token(request: Request, sb: Sandbox) -> Reply:
    body = await json_body(request)
    resources = body.get("restrictedResources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not resources:
        raise invalid_input("Missing required field restrictedResources.")
    if len(resources) > _MAX_RESOURCES:
        raise invalid_input(f"restrictedResources accepts at most {_MAX_RESOURCES} resources.")
    granted = []
    for n, resource in enumerate(resources):
        where = f"restrictedResources[{n}]"
        if not isinstance(resource, dict) or resource.get("method") not in _METHODS:
            raise invalid_input(f"{where}.method must be one of {', '.join(sorted(_METHODS))}.")
        path = resource.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise invalid_input(f"{where}.path must be an SP-API path such as /orders/v0/orders.")
        if not any(pattern.fullmatch(path) for pattern, _ in _RESTRICTED_PATHS):
            raise invalid_input(
                f"Application does not have access to one or more requested data elements: "
                f"{where}.path {path} is not a restricted operation."
            )
        elements = resource.get("dataElements", [])
        if not isinstance(elements, list) or any(e not in DATA_ELEMENTS for e in elements):
            raise invalid_input(f"{where}.dataElements must be drawn from {', '.join(sorted(DATA_ELEMENTS))}.")
        granted.append({"method": resource["method"], "path": path, "dataElements": elements})
    owner = sb.store.access_token_owner(request.headers.get("x-amz-access-token", ""), sb.now())
    assert owner is not None  # the API gate let the call through
    token, expires_in = sb.store.issue_restricted_token(owner, granted, sb.now())
    return Reply(200, {"restrictedDataToken": token, "expiresIn": expires_in})


def granted_elements(request: Request, sb: Sandbox) -> frozenset[str]:
    """Data elements the caller's token unlocks for this request (all of them when PII is not restricted)."""
    if not sb.restrict_pii:
        return DATA_ELEMENTS
    resources = sb.store.restricted_resources(request.headers.get("x-amz-access-token", ""), sb.now())
    found: set[str] = set()
    for resource in resources:
        pattern = re.escape(resource["path"]).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.sub(r"\{[^/}]+\}", "[^/]+", pattern)  # /orders/v0/orders/{orderId} matches any id
        if resource["method"] == request.method and re.fullmatch(pattern, request.url.path):
            found.update(resource["dataElements"])
            found.update(
                next((implied for p, implied in _RESTRICTED_PATHS if implied and p.fullmatch(resource["path"])), ())
            )
    return frozenset(found)


def visible_buyer_info(info: dict, elements: frozenset[str]) -> dict:
    """getOrderBuyerInfo's fields: all with buyerInfo, else only the non-identifying ones."""
    if "buyerInfo" in elements:
        return dict(info)
    return {k: v for k, v in info.items() if k in ("BuyerCounty",)}


def visible_order(order: dict, elements: frozenset[str]) -> dict:
    shown = dict(order)
    if "shippingAddress" not in elements and isinstance(shown.get("ShippingAddress"), dict):
        shown["ShippingAddress"] = {k: v for k, v in shown["ShippingAddress"].items() if k in _PUBLIC_ADDRESS_FIELDS}
    if "buyerInfo" not in elements and "BuyerInfo" in shown:
        shown["BuyerInfo"] = {}
    return shown


def visible_item(item: dict, elements: frozenset[str]) -> dict:
    if "buyerInfo" in elements or "BuyerInfo" not in item:
        return item
    return {k: v for k, v in item.items() if k != "BuyerInfo"}
