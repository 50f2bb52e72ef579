"""Settlement flat-file text exactly as Amazon writes it (sp-api.md §1.2, §1.5).

V2: 24 tab-separated columns, summary row with columns 1-6 only, '\n' line endings. The date
style and decimal mark follow the seller account's region and currency, not the project's
taste: EU account -> ``DD.MM.YYYY HH:MM:SS UTC`` / ``DD.MM.YYYY``, EUR with a decimal comma,
GBP with a dot; US -> ``YYYY-MM-DD HH:MM:SS UTC`` / ``YYYY-MM-DD``; Japan (date style "jp") ->
``YYYY/MM/DD HH:MM:SS JST`` / ``YYYY/MM/DD`` in Japan's local time, amounts without decimals.
V1 (legacy): 36 columns, ISO 8601 dates with offset, dot decimals, one column per kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox.catalog import Marketplace

from .records import SettlementDocument, SettlementRow

V2_COLUMNS: tuple[str, ...] = (
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "amount-type",
    "amount-description",
    "amount",
    "fulfillment-id",
    "posted-date",
    "posted-date-time",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
    "promotion-id",
)

V1_COLUMNS: tuple[str, ...] = (
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "shipment-fee-type",
    "shipment-fee-amount",
    "order-fee-type",
    "order-fee-amount",
    "fulfillment-id",
    "posted-date",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
    "price-type",
    "price-amount",
    "item-related-fee-type",
    "item-related-fee-amount",
    "misc-fee-amount",
    "other-fee-amount",
    "other-fee-reason-description",
    "promotion-id",
    "promotion-type",
    "promotion-amount",
    "direct-payment-type",
    "direct-payment-amount",
    "other-amount",
)


def format_amount(minor: int, decimal_comma: bool, decimals: int = 2) -> str:
    """Minor units -> '12.99' / '-0,50' (no thousands separator, as in real files)."""
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**decimals)
    if decimals == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}{',' if decimal_comma else '.'}{frac:0{decimals}d}"


# Japanese files write local time with the zone's name (UTC+9, no daylight saving).
JST_OFFSET = timedelta(hours=9)


def format_datetime(moment: datetime, date_style: str) -> str:
    if date_style == "jp":
        return (moment + JST_OFFSET).strftime("%Y/%m/%d %H:%M:%S JST")
    return moment.strftime("%d.%m.%Y %H:%M:%S UTC" if date_style == "eu" else "%Y-%m-%d %H:%M:%S UTC")


def format_date(moment: datetime, date_style: str) -> str:
    if date_style == "jp":
        return (moment + JST_OFFSET).strftime("%Y/%m/%d")
    return moment.strftime("%d.%m.%Y" if date_style == "eu" else "%Y-%m-%d")


def format_iso(moment: datetime) -> str:
    """V1 style: 2024-10-09T14:28:38+00:00."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def render_v2(
    settlement_id: str,
    market: Marketplace,
    start: datetime,
    end: datetime,
    deposit: datetime,
    total_minor: int,
    rows: tuple[SettlementRow, ...],
    *,
    decimals: int = 2,
    short_transaction_types: frozenset[str] = frozenset(),
) -> str:
    """The V2 text; rows of ``short_transaction_types`` omit their empty last field (promotion-id),
    as Amazon ships ``Liquidations`` rows: 23 fields under the 24-column header."""
    style, comma = market.date_style, market.decimal_comma
    summary = [
        settlement_id,
        format_datetime(start, style),
        format_datetime(end, style),
        format_datetime(deposit, style),
        format_amount(total_minor, comma, decimals),
        market.currency,
    ]
    lines = ["\t".join(V2_COLUMNS), "\t".join(summary + [""] * (len(V2_COLUMNS) - len(summary)))]
    for row in rows:
        fields = (
            settlement_id,
            "",
            "",
            "",
            "",
            "",
            row.transaction_type,
            row.order_id,
            row.merchant_order_id,
            row.adjustment_id,
            row.shipment_id,
            row.marketplace_name,
            row.amount_type,
            row.amount_description,
            format_amount(row.amount, comma, decimals),
            row.fulfillment_id,
            format_date(row.posted, style),
            format_datetime(row.posted, style),
            row.order_item_code,
            row.merchant_order_item_id,
            row.merchant_adjustment_item_id,
            row.sku,
            "" if row.quantity is None else str(row.quantity),
            row.promotion_id,
        )
        if row.transaction_type in short_transaction_types and not row.promotion_id:
            fields = fields[:-1]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


# V2 (amount-type) -> the V1 column pair that carries the amount.
_V1_PRICE_TYPES = {"ItemPrice"}
_V1_ITEM_FEE_TYPES = {"ItemFees", "ItemWithheldTax"}


def _v1_row(doc: SettlementDocument, row: SettlementRow, *, quantity_only: bool = False) -> list[str]:
    cells = dict.fromkeys(V1_COLUMNS, "")
    cells.update(
        {
            "settlement-id": doc.settlement_id,
            "transaction-type": row.transaction_type,
            "order-id": row.order_id,
            "merchant-order-id": row.merchant_order_id,
            "adjustment-id": row.adjustment_id,
            "shipment-id": row.shipment_id,
            "marketplace-name": row.marketplace_name,
            "fulfillment-id": row.fulfillment_id,
            "posted-date": format_iso(row.posted),
            "order-item-code": row.order_item_code,
            "merchant-order-item-id": row.merchant_order_item_id,
            "merchant-adjustment-item-id": row.merchant_adjustment_item_id,
            "sku": row.sku,
        }
    )
    if quantity_only:
        cells["quantity-purchased"] = str(row.quantity)
        return [cells[c] for c in V1_COLUMNS]
    amount = format_amount(row.amount, False)
    if row.amount_type in _V1_PRICE_TYPES:
        cells["price-type"], cells["price-amount"] = row.amount_description, amount
    elif row.amount_type in _V1_ITEM_FEE_TYPES:
        cells["item-related-fee-type"], cells["item-related-fee-amount"] = row.amount_description, amount
    elif row.amount_type == "Promotion":
        cells["promotion-id"], cells["promotion-type"], cells["promotion-amount"] = (
            row.promotion_id,
            row.amount_description,
            amount,
        )
    elif row.transaction_type == "ServiceFee":
        cells["other-fee-reason-description"], cells["other-fee-amount"] = row.amount_type, amount
    else:
        # Account-level rows: V1 names them in transaction-type (e.g. "Previous Reserve Amount
        # Balance", "WAREHOUSE_DAMAGE", "Subscription Fee") and puts the money in other-amount.
        cells["transaction-type"] = row.amount_description
        cells["other-amount"] = amount
        if row.quantity is not None:
            cells["quantity-purchased"] = str(row.quantity)
    return [cells[c] for c in V1_COLUMNS]


def write_settlement_v1(doc: SettlementDocument) -> str:
    """The legacy V1 flat file (36 columns) for the same settlement as ``doc``.

    Order rows start with a quantity-only row per order item, then one row per price/fee.
    """
    if not doc.rows:
        raise ValueError(f"settlement {doc.settlement_id}: document carries no rows to convert to V1")
    header = [
        doc.settlement_id,
        format_iso(doc.start),
        format_iso(doc.end),
        format_iso(doc.deposit_date),
        f"{doc.total:.2f}",
        doc.currency,
    ]
    lines = ["\t".join(V1_COLUMNS), "\t".join(header + [""] * (len(V1_COLUMNS) - len(header)))]
    seen_items: set[tuple[str, str]] = set()
    for row in doc.rows:
        if row.transaction_type == "Order" and row.order_item_code:
            key = (row.order_id, row.order_item_code)
            if key not in seen_items:
                seen_items.add(key)
                lines.append("\t".join(_v1_row(doc, row, quantity_only=True)))
        lines.append("\t".join(_v1_row(doc, row)))
    return "\n".join(lines) + "\n"
