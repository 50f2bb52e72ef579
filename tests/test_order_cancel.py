"""Amazon cancelling an order M3 has (issue #14, item 2) against the embedded M3 and SP-API sandboxes.

Not yet delivered: order sync deletes the M3 order (OIS100MI DelLine per line, releasing the
allocated stock, then DelHead); delivered: a dead letter naming the M3 order; a rerun deletes
nothing twice. Expected values come from the orders seeded here and the sandbox's rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _spapi_fixtures import order

from connectors.m3 import M3TransactionError, M3Unavailable, OrderLineRequest, OrderRequest
from flows.connections import open_connections
from flows.contract import run_document
from flows.orders_steps import ORDER_ID_KIND, AmazonOrder, M3Lookups, sync_order
from sandbox.spapi import SpApiStore
from sync.routing import load_routing

ITNO, ITNO_2 = "A10001", "A10002"  # items of the sandbox M3's catalog (seed 0)
PURCHASED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
OPEN, ALLOCATED, DELIVERED = "111-5000000-0000001", "111-5000000-0000002", "111-5000000-0000003"


def _order(order_id: str, hours: int):
    head, items = order(order_id, PURCHASED + timedelta(hours=hours), status="Unshipped", items=2)
    items[0].update(SellerSKU=ITNO, QuantityOrdered=2)
    items[1].update(SellerSKU=ITNO_2, ItemPrice={"CurrencyCode": "USD", "Amount": "30.00"}, QuantityOrdered=3)
    return head, items


def _spapi(home: Path) -> SpApiStore:
    return SpApiStore(home / "sandbox" / "spapi")


def _seed(home: Path, *orders) -> None:
    seller = json.loads((home / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    store = _spapi(home)
    try:
        store.seed(orders, [], [], seller)
    finally:
        store.close()


def _cancel_on_amazon(home: Path, *order_ids: str) -> None:
    store = _spapi(home)
    try:
        for order_id in order_ids:
            # Amazon lists orders updated up to 2 minutes ago: cancelled 5 minutes ago, inside the overlap.
            store.set_order_status(order_id, "Canceled", datetime.now(UTC) - timedelta(minutes=5))
    finally:
        store.close()


def _ids(document: dict, outcome: str) -> set[str]:
    return {entry["amazon_order_id"] for entry in document[outcome]}


def test_cancelled_before_delivery_is_deleted_once_after_delivery_dead_lettered(prefect_api_url: str, tmp_path: Path):
    from flows.orders import order_sync

    with open_connections(tmp_path, sandbox=True, orders=20):
        pass
    _seed(tmp_path, _order(OPEN, 0), _order(ALLOCATED, 1), _order(DELIVERED, 2))
    first = order_sync(sandbox=True, home=str(tmp_path))
    assert _ids(first, "created") == {OPEN, ALLOCATED, DELIVERED}
    orno = {e["amazon_order_id"]: e["m3_order"] for e in first["created"]}

    with open_connections(tmp_path, sandbox=True) as connections:
        m3 = connections.m3
        assert m3 is not None
        whlo = m3.get_order(orno[ALLOCATED]).warehouse
        before = {b.itno: b.allocated for b in m3.read_balances(whlo, [ITNO, ITNO_2])}
        admin = connections.sandbox_env.m3.base_url
        for order_id, action in ((ALLOCATED, "allocate"), (DELIVERED, "deliver")):
            assert httpx.post(f"{admin}/sandbox/orders/{orno[order_id]}/{action}", timeout=20).status_code == 200
        allocated = {b.itno: b.allocated for b in m3.read_balances(whlo, [ITNO, ITNO_2])}
        assert allocated == {ITNO: before[ITNO] + 2, ITNO_2: before[ITNO_2] + 3}  # the order's quantities
    _cancel_on_amazon(tmp_path, OPEN, ALLOCATED, DELIVERED)

    state = order_sync(sandbox=True, home=str(tmp_path), return_state=True)
    assert state.is_failed()  # the delivered one needs a person: exit 3
    second = run_document(state)
    assert _ids(second, "cancelled") == {OPEN, ALLOCATED} and second["counts"]["cancelled"] == 2
    for entry in second["cancelled"]:
        assert entry["m3_order"] == orno[entry["amazon_order_id"]] and entry["reason"].endswith("(2 lines)")
    [letter] = second["dead_lettered"]
    assert letter["amazon_order_id"] == DELIVERED
    assert "delivered" in letter["reason"] and orno[DELIVERED] in letter["reason"]
    assert state.message.startswith(f"1 of 3 orders dead-lettered: {DELIVERED} (Canceled after M3 delivered it")

    with open_connections(tmp_path, sandbox=True) as connections:
        m3 = connections.m3
        assert m3 is not None
        for order_id in (OPEN, ALLOCATED):
            assert m3.order_progress(orno[order_id]) is None  # GetHead: the order no longer exists
            assert connections.state.m3_id_for(ORDER_ID_KIND, order_id) == orno[order_id]  # the history stays
        assert set(m3.orders_by_reference("AMZUS")) == {DELIVERED}
        assert m3.order_progress(orno[DELIVERED]) == ("66", "66")  # untouched
        assert {b.itno: b.allocated for b in m3.read_balances(whlo, [ITNO, ITNO_2])} == before  # released
        letters = {letter.entity_key for letter in connections.state.list_dead_letters("orders")}
        assert letters == {DELIVERED}

    # A rerun over everything deletes nothing twice: M3 says the orders are gone.
    since = (PURCHASED - timedelta(hours=1)).isoformat()
    third = run_document(order_sync(since=since, sandbox=True, home=str(tmp_path), return_state=True))
    assert third["cancelled"] == [] and third["created"] == []
    assert {e["amazon_order_id"]: e["reason"] for e in third["already_in_m3"]} == {
        OPEN: "Canceled: the M3 order is already deleted",
        ALLOCATED: "Canceled: the M3 order is already deleted",
    }
    assert _ids(third, "dead_lettered") == {DELIVERED}


def test_sandbox_m3_refuses_to_delete_a_delivered_line(tmp_path: Path):
    with open_connections(tmp_path, sandbox=True, orders=20) as connections:
        m3 = connections.m3
        assert m3 is not None
        line_request = OrderLineRequest(itno=ITNO, quantity=1, unit_price=Decimal("12.99"))
        orno = m3.create_order(
            OrderRequest(cuno="AMZUS", customer_order_ref=OPEN, order_type="AMZ", lines=(line_request,))
        ).orno
        deliver = f"{connections.sandbox_env.m3.base_url}/sandbox/orders/{orno}/deliver"
        assert httpx.post(deliver, timeout=20).status_code == 200
        [line] = m3.list_order_lines(orno)
        with pytest.raises(M3TransactionError) as refused:
            m3.client.execute("OIS100MI", "DelLine", {"ORNO": orno, "PONR": line.line_number})
        assert (refused.value.code, refused.value.field) == ("WPONR01", "PONR")
        assert refused.value.message == "Order line 1 cannot be deleted - status is 66"
        with pytest.raises(M3TransactionError) as head_refused:
            m3.client.execute("OIS100MI", "DelHead", {"ORNO": orno})
        assert head_refused.value.code == "WPONR01"
        with pytest.raises(M3TransactionError) as missing:
            m3.client.execute("OIS100MI", "DelLine", {"ORNO": orno, "PONR": 2})
        assert missing.value.code == "WPONR03"
        assert len(m3.list_order_lines(orno)) == 1 and m3.order_progress(orno) == ("66", "66")


def test_m3_refusing_the_deletion_is_a_dead_letter_and_a_lost_answer_is_not_deleted_twice(tmp_path: Path):
    """A record lock on DelLine (M3's XUP0001): a dead letter with M3's answer, the order intact.
    DelHead's answer lost after M3 committed: the run stops; the next look finds the order gone."""
    routing = load_routing(None)
    with open_connections(tmp_path, sandbox=True, orders=20) as connections:
        m3 = connections.m3
        assert m3 is not None
        head, items = _order(OPEN, 0)
        created = sync_order(connections, routing, M3Lookups(connections), AmazonOrder(head, tuple(items)))
        assert created.outcome == "created" and created.orno is not None
        cancelled = AmazonOrder({**head, "OrderStatus": "Canceled"}, tuple(items))
        faults = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"

        lock = {"record_locked": 1, "transactions": ["OIS100MI/DelLine"]}
        assert httpx.post(faults, json=lock, timeout=20).status_code == 200
        refused = sync_order(connections, routing, M3Lookups(connections), cancelled)
        httpx.delete(faults, timeout=20)
        assert refused.outcome == "dead_lettered"
        assert f"M3 refused to delete order {created.orno}" in refused.reason and "XUP0001" in refused.reason
        assert m3.order_progress(created.orno) == ("22", "22")
        assert len(m3.list_order_lines(created.orno)) == 1  # the bulk's other line was deleted

        drop = {"drop_after_commit": 1, "transactions": ["OIS100MI/DelHead"]}
        assert httpx.post(faults, json=drop, timeout=20).status_code == 200
        with pytest.raises(M3Unavailable):
            sync_order(connections, routing, M3Lookups(connections), cancelled)
        httpx.delete(faults, timeout=20)
        assert m3.order_progress(created.orno) is None  # M3 did delete it
        again = sync_order(connections, routing, M3Lookups(connections), cancelled)
        assert (again.outcome, again.orno) == ("already_in_m3", created.orno)
        assert again.reason == "Canceled: the M3 order is already deleted"
