"""Product Type Definitions API 2020-09-01: getDefinitionsProductType for the demo catalog's product types.

Amazon answers with a ``ProductTypeDefinition`` whose ``schema`` and ``metaSchema`` are links
(presigned S3 URLs) to JSON Schema documents, with a checksum (Base64 MD5) of each. The schemas
follow Amazon's meta-schema (``amazon-product-type-definition-meta-schema-v1``: JSON Schema
2019-09 plus informational keywords such as ``selectors``, ``editable``, ``hidden`` and
``maxUniqueItems``). The sandbox serves a small but faithful one per product type and
marketplace: the listing text attributes (item_name, bullet_point, product_description, brand)
with their limits, each element carrying its ``language_tag`` (the marketplace's languages) and
``marketplace_id``. There is no official model file of this API in ``shared/spapi-models``: the
shapes come from amzn/selling-partner-api-models ``definitionsProductTypes_2020-09-01.json``.

``patchListingsItem`` checks the attributes it is sent against the same schema
(``attribute_issues``) with the integration's own rule checker (``sync.catalog``): the pre-check
against the served schema and the sandbox agree by construction.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache

from starlette.requests import Request
from starlette.responses import Response

from sandbox.catalog import CATEGORIES, MARKETPLACE_BY_ID
from sync.catalog import schema_violations

from .context import Reply, Sandbox, marketplace_ids
from .errors import invalid_input

SCHEMA_PREFIX = "/s3/selling-partner-definitions"  # where the "presigned" schema links point
META_SCHEMA_ID = "https://schemas.amazon.com/selling-partners/definitions/product-types/meta-schema/v1"
SCHEMA_ID = "https://schemas.amazon.com/selling-partners/definitions/product-types/schema/v1/"
PRODUCT_TYPES = tuple(product_type for product_type, _ in CATEGORIES.values())
# The languages Amazon accepts per marketplace (the first is the marketplace's own locale).
LANGUAGES = {
    "ATVPDKIKX0DER": ("en_US", "es_US"),
    "A1PA6795UKMFR9": ("de_DE", "en_GB"),
    "A13V1IB3VIYZZH": ("fr_FR", "en_GB"),
    "A1F83G8C2ARO7P": ("en_GB",),
}
REQUIREMENTS = ("LISTING", "LISTING_PRODUCT_ONLY", "LISTING_OFFER_ONLY")
ENFORCEMENTS = ("ENFORCED", "NOT_ENFORCED")
# Text attributes: (title, most elements, longest value). Titles: Amazon's 200 characters;
# descriptions 2000; five bullet points of 500 (Amazon's listing content rules).
TEXT_ATTRIBUTES = {
    "item_name": ("Item Name", 1, 200),
    "brand": ("Brand Name", 1, 100),
    "bullet_point": ("Bullet Point", 5, 500),
    "product_description": ("Product Description", 1, 2000),
}
REQUIRED = ("item_name", "brand")  # with requirementsEnforced=ENFORCED, for a whole listing
CURRENCIES = {"ATVPDKIKX0DER": "USD", "A1PA6795UKMFR9": "EUR", "A13V1IB3VIYZZH": "EUR", "A1F83G8C2ARO7P": "GBP"}
# The highest price a listing may have ([ours]: Amazon caps prices per marketplace and category;
# the figure is the sandbox's, one for all): a price above it is refused, and our pre-check agrees.
MAX_PRICE = 100_000


def _price() -> dict:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["schedule"],
            "properties": {
                "schedule": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["value_with_tax"],
                        "properties": {
                            "value_with_tax": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_PRICE},
                            "start_at": {"type": "object"},
                            "end_at": {"type": "object"},
                        },
                    },
                }
            },
        },
    }


def _offer_attributes(marketplace_id: str) -> dict:
    """The offer attributes inventory sync patches, as Amazon's schemas shape them (selectors;
    other fields the seller keeps there are allowed)."""
    return {
        "fulfillment_availability": {
            "title": "Fulfillment Availability",
            "type": "array",
            "selectors": ["fulfillment_channel_code"],
            "items": {
                "type": "object",
                "required": ["fulfillment_channel_code"],
                "properties": {
                    "fulfillment_channel_code": {"type": "string", "minLength": 1},
                    "quantity": {"type": "integer", "minimum": 0},
                    "lead_time_to_ship_max_days": {"type": "integer", "minimum": 0, "maximum": 30},
                    "restock_date": {"type": "string"},
                },
            },
        },
        "purchasable_offer": {
            "title": "Purchasable Offer",
            "type": "array",
            "selectors": ["marketplace_id", "audience"],
            "items": {
                "type": "object",
                "required": ["marketplace_id", "currency"],
                "properties": {
                    "marketplace_id": {"$ref": "#/$defs/marketplace_id"},
                    "currency": {"type": "string", "enum": [CURRENCIES[marketplace_id]]},
                    "our_price": _price(),
                    "minimum_seller_allowed_price": _price(),
                    "maximum_seller_allowed_price": _price(),
                },
            },
        },
    }


def _text_attribute(title: str, max_items: int, max_length: int) -> dict:
    return {
        "title": title,
        "type": "array",
        "minItems": 1,
        "maxItems": max_items,
        "minUniqueItems": 1,
        "maxUniqueItems": max_items,
        "selectors": ["marketplace_id", "language_tag"],
        "items": {
            "type": "object",
            "required": ["value", "language_tag", "marketplace_id"],
            "additionalProperties": False,
            "properties": {
                "value": {"title": title, "type": "string", "minLength": 1, "maxLength": max_length},
                "language_tag": {"$ref": "#/$defs/language_tag"},
                "marketplace_id": {"$ref": "#/$defs/marketplace_id"},
            },
        },
    }


@cache
def product_type_schema(product_type: str, marketplace_id: str, enforced: bool = True) -> dict:
    """The JSON Schema of ``product_type`` in ``marketplace_id`` (``enforced``: with the required attributes)."""
    languages = LANGUAGES[marketplace_id]
    schema: dict = {
        "$schema": META_SCHEMA_ID,
        "$id": SCHEMA_ID + product_type,
        "$comment": f"Amazon product type definition for {product_type} product type",
        "$defs": {
            "marketplace_id": {
                "default": marketplace_id,
                "editable": False,
                "hidden": True,
                "type": "string",
                "enum": [marketplace_id],
            },
            "language_tag": {
                "default": languages[0],
                "editable": False,
                "hidden": True,
                "type": "string",
                "enum": list(languages),
            },
        },
        "type": "object",
        "properties": {
            **{name: _text_attribute(*limits) for name, limits in TEXT_ATTRIBUTES.items()},
            **_offer_attributes(marketplace_id),
        },
    }
    if enforced:
        schema["required"] = list(REQUIRED)
    return schema


def _dump(document: dict) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def checksum(document: dict) -> str:
    """Base64 MD5 of the served bytes, as Amazon's ``SchemaLink.checksum``."""
    return base64.b64encode(hashlib.md5(_dump(document)).digest()).decode()  # noqa: S324 - Amazon's checksum is MD5


META_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "$id": META_SCHEMA_ID,
    "$comment": "Amazon product type definition meta-schema (sandbox copy: the vocabulary, not every rule)",
    "$vocabulary": {
        "https://json-schema.org/draft/2019-09/vocab/core": True,
        "https://json-schema.org/draft/2019-09/vocab/applicator": True,
        "https://json-schema.org/draft/2019-09/vocab/validation": True,
        "https://json-schema.org/draft/2019-09/vocab/meta-data": True,
        "https://schemas.amazon.com/selling-partners/definitions/product-types/vocabulary/v1": False,
    },
    "$recursiveAnchor": True,
    "allOf": [{"$ref": "https://json-schema.org/draft/2019-09/schema"}],
    "properties": {
        "selectors": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "editable": {"type": "boolean"},
        "hidden": {"type": "boolean"},
        "enumNames": {"type": "array", "items": {"type": "string"}},
        "minUniqueItems": {"type": "integer", "minimum": 0},
        "maxUniqueItems": {"type": "integer", "minimum": 0},
        "maxUtf8ByteLength": {"type": "integer", "minimum": 0},
    },
}


def _link(sb: Sandbox, path: str, document: dict) -> dict:
    return {"link": {"resource": f"{sb.base_url}{SCHEMA_PREFIX}/{path}", "verb": "GET"}, "checksum": checksum(document)}


async def get_definitions_product_type(request: Request, sb: Sandbox) -> Reply:
    product_type = request.path_params["product_type"]
    markets = marketplace_ids(request)
    if len(markets) != 1:
        raise invalid_input("marketplaceIds must name exactly one marketplace (Amazon's limit for this operation).")
    (marketplace_id,) = markets
    sb.check_served(markets)
    if marketplace_id not in LANGUAGES or marketplace_id not in MARKETPLACE_BY_ID:
        raise invalid_input(f"Invalid marketplace id {marketplace_id}.")
    if product_type not in PRODUCT_TYPES:
        raise invalid_input("Invalid input", f"Product type {product_type!r} is not available in {marketplace_id}.")
    requirements = request.query_params.get("requirements") or "LISTING"
    enforced = request.query_params.get("requirementsEnforced") or "ENFORCED"
    if requirements not in REQUIREMENTS:
        raise invalid_input(f"Invalid requirements {requirements!r}; one of {', '.join(REQUIREMENTS)}.")
    if enforced not in ENFORCEMENTS:
        raise invalid_input(f"Invalid requirementsEnforced {enforced!r}; one of {', '.join(ENFORCEMENTS)}.")
    version = request.query_params.get("productTypeVersion") or "LATEST"
    if version not in ("LATEST", "RELEASE_CANDIDATE"):
        raise invalid_input(f"Invalid productTypeVersion {version!r}.")
    locale = request.query_params.get("locale") or "DEFAULT"
    schema = product_type_schema(product_type, marketplace_id, enforced == "ENFORCED")
    return Reply(
        200,
        {
            "metaSchema": _link(sb, "meta-schema/v1.json", META_SCHEMA),
            "schema": _link(sb, f"{product_type}/{marketplace_id}/{enforced}.json", schema),
            "requirements": requirements,
            "requirementsEnforced": enforced,
            "propertyGroups": {
                "product_identity": {
                    "title": "Product Identity",
                    "description": "Information to uniquely identify your product (e.g., Brand, Item Name)",
                    "propertyNames": ["item_name", "brand"],
                },
                "product_details": {
                    "title": "Product Details",
                    "description": "Details about your product (e.g., bullet points, description)",
                    "propertyNames": ["bullet_point", "product_description"],
                },
            },
            "locale": LANGUAGES[marketplace_id][0] if locale == "DEFAULT" else locale,
            "marketplaceIds": [marketplace_id],
            "productType": product_type,
            "productTypeVersion": {"version": checksum(schema)[:12], "latest": True, "releaseCandidate": False},
        },
    )


async def download_schema(request: Request, sb: Sandbox) -> Response:
    """The S3 side of the schema links: the meta-schema, or one product type's schema."""
    path = request.path_params["path"]
    document: dict | None = META_SCHEMA if path == "meta-schema/v1.json" else None
    parts = path.removesuffix(".json").split("/")
    if document is None and len(parts) == 3 and parts[0] in PRODUCT_TYPES and parts[1] in LANGUAGES:
        if parts[2] in ENFORCEMENTS:
            document = product_type_schema(parts[0], parts[1], parts[2] == "ENFORCED")
    if document is None:
        xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>'
        return Response(xml.encode(), status_code=404, headers={"content-type": "application/xml"})
    return Response(_dump(document), headers={"content-type": "application/json"})


def attribute_issues(product_type: str, marketplace_id: str, attributes: dict) -> list[dict]:
    """Amazon's issues for the attributes a patch sets, checked against the product type's schema
    without the required attributes (a patch carries a few attributes, not a whole listing), by
    the rules the integration's pre-check uses (``sync.catalog.schema_violations``)."""
    if product_type not in PRODUCT_TYPES or marketplace_id not in LANGUAGES:
        return []
    schema = product_type_schema(product_type, marketplace_id, enforced=False)
    return [
        {
            "code": "90220" if violation.rule.startswith("required") else "4000001",
            "message": f"The provided value for '{violation.attribute}' is invalid: {violation.rule} "
            f"({violation.detail} at {violation.path}).",
            "severity": "ERROR",
            "attributeNames": [violation.attribute],
            "categories": ["INVALID_ATTRIBUTE"],
            "marketplaceIds": [marketplace_id],
        }
        for violation in schema_violations(schema, attributes)
    ]
