"""Row shapes of real sellers' files (settlement-vocabulary.md §2), one hand-written golden file each.

Every expected value below is read off the file named in the test by hand (the files are small:
``tests/golden/row_shapes/``). Only the parsed settlement is asserted here; which GL account a
row goes to is the mapping's business.
"""

from __future__ import annotations

import pandas as pd
from _parse_fixtures import GOLDEN_ROW_SHAPES, UTC

from reconciliation.model import Settlement
from reconciliation.parse import read_settlement_file
from reconciliation.schemas import validate_settlement


def golden(name: str) -> list[Settlement]:
    result = read_settlement_file(GOLDEN_ROW_SHAPES / name)
    assert result.errors == []
    return result.settlements


def lines_of(settlement: Settlement, *columns: str) -> list[tuple]:
    return list(settlement.lines[["line_no", *columns]].itertuples(index=False, name=None))


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def test_us_2024_liquidations_rows_with_23_fields_are_padded() -> None:
    # Lines 5 and 6 have 23 fields under the 24-column header (promotion-id left out).
    [s] = golden("us_2024_liquidations_short_rows.tsv")
    assert (s.settlement_id, s.currency, s.total_minor, s.marketplace) == ("60000000001", "USD", 2649, "Amazon.com")
    assert lines_of(s, "transaction_type", "amount_description", "amount_minor", "marketplace_name") == [
        (3, "Order", "Principal", 2500, "Amazon.com"),
        (4, "Order", "Commission", -375, "Amazon.com"),
        (5, "Liquidations", "Principal", 1240, "Amazon.com"),
        (6, "Liquidations", "LiquidationsBrokerageFee", -124, "Amazon.com"),
        (7, "Order", "Principal", 0, "Non-Amazon US"),
        (8, "Order", "FBAPerUnitFulfillmentFee", -592, "Non-Amazon US"),
    ]
    # 25.00 - 3.75 + 12.40 - 1.24 + 0.00 - 5.92 = 26.49, the file's total-amount
    assert int(s.lines["amount_minor"].sum()) == 2649
    liquidation = s.lines[s.lines["line_no"] == 5].iloc[0]
    assert (liquidation["promotion_id"], liquidation["quantity"], liquidation["sku"]) == ("", 4, "MUG-RED")
    assert liquidation["posted_date"] == ts("2024-06-07 03:12:44")
    mcf = s.lines[s.lines["line_no"] == 8].iloc[0]
    assert (mcf["order_id"], mcf["merchant_order_id"]) == ("S01-0739155-2355660", "#1088")


def test_account_level_settlement_without_any_marketplace_name() -> None:
    [s] = golden("ca_account_level_only.tsv")
    assert (s.currency, s.total_minor, s.marketplace) == ("CAD", -32169, "")
    assert lines_of(s, "transaction_type", "amount_description", "amount_minor", "marketplace_name") == [
        (3, "Subscription Fee", "Subscription Fee", -3999, ""),
        (4, "other-transaction", "FBAInboundTransportationFee", -41250, ""),
        (5, "other-transaction", "Successful charge", 13080, ""),
    ]
    assert s.lines["posted_date"].tolist() == [
        ts("2025-03-02 10:00:00"),
        ts("2025-03-05 21:45:10"),
        ts("2025-03-14 06:59:59"),
    ]


def test_japanese_dates_with_jst_are_converted_to_utc() -> None:
    [s] = golden("jp_dates.tsv")
    assert (s.currency, s.decimals, s.total_minor, s.marketplace) == ("JPY", 0, 2480, "Amazon.co.jp")
    # JST = UTC+9: 2024/10/09 14:28:38 JST is 05:28:38 UTC.
    assert (s.start, s.end, s.deposit_date) == (
        ts("2024-10-09 05:28:38"),
        ts("2024-10-23 05:28:39"),
        ts("2024-10-25 05:28:39"),
    )
    assert lines_of(s, "amount_type", "amount_minor", "posted_date") == [
        (3, "ItemPrice", 3000, ts("2024-10-18 00:15:00")),
        (4, "ItemFees", -450, ts("2024-10-18 00:15:00")),
        (5, "Points", -30, ts("2024-10-18 00:15:00")),
        (6, "other-transaction", -140, ts("2024-10-19 18:00:00")),  # 03:00 JST is the previous day in UTC
        (7, "other-transaction", 100, ts("2024-10-21 00:00:00")),  # posted-date only: that day, 00:00 UTC
    ]


def test_v1_36_columns() -> None:
    [s] = golden("v1_36_columns.tsv")
    assert (s.format, s.currency, s.total_minor, s.marketplace) == ("v1", "CAD", 51, "Amazon.ca")
    # Line 3 is the quantity-only row: no amount, no line.
    assert lines_of(s, "amount_type", "amount_description", "amount_minor", "marketplace_name") == [
        (4, "ItemPrice", "Principal", 5000, "Amazon.ca"),
        (5, "ItemFees", "Commission", -750, "Amazon.ca"),
        (6, "Promotion", "Shipping", -200, "Amazon.ca"),
        (7, "other-transaction", "Subscription Fee", -3999, ""),
    ]
    assert s.lines["promotion_id"].tolist() == ["", "", "Free shipping", ""]
    # 2025-10-13T01:00:00+02:00 is 2025-10-12 23:00 UTC.
    assert s.lines["posted_date"].tolist() == [ts("2025-10-12 15:40:00")] * 3 + [ts("2025-10-12 23:00:00")]


def test_v1_33_columns() -> None:
    [s] = golden("v1_33_columns.tsv")
    assert (s.format, s.total_minor, s.marketplace) == ("v1", 251, "Amazon.ca")
    assert lines_of(s, "amount_description", "amount_minor") == [
        (4, "Principal", 5000),
        (5, "Commission", -750),
        (6, "Subscription Fee", -3999),
    ]
    assert s.lines["promotion_id"].eq("").all()


def test_v2_23_columns_without_promotion_id() -> None:
    [s] = golden("v2_23_columns.tsv")
    assert (s.format, s.currency, s.total_minor, s.marketplace) == ("v2", "EUR", 2234, "Amazon.de")
    assert lines_of(s, "amount_description", "amount_minor", "posted_date") == [
        (3, "Principal", 2999, ts("2024-10-14 04:15:46")),
        (4, "Commission", -450, ts("2024-10-14 04:15:46")),
        (5, "FBAPerUnitFulfillmentFee", -315, ts("2024-10-14 04:15:46")),
    ]
    assert s.lines["promotion_id"].eq("").all()
    assert s.start == ts("2024-10-11 08:59:52")


def test_v2_24_columns() -> None:
    [s] = golden("v2_24_columns.tsv")
    assert (s.currency, s.total_minor, s.marketplace) == ("GBP", 25044, "Amazon.co.uk")
    assert lines_of(s, "amount_type", "amount_minor", "promotion_id") == [
        (3, "ItemPrice", 26000, ""),
        (4, "Promotion", -299, "UK Free Delivery"),
        (5, "ItemFees", -657, ""),
    ]


def test_two_settlements_in_two_currencies_each_with_its_own_decimals() -> None:
    usd, jpy = golden("two_settlements_two_currencies.tsv")
    assert (usd.settlement_id, usd.currency, usd.total_minor, usd.marketplace) == (
        "65000000001",
        "USD",
        1500,
        "Amazon.com",
    )
    assert (jpy.settlement_id, jpy.currency, jpy.total_minor, jpy.marketplace) == (
        "65000000002",
        "JPY",
        1500,
        "Amazon.co.jp",
    )
    # "20.00" USD is 2000 cents; "2000" JPY is 2000 yen (no minor digits).
    assert lines_of(usd, "amount_minor") == [(3, 2000), (4, -500)]
    assert lines_of(jpy, "amount_minor") == [(6, 2000), (7, -500)]
    assert jpy.start == ts("2024-10-09 15:00:00")


def test_every_golden_settlement_validates_and_balances() -> None:
    names = sorted(p.name for p in GOLDEN_ROW_SHAPES.glob("*.tsv"))
    assert len(names) == 8
    for name in names:
        for settlement in golden(name):
            report = validate_settlement(settlement)
            assert report.ok, (name, report.reasons)
