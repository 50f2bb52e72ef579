"""The Summary sheet's settlement blocks and per-currency totals, read back with openpyxl.

openpyxl does not compute formulas: the tests assert each formula's text, and work out by hand
(from the fixture file us_v2_usd.tsv and the invoice-clearing mapping) what it sums to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from _settlement_builders import make_settlement

from reconciliation.gates import check_gates
from reconciliation.mapping import load_mapping
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import read_settlement_file
from reconciliation.workbook import BLOCK_HEADERS, SHEET_SUMMARY, write_workbook

MAPPING = load_mapping("invoice-clearing")
GENERATED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
USD_ID, JPY_ID, OFF_ID, HELD_ID = "10000000001", "10000000003", "10000000004", "10000000005"

# us_v2_usd.tsv by GL category (invoice-clearing), worked by hand from its 20 lines:
# principal 68.99 + 68.99 + 0.00 (the MCF order); tax 4.14 (order) - 4.83 (refund); withheld tax
# -4.14 + 4.83; refund principal -68.99; commission -12.42 - 12.42 + 12.42 (refunded); FBA fees
# -5.84 - 5.84 - 10.11; digital services fee -0.37 - 0.37 + 0.25.
USD_BLOCK = [
    ("Sales", "Customer receivable Amazon (principal)", "1510", Decimal("137.98"), 3),
    ("Shipping", "Customer receivable Amazon (shipping)", "1510", Decimal("2.99"), 1),
    ("Tax", "Customer receivable Amazon (tax/VAT)", "1510", Decimal("-0.69"), 2),
    ("Tax", "Output tax withheld by Amazon", "2610", Decimal("0.69"), 2),
    ("Promotions", "Customer receivable Amazon (promotions)", "1510", Decimal("-2.99"), 1),
    ("Refunds", "Customer receivable Amazon (refunds)", "1510", Decimal("-68.99"), 1),
    ("Amazon fees", "Amazon referral commission", "6110", Decimal("-12.42"), 3),
    ("Amazon fees", "FBA fulfilment fees", "6120", Decimal("-21.79"), 3),
    ("Amazon fees", "Other Amazon selling fees", "6130", Decimal("-0.49"), 3),
    ("Amazon fees", "Amazon refund administration fee", "6140", Decimal("-2.48"), 1),
]
ITEMS = ["Sales", "Shipping", "Tax", "Promotions", "Refunds", "Amazon fees", "Reserves", "Reimbursements", "Other"]


def _outcome(settlement, status: str = "dry_run") -> SettlementOutcome:
    mapped = MAPPING.map_settlement(settlement)
    gates = check_gates(settlement, mapped, MAPPING)
    return SettlementOutcome(
        settlement=settlement,
        status="held" if gates.held else status,
        reasons=tuple(gates.reasons),
        mapped=mapped,
        gates=gates,
        vouchers=gates.vouchers,
    )


def _jpy(settlement_id: str = JPY_ID, total_minor: int | None = None, fee: str = "Commission"):
    return make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1200, "2024-10-18 02:58:02", "503-0000000-0000001"),
            ("Order", "ItemFees", fee, -180, "2024-10-18 02:58:02", "503-0000000-0000001"),
        ],
        settlement_id=settlement_id,
        currency="JPY",
        marketplace="Amazon.co.jp",
        total_minor=total_minor,
    )


@pytest.fixture(scope="module")
def usd_settlement(us_v2_tsv: Path):
    [settlement] = read_settlement_file(us_v2_tsv).settlements
    return settlement


@pytest.fixture(scope="module")
def summary(tmp_path_factory, usd_settlement):
    """A two-currency run: the USD fixture (posted as a dry run) and a JPY settlement."""
    path = tmp_path_factory.mktemp("summary") / "run.xlsx"
    write_workbook([_outcome(usd_settlement), _outcome(_jpy())], path, generated_at=GENERATED, mapping=MAPPING)
    return openpyxl.load_workbook(path)[SHEET_SUMMARY]


def _row_of(sheet, text: str, start: int = 1) -> int:
    """The 1-based row whose column A starts with ``text``, at or after ``start``."""
    for row in range(start, sheet.max_row + 1):
        value = sheet.cell(row, 1).value
        if isinstance(value, str) and value.startswith(text):
            return row
    raise AssertionError(f"no row starting {text!r}")


def _block_rows(sheet, first: int, count: int) -> list[tuple]:
    return [tuple(sheet.cell(row, column).value for column in (1, 2, 3, 4, 6)) for row in range(first, first + count)]


def _money(value: object) -> Decimal:
    return Decimal(str(value))


def test_usd_block_lists_each_item_with_its_account_and_ties_to_the_deposit(summary) -> None:
    title = _row_of(summary, f"Settlement {USD_ID}:")
    assert "Amazon.com, USD, 2024-10-09 to 2024-10-23 (UTC), deposit 2024-10-25" in summary.cell(title, 1).value
    assert "dry run" in summary.cell(title, 1).value  # the status in words
    assert [summary.cell(title + 1, c).value for c in range(1, 7)] == BLOCK_HEADERS
    first = title + 2
    rows = _block_rows(summary, first, len(USD_BLOCK))
    assert [(i, d, a, _money(v), n) for i, d, a, v, n in rows] == USD_BLOCK
    assert all(summary.cell(r, 5).value == "USD" for r in range(first, first + len(USD_BLOCK)))
    assert summary.cell(first, 4).number_format == '#,##0.00 "USD"'

    total_row = first + len(USD_BLOCK)
    assert summary.cell(total_row, 1).value == "Total of the items"
    assert summary.cell(total_row, 4).value == f"=SUM(D{first}:D{total_row - 1})"
    # the written figures sum, by hand, to the file's total and the voucher's deposit line: 31.81
    assert sum(_money(v) for _, _, _, v, _ in rows) == Decimal("31.81")
    assert (summary.cell(total_row + 1, 1).value, _money(summary.cell(total_row + 1, 4).value)) == (
        "Total Amazon reported",
        Decimal("31.81"),
    )
    deposit = [summary.cell(total_row + 2, c).value for c in (1, 2, 3, 4)]
    assert deposit[:3] == ["Deposit line of the vouchers", "Amazon deposit 2024-10-25", "1930"]
    assert _money(deposit[3]) == Decimal("31.81")
    checks = [(summary.cell(r, 1).value, summary.cell(r, 4).value) for r in (total_row + 3, total_row + 4)]
    t, a, d = total_row, total_row + 1, total_row + 2
    assert checks == [
        ("Check: items - Amazon's total", f'=IF(ROUND(D{t}-D{a},2)=0,"OK",ROUND(D{t}-D{a},2))'),
        ("Check: items - deposit line", f'=IF(ROUND(D{t}-D{d},2)=0,"OK",ROUND(D{t}-D{d},2))'),
    ]


def test_cached_values_are_exact_for_readers_that_do_not_calculate(tmp_path: Path, usd_settlement) -> None:
    path = tmp_path / "cached.xlsx"
    write_workbook([_outcome(usd_settlement)], path, mapping=MAPPING)
    sheet = openpyxl.load_workbook(path, data_only=True)[SHEET_SUMMARY]
    total_row = _row_of(sheet, "Total of the items")
    assert _money(sheet.cell(total_row, 4).value) == Decimal("31.81")
    assert [sheet.cell(r, 4).value for r in (total_row + 3, total_row + 4)] == ["OK", "OK"]
    usd = _row_of(sheet, "All settlements in USD") + 2  # the per-currency totals' cached values, by hand
    figures = {sheet.cell(r, 1).value: sheet.cell(r, 4).value for r in range(usd, usd + len(ITEMS) + 5)}
    assert {k: _money(v) for k, v in figures.items() if k in ("Sales", "Tax", "Amazon fees", "Reserves")} == {
        "Sales": Decimal("137.98"),
        "Tax": Decimal("0.00"),  # -0.69 + 0.69
        "Amazon fees": Decimal("-37.18"),  # -12.42 - 21.79 - 0.49 - 2.48
        "Reserves": Decimal("0"),
    }
    assert _money(figures["Total of the items"]) == _money(figures["Total Amazon reported"]) == Decimal("31.81")
    assert (figures["Check: items - Amazon's total"], figures["Not in vouchers"]) == ("OK", 0)


def test_per_currency_totals_are_formulas_over_the_blocks(summary) -> None:
    heading = _row_of(summary, "Totals of the run per currency")
    jpy_title = _row_of(summary, f"Settlement {JPY_ID}:")
    first_block = _row_of(summary, f"Settlement {USD_ID}:")
    last_block = heading - 1  # the blank row after the last block closes the range
    assert first_block < jpy_title < heading

    def sumifs(label: str, currency: str) -> str:
        d, a, e = (f"${c}${first_block}:${c}${last_block}" for c in "DAE")
        return f'=SUMIFS({d},{a},"{label}",{e},"{currency}")'

    for currency, decimals in (("JPY", 0), ("USD", 2)):  # in currency order
        start = _row_of(summary, f"All settlements in {currency}", heading)
        first = start + 2
        assert [summary.cell(first + n, 1).value for n in range(len(ITEMS))] == ITEMS
        assert [summary.cell(first + n, 4).value for n in range(len(ITEMS))] == [sumifs(i, currency) for i in ITEMS]
        total = first + len(ITEMS)
        assert summary.cell(total, 4).value == f"=SUM(D{first}:D{total - 1})"
        assert summary.cell(total + 1, 4).value == sumifs("Total Amazon reported", currency)
        assert summary.cell(total + 2, 4).value == (
            f'=IF(ROUND(D{total}-D{total + 1},{decimals})=0,"OK",ROUND(D{total}-D{total + 1},{decimals}))'
        )
        assert summary.cell(total + 3, 4).value == sumifs("Deposit line of the vouchers", currency)
        assert summary.cell(total + 4, 4).value == f"=D{total + 1}-D{total + 3}"

    # What the JPY SUMIFS pick from the blocks, by hand: sales 1200, commission -180, Amazon's total 1020.
    picked = {
        summary.cell(r, 1).value: summary.cell(r, 4).value
        for r in range(first_block, last_block + 1)
        if summary.cell(r, 5).value == "JPY"
    }
    assert picked == {
        "Sales": 1200,
        "Amazon fees": -180,
        "Total Amazon reported": 1020,
        "Deposit line of the vouchers": 1020,
    }


def test_an_inconsistent_total_shows_the_difference_and_a_held_settlement_no_deposit(tmp_path: Path) -> None:
    # Amazon's total says 1000 JPY while the lines sum to 1020: the check shows +20.
    off = _outcome(_jpy(OFF_ID, total_minor=1000))
    # An unknown fee: the settlement is held, has no vouchers, and the fee is not mapped.
    held = _outcome(_jpy(HELD_ID, fee="MysteryFee"))
    assert held.status == "held" and not held.vouchers
    path = tmp_path / "checks.xlsx"
    write_workbook([off, held], path, mapping=MAPPING)
    sheet = openpyxl.load_workbook(path, data_only=True)[SHEET_SUMMARY]
    off_total = _row_of(sheet, "Total of the items", _row_of(sheet, f"Settlement {OFF_ID}:"))
    assert sheet.cell(off_total + 3, 4).value == 20  # items 1020 - Amazon's 1000 (cached value)
    held_title = _row_of(sheet, f"Settlement {HELD_ID}:")
    assert "Held: not posted" in sheet.cell(held_title, 1).value
    rows = _block_rows(sheet, held_title + 2, 2)
    assert rows == [
        ("Sales", "Customer receivable Amazon (principal)", "1510", 1200, 1),
        ("Other", "Not mapped to an account yet (see Exceptions)", None, -180, 1),
    ]
    held_total = held_title + 4
    assert sheet.cell(held_total + 2, 2).value.startswith("No vouchers")
    assert sheet.cell(held_total + 2, 4).value is None
    assert sheet.cell(held_total + 3, 4).value == "OK"  # the lines do sum to Amazon's total
    assert sheet.cell(held_total + 4, 4).value == "No vouchers"


INTERNAL_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")  # snake_case: referral_commission, dry_run (not file names)


def test_no_internal_names_on_the_summary(tmp_path: Path, usd_settlement) -> None:
    path = tmp_path / "words.xlsx"
    # no mapping given: the descriptions come from the vouchers or are made from the category names
    write_workbook([_outcome(usd_settlement), _outcome(_jpy(HELD_ID, fee="MysteryFee"))], path)
    sheet = openpyxl.load_workbook(path)[SHEET_SUMMARY]
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "Principal" in texts or "Customer receivable Amazon (principal)" in texts
    found = [t for t in texts if not t.startswith("=") and (INTERNAL_NAME.search(t) or "+" in t.split(" ")[0])]
    assert not found
    assert INTERNAL_NAME.search("principal+promotions+shipping+tax referral_commission")  # the pattern bites
