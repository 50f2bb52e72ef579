"""Customers of orders (issue #14, item 3): ``customers: marketplace`` (default) and ``buyer``, against
the embedded M3 and SP-API sandboxes. Expected values come from the orders seeded here.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from _spapi_fixtures import US, order

from flows.connections import open_connections
from flows.orders_steps import fetch_order
from sandbox.spapi import SpApiStore
from sync.customers import CUSTOMER_ID_KIND, buyer_customer_for, buyer_key
from sync.routing import SHIPPED_ROUTING, RoutingSettingsError, load_routing, parse_routing, routing_path

ITNO = "A10001"  # an item of the sandbox M3's catalog (seed 0)
PURCHASED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
FIRST, SECOND, OTHER_BUYER = "111-4100000-0000001", "111-4100000-0000002", "111-4100000-0000003"
RELAY = "x7k2mq9f4rt8@marketplace.amazon.com"  # an anonymised relay address, as Amazon hands it out


def _order(order_id: str, email: str, hours: int) -> tuple[dict, list[dict]]:
    head, items = order(order_id, PURCHASED + timedelta(hours=hours))
    items[0].update(SellerSKU=ITNO)
    head["BuyerInfo"] = {"BuyerEmail": email, "BuyerName": "Jane Doe"}
    return head, items


def _home(tmp_path: Path, customers: str) -> Path:
    """A sandbox home with three orders: two of one buyer (the e-mail differing in case and spaces),
    one of another; the sandbox's routing file sets ``customers``."""
    with open_connections(tmp_path, sandbox=True, orders=20):
        pass
    routing_file = routing_path(tmp_path, sandbox=True)  # what sandbox runs read (written at seeding)
    routing = yaml.safe_load(routing_file.read_text(encoding="utf-8"))
    routing["customers"] = customers
    routing_file.write_text(yaml.safe_dump(routing), encoding="utf-8")
    seller = json.loads((tmp_path / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    store = SpApiStore(tmp_path / "sandbox" / "spapi")
    try:
        orders = [_order(FIRST, RELAY, 0), _order(SECOND, f" {RELAY.upper()} ", 1), _order(OTHER_BUYER, "q1@x.io", 2)]
        store.seed(orders, [], [], seller)
    finally:
        store.close()
    return tmp_path


def _customer_numbers(home: Path) -> set[str]:
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        rows = connections.m3.client.execute("CRS610MI", "LstByNumber", {}, maxrecs=0)
        return {row["CUNO"] for row in rows}


def test_buyer_mode_creates_one_customer_per_buyer_once_and_uses_it(prefect_api_url: str, tmp_path: Path):
    from flows.orders import order_sync

    home = _home(tmp_path, "buyer")
    before = _customer_numbers(home)
    document = order_sync(sandbox=True, home=str(home))
    assert {e["amazon_order_id"] for e in document["created"]} == {FIRST, SECOND, OTHER_BUYER}
    new = _customer_numbers(home) - before
    assert len(new) == 2  # FIRST and SECOND are one buyer
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        by_order = {e["amazon_order_id"]: e["m3_order"] for e in document["created"]}
        owner = {oid: cuno for oid in by_order for cuno in new if connections.m3.find_order_by_reference(cuno, oid)}
        assert owner[FIRST] == owner[SECOND] != owner[OTHER_BUYER]
        assert connections.m3.find_order_by_reference("AMZUS", FIRST) is None  # not the marketplace's customer
        customer = connections.m3.get_customer(owner[FIRST])
        assert (customer.name, customer.town, customer.country) == (
            "Jane Doe",
            "Seattle",
            "US",
        )  # the fixture's address
        salt = (home / "buyer_key.salt").read_text(encoding="utf-8")
        assert len(salt) == 64  # 32 random bytes, hex
        assert connections.state.m3_id_for(CUSTOMER_ID_KIND, buyer_key(RELAY, salt)) == owner[FIRST]
        assert connections.state.m3_id_for(CUSTOMER_ID_KIND, buyer_key("q1@x.io", salt)) == owner[OTHER_BUYER]
        # a dead letter's replay reads the order by id: with buyers, it finds the same buyer key
        replayed = fetch_order.fn(connections, US, SECOND, buyers=True)
        route = load_routing(home, sandbox=True).route(US)
        assert route is not None
        found = buyer_customer_for(replayed.order, route, salt)
        assert isinstance(found, tuple) and found[0] == buyer_key(RELAY, salt)
        assert (found[1].address.name, found[1].template) == ("Jane Doe", "AMZTMPL")
    assert "Jane Doe" not in json.dumps(document) and RELAY not in json.dumps(document)

    rerun = order_sync(sandbox=True, home=str(home), since=PURCHASED.isoformat())
    assert rerun["counts"]["created"] == 0 and rerun["counts"]["already_in_m3"] == 3
    assert _customer_numbers(home) - before == new  # the rerun created none


def test_buyer_customer_created_but_not_recorded_is_found_in_m3_not_created_again(tmp_path: Path):
    """CRS610MI/Add commits and the connection drops before our record: the run stops (M3 unavailable);
    the next look finds the customer in M3 by the buyer key's prefix (YREF), records it and creates
    the order for it: one customer for the buyer, not two."""
    import httpx

    from connectors.m3 import M3Unavailable
    from flows.orders_steps import AmazonOrder, M3Lookups, buyer_key_salt, sync_order

    home = _home(tmp_path, "buyer")
    routing = load_routing(home, sandbox=True)
    before = _customer_numbers(home)
    head, items = _order(FIRST, RELAY, 0)
    amazon = AmazonOrder(head, tuple(items))
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        faults = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"
        drop = {"drop_after_commit": 1, "transactions": ["CRS610MI/Add"]}
        assert httpx.post(faults, json=drop, timeout=20).status_code == 200
        with pytest.raises(M3Unavailable):
            sync_order(connections, routing, M3Lookups(connections), amazon)
        httpx.delete(faults, timeout=20)
        key = buyer_key(RELAY, buyer_key_salt(home))
        assert connections.state.m3_id_for(CUSTOMER_ID_KIND, key) is None  # not recorded
        [cuno] = _customer_numbers(home) - before  # but M3 made it, with the key's prefix in YREF
        assert connections.m3.client.execute("CRS610MI", "GetBasicData", {"CUNO": cuno})[0]["YREF"] == key[:30]

        result = sync_order(connections, routing, M3Lookups(connections), amazon)
        assert result.outcome == "created"
        assert connections.state.m3_id_for(CUSTOMER_ID_KIND, key) == cuno
        assert connections.m3.find_order_by_reference(cuno, FIRST) == result.orno
    assert _customer_numbers(home) - before == {cuno}  # one customer for the buyer


def test_marketplace_mode_creates_no_customer(prefect_api_url: str, tmp_path: Path):
    from flows.orders import order_sync

    home = _home(tmp_path, "marketplace")
    before = _customer_numbers(home)
    document = order_sync(sandbox=True, home=str(home))
    assert document["counts"]["created"] == 3
    assert _customer_numbers(home) == before
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        assert all(connections.m3.find_order_by_reference("AMZUS", oid) for oid in (FIRST, SECOND, OTHER_BUYER))
    assert not (home / "buyer_key.salt").exists()


def test_buyer_key_is_stable_salted_and_holds_no_clear_email() -> None:
    key = buyer_key(RELAY, "salt-1")
    assert key == buyer_key(f"  {RELAY.upper()}\t", "salt-1")  # trimmed, case-insensitive
    assert key == hashlib.sha256(f"salt-1\n{RELAY}".encode()).hexdigest()  # the documented formula
    assert key != buyer_key(RELAY, "salt-2") and key != buyer_key("other@marketplace.amazon.com", "salt-1")
    assert len(key) == 64 and RELAY.split("@")[0] not in key and "@" not in key
    with pytest.raises(ValueError):
        buyer_key(RELAY, "")


def _routing(**changes: object) -> dict:
    raw = yaml.safe_load(SHIPPED_ROUTING.read_text(encoding="utf-8"))
    raw.update(changes)
    return raw


def test_customers_setting_defaults_to_marketplace_and_bad_values_are_one_line_errors() -> None:
    raw = _routing()
    del raw["customers"]
    assert parse_routing(raw, "r.yaml").customers == "marketplace"
    assert parse_routing(_routing(customers="buyer"), "r.yaml").customers == "buyer"
    with pytest.raises(RoutingSettingsError) as bad:
        parse_routing(_routing(customers="per-buyer"), "r.yaml")
    assert str(bad.value) == "r.yaml: customers: 'per-buyer' is not one of marketplace, buyer"
    no_template = _routing(customers="buyer")
    del no_template["marketplaces"]["DE"]["customer_template"]
    with pytest.raises(RoutingSettingsError) as missing:
        parse_routing(no_template, "r.yaml")
    assert str(missing.value).startswith("r.yaml: marketplaces.DE.customer_template: missing")
    assert "\n" not in str(missing.value)
