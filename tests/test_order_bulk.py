"""Bulk order creation (issue #14, "Benchmark"): ``M3Operations.create_orders`` against the sandbox
M3 (both profiles, requests counted by the sandbox), and a small run of ``bench.order_sync``
whose M3 requests per order are counted (a count, not a timing)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from test_m3_connector import Sandbox, start_sandbox, unique

from connectors.m3 import M3Operations, M3OrderIncomplete, M3TransactionError, OrderLineRequest, OrderRequest

ITEMS = ("A10001", "A10002", "A10003")  # released items of the sandbox M3's catalog (seed 0)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = start_sandbox(tmp_path_factory, "m3bulk", auth="oauth")
    yield sandbox
    sandbox.server.stop()


def _order(ref: str, lines: int, *, cuno: str = "AMZUS", bad_line: int | None = None) -> OrderRequest:
    return OrderRequest(
        cuno=cuno,
        customer_order_ref=ref,
        order_type="AMZ",
        lines=tuple(
            OrderLineRequest(
                itno="NOSUCHITEM" if n == bad_line else ITEMS[n % len(ITEMS)],
                quantity=n + 1,
                unit_price=Decimal("2.50"),
            )
            for n in range(lines)
        ),
    )


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_create_orders_writes_each_order_alone_in_few_bulk_requests(box: Sandbox, profile: str):
    counter = box.server.app.state.mi_requests
    # Groups of 3 orders (the client's bulk limit): 7 orders are 3 groups (3, 3, 1).
    with box.oauth_client(bulk_max_transactions=3) as client:
        ops = M3Operations(client, profile, cono=100, divi="AAA")
        refs = [unique(f"114-{profile[:2]}-") for _ in range(7)]
        orders = [_order(ref, 1 + n % 3) for n, ref in enumerate(refs)]
        orders[2] = _order(refs[2], 2, bad_line=1)  # M3 refuses its second line
        orders[4] = _order(refs[4], 1, cuno="NOSUCHCUST")  # M3 refuses its head
        before = counter.bulk, counter.single
        written = ops.create_orders(orders)
        bulk, single = counter.bulk - before[0], counter.single - before[1]

        assert [w.customer_order_ref for w in written] == refs
        assert all(w.in_doubt is None for w in written)
        refused = {n: w.refused for n, w in enumerate(written) if w.refused is not None}
        assert set(refused) == {2, 4}
        assert isinstance(refused[2], M3OrderIncomplete) and refused[2].errors[0].field == "ITNO"
        assert isinstance(refused[4], M3TransactionError) and refused[4].field == "CUNO"
        by_reference = ops.orders_by_reference("AMZUS")
        for n in (0, 1, 3, 5, 6):
            created = written[n].created
            assert created is not None and by_reference[refs[n]] == created.orno
            assert created.line_numbers == tuple(range(1, len(orders[n].lines) + 1))
            lines = ops.list_order_lines(created.orno)
            assert [(line.itno, line.quantity) for line in lines] == [
                (line.itno, Decimal(line.quantity)) for line in orders[n].lines
            ]
        assert refs[4] not in by_reference
        assert (refs[2] in by_reference) == (profile == "brief")  # a brief head stays; a batch order is no order

    # Requests: per group one bulk per stage, each cut to 3 transactions; no single request.
    # Lines per order: 1, 2, 2 (one bad), 1, 1 (its head refused), 3, 1.
    heads = [3, 3, 1]
    lines = [1 + 2 + 2, 1 + 3, 1]  # group 2: order 4's head was refused, so its line is never sent
    alive = [2, 2, 1]  # orders whose lines all went in (group 1: order 2 has the bad line)
    stages = [heads, lines, alive]  # brief: AddHead, AddLine, GetHead; cloudsuite: ..., Confirm (no addresses)
    assert single == 0
    assert bulk == sum(math.ceil(n / 3) for stage in stages for n in stage)


def test_create_order_is_a_bulk_of_one(box: Sandbox):
    with box.oauth_client() as client:
        ops = M3Operations(client, "brief", cono=100, divi="AAA")
        counter = box.server.app.state.mi_requests
        before = counter.requests
        created = ops.create_order(_order(unique("114-one-"), 3))
        assert counter.requests - before == 3  # AddHead, AddLine (3 lines), GetHead: one bulk each
        assert created.line_numbers == (1, 2, 3) and created.status == "20"
        with pytest.raises(M3OrderIncomplete):
            ops.create_order(_order(unique("114-one-"), 2, bad_line=0))


def test_small_bench_run_counts_m3_requests_per_order(prefect_api_url: str, tmp_path: Path):
    """200 orders (two searchOrders pages): per page of 100 orders, brief, the bulks are AddHead
    (80 + 20), AddLine (each 80 lines a request) and GetHead (80 + 20); plus one LstHead and one
    GetItmBasic per item the orders use (and the shipping item), read once per run."""
    from bench.order_sync import measure, prepare_home
    from sandbox.generator.order_load import load_orders

    orders = 200
    since = prepare_home(tmp_path, orders)
    figures = measure(tmp_path, orders, since, time_scale=2000.0, profile="brief")
    assert (figures.created, figures.pages) == (orders, 2)
    seeded = list(load_orders(orders, until=datetime.now(UTC)))  # the same lines as prepare_home's (same seed)
    page_lines = [sum(len(items) for _, items in seeded[first : first + 100]) for first in (0, 100)]
    bulks = sum(2 + math.ceil(lines / 80) + 2 for lines in page_lines)
    skus = {item["SellerSKU"] for _, items in seeded for item in items}
    assert figures.m3_bulk == bulks
    # one LstHead (AMZUS), one GetItmBasic per item the orders use and one for the routing's shipping item
    assert figures.m3_single == 1 + len(skus) + 1
    # 8 bulk requests a page of 100 orders (up to 320 lines): 0.08 per order; the single reads
    # are per run, not per order (26 more in 10,000 orders: 0.003 per order)
    assert bulks == 16
