"""GL mapping presets, rule matching, user overrides and malformed mapping files."""

from __future__ import annotations

from pathlib import Path

import pytest
from _settlement_builders import lines_frame, settlement_from_tsv

from reconciliation.mapping import MappingError, UnmappedCombination, load_mapping, shipped_presets

CATEGORIES = {
    "principal",
    "shipping",
    "tax",
    "marketplace_facilitator_tax",
    "promotions",
    "referral_commission",
    "fba_fulfilment_fees",
    "other_selling_fees",
    "refunds",
    "refund_commission",
    "reimbursements",
    "reserves",
    "advertising",
    "subscription",
    "storage",
    "removal",
    "amazon_clearing",
    "payable_to_amazon",
    "carry_over",
}

# Real V2 files (docs/settlement-vocabulary.md), the V1 transaction types and the generator's rows -> category
# under invoice-clearing, as an accountant would book them.
VOCABULARY = [
    ("Order", "ItemPrice", "Principal", "principal"),
    ("Order", "ItemPrice", "Tax", "tax"),
    ("Order", "ItemPrice", "Shipping", "shipping"),
    ("Order", "ItemPrice", "ShippingTax", "tax"),
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "marketplace_facilitator_tax"),
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", "marketplace_facilitator_tax"),
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal", "marketplace_facilitator_tax"),
    ("Order", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Shipping", "marketplace_facilitator_tax"),
    ("Order", "ItemFees", "FBAPerUnitFulfillmentFee", "fba_fulfilment_fees"),
    ("Order", "ItemFees", "Commission", "referral_commission"),
    ("Order", "ItemFees", "DigitalServicesFee", "other_selling_fees"),
    ("Order", "ItemFees", "ShippingChargeback", "other_selling_fees"),
    ("Order", "Promotion", "Shipping", "promotions"),
    # tax rows are `tax` wherever they appear (issue 11: on a facilitator marketplace they net with
    # the withheld tax on the clearing account; promotions and refunds stay on the receivable)
    ("Order", "Promotion", "TaxDiscount", "tax"),
    ("Order", "Promotion", "Principal", "promotions"),
    ("Refund", "ItemPrice", "Principal", "refunds"),
    ("Refund", "ItemPrice", "Tax", "tax"),
    ("Refund", "ItemPrice", "Shipping", "refunds"),
    ("Refund", "ItemPrice", "ShippingTax", "tax"),
    ("Refund", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "marketplace_facilitator_tax"),
    ("Refund", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Shipping", "marketplace_facilitator_tax"),
    ("Refund", "ItemFees", "Commission", "referral_commission"),
    ("Refund", "ItemFees", "RefundCommission", "refund_commission"),
    ("Refund", "ItemFees", "DigitalServicesFee", "other_selling_fees"),
    ("Refund", "ItemFees", "ShippingChargeback", "other_selling_fees"),
    ("Refund", "Promotion", "Shipping", "promotions"),
    ("other-transaction", "other-transaction", "Previous Reserve Amount Balance", "reserves"),
    ("other-transaction", "other-transaction", "Current Reserve Amount", "reserves"),
    ("other-transaction", "other-transaction", "RemovalComplete", "removal"),
    ("other-transaction", "other-transaction", "Subscription Fee", "subscription"),
    ("other-transaction", "other-transaction", "Storage Fee", "storage"),
    ("other-transaction", "other-transaction", "Cost of Advertising", "advertising"),
    ("other-transaction", "FBA Inventory Reimbursement", "REVERSAL_REIMBURSEMENT", "reimbursements"),
    ("other-transaction", "FBA Inventory Reimbursement", "WAREHOUSE_DAMAGE", "reimbursements"),
    ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", "advertising"),
    ("ServiceFee", "other-transaction", "Cost of Advertising", "advertising"),
    ("ServiceFee", "other-transaction", "Subscription Fee", "subscription"),
    ("Subscription Fee", "other-transaction", "Subscription Fee", "subscription"),
    ("Storage Fee", "other-transaction", "Storage Fee", "storage"),
    # inbound transport is landed cost of the inventory, not a fulfilment fee (docs/settlement-vocabulary.md §3)
    ("Inbound Transportation Fee", "ShipmentFees", "FBA transportation fee", "inbound_landed_cost"),
    ("WAREHOUSE_DAMAGE", "other-transaction", "WAREHOUSE_DAMAGE", "reimbursements"),
    ("REVERSAL_REIMBURSEMENT", "other-transaction", "REVERSAL_REIMBURSEMENT", "reimbursements"),
    ("Payable to Amazon", "other-transaction", "Payable to Amazon", "payable_to_amazon"),
    ("Successful charge", "other-transaction", "Successful charge", "amazon_clearing"),
    # legacy V1 files as reconciliation.parse melts them
    ("Order", "ItemFees", "MarketplaceFacilitatorTax-Principal", "marketplace_facilitator_tax"),
    ("Refund", "ItemFees", "MarketplaceFacilitatorVAT-Shipping", "marketplace_facilitator_tax"),
    ("Current Reserve Amount", "other-transaction", "Current Reserve Amount", "reserves"),
    ("Previous Reserve Amount Balance", "other-transaction", "Previous Reserve Amount Balance", "reserves"),
    ("ServiceFee", "OtherFees", "Cost of Advertising", "advertising"),
    ("ServiceFee", "ItemFees", "Cost of Advertising", "advertising"),
    # GST/HST/VAT on advertising invoices is recoverable input tax, never advertising expense
    ("ServiceFee", "OtherFees", "TaxAmount", "input_tax"),
    ("Order", "ShipmentFees", "FBA transportation fee", "fba_fulfilment_fees"),
]


def _frame(keys):
    return lines_frame([(tt, at, ad, -100, "2024-10-18 00:00:00") for tt, at, ad in keys])


def test_presets_are_shipped_and_define_every_category():
    assert {"invoice-clearing", "summary"} <= set(shipped_presets())
    for name in ("invoice-clearing", "summary"):
        mapping = load_mapping(name)
        assert CATEGORIES <= set(mapping.categories), name
        assert mapping.name == name


def test_default_is_invoice_clearing():
    assert load_mapping().name == "invoice-clearing"


@pytest.mark.parametrize("preset", ["invoice-clearing", "summary"])
def test_whole_vocabulary_is_mapped(preset):
    mapped = load_mapping(preset).map_lines(_frame([v[:3] for v in VOCABULARY]), "US", currency="USD")
    assert mapped.unmapped == ()
    assert mapped.complete


def test_vocabulary_categories_under_invoice_clearing():
    mapped = load_mapping("invoice-clearing").map_lines(_frame([v[:3] for v in VOCABULARY]), "US")
    assert list(mapped.lines["category"]) == [v[3] for v in VOCABULARY]


def test_summary_recognises_revenue_returns_and_refunded_tax():
    keys = [
        ("Order", "ItemPrice", "Principal"),
        ("Order", "ItemPrice", "Shipping"),
        ("Order", "ItemPrice", "Tax"),
        ("Refund", "ItemPrice", "Principal"),
        ("Refund", "ItemPrice", "Tax"),
        ("Order", "Promotion", "TaxDiscount"),
    ]
    mapped = load_mapping("summary").map_lines(_frame(keys), "DE", currency="EUR")
    # the exact Refund/ItemPrice/Tax rule beats the Refund/ItemPrice/* rule
    assert list(mapped.lines["category"]) == ["principal", "shipping", "tax", "refunds", "tax", "tax"]
    assert list(mapped.lines["account"]) == ["3010", "3020", "2610", "3090", "2610", "2610"]


def test_fixture_lines_map_row_by_row(us_v2_tsv: Path):
    settlement = settlement_from_tsv(us_v2_tsv)
    mapped = load_mapping("invoice-clearing").map_settlement(settlement)
    assert list(mapped.lines["account"]) == [
        "1510",
        "1510",
        "2610",
        "6120",
        "6110",
        "6130",  # order 1
        "1510",
        "1510",
        "6120",
        "6110",
        "6130",
        "1510",  # order 2 (with shipping promotion)
        "1510",
        "6120",  # MCF order
        "1510",
        "1510",
        "2610",
        "6110",
        "6140",
        "6130",  # refund
    ]
    assert set(mapped.lines["ait3"]) == {"US"}
    # AIT2 is the channel on P&L accounts: the MCF order's (Non-Amazon US) FBA fee is MCF, the
    # Amazon orders' P&L lines AMZ; balance-sheet accounts carry no channel.
    assert list(mapped.lines["ait2"]) == [
        *("", "", "", "AMZ", "AMZ", "AMZ"),
        *("", "", "AMZ", "AMZ", "AMZ", ""),
        *("", "MCF"),
        *("", "", "", "AMZ", "AMZ", "AMZ"),
    ]
    assert len(mapped.lines) == 20 and list(mapped.lines["line_no"]) == list(settlement.lines["line_no"])


def test_unmapped_combinations_are_counted_and_summed():
    frame = lines_frame(
        [
            ("Order", "ItemFees", "NewFeeType", -150, "2024-10-18"),
            ("Order", "ItemPrice", "Principal", 1000, "2024-10-18"),
            ("Order", "ItemFees", "NewFeeType", -150, "2024-10-18"),
            ("Mystery", "Thing", "Stuff", 7, "2024-10-18"),
            ("Order", "ItemFees", "NewFeeType", -150, "2024-10-19"),
        ]
    )
    mapped = load_mapping().map_lines(frame, "US")
    assert mapped.unmapped == (
        UnmappedCombination("Mystery", "Thing", "Stuff", 1, 7),
        UnmappedCombination("Order", "ItemFees", "NewFeeType", 3, -450),
    )
    assert mapped.lines["category"].isna().sum() == 4
    assert list(mapped.lines["category"].fillna("?")) == ["?", "principal", "?", "?", "?"]


CUSTOM = """\
name: custom
categories:
  principal: {account: "0100", dimensions: {AIT2: "S{marketplace}", AIT4: "{currency}"}}
  amazon_clearing: {account: "1930"}
  payable_to_amazon: {account: "2450"}
  carry_over: {account: "1595"}
rules:
  - {transaction_type: Order, amount_type: ItemPrice, amount_description: Principal, category: principal}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / "mappings").mkdir(parents=True, exist_ok=True)
    path = folder / "mappings" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_file_overrides_the_shipped_preset(tmp_path: Path):
    _write(tmp_path, "invoice-clearing.yaml", CUSTOM)
    mapping = load_mapping("invoice-clearing", home=tmp_path)
    assert mapping.source == "mappings/invoice-clearing.yaml"
    assert set(mapping.categories) == {"principal", "amazon_clearing", "payable_to_amazon", "carry_over"}
    # without home, or with another home, the shipped preset is used
    assert load_mapping("invoice-clearing").categories["principal"].account == "1510"
    assert load_mapping("invoice-clearing", home=tmp_path / "other").categories["principal"].account == "1510"


def test_user_file_by_name_and_by_path_with_placeholders(tmp_path: Path):
    path = _write(tmp_path, "custom.yaml", CUSTOM)
    for mapping in (load_mapping("custom", home=tmp_path), load_mapping(path)):
        mapped = mapping.map_lines(_frame([("Order", "ItemPrice", "Principal")]), "FR", currency="EUR")
        row = mapped.lines.iloc[0]
        assert (row["account"], row["ait2"], row["ait3"], row["ait4"]) == ("0100", "SFR", "", "EUR")
        assert mapping.account_for("carry_over", "FR", "EUR") == ("1595", ("",) * 6)


def _bad(tmp_path: Path, text: str) -> str:
    _write(tmp_path, "custom.yaml", text)
    with pytest.raises(MappingError) as caught:
        load_mapping("custom", home=tmp_path)
    return str(caught.value)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            'principal: {account: "0100", ',
            "principal: {",
            "mappings/custom.yaml: categories.principal.account: missing",
        ),
        (
            "category: principal}",
            "category: fees}",
            "mappings/custom.yaml: rules[0].category: 'fees' is not a defined category",
        ),
        (
            'account: "0100"',
            'account: "ACCOUNT-0100"',
            "categories.principal.account: 'ACCOUNT-0100' is longer than 10 characters",
        ),
        (
            'account: "0100"',
            "account: 100",
            'categories.principal.account: must be a quoted string (write "100"), got int',
        ),
        (
            'AIT2: "S{marketplace}"',
            'AIT2: "SALES-{currency}-X"',
            "categories.principal.dimensions.AIT2: 'SALES-{currency}-X' is longer than 10",
        ),
        (
            'AIT2: "S{marketplace}"',
            'AIT2: "{region}"',
            "categories.principal.dimensions.AIT2: unknown placeholder {region}",
        ),
        ('AIT2: "S{marketplace}"', 'AIT8: "X"', "categories.principal.dimensions.AIT8: unknown dimension"),
        ('  carry_over: {account: "1595"}\n', "", "categories.carry_over: missing"),
        (
            "rules:\n",
            "rules:\n  - {transaction_type: '*', amount_type: '*', amount_description: '*', category: principal}\n",
            "rules[0]: a rule must name at least one of",
        ),
        (
            "rules:\n",
            "rules:\n  - {transaction_type: Order, amount_type: ItemPrice, amount_description: Principal, "
            "category: principal}\n",
            "rules[1]: duplicates rules[0] (Order / ItemPrice / Principal)",
        ),
        ("amount_description: Principal, ", "", "rules[0].amount_description: missing"),
        ("name: custom\n", "name: custom\nextends: summary\n", "mappings/custom.yaml: extends: unknown key"),
        (
            "name: custom\n",
            "name: custom\ngross_lines: yes please\n",
            "gross_lines: must be true or false, got 'yes please'",
        ),
        (
            'principal: {account: "0100", ',
            'principal: {gross: 1, account: "0100", ',
            "principal.gross: must be true or false, got 1",
        ),
        (
            'AIT2: "S{marketplace}"',
            'AIT2: "SALES{channel}{currency}"',
            "categories.principal.dimensions.AIT2: 'SALES{channel}{currency}' is longer than 10",
        ),
        ("categories:\n", "categories:\n  bad: [1, 2\n", "mappings/custom.yaml: line "),
    ],
)
def test_malformed_mapping_names_the_key_path(tmp_path: Path, old: str, new: str, expected: str):
    assert old in CUSTOM
    assert expected in _bad(tmp_path, CUSTOM.replace(old, new, 1))


def test_unknown_preset_lists_the_presets(tmp_path: Path):
    with pytest.raises(MappingError, match="no such mapping; presets: invoice-clearing, summary"):
        load_mapping("nonexistent", home=tmp_path)


def test_missing_file_path():
    with pytest.raises(MappingError, match="mapping file not found"):
        load_mapping(Path("/nonexistent/custom.yaml"))


def test_channel_placeholder_and_gross_flags(tmp_path: Path):
    text = CUSTOM.replace('AIT2: "S{marketplace}"', 'AIT2: "{channel}{marketplace}"').replace(
        'principal: {account: "0100", ', 'principal: {gross: true, account: "0100", '
    )
    mapping = load_mapping(_write(tmp_path, "custom.yaml", text + "gross_lines: true\n"))
    assert mapping.gross_lines and mapping.categories["principal"].gross
    assert mapping.keeps_gross("principal") and not mapping.keeps_gross("carry_over")
    assert mapping.account_for("principal", "UK", "GBP") == ("0100", ("AMZUK", "", "GBP", "", "", ""))
    assert mapping.account_for("principal", "UK", "GBP", "MCF") == ("0100", ("MCFUK", "", "GBP", "", "", ""))
    frame = lines_frame([("Order", "ItemPrice", "Principal", 0, "2024-10-18")] * 3)
    frame["marketplace_name"] = ["Amazon.co.uk", "Non-Amazon UK", "SI UK Prod Marketplace"]
    assert list(mapping.map_lines(frame, "UK", currency="GBP").lines["ait2"]) == ["AMZUK", "MCFUK", "MCFUK"]
    # without gross_lines the flag alone keeps nothing gross
    assert not load_mapping(_write(tmp_path, "custom.yaml", text)).keeps_gross("principal")


@pytest.mark.parametrize(("preset", "gross_lines"), [("invoice-clearing", False), ("summary", True)])
def test_presets_mark_revenue_and_refunds_gross(preset, gross_lines):
    mapping = load_mapping(preset)
    assert mapping.gross_lines is gross_lines
    assert {name for name, c in mapping.categories.items() if c.gross} == {
        "principal",
        "shipping",
        "promotions",
        "refunds",
    }
