"""``order_sync`` and ``m3sync orders`` (issue #14, item 4) against the embedded M3 and SP-API sandboxes.

The sandbox's generated world ends a month ago, outside the first run's look-back: what the runs see
are the hand-written orders seeded here. Expected values come from those orders.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _cli import m3sync
from _spapi_fixtures import order

from connectors.m3 import OrderLineRequest, OrderRequest
from flows.connections import open_connections
from flows.contract import run_document
from flows.orders_steps import ORDER_ID_KIND, ORDERS_WATERMARK
from sandbox.spapi import SpApiStore

ITNO = "A10001"  # an item of the sandbox M3's catalog (seed 0)
PURCHASED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
UNSHIPPED, SHIPPED, PENDING = "111-4000000-0000001", "111-4000000-0000002", "111-4000000-0000003"
UNKNOWN_SKU, ZERO_QUANTITY, IN_M3 = "111-4000000-0000004", "111-4000000-0000005", "111-4000000-0000006"
LATER = "111-4000000-0000007"


def _order(order_id: str, *, status: str = "Unshipped", sku: str = ITNO, quantity: int = 2, hours: int = 0):
    head, items = order(order_id, PURCHASED + timedelta(hours=hours), status=status, items=2)
    items[0].update(SellerSKU=sku, QuantityOrdered=quantity)
    items[1].update(SellerSKU="A10002", ItemPrice={"CurrencyCode": "USD", "Amount": "30.00"}, QuantityOrdered=3)
    return head, items


def _seed(home: Path, *orders) -> None:
    seller = json.loads((home / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    store = SpApiStore(home / "sandbox" / "spapi")
    try:
        store.seed(orders, [], [], seller)
    finally:
        store.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox home (a small world), seeded with this module's orders; IN_M3 is in M3 already."""
    path = tmp_path_factory.mktemp("orders-home")
    with open_connections(path, sandbox=True, orders=20) as connections:
        assert connections.m3 is not None
        connections.m3.create_order(
            OrderRequest(
                cuno="AMZUS",
                customer_order_ref=IN_M3,
                order_type="AMZ",
                lines=(  # the lines Amazon's order maps to: a complete order, already in M3
                    OrderLineRequest(itno=ITNO, quantity=2, unit_price=Decimal("12.99")),
                    OrderLineRequest(itno="A10002", quantity=3, unit_price=Decimal("10.00")),
                ),
            )
        )
    _seed(
        path,
        _order(UNSHIPPED),
        _order(SHIPPED, status="Shipped", hours=1),
        _order(PENDING, status="Pending", hours=2),
        _order(UNKNOWN_SKU, sku="NO-SUCH-SKU", hours=3),
        _order(ZERO_QUANTITY, quantity=0, hours=4),
        _order(IN_M3, hours=5),
    )
    return path


def _ids(document: dict, outcome: str) -> set[str]:
    return {entry["amazon_order_id"] for entry in document[outcome]}


def test_run_creates_the_orders_once_dead_letters_the_bad_and_waits_for_pending(prefect_api_url: str, home: Path):
    from flows.orders import order_sync

    state = order_sync(sandbox=True, home=str(home), return_state=True)
    assert state.is_failed()
    document = run_document(state)
    assert _ids(document, "created") == {UNSHIPPED, SHIPPED}
    assert _ids(document, "already_in_m3") == {IN_M3}
    assert _ids(document, "waiting") == {PENDING}
    assert _ids(document, "dead_lettered") == {UNKNOWN_SKU, ZERO_QUANTITY}
    assert state.message.startswith(f"2 of 6 orders dead-lettered: {UNKNOWN_SKU} (unknown SKU: ")
    assert "NO-SUCH-SKU" in state.message and state.message.endswith(" and 1 more")

    with open_connections(home, sandbox=True) as connections:
        m3, store = connections.m3, connections.state
        assert m3 is not None
        by_reference = m3.orders_by_reference("AMZUS")
        created = {e["amazon_order_id"]: e["m3_order"] for e in document["created"]}
        for order_id in (UNSHIPPED, SHIPPED):
            orno = created[order_id]
            assert by_reference[order_id] == orno and store.m3_id_for(ORDER_ID_KIND, order_id) == orno
            head = m3.get_order(orno)
            assert (head.cuno, head.customer_order_ref, head.order_type, head.currency) == (
                "AMZUS",
                order_id,
                "AMZ",
                "USD",
            )
            lines = sorted((line.itno, line.quantity, line.unit_price) for line in m3.list_order_lines(orno))
            # 25.98 for 2 and 30.00 for 3: unit prices 12.99 and 10.00
            assert lines == [(ITNO, Decimal(2), Decimal("12.99")), ("A10002", Decimal(3), Decimal("10.00"))]
        # Found in M3 under its CUOR, recorded, never created again.
        assert store.m3_id_for(ORDER_ID_KIND, IN_M3) == by_reference[IN_M3]
        assert PENDING not in by_reference and UNKNOWN_SKU not in by_reference
        assert ZERO_QUANTITY not in by_reference
        letters = {letter.entity_key: letter for letter in store.list_dead_letters("orders")}
        assert set(letters) == {UNKNOWN_SKU, ZERO_QUANTITY}
        assert "quantity 0" in letters[ZERO_QUANTITY].error
        for letter in letters.values():
            assert letter.payload["amazon_order_id"] == letter.entity_key
            assert "Jane Doe" not in json.dumps(letter.payload) and "Seattle" not in json.dumps(letter.payload)
        # The pending order holds the watermark at its last update (purchase + 2 h, + 1 h).
        held = datetime.fromisoformat(store.get_watermark(ORDERS_WATERMARK) or "")
        assert held == PURCHASED + timedelta(hours=3)
        orders_before = len(by_reference)

    # The next run reads from the held watermark (less the overlap): the pending order and those after it.
    after = run_document(order_sync(sandbox=True, home=str(home), return_state=True))
    assert _ids(after, "waiting") == {PENDING} and _ids(after, "already_in_m3") == {IN_M3}
    assert after["created"] == [] and _ids(after, "dead_lettered") == {UNKNOWN_SKU, ZERO_QUANTITY}
    # A rerun over everything creates nothing.
    since = (PURCHASED - timedelta(hours=1)).isoformat()
    again = run_document(order_sync(since=since, sandbox=True, home=str(home), return_state=True))
    assert again["created"] == []
    assert _ids(again, "already_in_m3") == {UNSHIPPED, SHIPPED, IN_M3}
    assert _ids(again, "waiting") == {PENDING}
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        assert len(connections.m3.orders_by_reference("AMZUS")) == orders_before


def test_cli_exit_codes_and_json(prefect_api_url: str, home: Path, tmp_path: Path):
    _seed(home, _order(LATER, hours=6))
    run = m3sync("orders", "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == 3, run.stderr
    assert LATER in _ids(run.document, "created") or LATER in _ids(run.document, "already_in_m3")
    assert _ids(run.document, "dead_lettered") == {UNKNOWN_SKU, ZERO_QUANTITY}
    assert "orders dead-lettered" in run.stderr and "Jane Doe" not in run.stdout + run.stderr
    bad = m3sync("orders", "--sandbox", "--since", "yesterday", "--home", str(tmp_path), api_url=prefect_api_url)
    assert bad.code == 2 and "--since 'yesterday'" in bad.stderr


def test_cloudsuite_profile_reads_the_address_and_creates_the_order(prefect_api_url: str, tmp_path: Path):
    """cloudsuite: orders read with buyer data (a restricted data token), the batch order with its address."""
    from flows.orders import order_sync

    with open_connections(tmp_path, sandbox=True, orders=20):
        pass
    ionapi = tmp_path / "sandbox" / "m3.ionapi"
    (tmp_path / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "cloudsuite"\n', encoding="utf-8")
    _seed(tmp_path, _order(UNSHIPPED))
    document = order_sync(sandbox=True, home=str(tmp_path))
    assert _ids(document, "created") == {UNSHIPPED} and document["counts"]["dead_lettered"] == 0
    with open_connections(tmp_path, sandbox=True) as connections:
        assert connections.m3 is not None and connections.m3_profile == "cloudsuite"
        orno = connections.m3.find_order_by_reference("AMZUS", UNSHIPPED)
        assert orno == document["created"][0]["m3_order"]
        lines = sorted((line.itno, line.quantity) for line in connections.m3.list_order_lines(orno))
        assert lines == [(ITNO, Decimal(2)), ("A10002", Decimal(3))]
    assert "Jane Doe" not in json.dumps(document)


def test_answer_lost_after_m3_created_the_order_is_recorded_not_created_again(tmp_path: Path):
    """M3 commits the order's lines and the connection drops: the order is in doubt, M3 is read
    again by its CUOR, the order is found complete and recorded, one order in M3."""
    from flows.orders_steps import AmazonOrder, M3Lookups, sync_order
    from sync.routing import load_routing

    head, items = _order(UNSHIPPED)
    amazon = AmazonOrder(head, tuple(items))
    routing = load_routing(None)
    with open_connections(tmp_path, sandbox=True, orders=20) as connections:
        admin = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"
        drop = {"drop_after_commit": 1, "transactions": ["OIS100MI/AddLine"]}
        assert httpx.post(admin, json=drop, timeout=20).status_code == 200
        result = sync_order(connections, routing, M3Lookups(connections), amazon)
        assert httpx.get(admin, timeout=20).json()["drops_left"] == 0  # the answer was lost
        httpx.delete(admin, timeout=20)
        assert connections.m3 is not None
        orno = connections.m3.find_order_by_reference("AMZUS", UNSHIPPED)
        assert orno is not None and len(connections.m3.list_order_lines(orno)) == 2  # M3 did create it
        assert (result.outcome, result.orno) == ("created", orno) and "answer was lost" in result.reason
        assert connections.state.m3_id_for(ORDER_ID_KIND, UNSHIPPED) == orno
        again = sync_order(connections, routing, M3Lookups(connections), amazon)
        assert (again.outcome, again.orno) == ("already_in_m3", orno)
        heads = connections.m3.client.execute("OIS100MI", "LstHead", {"CUNO": "AMZUS"}, maxrecs=0)
        assert [h["CUOR"] for h in heads] == [UNSHIPPED]  # one M3 order, not two


def test_read_window_and_watermark_rules() -> None:
    from flows.orders_steps import OrderResult, next_watermark, read_since

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert read_since(None, None, now) == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # first run: a week back
    assert read_since("2026-11-29T10:00:00+00:00", None, now) == datetime(2026, 11, 29, 9, 50, tzinfo=UTC)
    given = datetime(2026, 1, 1, tzinfo=UTC)
    assert read_since("2026-11-29T10:00:00+00:00", given, now) == given
    waiting_at = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    done = [OrderResult("1", "created", last_update=now), OrderResult("2", "dead_lettered", last_update=waiting_at)]
    assert next_watermark(done, now) == "2026-11-29T12:00:00+00:00"
    held = [*done, OrderResult("3", "waiting", last_update=waiting_at + timedelta(hours=1))]
    assert next_watermark(held, now) == "2026-11-29T09:30:00+00:00"
