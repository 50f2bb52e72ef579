"""``m3sync settle`` holds refunds without an M3 credit note and orders without an M3 invoice,
posts them where the user chose, and releases the hold once M3 has the documents (one batch
of subprocess runs against an M3 sandbox configured as a live M3 would be).

Figures worked by hand from tests/fixtures/settlements/us_v2_usd.tsv (total 31.81 USD):
orders 111-…-9000001 (principal 68.99, tax 4.14 withheld again) and 114-…-9000002 (principal
68.99, shipping 2.99 less its 2.99 promotion), a multi-channel order (no sale), and refund
112-…-9000004 (principal -68.99, tax -4.83 given back with the withheld 4.83); fees
-37.18 in all.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import httpx
from _cli import m3sync
from _live_m3 import live_m3  # noqa: F401 - the fixture
from openpyxl import load_workbook

from connectors.m3 import M3Client, M3Operations, OrderLineRequest, OrderRequest
from sandbox.m3.seed import FREIGHT_ITEM

SOLD, SHIPPED, REFUNDED = "111-0000000-9000001", "114-0000000-9000002", "112-0000000-9000004"


def _renumbered(fixture: Path, target: Path) -> Path:
    """The fixture as settlement 10000000002 whose orders M3 has never seen (…-90000NN -> …-90001NN)."""
    text = fixture.read_text(encoding="utf-8").replace("10000000001", "10000000002")
    for order in (SOLD, SHIPPED, REFUNDED):
        text = text.replace(order, order[:-4] + "1" + order[-3:])
    target.write_text(text, encoding="utf-8")
    return target


def _orders_listed_in_exceptions(workbook: str, settlement_id: str) -> set[str]:
    """The Amazon orders the workbook's Exceptions sheet lists for ``settlement_id`` as a refund
    without a credit note or an order without an M3 invoice."""
    rows = list(load_workbook(workbook, read_only=True)["Exceptions"].iter_rows(values_only=True))
    header = rows[0]
    kind_at, settlement_at, order_at = (header.index(h) for h in ("Kind", "Settlement ID", "Order, fee type or file"))
    kinds = {"Refund without a credit note", "Order without an M3 invoice"}
    return {str(r[order_at]) for r in rows[1:] if r[kind_at] in kinds and r[settlement_at] == settlement_id}


def _vouchers_in_m3(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/sandbox/state").json()["vouchers"])


def test_held_by_default_posted_by_choice_and_released_by_the_credit_note(
    prefect_api_url: str,
    us_v2_tsv: Path,
    tmp_path: Path,
    live_m3,  # noqa: F811 - the fixture
) -> None:
    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    documented = shutil.copy(us_v2_tsv, tmp_path / "documented.tsv")  # M3 gets its documents below
    undocumented = _renumbered(us_v2_tsv, tmp_path / "undocumented.tsv")  # M3 never does
    files = [str(documented), str(undocumented)]

    # 1. By default both are held: exit 3, the reasons name the orders and amounts, nothing in M3.
    held = m3sync("settle", *files, "--json", "--home", str(home), api_url=prefect_api_url)
    assert held.code == 3, held.stderr
    entries = {e["source"]: e for e in held.document["settlements"]}
    assert [e["status"] for e in entries.values()] == ["held", "held"]
    reasons = " | ".join(entries["documented.tsv"]["reasons"])
    # 111: 68.99 + 4.14 - 4.14; 114: 68.99 + 2.99 - 2.99; sold 137.98 in all. Refund: -68.99 - 4.83 + 4.83.
    assert f"2 orders ({SOLD}, {SHIPPED}) without an M3 invoice (sold 137.98 USD)" in reasons
    assert f"refunds of 1 order ({REFUNDED}) without an M3 credit note (refunded 68.99 USD)" in reasons
    assert "--refunds-without-credit returns" in reasons and "--missing-invoices suspense" in reasons
    assert f"documented.tsv: settlement 10000000001: held: 2 orders ({SOLD}" in held.stderr
    assert entries["documented.tsv"]["journal"]["vouchers"] == []
    assert _vouchers_in_m3(server.base_url) == 0
    named = _orders_listed_in_exceptions(held.document["report"], "10000000001")  # documented.tsv
    assert named == {SOLD, SHIPPED, REFUNDED}
    # A dry run reads M3's invoices too (M3 is configured): it reports the same hold.
    dry = m3sync("settle", str(undocumented), "--dry-run", "--json", "--home", str(home), api_url=prefect_api_url)
    assert dry.code == 3, dry.stderr
    (dry_entry,) = dry.document["settlements"]
    assert dry_entry["status"] == "held" and dry_entry["reconciliation"]["status"] == "done"
    assert "refunds of 1 order (112-0000000-9001004) without an M3 credit note" in " ".join(dry_entry["reasons"])

    # 2. M3 gets the invoices of the documented settlement's orders and the refund's credit note,
    # dated after the settlement's window (2024-10-23) as a late credit note would be.
    with M3Client.from_ionapi(ionapi, cono="100", divi="AAA") as client:
        m3 = M3Operations(client, "cloudsuite")
        ornos = {
            order: m3.create_order(
                OrderRequest(
                    cuno="AMZUS",
                    customer_order_ref=order,
                    order_type="AMZ",
                    lines=(OrderLineRequest(itno=FREIGHT_ITEM, quantity=1, unit_price=Decimal("68.99")),),
                )
            ).orno
            for order in (SOLD, SHIPPED, REFUNDED)
        }
    admin = httpx.Client(base_url=server.base_url, timeout=30)
    admin.post("/sandbox/advance", json={"to": "77", "orders": list(ornos.values()), "date": "20241018"})
    credit = {"net": "68.99", "tax": "0", "date": "20241028", "reference": "refund-1"}
    assert admin.post(f"/sandbox/orders/{ornos[REFUNDED]}/credit", json=credit).status_code == 200

    # 3. The next run: the documented settlement is released by M3's documents alone (its
    # voucher is the one posted before holds existed: receivable netted, no 3090 or 2998); the
    # other posts by choice: the command line's returns (over config.toml's hold) and
    # config.toml's suspense.
    (home / "config.toml").write_text(
        (home / "config.toml").read_text()
        + '[settlement]\nrefunds_without_credit = "hold"\nmissing_invoices = "suspense"\n'
    )
    posted = m3sync(
        "settle", *files, "--json", "--home", str(home), "--refunds-without-credit", "returns", api_url=prefect_api_url
    )
    assert posted.code == 0, posted.stderr
    entries = {e["source"]: e for e in posted.document["settlements"]}
    assert {s: e["status"] for s, e in entries.items()} == {"documented.tsv": "posted", "undocumented.tsv": "posted"}
    assert entries["documented.tsv"]["reconciliation"]["refund_without_credit"] == 0
    assert entries["documented.tsv"]["reconciliation"]["missing_in_m3"] == 0
    # Debits: commission 12.42 + FBA 21.79 + digital services 0.49 + refund commission 2.48 +
    # deposit 31.81 = 68.99; credits: receivable 68.99 (68.99 + 68.99 + 2.99 - 2.99 - 68.99).
    # Amazon.com is a facilitator marketplace invoiced net: the tax and the withheld tax net to
    # nil on the facilitator clearing (4.14 - 4.14 - 4.83 + 4.83), so it has no line.
    (documented_voucher,) = entries["documented.tsv"]["journal"]["vouchers"]
    assert (documented_voucher["debit"], documented_voucher["credit"]) == ("68.99", "68.99")
    # Re-routed: 2998 Cr 137.98 (68.99 + 68.99 + 2.99 - 2.99); 3090 Dr 68.99 (refunded
    # principal); the tax stays on the facilitator clearing, nil as above (no 2610 line: Amazon
    # remits US sales tax); fees Dr 12.42 + 21.79 + 0.49 + 2.48; deposit Dr 31.81: 137.98 each side.
    (chosen_voucher,) = entries["undocumented.tsv"]["journal"]["vouchers"]
    assert (chosen_voucher["debit"], chosen_voucher["credit"]) == ("137.98", "137.98")
    notes = " | ".join(entries["undocumented.tsv"]["reasons"])
    assert "missing_invoice_suspense 2998" in notes and "sales_returns 3090" in notes
    named = _orders_listed_in_exceptions(posted.document["report"], "10000000002")  # undocumented.tsv
    assert named == {o[:-4] + "1" + o[-3:] for o in (SOLD, SHIPPED, REFUNDED)}
    # Two settlement vouchers, and one customer payment (ARS040MI) paying documented.tsv's
    # invoices and credit note in the customer ledger; undocumented.tsv's orders have no invoice
    # to pay (all re-routed), so it makes no payment.
    assert _vouchers_in_m3(server.base_url) == 3
    assert httpx.get(f"{server.base_url}/sandbox/state").json()["payment_batches"] == 1

    # 4. A choice that is not one is one line and exit 2, before anything is read.
    bad = m3sync("settle", *files, "--home", str(home), "--refunds-without-credit", "maybe", api_url=prefect_api_url)
    assert bad.code == 2
    assert bad.stderr.strip() == "m3sync: --refunds-without-credit: 'maybe' is not one of hold, returns"
