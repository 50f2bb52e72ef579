"""Amazon order -> M3 order mapping and routing (sync/order_mapping.py, sync/routing.py).

Every expected value is worked out by hand from the input in the test."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.m3 import OrderLineRequest, OrderRequest
from connectors.m3.client import format_value
from connectors.m3.records import OrderAddress
from sync.order_mapping import (
    ADDRESS_TOO_LONG,
    BAD_VALUE,
    MISSING_FIELD,
    NAME_TOO_LONG,
    NOT_ROUTED,
    UNEXPECTED_CURRENCY,
    UNKNOWN_SKU,
    ZERO_QUANTITY,
    M3OrderState,
    MappedAddress,
    MappedLine,
    MappedOrder,
    OrderAction,
    OrderMappingError,
    SkippedOrder,
    decide_status,
    fit_lines,
    m3_order_state,
    map_order,
    unit_price,
)
from sync.routing import SHIPPED_ROUTING, RoutingSettings, RoutingSettingsError, load_routing, parse_routing

DE = "A1PA6795UKMFR9"
US = "ATVPDKIKX0DER"
ORDER_ID = "302-1234567-7654321"


def routing(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "company_time_zone": "Europe/Berlin",
        "shipping_item": "FREIGHT",
        "items": {"SKU-RED": "RED01"},
        "marketplaces": {
            "DE": {
                "customer": "AMZDE",
                "currency": "EUR",
                "facility": "100",
                "mfn": {"warehouse": "100", "order_type": "AMZ"},
                "afn": {"warehouse": "FBA", "order_type": "AFN"},
            },
            "US": {
                "customer": "AMZUS",
                "currency": "USD",
                "facility": "200",
                "mfn": {"warehouse": "200", "order_type": "AMU"},
                "afn": "skip",
            },
        },
    }
    doc.update(overrides)
    return doc


SETTINGS = parse_routing(routing(), "test.yaml")


def eur(amount: str) -> dict[str, str]:
    return {"CurrencyCode": "EUR", "Amount": amount}


def usd(amount: str) -> dict[str, str]:
    return {"CurrencyCode": "USD", "Amount": amount}


def amazon_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "AmazonOrderId": ORDER_ID,
        "MarketplaceId": DE,
        "FulfillmentChannel": "MFN",
        "OrderStatus": "Unshipped",
        "PurchaseDate": "2026-03-01T10:00:00Z",
        "ShippingAddress": {
            "Name": "Erika Mustermann",
            "AddressLine1": "Heidestrasse 17",
            "City": "Koeln",
            "PostalCode": "51147",
            "CountryCode": "DE",
            "StateOrRegion": "NRW",
            "Phone": "+49 221 1234567",
        },
    }
    order.update(overrides)
    return order


def item(sku: str = "SKU-RED", quantity: int = 1, price: str = "19.99", **money: dict[str, str]) -> dict[str, Any]:
    return {
        "OrderItemId": f"item-{sku}",
        "SellerSKU": sku,
        "QuantityOrdered": quantity,
        "ItemPrice": eur(price),
        **money,
    }


def mapped(result: object) -> MappedOrder:
    assert isinstance(result, MappedOrder), result
    return result


def problem_kinds(result: object) -> list[str]:
    assert isinstance(result, OrderMappingError), result
    return [p.kind for p in result.problems]


# -- prices, promotions, shipping, lines -------------------------------------------------------------
def test_single_line_head_and_sku_mapping() -> None:
    order = mapped(map_order(amazon_order(), [item()], SETTINGS, "brief"))
    assert (order.cuno, order.customer_order_ref, order.your_reference) == ("AMZDE", ORDER_ID, ORDER_ID)
    assert (order.order_type, order.warehouse, order.facility, order.currency) == ("AMZ", "100", "100", "EUR")
    assert order.order_date == date(2026, 3, 1)
    # SKU-RED maps to RED01; one piece at 19.99, no discount, no shipping line.
    assert order.lines == (MappedLine("RED01", 1, Decimal("19.99")),)


def test_sku_not_in_the_mapping_is_its_own_item_number() -> None:
    order = mapped(map_order(amazon_order(), [item("BLUE-7")], SETTINGS, "brief"))
    assert order.lines[0].itno == "BLUE-7"


def test_unit_price_from_a_line_total_with_quantity_3() -> None:
    # 29.97 / 3 = 9.99 exactly: no rounding discount.
    exact = mapped(map_order(amazon_order(), [item(quantity=3, price="29.97")], SETTINGS, "brief"))
    assert exact.lines == (MappedLine("RED01", 3, Decimal("9.99")),)
    # 10.00 / 3 = 3.333..: rounded up to 3.34; 3 x 3.34 = 10.02, so 0.02 goes on the discount: net 10.00.
    uneven = mapped(map_order(amazon_order(), [item(quantity=3, price="10.00")], SETTINGS, "brief"))
    assert uneven.lines == (MappedLine("RED01", 3, Decimal("3.34"), Decimal("0.02")),)


def test_unit_price_rounding_rule() -> None:
    assert unit_price(Decimal("10.00"), 3, 2) == (Decimal("3.34"), Decimal("0.02"))
    assert unit_price(Decimal("20.00"), 3, 2) == (Decimal("6.67"), Decimal("0.01"))  # 6.666.. up; 20.01 - 20.00
    assert unit_price(Decimal("1000"), 3, 0) == (Decimal("334"), Decimal("2"))  # JPY: no minor unit
    assert unit_price(Decimal("5.00"), 1, 2) == (Decimal("5.00"), Decimal("0.00"))


def test_promotion_goes_onto_the_line_discount() -> None:
    order = mapped(
        map_order(amazon_order(), [item(quantity=2, price="40.00", PromotionDiscount=eur("5.00"))], SETTINGS, "brief")
    )
    assert order.lines == (MappedLine("RED01", 2, Decimal("20.00"), Decimal("5.00")),)


def test_promotion_and_rounding_add_up_on_the_discount() -> None:
    # 10.00 / 3 -> 3.34 (+0.02) and a 1.50 promotion: discount 1.52, net 3 x 3.34 - 1.52 = 8.50 = 10.00 - 1.50.
    order = mapped(
        map_order(amazon_order(), [item(quantity=3, price="10.00", PromotionDiscount=eur("1.50"))], SETTINGS, "brief")
    )
    assert order.lines == (MappedLine("RED01", 3, Decimal("3.34"), Decimal("1.52")),)


def test_multi_line_with_shipping_line() -> None:
    items = [
        item("SKU-RED", 2, "30.00", ShippingPrice=eur("3.00"), ShippingDiscount=eur("1.00")),
        item("BLUE-7", 1, "12.50", ShippingPrice=eur("2.49"), PromotionDiscount=eur("2.50")),
    ]
    order = mapped(map_order(amazon_order(), items, SETTINGS, "brief"))
    assert order.lines == (
        MappedLine("RED01", 2, Decimal("15.00")),
        MappedLine("BLUE-7", 1, Decimal("12.50"), Decimal("2.50")),
        # Shipping 3.00 + 2.49 = 5.49 on the configured non-stock item, less the 1.00 shipping discount.
        MappedLine("FREIGHT", 1, Decimal("5.49"), Decimal("1.00")),
    )


def test_zero_shipping_adds_no_line() -> None:
    order = mapped(map_order(amazon_order(), [item(ShippingPrice=eur("0.00"))], SETTINGS, "brief"))
    assert [line.itno for line in order.lines] == ["RED01"]


# -- dates ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("purchase", "zone", "expected"),
    [
        ("2026-03-01T22:59:59Z", "Europe/Berlin", date(2026, 3, 1)),  # CET: 23:59:59 on the 1st
        ("2026-03-01T23:30:00Z", "Europe/Berlin", date(2026, 3, 2)),  # CET: 00:30 on the 2nd
        ("2026-07-01T22:30:00Z", "Europe/Berlin", date(2026, 7, 2)),  # CEST (+2): 00:30 on the 2nd
        ("2026-07-01T21:30:00Z", "Europe/Berlin", date(2026, 7, 1)),  # CEST: 23:30 on the 1st
        ("2026-03-02T03:30:00Z", "America/New_York", date(2026, 3, 1)),  # EST (-5): 22:30 on the 1st
        ("2026-03-02T05:30:00Z", "America/New_York", date(2026, 3, 2)),  # EST: 00:30 on the 2nd
        ("2026-03-01T20:00:00-08:00", "Europe/Berlin", date(2026, 3, 2)),  # = 04:00Z on the 2nd, 05:00 CET
        ("2026-03-01T20:00:00-08:00", "America/New_York", date(2026, 3, 1)),  # = 23:00 EST on the 1st
        ("2026-03-01T10:00:00.123Z", "Europe/Berlin", date(2026, 3, 1)),  # fractional seconds
    ],
)
def test_purchase_date_in_the_company_time_zone(purchase: str, zone: str, expected: date) -> None:
    settings = parse_routing(routing(company_time_zone=zone), "test.yaml")
    order = mapped(map_order(amazon_order(PurchaseDate=purchase), [item()], settings, "brief"))
    assert order.order_date == expected


# -- both profiles, as the connector's requests ----------------------------------------------------
def connector_request(order: MappedOrder) -> OrderRequest:
    """What the flow will do: the connector's own OrderRequest from the mapped order, field for field."""
    head = order.request_fields()
    head["lines"] = tuple(OrderLineRequest(**vars(line)) for line in order.lines)
    if order.delivery_address is not None:
        head["delivery_address"] = OrderAddress(**vars(order.delivery_address))
    return OrderRequest(**head)


def test_mapped_records_have_the_connector_request_fields() -> None:
    # ``returned`` marks a return order's lines, which the refund credit builds (sync/credits.py), never order sync.
    assert [f.name for f in fields(MappedLine)] == [f.name for f in fields(OrderLineRequest) if f.name != "returned"]
    assert [f.name for f in fields(MappedAddress)] == [f.name for f in fields(OrderAddress)]
    assert [f.name for f in fields(MappedOrder) if f.name != "profile"] == [f.name for f in fields(OrderRequest)]


def test_brief_profile_request_has_no_address() -> None:
    order = mapped(map_order(amazon_order(), [item(quantity=3, price="10.00")], SETTINGS, "brief"))
    assert order.profile == "brief" and order.delivery_address is None
    request = connector_request(order)
    assert request.head_to_m3() == {
        "CUNO": "AMZDE",
        "ORTP": "AMZ",
        "FACI": "100",
        "WHLO": "100",
        "ORDT": date(2026, 3, 1),
        "RLDT": None,
        "CUOR": ORDER_ID,
        "YREF": ORDER_ID,
        "CUCD": "EUR",
    }
    assert [line.to_m3() for line in request.lines] == [
        {"ITNO": "RED01", "ORQT": 3, "SAPR": Decimal("3.34"), "DIA1": Decimal("0.02"), "WHLO": None, "DWDT": None}
    ]


def test_order_date_reaches_m3_as_yyyymmdd() -> None:
    # 23:30 UTC on 1 March is 00:30 on 2 March in Berlin: M3 gets ORDT 20260302.
    order = mapped(map_order(amazon_order(PurchaseDate="2026-03-01T23:30:00Z"), [item()], SETTINGS, "brief"))
    assert format_value(connector_request(order).head_to_m3()["ORDT"]) == "20260302"


def test_cloudsuite_profile_request_carries_the_delivery_address() -> None:
    order = mapped(map_order(amazon_order(), [item()], SETTINGS, "cloudsuite"))
    request = connector_request(order)
    assert request.head_to_m3()["CUOR"] == ORDER_ID
    address = request.delivery_address
    assert address is not None
    assert (address.name, address.address1, address.address2, address.address3) == (
        "Erika Mustermann",
        "Heidestrasse 17",
        None,
        None,
    )
    assert (address.postal_code, address.town, address.country, address.phone) == (
        "51147",
        "Koeln",
        "DE",
        "+49 221 1234567",
    )
    assert address.state is None  # "NRW" is no two-letter state code for ECAR
    assert "Erika" not in repr(order)  # buyer data never in a repr


def test_us_state_code_goes_to_ecar() -> None:
    order = amazon_order(
        MarketplaceId=US,
        ShippingAddress={"Name": "J Doe", "AddressLine1": "1 Main St", "City": "Austin", "StateOrRegion": "TX"},
    )
    mapped_order = mapped(map_order(order, [item(ItemPrice=usd("5.00"))], SETTINGS, "cloudsuite"))
    assert mapped_order.delivery_address is not None and mapped_order.delivery_address.state == "TX"
    assert (mapped_order.cuno, mapped_order.order_type, mapped_order.warehouse) == ("AMZUS", "AMU", "200")


# -- names and addresses over 36-character lines ---------------------------------------------------
LONG_NAME = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"  # 50 characters


def test_fit_lines_splits_at_word_boundaries() -> None:
    assert len(LONG_NAME) == 50
    assert fit_lines([LONG_NAME]) == ("Maximiliane Alexandra von", "Hohenzollern-Sigmaringen")
    assert fit_lines(["a  b"]) == ("a b",)
    assert fit_lines(["x" * 37]) is None  # one word longer than a line: cannot split without cutting
    assert fit_lines(["x" * 36]) == ("x" * 36,)


def test_long_name_spills_onto_the_next_line() -> None:
    address = {"Name": LONG_NAME, "AddressLine1": "Schlossplatz 1", "AddressLine2": "Hinterhaus", "City": "Berlin"}
    order = mapped(map_order(amazon_order(ShippingAddress=address), [item()], SETTINGS, "cloudsuite"))
    assert order.delivery_address is not None
    a = order.delivery_address
    assert (a.name, a.address1, a.address2, a.address3) == (
        "Maximiliane Alexandra von",
        "Hohenzollern-Sigmaringen",
        "Schlossplatz 1",
        "Hinterhaus",
    )
    connector_request(order)  # the connector's length checks accept every line


def test_long_address_line_splits_over_the_next_line() -> None:
    street = "Am Alten Kirchplatz neben der Baeckerei 12"  # 42 characters: 36 would cut "Baeckerei"
    address = {"Name": "Erika Mustermann", "AddressLine1": street, "City": "Berlin"}
    order = mapped(map_order(amazon_order(ShippingAddress=address), [item()], SETTINGS, "cloudsuite"))
    assert order.delivery_address is not None
    assert (order.delivery_address.address1, order.delivery_address.address2) == (
        "Am Alten Kirchplatz neben der",
        "Baeckerei 12",
    )


def test_name_too_long_for_every_line_is_an_error_not_a_cut() -> None:
    # 4 words of 30 characters need 4 lines; the name may use 3 (CUA1 stays for the street).
    name = " ".join(c * 30 for c in "abcd")
    result = map_order(
        amazon_order(ShippingAddress={"Name": name, "AddressLine1": "Street 1"}), [item()], SETTINGS, "cloudsuite"
    )
    assert problem_kinds(result) == [NAME_TOO_LONG]
    assert isinstance(result, OrderMappingError) and "a" * 30 not in result.message  # no buyer data
    # One unbreakable word over 36 characters cannot be split at a word boundary either.
    result = map_order(
        amazon_order(ShippingAddress={"Name": "N" * 37, "AddressLine1": "Street 1"}), [item()], SETTINGS, "cloudsuite"
    )
    assert problem_kinds(result) == [NAME_TOO_LONG]


def test_name_and_address_together_too_long_is_an_error() -> None:
    address = {"Name": LONG_NAME, "AddressLine1": "Line one", "AddressLine2": "Line two", "AddressLine3": "Three"}
    # Name 2 lines + 3 address lines = 5 > CUNM, CUA1-CUA3.
    result = map_order(amazon_order(ShippingAddress=address), [item()], SETTINGS, "cloudsuite")
    assert problem_kinds(result) == [ADDRESS_TOO_LONG]


def test_address_without_line1_uses_the_lines_given() -> None:
    address = {"Name": "E M", "AddressLine1": "", "AddressLine2": "c/o Firma GmbH", "AddressLine3": "Weg 2"}
    order = mapped(map_order(amazon_order(ShippingAddress=address), [item()], SETTINGS, "cloudsuite"))
    assert order.delivery_address is not None
    assert (order.delivery_address.address1, order.delivery_address.address2) == ("c/o Firma GmbH", "Weg 2")


def test_town_longer_than_m3_allows_is_an_error() -> None:
    address = {"Name": "E M", "AddressLine1": "Street 1", "City": "Villingen-Schwenningen"}  # 22 > 20
    result = map_order(amazon_order(ShippingAddress=address), [item()], SETTINGS, "cloudsuite")
    assert problem_kinds(result) == [ADDRESS_TOO_LONG]


def test_brief_profile_does_not_need_the_address() -> None:
    # The brief profile sends no address, so a missing or unfit one is no reason to refuse the order.
    order = map_order(amazon_order(ShippingAddress=None), [item()], SETTINGS, "brief")
    assert isinstance(order, MappedOrder)


def test_cloudsuite_mfn_without_address_is_an_error() -> None:
    result = map_order(amazon_order(ShippingAddress=None), [item()], SETTINGS, "cloudsuite")
    assert problem_kinds(result) == [MISSING_FIELD]


# -- FBA routing -----------------------------------------------------------------------------------
def test_fba_order_routed_to_the_fba_warehouse_without_address() -> None:
    order = mapped(
        map_order(amazon_order(FulfillmentChannel="AFN", ShippingAddress=None), [item()], SETTINGS, "cloudsuite")
    )
    assert (order.warehouse, order.order_type, order.delivery_address) == ("FBA", "AFN", None)


def test_fba_order_skipped_by_configuration() -> None:
    result = map_order(
        amazon_order(MarketplaceId=US, FulfillmentChannel="AFN"), [item(ItemPrice=usd("5.00"))], SETTINGS, "brief"
    )
    assert isinstance(result, SkippedOrder) and result.amazon_order_id == ORDER_ID


# -- status decisions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "m3_state", "action"),
    [
        ("Pending", M3OrderState.ABSENT, OrderAction.WAIT),
        ("PendingAvailability", M3OrderState.ABSENT, OrderAction.WAIT),
        ("Unshipped", M3OrderState.ABSENT, OrderAction.CREATE),
        ("Shipped", M3OrderState.ABSENT, OrderAction.CREATE),
        ("PartiallyShipped", M3OrderState.ABSENT, OrderAction.CREATE),
        ("InvoiceUnconfirmed", M3OrderState.ABSENT, OrderAction.CREATE),
        ("Unshipped", M3OrderState.OPEN, OrderAction.NOTHING),
        ("Shipped", M3OrderState.DELIVERED, OrderAction.NOTHING),
        ("Canceled", M3OrderState.ABSENT, OrderAction.NOTHING),
        ("Canceled", M3OrderState.OPEN, OrderAction.CANCEL),
        ("Canceled", M3OrderState.DELIVERED, OrderAction.EXCEPTION),
        ("Canceled", M3OrderState.PICKING, OrderAction.EXCEPTION),
        ("Canceled", M3OrderState.CANCELLED, OrderAction.NOTHING),
        ("Unfulfillable", M3OrderState.ABSENT, OrderAction.EXCEPTION),
        ("SomethingNew", M3OrderState.ABSENT, OrderAction.EXCEPTION),
    ],
)
def test_status_decision(status: str, m3_state: M3OrderState, action: OrderAction) -> None:
    assert decide_status(status, m3_state).action is action


@pytest.mark.parametrize(
    ("progress", "state"),
    [
        (None, M3OrderState.CANCELLED),  # GetHead: no such order (deleted)
        (("", ""), M3OrderState.OPEN),  # a head whose lines are gone: nothing shipped, the head goes too
        (("22", "22"), M3OrderState.OPEN),
        (("22", "33"), M3OrderState.OPEN),
        (("33", "33"), M3OrderState.OPEN),
        (("33", "44"), M3OrderState.PICKING),
        (("44", "44"), M3OrderState.PICKING),
        (("22", "66"), M3OrderState.DELIVERED),  # one line delivered is enough
        (("66", "66"), M3OrderState.DELIVERED),
        (("77", "77"), M3OrderState.DELIVERED),
        (("22", "99"), M3OrderState.OPEN),  # the lines left decide
        (("90", "99"), M3OrderState.CANCELLED),
    ],
)
def test_m3_order_state_from_the_heads_line_statuses(progress: tuple[str, str] | None, state: M3OrderState) -> None:
    assert m3_order_state(progress) is state


def test_cancel_reasons_say_what_a_person_does() -> None:
    assert "picking list" in decide_status("Canceled", M3OrderState.PICKING).reason
    assert "delivered" in decide_status("Canceled", M3OrderState.DELIVERED).reason
    assert "already deleted" in decide_status("Canceled", M3OrderState.CANCELLED).reason


# -- bad input: errors as data ---------------------------------------------------------------------
def test_unknown_sku_against_m3_items() -> None:
    result = map_order(amazon_order(), [item(), item("GHOST")], SETTINGS, "brief", known_items={"RED01"})
    assert problem_kinds(result) == [UNKNOWN_SKU]
    assert isinstance(result, OrderMappingError) and "GHOST" in result.message and ORDER_ID in result.message


def test_sku_mapping_to_an_item_number_m3_cannot_hold() -> None:
    assert problem_kinds(map_order(amazon_order(), [item("S" * 16)], SETTINGS, "brief")) == [UNKNOWN_SKU]


def test_quantity_zero() -> None:
    assert problem_kinds(map_order(amazon_order(), [item(quantity=0)], SETTINGS, "brief")) == [ZERO_QUANTITY]


def test_unexpected_currency() -> None:
    result = map_order(amazon_order(), [item(ItemPrice=usd("19.99"))], SETTINGS, "brief")
    assert problem_kinds(result) == [UNEXPECTED_CURRENCY]
    result = map_order(amazon_order(), [item(ShippingPrice=usd("1.00"))], SETTINGS, "brief")
    assert problem_kinds(result) == [UNEXPECTED_CURRENCY]


def test_several_problems_in_one_record() -> None:
    result = map_order(
        amazon_order(PurchaseDate="yesterday"),
        [item(quantity=0), item("B", ItemPrice=usd("1.00"))],
        SETTINGS,
        "brief",
    )
    assert problem_kinds(result) == [BAD_VALUE, ZERO_QUANTITY, UNEXPECTED_CURRENCY]


@pytest.mark.parametrize(
    ("order_changes", "items", "kind"),
    [
        ({"MarketplaceId": "A13V1IB3VIYZZH"}, None, NOT_ROUTED),  # France is not in this routing
        ({"FulfillmentChannel": "XYZ"}, None, BAD_VALUE),
        ({"PurchaseDate": "2026-03-01T10:00:00"}, None, BAD_VALUE),  # no time zone
        ({"PurchaseDate": None}, None, MISSING_FIELD),
        ({"AmazonOrderId": ""}, None, MISSING_FIELD),
        ({}, [], MISSING_FIELD),  # no items
        (
            {},
            [{"OrderItemId": "1", "QuantityOrdered": 1, "ItemPrice": {"CurrencyCode": "EUR", "Amount": "1"}}],
            MISSING_FIELD,
        ),
        ({}, [{"OrderItemId": "1", "SellerSKU": "X", "QuantityOrdered": 1}], MISSING_FIELD),  # no ItemPrice
        ({}, [item(price="abc")], BAD_VALUE),
        ({}, [item(price="-1.00")], BAD_VALUE),
        ({}, [item(quantity=-1)], BAD_VALUE),
        ({}, [item(price="10.005")], BAD_VALUE),  # finer than the cent
        ({}, [item(price="5.00", PromotionDiscount=eur("6.00"))], BAD_VALUE),  # promotion above the line total
    ],
)
def test_bad_input_is_an_error_record(order_changes: dict[str, Any], items: list[Any] | None, kind: str) -> None:
    result = map_order(amazon_order(**order_changes), [item()] if items is None else items, SETTINGS, "brief")
    assert problem_kinds(result) == [kind]


# -- routing settings ------------------------------------------------------------------------------
def test_shipped_routing_matches_the_sandbox_m3() -> None:
    settings = load_routing()
    assert settings.source == str(SHIPPED_ROUTING)
    de = settings.route(DE)
    assert de is not None and de.afn is not None
    assert (de.customer, de.currency, de.facility) == ("AMZDE", "EUR", "100")
    assert (de.mfn.warehouse, de.mfn.order_type, de.afn.warehouse, de.afn.order_type) == ("100", "AMZ", "FBA", "AFN")
    assert settings.shipping_item == "FREIGHT"
    assert settings.item_number("ANY-SKU") == "ANY-SKU"


def test_home_file_overrides_the_shipped_routing(tmp_path: Path) -> None:
    (tmp_path / "order_routing.yaml").write_text(
        "company_time_zone: America/New_York\nshipping_item: SHIP\nitems: {A: B}\n"
        "marketplaces:\n  US: {customer: C1, currency: USD, facility: F1, mfn: {warehouse: W1, order_type: T1}, "
        "afn: skip}\n",
        encoding="utf-8",
    )
    settings = load_routing(tmp_path)
    assert str(settings.company_time_zone) == "America/New_York" and settings.item_number("A") == "B"
    us = settings.route(US)
    assert us is not None and us.afn is None and settings.route(DE) is None
    assert isinstance(load_routing(tmp_path / "nothing-here"), RoutingSettings)  # no file there: shipped one


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"company_time_zone": "Mars/Olympus"}, "test.yaml: company_time_zone: 'Mars/Olympus' is not a known"),
        ({"shipping_item": "F" * 16}, "test.yaml: shipping_item: 'FFFFFFFFFFFFFFFF' is 16 characters, M3 allows 15"),
        ({"marketplaces": {}}, "test.yaml: marketplaces: at least one marketplace"),
        ({"marketplaces": {"XX": {}}}, "test.yaml: marketplaces.XX: unknown marketplace code"),
        ({"color": "red"}, "test.yaml: color: unknown key"),
        ({"items": {"A": ""}}, "test.yaml: items.A: must be an item number"),
    ],
)
def test_bad_routing_names_file_and_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RoutingSettingsError) as caught:
        parse_routing(routing(**change), "test.yaml")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("de_change", "message"),
    [
        ({"customer": "C" * 11}, "test.yaml: marketplaces.DE.customer: 'CCCCCCCCCCC' is 11 characters, M3 allows 10"),
        ({"facility": 100}, "test.yaml: marketplaces.DE.facility: write the code in quotes ('100')"),
        ({"mfn": None}, "test.yaml: marketplaces.DE.mfn: missing"),
        ({"afn": {"warehouse": "FBA"}}, "test.yaml: marketplaces.DE.afn.order_type: missing or empty"),
        ({"afn": "never"}, "test.yaml: marketplaces.DE.afn: must be a mapping"),
        ({"currency": ""}, "test.yaml: marketplaces.DE.currency: missing or empty"),
    ],
)
def test_bad_marketplace_routing_names_the_key(de_change: dict[str, Any], message: str) -> None:
    doc = routing()
    doc["marketplaces"]["DE"].update(de_change)
    with pytest.raises(RoutingSettingsError) as caught:
        parse_routing(doc, "test.yaml")
    assert str(caught.value).startswith(message)


def test_unreadable_routing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "order_routing.yaml"
    path.write_text("marketplaces: [unclosed\n", encoding="utf-8")
    with pytest.raises(RoutingSettingsError) as caught:
        load_routing(tmp_path)
    assert str(caught.value).startswith(f"{path}: line 2") and "not valid YAML" in str(caught.value)
