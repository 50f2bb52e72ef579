"""M3's GL field sizes: one definition (reconciliation/m3_fields.py) used by the voucher builder,
the flow and the M3 connector, checked against the sandbox M3's own field dictionary (the
emulator keeps an independent copy on purpose, so a wrong definition is caught here)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connectors.m3.errors import M3Error
from connectors.m3.gl_record import I1_FIELDS, I1_LENGTH, I1Record, encode_i1
from connectors.m3.records import JournalEntry, JournalLine
from flows.settlement_steps import journal_entry
from reconciliation import m3_fields
from reconciliation.vouchers import Voucher, VoucherLimitError, VoucherLine
from sandbox.m3 import tx_gl
from sandbox.m3.metadata import FIELDS

KEY = "AMZ-10000000001-202410"  # 22 characters


def test_the_definition_agrees_with_the_sandbox_m3_field_dictionary() -> None:
    assert FIELDS["DIVI"].length == m3_fields.DIVI_LENGTH
    assert FIELDS["CUCD"].length == m3_fields.CUCD_LENGTH
    assert {FIELDS[f"AIT{i}"].length for i in range(1, m3_fields.AIT_COUNT + 1)} == {m3_fields.AIT_LENGTH}
    assert "AIT8" not in FIELDS
    assert FIELDS["VTXT"].length == m3_fields.VTXT_LENGTH
    assert FIELDS["CUAM"].length == m3_fields.CUAM_LENGTH
    assert 10 ** FIELDS["NLIN"].length - 1 == m3_fields.MAX_VOUCHER_LINES  # NLIN N3


def test_the_i1_layout_is_the_one_the_sandbox_parses() -> None:
    assert tx_gl.I1_LAYOUT == (("RCID", 2), *I1_FIELDS)
    # "I1" + RNNO 9 + GRNR 8 + DIVI 3 + 7 x AIT 10 + CUCD 3 + CUAM 17 + ACDT 8 + VTXT 40 + VTCD 2 + CRTP 2
    # + ARAT 13, by hand:
    assert I1_LENGTH == tx_gl.I1_LENGTH == 2 + 9 + 8 + 3 + 70 + 3 + 17 + 8 + 40 + 2 + 2 + 13 == 177
    assert FIELDS["VTCD"].length == m3_fields.VTCD_LENGTH


def _voucher(text: str, account: str = "3010") -> Voucher:
    lines = (
        VoucherLine(account, ("DE",), 1000, "sales", "Principal"),
        VoucherLine("1930", (), -1000, "bank", "Transfer"),
    )
    return Voucher(KEY, "10000000001", date(2024, 10, 31), "EUR", 2, text, lines)


def test_a_voucher_at_every_limit_passes_domain_flow_and_connector_and_one_more_fails_each() -> None:
    text = f"{KEY} " + "x" * 17  # 40 characters: VTXT's size
    voucher = _voucher(text, account="A" * 10)  # AIT1 at its 10 characters
    entry = journal_entry(voucher, "AAA")
    assert entry.voucher_text == text
    assert all(len(entry.line_text(line)) <= 40 for line in entry.lines)
    record = I1Record(
        1,
        1,
        "AAA",
        entry.lines[0].dimensions,
        "EUR",
        entry.lines[0].amount,
        entry.accounting_date,
        entry.line_text(entry.lines[0]),
    )
    assert len(encode_i1(record)) == 177

    with pytest.raises(VoucherLimitError, match="VTXT"):
        _voucher(text + "y")
    with pytest.raises(VoucherLimitError, match="AIT1"):
        _voucher(text, account="A" * 11)
    with pytest.raises(M3Error, match="VTXT"):
        JournalEntry(
            KEY,
            "AAA",
            date(2024, 10, 31),
            "EUR",
            "x" * 18,
            (JournalLine(("3010",), Decimal("1")), JournalLine(("1930",), Decimal("-1"))),
        )
    with pytest.raises(M3Error, match="AIT1"):
        JournalLine(("A" * 11,), Decimal("1"))


def test_the_line_limit_is_999_in_domain_and_connector() -> None:
    many = tuple(VoucherLine("3010", (), 1, "sales", "Principal") for _ in range(999))
    with pytest.raises(VoucherLimitError, match="NLIN"):
        Voucher(
            KEY,
            "10000000001",
            date(2024, 10, 31),
            "EUR",
            2,
            KEY,
            (*many, VoucherLine("1930", (), -999, "bank", "Transfer")),
        )
    lines = tuple(JournalLine(("3010",), Decimal("0.01")) for _ in range(999))
    with pytest.raises(M3Error, match="999 per voucher"):
        JournalEntry(KEY, "AAA", date(2024, 10, 31), "EUR", "", (*lines, JournalLine(("1930",), Decimal("-9.99"))))
