"""The customer ledger (issue 11, item 3): a settlement pays its invoices in M3's customer ledger.

Two AMZUS orders are entered in an M3 sandbox configured as a live M3 and invoiced at 100.00
and 50.00 (one item each at that price; US orders carry no VAT in the sandbox). The settlement
(written below, by hand) pays them with Amazon's commission deducted:

    order 111-0000000-7000001: Principal 100.00, Commission -15.00
    order 111-0000000-7000002: Principal  50.00, Commission  -7.50      total 127.50

Allocate set-up (the invoices stay open in the ledger): the voucher credits the payment
clearing account 1519 with 150.00 (not the receivable), debits 1930 with 127.50 and 6110 with
22.50; the payment batch debits 1519 with 150.00 and credits the receivable 1510 (US) invoice by
invoice. So: both invoices closed, ledger AMZUS = 0.00, GL 1510/US = 150.00 - 150.00 = 0.00,
1519/US = 0.00. With order 2 settled at 45.00 instead: invoice 2 keeps 5.00 open, the ledger
says 5.00 and so does GL 1510/US (150.00 - 145.00).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _live_m3 import invoice_amzus_orders, live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Client, M3Operations, OrderLineRequest, OrderRequest
from connectors.m3.ledger import detect_setup
from reconciliation.ledger import (
    MAX_PAYMENT_LINES,
    InvoiceAllocation,
    allocate_payment,
    limit_in_minor_units,
    payment_batches,
)
from tests._settlement_builders import V2_HEADER as HEADER

ORDER_1, ORDER_2 = "111-0000000-7000001", "111-0000000-7000002"
_ids = count(1)


def _settlement(tmp_path: Path, second_principal: str, total: str, first_principal: str = "100.00") -> Path:
    rows = [
        (ORDER_1, "ItemPrice", "Principal", first_principal),
        (ORDER_1, "ItemFees", "Commission", "-15.00"),
        (ORDER_2, "ItemPrice", "Principal", second_principal),
        (ORDER_2, "ItemFees", "Commission", "-7.50"),
    ]
    return _settlement_of(tmp_path, rows, total)


def _settlement_of(tmp_path: Path, orders: list[tuple[str, str, str, str]], total: str) -> Path:
    """An Amazon.com settlement file of Order rows (order id, amount type, description, amount)."""
    sid = f"2000000000{next(_ids)}"
    first = (
        f"{sid}\t2024-10-09 14:28:38 UTC\t2024-10-23 14:28:39 UTC\t2024-10-25 14:28:39 UTC\t{total}\tUSD" + "\t" * 18
    )

    def row(order: str, amount_type: str, description: str, amount: str) -> str:
        return (
            f"{sid}\t\t\t\t\t\tOrder\t{order}\t{order}\t\tSHP\tAmazon.com\t{amount_type}\t{description}\t{amount}\t"
            f"AFN\t2024-10-18\t2024-10-18 02:58:02 UTC\t9000001\t\t\tSKU-1\t1\t"
        )

    rows = [row(*order) for order in orders]
    path = tmp_path / f"{sid}.tsv"
    path.write_text("\n".join([HEADER, first, *rows]) + "\n", encoding="utf-8")
    return path


def _admin(base_url: str, method: str, path: str, body: dict | None = None) -> dict:
    answer = httpx.request(method, f"{base_url}/sandbox/{path}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _invoice_orders(base_url: str, ionapi: Path, prices: tuple[str, str] = ("100.00", "50.00")) -> None:
    """AMZUS orders ORDER_1 and ORDER_2 at ``prices`` (100.00 and 50.00), invoiced on 2024-10-15."""
    invoice_amzus_orders(
        base_url, ionapi, [(cuor, price, "20241015") for cuor, price in zip((ORDER_1, ORDER_2), prices)]
    )


def _ledger(base_url: str) -> tuple[Decimal, dict[str, Decimal]]:
    """(AMZUS's open ledger amount, GL balance per 'account/AIT3')."""
    found = _admin(base_url, "GET", "customer-ledger")
    gl = {f"{b['account']}/{b['ait3']}": Decimal(b["balance"]) for b in found["gl"]}
    return Decimal(found["ledger"].get("AMZUS", "0")), gl


def _open_items(ionapi: Path) -> dict[str, str]:
    with M3Client.from_ionapi(ionapi) as client:
        items = client.execute("ARS200MI", "LstInvoices", {"CUNO": "AMZUS"}, maxrecs=0)
        return {i["CINO"]: i["RECO"] for i in items}


def _payment_lines(base_url: str, ionapi: Path) -> list[tuple[str, Decimal]]:
    """The payment vouchers' lines: (account/AIT3, amount)."""
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, "brief", divi="AAA")
        heads = client.execute("GLS200MI", "LstVouchersByDt", {"DIVI": "AAA", "FDAT": 20241001, "TDAT": 20241031})
        payments = [h for h in heads if h["VTXT"].startswith("Payment batch")]
        return [
            (f"{ln.dimensions[0]}/{ln.dimensions[2] if len(ln.dimensions) > 2 else ''}", ln.amount)
            for h in payments
            for ln in ops.read_voucher("AAA", int(h["YEA4"]), h["VONO"]).lines
        ]


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_settlement_pays_both_invoices_and_ledger_agrees_with_gl(
    prefect_api_url: str, live_m3, tmp_path: Path, profile: str
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure(profile)
    _invoice_orders(server.base_url, ionapi)
    assert _ledger(server.base_url) == (Decimal("150.00"), {"1510/US": Decimal("150.00")})

    settlement = _settlement(tmp_path, "50.00", "127.50")
    result = settlement_reconciliation(files=[str(settlement)], home=str(home))
    assert result["customer_ledger"]["mode"] == "allocate", result["customer_ledger"]
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    # the settlement's voucher is M3's voucher 1 of 2024, the payment's voucher 2
    assert any(f"(payment PAY-{settlement.stem} (AAA/2024/AZ/2))" in r for r in entry["reasons"]), entry["reasons"]
    assert any("pays 2 invoice(s) 150.00 USD less Amazon's deductions 22.50 USD" in r for r in entry["reasons"]), entry[
        "reasons"
    ]
    assert set(_open_items(ionapi).values()) == {"9"}  # both invoices paid
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("0.00") and gl["1510/US"] == ledger  # the ledger and the GL agree
    assert gl["1519/US"] == 0  # the payment cleared what the voucher put there
    assert gl["1930/US"] == Decimal("127.50") and gl["6110/US"] == Decimal("22.50")
    assert sorted(_payment_lines(server.base_url, ionapi)) == [
        ("1510/US", Decimal("-150.00")),
        ("1519/US", Decimal("150.00")),
    ]
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 1


def test_a_mixed_settlement_pays_the_facilitator_order_net_and_the_other_gross(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    """``[tax.US] facilitator = "auto"``: Amazon is the facilitator only for the order with withheld
    tax, as on the EU marketplaces (the sandbox's US orders carry no VAT, so M3's invoices are what
    the test sets). ORDER_1 (facilitator): Principal 60.65, Tax 12.13, withheld -12.13; M3 invoiced
    it net, 60.65. ORDER_2 (the seller's tax): Principal 50.00, Tax 10.00; M3 invoiced 60.00 with
    the tax. Total 120.65. The voucher credits the payment clearing 1519 with 60.65 + 60.00 =
    120.65 and debits 1930 with 120.65; the facilitator clearing 2615 takes 12.13 - 12.13 = nil.
    The payment pays 60.65 and 60.00 to the two invoices (with ORDER_1's tax it would overpay it
    by 12.13 and leave 12.13 on 1519): ledger AMZUS 0.00 = GL 1510/US."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write('[tax.US]\nfacilitator = "auto"\n')
    _invoice_orders(server.base_url, ionapi, ("60.65", "60.00"))
    rows = [
        (ORDER_1, "ItemPrice", "Principal", "60.65"),
        (ORDER_1, "ItemPrice", "Tax", "12.13"),
        (ORDER_1, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-12.13"),
        (ORDER_2, "ItemPrice", "Principal", "50.00"),
        (ORDER_2, "ItemPrice", "Tax", "10.00"),
    ]
    result = settlement_reconciliation(files=[str(_settlement_of(tmp_path, rows, "120.65"))], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert set(_open_items(ionapi).values()) == {"9"}  # both invoices paid in full
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("0.00") and gl["1510/US"] == ledger
    assert gl["1519/US"] == 0 and gl["1930/US"] == Decimal("120.65")
    assert gl.get("2615/US", Decimal(0)) == 0 and "2610/US" not in gl
    # both invoices closed by one payment of 120.65 = 60.65 + 60.00: each took exactly its amount
    assert sorted(_payment_lines(server.base_url, ionapi)) == [
        ("1510/US", Decimal("-120.65")),
        ("1519/US", Decimal("120.65")),
    ]


def test_partial_payment_leaves_the_residue_open_on_both_sides(prefect_api_url: str, live_m3, tmp_path: Path) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    result = settlement_reconciliation(files=[str(_settlement(tmp_path, "45.00", "122.50"))], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    items = _open_items(ionapi)
    assert sorted(items.values()) == ["0", "9"]  # invoice 1 paid, invoice 2 still open
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("5.00") and gl["1510/US"] == Decimal("5.00")
    assert gl["1519/US"] == 0


def test_lost_answers_allocate_once_and_a_rerun_pays_nothing_more(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    """The head's answer is lost twice (the payment resumes, then the task retries) and the lines'
    once more: M3 refuses a second head and every line again, so each invoice is paid once."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    _admin(
        server.base_url,
        "POST",
        "faults",
        {"drop_after_commit": 3, "transactions": ["ARS040MI/AddBatchHead", "ARS040MI/AddBatchLine"]},
    )
    settlement = _settlement(tmp_path, "50.00", "127.50")
    result = settlement_reconciliation(files=[str(settlement)], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert _admin(server.base_url, "GET", "faults")["drops_left"] == 0  # every lost answer happened
    _admin(server.base_url, "DELETE", "faults")
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("0.00") and gl["1510/US"] == Decimal("0.00")  # paid once: not -150.00
    assert len(_payment_lines(server.base_url, ionapi)) == 2

    again = settlement_reconciliation(files=[str(settlement)], home=str(home))
    (entry,) = again["settlements"]
    assert entry["status"] == "duplicate", entry["reasons"]
    assert _ledger(server.base_url)[1]["1510/US"] == Decimal("0.00")
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 1


def test_gl_clearing_set_up_is_detected_and_posts_no_allocation(prefect_api_url: str, live_m3, tmp_path: Path) -> None:
    """The Amazon customers' invoices post to the receivable account but are settled when invoiced
    (no open items): the GL voucher alone is right, and it still credits 1510."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _admin(server.base_url, "POST", "customer-ledger", {"setup": "gl-clearing", "account": "1510"})
    _invoice_orders(server.base_url, ionapi)
    assert _ledger(server.base_url)[0] == 0  # nothing open in the ledger
    result = settlement_reconciliation(files=[str(_settlement(tmp_path, "50.00", "127.50"))], home=str(home))
    assert result["customer_ledger"]["mode"] == "gl-clearing"
    assert "settled when invoiced" in result["customer_ledger"]["reason"]
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    (note,) = [r for r in entry["reasons"] if r.startswith("customer ledger")]
    assert note.startswith("customer ledger (gl-clearing)") and "the GL voucher alone settles" in note
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 0
    _, gl = _ledger(server.base_url)
    assert gl["1510/US"] == 0 and "1519/US" not in gl  # invoices 150.00 debited, the voucher credited 150.00


def test_detection_reads_the_ledger(live_m3) -> None:
    server, configure, ionapi = live_m3
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, "brief", divi="AAA")
        empty = detect_setup(ops)
        assert empty.mode == "gl-clearing" and "nothing there to settle" in empty.reason
        _invoice_orders(server.base_url, ionapi)
        assert detect_setup(ops).mode == "allocate"
        assert detect_setup(ops, ["AMZDE"]).mode == "gl-clearing"  # only AMZUS has invoices


def test_allocation_spreads_an_order_over_its_invoices_and_refunds_over_credit_notes() -> None:
    """Order A (invoices 60.00 then 40.00) settles 110.00: 60.00, then the rest 50.00 on the last.
    Order A's refund -30.00 goes to its credit note (-30.00). Order C has no invoice: its 20.00
    stays unallocated. Fees (-12.00) are the deductions: total 110 - 30 + 20 - 12 = 88.00."""
    lines = pd.DataFrame(
        {
            "order_id": ["A", "A", "A", "C", "A"],
            "transaction_type": ["Order", "Order", "Refund", "Order", "Order"],
            "amount_minor": [10000, 1000, -3000, 2000, -1200],
            "account": ["1510", "1510", "1510", "1510", "6110"],
        }
    )
    invoices = pd.DataFrame(
        {
            "cuor": ["A", "A", "A"],
            "ivdt": pd.to_datetime(["2024-10-02", "2024-10-01", "2024-10-03"]),
            "gross_minor": [4000, 6000, -3000],
            "cuno": ["AMZUS"] * 3,
            "cino": ["AZ2", "AZ1", "AZ3"],
            "year": [2024] * 3,
        }
    )
    result = allocate_payment(lines, invoices, "1510", total_minor=8800)
    assert [(a.invoice, a.amount_minor) for a in result.allocations] == [("AZ1", 6000), ("AZ2", 5000), ("AZ3", -3000)]
    assert (result.receivable_minor, result.unallocated_minor, result.deductions_minor) == (10000, 2000, -1200)
    assert result.unallocated_orders == ("C",)


def test_configured_gl_clearing_overrides_detection(prefect_api_url: str, live_m3, tmp_path: Path) -> None:
    """``[m3] customer_ledger = "gl-clearing"`` on a tenant whose invoices are open: no payment, and
    the voucher credits the receivable itself (the ledger stays open: the user's choice, said)."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write('customer_ledger = "gl-clearing"\n')
    _invoice_orders(server.base_url, ionapi)
    result = settlement_reconciliation(files=[str(_settlement(tmp_path, "50.00", "127.50"))], home=str(home))
    assert result["customer_ledger"] == {
        "mode": "gl-clearing",
        "reason": "[m3] customer_ledger",
        "clearing_account": "1519",
    }
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 0
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("150.00") and gl["1510/US"] == 0  # GL only: 150.00 invoiced, 150.00 credited


def test_customer_ledger_settings(tmp_path: Path) -> None:
    from connectors.settings import ConfigurationError, load_settings

    config = tmp_path / "config.toml"
    base = '[m3]\nbase_url = "http://m3.example"\nuser = "u"\npassword = "p"\n'
    config.write_text(base)
    m3 = load_settings(tmp_path).require_m3()
    assert (m3.customer_ledger, m3.receivable_account, m3.payment_clearing_account) == ("auto", "1510", "1519")
    config.write_text(
        base + 'customer_ledger = "allocate"\nreceivable_account = "1511"\npayment_clearing_account = "1598"\n'
    )
    m3 = load_settings(tmp_path).require_m3()
    assert (m3.customer_ledger, m3.receivable_account, m3.payment_clearing_account) == ("allocate", "1511", "1598")
    config.write_text(base + 'customer_ledger = "sometimes"\n')
    with pytest.raises(ConfigurationError, match="customer_ledger .* must be one of auto, allocate, gl-clearing"):
        load_settings(tmp_path).require_m3()


def test_reverse_pays_back_and_reposting_pays_once(prefect_api_url: str, live_m3, tmp_path: Path) -> None:
    """``m3sync reverse`` pays the invoices back (REV-PAY-…: both open again, 1510/US back to
    150.00, 1519/US nil); the settlement posted again as version 2 pays them once more, never twice."""
    from flows.connections import open_connections
    from flows.reversal import reverse_settlement
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    settlement = _settlement(tmp_path, "50.00", "127.50")
    sid = settlement.stem
    assert settlement_reconciliation(files=[str(settlement)], home=str(home))["settlements"][0]["status"] == "posted"

    with open_connections(home, sandbox=False) as connections:
        reversed_ = reverse_settlement(connections, sid, date(2024, 10, 28))
    assert reversed_.status == "reversed", reversed_.reasons
    assert [v.key for v in reversed_.vouchers] == [f"REV-PAY-{sid}", f"REV-AMZ-{sid}-202410"]
    assert sorted(_open_items(ionapi).values()) == ["0", "0"]  # both invoices open again
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("150.00") and gl["1510/US"] == Decimal("150.00") and gl["1519/US"] == 0

    again = settlement_reconciliation(files=[str(settlement)], home=str(home))
    (entry,) = again["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert set(_open_items(ionapi).values()) == {"9"}
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("0.00") and gl["1510/US"] == 0 and gl["1519/US"] == 0
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 3  # PAY, REV-PAY, PAY-…-v2


def test_a_mapping_without_the_receivable_settles_nothing_in_the_ledger(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    """The summary preset books sales to revenue (M3 does not invoice the orders): no allocation,
    even on a tenant whose ledger holds open Amazon invoices."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    result = settlement_reconciliation(
        files=[str(_settlement(tmp_path, "50.00", "127.50"))], home=str(home), mapping="summary"
    )
    assert result["customer_ledger"]["mode"] == "gl-clearing"
    assert "mapping summary books nothing to the receivable 1510" in result["customer_ledger"]["reason"]
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 0


def test_thousands_of_invoices_take_several_payment_batches_within_the_voucher_line_limit() -> None:
    """2,000 invoices: 998 + 998 + 4 (each batch's voucher: 998 invoice lines + 1 clearing line = 999)."""
    allocations = tuple(InvoiceAllocation(f"O{i}", "AMZUS", f"AZ{i}", 2024, 100) for i in range(2000))
    batches = payment_batches("123", 1, allocations)
    assert MAX_PAYMENT_LINES == 998
    assert [(key, len(chunk)) for key, chunk in batches] == [
        ("PAY-123-P1", 998),
        ("PAY-123-P2", 998),
        ("PAY-123-P3", 4),
    ]
    assert [a for _, chunk in batches for a in chunk] == list(allocations)  # every invoice once, in order
    assert payment_batches("123", 2, allocations[:5]) == [("PAY-123-v2", allocations[:5])]
    assert payment_batches("123", 1, ()) == []


def test_a_routed_settlement_pays_in_its_division_at_its_rate_and_reverses_there(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    """Amazon.de routed to division 400 (local currency SEK) at the configured rate 11.4523 (the
    division's own table says 11). An AMZDE order invoiced in 400 at 100.00 EUR + 19% VAT = 119.00;
    the settlement: Principal 100.00, Tax 19.00, Commission -15.00 (total 104.00), by hand:
    the voucher credits clearing 1519/DE 100.00 + 19.00; the payment batch, in division 400 and in
    EUR (the invoice's currency), debits 1519/DE 119.00 and credits 1510/DE 119.00, each at ARAT
    11.4523: 119.00 x 11.4523 = 1362.8237 -> 1362.82 on both sides, balanced (no rounding line),
    so the local check passes. The reversal pays it back in 400 at the same rate."""
    from flows.connections import open_connections
    from flows.reversal import reverse_settlement
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write('[m3.divisions]\nDE = "400"\n[m3.rates.400]\nEUR = "11.4523"\n')
    _admin(server.base_url, "POST", "rates", {"divi": "400", "currency": "EUR", "rate": "11"})
    order = "302-0000000-7000009"
    with M3Client.from_ionapi(ionapi, divi="400") as client:  # the order (and its invoice) in division 400
        ops = M3Operations(client, "brief", divi="400")
        itno = client.execute("MMS080MI", "LstItemBal", {"WHLO": "100"}, maxrecs=1)[0]["ITNO"]
        line = OrderLineRequest(itno=itno, quantity=1, unit_price=Decimal("100.00"))
        orno = ops.create_order(OrderRequest(cuno="AMZDE", customer_order_ref=order, order_type="AMZ", lines=(line,)))
    _admin(server.base_url, "POST", "advance", {"to": "77", "orders": [orno.orno], "date": "20241015"})
    assert _admin(server.base_url, "GET", "customer-ledger?divi=400")["ledger"] == {"AMZDE": "119.00"}

    sid = "20000000099"
    rows = [("ItemPrice", "Principal", "100.00"), ("ItemPrice", "Tax", "19.00"), ("ItemFees", "Commission", "-15.00")]
    tsv = tmp_path / f"{sid}.tsv"
    tsv.write_text(
        "\n".join(
            [
                HEADER,
                f"{sid}\t2024-10-09 14:28:38 UTC\t2024-10-23 14:28:39 UTC\t2024-10-25 14:28:39 UTC\t104.00\tEUR"
                + "\t" * 18,
                *(
                    f"{sid}\t\t\t\t\t\tOrder\t{order}\t{order}\t\tSHP\tAmazon.de\t{t}\t{d}\t{a}\t"
                    "AFN\t2024-10-18\t2024-10-18 02:58:02 UTC\t9000001\t\t\tSKU-1\t1\t"
                    for t, d, a in rows
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = settlement_reconciliation(files=[str(tsv)], home=str(home))
    assert result["customer_ledger"]["divisions"]["400"]["mode"] == "allocate", result["customer_ledger"]
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert any(f"(payment PAY-{sid} (400/2024/AZ/" in r for r in entry["reasons"]), entry["reasons"]
    found = _admin(server.base_url, "GET", "customer-ledger?divi=400")
    assert found["ledger"] == {"AMZDE": "0.00"}
    gl = {f"{b['account']}/{b['ait3']}": Decimal(b["balance"]) for b in found["gl"]}
    assert gl["1510/DE"] == 0 and gl["1519/DE"] == 0
    assert _admin(server.base_url, "GET", "customer-ledger")["ledger"] == {}  # nothing in the default division

    def payments() -> list[tuple[str, Decimal, Decimal, Decimal | None, bool]]:
        with M3Client.from_ionapi(ionapi) as client:
            ops = M3Operations(client, "brief", divi="400")
            heads = client.execute("GLS200MI", "LstVouchersByDt", {"DIVI": "400", "FDAT": 20241001, "TDAT": 20241031})
            return sorted(
                (ln.dimensions[0], ln.amount, ln.local_amount, ln.rate, ln.added_by_m3)
                for h in heads
                if h["VTXT"].startswith("Payment batch")
                for ln in ops.read_voucher("400", int(h["YEA4"]), h["VONO"]).lines
            )

    rate = Decimal("11.4523")
    assert payments() == [
        ("1510", Decimal("-119.00"), Decimal("-1362.82"), rate, False),
        ("1519", Decimal("119.00"), Decimal("1362.82"), rate, False),
    ]

    with open_connections(home, sandbox=False) as connections:
        reversed_ = reverse_settlement(connections, sid, date(2024, 10, 28))
    assert reversed_.status == "reversed", reversed_.reasons
    assert payments() == [
        ("1510", Decimal("-119.00"), Decimal("-1362.82"), rate, False),
        ("1510", Decimal("119.00"), Decimal("1362.82"), rate, False),
        ("1519", Decimal("-119.00"), Decimal("-1362.82"), rate, False),
        ("1519", Decimal("119.00"), Decimal("1362.82"), rate, False),
    ]
    assert _admin(server.base_url, "GET", "customer-ledger?divi=400")["ledger"] == {"AMZDE": "119.00"}


# --- payment differences written off ([m3] payment_write_off, category payment_differences) ---


@pytest.mark.parametrize(
    ("first_principal", "total", "open_after", "written_off", "note"),
    [
        # paid 99.98 on 100.00: closed, 0.02 debited to 3741; total 99.98 - 15 + 50 - 7.50
        ("99.98", "127.48", "0.00", Decimal("0.02"), "net 0.02 USD"),
        # paid 99.90: 0.10 is beyond the 0.05 limit, a short payment: stays open, nothing written off
        ("99.90", "127.40", "0.10", None, None),
        # overpaid 100.03: closed, 0.03 credited to 3741
        ("100.03", "127.53", "0.00", Decimal("-0.03"), "net -0.03 USD"),
    ],
)
def test_a_few_cents_off_are_written_off_and_a_short_payment_stays_open(
    prefect_api_url: str,
    live_m3,
    tmp_path: Path,
    first_principal: str,
    total: str,
    open_after: str,
    written_off: Decimal | None,
    note: str | None,
) -> None:
    """Invoices 100.00 and 50.00 (AMZUS); order 1 is paid ``first_principal``, order 2 50.00.
    Within the default limit 0.05 the payment pays invoice 1 in full: Dr 1519 what Amazon paid,
    Dr/Cr 3741 the difference, Cr 1510 150.00; the ledger and GL 1510 end at nil. Beyond it the
    difference stays open on the invoice, on both sides."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    paid = Decimal(first_principal) + Decimal("50.00")
    result = settlement_reconciliation(
        files=[str(_settlement(tmp_path, "50.00", total, first_principal))], home=str(home)
    )
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal(open_after) and gl["1510/US"] == ledger  # the ledger and the GL agree
    assert gl["1519/US"] == 0
    (reason,) = [r for r in entry["reasons"] if r.startswith("customer ledger")]
    if written_off is None:
        assert "3741/US" not in gl and "written off" not in reason, reason
        assert sorted(_open_items(ionapi).values()) == ["0", "9"]
        assert sorted(_payment_lines(server.base_url, ionapi)) == [("1510/US", -paid), ("1519/US", paid)]
    else:
        assert gl["3741/US"] == written_off
        assert set(_open_items(ionapi).values()) == {"9"}  # both invoices closed
        assert f"payment differences of 1 invoice(s) within 0.05 USD each written off to 3741 ({note}" in reason
        assert sorted(_payment_lines(server.base_url, ionapi)) == sorted(
            [("1510/US", Decimal("-150.00")), ("1519/US", paid), ("3741/US", written_off)]
        )


def test_a_lost_answer_writes_off_once_and_reversal_pays_the_write_off_back(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    """Order 1 paid 99.98 (0.02 written off). The charge's answer is lost and then the control's:
    the batch resumes, M3 refuses the charge (and later the lines) again, so 3741 carries 0.02
    once. ``m3sync reverse`` pays the batch back with its write-off: invoices open at 150.00
    again, 3741 and 1519 back to nil."""
    from flows.connections import open_connections
    from flows.reversal import reverse_settlement
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice_orders(server.base_url, ionapi)
    _admin(
        server.base_url,
        "POST",
        "faults",
        {"drop_after_commit": 2, "transactions": ["ARS040MI/AddBatchCharge", "ARS040MI/ControlBatch"]},
    )
    settlement = _settlement(tmp_path, "50.00", "127.48", "99.98")
    result = settlement_reconciliation(files=[str(settlement)], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert _admin(server.base_url, "GET", "faults")["drops_left"] == 0  # every lost answer happened
    _admin(server.base_url, "DELETE", "faults")
    ledger, gl = _ledger(server.base_url)
    assert ledger == 0 and gl["1510/US"] == 0 and gl["1519/US"] == 0
    assert gl["3741/US"] == Decimal("0.02")  # once, not 0.04
    assert _admin(server.base_url, "GET", "state")["payment_batches"] == 1

    with open_connections(home, sandbox=False) as connections:
        reversed_ = reverse_settlement(connections, settlement.stem, date(2024, 10, 28))
    assert reversed_.status == "reversed", reversed_.reasons
    ledger, gl = _ledger(server.base_url)
    assert ledger == Decimal("150.00") and gl["1510/US"] == Decimal("150.00")
    assert gl["3741/US"] == 0 and gl["1519/US"] == 0


def test_write_offs_are_computed_per_invoice_within_the_limit() -> None:
    """Limit 0.05 (5 cents). Order A: invoice AZ1 100.00 paid 99.98 by its sale plus nothing
    else -> 0.02 written off. Order B: invoice AZ2 100.00 paid 99.90 -> 0.10 beyond the limit,
    nothing. Order C: invoice AZ3 100.00 paid 60.00 by its sale and 40.03 by an adjustment ->
    overpaid 0.03 (the total on the invoice counts), written off on its last allocation, -0.03.
    Order D: credit note AZ4 -50.00 refunded -49.96 -> -0.04 written off. Order E: invoice AZ5
    100.00 paid exactly: nothing."""
    lines = pd.DataFrame(
        {
            "order_id": ["A", "B", "C", "C", "D", "E"],
            "transaction_type": ["Order", "Order", "Order", "Adjustment", "Refund", "Order"],
            "amount_minor": [9998, 9990, 6000, 4003, -4996, 10000],
            "account": ["1510"] * 6,
        }
    )
    invoices = pd.DataFrame(
        {
            "cuor": ["A", "B", "C", "D", "E"],
            "ivdt": pd.to_datetime(["2024-10-01"] * 5),
            "gross_minor": [10000, 10000, 10000, -5000, 10000],
            "cuno": ["AMZDE"] * 5,
            "cino": ["AZ1", "AZ2", "AZ3", "AZ4", "AZ5"],
            "year": [2024] * 5,
        }
    )
    total = 9998 + 9990 + 6000 + 4003 - 4996 + 10000
    result = allocate_payment(lines, invoices, "1510", total_minor=total, write_off_limit_minor=5)
    assert [(a.invoice, a.amount_minor, a.write_off_minor) for a in result.allocations] == [
        ("AZ1", 9998, 2),
        ("AZ2", 9990, 0),
        ("AZ3", 4003, 0),  # the adjustment comes first (sorted by transaction type), the sale last
        ("AZ3", 6000, -3),
        ("AZ4", -4996, -4),
        ("AZ5", 10000, 0),
    ]
    assert (result.written_off_minor, result.written_off_invoices) == (2 - 3 - 4, 3)
    assert [a.settles_minor for a in result.allocations if a.invoice == "AZ4"] == [-5000]
    assert result.allocated_minor == total and result.unallocated_minor == 0  # Amazon's amounts unchanged
    nothing = allocate_payment(lines, invoices, "1510", total_minor=total)  # limit 0: never
    assert nothing.written_off_minor == 0 and nothing.written_off_invoices == 0


def test_write_off_limit_in_minor_units() -> None:
    assert limit_in_minor_units(Decimal("0.05"), 2) == 5
    assert limit_in_minor_units(Decimal("0.059"), 2) == 5  # rounded down: never more than the limit
    assert limit_in_minor_units(Decimal("0.05"), 0) == 0  # JPY: no write-off finer than one yen
    assert limit_in_minor_units(Decimal("3"), 0) == 3
    assert limit_in_minor_units(Decimal("0"), 2) == 0


def test_payment_write_off_setting(tmp_path: Path) -> None:
    from connectors.settings import ConfigurationError, load_settings

    config = tmp_path / "config.toml"
    base = '[m3]\nbase_url = "http://m3.example"\nuser = "u"\npassword = "p"\n'
    config.write_text(base)
    assert load_settings(tmp_path).require_m3().payment_write_off == Decimal("0.05")
    for given, expected in (('"0.10"', Decimal("0.10")), ('"0"', Decimal(0)), ("0", Decimal(0))):
        config.write_text(base + f"payment_write_off = {given}\n")
        assert load_settings(tmp_path).require_m3().payment_write_off == expected
    for bad in ("0.05", '"a few cents"', '"-0.01"', '"NaN"'):  # a TOML float is binary: not exact
        config.write_text(base + f"payment_write_off = {bad}\n")
        with pytest.raises(ConfigurationError, match="payment_write_off") as caught:
            load_settings(tmp_path).require_m3()
        assert "\n" not in str(caught.value)
