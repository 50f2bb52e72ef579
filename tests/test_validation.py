"""pandera models and validate_settlement: lazy validation, line numbers, balance rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from _parse_fixtures import FIXTURE, eur_decimal_comma_file, v1_file

from reconciliation.model import Settlement
from reconciliation.parse import parse_settlement_bytes, read_settlement_file
from reconciliation.schemas import (
    M3Invoices,
    ParsedLines,
    VoucherLines,
    raw_lines_schema,
    validate_settlement,
)


def fixture_settlement() -> Settlement:
    [settlement] = read_settlement_file(FIXTURE).settlements
    return settlement


def with_lines(settlement: Settlement, lines: pd.DataFrame) -> Settlement:
    return dataclasses.replace(settlement, lines=lines)


def test_parsed_files_validate() -> None:
    report = validate_settlement(fixture_settlement())
    assert report.ok and report.reasons == [] and report.failure_cases.empty
    for text in (eur_decimal_comma_file(), v1_file(True), v1_file(False)):
        [settlement] = parse_settlement_bytes(text.encode(), "x.tsv").settlements
        assert validate_settlement(settlement).ok


def test_balance_reason_names_both_amounts_and_difference() -> None:
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines.loc[0, "amount_minor"] = 6898  # 68.99 -> 68.98: lines now sum to 31.80
    report = validate_settlement(with_lines(settlement, lines))
    assert not report.ok
    assert report.reasons == ["lines sum to 31.80 USD but total-amount is 31.81 USD: the lines are 0.01 USD short"]
    balance = report.failure_cases.iloc[-1]
    assert (balance["check"], balance["value"]) == ("sum of amounts == total-amount", "3180")


def test_lazy_validation_reports_every_failure_at_once() -> None:
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines.loc[1, "amount_type"] = ""  # file line 4
    lines.loc[2, "quantity"] = -1  # file line 5
    lines.loc[3, "posted_date"] = pd.Timestamp("2025-01-01", tz="UTC")  # file line 6, after end + 1 day
    lines.loc[4, "fulfillment_id"] = "XYZ"  # file line 7
    lines.loc[5, "order_item_code"] = "9.0000000000001e13"  # file line 8, a float-mangled id
    lines.loc[0, "amount_minor"] += 100  # balance off by 1.00
    report = validate_settlement(with_lines(settlement, lines))
    assert not report.ok
    cases = report.failure_cases
    assert list(cases.columns) == ["source", "line", "column", "check", "value"]
    located = {(row.column, int(row.line)) for row in cases.itertuples() if not pd.isna(row.line)}
    assert located == {
        ("amount_type", 4),
        ("quantity", 5),
        ("posted_date", 6),
        ("fulfillment_id", 7),
        ("order_item_code", 8),
    }
    assert set(cases["source"]) == {"us_v2_usd.tsv"}
    assert len(report.reasons) == 6
    joined = "\n".join(report.reasons)
    assert "amount_type" in joined and "line 4" in joined
    assert "posted_date" in joined and "line 6" in joined and "2025-01-01" in joined
    assert "lines sum to 32.81 USD but total-amount is 31.81 USD: the lines are 1.00 USD over" in joined


def test_empty_key_texts_fail_the_length_check_with_its_message() -> None:
    # The three mapping keys must not be empty; a blank is not empty (the mapping gate sees it).
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines.loc[0, "transaction_type"] = ""  # file line 3
    lines.loc[2, "amount_type"] = ""  # file line 5
    lines.loc[3, "amount_description"] = ""  # file line 6
    lines.loc[4, "amount_description"] = " "  # file line 7: one character
    report = validate_settlement(with_lines(settlement, lines))
    assert report.reasons == [
        "transaction_type: check 'str_length(1, None)' failed on line 3 (values: '')",
        "amount_type: check 'str_length(1, None)' failed on line 5 (values: '')",
        "amount_description: check 'str_length(1, None)' failed on line 6 (values: '')",
    ]


def test_posted_date_one_day_outside_the_period_is_tolerated() -> None:
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines.loc[0, "posted_date"] = settlement.start - pd.Timedelta(hours=23)
    lines.loc[1, "posted_date"] = settlement.end + pd.Timedelta(hours=23)
    assert validate_settlement(with_lines(settlement, lines)).ok
    lines.loc[1, "posted_date"] = settlement.end + pd.Timedelta(hours=25)
    report = validate_settlement(with_lines(settlement, lines))
    assert [int(x) for x in report.failure_cases["line"].dropna()] == [4]


def test_long_lists_of_lines_are_capped() -> None:
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines.loc[0:11, "amount_description"] = ""  # 12 rows: file lines 3..14
    report = validate_settlement(with_lines(settlement, lines))
    [reason] = [r for r in report.reasons if r.startswith("amount_description")]
    assert "lines 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 2 more" in reason


def test_wrong_dtype_is_reported_not_raised() -> None:
    settlement = fixture_settlement()
    lines = settlement.lines.copy()
    lines["amount_minor"] = lines["amount_minor"].astype(float)
    report = validate_settlement(with_lines(settlement, lines))
    assert not report.ok
    assert any(r.startswith("amount_minor") for r in report.reasons)


def test_parsed_lines_is_strict_about_columns() -> None:
    lines = fixture_settlement().lines.drop(columns="sku")
    with pytest.raises(pa.errors.SchemaError):
        ParsedLines.validate(lines)


def test_raw_lines_schema_uses_the_file_decimal_separator() -> None:
    raw = pd.read_csv(FIXTURE, sep="\t", dtype=str, keep_default_na=False)
    assert len(raw_lines_schema(decimal_comma=False).validate(raw)) == 21
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        raw_lines_schema(decimal_comma=True).validate(raw, lazy=True)
    # 20 transaction rows with dot amounts fail; the summary row's empty amount does not.
    amount_failures = caught.value.failure_cases.query("column == 'amount'")
    assert len(amount_failures) == 20


def test_raw_lines_reports_several_problems_lazily() -> None:
    raw = pd.read_csv(FIXTURE, sep="\t", dtype=str, keep_default_na=False)
    raw.loc[3, "settlement-id"] = "10x"
    raw.loc[5, "amount"] = "abc"
    raw.loc[6, "amount-type"] = ""
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        raw_lines_schema(decimal_comma=False).validate(raw, lazy=True)
    cases = caught.value.failure_cases
    assert {"settlement-id", "amount"} <= set(cases["column"].dropna())
    assert cases["check"].astype(str).str.contains("transaction rows have").any()


def _vouchers(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "voucher_key": pd.Series([r[0] for r in rows], dtype=str),
            "account": pd.Series([r[1] for r in rows], dtype=str),
            "debit_minor": np.array([r[2] for r in rows], dtype=np.int64),
            "credit_minor": np.array([r[3] for r in rows], dtype=np.int64),
        }
    )


def test_voucher_lines_balance_per_voucher() -> None:
    good = _vouchers([("V1", "1930", 3181, 0), ("V1", "3010", 0, 3181), ("V2", "1930", 0, 100), ("V2", "6570", 100, 0)])
    VoucherLines.validate(good)
    VoucherLines.validate(good.assign(ait2="AMZUS", ait3=""))  # dimension columns optional, str when present
    with pytest.raises(pa.errors.SchemaError):
        VoucherLines.validate(good.assign(ait2=1))
    # Both vouchers unbalanced in opposite directions: the grand total still balances.
    bad = _vouchers([("V1", "1930", 3181, 0), ("V1", "3010", 0, 3180), ("V2", "1930", 0, 101), ("V2", "6570", 100, 0)])
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        VoucherLines.validate(bad, lazy=True)
    assert "each voucher's debits equal its credits" in set(caught.value.failure_cases["check"].astype(str))


def test_voucher_line_must_be_one_sided_and_non_negative() -> None:
    bad = _vouchers([("V1", "1930", 100, 100), ("V1", "3010", -5, 0)])
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        VoucherLines.validate(bad, lazy=True)
    checks = set(caught.value.failure_cases["check"].astype(str))
    assert "debit and credit not both non-zero" in checks
    assert any(c.startswith("greater_than_or_equal_to") for c in checks)


def test_m3_invoices_gross_is_net_plus_tax() -> None:
    frame = pd.DataFrame(
        {
            "orno": ["0000123"],
            "cuor": ["111-0000000-9000001"],
            "ivno": ["5001"],
            "ivdt": pd.to_datetime(["2024-10-18"]).astype("datetime64[us]"),
            "currency": ["USD"],
            "net_minor": np.array([6899]),
            "tax_minor": np.array([414]),
            "gross_minor": np.array([7313]),
        }
    ).astype({"orno": str, "cuor": str, "ivno": str, "currency": str})
    M3Invoices.validate(frame)
    frame.loc[0, "gross_minor"] = 7312
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        M3Invoices.validate(frame, lazy=True)
    assert "gross == net + tax" in set(caught.value.failure_cases["check"].astype(str))
