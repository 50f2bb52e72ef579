"""Order-by-order reconciliation against M3 invoices: each category worked out by hand."""

from __future__ import annotations

import pandas as pd

from reconciliation.matching import reconcile_orders


def _lines(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["order_id", "transaction_type", "amount_type", "marketplace_name", "amount_minor"]
    )
    return frame.assign(amount_description="")


def _invoices(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["orno", "cuor", "ivno", "gross_minor"])
    return frame.assign(net_minor=frame["gross_minor"], tax_minor=0, currency="USD", ivdt=pd.Timestamp("2024-10-20"))


def test_each_category_from_hand_worked_amounts() -> None:
    lines = _lines(
        [
            # 111-A: 68.99 principal + 4.14 tax - 4.14 withheld - 12.42 commission -> sales 68.99
            ("111-A", "Order", "ItemPrice", "Amazon.com", 6899),
            ("111-A", "Order", "ItemPrice", "Amazon.com", 414),
            ("111-A", "Order", "ItemWithheldTax", "Amazon.com", -414),
            ("111-A", "Order", "ItemFees", "Amazon.com", -1242),
            # 111-B: 68.99 + 2.99 shipping - 2.99 promotion = 68.99; M3 invoiced 70.00 -> off by -1.01
            ("111-B", "Order", "ItemPrice", "Amazon.com", 6899),
            ("111-B", "Order", "ItemPrice", "Amazon.com", 299),
            ("111-B", "Order", "Promotion", "Amazon.com", -299),
            # 111-C: sold, nothing in M3
            ("111-C", "Order", "ItemPrice", "Amazon.com", 2500),
            # 111-D: refund of 68.99 + 4.83 tax - 4.83 withheld = -68.99, M3 has no credit note
            ("111-D", "Refund", "ItemPrice", "Amazon.com", -6899),
            ("111-D", "Refund", "ItemPrice", "Amazon.com", -483),
            ("111-D", "Refund", "ItemWithheldTax", "Amazon.com", 483),
            # 111-F: refund with a matching credit note
            ("111-F", "Refund", "ItemPrice", "Amazon.com", -1000),
            # S01 multi-channel order: fulfilment only, never reconciled
            ("S01-X", "Order", "ItemPrice", "Non-Amazon US", 0),
            # reserve line without an order id
            ("", "other-transaction", "other-transaction", "", -5000),
        ]
    )
    invoices = _invoices(
        [
            ("1000001", "111-A", "900001", 6899),
            ("1000002", "111-B", "900002", 7000),
            ("1000005", "111-E", "900005", 1500),  # invoiced, not settled yet
            ("1000006", "111-F", "900006", -1000),  # credit note
        ]
    )
    result = reconcile_orders(lines, invoices, tolerance_minor=1)
    by_order = result.orders.set_index("order_id")

    assert by_order.loc["111-A", "category"] == "matched"
    assert by_order.loc["111-A", "difference_minor"] == 0
    assert by_order.loc["111-B", "category"] == "amount_mismatch"
    assert by_order.loc["111-B", "difference_minor"] == 6899 - 7000
    assert by_order.loc["111-C", "category"] == "missing_in_m3"
    assert by_order.loc["111-C", "settled_minor"] == 2500
    assert by_order.loc["111-D", "category"] == "refund_without_credit"
    assert by_order.loc["111-D", "refunded_minor"] == -6899
    assert by_order.loc["111-E", "category"] == "not_settled"
    assert by_order.loc["111-E", "difference_minor"] == -1500
    assert by_order.loc["111-F", "category"] == "matched"
    assert "S01-X" not in by_order.index and "" not in by_order.index
    assert result.counts == {
        "matched": 2,
        "amount_mismatch": 1,
        "missing_in_m3": 1,
        "not_settled": 1,
        "refund_without_credit": 1,
    }
    assert by_order.loc["111-B", "m3_orders"] == "1000002"


def test_tolerance_is_inclusive_and_configurable() -> None:
    lines = _lines([("111-A", "Order", "ItemPrice", "Amazon.com", 1000)])
    assert reconcile_orders(lines, _invoices([("1", "111-A", "9", 1001)]), tolerance_minor=1).counts["matched"] == 1
    assert (
        reconcile_orders(lines, _invoices([("1", "111-A", "9", 1002)]), tolerance_minor=1).counts["amount_mismatch"]
        == 1
    )
    assert reconcile_orders(lines, _invoices([("1", "111-A", "9", 1002)]), tolerance_minor=5).counts["matched"] == 1


def test_two_invoices_for_one_order_are_summed_and_listed() -> None:
    lines = _lines([("111-A", "Order", "ItemPrice", "Amazon.com", 3000)])
    invoices = _invoices([("1000001", "111-A", "900002", 1000), ("1000001", "111-A", "900001", 2000)])
    row = reconcile_orders(lines, invoices).orders.set_index("order_id").loc["111-A"]
    assert row["category"] == "matched"
    assert row["invoiced_minor"] == 3000
    assert row["invoices"] == "900001 900002"


def test_tolerance_in_minor_units_rounds_down_per_currency() -> None:
    from decimal import Decimal

    from reconciliation.matching import tolerance_minor

    assert tolerance_minor(Decimal("0.01"), 2) == 1  # one cent
    assert tolerance_minor(Decimal("0.01"), 0) == 0  # JPY: no part of a yen to allow
    assert tolerance_minor(Decimal("5"), 0) == 5
    assert tolerance_minor(Decimal("0.015"), 2) == 1  # within 1.5 cents: 1 cent is, 2 are not
    assert tolerance_minor(Decimal("0"), 2) == 0


def test_orders_sorted_by_id_across_both_sides_with_each_document_listed_once() -> None:
    lines = _lines(
        [
            ("111-C", "Order", "ItemPrice", "Amazon.com", 1000),
            ("111-A", "Order", "ItemPrice", "Amazon.com", 2000),
            ("111-A", "Refund", "ItemPrice", "Amazon.com", -500),
        ]
    )
    invoices = _invoices(
        [
            ("1000002", "111-B", "900003", 700),  # invoiced, not settled: sorts between A and C
            ("1000001", "111-A", "900009", -500),  # credit note of the same M3 order as the invoice below
            ("1000001", "111-A", "900002", 2000),
            ("1000003", "111-C", "900004", 1000),
        ]
    )
    orders = reconcile_orders(lines, invoices).orders

    assert orders["order_id"].tolist() == ["111-A", "111-B", "111-C"]
    assert orders["category"].tolist() == ["matched", "not_settled", "matched"]
    assert orders["settled_minor"].tolist() == [2000, 0, 1000]
    assert orders["refunded_minor"].tolist() == [-500, 0, 0]
    assert orders["invoiced_minor"].tolist() == [2000, 700, 1000]
    assert orders["credited_minor"].tolist() == [-500, 0, 0]
    assert orders["difference_minor"].tolist() == [0, -700, 0]
    assert orders["m3_orders"].tolist() == ["1000001", "1000002", "1000003"]  # 1000001 once, not twice
    assert orders["invoices"].tolist() == ["900002 900009", "900003", "900004"]
    assert {c: str(t) for c, t in orders.dtypes.items()} == {
        "order_id": "str",
        "category": "str",
        "settled_minor": "int64",
        "invoiced_minor": "int64",
        "difference_minor": "int64",
        "refunded_minor": "int64",
        "credited_minor": "int64",
        "m3_orders": "str",
        "invoices": "str",
        "settled_in": "str",
        "invoice_date": "datetime64[us]",
    }


def test_empty_settlement_and_no_invoices_give_no_orders() -> None:
    result = reconcile_orders(
        _lines([]).astype({"amount_minor": "int64"}), _invoices([]).astype({"gross_minor": "int64"})
    )
    assert result.orders.empty
    assert list(result.orders.columns)[:2] == ["order_id", "category"]
    assert result.counts == {
        "matched": 0,
        "amount_mismatch": 0,
        "missing_in_m3": 0,
        "not_settled": 0,
        "refund_without_credit": 0,
    }


def test_an_invoice_settled_in_another_settlement_is_not_listed_as_not_settled() -> None:
    """Settlement S1 sells 111-A; M3 invoiced 111-A, 111-B and 111-C. 111-B was settled by S2 (the
    run's other settlement), 111-C by nothing: only 111-C is not settled; 111-B belongs to S2."""
    lines = _lines([("111-A", "Order", "ItemPrice", "Amazon.com", 1000)])
    invoices = _invoices([("1", "111-A", "901", 1000), ("2", "111-B", "902", 2000), ("3", "111-C", "903", 3000)])
    elsewhere = pd.DataFrame({"order_id": ["111-B", "111-Z"], "settlement_id": ["S2", "S2"]})
    result = reconcile_orders(lines, invoices, settled_elsewhere=elsewhere, settlement_id="S1")
    by_order = result.orders.set_index("order_id")

    assert by_order.index.tolist() == ["111-A", "111-C"]  # 111-Z: settled elsewhere, never invoiced
    assert by_order.loc["111-A", "category"] == "matched"
    assert by_order.loc["111-A", "settled_in"] == "S1"
    assert by_order.loc["111-C", "category"] == "not_settled"
    assert by_order.loc["111-C", "settled_in"] == ""
    assert by_order.loc["111-C", "invoice_date"] == pd.Timestamp("2024-10-20")
    assert result.counts["not_settled"] == 1 and result.counts["matched"] == 1


def test_a_refund_of_an_order_sold_elsewhere_differs_by_the_refund_once() -> None:
    """105.98 sold and invoiced earlier (settlement S0, recorded), refunded in S1, no credit note:
    the difference is -105.98 (the refund), not -211.96 (refund plus the invoice again)."""
    lines = _lines([("111-R", "Refund", "ItemPrice", "Amazon.com", -10598)])
    invoices = _invoices([("1", "111-R", "901", 10598)])
    elsewhere = pd.DataFrame({"order_id": ["111-R"], "settlement_id": ["S0"]})
    row = (
        reconcile_orders(lines, invoices, settled_elsewhere=elsewhere, settlement_id="S1")
        .orders.set_index("order_id")
        .loc["111-R"]
    )
    assert row["category"] == "refund_without_credit"
    assert row["difference_minor"] == -10598
    assert row["invoiced_minor"] == 10598
    assert row["settled_in"] == "S0"  # where it was sold; S1 only refunded it

    # Without anything recorded the difference is the same: the sale is not in this settlement.
    alone = reconcile_orders(lines, invoices).orders.set_index("order_id").loc["111-R"]
    assert alone["difference_minor"] == -10598


def test_an_order_sold_and_refunded_in_one_settlement_compares_both() -> None:
    """Sold 50.00 and refunded 20.00 here; M3 invoiced 50.00 and credited nothing: -20.00."""
    lines = _lines(
        [("111-S", "Order", "ItemPrice", "Amazon.com", 5000), ("111-S", "Refund", "ItemPrice", "Amazon.com", -2000)]
    )
    row = reconcile_orders(lines, _invoices([("1", "111-S", "901", 5000)])).orders.iloc[0]
    assert row["category"] == "refund_without_credit"
    assert row["difference_minor"] == -2000


def test_settled_orders_are_the_sold_orders_once() -> None:
    from reconciliation.matching import settled_orders

    lines = _lines(
        [
            ("111-A", "Order", "ItemPrice", "Amazon.com", 1000),
            ("111-A", "Order", "ItemPrice", "Amazon.com", 100),
            ("111-R", "Refund", "ItemPrice", "Amazon.com", -500),  # refunded only: sold elsewhere
            ("111-F", "Order", "ItemFees", "Amazon.com", -150),  # fees only: no sale
            ("S01-X", "Order", "ItemPrice", "Non-Amazon US", 0),
        ]
    )
    found = settled_orders(lines, "S1")
    assert found.to_dict("records") == [{"order_id": "111-A", "settlement_id": "S1"}]


def test_legacy_v1_withheld_tax_item_fees_net_the_tax_like_item_withheld_tax() -> None:
    """A V1 facilitator order: principal 20.00 + tax 1.60, and the withheld tax as the item fee
    MarketplaceFacilitatorTax-Principal -1.60: the buyer paid M3's net invoice of 20.00 (matched);
    a fee (commission -3.00) is never a sale."""
    lines = pd.DataFrame(
        [
            ("111-V", "Order", "ItemPrice", "Principal", 2000),
            ("111-V", "Order", "ItemPrice", "Tax", 160),
            ("111-V", "Order", "ItemFees", "MarketplaceFacilitatorTax-Principal", -160),
            ("111-V", "Order", "ItemFees", "Commission", -300),
        ],
        columns=["order_id", "transaction_type", "amount_type", "amount_description", "amount_minor"],
    ).assign(marketplace_name="Amazon.com")
    result = reconcile_orders(lines, _invoices([("M-V", "111-V", "1", 2000)]))
    (order,) = result.orders.to_dict("records")
    assert (order["category"], order["settled_minor"], order["difference_minor"]) == ("matched", 2000, 0)
