"""Settlement parsing: V2 and V1 files, formats per marketplace, bad input as located errors.

Expected values are read off the input files by hand (see tests/_parse_fixtures.py).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pandas as pd
import pytest
from _parse_fixtures import (
    AMOUNT_COL,
    FIXTURE,
    POSTED_TIME_COL,
    UTC,
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

from reconciliation.parse import (
    SettlementFileError,
    dedupe_settlements,
    parse_settlement_bytes,
    read_settlement_file,
)

# --- the real-format US fixture ----------------------------------------------------------


def test_us_fixture_header_values() -> None:
    result = read_settlement_file(FIXTURE)
    assert result.errors == []
    [s] = result.settlements
    assert (s.settlement_id, s.source, s.format, s.currency) == ("10000000001", "us_v2_usd.tsv", "v2", "USD")
    assert s.start == pd.Timestamp("2024-10-09 14:28:38", tz=UTC)
    assert s.end == pd.Timestamp("2024-10-23 14:28:39", tz=UTC)
    assert s.deposit_date == pd.Timestamp("2024-10-25 14:28:39", tz=UTC)
    assert s.total_minor == 3181
    assert s.marketplace == "Amazon.com"
    assert s.line_count == 20


def test_us_fixture_lines() -> None:
    [s] = read_settlement_file(FIXTURE).settlements
    lines = s.lines
    assert lines["line_no"].tolist() == list(range(3, 23))
    # Σ of the amount column, added by hand from the file.
    assert int(lines["amount_minor"].sum()) == 3181
    first = lines.iloc[0]
    assert (first["transaction_type"], first["amount_type"], first["amount_description"]) == (
        "Order",
        "ItemPrice",
        "Principal",
    )
    assert first["amount_minor"] == 6899
    assert first["order_item_code"] == "90000000000001"  # exact string, not a float
    assert first["posted_date"] == pd.Timestamp("2024-10-18 02:58:02", tz=UTC)
    assert first["quantity"] == 1
    # Refund rows (file lines 17-22) have no quantity; Order rows have 1.
    refunds = lines[lines["transaction_type"] == "Refund"]
    assert refunds["line_no"].tolist() == list(range(17, 23))
    assert refunds["quantity"].isna().all()
    assert lines.loc[lines["transaction_type"] == "Order", "quantity"].eq(1).all()
    assert refunds["adjustment_id"].eq("amzn1:crow:EXAMPLEadjustment000001").all()
    # The MCF (Non-Amazon) row: line 15, Principal 0.00, seller's own order number.
    mcf = lines[lines["line_no"] == 15].iloc[0]
    assert (mcf["marketplace_name"], mcf["merchant_order_id"], mcf["amount_minor"]) == ("Non-Amazon US", "#9001", 0)
    promo = lines[lines["line_no"] == 14].iloc[0]
    assert promo["promotion_id"] == "Amazon PLCC Free-Financing Universal Merchant Free Rush Shipping"
    assert promo["amount_minor"] == -299
    assert str(lines["posted_date"].dtype) == "datetime64[us, UTC]"
    assert str(lines["quantity"].dtype) == "Int64"


def test_input_file_is_not_changed(tmp_path: Path) -> None:
    path = tmp_path / "copy.tsv"
    path.write_bytes(FIXTURE.read_bytes())
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    read_settlement_file(path)
    read_settlement_file(FIXTURE)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert path.exists()


# --- other marketplaces and the legacy format --------------------------------------------


def test_eur_file_with_decimal_comma_and_eu_dates() -> None:
    [s], errors = parse_text(eur_decimal_comma_file(), "de.tsv")
    assert errors == []
    assert (s.currency, s.total_minor, s.marketplace) == ("EUR", 1234, "Amazon.de")
    assert s.start == pd.Timestamp("2024-10-11 08:59:52", tz=UTC)
    assert s.deposit_date == pd.Timestamp("2024-10-27 08:59:52", tz=UTC)
    assert s.lines["amount_minor"].tolist() == [1999, -300, -465]
    assert s.lines["posted_date"].iloc[0] == pd.Timestamp("2024-10-14 04:15:46", tz=UTC)
    assert s.lines["quantity"].isna().tolist() == [False, False, True]


def test_gbp_file_with_decimal_dot_and_eu_dates() -> None:
    [s], errors = parse_text(gbp_dot_file(), "uk.tsv")
    assert errors == []
    assert (s.currency, s.total_minor, s.marketplace) == ("GBP", 25343, "Amazon.co.uk")
    assert s.lines["amount_minor"].tolist() == [26000, -657]
    assert s.end == pd.Timestamp("2024-11-29 08:59:45", tz=UTC)


def test_v1_36_columns_melted() -> None:
    [s], errors = parse_text(v1_file(with_promotions=True), "ca_v1.txt")
    assert errors == []
    assert (s.format, s.currency, s.marketplace, s.total_minor) == ("v1", "CAD", "Amazon.ca", 2830)
    assert s.start == pd.Timestamp("2025-10-09 22:07:18", tz=UTC)
    got = list(zip(s.lines["line_no"], s.lines["amount_type"], s.lines["amount_description"], s.lines["amount_minor"]))
    assert got == [
        (4, "ItemPrice", "Principal", 2500),
        (5, "ItemFees", "Commission", -375),
        (6, "Promotion", "Shipping", -100),
        (7, "MiscFees", "MiscFee", -25),
        (8, "other-transaction", "Previous Reserve Amount Balance", 1000),
        (9, "ShipmentFees", "FBA transportation fee", -200),
        (9, "OtherFees", "TaxAmount", 40),
        (10, "DirectPayment", "Successful charge", -10),
    ]
    assert int(s.lines["amount_minor"].sum()) == s.total_minor
    # The quantity-only row (line 3) produced no line; V1 has no posted-date-time.
    assert 3 not in s.lines["line_no"].tolist()
    assert s.lines["posted_date"].iloc[0] == pd.Timestamp("2025-10-10 10:20:02", tz=UTC)
    # +02:00 offset converted to UTC.
    assert s.lines["posted_date"].iloc[3] == pd.Timestamp("2025-10-10 23:30:00", tz=UTC)
    assert s.lines["promotion_id"].iloc[2] == "Free shipping promo"


def test_v1_33_columns_without_promotions() -> None:
    [s], errors = parse_text(v1_file(with_promotions=False), "ca_v1_33.txt")
    assert errors == []
    assert s.total_minor == 2930
    assert s.lines["amount_minor"].tolist() == [2500, -375, -25, 1000, -200, 40, -10]
    assert s.lines["promotion_id"].eq("").all()
    assert int(s.lines["amount_minor"].sum()) == 2930


def test_v1_file_with_only_a_summary_row_is_a_settlement_without_lines() -> None:
    # As a V2 file with only its summary row; this used to end in a TypeError traceback.
    header_and_summary = "\n".join(v1_file(with_promotions=True).split("\n")[:2]) + "\n"
    [settlement], errors = parse_text(header_and_summary, "v1.tsv")
    assert errors == []
    assert (settlement.settlement_id, settlement.format, settlement.currency, settlement.total_minor) == (
        "30000000004",
        "v1",
        "CAD",
        2830,
    )
    assert settlement.line_count == 0


def test_file_with_two_settlements() -> None:
    a, b = "40000000001", "40000000002"
    text = tsv(
        V2_HEADER,
        [
            summary(a, "2024-10-09 14:28:38 UTC", "2024-10-23 14:28:39 UTC", "2024-10-25 14:28:39 UTC", "5.00", "USD"),
            v2_row(
                a,
                "ItemPrice",
                "Principal",
                "7.00",
                "2024-10-18",
                "2024-10-18 02:58:02 UTC",
                marketplace_name="Amazon.com",
            ),
            v2_row(
                a,
                "ItemFees",
                "Commission",
                "-2.00",
                "2024-10-18",
                "2024-10-18 02:58:02 UTC",
                marketplace_name="Amazon.com",
            ),
            summary(b, "2024-10-23 14:28:39 UTC", "2024-11-06 14:28:39 UTC", "2024-11-08 14:28:39 UTC", "-1.50", "USD"),
            v2_row(
                b,
                "ItemFees",
                "Commission",
                "-1.50",
                "2024-10-30",
                "2024-10-30 11:00:00 UTC",
                marketplace_name="Non-Amazon US",
            ),
        ],
    )
    settlements, errors = parse_text(text, "two.tsv")
    assert errors == []
    by_id = {s.settlement_id: s for s in settlements}
    assert sorted(by_id) == [a, b]
    assert (by_id[a].total_minor, by_id[a].lines["line_no"].tolist()) == (500, [3, 4])
    assert (by_id[b].total_minor, by_id[b].lines["line_no"].tolist()) == (-150, [6])
    assert by_id[b].start == pd.Timestamp("2024-10-23 14:28:39", tz=UTC)
    # Only Non-Amazon lines: the marketplace falls back to that name.
    assert by_id[b].marketplace == "Non-Amazon US"


def test_jpy_has_no_minor_digits() -> None:
    sid = "50000000001"
    text = tsv(
        V2_HEADER,
        [
            summary(
                sid, "2024-10-09 14:28:38 UTC", "2024-10-23 14:28:39 UTC", "2024-10-25 14:28:39 UTC", "1200", "JPY"
            ),
            v2_row(sid, "ItemPrice", "Principal", "1500", "2024-10-18", "2024-10-18 02:58:02 UTC"),
            v2_row(sid, "ItemFees", "Commission", "-300", "2024-10-18", "2024-10-18 02:58:02 UTC"),
        ],
    )
    [s], errors = parse_text(text)
    assert errors == []
    assert (s.total_minor, s.lines["amount_minor"].tolist()) == (1200, [1500, -300])


def test_date_only_us_posted_date_used_when_posted_date_time_is_empty() -> None:
    sid = "50000000002"
    text = tsv(
        V2_HEADER,
        [
            summary(
                sid, "2024-10-09 14:28:38 UTC", "2024-10-23 14:28:39 UTC", "2024-10-25 14:28:39 UTC", "1.00", "USD"
            ),
            v2_row(sid, "ItemPrice", "Principal", "1.00", "10/18/24", ""),
        ],
    )
    [s], errors = parse_text(text)
    assert errors == []
    assert s.lines["posted_date"].iloc[0] == pd.Timestamp("2024-10-18 00:00:00", tz=UTC)


# --- duplicates --------------------------------------------------------------------------


def test_same_settlement_in_two_files_is_kept_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_bytes(FIXTURE.read_bytes())
    second.write_bytes(FIXTURE.read_bytes())
    unique, duplicates = dedupe_settlements([read_settlement_file(first), read_settlement_file(second)])
    assert [s.source for s in unique] == ["a.tsv"]
    assert len(duplicates) == 1
    assert (duplicates[0].settlement_id, duplicates[0].source, duplicates[0].kept_source) == (
        "10000000001",
        "b.tsv",
        "a.tsv",
    )
    assert duplicates[0].conflict is None


def test_same_settlement_with_different_content_is_an_error(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_bytes(FIXTURE.read_bytes())
    changed = with_field(3, AMOUNT_COL, "68.98")
    second.write_text(with_field_text(changed, 2, 5, "31.80"))
    unique, duplicates = dedupe_settlements([read_settlement_file(first), read_settlement_file(second)])
    assert len(unique) == 1 and unique[0].source == "a.tsv"
    conflict = duplicates[0].conflict
    assert isinstance(conflict, SettlementFileError)
    assert "10000000001" in str(conflict) and "a.tsv" in str(conflict) and conflict.source == "b.tsv"


# --- encodings -----------------------------------------------------------------------------


def _text_with_sku(sku: str) -> str:
    return with_field(3, 22, sku)


@pytest.mark.parametrize(
    ("encoding", "charset"),
    [("cp1252", None), ("cp1252", "Cp1252"), ("utf-8", None), ("utf-8", "utf8"), ("utf-8-sig", None)],
)
def test_encodings(encoding: str, charset: str | None) -> None:
    data = _text_with_sku("CAFÉ-É1").encode(encoding)
    result = parse_settlement_bytes(data, "enc.tsv", charset)
    assert result.errors == []
    assert result.settlements[0].lines["sku"].iloc[0] == "CAFÉ-É1"
    assert result.settlements[0].settlement_id == "10000000001"  # BOM not glued to the first header name


# --- bad input: every error names file, line and column -----------------------------------


def test_non_numeric_amount() -> None:
    error = only_error(with_field(5, AMOUNT_COL, "abc"))
    assert (error.source, error.line, error.column, error.column_name) == ("us.tsv", 5, 15, "amount")
    assert str(error).startswith("us.tsv:5:15: amount 'abc' is not a number")


def test_decimal_comma_amount_in_a_dot_file() -> None:
    error = only_error(with_field(7, AMOUNT_COL, "-12,42"))
    assert (error.line, error.column) == (7, 15)
    assert "decimal dot" in error.message


def test_too_many_decimals_for_currency() -> None:
    error = only_error(with_field(4, AMOUNT_COL, "4.141"))
    assert (error.line, error.column) == (4, 15)
    assert "more than 2 decimals for USD" in error.message


def test_several_bad_amounts_are_all_reported() -> None:
    text = with_field_text(with_field(5, AMOUNT_COL, "x"), 9, AMOUNT_COL, "1.2.3")
    settlements, errors = parse_text(text)
    assert settlements == []
    assert [(e.line, e.column) for e in errors] == [(5, 15), (9, 15)]


def test_a_bad_value_repeated_on_several_rows_is_located_on_each() -> None:
    # Values are checked once per distinct text: every row carrying a bad one is still named,
    # in file order, with the value as written minus surrounding blanks.
    text = with_field_text(with_field_text(with_field(5, AMOUNT_COL, "x"), 9, AMOUNT_COL, "x"), 12, AMOUNT_COL, " x ")
    settlements, errors = parse_text(text)
    assert settlements == []
    assert [(e.line, e.column, e.message) for e in errors] == [
        (line, 15, "amount 'x' is not a number (this file uses decimal dot, e.g. 1234.56)") for line in (5, 9, 12)
    ]
    text = with_field_text(
        with_field(4, POSTED_TIME_COL, "2024-02-30 02:58:02 UTC"), 8, POSTED_TIME_COL, "2024-02-30 02:58:02 UTC"
    )
    settlements, errors = parse_text(text)
    assert settlements == []
    assert [(e.line, e.column) for e in errors] == [(4, 18), (8, 18)]


def test_unknown_date_format() -> None:
    error = only_error(with_field(3, POSTED_TIME_COL, "2024/10/18 02:58"))
    assert (error.line, error.column, error.column_name) == (3, 18, "posted-date-time")
    assert "'2024/10/18 02:58' is not a date in a known format" in error.message


def test_invalid_date_in_detected_format() -> None:
    error = only_error(with_field(8, POSTED_TIME_COL, "2024-13-45 02:58:02 UTC"))
    assert (error.line, error.column) == (8, 18)
    assert str(error).startswith("us.tsv:8:18: posted-date-time '2024-13-45 02:58:02 UTC' is not a valid date")


def test_impossible_day_is_not_rolled_over() -> None:
    error = only_error(with_field(9, POSTED_TIME_COL, "2024-02-30 02:58:02 UTC"))
    assert (error.line, error.column) == (9, 18)
    assert "'2024-02-30 02:58:02 UTC' is not a valid date" in error.message


def test_iso_offset_crossing_midnight() -> None:
    text = v1_file(with_promotions=True).replace("2025-10-11T01:30:00+02:00", "2025-10-10T23:30:00-02:00")
    [s], errors = parse_text(text)
    assert errors == []
    assert s.lines["posted_date"].iloc[3] == pd.Timestamp("2025-10-11 01:30:00", tz=UTC)


def test_unknown_settlement_date_format() -> None:
    error = only_error(with_field(2, 2, "9 Oct 2024"))
    assert (error.line, error.column, error.column_name) == (2, 2, "settlement-start-date")


def test_bad_quantity() -> None:
    error = only_error(with_field(6, 23, "one"))
    assert (error.line, error.column, error.column_name) == (6, 23, "quantity-purchased")


def test_truncated_row() -> None:
    lines = fixture_lines()
    lines[5 - 1] = "\t".join(lines[5 - 1].split("\t")[:20])
    error = only_error("\n".join(lines))
    # 20 fields: the first missing column (21, merchant-adjustment-item-id) is a required one.
    assert (error.line, error.column, error.column_name) == (5, 21, "merchant-adjustment-item-id")
    assert str(error) == (
        "us.tsv:5:21: truncated row: 20 fields but the header has 24 "
        "(required column 'merchant-adjustment-item-id' is missing)"
    )


def test_line_numbers_survive_blank_lines() -> None:
    lines = fixture_lines()
    lines.insert(3, "")  # blank line 4; the old line 5 is now line 6
    text = "\n".join(lines) + "\n\n"
    error = only_error(with_field_text(text, 6, AMOUNT_COL, "abc"))
    assert (error.line, error.column) == (6, 15)
    [s], errors = parse_text(text)
    assert errors == [] and s.lines["line_no"].tolist()[:3] == [3, 5, 6]


def test_missing_required_column() -> None:
    lines = [line.split("\t") for line in fixture_lines() if line]
    index = V2_HEADER.index("amount-type")
    text = "\n".join("\t".join(f[:index] + f[index + 1 :]) for f in lines) + "\n"
    error = only_error(text)
    assert (error.line, error.column) == (1, None)
    assert "missing required column 'amount-type'" in error.message


def test_extra_and_reordered_columns_are_tolerated() -> None:
    lines = [line.split("\t") for line in fixture_lines() if line]
    # Move amount to the front and add an unknown column at the end.
    text = (
        "\n".join(
            "\t".join([f[14]] + f[:14] + f[15:] + (["new-col"] if i == 0 else ["x"])) for i, f in enumerate(lines)
        )
        + "\n"
    )
    [s], errors = parse_text(text)
    assert errors == []
    assert s.total_minor == 3181 and int(s.lines["amount_minor"].sum()) == 3181
    error = only_error(with_field_text(text, 5, 1, "abc"))
    assert (error.line, error.column, error.column_name) == (5, 1, "amount")


@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), (";", "semicolon")])
def test_wrong_delimiter(delimiter: str, name: str) -> None:
    error = only_error(FIXTURE.read_text().replace("\t", delimiter))
    assert error.line == 1
    assert f"{name}-separated" in error.message and "tab-separated" in error.message


def test_empty_file() -> None:
    for data in (b"", b"\n\n  \n"):
        result = parse_settlement_bytes(data, "empty.tsv")
        assert result.settlements == []
        assert [str(e) for e in result.errors] == ["empty.tsv: file is empty"]


def test_header_only_file() -> None:
    error = only_error("\t".join(V2_HEADER) + "\n")
    assert "no rows" in error.message


def test_crlf_line_endings() -> None:
    crlf = FIXTURE.read_text().replace("\n", "\r\n")
    [s], errors = parse_text(crlf)
    assert errors == [] and s.total_minor == 3181
    assert s.lines["promotion_id"].iloc[11] == "Amazon PLCC Free-Financing Universal Merchant Free Rush Shipping"
    error = only_error(with_field_text(crlf, 5, AMOUNT_COL, "abc"))
    assert (error.line, error.column) == (5, 15)


@pytest.mark.parametrize("data", [bytes(range(1, 256)) * 4, b"\x81\x8d\x8f\x90\x9d" * 10])
def test_undecodable_bytes(data: bytes) -> None:
    result = parse_settlement_bytes(data, "blob.bin")
    assert result.settlements == []
    assert [str(e) for e in result.errors] == ["blob.bin: not a text file (cannot be decoded as utf-8 or cp1252)"]


def test_binary_file() -> None:
    result = parse_settlement_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)), "doc.gz")
    assert result.settlements == []
    assert len(result.errors) == 1 and "not a text file" in str(result.errors[0])


def test_undecodable_with_declared_charset() -> None:
    result = parse_settlement_bytes(_text_with_sku("CAFÉ").encode("cp1252"), "x.tsv", "utf-8")
    assert result.settlements == [] and "not a text file" in str(result.errors[0])


def test_transaction_row_without_summary() -> None:
    error = only_error(with_field(10, 1, "99999999999"))
    assert (error.line, error.column) == (10, 1)
    assert "'99999999999' has no summary row" in error.message


def test_missing_file(tmp_path: Path) -> None:
    result = read_settlement_file(tmp_path / "nope.tsv")
    assert result.settlements == [] and result.errors[0].source == "nope.tsv"


def test_error_is_a_raisable_frozen_record() -> None:
    error = only_error(with_field(5, AMOUNT_COL, "abc"))
    with pytest.raises(SettlementFileError) as caught:
        raise error
    assert caught.value == error
    with pytest.raises(AttributeError):
        error.line = 1  # type: ignore[misc]  # frozen: the point of the test
    # Results cross process boundaries (Prefect, Dask): errors must survive pickling.
    copy = pickle.loads(pickle.dumps(error))
    assert copy == error and str(copy) == str(error) and copy.args == (str(error),)
    # Dask installs tblib's exception pickling process-wide: it sets __cause__ and friends after unpickling.
    from tblib import pickling_support

    pickling_support.install(error)
    copy = pickle.loads(pickle.dumps(error))
    assert copy == error and str(copy) == str(error) and copy.__cause__ is None
