"""Which GL category an unmapped fee type most likely belongs to, and the YAML line to add.

A character n-gram TF-IDF (``char_wb``, 2-4 grams) over the mapping's own rules and a shipped
vocabulary of Amazon fee names; the suggestion is the category of the nearest entries by
cosine similarity. Character n-grams match "Long-Term Storage" to "Storage Fee" and
"FBAPerUnit..." to "FBA Per Unit ..." without a word list. Suggestions are shown to a person
(reasons, Exceptions sheet); they are never applied to the mapping automatically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from reconciliation.mapping import WILDCARD, GLMapping, normalise_key

NEIGHBOURS = 5
# Key values that say nothing about what kind of amount it is, normalised as rules match
# (other-transaction, OTHER_TRANSACTION and OtherTransaction are one).
_GENERIC = {"", *map(normalise_key, ("order", "refund", "other-transaction", "servicefee", "itemfees", "adjustment"))}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PLAIN_YAML = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()/&-]*$")


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
    unmapped: Iterable[tuple[str, str, str]], mapping: GLMapping, *, vocabulary: Iterable[tuple[str, str]] | None = None
) -> list[Suggestion]:
    """One suggestion per unmapped (transaction_type, amount_type, amount_description).

    Accepts plain tuples or ``UnmappedCombination`` records. Vocabulary entries whose category
    the mapping does not define are ignored.
    """
    combinations = [_as_keys(item) for item in unmapped]
    if not combinations:
        return []
    known = [(_describe(rule.keys), rule.category, " / ".join(rule.keys)) for rule in mapping.rules]
    names = load_vocabulary() if vocabulary is None else tuple(vocabulary)
    known += [(_words(name), category, name) for name, category in names if category in mapping.categories]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    corpus = vectorizer.fit_transform([text for text, _, _ in known])
    queries = vectorizer.transform([_describe(keys) for keys in combinations])
    similarity = (queries @ corpus.T).toarray()  # rows are L2-normalised: this is the cosine
    categories = np.array([category for _, category, _ in known], dtype=object)
    suggestions = []
    for keys, row in zip(combinations, similarity):
        nearest = np.argsort(-row, kind="stable")[:NEIGHBOURS]
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


def _as_keys(item: object) -> tuple[str, str, str]:
    if hasattr(item, "transaction_type"):
        values = (item.transaction_type, item.amount_type, item.amount_description)
    else:
        values = tuple(item)  # type: ignore[arg-type]
    if len(values) != 3 or not all(isinstance(v, str) for v in values):
        raise ValueError(
            f"unmapped combination must be (transaction_type, amount_type, amount_description) text, got {item!r}"
        )
    return values  # type: ignore[return-value]
