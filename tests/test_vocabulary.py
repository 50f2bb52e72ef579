"""Every combination real settlement files carry (docs/settlement-vocabulary.md §3) is mapped in
both presets, to the category an accountant books it to; rules match on normalised keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _settlement_builders import lines_frame

from reconciliation.mapping import MappingError, load_mapping, normalise_key, parse_mapping

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("invoice-clearing", "summary")

# docs/settlement-vocabulary.md §3, written out by hand: (transaction-type, amount-type,
# amount-description) -> category under invoice-clearing. Upper-case rows are the doc's
# normalised spelling; mixed-case rows are the V2 spelling of the same item. Where the doc
# says `*`, concrete examples stand in for it.
SECTION_3 = [
    # LIQUIDATIONS: proceeds and fees; never the customer receivable
    ("LIQUIDATIONS", "ITEMPRICE", "PRINCIPAL", "liquidation_proceeds"),
    ("Liquidations", "ItemPrice", "Principal", "liquidation_proceeds"),
    ("LIQUIDATIONS", "ITEMFEES", "LIQUIDATIONSBROKERAGEFEE", "liquidation_fees"),
    ("Liquidations", "ItemFees", "LiquidationsBrokerageFee", "liquidation_fees"),
    # LIQUIDATIONS_ADJUSTMENTS: their tax nets with the withheld tax
    ("LIQUIDATIONS_ADJUSTMENTS", "ITEMPRICE", "TAX", "sales_tax_adjustments"),
    ("LIQUIDATIONS_ADJUSTMENTS", "ITEMPRICE", "PRINCIPAL", "liquidation_proceeds"),
    (
        "LIQUIDATIONS_ADJUSTMENTS",
        "ITEMWITHHELDTAX",
        "MARKETPLACEFACILITATORTAX_PRINCIPAL",
        "marketplace_facilitator_tax",
    ),
    # CHARGEBACK_REFUND: as refunds; their tax is tax (nets with the withheld tax where Amazon is
    # the facilitator, issue 11)
    ("CHARGEBACK_REFUND", "ITEMPRICE", "PRINCIPAL", "refunds"),
    ("CHARGEBACK_REFUND", "ITEMPRICE", "SHIPPING", "refunds"),
    ("CHARGEBACK_REFUND", "ITEMPRICE", "TAX", "tax"),
    ("CHARGEBACK_REFUND", "ITEMPRICE", "SHIPPINGTAX", "tax"),
    ("Chargeback Refund", "ItemPrice", "Principal", "refunds"),
    ("CHARGEBACK_REFUND", "ITEMFEES", "COMMISSION", "referral_commission"),
    ("CHARGEBACK_REFUND", "ITEMFEES", "REFUNDCOMMISSION", "refund_commission"),
    ("CHARGEBACK_REFUND", "ITEMFEES", "SHIPPINGCHARGEBACK", "other_selling_fees"),
    ("CHARGEBACK_REFUND", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORTAX_PRINCIPAL", "marketplace_facilitator_tax"),
    ("CHARGEBACK_REFUND", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_PRINCIPAL", "marketplace_facilitator_tax"),
    ("CHARGEBACK_REFUND", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_SHIPPING", "marketplace_facilitator_tax"),
    # A_TO_Z_GUARANTEE_REFUND: as refunds / refund fees / withheld tax
    ("A_TO_Z_GUARANTEE_REFUND", "ITEMPRICE", "PRINCIPAL", "refunds"),
    ("A_TO_Z_GUARANTEE_REFUND", "ITEMPRICE", "TAX", "tax"),
    ("A-to-z Guarantee Refund", "ItemPrice", "Principal", "refunds"),
    ("A_TO_Z_GUARANTEE_REFUND", "ITEMFEES", "COMMISSION", "referral_commission"),
    ("A_TO_Z_GUARANTEE_REFUND", "ITEMFEES", "REFUNDCOMMISSION", "refund_commission"),
    (
        "A_TO_Z_GUARANTEE_REFUND",
        "ITEMWITHHELDTAX",
        "MARKETPLACEFACILITATORTAX_PRINCIPAL",
        "marketplace_facilitator_tax",
    ),
    # ORDER_RETROCHARGE / REFUND_RETROCHARGE: tax after the fact nets with its withheld tax
    ("ORDER_RETROCHARGE", "ITEMPRICE", "TAX", "sales_tax_adjustments"),
    ("ORDER_RETROCHARGE", "ITEMPRICE", "SHIPPINGTAX", "sales_tax_adjustments"),
    ("REFUND_RETROCHARGE", "ITEMPRICE", "TAX", "sales_tax_adjustments"),
    ("REFUND_RETROCHARGE", "ITEMPRICE", "SHIPPINGTAX", "sales_tax_adjustments"),
    ("Order_Retrocharge", "ItemPrice", "Tax", "sales_tax_adjustments"),
    ("ORDER_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORTAX_PRINCIPAL", "marketplace_facilitator_tax"),
    ("ORDER_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORTAX_SHIPPING", "marketplace_facilitator_tax"),
    ("ORDER_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_PRINCIPAL", "marketplace_facilitator_tax"),
    ("ORDER_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_SHIPPING", "marketplace_facilitator_tax"),
    ("REFUND_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORTAX_PRINCIPAL", "marketplace_facilitator_tax"),
    ("REFUND_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORTAX_SHIPPING", "marketplace_facilitator_tax"),
    ("REFUND_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_PRINCIPAL", "marketplace_facilitator_tax"),
    ("REFUND_RETROCHARGE", "ITEMWITHHELDTAX", "MARKETPLACEFACILITATORVAT_SHIPPING", "marketplace_facilitator_tax"),
    # ORDER / REFUND fees and points
    ("ORDER", "ITEMFEES", "FBAPERORDERFULFILLMENTFEE", "fba_fulfilment_fees"),
    ("ORDER", "ITEMFEES", "GIFTWRAPCHARGEBACK", "other_selling_fees"),
    ("ORDER", "ITEMFEES", "SALESTAXSERVICEFEE", "other_selling_fees"),
    ("Order", "ItemFees", "SalesTaxServiceFee", "other_selling_fees"),
    ("ORDER", "POINTS", "POINTSGRANTED", "promotions"),
    ("REFUND", "ITEMFEES", "GIFTWRAPCHARGEBACK", "other_selling_fees"),
    ("REFUND", "ITEMFEES", "REMOTEFULFILLMENTCREDIT", "fba_fulfilment_fees"),
    ("REFUND", "ITEMFEES", "RETURNSHIPPING", "other_selling_fees"),
    ("REFUND", "ITEMPRICE", "RESTOCKINGFEE", "refunds"),
    ("REFUND", "ITEMPRICE", "GOODWILL", "refunds"),
    # AMAZONFEES (2024+ layout): fee by type, TAX_ON_FEE is input tax
    ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "BASE_FEE", "promotion_fees"),
    ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "DISCOUNT_ON_FEE", "promotion_fees"),
    ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE", "input_tax"),
    ("AmazonFees", "VINE_ENROLLMENT_FEE", "BASE_FEE", "promotion_fees"),
    ("AMAZONFEES", "HIGH_VOLUME_LISTING_FEE", "BASE_FEE", "other_selling_fees"),  # `e.g.`: any other fee type
    ("AMAZONFEES", "HIGH_VOLUME_LISTING_FEE", "TAX_ON_FEE", "input_tax"),
    # FBAFEES: storage / inbound freight / returns / removal; tax to input tax
    ("FBAFEES", "AWD_PROCESSING_FEE", "BASE_FEE", "inbound_landed_cost"),
    ("FBAFEES", "AWD_STORAGE_FEE", "BASE_FEE", "storage"),
    ("FBAFEES", "AWD_TRANSPORTATION_FEE", "BASE_FEE", "inbound_landed_cost"),
    ("FBAFEES", "FBA_AMAZON_PARTNERED_CARRIER_SHIPMENT_FEE", "BASE_FEE", "inbound_landed_cost"),
    ("FBAFEES", "FBA_CUSTOMER_RETURNS_FEE", "BASE_FEE", "fba_fulfilment_fees"),
    ("FBAFEES", "FBA_INVENTORY_STORAGE_FEE", "BASE_FEE", "storage"),
    ("FBAFEES", "FBA_LONG_TERM_STORAGE_FEE", "BASE_FEE", "storage"),
    ("FBAFEES", "FBA_REMOVAL_ORDER_DISPOSAL_FEE", "BASE_FEE", "removal"),
    ("FBAFEES", "FBA_REMOVAL_ORDER_RETURN_FEE", "BASE_FEE", "removal"),
    ("FBAFEES", "FBA_INVENTORY_STORAGE_FEE", "DISCOUNT_ON_FEE", "storage"),
    ("FBAFEES", "FBA_LONG_TERM_STORAGE_FEE", "DISCOUNT_ON_FEE", "storage"),
    ("FBAFEES", "FBA_INVENTORY_STORAGE_FEE", "TAX_ON_FEE", "input_tax"),
    ("FBAFEES", "AWD_TRANSPORTATION_FEE", "TAX_ON_FEE", "input_tax"),
    ("FBAFEES", "FBA_REMOVAL_ORDER_DISPOSAL_FEE", "TAX_ON_FEE", "input_tax"),
    # coupons, deals, marketing programmes: marketing expense; their tax to input tax
    ("COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", "promotion_fees"),
    ("CouponRedemptionFee", "CouponRedemptionFee", "Spring sale 10% off", "promotion_fees"),
    ("COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", "TAX_ON_FEE", "input_tax"),
    ("PROMOTION_FEE", "DEALS", "PROMOTION_FEE", "promotion_fees"),
    ("PROMOTION_FEE", "PROMOTIONFEE", "PROMOTION_FEE_SPECIAL", "promotion_fees"),
    ("SERVICEFEE", "DEALS", "PROMOTION_FEE", "promotion_fees"),
    ("SERVICEFEE", "DEALS", "PROMOTION_FEE_SPECIAL", "promotion_fees"),
    ("SERVICEFEE", "PROMOTIONFEE", "PROMOTION_FEE", "promotion_fees"),
    ("SERVICEFEE", "PROMOTIONFEE", "PROMOTION_FEE_SPECIAL", "promotion_fees"),
    ("LIGHTNING_DEAL_FEE", "LIGHTNING_DEAL_FEE", "LIGHTNING_DEAL_FEE", "promotion_fees"),
    ("Lightning Deal Fee", "other-transaction", "Lightning Deal Fee", "promotion_fees"),
    ("VINE_ENROLLMENT_FEE", "VINE_ENROLLMENT_FEE", "BASE_FEE", "promotion_fees"),
    ("VINE_ENROLLMENT_FEE", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE", "input_tax"),
    (
        "SELLERREVIEWENROLLMENTPAYMENT",
        "SELLERREVIEWENROLLMENTPAYMENT",
        "SELLERREVIEWENROLLMENTPAYMENT",
        "promotion_fees",
    ),
    ("SellerReviewEnrollmentPayment", "other-transaction", "Early Reviewer Program", "promotion_fees"),
    # SERVICEFEE: advertising credit; tax on advertising is input tax
    ("SERVICEFEE", "REFUND_FOR_ADVERTISER", "TRANSACTIONTOTALAMOUNT", "advertising"),
    ("SERVICEFEE", "OTHERFEES", "TAXAMOUNT", "input_tax"),
    ("ServiceFee", "OtherFees", "TaxAmount", "input_tax"),
    # account-level transactions
    ("COMMINGLING_VAT", "OTHER_TRANSACTION", "COMMINGLING_VAT", "input_tax"),
    ("other-transaction", "other-transaction", "Commingling VAT", "input_tax"),
    ("SAFE_T_REIMBURSEMENT", "OTHER_TRANSACTIONS", "SAFE_T_REIMBURSEMENT", "reimbursements"),
    ("OTHER_TRANSACTION", "MCF_INVENTORY_REIMBURSEMENT", "MULTICHANNEL_ORDER_LOST", "reimbursements"),
    ("SELLER_REWARDS", "SELLER_REWARDS", "SELLER_REWARDS", "other_income"),
    ("TRANSFERS", "MICRO_DEPOSIT", "MICRO_DEPOSIT", "amazon_clearing"),
    ("DEBT_ADJUSTMENT", "DEBT_ADJUSTMENT", "DEBT_ADJUSTMENT", "payable_to_amazon"),
    ("Debt Adjustment", "other-transaction", "Balance transfer from Amazon.co.uk", "payable_to_amazon"),
    ("FEE_ADJUSTMENT", "ITEMFEES", "COMMISSION", "referral_commission"),
    ("FEE_ADJUSTMENT", "ITEMFEES", "FBAPERUNITFULFILLMENTFEE", "fba_fulfilment_fees"),
    ("FEE_ADJUSTMENT", "FEE_ADJUSTMENT", "FEE_ADJUSTMENT", "other_selling_fees"),
    ("GRADE_AND_RESELL_CHARGE", "OTHER_TRANSACTION", "GRADE_AND_RESELL_CHARGE", "fba_fulfilment_fees"),
    ("OTHER_TRANSACTION", "CAPACITY_RESERVATION_FEE", "RESERVATION_FEE", "storage"),
    ("OTHER_TRANSACTION", "CAPACITY_RESERVATION_FEE", "PERFORMANCE_CREDITS", "storage"),
    ("OTHER_TRANSACTION", "CAPACITY_RESERVATION_FEE", "TAX", "input_tax"),
    ("OTHER_TRANSACTION", "INBOUND_DEFECT_FEE", "INBOUND_DEFECT_FEE", "fba_fulfilment_fees"),
    ("other-transaction", "Inbound Defect Fee", "Unplanned prep", "fba_fulfilment_fees"),
    ("OTHER_TRANSACTION", "AMAZON_WAREHOUSING_DISTRIBUTION_AWD", "AWD_PROCESSING_FEE", "inbound_landed_cost"),
    ("OTHER_TRANSACTION", "AMAZON_WAREHOUSING_DISTRIBUTION_AWD", "AWD_STORAGE_FEE", "storage"),
    ("OTHER_TRANSACTION", "AMAZON_WAREHOUSING_DISTRIBUTION_AWD", "AWD_TRANSPORTATION_FEE", "inbound_landed_cost"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FBA_INBOUND_PLACEMENT_SERVICE_FEE", "inbound_landed_cost"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FBAINBOUNDTRANSPORTATIONFEE", "inbound_landed_cost"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "AGSGLOBALINBOUNDTRANSPORTATION", "inbound_landed_cost"),
    ("other-transaction", "other-transaction", "FBA Inbound Placement Service Fee", "inbound_landed_cost"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FBACUSTOMERRETURNPERORDERFEE", "fba_fulfilment_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FBACUSTOMERRETURNPERUNITFEE", "fba_fulfilment_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FBACUSTOMERRETURNWEIGHTBASEDFEE", "fba_fulfilment_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPING_LABEL_PURCHASE", "outbound_freight"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPING_LABEL_PURCHASE_FOR_RETURN", "outbound_freight"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPINGSERVICES", "outbound_freight"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPINGSERVICESREFUND", "outbound_freight"),
    ("other-transaction", "other-transaction", "Shipping label purchase", "outbound_freight"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "PAID_SERVICES_FEE", "other_selling_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "NONSUBSCRIPTIONFEEADJ", "other_selling_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "MANUAL_PROCESSING_FEE", "other_selling_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "ADDITIONAL_OTHER_EXPENSES", "other_selling_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "INCORRECT_FEES_ITEMS", "other_selling_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "ADJUSTMENT", "adjustments_review"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "MISCADJUSTMENT", "adjustments_review"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "BALANCEADJUSTMENT", "amazon_clearing"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "PROMOTION_ADJUSTMENT", "promotion_fees"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "BUYERRECHARGE", "refunds"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "REFUND_REIMBURSAL", "reimbursements"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "INCOME_TAX_CHARGED", "withholding_tax"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "AMAZON_CAPITAL_SERVICES", "loan_repayment"),
    ("other-transaction", "other-transaction", "Amazon Capital Services", "loan_repayment"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SUCCESSFUL_CHARGE", "amazon_clearing"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "PAYABLE_TO_AMAZON", "payable_to_amazon"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "FAILED_DISBURSEMENT", "amazon_clearing"),
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "TRANSFER_OF_FUNDS_UNSUCCESSFUL", "amazon_clearing"),
    ("OTHER_TRANSACTION", "FBA_INVENTORY_REIMBURSEMENT", "FREE_REPLACEMENT_REFUND_ITEMS", "reimbursements"),
]

# Where "summary" books differently: it recognises revenue itself, so refunded tax reverses
# output tax and a promotion correction is a sales deduction.
SUMMARY_DIFFERS = {
    ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "PROMOTION_ADJUSTMENT"): "promotions",
}

NEW_CATEGORIES = (
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
)


def _map(preset: str, keys):
    frame = lines_frame([(tt, at, ad, -100, "2024-10-18") for tt, at, ad in keys])
    return load_mapping(preset).map_lines(frame, "US", currency="USD")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_section_3_combination_has_a_category(preset):
    mapped = _map(preset, [row[:3] for row in SECTION_3])
    assert mapped.unmapped == ()
    assert mapped.lines["category"].notna().all()


def test_section_3_categories_under_invoice_clearing():
    mapped = _map("invoice-clearing", [row[:3] for row in SECTION_3])
    assert list(mapped.lines["category"]) == [row[3] for row in SECTION_3]


def test_section_3_categories_under_summary():
    mapped = _map("summary", [row[:3] for row in SECTION_3])
    expected = [SUMMARY_DIFFERS.get(row[:3], row[3]) for row in SECTION_3]
    assert list(mapped.lines["category"]) == expected


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(
    ("keys", "category"),
    [
        # tax Amazon charges on its own fees: recoverable input tax, never an expense
        (("AMAZONFEES", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE"), "input_tax"),
        (("FBAFEES", "FBA_INVENTORY_STORAGE_FEE", "TAX_ON_FEE"), "input_tax"),
        (("SERVICEFEE", "OTHERFEES", "TAXAMOUNT"), "input_tax"),
        (("COMMINGLING_VAT", "OTHER_TRANSACTION", "COMMINGLING_VAT"), "input_tax"),
        (("OTHER_TRANSACTION", "CAPACITY_RESERVATION_FEE", "TAX"), "input_tax"),
        # no M3 invoice exists for a liquidation
        (("LIQUIDATIONS", "ITEMPRICE", "PRINCIPAL"), "liquidation_proceeds"),
        (("CHARGEBACK_REFUND", "ITEMPRICE", "PRINCIPAL"), "refunds"),
        (("A_TO_Z_GUARANTEE_REFUND", "ITEMPRICE", "PRINCIPAL"), "refunds"),
        (("OTHER_TRANSACTION", "OTHER_TRANSACTION", "AMAZON_CAPITAL_SERVICES"), "loan_repayment"),
        (("OTHER_TRANSACTION", "OTHER_TRANSACTION", "INCOME_TAX_CHARGED"), "withholding_tax"),
    ],
)
def test_accounting_critical_categories_and_accounts(preset, keys, category):
    mapped = _map(preset, [keys])
    assert mapped.lines["category"].iloc[0] == category
    account = mapped.lines["account"].iloc[0]
    mapping = load_mapping(preset)
    assert account == mapping.categories[category].account
    if category != "refunds":  # refunds settle the receivable (invoice-clearing) / are returns (summary)
        # never the customer receivable (invoice-clearing) nor sales revenue (summary)
        assert account != mapping.categories["principal"].account
    if category in ("input_tax", "withholding_tax", "loan_repayment"):
        assert account[0] in "12", f"{category} belongs on the balance sheet, got {account}"


def test_tax_on_advertising_is_not_advertising_any_more():
    for preset in PRESETS:
        mapped = _map(
            preset,
            [("ServiceFee", "OtherFees", "TaxAmount"), ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount")],
        )
        assert list(mapped.lines["category"]) == ["input_tax", "advertising"]
        assert list(mapped.lines["account"]) == ["2640", "6510"]


def test_new_categories_have_the_same_account_in_both_presets():
    accounts = {preset: {c: load_mapping(preset).categories[c].account for c in NEW_CATEGORIES} for preset in PRESETS}
    assert (
        accounts["invoice-clearing"]
        == accounts["summary"]
        == {
            "liquidation_proceeds": "3990",
            "liquidation_fees": "6180",
            "input_tax": "2640",
            "withholding_tax": "1640",
            "sales_tax_adjustments": "2610",
            "outbound_freight": "6210",
            "inbound_landed_cost": "4050",
            "promotion_fees": "6520",
            "loan_repayment": "2840",
            "adjustments_review": "2999",
            "other_income": "3990",
        }
    )


def test_the_hand_written_list_covers_every_value_the_document_names():
    """Cross-check against the document itself: every concrete value in §3's three key columns
    appears in SECTION_3 in that column (normalised), so no item was left out by hand."""
    text = (REPO / "docs" / "settlement-vocabulary.md").read_text(encoding="utf-8")
    section = text.split("## 3.", 1)[1]
    seen = [set(), set(), set()]
    for tt, at, ad, _ in SECTION_3:
        for column, value in zip(seen, (tt, at, ad)):
            column.add(normalise_key(value))
    missing = []
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`"):
            continue
        for index in range(3):
            for value in re.findall(r"`([^`]+)`", cells[index]):
                if value == "*" or value.startswith("…"):
                    continue
                if normalise_key(value) not in seen[index]:
                    missing.append((index, value))
    assert missing == []


@pytest.mark.parametrize("spelling", ["Storage Fee", "STORAGE_FEE", "storage-fee", "StorageFee", " storage fee "])
def test_one_rule_covers_every_spelling(spelling):
    mapped = _map(
        "invoice-clearing",
        [("other-transaction", "other-transaction", spelling), (spelling, "other-transaction", spelling)],
    )
    assert list(mapped.lines["category"]) == ["storage", "storage"]


def test_unmapped_combinations_are_reported_as_the_file_spells_them():
    mapped = _map(
        "invoice-clearing",
        [
            ("other-transaction", "other-transaction", "Brand New Fee"),
            ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "BRAND_NEW_FEE"),
        ],
    )
    # one normalised key, two spellings: each reported as written, with its own line count
    assert [(u.transaction_type, u.amount_description, u.line_count) for u in mapped.unmapped] == [
        ("OTHER_TRANSACTION", "BRAND_NEW_FEE", 1),
        ("other-transaction", "Brand New Fee", 1),
    ]


def _custom(*rules: str) -> dict:
    return {
        "categories": {
            "storage": {"account": "6160"},
            "amazon_clearing": {"account": "1930"},
            "payable_to_amazon": {"account": "2450"},
            "carry_over": {"account": "1595"},
        },
        "rules": [
            dict(zip(("transaction_type", "amount_type", "amount_description", "category"), r.split("|")))
            for r in rules
        ],
    }


def test_two_rules_with_one_normalised_key_are_an_error_naming_both():
    with pytest.raises(MappingError) as caught:
        parse_mapping(_custom("Storage Fee|*|*|storage", "other|x|y|storage", "STORAGE_FEE|*|*|storage"), "mine.yaml")
    assert str(caught.value) == (
        "mine.yaml: rules[2]: duplicates rules[0] (STORAGE_FEE / * / * and Storage Fee / * / * "
        "are the same key once normalised: STORAGEFEE / * / *)"
    )


def test_a_key_without_letters_or_digits_is_refused():
    with pytest.raises(MappingError, match=r"rules\[0\]\.amount_type: '--' has no letter or digit to match on"):
        parse_mapping(_custom("Storage Fee|--|*|storage"), "mine.yaml")


def test_normalise_key():
    assert normalise_key("MarketplaceFacilitatorTax-Principal") == normalise_key("MARKETPLACEFACILITATORTAX_PRINCIPAL")
    assert normalise_key("A-to-z Guarantee Refund") == "ATOZGUARANTEEREFUND"
    assert normalise_key("  other-transaction ") == normalise_key("OTHER_TRANSACTION") == "OTHERTRANSACTION"
    assert normalise_key("Gebühr") == "GEBÜHR"


def test_readme_mapping_table_matches_both_presets():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `([a-z_]+)` \| (\w+) \| (\w+) \|", readme, flags=re.MULTILINE)
    }
    presets = [load_mapping(p) for p in PRESETS]
    assert table == {c: tuple(m.categories[c].account for m in presets) for c in presets[0].categories}


@pytest.mark.parametrize("preset", PRESETS)
def test_multi_channel_lines_book_under_mcf_never_the_amazon_marketplace(preset):
    """Every §3 combination on a Non-Amazon (MCF) row: P&L accounts carry AIT2 MCF, the same
    item on an Amazon.com row AIT2 AMZ; balance-sheet accounts carry no channel."""
    keys = [row[:3] for row in SECTION_3]
    amazon = _map(preset, keys).lines
    frame = lines_frame([(tt, at, ad, -100, "2024-10-18") for tt, at, ad in keys], marketplace_name="Non-Amazon US")
    mcf = load_mapping(preset).map_lines(frame, "US", currency="USD").lines
    assert list(mcf["account"]) == list(amazon["account"]) and list(mcf["ait3"]) == list(amazon["ait3"])
    profit_and_loss = amazon["account"].str[0].isin(list("3456789")).to_numpy()
    assert profit_and_loss.sum() > 50  # the test saw the fee and income rows it is about
    assert set(mcf["ait2"][profit_and_loss]) == {"MCF"} and set(amazon["ait2"][profit_and_loss]) == {"AMZ"}
    assert set(mcf["ait2"][~profit_and_loss]) == set(amazon["ait2"][~profit_and_loss]) == {""}
