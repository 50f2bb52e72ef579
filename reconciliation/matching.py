"""Order-by-order reconciliation of a settlement against M3 customer invoices.

For each Amazon order the settlement's sales amounts (item price, shipping, tax, promotions
and the marketplace-facilitator tax Amazon withheld) are compared with the gross amount of
the M3 invoices whose customer order reference (CUOR) is that Amazon order id; refunds are
compared with M3 credit notes separately. Everything is vectorised: the order ids of both sides
are numbered once (sorted), and the per-order sums and flags are numpy on those numbers.

Categories (``Reconciliation.orders.category``):

- ``matched``: settled and invoiced, |difference| within the tolerance;
- ``amount_mismatch``: settled and invoiced, difference beyond the tolerance;
- ``missing_in_m3``: settled sales but no M3 invoice;
- ``not_settled``: invoiced in M3, and settled neither in this settlement nor in any other
  settlement known (``settled_elsewhere``: the run's other settlements and those recorded by
  earlier runs); an invoice settled elsewhere and absent from this settlement is not listed
  here at all: it is reconciled where it was settled;
- ``refund_without_credit``: a refund in the settlement and no credit note in M3.

``difference_minor`` compares the sale with the invoice only where the sale is in this
settlement (or where nothing is: not settled); an order only refunded here (sold in an earlier
settlement) differs by the refund against its credit notes, counted once.

Reconciliation informs; the flow decides whether it blocks (``strict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciliation.mapping import normalise_key

# Amount types that make up what the buyer paid for an order (real V2 files). Withheld
# marketplace-facilitator tax nets the tax Amazon collected (US), so the remainder is what
# the seller invoiced.
WITHHELD_TAX = "ItemWithheldTax"
SALES_AMOUNT_TYPES = ("ItemPrice", "Promotion", WITHHELD_TAX)
# Legacy V1 files carry the withheld tax as item fees (MarketplaceFacilitatorTax-Principal, ...).
_V1_WITHHELD_AMOUNT_TYPE = "ItemFees"
_V1_WITHHELD_PREFIX = "MARKETPLACEFACILITATOR"
REFUND_TRANSACTION_TYPE = "Refund"  # compared with M3's credit notes, not its invoices

INVOICE_COLUMNS: dict[str, str] = {
    "orno": "str",  # M3 customer order number
    "cuor": "str",  # customer's order reference = Amazon order id
    "ivno": "str",  # invoice number (credit notes have a negative gross)
    "ivdt": "datetime64[us]",
    "currency": "str",
    "net_minor": "int64",
    "tax_minor": "int64",
    "gross_minor": "int64",
}

CATEGORIES = ("matched", "amount_mismatch", "missing_in_m3", "not_settled", "refund_without_credit")


SETTLED_ORDER_COLUMNS: dict[str, str] = {
    "order_id": "str",  # Amazon order id
    "settlement_id": "str",  # a settlement whose sales lines include the order
}


def empty_invoices() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in INVOICE_COLUMNS.items()})


@dataclass(frozen=True, eq=False)
class Reconciliation:
    """Per-order result. ``orders`` has one row per Amazon order seen on either side.

    Compares by identity (``eq=False``): ``orders`` is a DataFrame; compare ``counts`` for the totals."""

    orders: pd.DataFrame
    tolerance_minor: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exceptions(self) -> pd.DataFrame:
        return self.orders[self.orders["category"] != "matched"]


def tolerance_minor(tolerance: Decimal, decimals: int) -> int:
    """A tolerance in whole minor units of the currency, rounded down: a difference must stay
    within it, so 0.01 is 1 cent in USD and 0 yen in JPY (no decimals)."""
    return int(tolerance.scaleb(decimals).to_integral_value(rounding=ROUND_FLOOR))


def sales_lines(lines: pd.DataFrame, *, withheld_tax_invoiced: bool = False) -> np.ndarray:
    """Which settlement lines make up what the buyer paid for an order (or was refunded): the
    lines compared with M3's invoices and credit notes (``withheld_tax_invoiced``: see
    ``reconcile_orders``). Refunds among them have transaction type ``Refund``
    (``REFUND_TRANSACTION_TYPE``)."""
    withheld = withheld_tax_lines(lines)
    paid = np.asarray(lines["amount_type"].isin([t for t in SALES_AMOUNT_TYPES if t != WITHHELD_TAX]), dtype=bool)
    sales = (
        pd.Series(paid | (withheld & (not withheld_tax_invoiced)), index=lines.index)
        & (lines["order_id"] != "")
        # Multi-channel (Non-Amazon) orders carry no sale to invoice: they are fulfilment only.
        & ~lines["marketplace_name"].str.startswith("Non-Amazon", na=False)
    )
    return np.asarray(sales, dtype=bool)


def withheld_tax_lines(lines: pd.DataFrame) -> np.ndarray:
    """The tax Amazon withheld as marketplace facilitator: ``ItemWithheldTax`` rows (V2), and the
    ``MarketplaceFacilitatorTax-*`` / ``MarketplaceFacilitatorVAT-*`` item fees of legacy V1 files."""
    descriptions = lines["amount_description"].astype(str)
    facilitator = {d for d in descriptions.unique() if normalise_key(d).startswith(_V1_WITHHELD_PREFIX)}
    v1 = (lines["amount_type"] == _V1_WITHHELD_AMOUNT_TYPE) & descriptions.isin(facilitator)
    return np.asarray((lines["amount_type"] == WITHHELD_TAX) | v1, dtype=bool)


def settled_orders(lines: pd.DataFrame, settlement_id: str) -> pd.DataFrame:
    """``SETTLED_ORDER_COLUMNS``: the orders whose sale (not a refund) is in the settlement's ``lines``,
    each once: what the state store records and what the run's other settlements are told."""
    sold = sales_lines(lines) & (lines["transaction_type"] != REFUND_TRANSACTION_TYPE).to_numpy(dtype=bool)
    orders = _strings(lines["order_id"]).filter(pa.array(sold))
    distinct = pc.unique(orders.filter(orders.is_valid()))
    return pd.DataFrame({"order_id": _as_str(distinct), "settlement_id": settlement_id}).astype(SETTLED_ORDER_COLUMNS)


def reconcile_orders(
    lines: pd.DataFrame,
    invoices: pd.DataFrame,
    *,
    tolerance_minor: int = 1,
    withheld_tax_invoiced: bool = False,
    settled_elsewhere: pd.DataFrame | None = None,
    settlement_id: str | None = None,
) -> Reconciliation:
    """Compare settlement ``lines`` (``LINE_COLUMNS``) with M3 ``invoices`` (``INVOICE_COLUMNS``).

    ``withheld_tax_invoiced``: M3's invoices carry the tax Amazon withheld as marketplace
    facilitator (the marketplace's tax profile: facilitator, ``m3_invoices = "gross"``), so the
    withheld tax is added back to what was settled: the order is compared gross with gross.

    ``settled_elsewhere`` (``SETTLED_ORDER_COLUMNS``): orders other settlements settled (the
    run's others, and those the state store recorded). ``settled_in`` names them, with this
    settlement (``settlement_id``, else the lines' own) where the sale is here."""
    sales = sales_lines(lines, withheld_tax_invoiced=withheld_tax_invoiced)
    sale_keys = _strings(lines["order_id"]).filter(sales)
    sale_amounts = lines["amount_minor"].to_numpy(dtype=np.int64)[sales]
    is_refund = pc.equal(_strings(lines["transaction_type"]).filter(sales), REFUND_TRANSACTION_TYPE)
    invoice_keys = _strings(invoices["cuor"])
    invoice_amounts = invoices["gross_minor"].to_numpy(dtype=np.int64)
    # Rows without a key belong to no order (a groupby leaves them out too).
    sale_rows = _valid_rows(sale_keys)
    invoice_rows = _valid_rows(invoice_keys)
    order_ids, (sale_codes, invoice_codes) = _sorted_distinct(
        sale_keys.filter(sale_rows), invoice_keys.filter(invoice_rows)
    )
    sale_amounts = sale_amounts[sale_rows]
    refund = pc.fill_null(is_refund, False).to_numpy(zero_copy_only=False).astype(bool)[sale_rows]
    invoice_amounts = invoice_amounts[invoice_rows]
    credit = invoice_amounts < 0
    count = len(order_ids)

    settled, has_sale = _sum_and_presence(sale_codes[~refund], sale_amounts[~refund], count)
    refunded, has_refund = _sum_and_presence(sale_codes[refund], sale_amounts[refund], count)
    invoiced, has_invoice = _sum_and_presence(invoice_codes[~credit], invoice_amounts[~credit], count)
    credited, has_credit = _sum_and_presence(invoice_codes[credit], invoice_amounts[credit], count)

    elsewhere = settled_elsewhere if settled_elsewhere is not None else pd.DataFrame(columns=["order_id"])
    elsewhere_codes = pc.index_in(_strings(elsewhere["order_id"]), value_set=order_ids)
    elsewhere_rows = _valid_rows(elsewhere_codes)
    elsewhere_codes_np = elsewhere_codes.filter(pa.array(elsewhere_rows)).to_numpy(zero_copy_only=False)
    settled_before = np.zeros(count, dtype=bool)
    settled_before[elsewhere_codes_np] = True

    sale_off = has_sale & (np.abs(settled - invoiced) > tolerance_minor)
    refund_off = has_refund & (np.abs(refunded - credited) > tolerance_minor)
    # First matching condition wins: a missing document explains a difference better than "mismatch".
    conditions = [
        has_sale & ~has_invoice,
        has_refund & ~has_credit,
        ~has_sale & ~has_refund,
        sale_off | refund_off,
    ]
    choices = [
        CATEGORIES.index(c) for c in ("missing_in_m3", "refund_without_credit", "not_settled", "amount_mismatch")
    ]
    category = np.select(conditions, choices, default=CATEGORIES.index("matched")).astype(np.int64)
    # An order only refunded here was sold (and compared with its invoice) in another settlement:
    # here it differs by the refund against its credit notes only.
    sale_difference = np.where(has_sale | ~has_refund, settled - invoiced, 0)
    own_id = settlement_id if settlement_id is not None else _first(lines.get("settlement_id"))
    settled_in = _joined(
        np.concatenate([elsewhere_codes_np, np.flatnonzero(has_sale)]),
        pa.concat_arrays(
            [
                _strings(elsewhere["settlement_id"]).filter(pa.array(elsewhere_rows))
                if len(elsewhere)
                else pa.array([], pa.large_string()),
                pa.array([own_id] * int(has_sale.sum()), pa.large_string()),
            ]
        ),
        count,
    )
    orders = pd.DataFrame(
        {
            "order_id": _as_str(order_ids),
            "category": _as_str(pa.array(CATEGORIES, pa.large_string()).take(pa.array(category))),
            "settled_minor": settled,
            "invoiced_minor": invoiced,
            "difference_minor": sale_difference + refunded - credited,
            "refunded_minor": refunded,
            "credited_minor": credited,
            "m3_orders": _as_str(_joined(invoice_codes, _strings(invoices["orno"]).filter(invoice_rows), count)),
            "invoices": _as_str(_joined(invoice_codes, _strings(invoices["ivno"]).filter(invoice_rows), count)),
            "settled_in": _as_str(settled_in),
            "invoice_date": _earliest_invoice_date(invoices, invoice_rows, invoice_codes, credit, count),
        }
    )
    # Invoiced orders another settlement settled and this one does not touch belong to that one.
    elsewhere_only = settled_before & ~has_sale & ~has_refund
    orders = orders[~elsewhere_only].reset_index(drop=True)
    category = category[~elsewhere_only]
    counts = dict(zip(CATEGORIES, np.bincount(category, minlength=len(CATEGORIES)).tolist()))
    return Reconciliation(orders=orders, tolerance_minor=tolerance_minor, counts=counts)


def _first(column: pd.Series | None) -> str:
    return str(column.iloc[0]) if column is not None and len(column) else ""


def _earliest_invoice_date(
    invoices: pd.DataFrame, invoice_rows: np.ndarray, invoice_codes: np.ndarray, credit: np.ndarray, count: int
) -> pd.Series:
    """Per order, the date of its first invoice (not credit note), NaT when none: how long an
    invoice has waited to be settled."""
    dates = invoices["ivdt"].to_numpy(dtype="datetime64[us]")[invoice_rows]
    known = ~credit & ~np.isnat(dates)
    never = np.iinfo(np.int64).max
    earliest = np.full(count, never, dtype=np.int64)
    np.minimum.at(earliest, invoice_codes[known], dates[known].view(np.int64))
    result = earliest.view("datetime64[us]").copy()
    result[earliest == never] = np.datetime64("NaT")
    return pd.Series(result, dtype="datetime64[us]")


def listed_once(orders: pd.DataFrame) -> pd.DataFrame:
    """The run's reconciliation rows (``Reconciliation.orders`` of each settlement, one after the
    other, oldest settlement first) with every "not settled" order listed once: under the first
    settlement that lists it. Each settlement lists the invoices dated in its window that no
    settlement settled, so windows that overlap (the day one settlement ends and the next starts)
    would list the same invoice twice."""
    not_settled = (orders["category"] == "not_settled").to_numpy(dtype=bool)
    repeated = not_settled & orders["order_id"].where(not_settled).duplicated().to_numpy(dtype=bool)
    return orders[~repeated].reset_index(drop=True)


# The per-order work runs on integer codes of the order ids (numpy), not on the strings:
# a groupby or a join on 200,000 string keys costs ~0.1 s each, a hash pass ~0.03 s.


def _strings(column: pd.Series) -> pa.Array:
    """A text column as one Arrow large_string array (zero-copy for pandas' Arrow-backed ``str``)."""
    backing = getattr(column.array, "_pa_array", None)
    if backing is None or not (pa.types.is_string(backing.type) or pa.types.is_large_string(backing.type)):
        backing = pa.array(column.astype(str), from_pandas=True)
    if isinstance(backing, pa.ChunkedArray):
        backing = backing.combine_chunks() if backing.num_chunks != 1 else backing.chunk(0)
    return backing.cast(pa.large_string())


def _valid_rows(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _as_str(values: pa.Array) -> pd.Series:
    return pd.Series(values.to_pandas(), dtype=str)


def _sorted_distinct(*keys: pa.Array) -> tuple[pa.Array, list[np.ndarray]]:
    """The distinct values of all ``keys`` together, sorted (as a sorted groupby and an outer join
    order them), and per array each row's position among them."""
    encoded = pc.dictionary_encode(pa.concat_arrays(list(keys)))
    distinct, codes = _sorted_dictionary(encoded)
    return distinct, np.split(codes, np.cumsum([len(k) for k in keys])[:-1])


def _sorted_dictionary(encoded: pa.DictionaryArray) -> tuple[pa.Array, np.ndarray]:
    """(dictionary sorted by value, each row's index into the sorted dictionary)."""
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return encoded.dictionary.take(pa.array(order)), rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _sum_and_presence(codes: np.ndarray, amounts: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code: the int64 sum of ``amounts`` (0 where none) and whether any row has that code."""
    total = np.zeros(count, dtype=np.int64)
    np.add.at(total, codes, amounts)
    present = np.zeros(count, dtype=bool)
    present[codes] = True
    return total, present


def _joined(codes: np.ndarray, values: pa.Array, count: int) -> pa.Array:
    """Per code: the distinct non-null ``values`` of its rows, sorted, space-separated ("" when none).

    Most orders have one invoice: a code with one row takes its value as it is (null -> ""), and
    only the rows of codes with several are deduplicated, sorted and joined.
    """
    rows_per_code = np.bincount(codes, minlength=count)
    alone = rows_per_code == 1
    shared_rows = ~alone[codes]
    row_of_code = np.zeros(count, dtype=np.int64)
    row_of_code[codes[~shared_rows]] = np.flatnonzero(~shared_rows)
    alone_values = pc.fill_null(values.take(pa.array(row_of_code, mask=~alone)), "")
    shared = _joined_distinct(codes[shared_rows], values.filter(pa.array(shared_rows)), count)
    return pc.if_else(pa.array(alone), alone_values, shared)


def _joined_distinct(codes: np.ndarray, values: pa.Array, count: int) -> pa.Array:
    """``_joined`` the general way. A code with several distinct values (a null counts as one) is
    stripped at both ends, as the string sum this replaces did."""
    present = _valid_rows(values)
    distinct_values, value_codes = _sorted_dictionary(pc.dictionary_encode(values.filter(present)))
    width = max(len(distinct_values), 1)
    # One int64 per (code, value) pair: np.unique dedupes and sorts by code, then by value.
    pairs = np.unique(codes[present] * width + value_codes)
    pair_codes, pair_values = np.divmod(pairs, width)
    offsets = np.searchsorted(pair_codes, np.arange(count + 1))
    per_code = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), distinct_values.take(pa.array(pair_values)))
    joined = pc.binary_join(per_code, pa.scalar(" ", pa.large_string()))
    has_null = np.zeros(count, dtype=bool)
    has_null[codes[~present]] = True
    several = pa.array(np.diff(offsets) + has_null > 1)
    return pc.if_else(several, pc.utf8_trim_whitespace(joined), joined)
