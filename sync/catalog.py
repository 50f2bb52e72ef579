"""Catalog (issue #15, item 3): M3's item master -> Amazon listing attributes, the changed ones only,
checked against the product type's JSON Schema before anything is sent. Pure: no network.

The user maps item master fields (MMS200MI ``GetItmBasic``: ``{name}`` ITDS, ``{description}``
FUDS, ``{unit}`` UNMS, ``{status}`` STAT, ``{itno}``, ``{item_group}``, ``{item_type}``) to
listing attributes in ``sync/catalog.yaml``; ``HOME/catalog.yaml`` replaces it as a whole (as
``HOME/order_routing.yaml`` does the routing). Each attribute is a template or a list of
templates (one element each: bullet points); every element carries the marketplace's
``language_tag`` and ``marketplace_id``, as Amazon's product type schemas require.

Deltas: the state store keeps a hash of each attribute's value as Amazon last accepted it, per
SKU and marketplace; ``plan_patch`` replaces only attributes whose hash differs (all of them for
a full resync). ``schema_violations`` checks attributes against the product type's schema
(Product Type Definitions API) with the ``jsonschema`` library; the SP-API sandbox uses the same
function, so the pre-check and the emulated Amazon agree. Problems are data (``CatalogError``,
naming SKU, marketplace, attribute and rule), never exceptions.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft201909Validator

from reconciliation.marketplaces import MARKETPLACES
from sync.yaml_file import read_yaml_file

CATALOG_FILE_NAME = "catalog.yaml"
SHIPPED_CATALOG = Path(__file__).with_name(CATALOG_FILE_NAME)
# The item master fields a template may use: the M3 connector's ``Item`` (MMS200MI GetItmBasic).
ITEM_FIELDS = ("itno", "name", "description", "unit", "status", "item_group", "item_type")
_MARKETPLACES_BY_CODE = {m.code: m for m in MARKETPLACES}
_ATTRIBUTE_NAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "_")
Attributes = Mapping[str, Sequence[Mapping[str, Any]]]  # attribute -> its elements, as Amazon's JSON


class CatalogSettingsError(ValueError):
    """The catalog mapping file is unusable; one line naming the file and the key."""


@dataclass(frozen=True)
class AttributeRule:
    """One listing attribute: one element per template (empty values are left out)."""

    attribute: str
    templates: tuple[str, ...]


@dataclass(frozen=True)
class CatalogSettings:
    attributes: tuple[AttributeRule, ...]
    languages: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # marketplace id -> tag
    statuses: frozenset[str] = frozenset({"20"})  # M3 item statuses whose listings are kept in step
    skus: tuple[str, ...] | None = None  # None: the routing's SKU -> item number map names them
    source: str = ""


def load_catalog(home: Path | None = None) -> CatalogSettings:
    """``home/catalog.yaml`` if it exists, else the shipped mapping (sandbox runs too: the mapping
    is the user's choice of text, the same for every M3)."""
    path = SHIPPED_CATALOG
    if home is not None and (home / CATALOG_FILE_NAME).is_file():
        path = home / CATALOG_FILE_NAME
    return parse_catalog(read_yaml_file(path, CatalogSettingsError), str(path))


def parse_catalog(raw: object, source: str) -> CatalogSettings:
    """Validate a loaded YAML document (``source`` names it in messages)."""
    if not isinstance(raw, dict):
        raise CatalogSettingsError(f"{source}: (top level): must be a mapping")
    unknown = sorted(set(raw) - {"attributes", "languages", "statuses", "skus"})
    if unknown:
        raise CatalogSettingsError(f"{source}: {unknown[0]}: unknown key (attributes, languages, statuses, skus)")
    return CatalogSettings(
        attributes=_attribute_rules(raw.get("attributes"), source),
        languages=MappingProxyType(_languages(raw.get("languages"), source)),
        statuses=frozenset(_strings(raw.get("statuses", ["20"]), source, "statuses")),
        skus=None if raw.get("skus") is None else tuple(_strings(raw["skus"], source, "skus")),
        source=source,
    )


def _attribute_rules(raw: object, source: str) -> tuple[AttributeRule, ...]:
    if not isinstance(raw, dict) or not raw:
        raise CatalogSettingsError(f"{source}: attributes: must map listing attributes to templates")
    rules = []
    for attribute, value in raw.items():
        where = f"attributes.{attribute}"
        if not isinstance(attribute, str) or not attribute or not set(attribute) <= _ATTRIBUTE_NAME_CHARS:
            raise CatalogSettingsError(f"{source}: {where}: not an Amazon attribute name (item_name, bullet_point, …)")
        templates = [value] if isinstance(value, str) else value
        if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
            raise CatalogSettingsError(f"{source}: {where}: must be a template or a list of templates")
        for template in templates:
            _check_template(template, source, where)
        rules.append(AttributeRule(attribute, tuple(templates)))
    return tuple(rules)


def _check_template(template: str, source: str, where: str) -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise CatalogSettingsError(f"{source}: {where}: {template!r}: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in ITEM_FIELDS or spec or conversion:
            raise CatalogSettingsError(
                f"{source}: {where}: {template!r}: {{{name}}} is not an item field "
                f"(one of {', '.join('{' + f + '}' for f in ITEM_FIELDS)})"
            )


def _languages(raw: object, source: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise CatalogSettingsError(f"{source}: languages: must map marketplace codes (US, DE, …) to language tags")
    languages = {}
    for code, tag in raw.items():
        marketplace = _MARKETPLACES_BY_CODE.get(str(code))
        if marketplace is None:
            raise CatalogSettingsError(f"{source}: languages.{code}: unknown marketplace code")
        if not isinstance(tag, str) or len(tag) != 5 or tag[2] != "_":
            raise CatalogSettingsError(f"{source}: languages.{code}: {tag!r} is not a language tag such as en_US")
        languages[marketplace.marketplace_id] = tag
    return languages


def _strings(raw: object, source: str, key: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, (str, int)) and str(v) for v in raw):
        raise CatalogSettingsError(f"{source}: {key}: must be a list of values")
    return [str(v) for v in raw]


def listing_attributes(
    settings: CatalogSettings, item: Mapping[str, str], marketplace_id: str
) -> dict[str, list[dict[str, str]]]:
    """The listing attributes of ``item`` (its fields by name, ``ITEM_FIELDS``) in ``marketplace_id``.
    Values are stripped; an empty one is left out, and an attribute with no value is not sent
    (Amazon keeps what it has)."""
    language = settings.languages[marketplace_id]
    fields = {name: str(item.get(name, "")).strip() for name in ITEM_FIELDS}
    attributes: dict[str, list[dict[str, str]]] = {}
    for rule in settings.attributes:
        values = [" ".join(t.format_map(fields).split()) for t in rule.templates]
        elements = [{"value": v, "language_tag": language, "marketplace_id": marketplace_id} for v in values if v]
        if elements:
            attributes[rule.attribute] = elements
    return attributes


def attribute_hash(value: object) -> str:
    """A fingerprint of one attribute's value (canonical JSON), what the state store keeps."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ListingPatch:
    """What to send for one listing: ``patches`` replace the changed attributes; ``hashes`` are
    those attributes' fingerprints, recorded once Amazon accepts them."""

    sku: str
    marketplace_id: str
    product_type: str
    attributes: Mapping[str, Sequence[Mapping[str, Any]]]  # the changed attributes, as sent
    hashes: Mapping[str, str]
    unchanged: tuple[str, ...] = ()

    @property
    def patches(self) -> list[dict[str, Any]]:
        return [
            {"op": "replace", "path": f"/attributes/{name}", "value": [dict(e) for e in elements]}
            for name, elements in self.attributes.items()
        ]

    @property
    def empty(self) -> bool:
        return not self.attributes


def plan_patch(
    sku: str,
    marketplace_id: str,
    product_type: str,
    wanted: Attributes,
    accepted: Mapping[str, str],
    *,
    full: bool = False,
) -> ListingPatch:
    """The attributes of ``wanted`` whose value differs from what Amazon last accepted
    (``accepted``: attribute -> hash); every one of them when ``full``."""
    changed: dict[str, Sequence[Mapping[str, Any]]] = {}
    hashes: dict[str, str] = {}
    unchanged = []
    for name, elements in wanted.items():
        fingerprint = attribute_hash(elements)
        if full or accepted.get(name) != fingerprint:
            changed[name], hashes[name] = elements, fingerprint
        else:
            unchanged.append(name)
    return ListingPatch(
        sku, marketplace_id, product_type, MappingProxyType(changed), MappingProxyType(hashes), tuple(unchanged)
    )


@dataclass(frozen=True)
class SchemaViolation:
    """One rule of a product type schema an attribute breaks: ``rule`` is the JSON Schema keyword
    and its limit (``maxLength 200``), ``path`` where in the attribute (``/item_name/0/value``)."""

    attribute: str
    rule: str
    path: str
    detail: str


def schema_violations(schema: Mapping[str, Any], attributes: Attributes) -> list[SchemaViolation]:
    """The rules of ``schema`` (JSON Schema 2019-09, Amazon's meta-schema: its own keywords are
    informational) that ``attributes`` break, in attribute order. Attributes the schema does not
    describe are not checked (offers and availability have their own rules)."""
    properties = schema.get("properties") or {}
    known = {name: value for name, value in attributes.items() if name in properties}
    found = []
    for error in Draft201909Validator(schema).iter_errors(known):
        path = [str(p) for p in error.absolute_path]
        limit = error.validator_value
        rule = str(error.validator) if isinstance(limit, (dict, list, bool)) else f"{error.validator} {limit}"
        found.append(SchemaViolation(path[0] if path else "(attributes)", rule, "/" + "/".join(path), _detail(error)))
    return sorted(found, key=lambda v: (v.path, v.rule))


def _detail(error: Any) -> str:
    """What is wrong, without echoing a long value."""
    instance = error.instance
    if error.validator in ("maxLength", "minLength") and isinstance(instance, str):
        return f"{len(instance)} characters"
    if error.validator in ("maxItems", "minItems", "maxUniqueItems") and isinstance(instance, list):
        return f"{len(instance)} values"
    if error.validator in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        return f"value {instance}"
    if error.validator == "enum":
        return f"{instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return " ".join(str(error.message).split())[:160]


@dataclass(frozen=True)
class CatalogError:
    """Why a listing's patch is not sent: SKU, marketplace, attribute and the rule it breaks."""

    sku: str
    marketplace_id: str
    attribute: str
    rule: str
    detail: str

    @property
    def message(self) -> str:
        return f"SKU {self.sku} in {self.marketplace_id}: {self.attribute}: {self.rule} ({self.detail})"


def check_patch(patch: ListingPatch, schema: Mapping[str, Any]) -> list[CatalogError]:
    """The patch's attributes against the product type's schema; empty when it may be sent."""
    return [
        CatalogError(patch.sku, patch.marketplace_id, v.attribute, v.rule, f"{v.detail} at {v.path}")
        for v in schema_violations(schema, patch.attributes)
    ]
