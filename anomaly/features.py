"""Per-item and per-settlement features, each measured against its own baseline.

Baselines are medians over the stored history plus the current settlement (so the very first
settlement is judged against itself; a median shrugs off the few bad items it contains). Every
baseline is kept per fulfilment channel (items.py): multi-channel fulfilment (MCF) orders have
no principal and a higher fulfilment fee, so they are compared with MCF orders only and never
enter an Amazon order's baseline.

- FBA fee per unit against the SKU's median per unit (per currency: EUR marketplaces share
  one fee schedule);
- effective referral rate, commission / (principal + shipping) since Amazon charges the
  referral fee on the total sales price, against the category's median rate in the
  marketplace (the SKU's own when no category is known), never below the minimum fee;
- unit price against the SKU's median unit price in the marketplace;
- refunds against the original sale (found in this settlement or the history), how many
  times the same order item has been refunded, and the refund administration fee against
  the commission it was charged on;
- shipping chargeback against the shipping the buyer paid;
- per settlement: fee share of sales and reserve held back against the trailing settlements.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .items import CHANNEL_AMAZON

# Amazon's minimum referral fee per unit (0.30 in the settlement currency's minor units).
MIN_REFERRAL_PER_UNIT_MINOR = 30
# Per-settlement judgements need this many earlier settlements of the marketplace.
MIN_TRAILING_SETTLEMENTS = 3
TRAILING_WINDOW = 6
MIN_PRICE_OBSERVATIONS = 3


def _baseline(frame: pd.DataFrame, mask: np.ndarray, keys: list[str], value: pd.Series, prefix: str) -> pd.DataFrame:
    """Median of ``value``, the number of settlements and of items behind it, per ``keys``, for every row."""
    source = frame.loc[mask, keys + ["settlement_id"]].assign(_v=value[mask].to_numpy())
    stats = source.groupby(keys, sort=False).agg(
        **{
            f"{prefix}_median": ("_v", "median"),
            f"{prefix}_settlements": ("settlement_id", "nunique"),
            f"{prefix}_count": ("_v", "size"),
        }
    )
    merged = frame[keys].merge(stats, left_on=keys, right_index=True, how="left")
    merged.index = frame.index
    return merged[[f"{prefix}_median", f"{prefix}_settlements", f"{prefix}_count"]]


def _checked_categories(categories: Mapping[str, str]) -> dict[str, str]:
    bad = [
        sku
        for sku, category in categories.items()
        if not isinstance(sku, str) or not isinstance(category, str) or not category.strip()
    ]
    if bad:
        raise ValueError(f"catalog_hints must map SKU text to a category name; bad entries for {bad[:5]}")
    return dict(categories)


def item_features(items: pd.DataFrame, categories: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Features for every row of ``items`` (history and current together, ITEM_COLUMNS)."""
    items = items.reset_index(drop=True)
    out = pd.DataFrame(index=items.index)
    is_sale = (items["transaction_type"] == "Order").to_numpy()
    is_refund = (items["transaction_type"] == "Refund").to_numpy()
    quantity = items["quantity"].to_numpy(dtype="float64")

    # FBA fee per unit vs the SKU's history.
    fba_mask = is_sale & (items["fba"].to_numpy() > 0) & (quantity > 0)
    out["fba_unit"] = np.where(fba_mask, items["fba"] / np.where(quantity > 0, quantity, 1), np.nan)
    out[["fba_median", "fba_settlements", "fba_count"]] = _baseline(
        items, fba_mask, ["sku", "currency", "channel"], out["fba_unit"], "fba"
    )
    out.loc[~fba_mask, ["fba_median", "fba_settlements", "fba_count"]] = np.nan
    out["fba_ratio"] = out["fba_unit"] / out["fba_median"]

    # Effective referral rate vs the category (or SKU) baseline in the marketplace.
    base = (items["principal"] + items["shipping"]).to_numpy(dtype="float64")
    ref_mask = is_sale & (base > 0) & (items["commission"].to_numpy() > 0)
    group = (
        items["sku"].map(_checked_categories(categories))
        if categories
        else pd.Series(np.nan, index=items.index, dtype=object)
    )
    out["referral_group"] = group.where(group.notna(), "SKU " + items["sku"]).astype(str)
    out["sales_base"] = np.where(ref_mask, base, np.nan)
    out["referral_rate"] = items["commission"] / out["sales_base"]
    keyed = items.assign(referral_group=out["referral_group"])
    out[["referral_median", "referral_settlements", "referral_count"]] = _baseline(
        keyed, ref_mask, ["referral_group", "marketplace_name", "channel"], out["referral_rate"], "referral"
    )
    out.loc[~ref_mask, ["referral_median", "referral_settlements"]] = np.nan
    out["referral_expected"] = np.maximum(
        out["referral_median"] * out["sales_base"], MIN_REFERRAL_PER_UNIT_MINOR * quantity
    )
    out["referral_ratio"] = items["commission"] / out["referral_expected"]

    # Unit price vs the SKU's price history in the marketplace.
    price_mask = is_sale & (items["principal"].to_numpy() > 0) & (quantity > 0)
    out["unit_price"] = np.where(price_mask, items["principal"] / np.where(quantity > 0, quantity, 1), np.nan)
    out[["price_median", "price_settlements", "price_count"]] = _baseline(
        items, price_mask, ["sku", "marketplace_name", "channel"], out["unit_price"], "price"
    )
    out.loc[~price_mask, ["price_median", "price_settlements", "price_count"]] = np.nan
    # With fewer than three sales the median cannot tell a typo from the right price.
    trusted = out["price_count"].fillna(0) >= MIN_PRICE_OBSERVATIONS
    out["price_ratio"] = (out["unit_price"] / out["price_median"]).where(trusted)

    _refund_features(items, out, is_sale, is_refund)
    # An MCF buyer paid shipping in the seller's own shop, not in the settlement: nothing to compare with.
    is_amazon = (items["channel"] == CHANNEL_AMAZON).to_numpy()
    out["chargeback_excess"] = np.where(is_sale & is_amazon, (items["chargeback"] - items["shipping"]).clip(lower=0), 0)
    return out


def _refund_features(items: pd.DataFrame, out: pd.DataFrame, is_sale: np.ndarray, is_refund: np.ndarray) -> None:
    key = ["order_id", "order_item_code"]
    refunds = items.loc[is_refund, key + ["posted_date", "adjustment_id", "principal", "settlement_id"]]
    # Only the sales that were refunded matter: filter before grouping (cheap on big settlements).
    refunded_sale = is_sale & items["order_id"].isin(refunds["order_id"]).to_numpy(dtype=bool)
    sales = items.loc[refunded_sale, key + ["principal"]].groupby(key, sort=False)["principal"].sum()
    # Same posting time: what was recorded first (history before the current file) comes first.
    refunds = refunds.sort_values(key + ["posted_date"], kind="stable")
    grouped = refunds.groupby(key, sort=False)
    refunds = refunds.assign(
        refund_rank=grouped.cumcount() + 1,
        refunded_so_far=grouped["principal"].cumsum(),
        previous_adjustment=grouped["adjustment_id"].shift(1),
        previous_posted=grouped["posted_date"].shift(1),
        previous_settlement=grouped["settlement_id"].shift(1),
    )
    sale = refunds[key].merge(sales.rename("sale_principal"), left_on=key, right_index=True, how="left")
    refunds["sale_principal"] = sale["sale_principal"].to_numpy()
    columns = [
        "refund_rank",
        "refunded_so_far",
        "sale_principal",
        "previous_adjustment",
        "previous_posted",
        "previous_settlement",
    ]
    for column in columns:
        out[column] = refunds[column].reindex(out.index)
    # A sale without principal (an MCF order) cannot be exceeded in any meaningful way.
    out["refund_ratio"] = out["refunded_so_far"] / out["sale_principal"].where(out["sale_principal"] > 0)

    # Refund administration fee as a share of the commission it was charged on.
    commission = items["commission"].to_numpy(dtype="float64")
    rc_mask = is_refund & (commission > 0)
    out["refund_commission_rate"] = np.where(
        rc_mask, items["refund_commission"] / np.where(rc_mask, commission, 1), np.nan
    )
    stats = _baseline(
        items, rc_mask, ["marketplace_name", "channel"], out["refund_commission_rate"], "refund_commission"
    )
    out["refund_commission_median"] = stats["refund_commission_median"].where(rc_mask)
    out["refund_commission_ratio"] = out["refund_commission_rate"] / out["refund_commission_median"]


def settlement_features(current: pd.DataFrame, past: pd.DataFrame) -> pd.DataFrame:
    """Fee share of sales and reserve share against the trailing settlements of the marketplace."""
    row = current.iloc[0]
    trailing = (
        past[
            (past["marketplace"] == row["marketplace"])
            & (past["currency"] == row["currency"])
            & (past["end"] < row["end"])
        ]
        .sort_values("end")
        .tail(TRAILING_WINDOW)
    )

    def shares(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        sales = frame["sales_minor"].where(frame["sales_minor"] > 0)
        return frame["fees_minor"] / sales, frame["reserve_held_minor"] / sales

    fee_share, reserve_share = shares(current)
    past_fee, past_reserve = shares(trailing)
    return pd.DataFrame(
        {
            "fee_share": fee_share.to_numpy(),
            "reserve_share": reserve_share.to_numpy(),
            "fee_share_median": [past_fee.median()],
            "reserve_share_median": [past_reserve.median()],
            "trailing_settlements": [int(past_fee.notna().sum())],
        }
    )
