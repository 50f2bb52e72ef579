"""Each voucher's audit record: the settlement file's SHA-256, the mapping's name and SHA-256, the
tool's version and the posting key's version, stored with the posting, on the Journal sheet and in
the JSON document. Expected values are computed here from the files themselves (hashlib)."""

from __future__ import annotations

import hashlib
import sqlite3
from importlib import metadata
from pathlib import Path

import openpyxl
import pytest
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.state import StateStore
from reconciliation.mapping import load_mapping
from reconciliation.parse import parse_settlement_bytes, read_settlement_file

REPO = Path(__file__).resolve().parents[1]
MAPPING_FILE = REPO / "reconciliation" / "mappings" / "invoice-clearing.yaml"
# The fixture's only settlement (10000000001) is deposited in October 2024: one voucher.
VOUCHER_KEY = "AMZ-10000000001-202410"
AUDIT_HEADERS = ("File SHA-256", "Mapping", "Mapping SHA-256", "Tool version", "Key version")


def _expected(fixture: Path) -> dict[str, object]:
    return {
        "source_sha256": hashlib.sha256(fixture.read_bytes()).hexdigest(),
        "mapping": "invoice-clearing",
        "mapping_sha256": hashlib.sha256(MAPPING_FILE.read_bytes()).hexdigest(),
        "tool_version": metadata.version("m3-amazon-sync"),
        "key_version": 1,
    }


def _journal_audits(workbook: Path) -> dict[str, set[tuple[object, ...]]]:
    """Voucher key -> the distinct audit cells of its rows on the Journal sheet."""
    sheet = openpyxl.load_workbook(workbook, read_only=True)["Journal"]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows)
    key_at = header.index("Voucher key")
    at = [header.index(h) for h in AUDIT_HEADERS]
    found: dict[str, set[tuple[object, ...]]] = {}
    for row in rows:
        found.setdefault(row[key_at], set()).add(tuple(row[i] for i in at))
    return found


def _as_cells(audit: dict[str, object]) -> tuple[object, ...]:
    return (audit["source_sha256"], audit["mapping"], audit["mapping_sha256"], audit["tool_version"], 1)


def test_file_and_mapping_hashes_are_of_the_bytes_read(us_v2_tsv: Path, tmp_path: Path) -> None:
    (settlement,) = read_settlement_file(us_v2_tsv).settlements
    assert settlement.source_sha256 == hashlib.sha256(us_v2_tsv.read_bytes()).hexdigest()
    # A report from Amazon is hashed as the decoded document handed to the parser.
    document = us_v2_tsv.read_bytes().replace(b"\n", b"\r\n")
    (from_amazon,) = parse_settlement_bytes(document, "report 1", charset="utf-8").settlements
    assert from_amazon.source_sha256 == hashlib.sha256(document).hexdigest() != settlement.source_sha256
    assert load_mapping("invoice-clearing").content_sha256 == hashlib.sha256(MAPPING_FILE.read_bytes()).hexdigest()
    own = tmp_path / "own.yaml"
    own.write_bytes(MAPPING_FILE.read_bytes() + b"\n# a comment changes the file, not the mapping\n")
    assert load_mapping(own).content_sha256 == hashlib.sha256(own.read_bytes()).hexdigest()


@pytest.mark.slow
def test_posted_voucher_audit_in_an_upgraded_store_workbook_and_json(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    _server, configure, _ionapi = live_m3
    home = configure("brief")
    with sqlite3.connect(home / "state.sqlite") as raw:  # the postings table before audit records
        raw.execute(
            "CREATE TABLE postings (posting_key VARCHAR(255) PRIMARY KEY, kind VARCHAR(40) NOT NULL, "
            "source VARCHAR(1000) NOT NULL, status VARCHAR(16) NOT NULL, target_ref VARCHAR(255), "
            "content_hash VARCHAR(128) NOT NULL, source_hash VARCHAR(128), detail TEXT, error TEXT, "
            "attempts INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, "
            "owner VARCHAR(255))"
        )
        raw.execute(
            "INSERT INTO postings VALUES ('AMZ-9-202409', 'voucher', 'a.tsv', 'posted', 'AAA/2024/AZ/1', 'h', "
            "NULL, NULL, NULL, 1, '2024-09-25 12:00:00.000000', '2024-09-25 12:00:00.000000', NULL)"
        )
    expected = _expected(us_v2_tsv)
    workbook = tmp_path / "run.xlsx"

    result = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home), report=str(workbook)
    )

    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    (voucher,) = entry["journal"]["vouchers"]
    assert voucher["key"] == VOUCHER_KEY and voucher["audit"] == expected
    with StateStore.for_home(home) as store:
        posting = store.get_posting(VOUCHER_KEY)
        old = store.get_posting("AMZ-9-202409")
    assert posting is not None and posting.status == "posted" and posting.audit == expected
    assert old is not None and old.status == "posted" and old.audit is None  # the old row reads as before
    assert _journal_audits(workbook) == {VOUCHER_KEY: {_as_cells(expected)}}


@pytest.mark.slow
def test_dry_run_shows_the_audit_of_what_it_would_post(prefect_api_url: str, us_v2_tsv: Path, tmp_path: Path) -> None:
    from flows.settlement import settlement_reconciliation

    home = tmp_path / "home"
    home.mkdir()
    workbook = tmp_path / "dry.xlsx"
    expected = _expected(us_v2_tsv)

    result = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home), report=str(workbook), dry_run=True
    )

    (entry,) = result["settlements"]
    assert entry["status"] == "dry_run", entry["reasons"]
    (voucher,) = entry["journal"]["vouchers"]
    assert voucher["key"] == VOUCHER_KEY and voucher["m3_ref"] is None and voucher["audit"] == expected
    assert _journal_audits(workbook) == {VOUCHER_KEY: {_as_cells(expected)}}
    with StateStore.for_home(home) as store:
        assert store.get_posting(VOUCHER_KEY) is None  # a dry run records nothing
