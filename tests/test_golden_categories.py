"""Golden files for the categories the whole settlement vocabulary added: hand-written V2
settlement files (tests/golden/categories/) through parse -> prepare_settlement -> vouchers,
every voucher line worked out by hand from the file.

Journal convention (reconciliation/vouchers.py): a line of amount a books -a to its account
(debit +, credit -); the deposit books +total to 1930, or a negative total to 2450.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _settlement_builders import make_settlement

from reconciliation.mapping import load_mapping, parse_mapping
from reconciliation.parse import read_settlement_file
from reconciliation.pipeline import map_settlement_lines, prepare_settlement
from reconciliation.tax import tax_profiles
from reconciliation.vouchers import build_vouchers

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "categories"
NEW_CATEGORIES = {
    "liquidation_proceeds",
    "liquidation_fees",
    "input_tax",
    "withholding_tax",
    "sales_tax_adjustments",
    "outbound_freight",
    "inbound_landed_cost",
    "promotion_fees",
    "loan_repayment",
    "adjustments_review",
    "other_income",
}


def _bs(code: str) -> tuple[str, ...]:
    return ("", code, "", "", "", "")


def _pl(code: str) -> tuple[str, ...]:
    return ("AMZ", code, "", "", "", "")


def _mcf(code: str) -> tuple[str, ...]:
    """P&L dimensions of a multi-channel fulfilment line: AIT2 MCF instead of AMZ."""
    return ("MCF", code, "", "", "", "")


# file -> (marketplace after resolution, currency, lines under invoice-clearing:
#          (account, dimensions, amount in minor units, category))
EXPECTED = {
    # Order Principal 49.99, Commission -7.50; Liquidations Principal 412.50, brokerage fee -61.88;
    # retrocharge Tax 3.15 and withheld tax -2.90 (residue 0.25 on the facilitator clearing 2615:
    # Amazon.com is a facilitator marketplace, so tax and withheld tax net there, not on the
    # output tax 2610 as before issue 11); label -8.47; inbound
    # placement -27.30; coupon -0.60; loan repayment -250.00; seller rewards 5.00; MiscAdjustment 12.34.
    # Liquidation proceeds and seller rewards are both other income: 3990 credit 412.50 + 5.00 = 417.50;
    # inbound placement is inventory landed cost (4050).
    # total 124.33; debit 124.33 + 250.00 + 7.50 + 61.88 + 8.47 + 27.30 + 0.60 = 480.08
    #               = credit 49.99 + 0.25 + 12.34 + 417.50
    "us_v2_liquidation_freight_lending.tsv": (
        "Amazon.com",
        "USD",
        [
            ("1510", _bs("US"), -4999, "principal"),
            ("2615", _bs("US"), -25, "facilitator_tax_clearing"),
            ("2840", _bs("US"), 25000, "loan_repayment"),
            ("2999", _bs("US"), -1234, "adjustments_review"),
            ("3990", _pl("US"), -41750, "liquidation_proceeds+other_income"),
            ("4050", _pl("US"), 2730, "inbound_landed_cost"),
            ("6110", _pl("US"), 750, "referral_commission"),
            ("6180", _pl("US"), 6188, "liquidation_fees"),
            ("6210", _pl("US"), 847, "outbound_freight"),
            ("6520", _pl("US"), 60, "promotion_fees"),
            ("1930", _bs("US"), 12433, "amazon_clearing"),
        ],
    ),
    # Principal 39,90; Commission -5,99; FBA -3,45; Vine BASE_FEE -200,00 and TAX_ON_FEE -38,00;
    # storage BASE_FEE -12,40, DISCOUNT_ON_FEE +1,24, TAX_ON_FEE -2,12; Commingling VAT -0,57;
    # advertising -50,00 and its TaxAmount -9,50. total -280,89 (the seller owes Amazon).
    # 2640 input tax: 38,00 + 2,12 + 0,57 + 9,50 = 50,19; 6160 storage: 12,40 - 1,24 = 11,16.
    # Deposited 27.10.2024: the shipped DE profile is separate_rows since 1 August 2024 (Amazon
    # charges German VAT on its fees, the TAX_ON_FEE rows), so no reverse charge is added.
    "de_v2_input_tax.tsv": (
        "Amazon.de",
        "EUR",
        [
            ("1510", _bs("DE"), -3990, "principal"),
            ("2640", _bs("DE"), 5019, "input_tax"),
            ("6110", _pl("DE"), 599, "referral_commission"),
            ("6120", _pl("DE"), 345, "fba_fulfilment_fees"),
            ("6160", _pl("DE"), 1116, "storage"),
            ("6510", _pl("DE"), 5000, "advertising"),
            ("6520", _pl("DE"), 20000, "promotion_fees"),
            ("2450", _bs("DE"), -28089, "payable_to_amazon"),
        ],
    ),
    # Principal 1499.00, Commission -179.88; INCOME_TAX_CHARGED -14.99; chargeback Principal
    # -499.00 and its commission back +59.88. total 865.01.
    # 1510: 1499.00 - 499.00 = 1000.00; 6110: 179.88 - 59.88 = 120.00.
    "in_v2_withholding_chargeback.tsv": (
        "Amazon.in",
        "INR",
        [
            ("1510", _bs("IN"), -100000, "principal+refunds"),
            ("1640", _bs("IN"), 1499, "withholding_tax"),
            ("6110", _pl("IN"), 12000, "referral_commission"),
            ("1930", _bs("IN"), 86501, "amazon_clearing"),
        ],
    ),
    # No marketplace-name on any row; CAD -> Amazon.ca. Subscription -39.99, inbound transport
    # -150.00, storage -98.70, advertising -29.20 and its HST -3.80: total -321.69.
    "ca_v2_account_level_no_marketplace.tsv": (
        "Amazon.ca",
        "CAD",
        [
            ("2640", _bs("CA"), 380, "input_tax"),
            ("4050", _pl("CA"), 15000, "inbound_landed_cost"),
            ("6150", _pl("CA"), 3999, "subscription"),
            ("6160", _pl("CA"), 9870, "storage"),
            ("6510", _pl("CA"), 2920, "advertising"),
            ("2450", _bs("CA"), -32169, "payable_to_amazon"),
        ],
    ),
    # Order 1: Principal 30.00, Commission -4.50, Promotion -5.00; its refund: Principal -30.00,
    # Promotion +5.00, Commission +4.50, RefundCommission -0.90. Order 2: Principal 20.00,
    # Commission -3.00, FBA -3.10. MCF order (Non-Amazon US): Principal 0.00, FBA -8.25. total 4.75.
    # 1510: 30.00 - 5.00 - 30.00 + 5.00 + 20.00 = 20.00 (credit); 6110: 4.50 - 4.50 + 3.00 = 3.00.
    # The MCF fee books under AIT2 MCF, apart from the Amazon order's 3.10.
    # debit 3.00 + 3.10 + 8.25 + 0.90 + 4.75 = 20.00 = credit 20.00
    "us_v2_gross_mcf.tsv": (
        "Amazon.com",
        "USD",
        [
            ("1510", _bs("US"), -2000, "principal+promotions+refunds"),
            ("6110", _pl("US"), 300, "referral_commission"),
            ("6120", _pl("US"), 310, "fba_fulfilment_fees"),
            ("6120", _mcf("US"), 825, "fba_fulfilment_fees"),
            ("6140", _pl("US"), 90, "refund_commission"),
            ("1930", _bs("US"), 475, "amazon_clearing"),
        ],
    ),
    # Yen have no decimals: Principal 1980, points -20, Commission -198, FBA -318; total 1444.
    # JP fees include 10 % consumption tax (shipped JP profile: included), per fee category:
    # 198 x 0.10 / 1.10 = 18 -> 6110 180; 318 x 0.10 / 1.10 = 28.91 -> 29 -> 6120 289;
    # 2640 input tax 18 + 29 = 47.
    "jp_v2_points_jpy.tsv": (
        "Amazon.co.jp",
        "JPY",
        [
            ("1510", _bs("JP"), -1960, "principal+promotions"),
            ("2640", _bs("JP"), 47, "input_tax"),
            ("6110", _pl("JP"), 180, "referral_commission"),
            ("6120", _pl("JP"), 289, "fba_fulfilment_fees"),
            ("1930", _bs("JP"), 1444, "amazon_clearing"),
        ],
    ),
}


def _prepared(name: str, preset: str = "invoice-clearing"):
    parsed = read_settlement_file(GOLDEN / name)
    assert parsed.errors == []
    [settlement] = parsed.settlements
    return prepare_settlement(settlement, load_mapping(preset))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_vouchers_invoice_clearing(name):
    marketplace, currency, lines = EXPECTED[name]
    prepared = _prepared(name)
    assert not prepared.held, prepared.reasons
    assert (prepared.settlement.marketplace, prepared.settlement.currency) == (marketplace, currency)
    [voucher] = prepared.gates.vouchers
    assert [(l.account, l.dimensions, l.amount_minor, l.category) for l in voucher.lines] == lines
    assert voucher.debit_minor == voucher.credit_minor


def test_golden_us_file_under_summary():
    prepared = _prepared("us_v2_liquidation_freight_lending.tsv", "summary")
    [voucher] = prepared.gates.vouchers
    # As invoice-clearing except the order's principal, which is revenue (3010) here; the
    # liquidation stays other income (3990), never sales revenue; the retrocharge residue is on the
    # facilitator clearing (2615) under both presets.
    assert [(l.account, l.dimensions, l.amount_minor) for l in voucher.lines] == [
        ("2615", _bs("US"), -25),
        ("2840", _bs("US"), 25000),
        ("2999", _bs("US"), -1234),
        ("3010", _pl("US"), -4999),
        ("3990", _pl("US"), -41750),
        ("4050", _pl("US"), 2730),
        ("6110", _pl("US"), 750),
        ("6180", _pl("US"), 6188),
        ("6210", _pl("US"), 847),
        ("6520", _pl("US"), 60),
        ("1930", _bs("US"), 12433),
    ]


# The US file when M3's invoices carry the sales tax ([tax.US] m3_invoices = "gross"): the
# retrocharge's tax 3.15 and withheld tax -2.90 then book as the mapping says, both on 2610 (the
# withheld tax reverses the output tax M3 booked): residue -0.25, as before issue 11.
US_GROSS_TAX_LINE = ("2610", _bs("US"), -25, "marketplace_facilitator_tax+sales_tax_adjustments")


def test_golden_us_file_when_m3_invoices_gross():
    parsed = read_settlement_file(GOLDEN / "us_v2_liquidation_freight_lending.tsv")
    [settlement] = parsed.settlements
    tax = tax_profiles({"US": {"m3_invoices": "gross"}})
    [voucher] = prepare_settlement(settlement, load_mapping("invoice-clearing"), tax=tax).gates.vouchers
    lines = [(l.account, l.dimensions, l.amount_minor, l.category) for l in voucher.lines]
    expected = EXPECTED["us_v2_liquidation_freight_lending.tsv"][2]
    assert lines == [US_GROSS_TAX_LINE if line[0] == "2615" else line for line in expected]


def test_every_new_category_has_a_golden_voucher_line():
    booked = {c for _, _, lines in EXPECTED.values() for *_, joined in lines for c in joined.split("+")}
    assert NEW_CATEGORIES <= booked | set(US_GROSS_TAX_LINE[3].split("+"))


def test_gross_revenue_and_returns_under_summary():
    """summary keeps revenue and returns gross: the refunded sale and its promotion stay visible."""
    prepared = _prepared("us_v2_gross_mcf.tsv", "summary")
    assert not prepared.held, prepared.reasons
    [voucher] = prepared.gates.vouchers
    # 3010 revenue: 30.00 + 20.00 (credit; the MCF order's 0.00 books nothing)
    # 3050 promotions: the sale's -5.00 (debit 5.00) and the refund's +5.00 (credit 5.00): two
    #      lines, although they net to zero
    # 3090 returns: the refund's principal -30.00 (debit 30.00)
    # fees as under invoice-clearing; debit 5.00 + 30.00 + 3.00 + 3.10 + 8.25 + 0.90 + 4.75 = 55.00
    #                                  = credit 50.00 + 5.00
    assert [(l.account, l.dimensions, l.amount_minor, l.category) for l in voucher.lines] == [
        ("3010", _pl("US"), -5000, "principal"),
        ("3050", _pl("US"), 500, "promotions"),
        ("3050", _pl("US"), -500, "promotions"),
        ("3090", _pl("US"), 3000, "refunds"),
        ("6110", _pl("US"), 300, "referral_commission"),
        ("6120", _pl("US"), 310, "fba_fulfilment_fees"),
        ("6120", _mcf("US"), 825, "fba_fulfilment_fees"),
        ("6140", _pl("US"), 90, "refund_commission"),
        ("1930", _bs("US"), 475, "amazon_clearing"),
    ]
    assert voucher.debit_minor == voucher.credit_minor == 5500


def _summary_document(**changes) -> dict:
    document = yaml.safe_load((REPO / "reconciliation" / "mappings" / "summary.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "refunds_account":
            document["categories"]["refunds"]["account"] = value
        else:
            document[key] = value
    return document


def _sale_and_refund():
    # A sale of principal 30.00 and its refund -30.00 in one settlement, plus the commission the
    # refund does not give back in full: total -1.00 (the seller owes Amazon).
    return make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 3000, "2024-10-12 10:00:00", "111-6000000-0000009"),
            ("Order", "ItemFees", "Commission", -450, "2024-10-12 10:00:00", "111-6000000-0000009"),
            ("Refund", "ItemPrice", "Principal", -3000, "2024-10-18 10:00:00", "111-6000000-0000009"),
            ("Refund", "ItemFees", "Commission", 350, "2024-10-18 10:00:00", "111-6000000-0000009"),
        ]
    )


def _lines(settlement, mapping):
    [voucher] = build_vouchers(settlement, map_settlement_lines(settlement, mapping), mapping)
    return [(l.account, l.amount_minor, l.category) for l in voucher.lines]


@pytest.mark.parametrize(
    ("refunds_account", "gross_lines", "expected"),
    [
        # the shipped summary: 3010 Cr 30.00, 3090 Dr 30.00
        ("3090", True, [("3010", -3000, "principal"), ("3090", 3000, "refunds")]),
        # returns booked on the revenue account itself: still two lines, 3010 Cr 30.00 and Dr 30.00
        ("3010", True, [("3010", -3000, "principal"), ("3010", 3000, "refunds")]),
        # the same chart without gross_lines: the sale and its refund net to nothing
        ("3010", False, []),
    ],
)
def test_a_sale_and_its_refund_stay_gross_under_summary(refunds_account, gross_lines, expected):
    mapping = parse_mapping(_summary_document(refunds_account=refunds_account, gross_lines=gross_lines), "mine.yaml")
    # commission 4.50 - 3.50 = 1.00 (debit); the deposit side: -1.00 payable to Amazon
    assert _lines(_sale_and_refund(), mapping) == [
        *expected,
        ("6110", 100, "referral_commission"),
        ("2450", -100, "payable_to_amazon"),
    ]


def test_a_sale_and_its_refund_leave_nothing_on_the_receivable_under_invoice_clearing():
    assert _lines(_sale_and_refund(), load_mapping("invoice-clearing")) == [
        ("6110", 100, "referral_commission"),
        ("2450", -100, "payable_to_amazon"),
    ]


def test_gross_lines_add_at_most_one_line_per_gross_category():
    """A month of 3,000 orders, 400 of them refunded, promotions on every order: the voucher
    stays far below M3's 999 lines (gross adds one line for 3050, where both sides occur)."""
    rows = []
    for n in range(3000):
        order = f"111-7000000-{n:07d}"
        day = f"2024-10-{1 + n % 28:02d} 10:00:00"
        rows += [
            ("Order", "ItemPrice", "Principal", 2000, day, order),
            ("Order", "ItemPrice", "Shipping", 300, day, order),
            ("Order", "Promotion", "Principal", -100, day, order),
            ("Order", "ItemFees", "Commission", -300, day, order),
            ("Order", "ItemFees", "FBAPerUnitFulfillmentFee", -250, day, order),
        ]
        if n < 400:
            rows += [
                ("Refund", "ItemPrice", "Principal", -2000, day, order),
                ("Refund", "Promotion", "Principal", 100, day, order),
                ("Refund", "ItemFees", "Commission", 240, day, order),
            ]
    settlement = make_settlement(
        rows, start="2024-10-01 00:00:00", end="2024-10-29 00:00:00", deposit="2024-10-30 00:00:00"
    )
    # 3010: 3000 x 20.00 = 60,000.00 Cr; 3020: 3000 x 3.00 = 9,000.00 Cr; 3050: 3000 x 1.00 Dr and
    # 400 x 1.00 Cr; 3090: 400 x 20.00 = 8,000.00 Dr; 6110: 3000 x 3.00 - 400 x 2.40 = 8,040.00 Dr;
    # 6120: 3000 x 2.50 = 7,500.00 Dr; deposit 60,000 + 9,000 - 3,000 + 400 - 8,000 - 8,040 - 7,500
    # = 42,860.00.
    assert _lines(settlement, load_mapping("summary")) == [
        ("3010", -6000000, "principal"),
        ("3020", -900000, "shipping"),
        ("3050", 300000, "promotions"),
        ("3050", -40000, "promotions"),
        ("3090", 800000, "refunds"),
        ("6110", 804000, "referral_commission"),
        ("6120", 750000, "fba_fulfilment_fees"),
        ("1930", 4286000, "amazon_clearing"),
    ]
