"""Anomaly scoring against the generator's injected ground truth (pure domain: no sandbox server)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly import ANOMALY_COLUMNS, AnomalyHistory, AnomalyModel, ModelFileError, score_items, score_settlement
from anomaly.model import model_matrix
from reconciliation.model import Settlement
from reconciliation.parse import parse_settlement_bytes
from sandbox.catalog import FBA_FEES, MARKETPLACES
from sandbox.generator import World, build_world

SEED, ORDERS, DAYS = 3, 600, 28
ITEM_KINDS = ("fee_overcharge_fba", "fee_overcharge_commission", "duplicate_refund", "price_error")


def _settlements(world: World) -> list[Settlement]:
    return [
        parse_settlement_bytes(d.text.encode("utf-8"), d.settlement_id).settlements[0]
        for d in world.settlement_documents()
    ]


def _run(world: World, home: Path, settlements: list[Settlement] | None = None) -> dict[str, pd.DataFrame]:
    """Score every settlement in date order against the history of the earlier ones."""
    history = AnomalyHistory(home)
    hints = {i.sku: i.category for i in world.catalog}
    flagged = {}
    for settlement in settlements if settlements is not None else _settlements(world):
        flagged[settlement.settlement_id] = score_settlement(
            settlement, history, catalog_hints=hints, persist_model=False
        )
        history.add(settlement)
    return flagged


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SEED, orders=ORDERS, days=DAYS, anomalies=True)


@pytest.fixture(scope="module")
def settlements(world: World) -> list[Settlement]:
    return _settlements(world)


@pytest.fixture(scope="module")
def flagged(
    world: World, settlements: list[Settlement], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pd.DataFrame]:
    return _run(world, tmp_path_factory.mktemp("home"), settlements)


def _hit(flagged: dict[str, pd.DataFrame], anomaly) -> pd.Series:
    frame = flagged[anomaly.settlement_id]
    rows = frame[
        (frame["order_id"] == anomaly.order_id) & (frame["sku"] == anomaly.sku) & (frame["kind"] == anomaly.kind)
    ]
    assert len(rows) == 1, f"{anomaly} not flagged; flags were:\n{frame}"
    return rows.iloc[0]


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _judgeable(world: World, anomaly) -> bool:
    """A price can only be called wrong once the SKU has sold at least three times in that
    marketplace (counted from the generated orders up to the settlement, not from the scores)."""
    if anomaly.kind != "price_error":
        return True
    document = next(d for d in world.documents if d.settlement_id == anomaly.settlement_id)
    market = next(o.market for o in world.orders if o.order_id == anomaly.order_id)
    sales = sum(
        1
        for o in world.orders
        if o.market == market and o.shipped is not None and o.shipped < document.end
        for li in o.lines
        if li.sku == anomaly.sku
    )
    return sales >= 3


def test_every_injected_item_anomaly_is_flagged(world, flagged):
    kinds = {a.kind for a in world.anomalies}
    assert set(ITEM_KINDS) <= kinds  # the world really contains each kind
    judged = [a for a in world.anomalies if a.kind in ITEM_KINDS and _judgeable(world, a)]
    assert {a.kind for a in judged} == set(ITEM_KINDS)
    for anomaly in judged:
        row = _hit(flagged, anomaly)
        assert 0.5 <= row["score"] <= 1.0 and row["reasons"]


def test_output_columns_and_order(flagged):
    for frame in flagged.values():
        assert tuple(frame.columns) == ANOMALY_COLUMNS
        assert list(frame["score"]) == sorted(frame["score"], reverse=True)
        assert all(isinstance(r, list) and all(isinstance(x, str) for x in r) for r in frame["reasons"])


def test_fba_overcharge_reason_has_the_fee_schedule_numbers(world, flagged):
    items = {i.sku: i for i in world.catalog}
    tiers = list(FBA_FEES)
    for anomaly in (a for a in world.anomalies if a.kind == "fee_overcharge_fba"):
        item = items[anomaly.sku]
        currency = next(o.currency for o in world.orders if o.order_id == anomaly.order_id)
        expected = FBA_FEES[item.size_tier][currency]
        position = tiers.index(item.size_tier)
        charged = FBA_FEES[tiers[position + 1]][currency] if position + 1 < len(tiers) else (expected * 3 + 1) // 2
        reason = _hit(flagged, anomaly)["reasons"][0]
        assert reason.startswith(f"FBA fee {_money(charged)} per unit; this SKU's median {_money(expected)} over "), (
            reason
        )


def test_commission_overcharge_reason_names_rate_and_category_baseline(world, flagged):
    items = {i.sku: i for i in world.catalog}
    names = {m.name for m in MARKETPLACES.values()}
    for anomaly in (a for a in world.anomalies if a.kind == "fee_overcharge_commission"):
        item = items[anomaly.sku]
        reason = _hit(flagged, anomaly)["reasons"][0]
        # Injected at 1.4 x the category's referral rate.
        assert f" is {item.referral_bp * 1.4 / 100:.1f}% of sales price " in reason, reason
        assert f"{item.category} median on " in reason and f" {item.referral_bp / 100:.1f}% over " in reason, reason
        assert any(f" on {name} " in reason for name in names)
        charged = re.search(r"commission (\S+) charged", anomaly.detail).group(1).replace(",", ".")
        assert reason.startswith(f"commission {charged} is "), reason


def test_duplicate_refund_reason_names_both_refunds(world, flagged):
    for anomaly in (a for a in world.anomalies if a.kind == "duplicate_refund"):
        first, second = re.match(r"refund (\S+) repeated as (\S+)", anomaly.detail).groups()
        reason = _hit(flagged, anomaly)["reasons"][0]
        assert "refunded 2 times" in reason and first in reason and second in reason, reason
        order = next(o for o in world.orders if o.order_id == anomaly.order_id)
        line = next(li for li in order.lines if li.sku == anomaly.sku)
        assert f"{_money(2 * line.principal)} refunded in total against a sale of {_money(line.principal)}" in reason


def test_price_error_reason_has_the_wrong_and_usual_unit_price(world, flagged):
    for anomaly in (a for a in world.anomalies if a.kind == "price_error" and _judgeable(world, a)):
        wrong, usual = (
            v.replace(",", ".") for v in re.match(r"unit principal (\S+) vs catalog (\S+)", anomaly.detail).groups()
        )
        reason = _hit(flagged, anomaly)["reasons"][0]
        assert reason.startswith(f"unit price {wrong} vs this SKU's median {usual} on "), reason


def test_missing_reimbursement_needs_an_inventory_ledger(world, settlements, tmp_path):
    lost = next(a for a in world.anomalies if a.kind == "missing_reimbursement")
    event_id = re.search(r"event (\d+)", lost.detail).group(1)
    target = next(s for s in settlements if s.settlement_id == lost.settlement_id)
    reimbursed = target.lines[target.lines["amount_type"] == "FBA Inventory Reimbursement"]
    ledger = pd.DataFrame(
        {
            "event_id": list(reimbursed["adjustment_id"]) + [event_id],
            "sku": list(reimbursed["sku"]) + [lost.sku],
            "quantity": [1] * (len(reimbursed) + 1),
        }
    )
    flags = score_settlement(target, AnomalyHistory(tmp_path), inventory_events=ledger)
    missing = flags[flags["kind"] == "missing_reimbursement"]
    assert list(missing["sku"]) == [lost.sku] and list(missing["order_id"]) == [""]
    assert event_id in missing.iloc[0]["reasons"][0]
    # A ledger whose events were all reimbursed raises nothing.
    quiet = score_settlement(target, AnomalyHistory(tmp_path / "other"), inventory_events=ledger.iloc[:-1])
    assert "missing_reimbursement" not in set(quiet["kind"])
    with pytest.raises(ValueError, match="inventory_events lack column"):
        score_settlement(target, AnomalyHistory(tmp_path / "third"), inventory_events=ledger.drop(columns="sku"))


def test_clean_world_stays_quiet(tmp_path):
    world = build_world(SEED, orders=500, days=DAYS, anomalies=False)
    flagged = _run(world, tmp_path)
    orders = {o.order_id for o in world.orders if o.shipped is not None}
    flagged_orders = {o for frame in flagged.values() for o in frame["order_id"] if o}
    assert len(flagged_orders) <= 0.005 * len(orders), {k: v for k, v in flagged.items() if len(v)}


def test_shipping_chargeback_above_shipping_charged_is_explained(world, settlements, tmp_path):
    settlement = settlements[0]
    lines = settlement.lines.copy()
    chargebacks = lines.index[
        (lines["amount_description"] == "ShippingChargeback") & (lines["transaction_type"] == "Order")
    ]
    target = chargebacks[0]
    order_id, code = lines.at[target, "order_id"], lines.at[target, "order_item_code"]
    shipping = int(
        lines.loc[
            (lines["order_id"] == order_id)
            & (lines["order_item_code"] == code)
            & (lines["amount_description"] == "Shipping")
            & (lines["transaction_type"] == "Order"),
            "amount_minor",
        ].sum()
    )
    lines.at[target, "amount_minor"] = -3 * shipping
    flags = score_settlement(replace(settlement, lines=lines), AnomalyHistory(tmp_path))
    row = flags[(flags["order_id"] == order_id) & (flags["kind"] == "chargeback_exceeds_shipping")].iloc[0]
    assert (
        f"shipping chargeback {_money(3 * shipping)} but the buyer paid {_money(shipping)} shipping" in row["reasons"]
    )


def test_scoring_is_deterministic_for_a_seed(world, settlements, tmp_path):
    settlement = settlements[3]
    first = score_items(settlement, AnomalyHistory(tmp_path / "a"), seed=7).items
    second = score_items(settlement, AnomalyHistory(tmp_path / "b"), seed=7).items
    pd.testing.assert_frame_equal(first, second)


def test_saved_model_loads_and_scores_the_same(world, settlements, tmp_path):
    settlement = settlements[3]
    history = AnomalyHistory(tmp_path)
    scored = score_items(settlement, history, seed=11)
    saved = history.models_folder / f"{settlement.settlement_id}.joblib"
    loaded = AnomalyModel.load(saved)
    assert loaded.features == scored.model.features and loaded.seed == 11
    rescored = score_items(settlement, history, model=loaded, persist_model=False)
    pd.testing.assert_frame_equal(scored.items, rescored.items)
    matrix = model_matrix(
        pd.DataFrame(
            {
                c: [1.0, 2.0]
                for c in (
                    "fba_ratio",
                    "referral_ratio",
                    "price_ratio",
                    "refund_ratio",
                    "refund_commission_ratio",
                    "chargeback_excess",
                    "refund_rank",
                )
            }
        ),
        pd.DataFrame({"shipping": [0, 0]}),
    )
    np.testing.assert_array_equal(loaded.anomaly_score(matrix), scored.model.anomaly_score(matrix))


def test_model_file_of_another_version_is_refused(tmp_path):
    import joblib

    path = tmp_path / "old.joblib"
    joblib.dump({"version": 0, "features": [], "seed": 0, "estimator": None}, path)
    with pytest.raises(ModelFileError, match="old.joblib: model version 0"):
        AnomalyModel.load(path)
    with pytest.raises(ModelFileError, match="not found"):
        AnomalyModel.load(tmp_path / "missing.joblib")


def test_history_adds_a_settlement_once(world, settlements, tmp_path):
    settlement = settlements[0]
    history = AnomalyHistory(tmp_path)
    assert history.add(settlement) is True
    count = len(history.items())
    assert count > 0 and (tmp_path / "history" / "items.parquet").is_file()
    assert history.add(settlement) is False
    assert len(history.items()) == count and history.settlement_ids() == {settlement.settlement_id}


def test_history_judges_a_refund_against_an_earlier_settlement(world, settlements, tmp_path):
    """A refund repeated in a later settlement is caught through the stored history."""
    refund_in = next(s for s in settlements[1:] if (s.lines["transaction_type"] == "Refund").any())
    rows = refund_in.lines[refund_in.lines["transaction_type"] == "Refund"]
    first_refund = rows[rows["adjustment_id"] == rows["adjustment_id"].iloc[0]]
    history = AnomalyHistory(tmp_path)
    history.add(refund_in)
    # The same refund paid again under a new adjustment id in a later settlement.
    again = first_refund.assign(adjustment_id="amzn1:crow:REPEATED", settlement_id="99")
    later = replace(refund_in, settlement_id="99", lines=again.reset_index(drop=True))
    flags = score_settlement(later, history)
    row = flags[flags["kind"] == "duplicate_refund"].iloc[0]
    assert row["order_id"] == first_refund["order_id"].iloc[0]
    assert first_refund["adjustment_id"].iloc[0] in row["reasons"][0] and "amzn1:crow:REPEATED" in row["reasons"][0]


def test_threshold_zero_returns_every_item_and_bad_threshold_is_refused(world, settlements, tmp_path):
    settlement = settlements[0]
    every = score_settlement(settlement, AnomalyHistory(tmp_path), threshold=0.0)
    items = settlement.lines[settlement.lines["transaction_type"].isin(["Order", "Refund"])]
    assert len(every) == len(
        items.drop_duplicates(["transaction_type", "order_id", "order_item_code", "adjustment_id"])
    )
    with pytest.raises(ValueError, match="threshold must be within"):
        score_settlement(settlement, AnomalyHistory(tmp_path), threshold=1.5)


@pytest.mark.parametrize(
    ("description", "kind"),
    [("FBAPerUnitFulfillmentFee", "fee_overcharge_fba"), ("Commission", "fee_overcharge_commission")],
)
def test_a_fee_twenty_percent_over_its_baseline_is_flagged(settlements, tmp_path, description, kind):
    settlement = settlements[3]
    lines = settlement.lines.copy()
    fees = lines.index[
        (lines["transaction_type"] == "Order")
        & (lines["amount_description"] == description)
        & (lines["amount_minor"] <= -300)
    ]
    target = fees[0]
    original = -int(lines.at[target, "amount_minor"])
    lines.at[target, "amount_minor"] = -(original * 12 // 10)  # 20 % more
    flags = score_settlement(replace(settlement, lines=lines), AnomalyHistory(tmp_path), persist_model=False)
    row = flags[(flags["order_id"] == lines.at[target, "order_id"]) & (flags["kind"] == kind)]
    assert len(row) == 1, flags
    reason = row.iloc[0]["reasons"][0]
    if kind == "fee_overcharge_fba":
        quantity = int(lines.at[target, "quantity"])
        charged = original * 12 // 10
        assert reason.startswith(
            f"FBA fee {_money((2 * charged + quantity) // (2 * quantity))} per unit; "
            f"this SKU's median {_money(original // quantity)} over "
        ), reason
    else:
        assert reason.startswith(f"commission {_money(original * 12 // 10)} is "), reason
        assert f"(expected {_money(original)})" in reason, reason


def test_fee_share_above_the_trailing_settlements_is_flagged(settlements, tmp_path):
    base = next(s for s in settlements if s.marketplace == "Amazon.com")
    history = AnomalyHistory(tmp_path)
    for k in (3, 2, 1):  # three earlier fortnights with the same figures
        history.add(replace(base, settlement_id=f"earlier-{k}", end=base.end - pd.Timedelta(days=14 * k)))
    lines = base.lines.copy()
    commission = (lines["transaction_type"] == "Order") & (lines["amount_description"] == "Commission")
    lines.loc[commission, "amount_minor"] *= 2
    flags = score_settlement(replace(base, settlement_id="now", lines=lines), history, persist_model=False)
    row = flags[flags["kind"] == "fee_share_high"].iloc[0]
    assert (row["order_id"], row["sku"]) == ("", "")
    sales = int(
        base.lines.loc[
            (base.lines["transaction_type"] == "Order")
            & (base.lines["amount_type"] == "ItemPrice")
            & (base.lines["amount_description"] == "Principal"),
            "amount_minor",
        ].sum()
    )
    # Fees of multi-channel fulfilment orders (marketplace "Non-Amazon US") belong to sales made
    # elsewhere and stay out of the share of Amazon sales.
    amazon_fees = (base.lines["amount_type"] == "ItemFees") & ~base.lines["marketplace_name"].str.startswith(
        "Non-Amazon"
    )
    assert (
        base.lines["marketplace_name"].str.startswith("Non-Amazon") & (base.lines["amount_type"] == "ItemFees")
    ).any()
    fees_before = -int(base.lines.loc[amazon_fees, "amount_minor"].sum())
    fees_now = fees_before - int(base.lines.loc[commission, "amount_minor"].sum())
    assert row["reasons"] == [
        f"fees {_money(fees_now)} are {100 * fees_now / sales:.1f}% of sales {_money(sales)}; "
        f"median {100 * fees_before / sales:.1f}% over the last 3 settlements on Amazon.com"
    ]
