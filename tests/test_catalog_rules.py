"""Catalog rules (issue #15, item 3): item master -> listing attributes, deltas, schema check.

Pure functions of ``sync/catalog.py``; every expected value is written out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.catalog import (
    CatalogError,
    CatalogSettingsError,
    attribute_hash,
    check_patch,
    listing_attributes,
    load_catalog,
    parse_catalog,
    plan_patch,
)

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
CUSHION = {
    "itno": "A10001",
    "name": "Classic Cushion Cover",
    "description": "Soft cotton, 40 x 40 cm",
    "unit": "PCS",
    "status": "20",
    "item_group": "HOME",
    "item_type": "FG",
}
# A hand-written product type schema in Amazon's shape, with small limits to break.
SCHEMA = {
    "$schema": "https://schemas.amazon.com/selling-partners/definitions/product-types/meta-schema/v1",
    "$defs": {
        "language_tag": {"type": "string", "enum": ["de_DE", "en_GB"]},
        "marketplace_id": {"type": "string", "enum": [DE]},
    },
    "type": "object",
    "properties": {
        "item_name": {
            "type": "array",
            "maxItems": 1,
            "selectors": ["marketplace_id", "language_tag"],
            "items": {
                "type": "object",
                "required": ["value", "language_tag", "marketplace_id"],
                "properties": {
                    "value": {"type": "string", "maxLength": 20},
                    "language_tag": {"$ref": "#/$defs/language_tag"},
                    "marketplace_id": {"$ref": "#/$defs/marketplace_id"},
                },
            },
        },
        "bullet_point": {"type": "array", "maxItems": 2, "items": {"type": "object"}},
    },
}


def _element(value: str, tag: str = "de_DE", marketplace: str = DE) -> dict:
    return {"value": value, "language_tag": tag, "marketplace_id": marketplace}


def test_the_shipped_mapping_turns_the_item_master_into_attributes_in_the_marketplaces_language() -> None:
    settings = load_catalog()
    assert listing_attributes(settings, CUSHION, DE) == {
        "item_name": [_element("Classic Cushion Cover")],
        "product_description": [_element("Soft cotton, 40 x 40 cm")],
        "bullet_point": [_element("Soft cotton, 40 x 40 cm"), _element("Sold per PCS")],
    }
    assert listing_attributes(settings, CUSHION, US)["item_name"] == [_element("Classic Cushion Cover", "en_US", US)]
    assert settings.statuses == {"20"} and settings.skus is None


def test_empty_values_are_left_out_and_an_attribute_without_values_is_not_sent() -> None:
    settings = load_catalog()
    item = dict(CUSHION, description="   ", name="  Eco   Yoga Mat ")
    assert listing_attributes(settings, item, DE) == {
        "item_name": [_element("Eco Yoga Mat")],  # M3's padding and double spaces go
        "bullet_point": [_element("Sold per PCS")],
    }


def test_home_catalog_yaml_replaces_the_shipped_mapping(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(
        'attributes:\n  item_name: "{name} ({itno})"\nlanguages:\n  UK: en_GB\nskus: [HOM-10001]\n', encoding="utf-8"
    )
    settings = load_catalog(tmp_path)
    assert dict(settings.languages) == {"A1F83G8C2ARO7P": "en_GB"} and settings.skus == ("HOM-10001",)
    assert listing_attributes(settings, CUSHION, "A1F83G8C2ARO7P") == {
        "item_name": [_element("Classic Cushion Cover (A10001)", "en_GB", "A1F83G8C2ARO7P")]
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"attributes": {"item_name": "{title}"}, "languages": {"US": "en_US"}}, "attributes.item_name: '{title}'"),
        ({"attributes": {"item_name": "{name!r}"}, "languages": {"US": "en_US"}}, "{name} is not an item field"),
        ({"attributes": {"Item Name": "{name}"}, "languages": {"US": "en_US"}}, "attributes.Item Name: not an Amazon"),
        ({"attributes": {"item_name": 5}, "languages": {"US": "en_US"}}, "attributes.item_name: must be a template"),
        ({"attributes": {"item_name": "{name}"}, "languages": {"XX": "en_US"}}, "languages.XX: unknown marketplace"),
        ({"attributes": {"item_name": "{name}"}, "languages": {"US": "english"}}, "languages.US: 'english' is not"),
        ({"attributes": {"item_name": "{name}"}, "languages": {"US": "en_US"}, "extra": 1}, "extra: unknown key"),
        ({"languages": {"US": "en_US"}}, "attributes: must map"),
    ],
)
def test_a_bad_mapping_is_one_line_naming_the_file_and_key(document: dict, message: str) -> None:
    with pytest.raises(CatalogSettingsError) as refused:
        parse_catalog(document, "home/catalog.yaml")
    assert str(refused.value).startswith("home/catalog.yaml: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("attributes:\n  item_name: [unclosed\n", encoding="utf-8")
    with pytest.raises(CatalogSettingsError, match=r"catalog.yaml: line 3, column 1: not valid YAML"):
        load_catalog(tmp_path)


def test_only_attributes_amazon_has_not_accepted_in_this_form_are_patched() -> None:
    wanted = {"item_name": [_element("Pro Chef Knife")], "bullet_point": [_element("Steel"), _element("Sold per PCS")]}
    accepted = {
        "item_name": attribute_hash([_element("Chef Knife")]),
        "bullet_point": attribute_hash(wanted["bullet_point"]),
    }
    patch = plan_patch("KIT-10002", DE, "KITCHEN", wanted, accepted)
    assert patch.patches == [{"op": "replace", "path": "/attributes/item_name", "value": [_element("Pro Chef Knife")]}]
    assert dict(patch.hashes) == {"item_name": attribute_hash([_element("Pro Chef Knife")])}
    assert patch.unchanged == ("bullet_point",)
    # Everything accepted as it is: nothing to send; a full resync sends all of it.
    same = plan_patch("KIT-10002", DE, "KITCHEN", wanted, {name: attribute_hash(v) for name, v in wanted.items()})
    assert same.empty and same.patches == [] and set(same.unchanged) == {"item_name", "bullet_point"}
    full = plan_patch("KIT-10002", DE, "KITCHEN", wanted, dict(same.hashes), full=True)
    assert [p["path"] for p in full.patches] == ["/attributes/item_name", "/attributes/bullet_point"]
    # Never sent before: every attribute.
    assert len(plan_patch("KIT-10002", DE, "KITCHEN", wanted, {}).patches) == 2


def test_an_attribute_hash_is_of_the_value_not_its_spelling() -> None:
    one = [{"value": "A", "language_tag": "de_DE", "marketplace_id": DE}]
    other_order = [{"marketplace_id": DE, "language_tag": "de_DE", "value": "A"}]
    assert attribute_hash(one) == attribute_hash(other_order)
    assert attribute_hash(one) != attribute_hash([dict(one[0], value="B")])
    assert attribute_hash(one) != attribute_hash([dict(one[0], language_tag="en_GB")])
    assert len(attribute_hash(one)) == 32


def test_the_schema_check_names_sku_attribute_and_rule() -> None:
    wanted = {
        "item_name": [_element("Classic Cushion Cover XL")],  # 24 characters: over 20
        "bullet_point": [_element("a"), _element("b"), _element("c")],  # 3 values: over 2
        "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}],  # not in the schema
    }
    errors = check_patch(plan_patch("HOM-10001", DE, "HOME", wanted, {}), SCHEMA)
    assert errors == [
        CatalogError("HOM-10001", DE, "bullet_point", "maxItems 2", "3 values at /bullet_point"),
        CatalogError("HOM-10001", DE, "item_name", "maxLength 20", "24 characters at /item_name/0/value"),
    ]
    assert errors[1].message == (
        f"SKU HOM-10001 in {DE}: item_name: maxLength 20 (24 characters at /item_name/0/value)"
    )


def test_the_schema_check_knows_the_marketplaces_languages_and_the_required_selectors() -> None:
    wanted = {"item_name": [_element("Knife", tag="fr_FR"), {"value": "Knife", "language_tag": "de_DE"}]}
    errors = check_patch(plan_patch("KIT-10002", DE, "KITCHEN", wanted, {}), SCHEMA)
    assert [(e.attribute, e.rule, e.detail) for e in errors] == [  # in path order
        ("item_name", "maxItems 1", "2 values at /item_name"),
        ("item_name", "enum", "'fr_FR' is not one of de_DE, en_GB at /item_name/0/language_tag"),
        ("item_name", "required", "'marketplace_id' is a required property at /item_name/1"),
    ]
    good = {"item_name": [_element("Chef Knife")]}
    assert check_patch(plan_patch("KIT-10002", DE, "KITCHEN", good, {}), SCHEMA) == []
