"""Settlement lines -> one row per order item event (a sale or one refund of an order item).

A settlement line is one amount component (principal, commission, FBA fee, ...). Anomalies
are about order items, so the components of each (transaction type, order, order item,
adjustment) are pivoted side by side with integer sums. Everything is vectorised: a
million-line settlement is one groupby, not a Python loop.

Each item carries its fulfilment ``channel``: ``amazon`` for an Amazon storefront order, ``mcf``
for a multi-channel fulfilment order (FBA shipping an order the seller took elsewhere:
marketplace-name ``Non-Amazon …`` or a seller-internal name, order ids like ``S01-…`` or
``#1088``, ``Principal 0.00`` and a higher fulfilment fee). Baselines are kept per channel.

Sign convention of the item columns (why: reasons talk about what the seller was charged or
paid, always as positive numbers):
- ``principal`` / ``shipping``: sale amount on an Order, amount given back on a Refund;
- ``commission``: referral fee charged on an Order, commission returned on a Refund;
- ``fba`` / ``chargeback`` / ``refund_commission``: fee charged (positive = seller pays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reconciliation.mapping import normalise_key
from reconciliation.marketplaces import is_multichannel, marketplace_by_name
from reconciliation.model import Settlement, exact_sum

from .money import saturated_int64

ITEM_KEYS: tuple[str, ...] = ("transaction_type", "order_id", "order_item_code", "adjustment_id")
# Order-item codes are unique across orders, so grouping needs only these (one string key fewer).
_GROUP_KEYS: list[str] = ["transaction_type", "order_item_code", "adjustment_id"]
COMPONENTS: tuple[str, ...] = ("principal", "shipping", "commission", "fba", "chargeback", "refund_commission")
# Columns of an item frame (the current settlement's and the stored history's).
ITEM_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "marketplace_name": "str",
    "channel": "str",
    "currency": "str",
    "transaction_type": "str",
    "order_id": "str",
    "order_item_code": "str",
    "adjustment_id": "str",
    "sku": "str",
    "posted_date": "datetime64[us, UTC]",
    "quantity": "int64",
    **{c: "int64" for c in COMPONENTS},
}
# Per-settlement figures judged against the trailing settlements of the same marketplace.
SETTLEMENT_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "marketplace": "str",
    "currency": "str",
    "end": "datetime64[us, UTC]",
    "sales_minor": "int64",
    "fees_minor": "int64",
    "reserve_held_minor": "int64",
    "reserve_released_minor": "int64",
    "reimbursement_minor": "int64",
}
REIMBURSEMENT_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "adjustment_id": "str",
    "sku": "str",
    "amount_minor": "int64",
}

CHANNEL_AMAZON, CHANNEL_MCF = "amazon", "mcf"
# Order ids of MCF orders when the marketplace-name is empty: "S01-1234567-1234567", "#1088".
_MCF_ORDER_ID = r"^(?:S\d{2}-|#)"

# Lines are recognised by the GL mapping's normalised keys (upper case, letters and digits only),
# so "Order" / "ORDER" and "FBA Inventory Reimbursement" / "FBA_INVENTORY_REIMBURSEMENT" are one.
# Normalised transaction type -> the spelling the item frame keeps.
_ITEM_TRANSACTIONS: dict[str, str] = {"ORDER": "Order", "REFUND": "Refund"}
# (amount_type, amount_description) -> component, and whether the settlement sign is flipped.
_COMPONENT_ROWS: tuple[tuple[str, str, str, int], ...] = (
    ("ITEMPRICE", "PRINCIPAL", "principal", 1),
    ("ITEMPRICE", "SHIPPING", "shipping", 1),
    ("ITEMFEES", "COMMISSION", "commission", -1),
    ("ITEMFEES", "FBAPERUNITFULFILLMENTFEE", "fba", -1),
    ("ITEMFEES", "FBAWEIGHTBASEDFEE", "fba", -1),
    ("ITEMFEES", "SHIPPINGCHARGEBACK", "chargeback", -1),
    ("ITEMFEES", "REFUNDCOMMISSION", "refund_commission", -1),
)
_REIMBURSEMENT_TYPE = "FBAINVENTORYREIMBURSEMENT"
_RESERVE_HELD = "CURRENTRESERVEAMOUNT"
_RESERVE_RELEASED = "PREVIOUSRESERVEAMOUNTBALANCE"


@dataclass(frozen=True, eq=False)
class SettlementItems:
    """What anomaly scoring needs from one settlement. Compares by identity (``eq=False``): DataFrames."""

    items: pd.DataFrame  # ITEM_COLUMNS, one row per order item event
    summary: pd.DataFrame  # SETTLEMENT_COLUMNS, one row
    reimbursements: pd.DataFrame  # REIMBURSEMENT_COLUMNS


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def extract_items(settlement: Settlement) -> SettlementItems:
    lines = settlement.lines
    missing = [
        c
        for c in (
            "transaction_type",
            "order_id",
            "order_item_code",
            "adjustment_id",
            "sku",
            "amount_type",
            "amount_description",
            "amount_minor",
            "quantity",
            "posted_date",
            "marketplace_name",
        )
        if c not in lines.columns
    ]
    if missing:
        raise ValueError(f"settlement {settlement.settlement_id}: lines lack column(s) {', '.join(missing)}")
    keys = _LineKeys(*(_KeyColumn.of(lines[c]) for c in ("transaction_type", "amount_type", "amount_description")))
    return SettlementItems(_items(settlement, keys), _summary(settlement, keys), _reimbursements(settlement, keys))


@dataclass(frozen=True)
class _KeyColumn:
    """One text column as integer codes per line and the normalised key of each code: lines are
    compared by code, so a million lines cost one factorize and a few integer comparisons."""

    codes: np.ndarray  # int64 per line
    keys: np.ndarray  # normalised key per code (object)

    @classmethod
    def of(cls, values: pd.Series) -> _KeyColumn:
        codes, uniques = pd.factorize(values.fillna(""))
        return cls(codes, np.array([normalise_key(str(u)) for u in uniques], dtype=object))

    def codes_by_key(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for code, key in enumerate(self.keys):
            found.setdefault(key, []).append(code)
        return found

    def equals(self, key: str) -> np.ndarray:
        return np.isin(self.codes, [code for code, k in enumerate(self.keys) if k == key])


@dataclass(frozen=True)
class _LineKeys:
    """Normalised transaction type, amount type and description of every line."""

    transaction_type: _KeyColumn
    amount_type: _KeyColumn
    amount_description: _KeyColumn


def _items(settlement: Settlement, keys: _LineKeys) -> pd.DataFrame:
    lines = settlement.lines
    item_type = np.array([_ITEM_TRANSACTIONS.get(k, "") for k in keys.transaction_type.keys], dtype=object)
    is_item = (item_type != "").astype(bool)[keys.transaction_type.codes] & lines["order_id"].ne("").to_numpy(
        dtype=bool
    )
    sub = lines.loc[
        is_item,
        [
            "order_id",
            "order_item_code",
            "adjustment_id",
            "sku",
            "marketplace_name",
            "amount_minor",
            "quantity",
            "posted_date",
        ],
    ].reset_index(drop=True)
    if sub.empty:
        return empty_frame(ITEM_COLUMNS)
    sub["transaction_type"] = item_type[keys.transaction_type.codes[is_item]]
    # V1 files may lack order-item codes: the SKU then identifies the item within its order.
    sub["order_item_code"] = sub["order_item_code"].where(
        sub["order_item_code"].ne(""), "sku:" + sub["order_id"] + "/" + sub["sku"]
    )
    group = sub.groupby(_GROUP_KEYS, sort=False).ngroup().to_numpy()
    n_groups = int(group.max()) + 1
    _, first = np.unique(group, return_index=True)

    component, sign = _component_codes(keys, is_item)
    # Refunds give the principal back (negative in the file) and return the commission
    # (positive): flip both so that refund items read "amount refunded" / "commission returned";
    # fees on a refund stay "charged" (positive = the seller pays).
    is_refund = sub["transaction_type"].eq("Refund").to_numpy(dtype=bool)
    is_fee = np.isin(component, [COMPONENTS.index(c) for c in ("fba", "chargeback", "refund_commission")])
    signed = sub["amount_minor"].to_numpy(dtype=np.int64) * sign * np.where(is_refund & ~is_fee, -1, 1)
    known = component >= 0
    sums = (
        pd.DataFrame({"g": group[known], "c": component[known], "a": signed[known]})
        .groupby(["g", "c"], sort=False)["a"]
        .sum()
        .unstack(fill_value=0)
        .reindex(index=range(n_groups), columns=range(len(COMPONENTS)), fill_value=0)
    )

    quantity = (
        pd.Series(sub["quantity"].fillna(0).to_numpy(dtype=np.int64))
        .groupby(group)
        .max()
        .reindex(range(n_groups), fill_value=0)
        .to_numpy()
    )
    posted = sub["posted_date"].groupby(group).min().reindex(range(n_groups))  # stays tz-aware (no object array)
    firsts = sub.iloc[first].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "settlement_id": settlement.settlement_id,
            "marketplace_name": firsts["marketplace_name"],
            "channel": fulfilment_channel(firsts["marketplace_name"], firsts["order_id"]),
            "currency": settlement.currency,
            **{k: firsts[k] for k in ITEM_KEYS},
            "sku": firsts["sku"],
            "posted_date": posted.reset_index(drop=True),
            "quantity": quantity,
            **{name: sums[i].to_numpy(dtype=np.int64) for i, name in enumerate(COMPONENTS)},
        }
    )
    return out[list(ITEM_COLUMNS)].astype(ITEM_COLUMNS)


def fulfilment_channel(marketplace_name: pd.Series, order_id: pd.Series) -> pd.Series:
    """CHANNEL_MCF or CHANNEL_AMAZON per row; any text (empty, unknown, odd case) is accepted.

    A name starting with "Non-Amazon", or any name that is not an Amazon storefront
    ("SI CA Prod Marketplace"), is MCF; without a name the order id decides ("S01-…", "#1088").
    """
    codes, uniques = pd.factorize(marketplace_name.fillna(""))  # few distinct names: classify those only
    folded = pd.Series(uniques, dtype=object).astype(str).str.strip().str.lower()
    # A seller-internal name that is no Amazon storefront counts as MCF too (the marketplace
    # table knows the documented MCF spellings; sellers invent others).
    named_mcf = [
        is_multichannel(n) or (n != "" and marketplace_by_name(n) is None and "amazon" not in n) for n in folded
    ]
    by_name = np.where(np.array(named_mcf, dtype=bool), CHANNEL_MCF, CHANNEL_AMAZON).astype(object)
    channel = by_name[codes]
    unnamed = folded.eq("").to_numpy(dtype=bool)[codes]
    if unnamed.any():
        mcf_id = order_id[unnamed].fillna("").astype(str).str.strip().str.contains(_MCF_ORDER_ID, regex=True)
        channel[unnamed] = np.where(mcf_id.to_numpy(dtype=bool), CHANNEL_MCF, CHANNEL_AMAZON)
    return pd.Series(channel, index=marketplace_name.index, dtype=object)


def _component_codes(keys: _LineKeys, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component index (-1 = not a component) and sign of the ``chosen`` lines, via their key codes."""
    types, descriptions = keys.amount_type, keys.amount_description
    table = np.full((len(types.keys) + 1, len(descriptions.keys) + 1), -1, dtype=np.int64)
    signs = np.zeros_like(table)
    type_index, desc_index = types.codes_by_key(), descriptions.codes_by_key()
    for amount_kind, desc, name, flip in _COMPONENT_ROWS:
        for t in type_index.get(amount_kind, []):
            for d in desc_index.get(desc, []):
                table[t, d], signs[t, d] = COMPONENTS.index(name), flip
    type_codes, desc_codes = types.codes[chosen], descriptions.codes[chosen]
    return table[type_codes, desc_codes], signs[type_codes, desc_codes]


def _summary(settlement: Settlement, keys: _LineKeys) -> pd.DataFrame:
    lines = settlement.lines
    amount = lines["amount_minor"].to_numpy(dtype=np.int64)

    def where(column: str, value: str) -> np.ndarray:
        return np.asarray(getattr(keys, column).equals(value), dtype=bool)

    sales = exact_sum(
        amount[
            where("transaction_type", "ORDER")
            & where("amount_type", "ITEMPRICE")
            & where("amount_description", "PRINCIPAL")
        ]
    )
    # MCF orders' fees pay for sales made elsewhere: they stay out of the fee share of Amazon sales.
    item_fee = where("amount_type", "ITEMFEES")
    fee_lines = lines.loc[item_fee, ["marketplace_name", "order_id"]]
    amazon_fee = fulfilment_channel(fee_lines["marketplace_name"], fee_lines["order_id"]).eq(CHANNEL_AMAZON)
    fees = -exact_sum(amount[item_fee][amazon_fee.to_numpy(dtype=bool)])
    held = -exact_sum(amount[where("amount_description", _RESERVE_HELD)])
    released = exact_sum(amount[where("amount_description", _RESERVE_RELEASED)])
    reimbursed = exact_sum(amount[where("amount_type", _REIMBURSEMENT_TYPE)])
    # Exact sums, stored saturated: a sum beyond int64 (a settlement the sum gate holds) never wraps.
    figures = {
        "sales_minor": sales,
        "fees_minor": fees,
        "reserve_held_minor": held,
        "reserve_released_minor": released,
        "reimbursement_minor": reimbursed,
    }
    row = {
        "settlement_id": settlement.settlement_id,
        "marketplace": settlement.marketplace,
        "currency": settlement.currency,
        "end": settlement.end,
        **{name: saturated_int64(value) for name, value in figures.items()},
    }
    return pd.DataFrame([row]).astype(SETTLEMENT_COLUMNS)


def _reimbursements(settlement: Settlement, keys: _LineKeys) -> pd.DataFrame:
    lines = settlement.lines
    rows = lines[keys.amount_type.equals(_REIMBURSEMENT_TYPE)]
    frame = pd.DataFrame(
        {
            "settlement_id": settlement.settlement_id,
            "adjustment_id": rows["adjustment_id"].to_numpy(),
            "sku": rows["sku"].to_numpy(),
            "amount_minor": rows["amount_minor"].to_numpy(dtype=np.int64),
        }
    )
    return frame.astype(REIMBURSEMENT_COLUMNS)
