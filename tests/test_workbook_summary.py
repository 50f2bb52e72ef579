"""The Summary sheet's settlement columns and per-currency totals, read back with openpyxl.

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
from reconciliation.workbook import BLOCK_HEADERS, SETTLEMENTS_ACROSS, SHEET_SUMMARY, write_workbook

MAPPING = load_mapping("invoice-clearing")
GENERATED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
USD_ID, JPY_ID, OFF_ID, HELD_ID = "10000000001", "10000000003", "10000000004", "10000000005"

# us_v2_usd.tsv by GL category (invoice-clearing), worked by hand from its 20 lines:
# principal 68.99 + 68.99 + 0.00 (the MCF order); tax 4.14 (order) - 4.83 (refund); withheld tax
# -4.14 + 4.83; refund principal -68.99; commission -12.42 - 12.42 + 12.42 (refunded); FBA fees
# -5.84 - 5.84 - 10.11; digital services fee -0.37 - 0.37 + 0.25.
USD_ROWS = [
    ("Sales", "Customer receivable Amazon (principal)", "1510", Decimal("137.98")),
    ("Shipping", "Customer receivable Amazon (shipping)", "1510", Decimal("2.99")),
    ("Tax", "Customer receivable Amazon (tax/VAT)", "1510", Decimal("-0.69")),
    ("Tax", "Output tax withheld by Amazon", "2610", Decimal("0.69")),
    ("Promotions", "Customer receivable Amazon (promotions)", "1510", Decimal("-2.99")),
    ("Refunds", "Customer receivable Amazon (refunds)", "1510", Decimal("-68.99")),
    ("Amazon fees", "Amazon referral commission", "6110", Decimal("-12.42")),
    ("Amazon fees", "FBA fulfilment fees", "6120", Decimal("-21.79")),
    ("Amazon fees", "Other Amazon selling fees", "6130", Decimal("-0.49")),
    ("Amazon fees", "Amazon refund administration fee", "6140", Decimal("-2.48")),
]
TOTAL_ROWS = [
    "Total of the items",
    "Total Amazon reported",
    "Check: items - Amazon's total",
    "Deposit line of the vouchers",
    "Check: items - deposit line",
]
# The items the two-currency run has (USD: the rows above; JPY: sales and a commission), in
# the Summary's item order; it has no reserves, reimbursements or other items.
RUN_ITEMS = ["Sales", "Shipping", "Tax", "Promotions", "Refunds", "Amazon fees"]
SUMS, FIRST_SETTLEMENT = "D", 5  # the groups' sum column; the first settlement's column (1-based)


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
def summary_path(tmp_path_factory, usd_settlement) -> Path:
    """A two-currency run: the USD fixture (posted as a dry run) and a JPY settlement."""
    path = tmp_path_factory.mktemp("summary") / "run.xlsx"
    write_workbook([_outcome(usd_settlement), _outcome(_jpy())], path, generated_at=GENERATED, mapping=MAPPING)
    return path


@pytest.fixture(scope="module")
def summary(summary_path: Path):
    return openpyxl.load_workbook(summary_path)[SHEET_SUMMARY]


@pytest.fixture(scope="module")
def cached(summary_path: Path):
    """The same sheet's cached values (what a reader that does not calculate shows)."""
    return openpyxl.load_workbook(summary_path, data_only=True)[SHEET_SUMMARY]


def _row_of(sheet, text: str, start: int = 1) -> int:
    """The 1-based row whose column A starts with ``text``, at or after ``start``."""
    for row in range(start, sheet.max_row + 1):
        value = sheet.cell(row, 1).value
        if isinstance(value, str) and value.startswith(text):
            return row
    raise AssertionError(f"no row starting {text!r}")


def _rows_of(sheet, first: int, last: int) -> dict[str, int]:
    """Column A's label -> 1-based row, in rows ``first`` to ``last``."""
    return {sheet.cell(r, 1).value: r for r in range(first, last + 1) if sheet.cell(r, 1).value}


def _money(value: object) -> Decimal:
    return Decimal(str(value))


def test_usd_column_lists_each_item_with_its_account_and_ties_to_the_deposit(summary) -> None:
    title = _row_of(summary, "Settlements in USD:")
    assert summary.cell(title, 1).value == "Settlements in USD: items by M3 account (amounts in USD)"
    header = [summary.cell(title + 1, c).value for c in range(1, FIRST_SETTLEMENT + 1)]
    assert header == [*BLOCK_HEADERS, f"{USD_ID}\nAmazon.com\n2024-10-09 to\n2024-10-23"]
    assert summary.cell(title + 1, FIRST_SETTLEMENT + 1).value is None  # the run's one USD settlement
    first = title + 2
    rows = [
        (*(summary.cell(r, c).value for c in (1, 2, 3)), _money(summary.cell(r, FIRST_SETTLEMENT).value))
        for r in range(first, first + len(USD_ROWS))
    ]
    assert rows == USD_ROWS
    assert summary.cell(first, FIRST_SETTLEMENT).number_format == "#,##0.00"  # the currency is in the title
    # beside the labels, the group's sum of each row (here over its one settlement's column E)
    assert [summary.cell(r, 4).value for r in (first, first + 1)] == [
        f"=SUM(E{first}:E{first})",
        f"=SUM(E{first + 1}:E{first + 1})",
    ]

    total = first + len(USD_ROWS)
    assert [summary.cell(total + n, 1).value for n in range(5)] == TOTAL_ROWS
    assert summary.cell(total, FIRST_SETTLEMENT).value == f"=SUM(E{first}:E{total - 1})"
    # the written figures sum, by hand, to the file's total and the voucher's deposit line: 31.81
    assert sum(r[3] for r in rows) == Decimal("31.81")
    amazon, deposit = total + 1, total + 3
    assert _money(summary.cell(amazon, FIRST_SETTLEMENT).value) == Decimal("31.81")
    assert summary.cell(deposit, 3).value == "1930"  # the deposit line's account
    assert _money(summary.cell(deposit, FIRST_SETTLEMENT).value) == Decimal("31.81")
    assert [summary.cell(r, FIRST_SETTLEMENT).value for r in (total + 2, total + 4)] == [
        f'=IF(ROUND(E{total}-E{amazon},2)=0,"OK",ROUND(E{total}-E{amazon},2))',
        f'=IF(ROUND(E{total}-E{deposit},2)=0,"OK",ROUND(E{total}-E{deposit},2))',
    ]


def test_cached_values_are_exact_for_readers_that_do_not_calculate(cached) -> None:
    title = _row_of(cached, "Settlements in USD:")
    total = _row_of(cached, "Total of the items", title)
    assert _money(cached.cell(total, FIRST_SETTLEMENT).value) == Decimal("31.81")
    assert [cached.cell(r, FIRST_SETTLEMENT).value for r in (total + 2, total + 4)] == ["OK", "OK"]
    heading = _row_of(cached, "Totals of the run per currency")
    assert [cached.cell(heading + 1, c).value for c in (1, 4, 5)] == ["Item", "All in JPY", "All in USD"]
    rows = _rows_of(cached, heading + 2, heading + 2 + len(RUN_ITEMS) + 4)
    assert list(rows) == [*RUN_ITEMS, *TOTAL_ROWS[:4], "Not in vouchers"]
    usd = {label: cached.cell(r, 5).value for label, r in rows.items()}  # the USD column's cached values, by hand
    assert {k: _money(usd[k]) for k in ("Sales", "Tax", "Amazon fees")} == {
        "Sales": Decimal("137.98"),
        "Tax": Decimal("0.00"),  # -0.69 + 0.69
        "Amazon fees": Decimal("-37.18"),  # -12.42 - 21.79 - 0.49 - 2.48
    }
    assert _money(usd["Total of the items"]) == _money(usd["Total Amazon reported"]) == Decimal("31.81")
    assert (usd["Check: items - Amazon's total"], usd["Not in vouchers"]) == ("OK", 0)
    jpy = {label: cached.cell(r, 4).value for label, r in rows.items()}  # 1200 - 180, no shipping
    assert (jpy["Sales"], jpy["Shipping"], jpy["Amazon fees"], jpy["Total of the items"]) == (1200, 0, -180, 1020)


def test_per_currency_totals_are_sumifs_over_each_currencys_rows(summary, cached) -> None:
    jpy_title, usd_title = _row_of(summary, "Settlements in JPY:"), _row_of(summary, "Settlements in USD:")
    heading = _row_of(summary, "Totals of the run per currency")
    assert jpy_title < usd_title < heading  # in currency order
    # A currency's rows: from its title to its last check row (the blank row after is left out).
    spans = {"JPY": (jpy_title, usd_title - 2), "USD": (usd_title, heading - 2)}
    assert summary.cell(usd_title - 2, 1).value == summary.cell(heading - 2, 1).value == "Check: items - deposit line"

    def sumifs(label: str, currency: str) -> str:
        low, high = spans[currency]
        return f'=SUMIFS(${SUMS}${low}:${SUMS}${high},$A${low}:$A${high},"{label}")'

    rows = _rows_of(summary, heading + 2, heading + 2 + len(RUN_ITEMS) + 4)
    for column, currency, decimals in ((4, "JPY", 0), (5, "USD", 2)):
        letter = "DE"[column - 4]
        for item in RUN_ITEMS:
            assert summary.cell(rows[item], column).value == sumifs(item, currency)
        total, amazon, deposit = (rows[k] for k in ("Total of the items", "Total Amazon reported", TOTAL_ROWS[3]))
        first = rows[RUN_ITEMS[0]]
        assert summary.cell(total, column).value == f"=SUM({letter}{first}:{letter}{total - 1})"
        assert summary.cell(amazon, column).value == sumifs("Total Amazon reported", currency)
        assert summary.cell(rows[TOTAL_ROWS[2]], column).value == (
            f'=IF(ROUND({letter}{total}-{letter}{amazon},{decimals})=0,"OK",'
            f"ROUND({letter}{total}-{letter}{amazon},{decimals}))"
        )
        assert summary.cell(deposit, column).value == sumifs("Deposit line of the vouchers", currency)
        assert summary.cell(rows["Not in vouchers"], column).value == f"={letter}{amazon}-{letter}{deposit}"

    # What the JPY SUMIFS pick from the JPY rows' sums, by hand: sales 1200, commission -180,
    # Amazon's total and the deposit line 1020 (the check rows say OK, which SUMIFS skips).
    low, high = spans["JPY"]
    picked = {cached.cell(r, 1).value: cached.cell(r, 4).value for r in range(low, high + 1)}
    assert {k: picked[k] for k in ("Sales", "Amazon fees", "Total Amazon reported", TOTAL_ROWS[3])} == {
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
    assert held.status == off.status == "held" and not held.vouchers and not off.vouchers
    path = tmp_path / "checks.xlsx"
    write_workbook([off, held], path, mapping=MAPPING)
    sheet = openpyxl.load_workbook(path, data_only=True)[SHEET_SUMMARY]
    title = _row_of(sheet, "Settlements in JPY:")
    headings = [sheet.cell(title + 1, c).value for c in (5, 6, 7)]
    assert [h and h.split("\n")[0] for h in headings] == [OFF_ID, HELD_ID, None]  # side by side, in run order
    # One row per item and account of either settlement: the held one's fee is not mapped.
    rows = [tuple(sheet.cell(r, c).value for c in (1, 2, 3, 4, 5, 6)) for r in range(title + 2, title + 5)]
    assert rows == [
        ("Sales", "Customer receivable Amazon (principal)", "1510", 2400, 1200, 1200),
        ("Amazon fees", "Amazon referral commission", "6110", -180, -180, None),
        ("Other", "Not mapped to an account yet (see Exceptions)", None, -180, None, -180),
    ]
    total = title + 5
    checks = {sheet.cell(r, 1).value: [sheet.cell(r, c).value for c in (4, 5, 6)] for r in range(total, total + 5)}
    assert checks == {
        "Total of the items": [2040, 1020, 1020],
        "Total Amazon reported": [2020, 1000, 1020],
        "Check: items - Amazon's total": [20, 20, "OK"],  # items 1020 - Amazon's 1000; the held one sums
        # Neither is posted (a total that does not tie holds a settlement too): no deposit lines.
        "Deposit line of the vouchers": [0, "No vouchers", "No vouchers"],
        "Check: items - deposit line": [None, "No vouchers", "No vouchers"],
    }


def test_more_settlements_of_a_currency_than_fit_across_continue_below(tmp_path: Path) -> None:
    ids = [f"2000000{n:04d}" for n in range(SETTLEMENTS_ACROSS + 1)]
    path = tmp_path / "many.xlsx"
    write_workbook([_outcome(_jpy(i)) for i in ids], path, mapping=MAPPING)
    book = openpyxl.load_workbook(path)
    sheet, values = book[SHEET_SUMMARY], openpyxl.load_workbook(path, data_only=True)[SHEET_SUMMARY]
    first_title = _row_of(sheet, "Settlements in JPY:")
    second_title = _row_of(sheet, "Settlements in JPY:", first_title + 1)
    across = [sheet.cell(first_title + 1, FIRST_SETTLEMENT + n).value for n in range(SETTLEMENTS_ACROSS + 1)]
    assert [a and a.split("\n")[0] for a in across] == [*ids[:SETTLEMENTS_ACROSS], None]
    assert sheet.cell(second_title + 1, FIRST_SETTLEMENT).value.split("\n")[0] == ids[-1]
    # The run's JPY totals sum both groups: each settlement has 1200 sales and -180 commission.
    heading = _row_of(sheet, "Totals of the run per currency")
    low, high = first_title, heading - 2
    rows = _rows_of(sheet, heading + 2, heading + 10)
    assert sheet.cell(rows["Sales"], 4).value == f'=SUMIFS($D${low}:$D${high},$A${low}:$A${high},"Sales")'
    picked = [values.cell(rows[k], 4).value for k in ("Sales", "Amazon fees", "Total Amazon reported")]
    assert picked == [1200 * len(ids), -180 * len(ids), 1020 * len(ids)]


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
