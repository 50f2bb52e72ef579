"""Build ``Settlement`` objects by hand in tests (no parser needed).

``lines_frame`` turns tuples ``(transaction_type, amount_type, amount_description,
amount_minor, posted_date[, order_id])`` into a frame with exactly ``LINE_COLUMNS``;
``make_settlement`` wraps it; ``settlement_from_tsv`` reads a V2 flat file with the stdlib
csv module and ``Decimal`` (independent of ``reconciliation.parse``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import pandas as pd

from reconciliation.model import LINE_COLUMNS, Settlement, currency_decimals

LineTuple = Sequence[object]


def lines_frame(
    rows: Iterable[LineTuple | dict], *, settlement_id: str = "10000000001", marketplace_name: str = "Amazon.com"
) -> pd.DataFrame:
    """A lines frame with ``LINE_COLUMNS`` and their dtypes; unspecified text columns are ""."""
    records = []
    for line_no, row in enumerate(rows, start=3):  # header = line 1, summary = line 2
        if isinstance(row, dict):
            fields = dict(row)
        else:
            tt, at, ad, amount, posted, *rest = row
            fields = {
                "transaction_type": tt,
                "amount_type": at,
                "amount_description": ad,
                "amount_minor": amount,
                "posted_date": posted,
            }
            if rest:
                fields["order_id"] = rest[0]
        record = {c: "" for c, dtype in LINE_COLUMNS.items() if dtype == "str"}
        record.update(settlement_id=settlement_id, line_no=line_no, marketplace_name=marketplace_name, quantity=None)
        record.update(fields)
        records.append(record)
    frame = pd.DataFrame(records, columns=list(LINE_COLUMNS))
    for column, dtype in LINE_COLUMNS.items():
        if column == "posted_date":
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def make_settlement(
    rows: Iterable[LineTuple | dict],
    *,
    total_minor: int | None = None,
    settlement_id: str = "10000000001",
    currency: str = "USD",
    marketplace: str = "Amazon.com",
    start: str = "2024-10-09 14:28:38",
    end: str = "2024-10-23 14:28:39",
    deposit: str = "2024-10-25 14:28:39",
) -> Settlement:
    """A Settlement; ``total_minor`` defaults to the exact sum of the lines."""
    lines = lines_frame(rows, settlement_id=settlement_id, marketplace_name=marketplace)
    total = int(lines["amount_minor"].sum()) if total_minor is None else total_minor
    return Settlement(
        settlement_id=settlement_id,
        source="test",
        format="v2",
        currency=currency,
        start=pd.Timestamp(start, tz="UTC"),
        end=pd.Timestamp(end, tz="UTC"),
        deposit_date=pd.Timestamp(deposit, tz="UTC"),
        total_minor=total,
        marketplace=marketplace,
        lines=lines,
    )


def _minor(text: str, decimals: int) -> int:
    return int(Decimal(text.replace(",", ".")).scaleb(decimals))


def settlement_from_tsv(path: Path) -> Settlement:
    """A V2 US-format flat file (one settlement) read with csv + Decimal."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    summary, body = rows[0], rows[1:]
    currency = summary["currency"]
    decimals = currency_decimals(currency)
    lines = []
    for row in body:
        lines.append(
            {
                "transaction_type": row["transaction-type"],
                "amount_type": row["amount-type"],
                "amount_description": row["amount-description"],
                "amount_minor": _minor(row["amount"], decimals),
                "posted_date": row["posted-date-time"].removesuffix(" UTC") or row["posted-date"],
                "order_id": row["order-id"],
                "merchant_order_id": row["merchant-order-id"],
                "adjustment_id": row["adjustment-id"],
                "shipment_id": row["shipment-id"],
                "marketplace_name": row["marketplace-name"],
                "fulfillment_id": row["fulfillment-id"],
                "order_item_code": row["order-item-code"],
                "sku": row["sku"],
                "quantity": int(row["quantity-purchased"]) if row["quantity-purchased"] else None,
                "promotion_id": row["promotion-id"],
            }
        )
    return make_settlement(
        lines,
        total_minor=_minor(summary["total-amount"], decimals),
        settlement_id=summary["settlement-id"],
        currency=currency,
        marketplace="Amazon.com",
        start=summary["settlement-start-date"].removesuffix(" UTC"),
        end=summary["settlement-end-date"].removesuffix(" UTC"),
        deposit=summary["deposit-date"].removesuffix(" UTC"),
    )


# The header row of a V2 settlement flat file (Amazon's "Flat File V2" settlement report), as typed
# here from Amazon's documentation, not taken from the parser.
V2_HEADER = (
    "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
    "transaction-type\torder-id\tmerchant-order-id\tadjustment-id\tshipment-id\tmarketplace-name\tamount-type\t"
    "amount-description\tamount\tfulfillment-id\tposted-date\tposted-date-time\torder-item-code\t"
    "merchant-order-item-id\tmerchant-adjustment-item-id\tsku\tquantity-purchased\tpromotion-id"
)
