"""GL mapping: which M3 account and dimensions each settlement line books to.

A mapping (YAML, shipped presets in ``reconciliation/mappings/``; a user's own file under
``HOME/mappings/<name>.yaml`` overrides a preset of the same name) has:

- ``categories``: per category an ``account`` (M3 AIT1, at most 10 characters, written as a
  quoted string so leading zeros survive), optional ``dimensions`` ``{AIT2: ..., AIT7: ...}``
  (at most 10 characters each once ``{marketplace}`` (the two-letter code of
  ``reconciliation.marketplaces``: US, DE, FR, UK, JP, ...), ``{currency}`` and ``{channel}``
  (``AMZ`` for a line of an Amazon marketplace, ``MCF`` for a multi-channel fulfilment line,
  marketplace-name ``Non-Amazon …``) are filled in), a ``description`` and ``gross: true`` for a
  revenue or refund category (see ``gross_lines``). ``amazon_clearing``, ``payable_to_amazon`` and
  ``carry_over`` are required: the journal books the deposit and month-split lines to them.
- ``gross_lines`` (optional, default false): when true, the categories marked ``gross: true``
  stay gross within a voucher: their debits and their credits are separate lines per account,
  dimensions and category, never netted with each other or with another category (a sale and its
  refund leave two lines, not none). Other categories net per account and dimensions.
- ``rules``: each maps one (``transaction_type``, ``amount_type``, ``amount_description``)
  to a category. ``"*"`` matches any value; when several rules match a line the most specific
  wins (more concrete keys first, then a concrete transaction type, then amount type).
  A rule of three wildcards is refused: it would hide new fee types from the mapping gate.
- ``tax_roles`` (optional): which categories the marketplace's tax profile treats as tax collected
  from buyers (``collected``), withheld by Amazon as facilitator (``withheld``), output tax the
  settlement books itself (``output``) and Amazon fees that bear VAT (``fee``):
  ``{fee: [referral_commission, ...], ...}`` (``reconciliation.tax``).
- ``invoices_in_m3`` (optional, default true): whether M3 invoices the Amazon orders the
  settlement settles (``invoice-clearing``) or the settlement is the sales journal (``summary``).
  When true, an order without an M3 invoice or a refund without an M3 credit note is held unless
  the user chose otherwise (``reconciliation.invoice_policy``).

Rules match on normalised keys: upper-case with every character that is not a letter or digit
removed, so ``Storage Fee``, ``StorageFee``, ``STORAGE_FEE`` and ``storage-fee`` are one key
(``STORAGEFEE``), as are ``MarketplaceFacilitatorTax-Principal`` and
``MARKETPLACEFACILITATORTAX_PRINCIPAL``. Amazon spells one item all these ways across
marketplaces, eras and V1/V2 (docs/settlement-vocabulary.md §1); dropping the separators rather than
turning them into ``_`` also joins the camel-case and the upper-case spellings. A mapping file
keeps its readable spelling; two rules with the same normalised keys are an error.

Top-level keys starting with ``x-`` are ignored (room for YAML anchors).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from reconciliation.audit import sha256_hex
from reconciliation.m3_fields import AIT_LENGTH
from reconciliation.marketplaces import MARKETPLACES, find_marketplace, is_multichannel
from reconciliation.tax import TAX_ROLES

KEY_COLUMNS: tuple[str, str, str] = ("transaction_type", "amount_type", "amount_description")
DIMENSION_FIELDS: tuple[str, ...] = ("AIT2", "AIT3", "AIT4", "AIT5", "AIT6", "AIT7")
# Columns MappedLines.lines gains over the settlement lines.
MAPPED_COLUMNS: tuple[str, ...] = ("category", "account", "ait2", "ait3", "ait4", "ait5", "ait6", "ait7")
WILDCARD = "*"
JOURNAL_CATEGORIES: tuple[str, ...] = ("amazon_clearing", "payable_to_amazon", "carry_over")
DEFAULT_PRESET = "invoice-clearing"
# ``{channel}``: multi-channel fulfilment (marketplace-name ``Non-Amazon …``) is fulfilment for
# the seller's other shops, not a sale on the Amazon marketplace: its fees book under MCF.
CHANNEL_AMAZON = "AMZ"
CHANNEL_MCF = "MCF"

# Worst-case substitutions, so a dimension template can be length-checked at load time.
# Widest value a placeholder can take, from the marketplace table (codes are 2 letters, currencies 3).
_PLACEHOLDER_WIDTHS = {
    "marketplace": max(len(m.code) for m in MARKETPLACES),
    "currency": max(len(m.currency) for m in MARKETPLACES),
    "channel": 3,  # CHANNEL_AMAZON / CHANNEL_MCF
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# marketplace-name as settlement files spell it -> the short code used in dimensions.
MARKETPLACE_CODES: Mapping[str, str] = MappingProxyType({m.name: m.code for m in MARKETPLACES})
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
_SPELLED = "spelled_"  # prefix of the combination columns that keep the file's spelling


def normalise_key(value: str) -> str:
    """The form rules and lines are compared in: upper-case, letters and digits only
    ("Storage Fee", "StorageFee", "STORAGE_FEE" -> "STORAGEFEE")."""
    return _NOT_ALPHANUMERIC.sub("", str(value).upper())


class UnknownMarketplaceError(ValueError):
    """A marketplace name that is neither an Amazon marketplace nor a country's MCF channel."""


class MappingError(ValueError):
    """A mapping file that cannot be used; names the file and the key path at fault."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Category:
    name: str
    account: str
    dimensions: tuple[str, ...]  # AIT2..AIT7 templates, "" where unused
    description: str
    tax: str = ""  # role for the tax profile (reconciliation.tax.TAX_ROLES), "" none
    gross: bool = False  # a revenue or refund category: kept gross when the mapping's gross_lines is on

    def resolve(self, marketplace_code: str, currency: str, channel: str = CHANNEL_AMAZON) -> tuple[str, ...]:
        """AIT2..AIT7 with the placeholders filled in (``channel``: CHANNEL_AMAZON or CHANNEL_MCF)."""
        values = {"marketplace": marketplace_code, "currency": currency, "channel": channel}
        return tuple(_PLACEHOLDER.sub(lambda m: values[m.group(1)], d) for d in self.dimensions)


@dataclass(frozen=True)
class Rule:
    transaction_type: str
    amount_type: str
    amount_description: str
    category: str

    @property
    def keys(self) -> tuple[str, str, str]:
        """The keys as the mapping file spells them."""
        return (self.transaction_type, self.amount_type, self.amount_description)

    @property
    def match_keys(self) -> tuple[str, str, str]:
        """The normalised keys it matches on (wildcards stay ``*``)."""
        transaction_type, amount_type, amount_description = (
            k if k == WILDCARD else normalise_key(k) for k in self.keys
        )
        return transaction_type, amount_type, amount_description


@dataclass(frozen=True)
class UnmappedCombination:
    transaction_type: str
    amount_type: str
    amount_description: str
    line_count: int
    total_minor: int


@dataclass(frozen=True, eq=False)
class MappedLines:
    """Settlement lines plus ``MAPPED_COLUMNS`` (null where no rule matched). Compares by identity
    (``eq=False``): ``lines`` is a DataFrame."""

    lines: pd.DataFrame
    unmapped: tuple[UnmappedCombination, ...]
    marketplace_code: str
    currency: str

    @property
    def complete(self) -> bool:
        return not self.unmapped


@dataclass(frozen=True, eq=False)
class GLMapping:
    name: str
    source: str
    description: str
    categories: Mapping[str, Category]
    rules: tuple[Rule, ...]
    content_sha256: str = ""  # of the mapping file's bytes (a voucher's audit record names it)
    invoices_in_m3: bool = True  # False: M3 does not invoice the orders (the settlement is the sales journal)
    gross_lines: bool = False  # keep the ``gross`` categories' debits and credits as separate lines

    def account_for(
        self, category: str, marketplace_code: str, currency: str, channel: str = CHANNEL_AMAZON
    ) -> tuple[str, tuple[str, ...]]:
        """(AIT1, AIT2..AIT7) of a category for one marketplace, currency and channel."""
        cat = self.categories[category]
        return cat.account, cat.resolve(marketplace_code, currency, channel)

    def rebooked(self, mapped: MappedLines, rows: np.ndarray, category: str) -> MappedLines:
        """``mapped`` with the lines ``rows`` selects booked to ``category``: its account and
        dimensions in the ``MAPPED_COLUMNS``, as a rule mapping them there would have set them. Later
        stages re-book lines this way (the tax profile's facilitator orders, the accountant's choice
        for orders without an M3 document), so every stage after them sees one truth."""
        if not rows.any():
            return mapped
        lines = mapped.lines
        account, dimensions = self.account_for(category, mapped.marketplace_code, mapped.currency)
        values = dict(zip(MAPPED_COLUMNS, (category, account, *dimensions)))
        return replace(
            mapped, lines=lines.assign(**{column: lines[column].mask(rows, value) for column, value in values.items()})
        )

    def keeps_gross(self, category: str) -> bool:
        """Whether a voucher keeps this category's debits and credits as separate lines."""
        return self.gross_lines and self.categories[category].gross

    def map_settlement(self, settlement: Any) -> MappedLines:
        """``map_lines`` for a ``reconciliation.model.Settlement``."""
        return self.map_lines(settlement.lines, marketplace_code(settlement.marketplace), currency=settlement.currency)

    def map_lines(self, lines: pd.DataFrame, marketplace_code: str, *, currency: str = "") -> MappedLines:
        """Category, account and dimensions per line (vectorised merges on the three keys)."""
        missing = [c for c in (*KEY_COLUMNS, "amount_minor") if c not in lines.columns]
        if missing:
            raise ValueError(f"settlement lines lack column(s) {', '.join(missing)}")
        if not marketplace_code:
            raise ValueError("marketplace_code must not be empty")
        # Match the distinct key combinations (a few dozen), not the rows (up to millions):
        # factorize each key column, combine the codes, and broadcast the result back.
        combos, row_combo = _distinct_combinations(lines)
        combo_category = np.full(len(combos), None, dtype=object)
        combos["_combo"] = np.arange(len(combos))
        for concrete, rules in self._rules_by_pattern:
            open_combos = combos[pd.isna(combo_category)]
            if open_combos.empty:
                break
            hits = open_combos.merge(rules, on=list(concrete), how="inner")
            combo_category[hits["_combo"].to_numpy()] = hits["category"].to_numpy()

        names = list(self.categories)
        category_index = {name: i for i, name in enumerate(names)}
        combo_to_category = np.array([-1 if c is None else category_index[c] for c in combo_category], dtype=np.int64)
        row_category = combo_to_category[row_combo] if len(combos) else np.empty(0, dtype=np.int64)
        # One resolution per (category, channel): an MCF row takes the category's next block.
        resolved = [
            (name, cat.account, *cat.resolve(marketplace_code, currency, channel))
            for channel in (CHANNEL_AMAZON, CHANNEL_MCF)
            for name, cat in self.categories.items()
        ]
        row_resolved = np.where(
            (row_category >= 0) & is_multichannel_row(lines), row_category + len(names), row_category
        )
        mapped_columns = {
            column: pd.array([r[i] for r in resolved], dtype="str").take(row_resolved, allow_fill=True)
            for i, column in enumerate(MAPPED_COLUMNS)
        }
        out = lines.assign(**mapped_columns)
        unmapped_combos = np.flatnonzero(combo_to_category < 0)
        return MappedLines(out, _unmapped(combos, unmapped_combos, row_combo, lines), marketplace_code, currency)

    @cached_property  # works on a frozen dataclass: it writes the instance __dict__ directly
    def _rules_by_pattern(self) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
        """Rules grouped by which keys are concrete, most specific pattern first."""
        groups: dict[tuple[bool, ...], list[Rule]] = {}
        for rule in self.rules:
            groups.setdefault(tuple(k != WILDCARD for k in rule.keys), []).append(rule)
        ordered = sorted(groups, key=lambda p: (-sum(p), tuple(not c for c in p)))
        result = []
        for pattern in ordered:
            concrete = tuple(col for col, is_concrete in zip(KEY_COLUMNS, pattern) if is_concrete)
            frame = pd.DataFrame(
                [[k for k, c in zip(r.match_keys, pattern) if c] + [r.category] for r in groups[pattern]],
                columns=[*concrete, "category"],
            )
            result.append((concrete, frame))
        return result


def _distinct_combinations(lines: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct key combinations and, per row, the index of its combination: the keys as
    the file spells them (stripped, for reports) and, in ``KEY_COLUMNS``, normalised (to match)."""
    codes = np.zeros(len(lines), dtype=np.int64)
    uniques = []
    for column in KEY_COLUMNS:
        column_codes, column_uniques = factorize_text(lines[column])
        codes = codes * max(len(column_uniques), 1) + column_codes
        uniques.append((column_codes, column_uniques))
    distinct, first_row, row_combo = np.unique(codes, return_index=True, return_inverse=True)
    # Keys are normalised on the few distinct values only; combinations that differ only in
    # spelling stay separate here (each is reported as spelled) and simply match the same rule.
    spelled = {
        column: [str(v).strip() for v in np.asarray(column_uniques, dtype=object)[column_codes[first_row]]]
        for column, (column_codes, column_uniques) in zip(KEY_COLUMNS, uniques)
    }
    combos = pd.DataFrame(
        {
            **{column: [normalise_key(v) for v in values] for column, values in spelled.items()},
            **{_SPELLED + column: values for column, values in spelled.items()},
        }
    )
    return combos, row_combo.reshape(-1)


def is_multichannel_row(lines: pd.DataFrame) -> np.ndarray:
    """Per row: whether it is a multi-channel fulfilment line (marketplace-name ``Non-Amazon …``,
    ``reconciliation.marketplaces.is_multichannel``); all False without a marketplace_name column.
    Classifies the few distinct names only."""
    if "marketplace_name" not in lines.columns:
        return np.zeros(len(lines), dtype=bool)
    codes, names = factorize_text(lines["marketplace_name"])
    by_name = np.array([is_multichannel(str(n)) for n in names] + [False], dtype=bool)  # [-1]: missing name
    rows: np.ndarray = by_name[codes]
    return rows


def factorize_text(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for a missing value) and distinct values, in order of first appearance;
    pyarrow's dictionary encoding when the column is Arrow-backed (pandas 3 ``str``), about 3x
    faster than ``pd.factorize`` there."""
    backing = getattr(column.array, "_pa_array", None)
    if backing is not None and (pa.types.is_string(backing.type) or pa.types.is_large_string(backing.type)):
        encoded = pc.dictionary_encode(backing.combine_chunks() if isinstance(backing, pa.ChunkedArray) else backing)
        if encoded.null_count == 0:
            return encoded.indices.to_numpy().astype(np.int64), encoded.dictionary.to_pylist()
    codes, values = pd.factorize(column.astype(str))
    return codes.astype(np.int64), list(values)


def _unmapped(
    combos: pd.DataFrame, unmapped: np.ndarray, row_combo: np.ndarray, lines: pd.DataFrame
) -> tuple[UnmappedCombination, ...]:
    if not len(unmapped):
        return ()
    amounts = lines["amount_minor"].to_numpy(dtype=np.int64)
    in_unmapped = np.isin(row_combo, unmapped)
    per_combo = pd.Series(amounts[in_unmapped]).groupby(row_combo[in_unmapped]).agg(["size", "sum"])
    found = [
        UnmappedCombination(
            *(str(combos.at[int(combo), _SPELLED + c]) for c in KEY_COLUMNS),  # type: ignore[call-arg, arg-type]  # the 3 key columns
            int(row["size"]),
            int(row["sum"]),
        )
        for combo, row in per_combo.iterrows()
    ]
    return tuple(sorted(found, key=lambda u: (u.transaction_type, u.amount_type, u.amount_description)))


def marketplace_code(marketplace_name: str) -> str:
    """Short code (US, DE, ...) for a settlement's marketplace-name (or an MCF name's country).

    ``reconciliation.pipeline.prepare_settlement`` resolves every settlement's marketplace
    first and holds the ones it cannot tell, so the flow never meets the error raised here."""
    marketplace = find_marketplace(marketplace_name)
    if marketplace is None:
        raise UnknownMarketplaceError(f"unknown marketplace {marketplace_name!r}")
    return marketplace.code


# ----------------------------------------------------------------------------------------
# loading


def shipped_presets() -> list[str]:
    folder = resources.files("reconciliation.mappings")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_mapping(name_or_path: str | Path = DEFAULT_PRESET, *, home: Path | None = None) -> GLMapping:
    """Load a preset by name (``HOME/mappings/<name>.yaml`` first, then the shipped one) or a file by path."""
    content, source = _find_mapping_file(name_or_path, home)
    # A file that is not UTF-8 raises UnicodeDecodeError: flows.connections.load_gl_mapping turns it
    # into a MappingError naming line and column.
    text = content.decode("utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MappingError(source, where, f"not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return replace(parse_mapping(document, source), content_sha256=sha256_hex(content))


def _find_mapping_file(name_or_path: str | Path, home: Path | None) -> tuple[bytes, str]:
    """The mapping file's bytes (hashed as they are: the audit record's ``mapping_sha256``) and its name."""
    as_text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in as_text or as_text.endswith((".yaml", ".yml"))
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise MappingError(str(path), "", "mapping file not found")
        return path.read_bytes(), str(path)
    if not _PRESET_NAME.match(as_text):
        raise MappingError(as_text, "", "not a valid mapping name")
    if home is not None:
        for suffix in (".yaml", ".yml"):
            user_file = Path(home) / "mappings" / f"{as_text}{suffix}"
            if user_file.is_file():
                return user_file.read_bytes(), f"mappings/{as_text}{suffix}"
    shipped = resources.files("reconciliation.mappings") / f"{as_text}.yaml"
    if shipped.is_file():
        return shipped.read_bytes(), f"reconciliation/mappings/{as_text}.yaml"
    raise MappingError(as_text, "", f"no such mapping; presets: {', '.join(shipped_presets())}")


def parse_mapping(document: Any, source: str) -> GLMapping:
    """Validate a loaded YAML document; every problem names ``source`` and the key path."""
    if not isinstance(document, dict):
        raise MappingError(source, "", "must be a mapping with 'categories' and 'rules'")
    allowed = {"name", "description", "categories", "rules", "gross_lines", "invoices_in_m3", "tax_roles"}
    for key in document:
        if key not in allowed and not str(key).startswith("x-"):
            raise MappingError(source, str(key), f"unknown key (expected {', '.join(sorted(allowed))})")
    categories = _with_tax_roles(
        _parse_categories(document.get("categories"), source), document.get("tax_roles"), source
    )
    rules = _parse_rules(document.get("rules"), categories, source)
    name = _optional_text(document, "name", "name", source) or Path(source).stem
    description = _optional_text(document, "description", "description", source)
    gross_lines = _optional_flag(document, "gross_lines", "gross_lines", source)
    invoices_in_m3 = _optional_flag(document, "invoices_in_m3", "invoices_in_m3", source, default=True)
    return GLMapping(
        name,
        source,
        description,
        MappingProxyType(categories),
        rules,
        invoices_in_m3=invoices_in_m3,
        gross_lines=gross_lines,
    )


def _parse_categories(raw: Any, source: str) -> dict[str, Category]:
    if raw is None:
        raise MappingError(source, "categories", "missing")
    if not isinstance(raw, dict) or not raw:
        raise MappingError(source, "categories", "must be a non-empty mapping of category name to account")
    categories: dict[str, Category] = {}
    for name, spec in raw.items():
        path = f"categories.{name}"
        if not isinstance(name, str) or not _CATEGORY_NAME.match(name):
            raise MappingError(source, path, "category names are lower-case words joined by '_'")
        if not isinstance(spec, dict):
            raise MappingError(source, path, "must be a mapping with 'account'")
        for key in spec:
            if key not in ("account", "dimensions", "description", "gross"):
                raise MappingError(
                    source, f"{path}.{key}", "unknown key (expected account, dimensions, description, gross)"
                )
        account = _field_value(spec, "account", f"{path}.account", source, required=True)
        if _PLACEHOLDER.search(account):
            raise MappingError(source, f"{path}.account", "placeholders are allowed in dimensions only")
        categories[name] = Category(
            name=name,
            account=account,
            dimensions=_parse_dimensions(spec.get("dimensions"), f"{path}.dimensions", source),
            description=_optional_text(spec, "description", f"{path}.description", source) or name,
            gross=_optional_flag(spec, "gross", f"{path}.gross", source),
        )
    for required in JOURNAL_CATEGORIES:
        if required not in categories:
            raise MappingError(
                source, f"categories.{required}", "missing (the journal books the deposit and carry-overs to it)"
            )
    return categories


def _with_tax_roles(categories: dict[str, Category], raw: Any, source: str) -> dict[str, Category]:
    """``categories`` with the role ``tax_roles`` gives each (at most one per category)."""
    if raw is None:
        return categories
    if not isinstance(raw, dict):
        raise MappingError(source, "tax_roles", f"must be a mapping of {', '.join(TAX_ROLES)} to category lists")
    roles: dict[str, str] = {}
    for role, names in raw.items():
        path = f"tax_roles.{role}"
        if role not in TAX_ROLES:
            raise MappingError(source, path, f"unknown role (expected {', '.join(TAX_ROLES)})")
        if not isinstance(names, list):
            raise MappingError(source, path, "must be a list of category names")
        for name in names:
            if name not in categories:
                raise MappingError(source, path, f"{name!r} is not a defined category")
            if name in roles:
                raise MappingError(source, path, f"{name!r} already has the role {roles[name]!r}")
            roles[name] = role
    return {name: replace(category, tax=roles.get(name, "")) for name, category in categories.items()}


def _parse_dimensions(raw: Any, path: str, source: str) -> tuple[str, ...]:
    if raw is None:
        return ("",) * len(DIMENSION_FIELDS)
    if not isinstance(raw, dict):
        raise MappingError(source, path, f"must be a mapping of {', '.join(DIMENSION_FIELDS)}")
    for key in raw:
        if key not in DIMENSION_FIELDS:
            raise MappingError(
                source, f"{path}.{key}", f"unknown dimension (expected one of {', '.join(DIMENSION_FIELDS)})"
            )
    return tuple(
        _field_value(raw, field, f"{path}.{field}", source, required=False) if field in raw else ""
        for field in DIMENSION_FIELDS
    )


def _field_value(spec: dict[str, Any], key: str, path: str, source: str, *, required: bool) -> str:
    """An AIT value: a string of at most 10 characters once placeholders are filled in."""
    if key not in spec or spec[key] is None:
        if required:
            raise MappingError(source, path, "missing")
        return ""
    value = spec[key]
    if not isinstance(value, str):
        # An unquoted 0110 would arrive as the number 110: insist on quotes.
        raise MappingError(source, path, f'must be a quoted string (write "{value}"), got {type(value).__name__}')
    value = value.strip()
    if required and not value:
        raise MappingError(source, path, "must not be empty")
    width = len(value)
    for match in _PLACEHOLDER.finditer(value):
        placeholder = match.group(1)
        if placeholder not in _PLACEHOLDER_WIDTHS:
            raise MappingError(
                source,
                path,
                f"unknown placeholder {{{placeholder}}} (use {{marketplace}}, {{currency}} or {{channel}})",
            )
        width += _PLACEHOLDER_WIDTHS[placeholder] - len(match.group(0))
    if width > AIT_LENGTH:
        raise MappingError(
            source, path, f"{value!r} is longer than {AIT_LENGTH} characters (M3 AIT fields are A{AIT_LENGTH})"
        )
    return value


def _optional_text(spec: dict[str, Any], key: str, path: str, source: str) -> str:
    value = spec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MappingError(source, path, "must be text")
    return value.strip()


def _optional_flag(spec: dict[str, Any], key: str, path: str, source: str, default: bool = False) -> bool:
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise MappingError(source, path, f"must be true or false, got {value!r}")
    return value


def _parse_rules(raw: Any, categories: Mapping[str, Category], source: str) -> tuple[Rule, ...]:
    if raw is None:
        raise MappingError(source, "rules", "missing")
    if not isinstance(raw, list) or not raw:
        raise MappingError(source, "rules", "must be a non-empty list")
    rules: list[Rule] = []
    first_index: dict[tuple[str, str, str], int] = {}  # normalised keys -> index of the first rule
    for index, spec in enumerate(raw):
        path = f"rules[{index}]"
        if not isinstance(spec, dict):
            raise MappingError(
                source, path, "must be a mapping with transaction_type, amount_type, amount_description, category"
            )
        for key in spec:
            if key not in (*KEY_COLUMNS, "category"):
                raise MappingError(source, f"{path}.{key}", "unknown key")
        values = []
        for key in (*KEY_COLUMNS, "category"):
            value = spec.get(key)
            if value is None:
                raise MappingError(source, f"{path}.{key}", "missing")
            if not isinstance(value, str) or not value.strip():
                raise MappingError(source, f"{path}.{key}", "must be non-empty text")
            values.append(value.strip())
        rule = Rule(*values)
        if rule.category not in categories:
            raise MappingError(source, f"{path}.category", f"{rule.category!r} is not a defined category")
        if all(k == WILDCARD for k in rule.keys):
            raise MappingError(
                source, path, "a rule must name at least one of transaction_type, amount_type, amount_description"
            )
        for key, value, normalised in zip(KEY_COLUMNS, rule.keys, rule.match_keys):
            if not normalised:
                raise MappingError(source, f"{path}.{key}", f"{value!r} has no letter or digit to match on")
        if rule.match_keys in first_index:
            first = rules[first_index[rule.match_keys]]
            what = " / ".join(first.keys)
            if first.keys != rule.keys:
                what = (
                    f"{' / '.join(rule.keys)} and {what} are the same key once normalised: "
                    f"{' / '.join(rule.match_keys)}"
                )
            raise MappingError(source, path, f"duplicates rules[{first_index[rule.match_keys]}] ({what})")
        first_index[rule.match_keys] = index
        rules.append(rule)
    return tuple(rules)
