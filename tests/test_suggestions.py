"""Fee-type mapping suggestions: category, confidence and the YAML line to add."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from anomaly import Suggestion, load_vocabulary, suggest_categories
from anomaly.suggestions import VocabularyError
from reconciliation.mapping import load_mapping, parse_mapping
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
