"""Available-to-sell, prices and deltas (sync/inventory.py), every expected value worked by hand."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from sync.inventory import (
    SHIPPED_INVENTORY,
    BufferRule,
    InventorySettingsError,
    ItemFacts,
    KnownListing,
    Rounding,
    checked_against,
    load_inventory_settings,
    parse_inventory_settings,
    plan_listing,
    skus_to_sync,
)
from sync.routing import load_routing

US, DE, UK = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1F83G8C2ARO7P"

SETTINGS = parse_inventory_settings(
    {
        "review_percent": 20,
        "buffers": {
            "default": {"units": 2, "percent": 10},
            "item_groups": {"TOYS": {"percent": 25}},
            "skus": {"SKU-FIXED": {"units": 7}},
        },
        "marketplaces": {
            "US": {"warehouses": ["100"], "price_list": "AMZUSD", "rounding": {"ends_in": "0.99"}},
            "DE": {"warehouses": ["100", "200"], "price_list": "AMZEUR", "rounding": {"nearest": "0.05"}},
            "UK": {"warehouses": ["200"]},
        },
    },
    "test",
)
RELEASED = ItemFacts("A1", "20", "HOME")
MFN = KnownListing("HOME", "MFN", quantity=None, price=None)


def plan(sku: str = "SKU-1", marketplace: str = US, item: ItemFacts | None = RELEASED, **kwargs: object):  # type: ignore[no-untyped-def]  # test helper
    balances = kwargs.pop("balances", {"100": Decimal(40)})
    price = kwargs.pop("price", Decimal("10.00"))
    known = kwargs.pop("known", MFN)
    return plan_listing(SETTINGS, sku, marketplace, item, "A1", balances, price, known, **kwargs)  # type: ignore[arg-type]  # test helper


@pytest.mark.parametrize(
    ("rule", "allocatable", "buffer"),
    [
        (BufferRule(units=2, percent=Decimal(10)), 40, 4),  # 10% of 40 = 4 > 2
        (BufferRule(units=2, percent=Decimal(10)), 15, 2),  # 10% of 15 = 1.5 -> 2 (up); equals 2
        (BufferRule(units=2, percent=Decimal(10)), 11, 2),  # 1.1 -> 2
        (BufferRule(units=0, percent=Decimal(10)), 11, 2),  # rounded up: 1.1 -> 2
        (BufferRule(units=5), 100, 5),
        (BufferRule(percent=Decimal("12.5")), 8, 1),  # exactly 1
        (BufferRule(), 9, 0),
    ],
)
def test_buffer_is_the_larger_of_units_and_the_percentage_rounded_up(
    rule: BufferRule, allocatable: int, buffer: int
) -> None:
    assert rule.buffer(allocatable) == buffer


def test_available_to_sell_per_marketplace_warehouses_minus_buffer() -> None:
    # US counts 100 only: 40 - max(2, 4) = 36.
    assert plan(balances={"100": Decimal(40), "200": Decimal(100)}).quantity == 36
    # DE counts 100 and 200: 40 + 100 = 140 - max(2, 14) = 126.
    assert plan(marketplace=DE, balances={"100": Decimal(40), "200": Decimal(100)}).quantity == 126
    # Fractions of a unit are not sellable: 12.9 -> 12 - max(2, 1.2 -> 2) = 10.
    assert plan(balances={"100": Decimal("12.9")}).quantity == 10


def test_buffer_rule_precedence_sku_then_item_group_then_default() -> None:
    toys = ItemFacts("A1", "20", "TOYS")
    assert plan(item=toys, balances={"100": Decimal(40)}).quantity == 30  # 25% of 40 = 10
    assert plan(sku="SKU-FIXED", item=toys, balances={"100": Decimal(40)}).quantity == 33  # units 7 wins over group


def test_floored_at_zero_and_zero_for_unsellable_items() -> None:
    assert plan(balances={"100": Decimal(1)}).quantity == 0  # 1 - 2
    blocked = plan(item=ItemFacts("A1", "90", "HOME"), balances={"100": Decimal(500)})
    assert blocked.quantity == 0 and blocked.notes == () and blocked.send_quantity
    missing_item = plan(item=None)
    assert missing_item.quantity == 0 and "no M3 item" in missing_item.notes[0]
    negative = plan(balances={"100": Decimal(-3)})
    assert negative.quantity == 0 and "negative allocatable balance -3" in negative.notes[0]
    nowhere = plan(balances={"300": Decimal(50)})
    assert nowhere.quantity == 0 and "no balance in warehouse(s) 100" in nowhere.notes[0]


@pytest.mark.parametrize(
    ("rounding", "price", "expected"),
    [
        (Rounding(ends_in=Decimal("0.99")), "12.34", "12.99"),
        (Rounding(ends_in=Decimal("0.99")), "12.99", "12.99"),
        (Rounding(ends_in=Decimal("0.99")), "13.00", "13.99"),
        (Rounding(ends_in=Decimal("0.95")), "12.96", "13.95"),
        (Rounding(nearest=Decimal("0.05")), "12.32", "12.30"),
        (Rounding(nearest=Decimal("0.05")), "12.33", "12.35"),
        (Rounding(nearest=Decimal("0.05")), "12.325", "12.35"),  # 246.5 -> 247 (half up)
        (Rounding(), "12.34", "12.34"),
    ],
)
def test_rounding_rules(rounding: Rounding, price: str, expected: str) -> None:
    assert rounding.apply(Decimal(price)) == Decimal(expected)


def test_price_in_currency_decimals_rounded_per_marketplace() -> None:
    us = plan(price=Decimal("19.4"))  # ends_in .99: 19.40 -> 19.99
    assert us.price == Decimal("19.99") and str(us.price) == "19.99" and us.send_price
    de = plan(marketplace=DE, price=Decimal("19.4349"), balances={"100": Decimal(5)})  # 19.43 -> 19.45
    assert de.price == Decimal("19.45") and de.currency == "EUR"
    uk = plan(marketplace=UK, balances={"200": Decimal(5)})  # no price list: prices left alone
    assert uk.price is None and not uk.send_price and uk.held == ()


def test_price_review_hold_zero_and_missing_prices() -> None:
    known = KnownListing("HOME", "MFN", quantity=36, price=Decimal("10.99"))
    # 10.99 -> 12.99 is +18.2%: within 20%, sent; the quantity is unchanged.
    within = plan(price=Decimal("12.50"), known=known)
    assert within.send_price and not within.send_quantity and within.outcome == "sent"
    # 10.99 -> 13.99 is +27.3%: held, and nothing else changed.
    held = plan(price=Decimal("13.10"), known=known)
    assert not held.send_price and held.price is None and held.outcome == "held"
    assert held.held == ("price 10.99 -> 13.99 USD changes 27.3% (more than 20%): held for review",)
    # A held price does not hold the quantity: 50 - 5 = 45 is sent.
    both = plan(price=Decimal("13.10"), known=known, balances={"100": Decimal(50)})
    assert both.send_quantity and not both.send_price and both.outcome == "sent" and both.held
    zero = plan(marketplace=DE, price=Decimal("0.001"), balances={"100": Decimal(5)})
    assert not zero.send_price and "not positive" in zero.held[0]
    missing = plan(price=None)
    assert not missing.send_price and missing.held == ("no price for USD in M3 price list AMZUSD",)


ITEM_PRICED = parse_inventory_settings(
    {
        "marketplaces": {
            "DE": {"warehouses": ["100"], "price_source": "item", "rounding": {"ends_in": "0.99"}},
            "UK": {"warehouses": ["100"], "price_source": "item"},
            "US": {"warehouses": ["100"], "price_source": "price_list", "price_list": "AMZUSD"},
        },
    },
    "test",
)


def item_priced(marketplace: str, price: Decimal | None, currency: str | None):  # type: ignore[no-untyped-def]  # test helper
    return plan_listing(
        ITEM_PRICED, "SKU-1", marketplace, RELEASED, "A1", {"100": Decimal(40)}, price, MFN, price_currency=currency
    )


def test_the_price_source_is_a_price_list_or_the_items_sales_price() -> None:
    assert [m.price_source for m in ITEM_PRICED.marketplaces.values()] == ["item", "item", "price_list"]
    assert [m.price_source for m in SETTINGS.marketplaces.values()] == ["price_list", "price_list", None]
    # The item's sales price in EUR (24.10) sells in DE, rounded up to .99: 24.99.
    de = item_priced(DE, Decimal("24.10"), "EUR")
    assert (de.price, de.send_price, de.held) == (Decimal("24.99"), True, ())
    # UK sells in GBP: a EUR sales price is not published there (no conversion), it is held.
    uk = item_priced(UK, Decimal("24.10"), "EUR")
    assert (uk.price, uk.send_price, uk.outcome) == (None, False, "sent")  # the quantity 40 - 4 still goes
    assert uk.held == ("the M3 item's sales price (MMS200MI) is in EUR, not GBP",)
    # An item without a sales price, or with a zero one, holds the price as a price list's would.
    assert item_priced(DE, None, "EUR").held == ("no price for EUR in the M3 item's sales price (MMS200MI)",)
    zero = item_priced(DE, Decimal(0), "EUR")  # not rounded up into 0.99 by ends_in
    assert (zero.price, zero.send_price) == (None, False)
    assert zero.held == ("price 0.00 EUR in the M3 item's sales price (MMS200MI) is not positive",)
    # A price list's marketplace ignores the item's price: the list's price, in its currency.
    us = item_priced(US, Decimal("12.00"), None)
    assert (us.price, us.send_price) == (Decimal("12.00"), True)


def test_deltas_only_full_sends_everything_and_fba_never() -> None:
    same = KnownListing("HOME", "MFN", quantity=36, price=Decimal("10.99"))
    unchanged = plan(known=same)
    assert (unchanged.outcome, unchanged.patches()) == ("unchanged", ())
    full = plan(known=same, full=True)
    assert [p["path"] for p in full.patches()] == [
        "/attributes/fulfillment_availability",
        "/attributes/purchasable_offer",
    ]
    fba = plan(known=KnownListing("HOME", "AFN", quantity=3, price=Decimal("1.00")), full=True)
    assert fba.outcome == "fba" and fba.patches() == ()


def test_patches_are_amazons_json_patch_shape() -> None:
    changed = plan(known=KnownListing("TOY", "MFN", quantity=1, price=Decimal("9.99")))
    assert changed.product_type == "TOY"
    assert changed.patches() == (
        {
            "op": "merge",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 36}],
        },
        {
            "op": "merge",
            "path": "/attributes/purchasable_offer",
            "value": [
                {
                    "marketplace_id": US,
                    "currency": "USD",
                    "our_price": [{"schedule": [{"value_with_tax": Decimal("10.99")}]}],
                }
            ],
        },
    )


def test_skus_to_sync_map_as_order_sync_does() -> None:
    routing = replace(load_routing(None), items=MappingProxyType({"HOM-1": "A1", "TOY-2": "A2"}))
    # Every mapped SKU, and A3 (a balance no SKU maps to) as its own SKU; A1 is HOM-1's.
    assert skus_to_sync(SETTINGS, routing, ["A1", "A2", "A3"]) == {"A3": "A3", "HOM-1": "A1", "TOY-2": "A2"}
    only = parse_inventory_settings({"skus": ["TOY-2", "A9"], "marketplaces": {"US": {"warehouses": ["100"]}}}, "t")
    assert skus_to_sync(only, routing, ["A1"]) == {"A9": "A9", "TOY-2": "A2"}


def test_home_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    shipped = load_inventory_settings(tmp_path)
    assert shipped.source == str(SHIPPED_INVENTORY) and len(shipped.marketplaces) == 4
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"marketplaces": {"UK": {"warehouses": ["100"]}}}))
    own = load_inventory_settings(tmp_path)
    assert list(own.marketplaces) == [UK] and own.default_buffer == BufferRule()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"marketplaces": {}}, "test: marketplaces: at least one marketplace must be configured"),
        ({"marketplaces": {"XX": {"warehouses": ["100"]}}}, "test: marketplaces.XX: unknown marketplace code"),
        ({"marketplaces": {"US": {"warehouses": [100]}}}, "test: marketplaces.US.warehouses: must list"),
        ({"marketplaces": {"US": {"warehouses": ["100"], "rounding": {"ends_in": 1.5}}}}, "ends_in: must be the cents"),
        ({"marketplaces": {"US": {"warehouses": ["100"]}}, "buffers": {"default": {"units": -1}}}, "units: must be"),
        ({"marketplaces": {"US": {"warehouses": ["100"]}}, "review_percent": 0}, "review_percent: must be more than 0"),
        ({"marketplaces": {"US": {"warehouses": ["100"]}}, "colour": 1}, "test: colour: unknown key"),
        (
            {"marketplaces": {"US": {"warehouses": ["100"], "price_source": "list"}}},
            "test: marketplaces.US.price_source: must be one of price_list, item",
        ),
        (
            {"marketplaces": {"US": {"warehouses": ["100"], "price_source": "item", "price_list": "AMZUSD"}}},
            "test: marketplaces.US.price_list: give a price list with price_source: price_list",
        ),
        (
            {"marketplaces": {"US": {"warehouses": ["100"], "price_source": "price_list"}}},
            "test: marketplaces.US.price_list: give a price list with price_source: price_list",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(document: dict, message: str) -> None:
    with pytest.raises(InventorySettingsError) as bad:
        parse_inventory_settings(document, "test")
    assert message in str(bad.value) and "\n" not in str(bad.value)


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("marketplaces:\n  US: [\n")
    with pytest.raises(InventorySettingsError, match=r"inventory.yaml: line \d+, column \d+: not valid YAML"):
        load_inventory_settings(tmp_path)


def test_a_patch_breaking_the_product_types_schema_is_held_and_the_other_still_goes() -> None:
    """The SP-API sandbox's HOME schema for Amazon.com (sandbox/spapi/definitions.py: prices up to
    100,000; the same schema the sandbox's patchListingsItem checks): 150,000.00 -> 150,000.99 after
    the .99 rounding breaks it, so the price is held; the quantity (40 - 4 = 36) is sent anyway."""
    from sandbox.spapi.definitions import product_type_schema

    schema = product_type_schema("HOME", US, enforced=False)
    fine = plan(price=Decimal("10.00"))
    assert checked_against(fine, schema) == fine
    dear = plan(price=Decimal("150000.00"))
    assert (dear.send_quantity, dear.send_price, dear.price) == (True, True, Decimal("150000.99"))
    checked = checked_against(dear, schema)
    assert (checked.send_quantity, checked.send_price, checked.quantity) == (True, False, 36)
    assert checked.held == (
        "SKU-1 in ATVPDKIKX0DER: purchasable_offer breaks product type HOME's schema: maximum 100000 "
        "(value 150000.99 at /purchasable_offer/0/our_price/0/schedule/0/value_with_tax)",
    )
    assert [p["path"] for p in checked.patches()] == ["/attributes/fulfillment_availability"]
