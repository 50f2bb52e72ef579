"""Small settlement files built by hand for the parse and validation tests."""

from __future__ import annotations

from pathlib import Path

from conftest import shared_dir

from reconciliation.model import Settlement
from reconciliation.parse import SettlementFileError, parse_settlement_bytes
from sandbox.generator import V1_COLUMNS, V2_COLUMNS

SHARED = shared_dir()
FIXTURE = SHARED / "fixtures" / "settlements" / "us_v2_usd.tsv"
GOLDEN_ROW_SHAPES = Path(__file__).parent / "golden" / "row_shapes"
UTC = "UTC"
AMOUNT_COL, POSTED_TIME_COL = 15, 18  # 1-based positions in the V2 header

# The 24 V2 columns and the 36 legacy V1 columns in file order (sp-api.md §1.2).
V2_HEADER = list(V2_COLUMNS)
V1_HEADER = list(V1_COLUMNS)
V1_HEADER_33 = [c for c in V1_HEADER if not c.startswith("promotion-")]


def tsv(header: list[str], rows: list[dict[str, str]]) -> str:
    """Header line plus one line per row; unnamed fields are empty, as in Amazon's files."""
    unknown = {key for row in rows for key in row} - set(header)
    assert not unknown, unknown
    lines = ["\t".join(header)] + ["\t".join(row.get(c, "") for c in header) for row in rows]
    return "\n".join(lines) + "\n"


def summary(settlement_id: str, start: str, end: str, deposit: str, total: str, currency: str) -> dict[str, str]:
    return {
        "settlement-id": settlement_id,
        "settlement-start-date": start,
        "settlement-end-date": end,
        "deposit-date": deposit,
        "total-amount": total,
        "currency": currency,
    }


def v2_row(
    settlement_id: str, amount_type: str, description: str, amount: str, posted: str, posted_time: str, **extra: str
) -> dict[str, str]:
    row = {
        "settlement-id": settlement_id,
        "transaction-type": "Order",
        "order-id": "302-1111111-2222222",
        "merchant-order-id": "302-1111111-2222222",
        "marketplace-name": "Amazon.de",
        "amount-type": amount_type,
        "amount-description": description,
        "amount": amount,
        "fulfillment-id": "AFN",
        "posted-date": posted,
        "posted-date-time": posted_time,
        "order-item-code": "51234567890123",
        "sku": "SKU-1",
        "quantity-purchased": "1",
    }
    row.update({k.replace("_", "-"): v for k, v in extra.items()})
    return row


def eur_decimal_comma_file() -> str:
    """DE account, EUR: DD.MM.YYYY dates and decimal comma. 19,99 - 3,00 - 4,65 = 12,34."""
    sid = "20000000002"
    posted, posted_time = "14.10.2024", "14.10.2024 04:15:46 UTC"
    return tsv(
        V2_HEADER,
        [
            summary(
                sid, "11.10.2024 08:59:52 UTC", "25.10.2024 08:59:52 UTC", "27.10.2024 08:59:52 UTC", "12,34", "EUR"
            ),
            v2_row(sid, "ItemPrice", "Principal", "19,99", posted, posted_time),
            v2_row(sid, "ItemFees", "Commission", "-3,00", posted, posted_time),
            v2_row(
                sid,
                "other-transaction",
                "Current Reserve Amount",
                "-4,65",
                posted,
                posted_time,
                transaction_type="other-transaction",
                order_id="",
                merchant_order_id="",
                order_item_code="",
                sku="",
                quantity_purchased="",
            ),
        ],
    )


def gbp_dot_file() -> str:
    """UK marketplace of the same EU account: EU dates but decimal dot. 260.00 - 6.57 = 253.43."""
    sid = "20000000003"
    posted, posted_time = "15.11.2024", "15.11.2024 10:00:37 UTC"
    return tsv(
        V2_HEADER,
        [
            summary(
                sid, "15.11.2024 08:59:45 UTC", "29.11.2024 08:59:45 UTC", "01.12.2024 08:59:45 UTC", "253.43", "GBP"
            ),
            v2_row(sid, "ItemPrice", "Principal", "260.00", posted, posted_time, marketplace_name="Amazon.co.uk"),
            v2_row(sid, "ItemFees", "Commission", "-6.57", posted, posted_time, marketplace_name="Amazon.co.uk"),
        ],
    )


V1_SID = "30000000004"
V1_POSTED = "2025-10-10T10:20:02+00:00"


def _v1_base(**fields: str) -> dict[str, str]:
    row = {
        "settlement-id": V1_SID,
        "transaction-type": "Order",
        "order-id": "702-1234567-7654321",
        "merchant-order-id": "702-1234567-7654321",
        "marketplace-name": "Amazon.ca",
        "fulfillment-id": "AFN",
        "posted-date": V1_POSTED,
        "order-item-code": "61234567890123",
        "sku": "SKU-CA",
    }
    row.update(fields)
    return row


def v1_file(with_promotions: bool) -> str:
    """Legacy V1 (36 or 33 columns), ISO dates with offset, one column per amount kind.

    Amounts: 25.00 - 3.75 (- 1.00 promotion) - 0.25 + 10.00 - 2.00 + 0.40 - 0.10
    = 28.30 with the promotion row, 29.30 without.
    """
    rows = [
        summary(
            V1_SID,
            "2025-10-09T22:07:18+00:00",
            "2025-10-23T22:07:18+00:00",
            "2025-10-25T22:07:18+00:00",
            "28.30" if with_promotions else "29.30",
            "CAD",
        ),
        _v1_base(**{"quantity-purchased": "1"}),  # line 3: quantity only
        _v1_base(**{"price-type": "Principal", "price-amount": "25.00"}),  # line 4
        _v1_base(**{"item-related-fee-type": "Commission", "item-related-fee-amount": "-3.75"}),  # line 5
    ]
    if with_promotions:
        rows.append(
            _v1_base(
                **{
                    "promotion-type": "Shipping",
                    "promotion-amount": "-1.00",  # line 6
                    "promotion-id": "Free shipping promo",
                }
            )
        )
    rows += [
        _v1_base(
            **{
                "transaction-type": "ServiceFee",
                "misc-fee-amount": "-0.25",
                "order-id": "",
                "posted-date": "2025-10-11T01:30:00+02:00",
            }
        ),
        _v1_base(
            **{
                "transaction-type": "Previous Reserve Amount Balance",
                "other-amount": "10.00",
                "order-id": "",
                "sku": "",
            }
        ),
        # One row carrying two kinds at once: both become lines, shipment fee first (column order).
        _v1_base(
            **{
                "transaction-type": "Inbound Transportation Fee",
                "shipment-fee-type": "FBA transportation fee",
                "shipment-fee-amount": "-2.00",
                "other-fee-amount": "0.40",
                "other-fee-reason-description": "TaxAmount",
            }
        ),
        _v1_base(**{"direct-payment-type": "Successful charge", "direct-payment-amount": "-0.10   "}),
    ]
    return tsv(V1_HEADER if with_promotions else V1_HEADER_33, rows)


# --- parsing text and editing the US fixture ------------------------------------------------


def fixture_lines() -> list[str]:
    return FIXTURE.read_text().split("\n")


def parse_text(text: str, source: str = "us.tsv") -> tuple[list[Settlement], list[SettlementFileError]]:
    result = parse_settlement_bytes(text.encode("utf-8"), source)
    return result.settlements, result.errors


def only_error(text: str, source: str = "us.tsv") -> SettlementFileError:
    settlements, errors = parse_text(text, source)
    assert settlements == []
    assert len(errors) == 1, errors
    return errors[0]


def with_field_text(text: str, line_no: int, column: int, value: str) -> str:
    """``text`` with one field (1-based line and column) replaced."""
    lines = text.split("\n")
    fields = lines[line_no - 1].split("\t")
    fields[column - 1] = value
    lines[line_no - 1] = "\t".join(fields)
    return "\n".join(lines)


def with_field(line_no: int, column: int, value: str) -> str:
    """The US fixture with one field replaced."""
    return with_field_text(FIXTURE.read_text(), line_no, column, value)
