"""Anomalies per fulfilment channel (Amazon vs multi-channel fulfilment) and odd settlements.

Settlements are built by hand (``_settlement_builders``); every expected median below is worked
out from the rows written here.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from _settlement_builders import make_settlement

from anomaly import AnomalyHistory, score_items, score_settlement
from anomaly.items import ITEM_COLUMNS, fulfilment_channel

SKU = "KIT-10002"
POSTED = "2024-10-12 10:00:00"


def _order(
    order_id: str,
    marketplace: str,
    principal: int,
    fba: int,
    *,
    commission: int | None = None,
    sku: str = SKU,
    quantity: int = 1,
) -> list[dict]:
    """The lines of one order item: Principal, FBA fee and (Amazon orders) Commission."""
    common = {
        "transaction_type": "Order",
        "order_id": order_id,
        "order_item_code": f"item-{order_id}",
        "sku": sku,
        "quantity": quantity,
        "marketplace_name": marketplace,
        "posted_date": POSTED,
        "fulfillment_id": "AFN",
        "amount_type": "ItemPrice",
    }
    rows = [
        {**common, "amount_description": "Principal", "amount_minor": principal},
        {**common, "amount_type": "ItemFees", "amount_description": "FBAPerUnitFulfillmentFee", "amount_minor": -fba},
    ]
    if commission is not None:
        rows.append(
            {**common, "amount_type": "ItemFees", "amount_description": "Commission", "amount_minor": -commission}
        )
    return rows


def _mixed_settlement(settlement_id: str = "20000000001", *, mcf_outlier: int = 1932, amazon_outlier: int = 360):
    """Five Amazon FBA orders of SKU at 3.22 (one at ``amazon_outlier``) and four MCF orders of the
    same SKU at twice that fee, 6.44 (one at ``mcf_outlier``)."""
    rows: list[dict] = []
    for n, fee in enumerate([322, 322, 322, 322, amazon_outlier]):
        rows += _order(f"112-000000{n}-1234567", "Amazon.com", 2000, fee, commission=300)
    mcf_orders = [
        ("S01-1111111-0000001", "Non-Amazon US"),
        ("S01-1111111-0000002", "Non-Amazon"),
        ("#1088", "SI CA Prod Marketplace"),
        ("S01-1111111-0000004", "Non-Amazon US"),
    ]
    for (order_id, marketplace), fee in zip(mcf_orders, [644, 644, 644, mcf_outlier]):
        rows += _order(order_id, marketplace, 0, fee)
    return make_settlement(rows, settlement_id=settlement_id)


def _kinds(scored: pd.DataFrame, order_id: str) -> set[str]:
    return set(scored.loc[(scored["order_id"] == order_id) & (scored["score"] >= 0.5), "kind"])


@pytest.mark.parametrize(
    ("name", "order_id", "channel"),
    [
        ("Amazon.com", "112-1234567-1234567", "amazon"),
        ("Amazon.com.au", "", "amazon"),
        ("amazon.co.jp", "503-1234567-1234567", "amazon"),
        ("Non-Amazon", "S01-1234567-1234567", "mcf"),
        ("Non-Amazon UK", "", "mcf"),
        ("  non-amazon ca ", "", "mcf"),
        ("SI CA Prod Marketplace", "#1088", "mcf"),
        ("", "S01-9748372-3412255", "mcf"),
        ("", "#1088", "mcf"),
        ("", "112-1234567-1234567", "amazon"),
        ("", "", "amazon"),
        ("\u00ff\x01?", "", "mcf"),
    ],
)
def test_channel_of_any_marketplace_name(name, order_id, channel):
    names = pd.Series([name, "Amazon.de"])
    assert list(fulfilment_channel(names, pd.Series([order_id, ""]))) == [channel, "amazon"]


def test_mcf_orders_are_judged_against_mcf_orders_only(tmp_path):
    scored = score_items(_mixed_settlement(), AnomalyHistory(tmp_path), persist_model=False).items
    # MCF orders at 6.44 are twice the Amazon fee but exactly the MCF median (6.44, 6.44, 6.44, 19.32 -> 6.44).
    for order_id in ("S01-1111111-0000001", "S01-1111111-0000002", "#1088"):
        assert _kinds(scored, order_id) == set(), scored
    # The MCF order at 19.32 is three times the MCF median.
    outlier = scored[(scored["order_id"] == "S01-1111111-0000004") & (scored["kind"] == "fee_overcharge_fba")]
    assert len(outlier) == 1 and outlier.iloc[0]["score"] >= 0.5
    assert outlier.iloc[0]["reasons"][0] == (
        "FBA fee 19.32 per unit on a multi-channel fulfilment (MCF) order; this SKU's MCF median 6.44 over "
        "1 settlement (+200.0%, 12.88 overcharged on 1 unit(s))"
    )
    # Amazon median: 3.22, 3.22, 3.22, 3.22, 3.60 -> 3.22. Had the MCF fees been mixed in
    # (nine fees) the median would be 3.60 and the 3.60 order would pass unnoticed.
    amazon = scored[(scored["order_id"] == "112-0000004-1234567") & (scored["kind"] == "fee_overcharge_fba")]
    assert len(amazon) == 1
    assert amazon.iloc[0]["reasons"][0].startswith("FBA fee 3.60 per unit; this SKU's median 3.22 over 1 settlement")
    for n in range(4):
        assert _kinds(scored, f"112-000000{n}-1234567") == set()
    # Principal 0.00 raises neither a price nor a commission nor a refund rule on MCF orders.
    mcf = scored[scored["marketplace_name"] != "Amazon.com"]
    assert set(mcf["kind"]) <= {"", "fee_overcharge_fba"}


def test_history_keeps_the_channel_and_later_runs_compare_like_with_like(tmp_path):
    history = AnomalyHistory(tmp_path)
    first = _mixed_settlement("20000000001")
    history.add(first)
    stored = history.items()
    assert list(stored.columns) == list(ITEM_COLUMNS)
    assert dict(zip(stored["order_id"], stored["channel"])) == {
        **{f"112-000000{n}-1234567": "amazon" for n in range(5)},
        "S01-1111111-0000001": "mcf",
        "S01-1111111-0000002": "mcf",
        "#1088": "mcf",
        "S01-1111111-0000004": "mcf",
    }
    # A later settlement with one MCF order at 6.44: the stored MCF fees 6.44, 6.44, 6.44, 19.32
    # plus this one have the median 6.44 (the Amazon median, 3.22, plays no part): nothing flagged.
    later = make_settlement(_order("S01-2222222-0000001", "Non-Amazon US", 0, 644), settlement_id="20000000002")
    flags = score_settlement(later, history, persist_model=False)
    assert flags.empty, flags
    # (That settlement is not recorded.) One MCF order at 7.50: fees 6.44 x 3, 7.50, 19.32 -> median
    # 6.44 over 2 settlements (the stored one and this one); 7.50 / 6.44 = +16.5 %, 1.06 over.
    dearer = make_settlement(_order("S01-3333333-0000001", "Non-Amazon US", 0, 750), settlement_id="20000000003")
    row = score_settlement(dearer, history, persist_model=False).iloc[0]
    assert row["kind"] == "fee_overcharge_fba"
    assert row["reasons"][0].startswith(
        "FBA fee 7.50 per unit on a multi-channel fulfilment (MCF) order; "
        "this SKU's MCF median 6.44 over 2 settlements (+16.5%, 1.06 overcharged"
    )


def test_history_written_before_the_channel_column_still_loads(tmp_path):
    history = AnomalyHistory(tmp_path)
    history.add(_mixed_settlement("20000000001"))
    path = tmp_path / "history" / "items.parquet"
    old = pd.read_parquet(path).drop(columns="channel")
    old.to_parquet(path, index=False)
    assert "channel" not in pd.read_parquet(path).columns
    loaded = history.items()
    assert list(loaded.columns) == list(ITEM_COLUMNS)
    # Amazon storefront rows read as Amazon; the stored names and order ids still tell MCF apart.
    channel = dict(zip(loaded["order_id"], loaded["channel"]))
    assert {channel[f"112-000000{n}-1234567"] for n in range(5)} == {"amazon"}
    assert {channel[o] for o in ("S01-1111111-0000001", "#1088")} == {"mcf"}
    # A history of Amazon rows alone (no MCF at all) loads as Amazon and scoring goes on.
    amazon_only = old[old["marketplace_name"] == "Amazon.com"]
    amazon_only.to_parquet(path, index=False)
    assert set(history.items()["channel"]) == {"amazon"}
    flags = score_settlement(
        make_settlement(
            _order("112-9999999-0000001", "Amazon.com", 2000, 322, commission=300), settlement_id="20000000009"
        ),
        history,
        persist_model=False,
    )
    assert flags.empty, flags


def test_mcf_fees_stay_out_of_the_fee_share(tmp_path):
    history = AnomalyHistory(tmp_path)
    history.add(_mixed_settlement())
    row = history.settlements().iloc[0]
    # Amazon fees: 4 x 3.22 + 3.60 FBA + 5 x 3.00 commission = 31.48; sales 5 x 20.00.
    assert (row["fees_minor"], row["sales_minor"]) == (4 * 322 + 360 + 5 * 300, 5 * 2000)


# --- settlements of odd shape: scoring never raises ---------------------------------------------


def test_account_level_only_settlement_without_marketplace_name(tmp_path):
    rows = [
        ("other-transaction", "other-transaction", "Subscription Fee", -3999, POSTED),
        ("other-transaction", "other-transaction", "FBAInboundTransportationFee", -21750, POSTED),
        ("other-transaction", "other-transaction", "Successful charge", 25749, POSTED),
        ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -1500, POSTED),
    ]
    settlement = make_settlement(rows, marketplace="", currency="CAD")
    assert set(settlement.lines["marketplace_name"]) == {""}
    scored = score_items(settlement, AnomalyHistory(tmp_path), persist_model=False)
    assert scored.items.empty
    history = AnomalyHistory(tmp_path)
    assert history.add(settlement) is True and history.items().empty


def test_settlement_with_zero_lines(tmp_path):
    settlement = make_settlement([], total_minor=0, marketplace="")
    assert settlement.lines.empty
    assert score_items(settlement, AnomalyHistory(tmp_path), persist_model=False).items.empty
    assert score_settlement(settlement, AnomalyHistory(tmp_path), persist_model=False).empty


def test_jpy_settlement_reasons_have_no_decimals(tmp_path):
    rows: list[dict] = []
    for n, fee in enumerate([300, 300, 300, 300, 600]):
        rows += _order(f"503-000000{n}-1234567", "Amazon.co.jp", 2980, fee, commission=447)
    settlement = make_settlement(rows, currency="JPY", marketplace="Amazon.co.jp")
    flags = score_settlement(settlement, AnomalyHistory(tmp_path), persist_model=False)
    row = flags[flags["kind"] == "fee_overcharge_fba"]
    assert list(row["order_id"]) == ["503-0000004-1234567"]
    assert row.iloc[0]["reasons"][0] == (
        "FBA fee 600 per unit; this SKU's median 300 over 1 settlement (+100.0%, 300 overcharged on 1 unit(s))"
    )


def test_settlements_of_several_currencies_are_never_mixed(tmp_path):
    """One file with USD, CAD and EUR settlements of the same SKU: its FBA fee differs per currency
    (3.22 USD, 4.02 CAD, 2.85 EUR), so a shared baseline would flag the dearer ones."""
    history = AnomalyHistory(tmp_path)
    plan = [
        ("30000000001", "USD", "Amazon.com", "112", 2000, 322),
        ("30000000002", "CAD", "Amazon.ca", "702", 2600, 402),
        ("30000000003", "EUR", "Amazon.de", "302", 1800, 285),
    ]
    for settlement_id, currency, marketplace, prefix, principal, fba in plan:
        rows = [
            row
            for n in range(4)
            for row in _order(
                f"{prefix}-100000{n}-1234567", marketplace, principal, fba, commission=principal * 15 // 100
            )
        ]
        settlement = make_settlement(rows, settlement_id=settlement_id, currency=currency, marketplace=marketplace)
        flags = score_settlement(settlement, history, persist_model=False)
        assert flags.empty, flags
        history.add(settlement)
    assert sorted(set(history.items()["currency"])) == ["CAD", "EUR", "USD"]


def test_generated_mcf_variant_raises_no_fee_flag(tmp_path):
    """The generator's MCF variant (Amazon and MCF orders of the same SKUs, MCF at twice the fee)."""
    from _settlement_builders import settlement_from_tsv

    from sandbox.generator.variants import variant_settlement

    path = tmp_path / "mcf.tsv"
    path.write_text(variant_settlement("mcf", 0).text, encoding="utf-8")
    settlement = settlement_from_tsv(path)
    assert settlement.lines["marketplace_name"].str.startswith("Non-Amazon").any()
    scored = score_items(settlement, AnomalyHistory(tmp_path / "home"), persist_model=False).items
    assert set(scored.loc[scored["score"] >= 0.5, "kind"]) == set(), scored


def test_upper_case_layout_is_read_like_the_classic_spelling(tmp_path):
    """Newer files spell keys in upper case with underscores; items, fees, reserves and
    reimbursements are recognised the same way."""
    classic = _mixed_settlement()
    spelled = {
        "Order": "ORDER",
        "ItemPrice": "ITEMPRICE",
        "ItemFees": "ITEMFEES",
        "Principal": "PRINCIPAL",
        "FBAPerUnitFulfillmentFee": "FBAPERUNITFULFILLMENTFEE",
        "Commission": "COMMISSION",
    }
    lines = classic.lines.copy()
    for column in ("transaction_type", "amount_type", "amount_description"):
        lines[column] = lines[column].replace(spelled)
    assert set(lines["transaction_type"]) == {"ORDER"}
    upper = replace(classic, lines=lines)
    first = score_items(classic, AnomalyHistory(tmp_path / "a"), persist_model=False).items
    second = score_items(upper, AnomalyHistory(tmp_path / "b"), persist_model=False).items
    pd.testing.assert_frame_equal(first, second)
    # Account-level rows: 12.00 reserve held, 5.00 released, one reimbursement of 7.50.
    extra = make_settlement(
        [
            ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "CURRENT_RESERVE_AMOUNT", -1200, POSTED),
            ("other-transaction", "other-transaction", "Previous Reserve Amount Balance", 500, POSTED),
            {
                "transaction_type": "OTHER_TRANSACTION",
                "amount_type": "FBA_INVENTORY_REIMBURSEMENT",
                "amount_description": "WAREHOUSE_DAMAGE",
                "amount_minor": 750,
                "posted_date": POSTED,
                "adjustment_id": "1234567890",
                "sku": SKU,
            },
        ],
        settlement_id="20000000005",
    )
    history = AnomalyHistory(tmp_path / "c")
    history.add(extra)
    row = history.settlements().iloc[0]
    assert (row["reserve_held_minor"], row["reserve_released_minor"], row["reimbursement_minor"]) == (1200, 500, 750)
    assert list(history.reimbursements()["adjustment_id"]) == ["1234567890"]


def test_one_settlement_holding_rows_of_two_marketplaces_scores(tmp_path):
    """Rows of a USD and a CAD marketplace under one summary (a file whose settlements were not
    split): scoring goes on and keeps each row's marketplace; prices are judged per marketplace."""
    rows = [row for n in range(3) for row in _order(f"112-200000{n}-1234567", "Amazon.com", 2000, 322, commission=300)]
    rows += [row for n in range(3) for row in _order(f"702-200000{n}-1234567", "Amazon.ca", 4000, 322, commission=600)]
    scored = score_items(
        make_settlement(rows, settlement_id="30000000010"), AnomalyHistory(tmp_path), persist_model=False
    ).items
    assert sorted(set(scored["marketplace_name"])) == ["Amazon.ca", "Amazon.com"] and len(scored) == 6
    # 40.00 on Amazon.ca is no price error against 20.00 on Amazon.com: each marketplace has its own
    # median (a shared one, 30.00, would put both 33 % off).
    assert "price_error" not in set(scored["kind"])


def test_figures_beyond_int64_saturate_instead_of_wrapping(tmp_path):
    """Three Principal rows of 4e18 minor units: their sum (1.2e19) exceeds int64; the stored
    sales figure stays the largest int64 instead of wrapping to a negative number."""
    huge = 4 * 10**18
    rows = [
        {
            "transaction_type": "Order",
            "amount_type": "ItemPrice",
            "amount_description": "Principal",
            "amount_minor": huge,
            "posted_date": POSTED,
            "order_id": f"112-000000{n}-1234567",
            "order_item_code": f"item-{n}",
            "sku": SKU,
            "quantity": 1,
        }
        for n in range(3)
    ]
    settlement = make_settlement(rows, total_minor=0, settlement_id="40000000001")
    score_items(settlement, AnomalyHistory(tmp_path), persist_model=False)
    history = AnomalyHistory(tmp_path)
    history.add(settlement)
    assert int(history.settlements().iloc[0]["sales_minor"]) == 2**63 - 1
