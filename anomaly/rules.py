"""Explicit rules: each turns one feature into a score in [0, 1] and a reason with the numbers.

A rule scores only what it is sure about (above its tolerance); 0.5 and up means "flag".
Reasons are built column-wise for the triggered items only (few), so the hot path stays
vectorised even on a million-line settlement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .items import CHANNEL_MCF
from .money import format_minor_column, format_percent, round_minor

FEE_TOLERANCE = 0.10  # fees within 10 % of their baseline are normal variation
PRICE_TOLERANCE = 0.30  # a unit price 30 % off the SKU's median is a typo, not a promotion
REFUND_COMMISSION_TOLERANCE = 0.5
MIN_EXCESS_MINOR = 2  # rounding of a percentage fee is never an overcharge


@dataclass(frozen=True, eq=False)
class RuleHits:
    """One rule's verdict per item. Compares by identity (``eq=False``): it holds an array and a Series."""

    kind: str
    scores: np.ndarray  # per item, 0 where the rule did not fire
    reasons: pd.Series  # per item, "" where the rule did not fire


@dataclass(frozen=True)
class Rule:
    kind: str
    evaluate: Callable[[pd.DataFrame, pd.DataFrame, int], tuple[np.ndarray, pd.Series]]


def _graded(excess: np.ndarray, fired: np.ndarray, floor: float = 0.55) -> np.ndarray:
    """0.55 at the tolerance, rising with the size of the excess, capped at 1."""
    return np.where(fired, np.clip(floor + np.nan_to_num(excess), floor, 1.0), 0.0)


def _settlements(count: pd.Series) -> pd.Series:
    n = count.fillna(0).astype("int64").astype(str)
    return n + np.where(count.fillna(0) == 1, " settlement", " settlements")


def _reasons(fired: np.ndarray, build: Callable[[pd.Index], pd.Series | np.ndarray], size: int) -> pd.Series:
    reasons = pd.Series("", index=pd.RangeIndex(size), dtype=object)
    where = np.flatnonzero(fired)
    if len(where):
        reasons.iloc[where] = np.asarray(build(pd.Index(where)), dtype=object)
    return reasons


def _fba(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    ratio = f["fba_ratio"].to_numpy()
    excess_minor = (f["fba_unit"] - f["fba_median"]).to_numpy()
    fired = np.nan_to_num(ratio) > 1 + FEE_TOLERANCE
    fired &= np.nan_to_num(excess_minor) >= MIN_EXCESS_MINOR

    def build(at: pd.Index) -> pd.Series:
        g = f.iloc[at]
        over = round_minor((g["fba_unit"] - g["fba_median"]) * items["quantity"].iloc[at])
        # An MCF order is judged against MCF orders only; its reason says so.
        mcf = (items["channel"].iloc[at] == CHANNEL_MCF).to_numpy()
        baseline = np.where(
            mcf,
            " per unit on a multi-channel fulfilment (MCF) order; this SKU's MCF median ",
            " per unit; this SKU's median ",
        )
        return (
            "FBA fee "
            + format_minor_column(round_minor(g["fba_unit"]), decimals).to_numpy()
            + baseline
            + format_minor_column(round_minor(g["fba_median"]), decimals).to_numpy()
            + " over "
            + _settlements(g["fba_settlements"]).to_numpy()
            + " (+"
            + format_percent(g["fba_ratio"] - 1).to_numpy()
            + ", "
            + format_minor_column(over, decimals).to_numpy()
            + " overcharged on "
            + items["quantity"].iloc[at].astype(str).to_numpy()
            + " unit(s))"
        )

    return _graded(ratio - 1 - FEE_TOLERANCE, fired), _reasons(fired, build, len(f))


def _commission(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    ratio = f["referral_ratio"].to_numpy()
    excess_minor = (items["commission"] - f["referral_expected"]).to_numpy()
    fired = (np.nan_to_num(ratio) > 1 + FEE_TOLERANCE) & (np.nan_to_num(excess_minor) >= MIN_EXCESS_MINOR)

    def build(at: pd.Index) -> pd.Series:
        g, i = f.iloc[at], items.iloc[at]
        return (
            "commission "
            + format_minor_column(i["commission"], decimals).to_numpy()
            + " is "
            + format_percent(g["referral_rate"]).to_numpy()
            + " of sales price "
            + format_minor_column(round_minor(g["sales_base"]), decimals).to_numpy()
            + "; "
            + g["referral_group"].to_numpy()
            + " median on "
            + i["marketplace_name"].to_numpy()
            + " "
            + format_percent(g["referral_median"]).to_numpy()
            + " over "
            + _settlements(g["referral_settlements"]).to_numpy()
            + " (expected "
            + format_minor_column(round_minor(g["referral_expected"]), decimals).to_numpy()
            + ")"
        )

    return _graded(ratio - 1 - FEE_TOLERANCE, fired), _reasons(fired, build, len(f))


def _price(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    ratio = f["price_ratio"].to_numpy()
    off = np.abs(np.log2(np.where(ratio > 0, ratio, 1.0)))
    fired = (np.nan_to_num(ratio, nan=1.0) < 1 - PRICE_TOLERANCE) | (
        np.nan_to_num(ratio, nan=1.0) > 1 + PRICE_TOLERANCE
    )

    def build(at: pd.Index) -> pd.Series:
        g, i = f.iloc[at], items.iloc[at]
        return (
            "unit price "
            + format_minor_column(round_minor(g["unit_price"]), decimals).to_numpy()
            + " vs this SKU's median "
            + format_minor_column(round_minor(g["price_median"]), decimals).to_numpy()
            + " on "
            + i["marketplace_name"].to_numpy()
            + " over "
            + _settlements(g["price_settlements"]).to_numpy()
            + " (x"
            + pd.Series(np.char.mod("%.2f", g["price_ratio"].to_numpy())).to_numpy()
            + ")"
        )

    return _graded(0.3 * off - 0.1, fired), _reasons(fired, build, len(f))


def _duplicate_refund(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    rank = f["refund_rank"].fillna(0).to_numpy()
    fired = rank >= 2

    def build(at: pd.Index) -> pd.Series:
        g, i = f.iloc[at], items.iloc[at]
        sale = g["sale_principal"]
        sale_text = np.where(
            sale.notna(),
            "against a sale of " + format_minor_column(sale.fillna(0), decimals).to_numpy(),
            "original sale not found",
        )
        return (
            "order item "
            + i["order_item_code"].to_numpy()
            + " refunded "
            + g["refund_rank"].astype("int64").astype(str).to_numpy()
            + " times: "
            + g["previous_adjustment"].astype(str).to_numpy()
            + " on "
            + pd.to_datetime(g["previous_posted"], utc=True).dt.strftime("%Y-%m-%d").to_numpy()
            + ", again as "
            + i["adjustment_id"].to_numpy()
            + " on "
            + i["posted_date"].dt.strftime("%Y-%m-%d").to_numpy()
            + "; "
            + format_minor_column(g["refunded_so_far"].fillna(0), decimals).to_numpy()
            + " refunded in total "
            + sale_text
        )

    return np.where(fired, 0.9, 0.0), _reasons(fired, build, len(f))


def _refund_exceeds_sale(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    fired = (f["refund_rank"].fillna(0).to_numpy() == 1) & (np.nan_to_num(f["refund_ratio"].to_numpy()) > 1.0)

    def build(at: pd.Index) -> pd.Series:
        g, i = f.iloc[at], items.iloc[at]
        return (
            "refund "
            + format_minor_column(i["principal"], decimals).to_numpy()
            + " exceeds the original sale "
            + format_minor_column(g["sale_principal"].fillna(0), decimals).to_numpy()
        )

    return np.where(fired, 0.8, 0.0), _reasons(fired, build, len(f))


def _chargeback(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    fired = f["chargeback_excess"].to_numpy() >= MIN_EXCESS_MINOR

    def build(at: pd.Index) -> pd.Series:
        i = items.iloc[at]
        return (
            "shipping chargeback "
            + format_minor_column(i["chargeback"], decimals).to_numpy()
            + " but the buyer paid "
            + format_minor_column(i["shipping"], decimals).to_numpy()
            + " shipping"
        )

    return np.where(fired, 0.7, 0.0), _reasons(fired, build, len(f))


def _refund_commission(items: pd.DataFrame, f: pd.DataFrame, decimals: int) -> tuple[np.ndarray, pd.Series]:
    ratio = np.nan_to_num(f["refund_commission_ratio"].to_numpy())
    fired = (ratio > 1 + REFUND_COMMISSION_TOLERANCE) & (items["refund_commission"].to_numpy() >= MIN_EXCESS_MINOR)

    def build(at: pd.Index) -> pd.Series:
        g, i = f.iloc[at], items.iloc[at]
        return (
            "refund administration fee "
            + format_minor_column(i["refund_commission"], decimals).to_numpy()
            + " is "
            + format_percent(g["refund_commission_rate"]).to_numpy()
            + " of the commission returned ("
            + format_minor_column(i["commission"], decimals).to_numpy()
            + "); usual on "
            + i["marketplace_name"].to_numpy()
            + " "
            + format_percent(g["refund_commission_median"]).to_numpy()
        )

    return np.where(fired, 0.6, 0.0), _reasons(fired, build, len(f))


ITEM_RULES: tuple[Rule, ...] = (
    Rule("fee_overcharge_fba", _fba),
    Rule("fee_overcharge_commission", _commission),
    Rule("price_error", _price),
    Rule("duplicate_refund", _duplicate_refund),
    Rule("refund_exceeds_sale", _refund_exceeds_sale),
    Rule("chargeback_exceeds_shipping", _chargeback),
    Rule("refund_commission_high", _refund_commission),
)


def evaluate_rules(items: pd.DataFrame, features: pd.DataFrame, decimals: int) -> list[RuleHits]:
    items = items.reset_index(drop=True)
    features = features.reset_index(drop=True)
    return [RuleHits(rule.kind, *rule.evaluate(items, features, decimals)) for rule in ITEM_RULES]
