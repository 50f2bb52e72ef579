"""Voucher building: the fixture's journal worked out by hand, month split, deposit sides."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from _settlement_builders import make_settlement, settlement_from_tsv

from reconciliation.mapping import load_mapping
from reconciliation.pipeline import map_settlement_lines
from reconciliation.vouchers import (
    ROLE_CARRY_OVER,
    ROLE_DEPOSIT,
    UnbalancedVoucherError,
    Voucher,
    VoucherError,
    VoucherLimitError,
    VoucherLine,
    build_vouchers,
    format_minor,
    vouchers_frame,
)

US_BS = ("", "US", "", "", "", "")  # balance-sheet dimensions in the presets: AIT3 = marketplace
US_PL = ("AMZ", "US", "", "", "", "")  # P&L dimensions: AIT2 = channel AMZ, AIT3 = marketplace
US_MCF = ("MCF", "US", "", "", "", "")  # P&L dimensions of a multi-channel (Non-Amazon US) line


@pytest.fixture
def us_fixture(us_v2_tsv: Path):
    return settlement_from_tsv(us_v2_tsv)


def _vouchers(settlement, preset="invoice-clearing"):
    mapping = load_mapping(preset)
    return build_vouchers(settlement, map_settlement_lines(settlement, mapping), mapping)


def _summary(voucher: Voucher) -> list[tuple[str, tuple[str, ...], int, str]]:
    return [(line.account, line.dimensions, line.amount_minor, line.role) for line in voucher.lines]


def test_fixture_voucher_worked_out_by_hand_invoice_clearing(us_fixture):
    [voucher] = _vouchers(us_fixture)
    # Every line of amount a books -a; the deposit books +31.81 to the clearing account.
    # Amazon.com is a marketplace-facilitator marketplace and M3 invoices its orders net (the
    # shipped US tax profile), so the collected and the withheld tax net on the facilitator
    # clearing account (2615); before issue 11 the tax went to 1510 and the withheld tax to 2610,
    # crediting 1510 with tax no M3 invoice carried.
    # 1510 customer receivable (principal, shipping, promotions, refunds):
    #   Order Principal 68.99 + 68.99 + 0.00 (MCF row) = 137.98
    #   Order Shipping 2.99, Promotion Shipping -2.99, Refund Principal -68.99
    #   137.98 + 2.99 - 2.99 - 68.99 = 68.99                              -> credit -68.99
    # 2615 facilitator tax clearing: Tax 4.14 - withheld 4.14 - refunded tax 4.83
    #   + withheld back 4.83 = 0                                          -> no line (nil)
    # 6110 commission: -12.42 - 12.42 + 12.42 (refunded) = -12.42        -> debit 12.42
    # 6120 FBA: -5.84 - 5.84 = -11.68                                    -> debit 11.68
    # 6120 FBA of the MCF order (Non-Amazon US): -10.11, under AIT2 MCF   -> debit 10.11
    # 6130 digital services fee: -0.37 - 0.37 + 0.25 = -0.49             -> debit 0.49
    # 6140 refund commission: -2.48                                      -> debit 2.48
    # 1930 deposit: total-amount 31.81                                   -> debit 31.81
    # debit 12.42 + 11.68 + 10.11 + 0.49 + 2.48 + 31.81 = 68.99 = credit 68.99
    assert _summary(voucher) == [
        ("1510", US_BS, -6899, "settlement"),
        ("6110", US_PL, 1242, "settlement"),
        ("6120", US_PL, 1168, "settlement"),
        ("6120", US_MCF, 1011, "settlement"),
        ("6130", US_PL, 49, "settlement"),
        ("6140", US_PL, 248, "settlement"),
        ("1930", US_BS, 3181, "deposit"),
    ]
    assert voucher.key == "AMZ-10000000001-202410"
    assert voucher.text.startswith("AMZ-10000000001-202410") and len(voucher.text) <= 40
    assert voucher.accounting_date == date(2024, 10, 25)
    assert (voucher.currency, voucher.decimals, voucher.settlement_id) == ("USD", 2, "10000000001")
    assert voucher.debit_minor == voucher.credit_minor == 6899
    assert voucher.lines[0].category == "principal+promotions+refunds+shipping"


def test_fixture_voucher_summary_preset(us_fixture):
    [voucher] = _vouchers(us_fixture, "summary")
    # 3010 revenue: principal 68.99 + 68.99 + 0.00 = 137.98                   -> -137.98
    # 3020 shipping revenue: 2.99                                              -> -2.99
    # 3050 promotions: -2.99                                                   -> +2.99
    # 3090 returns: Refund Principal -68.99                                    -> +68.99
    # 2615 facilitator clearing (US: Amazon owes the tax, not output tax on 2610):
    #   4.14 - 4.14 (withheld) - 4.83 (refunded) + 4.83 = 0                   -> no line
    # fees as in invoice-clearing (the MCF order's FBA fee under MCF); deposit 31.81
    # gross_lines is on, but every revenue and returns account has one side only here
    assert _summary(voucher) == [
        ("3010", US_PL, -13798, "settlement"),
        ("3020", US_PL, -299, "settlement"),
        ("3050", US_PL, 299, "settlement"),
        ("3090", US_PL, 6899, "settlement"),
        ("6110", US_PL, 1242, "settlement"),
        ("6120", US_PL, 1168, "settlement"),
        ("6120", US_MCF, 1011, "settlement"),
        ("6130", US_PL, 49, "settlement"),
        ("6140", US_PL, 248, "settlement"),
        ("1930", US_BS, 3181, "deposit"),
    ]


def test_month_crossing_settlement_gives_two_vouchers_linked_by_carry_over():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 10000, "2024-09-29 10:00:00"),
            ("Order", "ItemFees", "Commission", -1500, "2024-09-30 23:59:59"),
            ("Order", "ItemPrice", "Principal", 5000, "2024-10-01 00:00:00"),
            ("Order", "ItemFees", "Commission", -750, "2024-10-02 08:00:00"),
        ],
        start="2024-09-25 00:00:00",
        end="2024-10-09 00:00:00",
        deposit="2024-10-11 14:00:00",
    )
    september, october = _vouchers(settlement)
    # September: 100.00 principal, -15.00 commission -> month sum 85.00 carried over.
    assert september.key == "AMZ-10000000001-202409"
    assert september.accounting_date == date(2024, 9, 30)
    assert _summary(september) == [
        ("1510", US_BS, -10000, "settlement"),
        ("6110", US_PL, 1500, "settlement"),
        ("1595", US_BS, 8500, ROLE_CARRY_OVER),
    ]
    # October: 50.00 principal, -7.50 commission, carry-over back -85.00, deposit 127.50.
    assert october.key == "AMZ-10000000001-202410"
    assert october.accounting_date == date(2024, 10, 11)
    assert _summary(october) == [
        ("1510", US_BS, -5000, "settlement"),
        ("6110", US_PL, 750, "settlement"),
        ("1595", US_BS, -8500, ROLE_CARRY_OVER),
        ("1930", US_BS, 12750, ROLE_DEPOSIT),
    ]
    carry = sum(l.amount_minor for v in (september, october) for l in v.lines if l.role == ROLE_CARRY_OVER)
    assert carry == 0
    assert september.deposit_minor == 0 and october.deposit_minor == 12750


def test_three_months_each_earlier_month_carried():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1000, "2024-08-31 12:00:00"),
            ("Order", "ItemPrice", "Principal", 2000, "2024-09-15 12:00:00"),
            ("Refund", "ItemPrice", "Principal", -500, "2024-10-01 12:00:00"),
        ],
        deposit="2024-10-03 00:00:00",
    )
    aug, sep, octo = _vouchers(settlement)
    assert [v.accounting_date for v in (aug, sep, octo)] == [date(2024, 8, 31), date(2024, 9, 30), date(2024, 10, 3)]
    assert [l.amount_minor for l in aug.lines] == [-1000, 1000]
    assert [l.amount_minor for l in sep.lines] == [-2000, 2000]
    # October: refund -5.00 books +5.00; take back 10.00 + 20.00; deposit 25.00
    assert [(l.account, l.amount_minor) for l in octo.lines] == [("1510", 500), ("1595", -3000), ("1930", 2500)]


def test_categories_sharing_an_account_are_named_per_month_even_when_one_nets_to_zero():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1000, "2024-09-29 10:00:00"),
            ("Order", "ItemPrice", "Shipping", 299, "2024-09-30 10:00:00"),
            ("Order", "ItemPrice", "Principal", 500, "2024-10-01 10:00:00"),
            ("Order", "Promotion", "Shipping", -200, "2024-10-02 10:00:00"),
            ("Order", "Promotion", "Shipping", 200, "2024-10-03 10:00:00"),
            ("Order", "ItemFees", "Commission", -100, "2024-10-03 10:00:00"),
            ("Order", "ItemFees", "Commission", 100, "2024-10-04 10:00:00"),
        ],
        start="2024-09-25 00:00:00",
        end="2024-10-09 00:00:00",
        deposit="2024-10-11 14:00:00",
    )
    september, october = _vouchers(settlement)
    # September: principal 10.00 + shipping 2.99 on 1510 -> -12.99, carried over.
    assert [(l.account, l.amount_minor, l.category) for l in september.lines] == [
        ("1510", -1299, "principal+shipping"),
        ("1595", 1299, "carry_over"),
    ]
    # October: principal 5.00 and promotions netting 0.00 share 1510 (both named); commission
    # nets to zero on its own account 6110, which is left out; deposit 12.99 + 5.00 = 17.99.
    assert [(l.account, l.amount_minor, l.category) for l in october.lines] == [
        ("1510", -500, "principal+promotions"),
        ("1595", -1299, "carry_over"),
        ("1930", 1799, "amazon_clearing"),
    ]


def test_negative_total_is_a_credit_to_payable_to_amazon():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 2000, "2024-10-18 00:00:00"),
            ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -4500, "2024-10-19 00:00:00"),
            ("other-transaction", "other-transaction", "Subscription Fee", -3999, "2024-10-19 00:00:00"),
        ]
    )
    [voucher] = _vouchers(settlement)
    # total = 20.00 - 45.00 - 39.99 = -64.99 -> credit -64.99 on 2450 payable to Amazon
    assert settlement.total_minor == -6499
    assert _summary(voucher) == [
        ("1510", US_BS, -2000, "settlement"),
        ("6150", US_PL, 3999, "settlement"),
        ("6510", US_PL, 4500, "settlement"),
        ("2450", US_BS, -6499, ROLE_DEPOSIT),
    ]
    assert voucher.deposit_minor == -6499


def test_reserves_go_to_the_balance_sheet_reserve_account():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 3000, "2024-10-18 00:00:00"),
            ("other-transaction", "other-transaction", "Previous Reserve Amount Balance", 1200, "2024-10-10 00:00:00"),
            ("other-transaction", "other-transaction", "Current Reserve Amount", -4200, "2024-10-23 00:00:00"),
        ]
    )
    # total = 30.00 + 12.00 - 42.00 = 0.00: the reserve swallows the payout, no deposit line.
    [voucher] = _vouchers(settlement)
    assert settlement.total_minor == 0
    # reserve: -(12.00 - 42.00) = +30.00 debit (more held back by Amazon)
    assert _summary(voucher) == [("1510", US_BS, -3000, "settlement"), ("1580", US_BS, 3000, "settlement")]
    assert voucher.lines[1].category == "reserves"


def test_lines_are_aggregated_per_account_not_per_row():
    rows = [("Order", "ItemPrice", "Principal", 1999, "2024-10-18 00:00:00")] * 1500
    rows += [("Order", "ItemFees", "Commission", -300, "2024-10-18 00:00:00")] * 1500
    [voucher] = _vouchers(make_settlement(rows))
    # 1500 x 19.99 = 29985.00; 1500 x 3.00 = 4500.00; deposit 25485.00
    assert _summary(voucher) == [
        ("1510", US_BS, -2998500, "settlement"),
        ("6110", US_PL, 450000, "settlement"),
        ("1930", US_BS, 2548500, ROLE_DEPOSIT),
    ]


def test_marketplace_placeholder_resolves_per_settlement():
    settlement = make_settlement(
        [("Order", "ItemPrice", "Principal", 5244, "2024-10-18 00:00:00")], currency="EUR", marketplace="Amazon.de"
    )
    [voucher] = _vouchers(settlement)
    assert [l.dimensions for l in voucher.lines] == [("", "DE", "", "", "", "")] * 2
    assert voucher.text == "AMZ-10000000001-202410 Amazon DE EUR"


def _line(account="1930", amount=100, dims=("",) * 6):
    return VoucherLine(account, dims, amount, "x", "x")


def test_unbalanced_voucher_cannot_be_constructed():
    with pytest.raises(UnbalancedVoucherError) as caught:
        Voucher(
            "AMZ-1-202410",
            "1",
            date(2024, 10, 25),
            "USD",
            2,
            "AMZ-1-202410",
            (_line(amount=1000), _line(account="6110", amount=-999)),
        )
    assert "debit 10.00 USD, credit 9.99 USD (difference 0.01)" in str(caught.value)
    assert (caught.value.debit_minor, caught.value.credit_minor) == (1000, 999)


@pytest.mark.parametrize(
    "text, lines, error, words",
    [
        ("AMZ-1-202410", (_line(account="12345678901", amount=1), _line(amount=-1)), VoucherLimitError, "AIT1"),
        (
            "AMZ-1-202410",
            (_line(amount=1, dims=("", "", "", "", "", "TOOLONGVALUE")), _line(amount=-1)),
            VoucherLimitError,
            "AIT7",
        ),
        ("AMZ-1-202410 " + "x" * 40, (_line(amount=1), _line(amount=-1)), VoucherLimitError, "VTXT"),
        ("Amazon AMZ-1-202410", (_line(amount=1), _line(amount=-1)), VoucherError, "must start with the posting key"),
        (
            "AMZ-1-202410",
            tuple(_line(amount=1) for _ in range(500)) + tuple(_line(amount=-1) for _ in range(500)),
            VoucherLimitError,
            "NLIN",
        ),
        ("AMZ-1-202410", (), VoucherError, "no lines"),
    ],
)
def test_m3_field_limits_are_enforced(text, lines, error, words):
    with pytest.raises(error, match=words):
        Voucher("AMZ-1-202410", "1", date(2024, 10, 25), "USD", 2, text, lines)


def test_format_minor_uses_currency_decimals():
    assert format_minor(-450, 2) == "-4.50"
    assert format_minor(5, 2) == "0.05"
    assert format_minor(-500, 0) == "-500"


def test_vouchers_frame_has_one_sided_rows_per_line(us_fixture):
    vouchers = _vouchers(us_fixture)
    frame = vouchers_frame(vouchers)
    # the seven lines worked out in test_fixture_voucher_worked_out_by_hand_invoice_clearing
    assert len(frame) == 7
    assert frame["debit_minor"].sum() == frame["credit_minor"].sum() == 6899
    assert list(frame.loc[frame["account"] == "1510", ["debit_minor", "credit_minor"]].iloc[0]) == [0, 6899]
    assert list(frame["line"]) == [1, 2, 3, 4, 5, 6, 7]
    assert set(frame["vat_code"]) == {""}  # the US profile has no VAT codes
    assert str(frame["debit_minor"].dtype) == "int64"
    schemas = pytest.importorskip("reconciliation.schemas")
    schemas.VoucherLines.validate(frame)
