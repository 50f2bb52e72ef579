"""Immutable records the Amazon connector hands out or takes in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.amazon.orders import iso_utc


@dataclass(frozen=True)
class ReportInfo:
    """One entry of getReports (Reports API 2021-06-30)."""

    report_id: str
    report_type: str
    processing_status: str
    created_time: datetime
    report_document_id: str | None
    data_start_time: datetime | None
    data_end_time: datetime | None
    marketplace_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShipmentItem:
    order_item_id: str
    quantity: int

    def __post_init__(self) -> None:
        if not self.order_item_id:
            raise ValueError("shipment item needs an order_item_id")
        if self.quantity < 1:
            raise ValueError(f"shipment item {self.order_item_id}: quantity must be >= 1, got {self.quantity}")


@dataclass(frozen=True)
class PackageDetail:
    """confirmShipment ``packageDetail``; ``package_reference_id`` must be a positive number (Amazon)."""

    package_reference_id: str
    carrier_code: str
    tracking_number: str
    ship_date: datetime
    items: tuple[ShipmentItem, ...]
    carrier_name: str | None = None
    shipping_method: str | None = None
    ship_from_supply_source_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if not (self.package_reference_id.isdigit() and int(self.package_reference_id) > 0):
            raise ValueError(f"package_reference_id must be a positive number, got {self.package_reference_id!r}")
        for name in ("carrier_code", "tracking_number"):
            if not getattr(self, name):
                raise ValueError(f"package {self.package_reference_id}: {name} is empty")
        if not self.items:
            raise ValueError(f"package {self.package_reference_id}: no order items")
        iso_utc(self.ship_date, "ship_date")  # refuses naive datetimes early

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "packageReferenceId": self.package_reference_id,
            "carrierCode": self.carrier_code,
            "trackingNumber": self.tracking_number,
            "shipDate": iso_utc(self.ship_date, "ship_date"),
            "orderItems": [{"orderItemId": i.order_item_id, "quantity": i.quantity} for i in self.items],
        }
        optional = {
            "carrierName": self.carrier_name,
            "shippingMethod": self.shipping_method,
            "shipFromSupplySourceId": self.ship_from_supply_source_id,
        }
        body.update({k: v for k, v in optional.items() if v})
        return body


@dataclass(frozen=True)
class ListingIssue:
    code: str
    message: str
    severity: str
    attribute_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListingSubmission:
    """patchListingsItem answer: ``status`` ACCEPTED / INVALID / VALID (preview)."""

    sku: str
    status: str
    submission_id: str
    issues: tuple[ListingIssue, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return self.status == "ACCEPTED"
