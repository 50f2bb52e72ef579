"""Tax per marketplace (issue 11 item 1): hand-worked vouchers for each set-up, the VAT code on
the summary preset's output tax, configuration errors, matching, and VTCD reaching M3.

Journal convention (reconciliation/vouchers.py): a line of amount a books -a (debit +, credit -);
the deposit books +total to 1930 (a negative total, credited, to 2450).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from _settlement_builders import make_settlement

from connectors.m3 import JournalEntry, JournalLine, M3Client, M3Operations
from connectors.settings import ConfigurationError
from flows.connections import load_tax_profiles
from flows.reversal import reversing_entry
from reconciliation.gates import check_gates
from reconciliation.mapping import MappingError, load_mapping, parse_mapping
from reconciliation.marketplaces import MARKETPLACES
from reconciliation.matching import INVOICE_COLUMNS, reconcile_orders
from reconciliation.pipeline import map_settlement_lines
from reconciliation.tax import FeeVat, TaxProfileError, configured_tax_profiles, tax_profiles
from reconciliation.vouchers import build_vouchers
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
from sandbox.server import serve_in_thread

POSTED = "2024-10-18 10:00:00"
JULY_2024 = {"start": "2024-07-09 10:00:00", "end": "2024-07-23 10:00:00", "deposit": "2024-07-25 10:00:00"}


def _bs(code: str) -> tuple[str, ...]:
    return ("", code, "", "", "", "")


def _pl(code: str) -> tuple[str, ...]:
    return ("AMZ", code, "", "", "", "")


def _lines(settlement, preset="invoice-clearing", tax=None):
    mapping = load_mapping(preset)
    [voucher] = build_vouchers(settlement, map_settlement_lines(settlement, mapping, tax), mapping, tax)
    assert voucher.debit_minor == voucher.credit_minor
    return [(line.account, line.dimensions, line.amount_minor, line.vat_code) for line in voucher.lines]


def _us_order():
    return make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 21995, POSTED, "111-0614513-3735533"),
            ("Order", "ItemPrice", "Shipping", 1298, POSTED, "111-0614513-3735533"),
            ("Order", "ItemPrice", "Tax", 1398, POSTED, "111-0614513-3735533"),
            ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -1398, POSTED, "111-0614513-3735533"),
            ("Order", "ItemFees", "Commission", -3496, POSTED, "111-0614513-3735533"),
        ]
    )


def test_us_facilitator_tax_nets_on_the_clearing_account_and_1510_gets_what_m3_invoiced():
    # Total 219.95 + 12.98 + 13.98 - 13.98 - 34.96 = 197.97.
    # 1510: principal 219.95 + shipping 12.98 = 232.93, what M3 invoiced (net)   -> credit 232.93
    # 2615 facilitator clearing: tax 13.98 - withheld 13.98 = 0                  -> no line (nil)
    # 6110 commission 34.96 -> debit; 1930 deposit 197.97 -> debit. 34.96 + 197.97 = 232.93.
    assert _lines(_us_order()) == [
        ("1510", _bs("US"), -23293, ""),
        ("6110", _pl("US"), 3496, ""),
        ("1930", _bs("US"), 19797, ""),
    ]
    # Summary preset: revenue 219.95 (3010) and shipping 12.98 (3020); the tax is not the
    # seller's, so it is no output tax on 2610: it nets on 2615 as well.
    assert _lines(_us_order(), "summary") == [
        ("3010", _pl("US"), -21995, ""),
        ("3020", _pl("US"), -1298, ""),
        ("6110", _pl("US"), 3496, ""),
        ("1930", _bs("US"), 19797, ""),
    ]


def test_us_clearing_nets_across_the_vouchers_of_a_month_split():
    # Tax collected on 30 Sep, withheld again on 1 Oct: each month's voucher carries its side on
    # 2615 (Sep credit 13.98, Oct debit 13.98): nil across the settlement.
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 10000, "2024-09-30 23:00:00", "111-1"),
            ("Order", "ItemPrice", "Tax", 1398, "2024-09-30 23:00:00", "111-1"),
            ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -1398, "2024-10-01 01:00:00", "111-1"),
        ],
        start="2024-09-25 00:00:00",
    )
    mapping = load_mapping("invoice-clearing")
    september, october = build_vouchers(settlement, map_settlement_lines(settlement, mapping), mapping)
    clearing = [line.amount_minor for v in (september, october) for line in v.lines if line.account == "2615"]
    assert clearing == [-1398, 1398]


def test_us_when_m3_invoices_gross_the_withheld_tax_reverses_m3s_output_tax():
    # [tax.US] m3_invoices = "gross": M3's invoice was 246.91 (with tax 13.98 on its output tax
    # 2610). 1510 credited 219.95 + 12.98 + 13.98 = 246.91; withheld 13.98 debits 2610.
    tax = tax_profiles({"US": {"m3_invoices": "gross"}})
    assert _lines(_us_order(), tax=tax) == [
        ("1510", _bs("US"), -24691, ""),
        ("2610", _bs("US"), 1398, ""),
        ("6110", _pl("US"), 3496, ""),
        ("1930", _bs("US"), 19797, ""),
    ]


def test_uk_fees_include_20_percent_vat_split_per_voucher_and_category_rounded_half_up():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 5000, POSTED, "202-1"),
            ("Order", "ItemFees", "Commission", -864, POSTED, "202-1"),
            ("Order", "ItemFees", "FBAPerUnitFulfillmentFee", -293, POSTED, "202-1"),
            ("Order", "ItemFees", "DigitalServicesFee", -3, POSTED, "202-1"),
        ],
        currency="GBP",
        marketplace="Amazon.co.uk",
    )
    tax = tax_profiles({"UK": {"fee_vat": {"vat_code": "21"}}})
    # VAT = ROUND_HALF_UP(gross x 0.20 / 1.20) per category:
    #   commission 8.64 / 6 = 1.44 exactly -> 6110 7.20
    #   FBA 2.93 / 6 = 0.48833 -> 0.49 -> 6120 2.44
    #   digital services 0.03 / 6 = 0.005 -> 0.01 (the half rounds up) -> 6130 0.02
    # 2640 input VAT 1.44 + 0.49 + 0.01 = 1.94, with the VAT code. Total 50.00 - 11.60 = 38.40.
    assert _lines(settlement, tax=tax) == [
        ("1510", _bs("UK"), -5000, ""),
        ("2640", _bs("UK"), 194, "21"),
        ("6110", _pl("UK"), 720, ""),
        ("6120", _pl("UK"), 244, ""),
        ("6130", _pl("UK"), 2, ""),
        ("1930", _bs("UK"), 3840, ""),
    ]


def test_de_reverse_charge_posts_the_self_assessment_pair_each_with_its_code():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 15000, "2024-07-18 10:00:00", "302-1"),
            ("Order", "ItemFees", "Commission", -10000, "2024-07-18 10:00:00", "302-1"),
        ],
        currency="EUR",
        marketplace="Amazon.de",
        **JULY_2024,
    )
    tax = tax_profiles({"DE": {"fee_vat": {"vat_code": "31", "output_vat_code": "32"}}})
    # July 2024, before Amazon EU charged German VAT on its fees: reverse charge.
    # Fee 100.00 is net: expense 100.00; 19 % = 19.00 self-assessed: Dr 2641 / Cr 2611.
    # Total 150.00 - 100.00 = 50.00. Debit 19.00 + 100.00 + 50.00 = 169.00 = credit 19.00 + 150.00.
    assert _lines(settlement, tax=tax) == [
        ("1510", _bs("DE"), -15000, ""),
        ("2611", _bs("DE"), -1900, "32"),
        ("2641", _bs("DE"), 1900, "31"),
        ("6110", _pl("DE"), 10000, ""),
        ("1930", _bs("DE"), 5000, ""),
    ]


def test_eu_fee_vat_is_reverse_charge_until_july_2024_and_the_files_tax_rows_from_august():
    """One DE settlement over the change: each voucher takes the treatment of its accounting date."""
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 10000, "2024-07-30 10:00:00", "302-1"),
            ("Order", "ItemFees", "Commission", -1500, "2024-07-30 10:00:00", "302-1"),
            ("Order", "ItemPrice", "Principal", 8000, "2024-08-05 10:00:00", "302-2"),
            ("Order", "ItemFees", "Commission", -1200, "2024-08-05 10:00:00", "302-2"),
            ("AmazonFees", "VINE_ENROLLMENT_FEE", "BASE_FEE", -20000, "2024-08-05 10:00:00"),
            ("AmazonFees", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE", -3800, "2024-08-05 10:00:00"),
        ],
        currency="EUR",
        marketplace="Amazon.de",
        start="2024-07-25 10:00:00",
        end="2024-08-08 10:00:00",
        deposit="2024-08-09 10:00:00",
    )
    mapping = load_mapping("invoice-clearing")
    tax = tax_profiles({"DE": {"fee_vat": {"vat_code": "31", "output_vat_code": "32"}}})  # at every date
    july, august = build_vouchers(settlement, map_settlement_lines(settlement, mapping, tax), mapping, tax)
    # July (dated 2024-07-31): reverse charge on the commission, 15.00 x 0.19 = 2.85 on 2641 Dr and
    # 2611 Cr; month sum 100.00 - 15.00 = 85.00 carried over (1595 Dr).
    assert july.accounting_date == date(2024, 7, 31)
    assert [(l.account, l.amount_minor, l.vat_code) for l in july.lines] == [
        ("1510", -10000, ""),
        ("2611", -285, "32"),
        ("2641", 285, "31"),
        ("6110", 1500, ""),
        ("1595", 8500, ""),
    ]
    # August (dated the deposit, 2024-08-09): separate_rows. The commission 12.00 gets no tax, the
    # Vine fee 200.00 is promotion fees and its TAX_ON_FEE row 38.00 input tax with code 31.
    # Total 100.00 - 15.00 + 80.00 - 12.00 - 200.00 - 38.00 = -85.00: payable to Amazon (2450 Cr).
    # Debit 38.00 + 12.00 + 200.00 = 250.00 = credit 80.00 + 85.00 (carry-over back) + 85.00.
    assert august.accounting_date == date(2024, 8, 9)
    assert [(l.account, l.amount_minor, l.vat_code) for l in august.lines] == [
        ("1510", -8000, ""),
        ("2640", 3800, "31"),
        ("6110", 1200, ""),
        ("6520", 20000, ""),
        ("1595", -8500, ""),
        ("2450", -8500, ""),
    ]


def test_a_fee_with_its_own_tax_row_is_not_taxed_again_under_included():
    """UK, October 2024 (fees include VAT): the Vine fee's TAX_ON_FEE row is its VAT, so only the
    commission is split; a tax row of another transaction (Commingling VAT) changes nothing."""
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 5000, POSTED, "202-1"),
            ("Order", "ItemFees", "Commission", -864, POSTED, "202-1"),
            ("AmazonFees", "VINE_ENROLLMENT_FEE", "BASE_FEE", -10000, POSTED),
            ("AmazonFees", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE", -2000, POSTED),
            ("COMMINGLING_VAT", "OTHER_TRANSACTION", "COMMINGLING_VAT", -57, POSTED),
        ],
        currency="GBP",
        marketplace="Amazon.co.uk",
    )
    tax = tax_profiles({"UK": {"fee_vat": {"vat_code": "21"}}})
    # commission 8.64 x 0.20 / 1.20 = 1.44 -> 6110 7.20; the Vine fee stays 100.00 on 6520 (split
    # too, 16.67 of input VAT would be counted twice); 2640: 1.44 + 20.00 + 0.57 = 22.01.
    # Total 50.00 - 8.64 - 100.00 - 20.00 - 0.57 = -79.21 (2450 Cr).
    assert _lines(settlement, tax=tax) == [
        ("1510", _bs("UK"), -5000, ""),
        ("2640", _bs("UK"), 2201, "21"),
        ("6110", _pl("UK"), 720, ""),
        ("6520", _pl("UK"), 10000, ""),
        ("2450", _bs("UK"), -7921, ""),
    ]


def test_ca_gst_on_advertising_arrives_as_rows_and_is_input_tax_once():
    settlement = make_settlement(
        [
            ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -4923, POSTED),
            ("ServiceFee", "OtherFees", "TaxAmount", -640, POSTED),
        ],
        currency="CAD",
        marketplace="Amazon.ca",
    )
    tax = tax_profiles({"CA": {"fee_vat": {"vat_code": "5"}}})
    # separate_rows: advertising 49.23 stays whole (no split), its HST row 6.40 is input tax with
    # the code; nothing else. Total -55.63: the seller owes Amazon (2450 credit).
    assert _lines(settlement, tax=tax) == [
        ("2640", _bs("CA"), 640, "5"),
        ("6510", _pl("CA"), 4923, ""),
        ("2450", _bs("CA"), -5563, ""),
    ]


def test_summary_preset_output_tax_carries_the_marketplaces_output_vat_code():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 10000, POSTED, "302-2"),
            ("Order", "ItemPrice", "Tax", 1900, POSTED, "302-2"),
            ("Refund", "ItemPrice", "Principal", -5000, POSTED, "302-3"),
            ("Refund", "ItemPrice", "Tax", -950, POSTED, "302-3"),
        ],
        currency="EUR",
        marketplace="Amazon.de",
    )
    tax = tax_profiles({"DE": {"output_vat_code": "11"}})
    # 2610 output VAT 19.00 - 9.50 = 9.50 credit, with code 11; revenue 100.00, returns 50.00;
    # deposit 100.00 + 19.00 - 50.00 - 9.50 = 59.50.
    assert _lines(settlement, "summary", tax) == [
        ("2610", _bs("DE"), -950, "11"),
        ("3010", _pl("DE"), -10000, ""),
        ("3090", _pl("DE"), 5000, ""),
        ("1930", _bs("DE"), 5950, ""),
    ]


def test_a_mapping_without_the_clearing_category_holds_the_settlement_naming_it():
    document = {
        "categories": {
            "principal": {"account": "1510"},
            "tax": {"account": "1510"},
            "marketplace_facilitator_tax": {"account": "2610"},
            "referral_commission": {"account": "6110"},
            "amazon_clearing": {"account": "1930"},
            "payable_to_amazon": {"account": "2450"},
            "carry_over": {"account": "1595"},
        },
        "tax_roles": {"collected": ["tax"], "withheld": ["marketplace_facilitator_tax"]},
        "rules": [
            {
                "transaction_type": "Order",
                "amount_type": "ItemPrice",
                "amount_description": "*",
                "category": "principal",
            },
            {"transaction_type": "Order", "amount_type": "ItemPrice", "amount_description": "Tax", "category": "tax"},
            {
                "transaction_type": "Order",
                "amount_type": "ItemWithheldTax",
                "amount_description": "*",
                "category": "marketplace_facilitator_tax",
            },
            {
                "transaction_type": "Order",
                "amount_type": "ItemFees",
                "amount_description": "*",
                "category": "referral_commission",
            },
        ],
    }
    mapping = parse_mapping(document, "mappings/old.yaml")
    settlement = _us_order()
    outcome = check_gates(settlement, mapping.map_settlement(settlement), mapping)
    assert outcome.held and outcome.vouchers == ()
    [reason] = outcome.reasons
    assert "no category facilitator_tax_clearing" in reason and "US tax profile" in reason
    assert "[tax.US]" in reason


def test_the_shipped_profiles_cover_every_marketplace_each_with_its_source():
    profiles = tax_profiles()
    for marketplace in MARKETPLACES:
        profile = profiles[marketplace.code]
        assert profile.marketplace == marketplace.code
        assert len(profile.source) > 40, marketplace.code
        assert profile.m3_invoices == ("net" if profile.facilitator else "gross")
    assert profiles["US"].facilitator and profiles["US"].fee_vat.treatment == "none"
    assert (profiles["UK"].on(date(2024, 8, 1)).fee_vat.treatment, profiles["UK"].fee_vat.rate) == (
        "included",
        Decimal("0.20"),
    )
    rates = {c: profiles[c].fee_vat.rate for c in ("DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE")}
    before, since = date(2024, 7, 31), date(2024, 8, 1)
    assert rates == {
        "DE": Decimal("0.19"),
        "FR": Decimal("0.20"),
        "IT": Decimal("0.22"),
        "ES": Decimal("0.21"),
        "NL": Decimal("0.21"),
        "SE": Decimal("0.25"),
        "PL": Decimal("0.23"),
        "BE": Decimal("0.21"),
        "IE": Decimal("0.23"),
    }
    assert {profiles[c].on(before).fee_vat.treatment for c in rates} == {"reverse_charge"}
    # Since 1 August 2024 Amazon EU charges local VAT on its fees to sellers established in eight
    # of them (TAX_ON_FEE rows); Ireland stays reverse charge, the UK's fees include UK VAT.
    assert {c: profiles[c].on(since).fee_vat.treatment for c in rates} == {
        **{c: "separate_rows" for c in ("DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE")},
        "IE": "reverse_charge",
    }
    assert {c: profiles[c].on(since).fee_vat.rate for c in rates} == rates
    assert profiles["UK"].on(before).fee_vat.treatment == "reverse_charge"
    assert profiles["CA"].fee_vat.treatment == "separate_rows"
    # A seller established outside the EU and UK: Amazon is the deemed supplier there.
    outside = tax_profiles(seller="outside_eu_uk")
    assert outside["DE"].facilitator and outside["DE"].m3_invoices == "net"
    assert outside["UK"].fee_vat.treatment == "none" and not outside["JP"].facilitator
    assert outside["DE"].on(date(2024, 8, 1)).fee_vat.treatment == "none"  # a table applies at every date


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"DE": {"fee_vat": {"rate": "19"}}}, "[tax.DE] fee_vat.rate: must be a fraction from 0 to 1"),
        ({"DE": {"fee_vat": {"rate": True}}}, "[tax.DE] fee_vat.rate"),
        ({"DE": {"fee_vat": {"treatment": "charged"}}}, "[tax.DE] fee_vat.treatment: must be one of included"),
        ({"DE": {"fee_vat": {"vat_code": "ABC"}}}, "[tax.DE] fee_vat.vat_code: must be an M3 VAT code"),
        ({"DE": {"facilitator": "yes"}}, '[tax.DE] facilitator: must be true, false or "auto"'),
        ({"DE": {"m3_invoices": "half"}}, "[tax.DE] m3_invoices: must be one of net, gross"),
        ({"DE": {"vat": 1}}, "[tax.DE] vat: unknown key"),
        ({"XX": {"facilitator": True}}, "[tax.XX]: unknown marketplace code"),
        ({"DE": 5}, "[tax.DE]: must be a table"),
        ({"seller": "martian"}, "[tax] seller: 'martian' is not a known registration"),
        ({"DE": {"fee_vat": []}}, "[tax.DE] fee_vat: must be a table of treatment"),
        ({"DE": {"fee_vat": [5]}}, "[tax.DE] fee_vat[0]: must be a table of from"),
        (
            {"DE": {"fee_vat": [{"from": "2024-01-01", "treatment": "none"}]}},
            "[tax.DE] fee_vat[0].from: the first treatment applies from the start",
        ),
        ({"DE": {"fee_vat": [{}, {"treatment": "none"}]}}, "[tax.DE] fee_vat[1].from: must be a date"),
        ({"DE": {"fee_vat": [{}, {"from": "1.8.2024"}]}}, "[tax.DE] fee_vat[1].from: must be a date"),
        (
            {"DE": {"fee_vat": [{}, {"from": "2024-08-01"}, {"from": "2024-08-01", "treatment": "none"}]}},
            "[tax.DE] fee_vat[2].from: 2024-08-01 is not after the date before it",
        ),
        ({"DE": {"fee_vat": [{}, {"from": "2024-08-01", "rate": 2}]}}, "[tax.DE] fee_vat[1].rate: must be a fraction"),
    ],
)
def test_a_bad_tax_setting_is_one_line_naming_the_key(table, words):
    with pytest.raises(TaxProfileError) as caught:
        configured_tax_profiles(table, source="/home/x/config.toml")
    message = str(caught.value)
    assert message.startswith("/home/x/config.toml: ") and words in message and "\n" not in message


def test_config_toml_tax_tables_reach_the_profiles(tmp_path: Path):
    (tmp_path / "config.toml").write_text(
        '[tax]\nseller = "outside_eu_uk"\n[tax.DE]\nfacilitator = false\nm3_invoices = "gross"\n'
        '[tax.UK.fee_vat]\nvat_code = 21\n[tax.FR]\nfee_vat = { rate = "0.19", vat_code = "7" }\n'
    )
    profiles = load_tax_profiles(tmp_path)
    assert not profiles["DE"].facilitator and profiles["DE"].m3_invoices == "gross"  # the override wins
    assert profiles["FR"].facilitator  # the seller registration
    assert (profiles["FR"].fee_vat.rate, profiles["FR"].fee_vat.vat_code) == (Decimal("0.19"), "7")
    assert profiles["UK"].fee_vat.vat_code == "21"
    # dated treatments as a TOML array of tables: keys left out are as in the treatment before
    (tmp_path / "config.toml").write_text(
        '[[tax.IE.fee_vat]]\ntreatment = "reverse_charge"\nrate = "0.23"\nvat_code = "31"\n'
        '[[tax.IE.fee_vat]]\nfrom = 2025-01-01\ntreatment = "included"\n'
    )
    ireland = load_tax_profiles(tmp_path)["IE"]
    assert ireland.on(date(2024, 12, 31)).fee_vat == FeeVat("reverse_charge", Decimal("0.23"), "31")
    assert ireland.on(date(2025, 1, 1)).fee_vat == FeeVat("included", Decimal("0.23"), "31")
    (tmp_path / "config.toml").write_text('[tax.DE]\nfee_vat = { rate = 0.19, treatment = "reverse charge" }\n')
    with pytest.raises(ConfigurationError, match=r"config\.toml: \[tax\.DE\] fee_vat\.treatment"):
        load_tax_profiles(tmp_path)


def _invoices(rows: list[tuple[str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "orno": "1000001",
                "cuor": cuor,
                "ivno": "1",
                "ivdt": pd.Timestamp("2024-10-17"),
                "currency": "USD",
                "net_minor": gross,
                "tax_minor": 0,
                "gross_minor": gross,
            }
            for cuor, gross in rows
        ],
        columns=list(INVOICE_COLUMNS),
    )
    return frame.astype(INVOICE_COLUMNS)


def test_matching_compares_gross_with_gross_when_m3_invoices_a_facilitator_marketplace_gross():
    lines = _us_order().lines
    # M3 invoiced net 232.93: settled 219.95 + 12.98 + 13.98 - 13.98 = 232.93 -> matched.
    net = reconcile_orders(lines, _invoices([("111-0614513-3735533", 23293)]))
    assert net.counts["matched"] == 1
    # M3 invoiced gross 246.91: the withheld 13.98 is added back -> 246.91, matched, not a mismatch.
    gross = reconcile_orders(lines, _invoices([("111-0614513-3735533", 24691)]), withheld_tax_invoiced=True)
    assert gross.counts["matched"] == 1 and gross.orders["settled_minor"].tolist() == [24691]
    unchanged = reconcile_orders(lines, _invoices([("111-0614513-3735533", 24691)]))
    assert unchanged.counts["amount_mismatch"] == 1  # without the profile's word the tax is missing


@pytest.fixture(scope="module")
def m3_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[M3Client]:
    data = tmp_path_factory.mktemp("m3vtcd")
    server = serve_in_thread(lambda url: create_app(data, url, gl_batch_delay=0.1))
    ionapi = write_ionapi(data / "sandbox.ionapi", server.base_url, "SANDBOX_TST", sandbox_credentials(data))
    with M3Client.from_ionapi(ionapi) as client:
        yield client
    server.stop()


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_the_vat_code_reaches_m3_and_reads_back(m3_client: M3Client, profile: str):
    # The DE reverse-charge voucher above, as the flow hands it to M3.
    entry = JournalEntry(
        key=f"AMZ-VTCD-{profile}",
        divi="AAA",
        accounting_date=date(2024, 10, 25),
        currency="EUR",
        text="Amazon DE",
        lines=(
            JournalLine(("1510", "", "DE"), Decimal("-150.00")),
            JournalLine(("2611", "", "DE"), Decimal("-19.00"), vat_code="32"),
            JournalLine(("2641", "", "DE"), Decimal("19.00"), vat_code="31"),
            JournalLine(("6110", "AMZ", "DE"), Decimal("100.00")),
            JournalLine(("1930", "", "DE"), Decimal("50.00")),
        ),
    )
    posted = M3Operations(m3_client, profile, cono=100, divi="AAA", voucher_wait=10).post_voucher(entry)  # type: ignore[arg-type]  # profile by name
    assert posted.lines, posted
    assert [(line.dimensions[0], line.vat_code) for line in posted.lines] == [
        ("1510", ""),
        ("2611", "32"),
        ("2641", "31"),
        ("6110", ""),
        ("1930", ""),
    ]
    # `m3sync reverse` negates the lines as M3 holds them, VAT codes included.
    reversal = reversing_entry(entry.key, "AAA", "EUR", date(2024, 11, 1), posted.lines)
    assert [(line.amount, line.vat_code) for line in reversal.lines[1:3]] == [
        (Decimal("19.00"), "32"),
        (Decimal("-19.00"), "31"),
    ]


_MINIMAL = {
    "categories": {
        "tax": {"account": "2610"},
        "amazon_clearing": {"account": "1930"},
        "payable_to_amazon": {"account": "2450"},
        "carry_over": {"account": "1595"},
    },
    "rules": [{"transaction_type": "Order", "amount_type": "ItemPrice", "amount_description": "*", "category": "tax"}],
}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"tax_roles": {"sales": ["tax"]}}, "tax_roles.sales: unknown role"),
        ({"tax_roles": {"fee": ["storage"]}}, "tax_roles.fee: 'storage' is not a defined category"),
        ({"tax_roles": {"collected": ["tax"], "output": ["tax"]}}, "'tax' already has the role 'collected'"),
        ({"tax_roles": {"fee": "tax"}}, "tax_roles.fee: must be a list"),
        ({"invoices_in_m3": "no"}, "invoices_in_m3: must be true or false"),
    ],
)
def test_a_mapping_with_bad_tax_roles_is_refused_naming_the_key(extra, words):
    with pytest.raises(MappingError, match=re.escape(words)):
        parse_mapping({**_MINIMAL, **extra}, "mappings/mine.yaml")
    assert parse_mapping({**_MINIMAL, "tax_roles": {"output": ["tax"]}}, "x").categories["tax"].tax == "output"
