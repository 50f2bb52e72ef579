"""Bad input found by fuzzing real-format files (issue #8 "Bad input"), one test per kind.

Each case is the smallest edit of a hand-made file that reproduces the kind; each must end in
located ``SettlementFileError``s (file:line:column) or in correctly parsed settlements, never in
an exception and never in "no settlement and no error". Line and column numbers are counted by
hand in the edited file (1-based; the header is line 1; the US fixture's rows are lines 3-22).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from _parse_fixtures import (
    AMOUNT_COL,
    FIXTURE,
    V2_HEADER,
    eur_decimal_comma_file,
    fixture_lines,
    gbp_dot_file,
    only_error,
    parse_text,
    summary,
    tsv,
    v1_file,
    v2_row,
    with_field,
    with_field_text,
)

from reconciliation.mapping import load_mapping
from reconciliation.model import LINE_COLUMNS, exact_sum
from reconciliation.parse import MAX_LINE_BYTES, parse_settlement_bytes
from reconciliation.pipeline import prepare_settlement
from reconciliation.schemas import validate_settlement

ORDER_ID, MARKETPLACE, POSTED_DATE, ORDER_ITEM_CODE, SKU, CURRENCY = 8, 12, 17, 19, 22, 6


def errors_of(text: str | bytes, source: str = "us.tsv") -> list[tuple[int | None, int | None]]:
    data = text if isinstance(text, bytes) else text.encode()
    result = parse_settlement_bytes(data, source)
    assert result.settlements == [] and result.errors
    return [(e.line, e.column) for e in result.errors]


# --- line structure -------------------------------------------------------------------------


def test_stray_carriage_return_inside_a_field() -> None:
    lines = fixture_lines()
    lines[4] = lines[4].replace("MarketplaceFacilitatorTax", "Marketplace\rFacilitatorTax")  # line 5, field 14
    error = only_error("\n".join(lines))
    assert (error.line, error.column) == (5, 14)
    assert str(error).startswith("us.tsv:5:14: carriage return (CR) inside a line")


def test_stray_carriage_return_in_a_crlf_file() -> None:
    # Line 15 (MCF) has DEMO-SKU-B first in merchant-order-item-id (column 20), then in sku.
    text = FIXTURE.read_text().replace("\n", "\r\n").replace("\tDEMO-SKU-B\t", "\tDEMO-SKU-B\r\t", 1)
    assert errors_of(text) == [(15, 20)]


def test_mixed_line_endings() -> None:
    lines = fixture_lines()
    # LF and CR LF mixed: both are line ends; line numbers stay right.
    mixed = "\r\n".join(lines[:6]) + "\n" + "\n".join(lines[6:])
    [s], errors = parse_text(mixed)
    assert errors == [] and s.total_minor == 3181 and int(s.lines["amount_minor"].sum()) == 3181
    assert errors_of(with_field_text(mixed, 9, AMOUNT_COL, "abc")) == [(9, AMOUNT_COL)]
    # A lone CR ending lines 7 and 8 is not a line end: named at the end of those lines (column 24).
    old_mac = "\n".join(lines[:6]) + "\n" + lines[6] + "\r" + lines[7] + "\r" + "\n".join(lines[8:])
    assert errors_of(old_mac) == [(7, 24), (7, 47)]  # lines 7 and 8 run together into physical line 7


def test_file_with_only_the_summary_row() -> None:
    lines = fixture_lines()
    zero = lines[0] + "\n" + with_field_text(lines[1], 1, 5, "0.00") + "\n"
    [s], errors = parse_text(zero)
    assert errors == [] and (s.total_minor, s.line_count, s.marketplace) == (0, 0, "")
    assert validate_settlement(s).ok
    [s], errors = parse_text("\n".join(lines[:2]))  # total 31.81, no trailing newline
    assert errors == [] and (s.total_minor, s.line_count) == (3181, 0)
    # (a settlement without rows names no marketplace; resolving one is the mapping's job, not under test)
    prepared = prepare_settlement(dataclasses.replace(s, marketplace="Amazon.com"), load_mapping("invoice-clearing"))
    assert prepared.held
    assert "lines sum to 0.00 USD but total-amount is 31.81 USD: the lines are 31.81 USD short" in prepared.reasons


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n"])
def test_header_only(ending: str) -> None:
    error = only_error("\t".join(V2_HEADER) + ending)
    assert (error.line, error.column, error.message) == (1, None, "file has a header but no rows")


@pytest.mark.parametrize("length", [MAX_LINE_BYTES + 50_000, 3 * MAX_LINE_BYTES])
def test_row_longer_than_the_limit(length: int) -> None:
    # Slightly over the limit pyarrow may still read; far over it cannot. Both are the same error.
    error = only_error(with_field(5, 14, "x" * length))
    assert error.line == 5
    assert error.message.startswith(f"line 5 is longer than {MAX_LINE_BYTES} bytes")


def test_header_longer_than_the_limit() -> None:
    lines = fixture_lines()
    lines[0] += "\t" + "y" * MAX_LINE_BYTES
    error = only_error("\n".join(lines))
    assert error.line == 1 and error.message.startswith(f"line 1 is longer than {MAX_LINE_BYTES} bytes")


def test_row_with_more_fields_than_the_header() -> None:
    lines = fixture_lines()
    lines[4] += "\textra"
    error = only_error("\n".join(lines))
    assert (error.line, error.column) == (5, 25)  # the header has 24 columns: the extra one is the 25th
    assert "row has extra fields: 25 fields but the header has 24" in error.message


def test_short_row_missing_only_the_optional_promotion_id_is_padded_also_with_crlf() -> None:
    lines = fixture_lines()
    lines[13] = lines[13].rsplit("\t", 1)[0]  # line 14 had a promotion-id: now 23 fields
    for text in ("\n".join(lines), "\r\n".join(lines)):
        [s], errors = parse_text(text)
        assert errors == []
        row = s.lines[s.lines["line_no"] == 14].iloc[0]
        assert (row["promotion_id"], row["amount_minor"], row["quantity"]) == ("", -299, 1)


def test_duplicate_column_in_header() -> None:
    lines = fixture_lines()
    lines[0] = lines[0].replace("\tsku\t", "\tamount\t")
    error = only_error("\n".join(lines))
    assert (error.line, error.message) == (1, "duplicate column 'amount' in header")


# --- fields -----------------------------------------------------------------------------------


def test_summary_row_problems() -> None:
    error = only_error(with_field(2, CURRENCY, "US$"))
    assert (error.line, error.column) == (2, CURRENCY) and "'US$' is not a 3-letter currency code" in error.message
    lines = fixture_lines()
    twice = "\n".join(lines[:2] + [lines[1]] + lines[2:])  # the summary row again on line 3
    error = only_error(twice)
    assert (error.line, error.column) == (3, 1)
    assert "second summary row for settlement-id '10000000001'" in error.message


def test_settlement_id_not_a_number() -> None:
    error = only_error(with_field(7, 1, "1000000000x"))
    assert (error.line, error.column, error.column_name) == (7, 1, "settlement-id")
    assert "'1000000000x' is not a number" in error.message


def test_row_currency_differs_from_the_summary() -> None:
    error = only_error(with_field(5, CURRENCY, "EUR"))
    assert (error.line, error.column, error.column_name) == (5, CURRENCY, "currency")
    assert "'EUR' differs from the settlement's currency USD (summary row, line 2)" in error.message
    [s], errors = parse_text(with_field(5, CURRENCY, "USD"))  # the same currency written out is fine
    assert errors == [] and s.total_minor == 3181


def test_impossible_posted_date_is_caught_although_posted_date_time_is_used() -> None:
    # EUR file: posted-date 14.10.2024 on lines 3-5; posted-date-time is what the line's date comes from.
    error = only_error(with_field_text(eur_decimal_comma_file(), 3, POSTED_DATE, "30.02.2024"))
    assert (error.line, error.column, error.column_name) == (3, POSTED_DATE, "posted-date")
    assert "'30.02.2024' is not a valid date in this file's format (DD.MM.YYYY)" in error.message


@pytest.mark.parametrize(("line", "column"), [(5, ORDER_ID), (9, SKU), (17, POSTED_DATE), (20, ORDER_ID)])
def test_empty_required_field_on_order_and_refund_rows(line: int, column: int) -> None:
    error = only_error(with_field(line, column, ""))  # lines 3-16 are Order, 17-22 Refund rows
    assert (error.line, error.column) == (line, column)
    assert " is empty on an Order or Refund row" in error.message


def test_order_level_row_without_item_needs_no_sku_and_other_rows_need_no_order() -> None:
    text = with_field_text(with_field(6, ORDER_ITEM_CODE, ""), 6, SKU, "")  # an order-level fee row
    [s], errors = parse_text(text)
    assert errors == [] and s.lines.loc[s.lines["line_no"] == 6, "sku"].tolist() == [""]
    # other-transaction (line 5 of the EUR file) has no order-id, sku or quantity: fine.
    [s], errors = parse_text(eur_decimal_comma_file())
    assert errors == [] and s.lines["order_id"].tolist()[-1] == ""


def test_sku_and_posted_date_swapped_under_the_header() -> None:
    lines = fixture_lines()
    fields = lines[4].split("\t")
    fields[POSTED_DATE - 1], fields[SKU - 1] = fields[SKU - 1], fields[POSTED_DATE - 1]
    lines[4] = "\t".join(fields)
    assert errors_of("\n".join(lines)) == [(5, POSTED_DATE), (5, SKU)]
    # On a row without a sku the swap empties posted-date (allowed there): the date in sku tells.
    eur = eur_decimal_comma_file()
    swapped = with_field_text(with_field_text(eur, 5, POSTED_DATE, ""), 5, SKU, "14.10.2024")
    error = only_error(swapped)
    assert (error.line, error.column) == (5, SKU) and "'14.10.2024' is a date" in error.message


@pytest.mark.parametrize(
    ("text", "line", "value", "style"),
    [
        (with_field(5, AMOUNT_COL, "1,234.56"), 5, "1,234.56", "decimal dot"),
        (with_field_text(eur_decimal_comma_file(), 3, AMOUNT_COL, "1.234,56"), 3, "1.234,56", "decimal comma"),
        (with_field_text(gbp_dot_file(), 3, AMOUNT_COL, "1,260.00"), 3, "1,260.00", "decimal dot"),
    ],
)
def test_thousands_separator_is_refused(text: str, line: int, value: str, style: str) -> None:
    error = only_error(text)
    assert (error.line, error.column) == (line, AMOUNT_COL)
    assert error.message.startswith(f"amount {value!r} has a thousands separator")
    assert f"this file uses {style}" in error.message


def test_thousands_separator_in_the_total() -> None:
    # total "1.234,56" is not a decimal-comma total: the file reads as decimal dot, and the total says why.
    text = with_field_text(eur_decimal_comma_file(), 2, 5, "1.234,56")
    assert (2, 5) in errors_of(text)


def test_sums_beyond_int64_are_refused_not_wrapped() -> None:
    # 184,468 lines of 999,999,999,999.99 (99,999,999,999,999 cents each): Σ = 18,446,799,999,999,815,532
    # cents, more than int64's 9,223,372,036,854,775,807; an int64 sum wraps. Σ|amount| first exceeds
    # int64 after 92,234 rows (92,233 rows: 9,223,299,999,999,907,767): the row on line 2 + 92,234.
    lines = fixture_lines()
    row = with_field_text(lines[2], 1, AMOUNT_COL, "999999999999.99")
    text = "\n".join([lines[0], with_field_text(lines[1], 1, 5, "31.81")] + [row] * 184_468) + "\n"
    error = only_error(text)
    assert (error.line, error.column) == (92_236, AMOUNT_COL)
    assert "more than 9223372036854775807 minor units" in error.message
    # Half as many lines are exact and parse.
    text = "\n".join([lines[0], with_field_text(lines[1], 1, 5, "31.81")] + [row] * 92_233) + "\n"
    [s], errors = parse_text(text)
    assert errors == [] and s.line_count == 92_233


# --- settlements the parser must produce (the marketplace is resolved elsewhere) ---------------


def test_marketplace_name_never_seen() -> None:
    text = "\n".join(line.replace("\tAmazon.com\t", "\tAmazon.xx\t") for line in fixture_lines())
    [s], errors = parse_text(text)
    assert errors == [] and s.marketplace == "Amazon.xx"


def test_unknown_time_zone_word() -> None:
    error = only_error(with_field(2, 2, "2024-10-09 14:28:38 XYZ"))
    assert (error.line, error.column) == (2, 2)
    assert "has the time zone 'XYZ', not one we convert" in error.message


def test_two_settlements_in_two_currencies_with_currency_on_rows() -> None:
    a, b = "40000000001", "40000000002"
    text = tsv(
        V2_HEADER,
        [
            summary(a, "2024-10-09 14:28:38 UTC", "2024-10-23 14:28:39 UTC", "2024-10-25 14:28:39 UTC", "5.00", "USD"),
            v2_row(a, "ItemPrice", "Principal", "5.00", "2024-10-18", "2024-10-18 02:58:02 UTC", currency="USD"),
            summary(b, "2024-10-09 14:28:38 UTC", "2024-10-23 14:28:39 UTC", "2024-10-25 14:28:39 UTC", "5", "JPY"),
            v2_row(b, "ItemPrice", "Principal", "5", "2024-10-18", "2024-10-18 02:58:02 UTC", currency="JPY"),
        ],
    )
    usd, jpy = parse_text(text)[0]
    assert (usd.currency, usd.lines["amount_minor"].tolist(), jpy.currency, jpy.lines["amount_minor"].tolist()) == (
        "USD",
        [500],
        "JPY",
        [5],
    )
    # JPY has no minor digits: "5.00" on a JPY row is too precise, named on its line.
    assert errors_of(with_field_text(text, 5, AMOUNT_COL, "5.50")) == [(5, AMOUNT_COL)]
    # A JPY row under the USD settlement is named.
    assert errors_of(with_field_text(text, 3, CURRENCY, "JPY")) == [(3, CURRENCY)]


# --- fuzzing: random mutants of real-format files never raise, never vanish ---------------------

_TOKENS = [
    "",
    " ",
    "-",
    "0",
    "1e5",
    "NaN",
    "99999999999999999999",
    "2024-02-30",
    "30.02.2024",
    "é",
    '"',
    "x" * 300,
    "1.234,56",
    "1,234.56",
    "2024/10/18 09:15:00 JST",
    "Amazon.xx",
    "EUR",
]


def _mutate(rng: random.Random, text: str) -> bytes:
    data = bytearray(text.encode())
    kind = rng.randrange(8)
    at = rng.randrange(len(data))
    if kind == 0:
        data[at:at] = rng.choice([b"\t", b"\r", b"\n", b"\r\n", b",", b".", b"-", b"9", b"\xc3", b" "])
    elif kind == 1:
        del data[at : at + rng.randint(1, 8)]
    elif kind == 2:
        del data[at:]
    elif kind == 3:
        data = data.replace(b"\n", rng.choice([b"\r", b"\r\n", b"\n\n"]), rng.randint(1, 5))
    lines = data.split(b"\n")
    if kind == 4:
        lines.insert(rng.randrange(len(lines)), rng.choice(lines))
    elif kind == 5:
        del lines[rng.randrange(len(lines))]
    elif kind in (6, 7):
        i = rng.randrange(len(lines))
        fields = lines[i].split(b"\t")
        j, k = rng.randrange(len(fields)), rng.randrange(len(fields))
        if kind == 6:
            fields[j], fields[k] = fields[k], fields[j]
        else:
            fields[j] = rng.choice(_TOKENS).encode()
        lines[i] = b"\t".join(fields)
    return bytes(b"\n".join(lines))


def test_fuzzed_files_end_in_settlements_or_located_errors() -> None:
    rng = random.Random(8)
    bases = [FIXTURE.read_text(), eur_decimal_comma_file(), gbp_dot_file(), v1_file(True), v1_file(False)]
    outcomes = {"parsed": 0, "errors": 0}
    for n in range(300):
        data = _mutate(rng, rng.choice(bases))
        result = parse_settlement_bytes(data, f"m{n}.tsv")  # must not raise
        assert bool(result.settlements) != bool(result.errors), (n, data[:200])
        for error in result.errors:
            assert str(error).startswith(f"m{n}.tsv") and error.message, error
            assert error.line is None or 1 <= error.line <= data.count(b"\n") + 1, (error, data[:200])
        for settlement in result.settlements:
            assert list(settlement.lines.columns) == list(LINE_COLUMNS)
            assert settlement.lines["amount_minor"].dtype == np.int64
        outcomes["parsed" if result.settlements else "errors"] += 1
    assert min(outcomes.values()) > 40, outcomes  # both outcomes are exercised


def test_exact_sum_at_any_size() -> None:
    big = np.iinfo(np.int64).max
    values = np.array([big, big, 1, -3], dtype=np.int64)  # int64 .sum() wraps this to -4
    assert int(values.sum()) == -4
    assert exact_sum(values) == 2 * big - 2
    assert exact_sum(np.array([-big - 1, -big - 1], dtype=np.int64)) == -(2**64)
    assert exact_sum(np.array([], dtype=np.int64)) == 0 and exact_sum(np.array([5, -7])) == -2


def test_version_like_skus_are_not_dates() -> None:
    for sku in ("1.2.30", "2024-RED", "10-12-2024-BOX", "14.10.24"):
        [s], errors = parse_text(with_field(3, SKU, sku))
        assert errors == [] and s.lines["sku"].iloc[0] == sku
