"""Which M3 customer an Amazon order goes to (issue #14, item 3).

``marketplace`` mode (the default): every order of a marketplace goes to its routing ``customer``;
the delivery address rides on the order. ``buyer`` mode: one M3 customer per Amazon buyer, created
once from the marketplace's template customer and found again through the state store's id map
(kind ``customer``: buyer key -> CUNO).

The buyer key is ``SHA-256(salt + normalised buyer e-mail)``. Amazon's buyer e-mail is an anonymised
relay address, stable per buyer and seller, so it identifies the buyer across orders; but it still
reaches the buyer, so it is personal data and is never stored: the state store and M3 (the search key
and reference) see only the key. The per-install salt stops anyone holding the key from confirming a
guessed address by hashing it. Pure: no network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.order_mapping import MISSING_FIELD, MappedAddress, OrderMappingError, OrderProblem, fit_address
from sync.routing import MarketplaceRoute

CUSTOMER_ID_KIND = "customer"  # the id map's kind: buyer key -> M3 CUNO
BUYER_KEY_LENGTH = 64  # hex digits of SHA-256
REFERENCE_LENGTH = 30  # YREF A30: the key's prefix, so a person can find the customer of a key


def buyer_key(buyer_email: str, salt: str) -> str:
    """The stable, non-identifying key of a buyer: the salted SHA-256 of the e-mail, trimmed and lower-cased
    (Amazon's relay addresses compare case-insensitively)."""
    if not salt:
        raise ValueError("the buyer key needs a non-empty salt")  # a caller's bug: an unsalted hash is guessable
    normalised = buyer_email.strip().lower()
    if not normalised:
        raise ValueError("the buyer key needs a buyer e-mail")  # callers check BuyerEmail first
    return hashlib.sha256(f"{salt}\n{normalised}".encode()).hexdigest()


@dataclass(frozen=True)
class BuyerCustomer:
    """A new M3 customer for a buyer: the order's delivery address, already fitted to M3's fields by
    the order mapping (``sync.order_mapping``), so customer and order carry the same lines."""

    template: str  # CUTM: the marketplace's template customer
    address: MappedAddress  # buyer data: MappedAddress shows none in its repr
    currency: str | None = None
    reference: str | None = None  # YREF: the buyer key's prefix (no buyer data), how M3 finds the customer

    def request_fields(self) -> dict[str, Any]:
        """Keyword arguments of ``connectors.m3.CustomerRequest``, field for field."""
        return {"template": self.template, **vars(self.address), "currency": self.currency, "reference": self.reference}


def buyer_reference(key: str) -> str:
    """What the buyer's M3 customer carries in YREF: the key's first 30 hex digits (no buyer data)."""
    return key[:REFERENCE_LENGTH]


def buyer_customer_for(
    order: Mapping[str, Any], route: MarketplaceRoute, salt: str
) -> tuple[str, BuyerCustomer] | OrderMappingError:
    """The buyer key of an order read with buyer data (a restricted data token) and the customer to
    create if the key has none yet; or why not (field names only, never their values)."""
    order_id = str(order.get("AmazonOrderId") or "")
    buyer_info = order.get("BuyerInfo")
    email = buyer_info.get("BuyerEmail") if isinstance(buyer_info, Mapping) else None
    if not isinstance(email, str) or not email.strip():
        return OrderMappingError(order_id, (OrderProblem(MISSING_FIELD, "BuyerInfo.BuyerEmail (customers: buyer)"),))
    if route.customer_template is None:  # the routing's loading refuses buyer mode without one
        raise ValueError(f"{route.marketplace.code} has no customer_template")
    address, problems = fit_address(order.get("ShippingAddress"))
    if address is None:
        return OrderMappingError(order_id, problems)
    key = buyer_key(email, salt)
    return key, BuyerCustomer(route.customer_template, address, route.currency, buyer_reference(key))
