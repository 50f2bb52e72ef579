"""The M3 sandbox's credit notes (``POST /sandbox/orders/{orno}/credit``): what M3 makes for a
return, read back through OIS350MI like any invoice, once per reference."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
from _live_m3 import live_m3  # noqa: F401 - the fixture

from connectors.m3 import M3Client, M3Operations, OrderLineRequest, OrderRequest
from sandbox.m3.seed import FREIGHT_ITEM


def test_credit_note_is_a_negative_invoice_made_once_per_reference(live_m3) -> None:  # noqa: F811 - the fixture
    server, _, ionapi = live_m3
    admin = httpx.Client(base_url=server.base_url, timeout=30)
    with M3Client.from_ionapi(ionapi, cono="100", divi="AAA") as client:
        m3 = M3Operations(client, "cloudsuite")
        line = (OrderLineRequest(itno=FREIGHT_ITEM, quantity=1, unit_price=Decimal("20.00")),)
        orno = m3.create_order(
            OrderRequest(cuno="AMZDE", customer_order_ref="302-1", order_type="AMZ", lines=line)
        ).orno
        refused = admin.post(f"/sandbox/orders/{orno}/credit", json={"net": "20.00", "tax": "4.00"})
        assert refused.status_code == 400 and "has no invoice to credit" in refused.json()["error"]

        admin.post(f"/sandbox/orders/{orno}/invoice", json={"date": "20241010"}).raise_for_status()
        body = {"net": "20.00", "tax": "4.00", "date": "20241030", "reference": "amzn1:crow:1"}
        first = admin.post(f"/sandbox/orders/{orno}/credit", json=body).json()["ivno"]
        again = admin.post(f"/sandbox/orders/{orno}/credit", json=body).json()["ivno"]
        assert first == again
        bad = admin.post(f"/sandbox/orders/{orno}/credit", json={**body, "reference": "2", "tax": "four"})
        assert bad.status_code == 400 and "tax must be an amount" in bad.json()["error"]

        documents = {i.ivno: i for i in m3.list_invoices(date(2024, 10, 1), date(2024, 10, 31))}
    credit = documents[first]
    # DE: the invoice carries 19% VAT on 20.00 (23.80); the credit note what was asked for.
    assert [(i.gross, i.net, i.tax) for i in documents.values() if i.ivno != first] == [
        (Decimal("23.80"), Decimal("20.00"), Decimal("3.80"))
    ]
    assert (credit.cuor, credit.ivdt, credit.gross, credit.net, credit.tax) == (
        "302-1",
        date(2024, 10, 30),
        Decimal("-24.00"),
        Decimal("-20.00"),
        Decimal("-4.00"),
    )
    assert admin.get("/sandbox/state").json()["credit_notes"] == 1
