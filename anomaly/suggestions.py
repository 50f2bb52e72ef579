"""Which GL category an unmapped fee type most likely belongs to, and the YAML line to add.

A character n-gram TF-IDF (``char_wb``, 2-4 grams) over the mapping's own rules and a shipped
vocabulary of Amazon fee names; the suggestion is the category of the nearest entries by
cosine similarity. Character n-grams match "Long-Term Storage" to "Storage Fee" and
"FBAPerUnit..." to "FBA Per Unit ..." without a word list. Suggestions are shown to a person
(reasons, Exceptions sheet); they are never applied to the mapping automatically.

Two accounting rules bound the similarity, because a ready-to-paste line that books tax to
advertising or a loan repayment to the customer receivable misstates the books:

- a tax item (VAT, GST, HST, sales tax, ``TAX_ON_FEE``, ``TaxAmount``, withheld tax; not a fee
  named after tax such as ``SalesTaxServiceFee``) is only offered a balance-sheet tax category:
  one on a tax account (output tax, withheld tax, input tax, withholding tax, and the receivable
  where collected tax settles it). A tax account is one the mapping's rules and the vocabulary
  book a tax item to and book mostly tax and order lines to: one stray tax rule on an expense
  account (tax on advertising booked to advertising) does not make advertising a tax account;
- an item of no order (a transaction type other than Order, Refund and the refund variants
  Chargeback Refund and A-to-z Guarantee Refund) is never offered a category the mapping books
  orders' and refunds' ItemPrice or Promotion lines to (the customer receivable under
  invoice-clearing, sales revenue and returns under summary); an order's own ItemPrice and
  Promotion lines are only offered those; a refund variant is never offered a category only
  sales use (a chargeback's principal is a refund, not principal).

Which categories those are is read from the mapping's own rules, so a user's chart works too.
When no category is left, no suggestion is made (the combination is still reported unmapped).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from operator import attrgetter

import numpy as np
import yaml

from reconciliation.mapping import WILDCARD, GLMapping, UnmappedCombination, normalise_key

NEIGHBOURS = 5
# Key values that say nothing about what kind of amount it is, normalised as rules match
# (other-transaction, OTHER_TRANSACTION and OtherTransaction are one).
_GENERIC = {"", *map(normalise_key, ("order", "refund", "other-transaction", "servicefee", "itemfees", "adjustment"))}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PLAIN_YAML = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()/&-]*$")
# A word naming a tax, in _words' lower-case text: "tax" anywhere ("marketplacefacilitatortax",
# "taxamount"), the other abbreviations at a word's start or end ("commingling vat", "...vat").
_TAX_WORD = re.compile(r"tax|^(?:vat|gst|hst|pst|qst|tds)|(?:vat|gst|hst)$")
# A fee named after tax ("sales tax service fee", "salestaxservicefee") is a fee; "tax on fee" is tax.
_FEE_NAMED_AFTER_TAX = re.compile(r"(?:fee|fees|charge|charges|service|services|subscription)$")
_TAX_ON = re.compile(r"\b(?:tax|vat|gst|hst)\w* on\b")
_SALE_TYPES = {"ORDER"}
_CUSTOMER_AMOUNT_TYPES = {"ITEMPRICE", "PROMOTION"}  # what an order's invoice or credit note carries


class VocabularyError(ValueError):
    """A vocabulary file that cannot be used; names the file and entry."""


@dataclass(frozen=True)
class Suggestion:
    combination: tuple[str, str, str]  # (transaction_type, amount_type, amount_description)
    category: str
    confidence: float  # cosine similarity of the best supporting entry, 0..1
    yaml_line: str  # the rule to add under ``rules:`` (review first)
    nearest: str  # the known name it resembles most

    def reason(self) -> str:
        return (
            f"unmapped {' / '.join(self.combination)}: looks like {self.category} "
            f"(confidence {self.confidence:.2f}, nearest known {self.nearest!r}); to map it add "
            f"{self.yaml_line.strip()}"
        )


def load_vocabulary(
    text: str | None = None, source: str = "anomaly/vocabulary/amazon_fee_names.yaml"
) -> tuple[tuple[str, str], ...]:
    """(name, category) pairs of the shipped vocabulary (or of ``text``)."""
    if text is None:
        text = (resources.files("anomaly.vocabulary") / "amazon_fee_names.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    names = document.get("names") if isinstance(document, dict) else None
    if not isinstance(names, list):
        raise VocabularyError(f"{source}: expected a 'names' list")
    pairs = []
    for index, entry in enumerate(names):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("category"), str)
        ):
            raise VocabularyError(f"{source}: names[{index}] needs text 'name' and 'category'")
        pairs.append((entry["name"], entry["category"]))
    return tuple(pairs)


def _words(value: str) -> str:
    """'FBAPerUnitFulfillmentFee' / 'Low-Inventory-Level Fee' -> 'fba per unit fulfillment fee'."""
    spaced = _CAMEL.sub(" ", value)
    return re.sub(r"[\s_\-:/]+", " ", spaced).strip().lower()


def is_tax_item(keys: tuple[str, str, str]) -> bool:
    """Whether a combination is a tax amount: its most specific key names a tax and is not a fee
    named after one ("TAX_ON_FEE", "TaxAmount", "MarketplaceFacilitatorVAT-Principal" are;
    "SalesTaxServiceFee" is not)."""
    transaction_type, amount_type, description = keys
    for key in (description, amount_type, transaction_type):
        if key.strip() == WILDCARD or normalise_key(key) in _GENERIC:
            continue
        words = _words(key)
        if not any(_TAX_WORD.search(word) for word in words.split()):
            return False
        return bool(_TAX_ON.search(words)) or not _FEE_NAMED_AFTER_TAX.search(words)
    return False


def is_order_item(transaction_type: str) -> bool:
    """Order, Refund and the refunds of an order by another name (Chargeback Refund, A-to-z
    Guarantee Refund): the transaction types that carry a customer's order."""
    key = normalise_key(transaction_type)
    return key in _SALE_TYPES or key.endswith("REFUND")


def _is_refund_item(transaction_type: str) -> bool:
    return normalise_key(transaction_type).endswith("REFUND")


@dataclass(frozen=True)
class _AllowedCategories:
    """What the mapping's rules say each category is (see the module docstring)."""

    tax: frozenset[str]  # on an account the mapping books tax items to
    tax_only: frozenset[str]  # every entry booking to it is a tax item
    customer: frozenset[str]  # booked from orders' and refunds' ItemPrice / Promotion lines
    customer_by_amount_type: Mapping[str, frozenset[str]]  # the same per (normalised) amount type
    sales_only: frozenset[str]  # customer categories no refund-type rule books to

    @classmethod
    def of(cls, mapping: GLMapping, vocabulary: Iterable[tuple[str, str]]) -> _AllowedCategories:
        """From the mapping's rules and the vocabulary entries whose category it defines."""
        customer_rules = [
            r
            for r in mapping.rules
            if r.transaction_type != WILDCARD
            and is_order_item(r.transaction_type)
            and normalise_key(r.amount_type) in _CUSTOMER_AMOUNT_TYPES
        ]
        customer = {r.category for r in customer_rules}
        by_amount_type: dict[str, set[str]] = {}
        for r in customer_rules:
            by_amount_type.setdefault(normalise_key(r.amount_type), set()).add(r.category)
        refunded = {r.category for r in mapping.rules if _is_refund_item(r.transaction_type)}
        # Per account: entries booking a tax item there, order customer lines, and the rest.
        kinds: dict[str, Counter[str]] = {}
        not_tax: set[str] = set()  # categories some non-tax entry books to
        entries = [(r.keys, r.category, r in customer_rules) for r in mapping.rules]
        entries += [((WILDCARD, WILDCARD, name), category, False) for name, category in vocabulary]
        for keys, category, is_customer in entries:
            kind = "tax" if is_tax_item(keys) else "customer" if is_customer else "other"
            kinds.setdefault(mapping.categories[category].account, Counter())[kind] += 1
            if kind != "tax":
                not_tax.add(category)
        tax_accounts = {a for a, k in kinds.items() if k["tax"] and k["tax"] + k["customer"] >= k["other"]}
        return cls(
            tax=frozenset(name for name, c in mapping.categories.items() if c.account in tax_accounts),
            tax_only=frozenset({category for _, category, _ in entries} - not_tax),
            customer=frozenset(customer),
            customer_by_amount_type={k: frozenset(v) for k, v in by_amount_type.items()},
            sales_only=frozenset(customer - refunded),
        )

    def for_item(self, keys: tuple[str, str, str], categories: Iterable[str]) -> set[str]:
        allowed = set(categories)
        if is_tax_item(keys):
            allowed &= self.tax
        else:
            allowed -= self.tax_only  # output, withheld or input tax is for tax items only
        if not is_order_item(keys[0]):
            allowed -= self.customer
            return allowed
        if normalise_key(keys[1]) in self.customer_by_amount_type:
            # an order's price (promotion) lines are the customer's price (promotion) side, never a fee
            allowed &= self.customer_by_amount_type[normalise_key(keys[1])]
        if _is_refund_item(keys[0]):
            allowed -= self.sales_only
        return allowed


def _describe(keys: tuple[str, str, str]) -> str:
    """Text of a combination: its specific parts, most specific first."""
    transaction_type, amount_type, description = keys
    parts = [
        k
        for k in (description, amount_type, transaction_type)
        if k.strip() != WILDCARD and normalise_key(k) not in _GENERIC
    ]
    if normalise_key(transaction_type) == "REFUND":
        parts.append("refund")
    return _words(" ".join(parts)) or _words(" ".join(keys))


def _yaml_value(value: str) -> str:
    # Plain when safe inside a YAML flow mapping, else a double-quoted (JSON-compatible) string.
    return value if _PLAIN_YAML.match(value) and value != WILDCARD else json.dumps(value, ensure_ascii=False)


def yaml_rule_line(keys: tuple[str, str, str], category: str) -> str:
    """The rule in the shipped mappings' flow style, indented for the ``rules:`` list."""
    tt, at, ad = (_yaml_value(k) for k in keys)
    return f"  - {{transaction_type: {tt}, amount_type: {at}, amount_description: {ad}, category: {category}}}"


def suggest_categories(
    unmapped: Iterable[tuple[str, str, str] | UnmappedCombination],
    mapping: GLMapping,
    *,
    vocabulary: Iterable[tuple[str, str]] | None = None,
) -> list[Suggestion]:
    """One suggestion per unmapped (transaction_type, amount_type, amount_description) that has
    a category the accounting rules allow (module docstring), in the order given.

    Accepts plain tuples or ``UnmappedCombination`` records. Vocabulary entries whose category
    the mapping does not define are ignored (a later entry of the same name may stand in).
    """
    combinations = [_as_keys(item) for item in unmapped]
    if not combinations:
        return []
    known = [(_describe(rule.keys), rule.category, " / ".join(rule.keys)) for rule in mapping.rules]
    names = _defined_entries(load_vocabulary() if vocabulary is None else vocabulary, mapping)
    known += [(_words(name), category, name) for name, category in names]
    from sklearn.feature_extraction.text import TfidfVectorizer  # only when something is unmapped

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    corpus = vectorizer.fit_transform([text for text, _, _ in known])
    queries = vectorizer.transform([_describe(keys) for keys in combinations])
    similarity = (queries @ corpus.T).toarray()  # rows are L2-normalised: this is the cosine
    categories = np.array([category for _, category, _ in known], dtype=object)
    rules = _AllowedCategories.of(mapping, names)
    suggestions = []
    for keys, row in zip(combinations, similarity):
        allowed = np.isin(categories, list(rules.for_item(keys, mapping.categories)))
        if not allowed.any():
            continue  # nothing the rules allow: better no suggestion than a wrong one
        ranked = np.argsort(-row, kind="stable")
        nearest = ranked[allowed[ranked]][:NEIGHBOURS]
        votes: dict[str, float] = {}
        for index in nearest:  # the category with the most similarity among the nearest entries
            # sharpened: one close name outweighs several loose ones
            votes[categories[index]] = votes.get(categories[index], 0.0) + float(row[index]) ** 4
        category = max(votes, key=lambda c: (votes[c], -list(votes).index(c)))
        best = next(i for i in nearest if categories[i] == category)
        suggestions.append(
            Suggestion(keys, category, round(float(row[best]), 2), yaml_rule_line(keys, category), known[best][2])
        )
    return suggestions


def _defined_entries(vocabulary: Iterable[tuple[str, str]], mapping: GLMapping) -> list[tuple[str, str]]:
    """The vocabulary entries the mapping can use: per name the first whose category it defines
    (a name listed again with another category is a fallback for charts without the first)."""
    taken: set[str] = set()
    entries = []
    for name, category in vocabulary:
        if category in mapping.categories and normalise_key(name) not in taken:
            taken.add(normalise_key(name))
            entries.append((name, category))
    return entries


def _as_keys(item: object) -> tuple[str, str, str]:
    if hasattr(item, "transaction_type"):
        values = tuple(attrgetter("transaction_type", "amount_type", "amount_description")(item))
    else:
        values = tuple(item) if isinstance(item, Iterable) else ()
    texts = tuple(v for v in values if isinstance(v, str))
    if len(values) != 3 or len(texts) != 3:
        raise ValueError(
            f"unmapped combination must be (transaction_type, amount_type, amount_description) text, got {item!r}"
        )
    return texts[0], texts[1], texts[2]
