"""Amazon's official SP-API models, for validating the sandbox's answers in tests.

The sandbox never needs these at runtime. Tests find them in ``$M3SYNC_SPAPI_MODELS``: the
``models`` folder of a clone of https://github.com/amzn/selling-partner-api-models (one folder
per API, e.g. ``orders-api-model/ordersV0.json``) or a flat folder of the same JSON files.
Without the variable, ``$M3SYNC_SHARED/spapi-models`` or ``../shared/spapi-models`` beside the
clone is used when present.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ORDERS, REPORTS, LISTINGS = "ordersV0.json", "reports_2021-06-30.json", "listingsItems_2021-08-01.json"
TOKENS = "tokens_2021-03-01.json"
ORDERS_2026 = "orders_2026-01-01.json"


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
    "searchOrders": OperationSchemas(ORDERS_2026, "SearchOrdersResponse", "ErrorList"),
    "getOrder2026": OperationSchemas(ORDERS_2026, "GetOrderResponse", "ErrorList"),
    "getReports": OperationSchemas(REPORTS, "GetReportsResponse", "ErrorList"),
    "getReport": OperationSchemas(REPORTS, "Report", "ErrorList"),
    "createReport": OperationSchemas(REPORTS, "CreateReportResponse", "ErrorList"),
    "getReportDocument": OperationSchemas(REPORTS, "ReportDocument", "ErrorList"),
    "patchListingsItem": OperationSchemas(LISTINGS, "ListingsItemSubmissionResponse", "ErrorList"),
    "getListingsItem": OperationSchemas(LISTINGS, "Item", "ErrorList"),
    "searchListingsItems": OperationSchemas(LISTINGS, "ItemSearchResults", "ErrorList"),
    "createRestrictedDataToken": OperationSchemas(TOKENS, "CreateRestrictedDataTokenResponse", "ErrorList"),
}


MODELS_ENV = "M3SYNC_SPAPI_MODELS"
HOW_TO_GET_MODELS = (
    f"Amazon's SP-API models not found: clone https://github.com/amzn/selling-partner-api-models "
    f"and set {MODELS_ENV} to its models folder"
)


def models_dir() -> Path | None:
    """The folder holding Amazon's models (see the module docstring), or None if there is none."""
    configured = os.environ.get(MODELS_ENV)
    if configured:
        folder = Path(configured)
    else:
        shared = os.environ.get("M3SYNC_SHARED")
        folder = (Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared") / "spapi-models"
    return folder if folder.is_dir() else None


@cache
def load_model(folder: Path, name: str) -> dict:
    """One model by file name, directly in ``folder`` or in one of its per-API folders (Amazon's layout)."""
    path = folder / name
    if not path.is_file():
        path = next(folder.glob(f"*/{name}"), path)
    return json.loads(path.read_text(encoding="utf-8"))


def schema_for(folder: Path, model: str, definition: str) -> dict:
    """A draft-4 JSON Schema for one definition (Swagger 2.0 definitions are draft-4 compatible)."""
    return {"$ref": f"#/definitions/{definition}", "definitions": load_model(folder, model)["definitions"]}
