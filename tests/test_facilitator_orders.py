"""Facilitator tax per order (issue 11, item 1 follow-up): on EU/UK marketplaces Amazon is the
deemed supplier for SOME orders only (non-established sellers, low-value imports). Those orders
carry withheld tax (ItemWithheldTax MarketplaceFacilitatorVAT-*) and M3 invoices them net; the
others carry the VAT the seller charged and M3 invoiced gross. ``facilitator = "auto"`` (the
shipped default there) tells them apart by the file's own rows.

The FR settlement below, worked by hand (EUR; amounts in cents; voucher amounts debit +):

    order D-1 (deemed supplier): Principal 60.65, Tax 12.13, MarketplaceFacilitatorVAT -12.13
    order N-1 (the seller's VAT): Principal 50.00, Tax 10.00, MarketplaceFacilitatorVAT 0.00
                                                                           total 120.65

    1510 receivable: 60.65 (D-1, what M3 invoiced net) + 50.00 + 10.00 (N-1, gross) = Cr 120.65
    2615 facilitator clearing: D-1's tax 12.13 - withheld 12.13 = nil      -> no line
    2610 output tax: nothing (M3 booked N-1's VAT on its invoice; D-1's is not the seller's)
    1930 deposit: Dr 120.65
"""

from __future__ import annotations

import pandas as pd
import pytest
from _settlement_builders import make_settlement

from reconciliation.ledger import allocate_payment
from reconciliation.mapping import load_mapping
from reconciliation.matching import INVOICE_COLUMNS, reconcile_orders
from reconciliation.pipeline import map_settlement_lines, prepare_settlement
from reconciliation.tax import FACILITATOR_AUTO, TaxProfileError, tax_profiles

POSTED = "2024-10-18 10:00:00"
REFUNDED = "2024-10-21 10:00:00"
FR = dict(currency="EUR", marketplace="Amazon.fr")
BS_FR = ("", "FR", "", "", "", "")
PL_FR = ("AMZ", "FR", "", "", "", "")
DEEMED, OWN = "405-0000000-0000001", "405-0000000-0000002"
MIXED = [
    ("Order", "ItemPrice", "Principal", 6065, POSTED, DEEMED),
    ("Order", "ItemPrice", "Tax", 1213, POSTED, DEEMED),
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal", -1213, POSTED, DEEMED),
    ("Order", "ItemPrice", "Principal", 5000, POSTED, OWN),
    ("Order", "ItemPrice", "Tax", 1000, POSTED, OWN),
    # EU files carry a zero facilitator-VAT row on such orders too: it withholds nothing
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal", 0, POSTED, OWN),
]


def _voucher_lines(rows, preset="invoice-clearing", tax=None) -> list[tuple[str, tuple[str, ...], int]]:
    prepared = prepare_settlement(make_settlement(rows, **FR), load_mapping(preset), tax=tax)
    assert not prepared.held, prepared.reasons
    [voucher] = prepared.gates.vouchers
    assert voucher.debit_minor == voucher.credit_minor
    return sorted((line.account, line.dimensions, line.amount_minor) for line in voucher.lines)


def test_the_shipped_fr_profile_tells_the_orders_apart_by_their_withheld_tax():
    profiles = tax_profiles()
    assert profiles["FR"].facilitator == FACILITATOR_AUTO and profiles["FR"].m3_invoices == "net"
    assert profiles["US"].facilitator is True  # every US order: facilitator laws in every state
    assert _voucher_lines(MIXED) == [("1510", BS_FR, -12065), ("1930", BS_FR, 12065)]


def test_facilitator_false_is_the_old_booking_by_explicit_choice():
    # [tax.FR] facilitator = false: the withheld tax reverses output tax M3 never booked for D-1:
    # 1510 Cr 60.65 + 12.13 + 50.00 + 10.00 = 132.78; 2610 Dr 12.13; 1930 Dr 120.65.
    tax = tax_profiles({"FR": {"facilitator": False}})
    assert _voucher_lines(MIXED, tax=tax) == [("1510", BS_FR, -13278), ("1930", BS_FR, 12065), ("2610", BS_FR, 1213)]


def test_under_the_summary_preset_only_the_sellers_own_vat_is_output_tax():
    # 3010 revenue Cr 60.65 + 50.00 = 110.65; 2610 output VAT Cr 10.00 (N-1 only); D-1's tax and
    # withheld tax net on 2615 (no line); 1930 Dr 120.65.
    assert _voucher_lines(MIXED, "summary") == [
        ("1930", BS_FR, 12065),
        ("2610", BS_FR, -1000),
        ("3010", PL_FR, -11065),
    ]


def test_a_refund_of_a_facilitator_order_nets_on_the_clearing():
    # D-1 refunded in full (its refund gives back the withheld tax too): 2615 takes +12.13 - 12.13
    # (sale) and -12.13 + 12.13 (refund): nil. 1510: 60.65 - 60.65 (D-1) + 60.00 (N-1) = Cr 60.00.
    refund = [
        ("Refund", "ItemPrice", "Principal", -6065, REFUNDED, DEEMED),
        ("Refund", "ItemPrice", "Tax", -1213, REFUNDED, DEEMED),
        ("Refund", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal", 1213, REFUNDED, DEEMED),
    ]
    assert _voucher_lines([*MIXED, *refund]) == [("1510", BS_FR, -6000), ("1930", BS_FR, 6000)]
    # the refund alone, in a later settlement: its own withheld tax makes it the facilitator's.
    # 1510 Dr 60.65 (M3's net credit note); 2615 nil; the negative total is payable: 2450 Cr 60.65.
    assert _voucher_lines(refund) == [("1510", BS_FR, 6065), ("2450", BS_FR, -6065)]
    # N-1's refund (no withheld tax) reverses on the receivable, tax included (M3's credit note is
    # gross): 1510 Dr 60.65 + 60.00 = 120.65; 2450 Cr 120.65.
    own_refund = [
        ("Refund", "ItemPrice", "Principal", -5000, REFUNDED, OWN),
        ("Refund", "ItemPrice", "Tax", -1000, REFUNDED, OWN),
    ]
    assert _voucher_lines([*refund, *own_refund]) == [("1510", BS_FR, 12065), ("2450", BS_FR, -12065)]


def test_one_truth_per_line_for_every_stage_after_mapping():
    mapping = load_mapping("invoice-clearing")
    lines = map_settlement_lines(make_settlement(MIXED, **FR), mapping).lines
    booked = {
        (row.order_id, row.amount_type, row.amount_description): (row.category, row.account)
        for row in lines.itertuples()
    }
    assert booked[(DEEMED, "ItemPrice", "Tax")] == ("facilitator_tax_clearing", "2615")
    assert booked[(DEEMED, "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal")] == (
        "facilitator_tax_clearing",
        "2615",
    )
    assert booked[(OWN, "ItemPrice", "Tax")] == ("tax", "1510")
    assert booked[(DEEMED, "ItemPrice", "Principal")] == ("principal", "1510")
    # US: every order is the facilitator's, even one whose withheld tax is not in this file
    us = make_settlement(
        [("Order", "ItemPrice", "Principal", 1000, POSTED, "111-1"), ("Order", "ItemPrice", "Tax", 80, POSTED, "111-1")]
    )
    us_lines = map_settlement_lines(us, mapping).lines
    assert us_lines.loc[us_lines["amount_description"] == "Tax", "account"].tolist() == ["2615"]


def _invoices(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """M3's invoices (cuor, net, gross) in EUR, with the customer ledger's columns."""
    frame = pd.DataFrame(
        [
            {
                "orno": f"100000{number}",
                "cuor": cuor,
                "ivno": f"{number}",
                "ivdt": pd.Timestamp("2024-10-17"),
                "currency": "EUR",
                "net_minor": net,
                "tax_minor": gross - net,
                "gross_minor": gross,
                "cuno": "AMZFR",
                "cino": f"FR{number}",
                "year": 2024,
            }
            for number, (cuor, net, gross) in enumerate(rows, start=1)
        ]
    )
    return frame.astype({**INVOICE_COLUMNS, "year": "int64"})


# M3 invoiced D-1 net (60.65: Amazon owes its VAT) and N-1 gross (50.00 + 10.00 VAT).
MIXED_INVOICES = [(DEEMED, 6065, 6065), (OWN, 5000, 6000)]


def test_matching_compares_each_order_with_its_own_invoicing():
    # D-1 settled 60.65 + 12.13 - 12.13 = 60.65 = net invoice; N-1 settled 60.00 = gross invoice.
    settlement = make_settlement(MIXED, **FR)
    matched = reconcile_orders(settlement.lines, _invoices(MIXED_INVOICES))
    assert matched.counts["matched"] == 2, matched.orders
    assert dict(zip(matched.orders["order_id"], matched.orders["settled_minor"])) == {DEEMED: 6065, OWN: 6000}


def test_the_customer_ledger_pays_each_invoice_what_it_carries():
    # The payment allocates the lines on the receivable: D-1 60.65 (its tax is on 2615, not the
    # buyer's to pay through M3's net invoice) and N-1 60.00; nothing left unallocated.
    settlement = make_settlement(MIXED, **FR)
    lines = map_settlement_lines(settlement, load_mapping("invoice-clearing")).lines
    allocation = allocate_payment(lines, _invoices(MIXED_INVOICES), "1510", settlement.total_minor)
    assert sorted((a.invoice, a.amount_minor) for a in allocation.allocations) == [("FR1", 6065), ("FR2", 6000)]
    assert (allocation.receivable_minor, allocation.unallocated_minor) == (12065, 0)


@pytest.mark.parametrize("value", ["auto", True, False])
def test_facilitator_accepts_true_false_and_auto(value):
    assert tax_profiles({"DE": {"facilitator": value}})["DE"].facilitator == value


def test_a_bad_facilitator_value_names_the_key():
    with pytest.raises(
        TaxProfileError, match=r'\[tax.DE\] facilitator: must be true, false or "auto", got .sometimes.'
    ):
        tax_profiles({"DE": {"facilitator": "sometimes"}})
