"""Fee-type mapping suggestions: category, confidence and the YAML line to add."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from test_vocabulary import SECTION_3

from anomaly import Suggestion, load_vocabulary, suggest_categories
from anomaly.suggestions import VocabularyError, is_tax_item
from reconciliation.mapping import load_mapping, normalise_key, parse_mapping
from reconciliation.mappings import __file__ as mappings_init

UNSEEN = [
    (("other-transaction", "other-transaction", "FBA Long-Term Storage Fee"), "storage"),
    (("other-transaction", "other-transaction", "Inbound Placement Service Fee"), "inbound_landed_cost"),
    (("Order", "ItemFees", "Low-Inventory-Level Fee"), "fba_fulfilment_fees"),
]


@pytest.fixture(scope="module")
def mapping():
    return load_mapping("invoice-clearing")


@pytest.mark.parametrize(("combination", "category"), UNSEEN)
def test_realistic_fee_names_land_on_the_right_category(mapping, combination, category):
    [suggestion] = suggest_categories([combination], mapping)
    assert suggestion.combination == combination
    assert suggestion.category == category
    assert 0.5 <= suggestion.confidence <= 1.0


@pytest.mark.parametrize(("combination", "category"), UNSEEN)
def test_names_missing_from_the_vocabulary_still_land_right(mapping, combination, category):
    """Leave the exact name out: the n-gram model must generalise from similar names."""
    name = combination[2].lower()
    vocabulary = [(n, c) for n, c in load_vocabulary() if n.lower() != name]
    assert len(vocabulary) < len(load_vocabulary())
    [suggestion] = suggest_categories([combination], mapping, vocabulary=vocabulary)
    assert suggestion.category == category
    assert suggestion.nearest.lower() != name


def test_yaml_line_is_a_valid_rule_that_maps_the_combination(mapping):
    combination = ("other-transaction", "other-transaction", "FBA Long-Term Storage Fee")
    [suggestion] = suggest_categories([combination], mapping)
    assert suggestion.yaml_line == (
        "  - {transaction_type: other-transaction, amount_type: other-transaction, "
        "amount_description: FBA Long-Term Storage Fee, category: storage}"
    )
    _assert_line_maps(mapping, suggestion)


def test_awkward_names_are_quoted_so_the_yaml_stays_valid(mapping):
    combination = ("other-transaction", "Fee: storage, {aged}", "#365 days *")
    [suggestion] = suggest_categories([combination], mapping)
    _assert_line_maps(mapping, suggestion)


def _assert_line_maps(mapping, suggestion: Suggestion) -> None:
    shipped = yaml.safe_load(open(mappings_init.replace("__init__.py", "invoice-clearing.yaml"), encoding="utf-8"))
    added = yaml.safe_load("rules:\n" + suggestion.yaml_line)["rules"]
    extended = parse_mapping({**shipped, "rules": shipped["rules"] + added}, "extended.yaml")
    keys = dict(zip(("transaction_type", "amount_type", "amount_description"), suggestion.combination))
    lines = pd.DataFrame([{**keys, "amount_minor": -100}])
    before = mapping.map_lines(lines, "US", currency="USD")
    after = extended.map_lines(lines, "US", currency="USD")
    assert not before.complete and after.complete
    assert after.lines["category"].iloc[0] == suggestion.category
    assert suggestion.yaml_line.strip() in suggestion.reason()


def test_accepts_the_mapping_gates_unmapped_records(mapping):
    lines = pd.DataFrame(
        [
            {
                "transaction_type": "other-transaction",
                "amount_type": "other-transaction",
                "amount_description": "Vine Enrollment Fee",
                "amount_minor": -20000,
            }
        ]
    )
    unmapped = mapping.map_lines(lines, "US", currency="USD").unmapped
    [suggestion] = suggest_categories(unmapped, mapping)
    assert suggestion.category == "promotion_fees"  # a marketing programme, not advertising
    assert suggest_categories([], mapping) == []


def test_bad_input_is_named(mapping):
    with pytest.raises(ValueError, match=r"unmapped combination must be .*\('Order', 'ItemFees'\)"):
        suggest_categories([("Order", "ItemFees")], mapping)
    with pytest.raises(VocabularyError, match=r"names\[0\] needs text 'name' and 'category'"):
        load_vocabulary("names:\n  - {name: Storage Fee}\n", source="mine.yaml")


# --- accounting rules bound the suggestion (issue #11: the model offered TAX_ON_FEE ->
#     advertising, Amazon Capital Services -> fees, liquidation principal -> receivable,
#     CHARGEBACK_REFUND -> principal as ready-to-paste YAML) ---

PRESETS = ("invoice-clearing", "summary")
KEYS = ("transaction_type", "amount_type", "amount_description")


def _rule_matches(rule: dict, combination: tuple[str, str, str]) -> bool:
    return all(rule[k] == "*" or normalise_key(rule[k]) == normalise_key(v) for k, v in zip(KEYS, combination))


def _names_it(rule: dict, combination: tuple[str, str, str]) -> bool:
    """The rule is about this item: it matches it and names its description or a transaction
    type other than Order/Refund (``Refund / ItemPrice / *`` stays: it is about all refunds)."""
    return _rule_matches(rule, combination) and (
        rule["amount_description"] != "*" or normalise_key(rule["transaction_type"]) not in ("ORDER", "REFUND", "*")
    )


def _preset_without(preset: str, combinations, keep_categories=None, *, match=_rule_matches):
    """The shipped preset as a user's chart that lacks every rule matching ``combinations``
    (and, with ``keep_categories``, every other category and its rules)."""
    document = yaml.safe_load(open(mappings_init.replace("__init__.py", f"{preset}.yaml"), encoding="utf-8"))
    categories = document["categories"]
    if keep_categories is not None:
        categories = {name: spec for name, spec in categories.items() if name in keep_categories}
    rules = [r for r in document["rules"] if r["category"] in categories and not any(match(r, c) for c in combinations)]
    # the tax profile's roles only for the categories the chart keeps
    tax_roles = {role: [n for n in names if n in categories] for role, names in document["tax_roles"].items()}
    mapping = parse_mapping(
        {**document, "categories": categories, "rules": rules, "tax_roles": tax_roles}, f"{preset}-lacking.yaml"
    )
    if match is _rule_matches:
        lines = pd.DataFrame([{**dict(zip(KEYS, c)), "amount_minor": -100} for c in combinations])
        assert len(mapping.map_lines(lines, "US", currency="USD").unmapped) == len(set(combinations))
    return mapping


ISSUE_EXAMPLES = [
    # tax Amazon charges on its fees (also on advertising): input tax, never advertising/promotion
    (("ServiceFee", "Cost of Advertising", "TAX_ON_FEE"), "input_tax", "input_tax"),
    (("AmazonFees", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE"), "input_tax", "input_tax"),
    (("ServiceFee", "OtherFees", "TaxAmount"), "input_tax", "input_tax"),
    # a loan repayment is a liability, never a fee
    (("other-transaction", "other-transaction", "Amazon Capital Services"), "loan_repayment", "loan_repayment"),
    # no M3 invoice exists for a liquidation: never the receivable (invoice-clearing) or revenue (summary)
    (("Liquidations", "ItemPrice", "Principal"), "liquidation_proceeds", "liquidation_proceeds"),
    # a chargeback pays the buyer back: a refund, not principal
    (("Chargeback Refund", "ItemPrice", "Principal"), "refunds", "refunds"),
    (("A-to-z Guarantee Refund", "ItemPrice", "Principal"), "refunds", "refunds"),
    # its tax: tax, never returns 3090: on the receivable (invoice-clearing, 1510) / output tax reversed
    # (summary), and where Amazon is the facilitator netted with the withheld tax (issue 11 item 1)
    (("Chargeback Refund", "ItemPrice", "Tax"), "tax", "tax"),
]


@pytest.mark.parametrize("preset", PRESETS)
def test_the_issues_examples_get_the_accountants_category(preset):
    combinations = [c for c, *_ in ISSUE_EXAMPLES]
    mapping = _preset_without(preset, combinations)
    suggestions = suggest_categories(combinations, mapping)
    expected = [ic if preset == "invoice-clearing" else summary for _, ic, summary in ISSUE_EXAMPLES]
    assert [(s.combination, s.category) for s in suggestions] == list(zip(combinations, expected))
    assert suggestions[0].yaml_line == (
        "  - {transaction_type: ServiceFee, amount_type: Cost of Advertising, amount_description: TAX_ON_FEE, "
        "category: input_tax}"
    )
    for suggestion in suggestions:
        _assert_line_maps_in(mapping, suggestion)


# The first presets' 19 categories plus other income and the review suspense account: a chart
# without liquidation, loan or input-tax accounts.
FIRST_CHART = (
    "principal shipping tax marketplace_facilitator_tax promotions referral_commission fba_fulfilment_fees "
    "other_selling_fees refunds refund_commission reimbursements reserves advertising subscription storage "
    "removal amazon_clearing payable_to_amazon carry_over"
).split()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        # liquidation proceeds fall back to other income, a loan repayment to the review suspense account
        (
            ["other_income", "adjustments_review"],
            ["other_income", "adjustments_review", "refunds", "marketplace_facilitator_tax"],
        ),
        # without those: the liability to Amazon, never a fee; a liquidation is still no receivable
        ([], ["other_selling_fees", "payable_to_amazon", "refunds", "marketplace_facilitator_tax"]),
    ],
)
def test_a_chart_without_the_new_categories_still_gets_no_receivable_or_expense_for_them(extra, expected):
    combinations = [
        ("Liquidations", "ItemPrice", "Principal"),
        ("other-transaction", "other-transaction", "Amazon Capital Services"),
        ("Chargeback Refund", "ItemPrice", "Principal"),
        ("ServiceFee", "Cost of Advertising", "TAX_ON_FEE"),  # no input-tax account: a balance-sheet tax one
    ]
    mapping = _preset_without("invoice-clearing", combinations, keep_categories=FIRST_CHART + extra)
    assert [s.category for s in suggest_categories(combinations, mapping)] == expected


def _assert_line_maps_in(mapping, suggestion: Suggestion) -> None:
    added = yaml.safe_load("rules:\n" + suggestion.yaml_line)["rules"]
    document = {
        "categories": {
            name: {"account": c.account, "dimensions": {}, "description": c.description}
            for name, c in mapping.categories.items()
        },
        "rules": [dict(zip((*KEYS, "category"), (*r.keys, r.category))) for r in mapping.rules] + added,
    }
    lines = pd.DataFrame([{**dict(zip(KEYS, suggestion.combination)), "amount_minor": -100}])
    mapped = parse_mapping(document, "extended.yaml").map_lines(lines, "US", currency="USD")
    assert list(mapped.lines["category"]) == [suggestion.category]


# Worked from the presets' category tables (README): accounts of the balance-sheet tax categories.
TAX_ACCOUNTS = {"invoice-clearing": {"1510", "2610", "2640", "1640"}, "summary": {"2610", "2640", "1640"}}
ORDER_CATEGORIES = {"principal", "shipping", "tax", "promotions", "refunds"}


# The tax amounts §3 names, by description (SALESTAXSERVICEFEE is a fee named after tax,
# RESERVATION_FEE merely spells "vat").
TAX_DESCRIPTIONS = {
    normalise_key(d)
    for d in (
        "TAX",
        "SHIPPINGTAX",
        "MARKETPLACEFACILITATORTAX_PRINCIPAL",
        "MARKETPLACEFACILITATORTAX_SHIPPING",
        "MARKETPLACEFACILITATORVAT_PRINCIPAL",
        "MARKETPLACEFACILITATORVAT_SHIPPING",
        "TAX_ON_FEE",
        "TAXAMOUNT",
        "COMMINGLING_VAT",
        "INCOME_TAX_CHARGED",
    )
}


def _is_tax_by_hand(combination) -> bool:
    return normalise_key(combination[2]) in TAX_DESCRIPTIONS


@pytest.mark.parametrize("preset", PRESETS)
def test_no_section_3_item_is_offered_a_pl_account_for_tax_or_the_receivable_without_an_order(preset):
    """Every combination of docs/settlement-vocabulary.md §3, in a chart lacking the rules about them."""
    combinations = list(dict.fromkeys(row[:3] for row in SECTION_3))
    mapping = _preset_without(preset, combinations, match=_names_it)
    suggestions = {s.combination: s for s in suggest_categories(combinations, mapping)}
    assert len(suggestions) == len(combinations)  # every one still gets a suggestion
    tax_items = 0
    for combination, suggestion in suggestions.items():
        account = mapping.categories[suggestion.category].account
        if _is_tax_by_hand(combination):
            tax_items += 1
            assert account in TAX_ACCOUNTS[preset], (combination, suggestion.category)
        if normalise_key(combination[0]) not in ("ORDER", "REFUND", "CHARGEBACKREFUND", "ATOZGUARANTEEREFUND"):
            assert suggestion.category not in ORDER_CATEGORIES, (combination, suggestion.category)
            assert account != "1510", combination
    assert tax_items >= 25  # the test saw the tax items it is about


@pytest.mark.parametrize(
    ("combination", "is_tax"),
    [
        (("AmazonFees", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE"), True),
        (("ServiceFee", "OtherFees", "TaxAmount"), True),
        (("ServiceFee", "OtherFees", "TAXAMOUNT"), True),
        (("Order", "ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal"), True),
        (("Commingling_VAT", "*", "*"), True),
        (("other-transaction", "other-transaction", "GST on advertising"), True),
        (("other-transaction", "other-transaction", "Income_Tax_Charged"), True),
        (("Order", "ItemFees", "SalesTaxServiceFee"), False),
        (("other-transaction", "other-transaction", "VAT Calculation Services Fee"), False),
        (("AmazonFees", "VINE_ENROLLMENT_FEE", "BASE_FEE"), False),
        (("Liquidations", "ItemPrice", "Principal"), False),
    ],
)
def test_tax_items_are_told_from_fees_named_after_tax(combination, is_tax):
    assert is_tax_item(combination) is is_tax


def test_no_allowed_category_means_no_suggestion():
    mapping = parse_mapping(
        {
            "categories": {
                "storage": {"account": "6160"},
                "amazon_clearing": {"account": "1930"},
                "payable_to_amazon": {"account": "2450"},
                "carry_over": {"account": "1595"},
            },
            "rules": [
                {
                    "transaction_type": "*",
                    "amount_type": "*",
                    "amount_description": "Storage Fee",
                    "category": "storage",
                }
            ],
        },
        "mine.yaml",
    )
    # a tax item and this chart has no tax account: better no line than one booking tax to storage
    assert suggest_categories([("FBAFees", "FBA_INVENTORY_STORAGE_FEE", "TAX_ON_FEE")], mapping) == []
    [storage] = suggest_categories([("FBAFees", "FBA_INVENTORY_STORAGE_FEE", "BASE_FEE")], mapping)
    assert storage.category == "storage"
