"""Amazon's official SP-API models, for validating the sandbox's answers in tests.

The sandbox never needs these at runtime (users do not have ``../shared``); tests locate
``shared/spapi-models`` beside the repository, or under ``$M3SYNC_SHARED``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ORDERS, REPORTS, LISTINGS = "ordersV0.json", "reports_2021-06-30.json", "listingsItems_2021-08-01.json"
TOKENS = "tokens_2021-03-01.json"


@dataclass(frozen=True)
class OperationSchemas:
    model: str  # file name in spapi-models
    success: str  # definition of the 2xx body ("" = no body)
    error: str  # definition of the error body


# Per operation, as declared in each model's ``responses``.
OPERATION_SCHEMAS: dict[str, OperationSchemas] = {
    "getOrders": OperationSchemas(ORDERS, "GetOrdersResponse", "GetOrdersResponse"),
    "getOrder": OperationSchemas(ORDERS, "GetOrderResponse", "GetOrderResponse"),
    "getOrderItems": OperationSchemas(ORDERS, "GetOrderItemsResponse", "GetOrderItemsResponse"),
    "getOrderAddress": OperationSchemas(ORDERS, "GetOrderAddressResponse", "GetOrderAddressResponse"),
    "getOrderBuyerInfo": OperationSchemas(ORDERS, "GetOrderBuyerInfoResponse", "GetOrderBuyerInfoResponse"),
    "confirmShipment": OperationSchemas(ORDERS, "", "ConfirmShipmentErrorResponse"),
    "getReports": OperationSchemas(REPORTS, "GetReportsResponse", "ErrorList"),
    "getReport": OperationSchemas(REPORTS, "Report", "ErrorList"),
    "createReport": OperationSchemas(REPORTS, "CreateReportResponse", "ErrorList"),
    "getReportDocument": OperationSchemas(REPORTS, "ReportDocument", "ErrorList"),
    "patchListingsItem": OperationSchemas(LISTINGS, "ListingsItemSubmissionResponse", "ErrorList"),
    "getListingsItem": OperationSchemas(LISTINGS, "Item", "ErrorList"),
    "createRestrictedDataToken": OperationSchemas(TOKENS, "CreateRestrictedDataTokenResponse", "ErrorList"),
}


def models_dir() -> Path | None:
    """``shared/spapi-models`` (``$M3SYNC_SHARED/spapi-models`` when set), or None if absent."""
    override = os.environ.get("M3SYNC_SHARED")
    shared = Path(override) if override else Path(__file__).resolve().parents[3] / "shared"
    folder = shared / "spapi-models"
    return folder if folder.is_dir() else None


@cache
def load_model(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def schema_for(folder: Path, model: str, definition: str) -> dict:
    """A draft-4 JSON Schema for one definition (Swagger 2.0 definitions are draft-4 compatible)."""
    return {"$ref": f"#/definitions/{definition}", "definitions": load_model(folder, model)["definitions"]}
