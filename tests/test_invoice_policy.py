"""Refunds without an M3 credit note and orders without an M3 invoice: held by default, or
posted where the accountant chose (reconciliation/invoice_policy.py), in-process.

Every voucher figure is worked by hand from the lines below (journal: a line of amount ``a``
books ``-a``; debit positive).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from _settlement_builders import make_settlement

from connectors.settings import ConfigurationError, load_settings
from flows.connections import invoice_policy
from reconciliation.invoice_policy import GATE_INVOICES, InvoicePolicy
from reconciliation.mapping import load_mapping, parse_mapping
from reconciliation.matching import empty_invoices, reconcile_orders
from reconciliation.pipeline import PreparedSettlement, prepare_settlement, with_invoice_policy
from reconciliation.tax import TaxProfiles, tax_profiles

DAY = "2024-10-15"
# Amazon.de, EUR. O-1 sold and invoiced in M3 (119.00); O-2 refunded, M3 invoiced it in an
# earlier settlement's window but has no credit note; O-3 sold, never invoiced in M3.
DE_ROWS = [
    ("Order", "ItemPrice", "Principal", 10000, DAY, "O-1"),
    ("Order", "ItemPrice", "Tax", 1900, DAY, "O-1"),
    ("Order", "ItemFees", "Commission", -1500, DAY, "O-1"),
    ("Refund", "ItemPrice", "Principal", -2000, DAY, "O-2"),
    ("Refund", "ItemPrice", "Tax", -400, DAY, "O-2"),
    ("Refund", "ItemFees", "Commission", 300, DAY, "O-2"),
    ("Refund", "ItemFees", "RefundCommission", -60, DAY, "O-2"),
    ("Order", "ItemPrice", "Principal", 6115, DAY, "O-3"),
    ("Order", "ItemPrice", "Tax", 1162, DAY, "O-3"),
    ("Order", "ItemFees", "Commission", -800, DAY, "O-3"),
]
# Deposit: 100 + 19 - 15 - 20 - 4 + 3 - 0.60 + 61.15 + 11.62 - 8 = 147.17
DE_TOTAL = 14717


def _invoices(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """M3 documents (cuor, ivno, gross minor; a credit note is negative), EUR, dated in the window."""
    frame = pd.DataFrame(
        [
            {
                "orno": f"M{ivno}",
                "cuor": cuor,
                "ivno": ivno,
                "ivdt": pd.Timestamp(DAY),
                "currency": "EUR",
                "net_minor": gross,
                "tax_minor": 0,
                "gross_minor": gross,
            }
            for cuor, ivno, gross in rows
        ],
        columns=list(empty_invoices().columns),
    )
    return frame.astype(empty_invoices().dtypes.to_dict())


def _policy_applied(
    rows: list[tuple],
    invoices: pd.DataFrame,
    policy: InvoicePolicy,
    *,
    mapping_name: str = "invoice-clearing",
    tax: TaxProfiles | None = None,
    **kw,
) -> tuple[PreparedSettlement, PreparedSettlement]:
    settlement = make_settlement(rows, **kw)
    mapping = load_mapping(mapping_name)
    prepared = prepare_settlement(settlement, mapping, tax=tax)
    assert not prepared.held, prepared.reasons
    reconciliation = reconcile_orders(prepared.settlement.lines, invoices)
    return prepared, with_invoice_policy(prepared, reconciliation, mapping, policy, tax=tax)


def _accounts(prepared: PreparedSettlement) -> dict[str, int]:
    """Account -> amount (minor, debit +) of the one voucher; each account on one line."""
    (voucher,) = prepared.gates.vouchers
    accounts = [line.account for line in voucher.lines]
    assert len(accounts) == len(set(accounts)), accounts
    return {line.account: line.amount_minor for line in voucher.lines}


DE = dict(currency="EUR", marketplace="Amazon.de")
DE_INVOICES = [("O-1", "100000001", 11900), ("O-2", "100000002", 2400)]


def test_default_holds_naming_the_orders_and_amounts_and_how_to_release() -> None:
    _, held = _policy_applied(DE_ROWS, _invoices(DE_INVOICES), InvoicePolicy(), **DE)
    assert held.held and held.gates.vouchers == ()
    failures = {f.gate for f in held.gates.failures}
    assert failures == {GATE_INVOICES}
    missing, refunds = held.gates.reasons
    assert "1 order (O-3) without an M3 invoice (sold 72.77 EUR)" in missing
    assert "--missing-invoices suspense" in missing and "Create the invoices in M3" in missing
    assert "refunds of 1 order (O-2) without an M3 credit note (refunded 24.00 EUR)" in refunds
    assert "--refunds-without-credit returns" in refunds and "Create the credit notes in M3" in refunds


def test_returns_and_suspense_post_where_chosen() -> None:
    # Amazon.de is no facilitator marketplace and M3 invoices it gross: the refunded VAT is output
    # tax reversed, on 2610 with the output VAT code configured for DE.
    with_code = tax_profiles({"DE": {"output_vat_code": "11"}})
    before, chosen = _policy_applied(
        DE_ROWS, _invoices(DE_INVOICES), InvoicePolicy("returns", "suspense"), tax=with_code, total_minor=DE_TOTAL, **DE
    )
    # Before the choice (what was posted until now): refund and missing sale on the receivable 1510.
    assert _accounts(before)["1510"] == -(10000 + 1900 - 2000 - 400 + 6115 + 1162)
    assert not chosen.held, chosen.reasons
    assert _accounts(chosen) == {
        "1510": -11900,  # O-1's invoice settled: Cr 119.00
        "3090": 2000,  # O-2's refunded principal to sales returns: Dr 20.00
        "2610": 400,  # O-2's refunded VAT reverses output tax: Dr 4.00
        "2998": -7277,  # O-3 sold without an invoice, to suspense: Cr 72.77
        "6110": 1500 - 300 + 800,  # commissions: Dr 20.00
        "6140": 60,  # refund commission: Dr 0.60
        "1930": DE_TOTAL,  # deposit: Dr 147.17
    }
    notes = " | ".join(chosen.reasons)
    assert "O-3" in notes and "missing_invoice_suspense 2998" in notes
    assert "O-2" in notes and "sales_returns 3090" in notes and "sales_returns_tax 2610" in notes
    moved = chosen.mapped.lines.set_index(["order_id", "amount_description"])["category"]
    assert moved[("O-2", "Tax")] == "sales_returns_tax"
    assert {line.account: line.vat_code for line in chosen.gates.vouchers[0].lines}["2610"] == "11"
    assert moved[("O-3", "Commission")] == "referral_commission"  # fees keep their category


def test_one_choice_posts_and_the_other_still_holds() -> None:
    _, chosen = _policy_applied(DE_ROWS, _invoices(DE_INVOICES), InvoicePolicy("returns", "hold"), **DE)
    assert chosen.held
    (reason,) = chosen.gates.reasons
    assert "O-3" in reason and "O-2" not in reason


def test_the_credit_note_releases_the_hold() -> None:
    credited = [*DE_INVOICES, ("O-2", "100000009", -2400), ("O-3", "100000010", 7277)]
    prepared, after = _policy_applied(DE_ROWS, _invoices(credited), InvoicePolicy(), **DE)
    assert after is prepared  # every order has its document: nothing held, nothing moved


def test_facilitator_tax_stays_on_the_clearing_and_nets_with_the_withheld_tax() -> None:
    """Amazon.com: Amazon is the facilitator and M3 invoices net (the shipped US tax profile).
    U-1 was invoiced (10.00 net) and refunded without a credit note: the refund gives back 0.80
    of tax and 0.80 of withheld tax. U-2 was sold (20.00 + 1.60 tax, 1.60 withheld), never invoiced."""
    rows = [
        ("Refund", "ItemPrice", "Principal", -1000, DAY, "U-1"),
        ("Refund", "ItemPrice", "Tax", -80, DAY, "U-1"),
        ("Refund", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", 80, DAY, "U-1"),
        ("Order", "ItemPrice", "Principal", 2000, DAY, "U-2"),
        ("Order", "ItemPrice", "Tax", 160, DAY, "U-2"),
        ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -160, DAY, "U-2"),
    ]
    invoices = _invoices([("U-1", "100000001", 1000)]).assign(currency="USD")
    _, held = _policy_applied(rows, invoices, InvoicePolicy())
    missing, refunds = held.gates.reasons
    assert "1 order (U-2) without an M3 invoice (sold 20.00 USD)" in missing
    assert "refunds of 1 order (U-1) without an M3 credit note (refunded 10.00 USD)" in refunds
    _, chosen = _policy_applied(rows, invoices, InvoicePolicy("returns", "suspense"), total_minor=1000)
    # U-1's refunded principal: 3090 Dr 10.00. U-2's sale: 2998 Cr 20.00. The tax stays on the
    # facilitator clearing 2615: Dr 0.80 (U-1 tax refunded) Cr 0.80 (U-1 withheld given back)
    # Cr 1.60 (U-2 tax) Dr 1.60 (U-2 withheld): nil, so no line; nothing on the output tax 2610.
    # Deposit -10.00 - 0.80 + 0.80 + 20.00 + 1.60 - 1.60 = 10.00: 1930 Dr 10.00.
    assert not chosen.held, chosen.reasons
    assert _accounts(chosen) == {"3090": 1000, "2998": -2000, "1930": 1000}
    booked = chosen.mapped.lines.set_index(["order_id", "amount_description"])[["category", "account"]]
    for order in ("U-1", "U-2"):  # the profile booked the tax to the clearing; the policy left it there
        assert tuple(booked.loc[(order, "Tax")]) == ("facilitator_tax_clearing", "2615")
    assert "tax on the facilitator clearing" in " | ".join(chosen.reasons)


def test_the_summary_preset_waits_for_no_m3_document() -> None:
    prepared, after = _policy_applied(DE_ROWS, _invoices([]), InvoicePolicy(), mapping_name="summary", **DE)
    assert after is prepared and not after.held


def test_first_five_orders_and_the_count() -> None:
    rows = [("Order", "ItemPrice", "Principal", 100, DAY, f"O-{n}") for n in range(1, 8)]
    _, held = _policy_applied(rows, _invoices([]), InvoicePolicy(), **DE)
    (reason,) = held.gates.reasons
    assert "7 orders (O-1, O-2, O-3, O-4, O-5 and 2 more) without an M3 invoice (sold 7.00 EUR)" in reason


def test_a_mapping_without_the_chosen_categories_holds_saying_so() -> None:
    shipped = Path(__file__).resolve().parents[1] / "reconciliation" / "mappings" / "invoice-clearing.yaml"
    document = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    del document["categories"]["sales_returns"]
    mapping = parse_mapping(document, "mine.yaml")
    settlement = make_settlement(DE_ROWS, **DE)
    prepared = prepare_settlement(settlement, mapping)
    reconciliation = reconcile_orders(prepared.settlement.lines, _invoices([*DE_INVOICES, ("O-3", "9", 7277)]))
    held = with_invoice_policy(prepared, reconciliation, mapping, InvoicePolicy(refunds_without_credit="returns"))
    (reason,) = held.gates.reasons
    assert "--refunds-without-credit returns needs the category sales_returns in mapping" in reason


def test_command_line_wins_over_config_and_bad_values_name_where(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[settlement]\nrefunds_without_credit = "returns"\n')
    settings = load_settings(tmp_path, env={})
    assert invoice_policy(settings) == InvoicePolicy("returns", "hold")
    assert invoice_policy(settings, "hold", "suspense") == InvoicePolicy("hold", "suspense")
    with pytest.raises(ConfigurationError, match=r"^--missing-invoices: 'post' is not one of hold, suspense$"):
        invoice_policy(settings, missing_invoices="post")
    (tmp_path / "config.toml").write_text('[settlement]\nmissing_invoices = "later"\n')
    with pytest.raises(ConfigurationError, match=r"\[settlement\] missing_invoices in .*config.toml: 'later'"):
        invoice_policy(load_settings(tmp_path, env={}))
    with pytest.raises(ValueError, match="not one of hold, returns"):
        InvoicePolicy("credit")  # type: ignore[arg-type]  # the wrong value is the point
