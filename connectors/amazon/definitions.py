"""Product type definitions (Product Type Definitions API 2020-09-01): the JSON Schema a listing's
attributes must satisfy, per product type and marketplace.

``getDefinitionsProductType`` (rate 5/s, burst 10) answers with a link to the schema (a presigned
URL on Amazon's S3) and its checksum (Base64 MD5 of the document). The schema is read once per
(product type, marketplace) and connector, and kept: product types change rarely, and a catalog
run asks for the same few over and over. A document whose checksum does not match is refused.
The schema is asked for with ``requirementsEnforced=NOT_ENFORCED``: a patch carries some
attributes, not a whole listing, and Amazon checks it that way too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.amazon.errors import AmazonError

_OPERATION = "getDefinitionsProductType"


@dataclass(frozen=True)
class ProductTypeSchema:
    """One product type's schema in one marketplace, with the version Amazon gave it."""

    product_type: str
    marketplace_id: str
    version: str
    checksum: str
    schema: Mapping[str, Any] = field(repr=False)


def schema_link(definition: Mapping[str, Any], product_type: str) -> tuple[str, str]:
    """(URL, checksum) of the definition's ``schema`` link; AmazonError when the answer has none."""
    link = definition.get("schema") or {}
    url = (link.get("link") or {}).get("resource")
    if not url or not link.get("checksum"):
        raise AmazonError(_OPERATION, f"product type {product_type}: answer without a schema link")
    return str(url), str(link["checksum"])


def parse_schema(raw: bytes, expected_checksum: str, what: str) -> dict[str, Any]:
    """The schema document, refused when its Base64 MD5 is not the checksum Amazon announced."""
    actual = base64.b64encode(hashlib.md5(raw).digest()).decode()  # noqa: S324 - Amazon's checksum is MD5
    if actual != expected_checksum:
        raise AmazonError(_OPERATION, f"{what}: checksum {actual} is not the announced {expected_checksum}")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise AmazonError(_OPERATION, f"{what}: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise AmazonError(_OPERATION, f"{what}: not a JSON Schema object")
    return document


class SchemaCache:
    """Product type schemas already read, by (product type, marketplace). Thread-safe; a schema
    read twice at once by two threads is stored once (the second answer is the same document)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[tuple[str, str], ProductTypeSchema] = {}
        self.reads = 0  # how many definitions were read from Amazon (observability, tests)

    def get(self, product_type: str, marketplace_id: str, read: Callable[[], ProductTypeSchema]) -> ProductTypeSchema:
        key = (product_type, marketplace_id)
        with self._lock:
            cached = self._schemas.get(key)
        if cached is not None:
            return cached
        schema = read()
        with self._lock:
            self.reads += 1
            return self._schemas.setdefault(key, schema)
