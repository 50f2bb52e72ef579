"""``m3sync report --from DATE --to DATE``: the settlement workbook of the settlements deposited in
a range, written from the outcomes ``settle`` kept (reconciliation/settled.py), without M3.

Two settlements: the fixture ``us_v2_usd.tsv`` (10000000001, deposited 2024-10-25, total 31.81
USD) and a copy of it moved one month on (10000000002: every ``2024-10-`` date becomes
``2024-11-``, so deposited 2024-11-25, same lines, same total).
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from _cli import m3sync
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS_ARGS
from _settlement_builders import make_settlement

from flows.period_report import ReportInputError, parse_period
from reconciliation.outcome import SettlementOutcome
from reconciliation.settled import SettledOutcomes, SettledRecordError

OCTOBER, NOVEMBER = "10000000001", "10000000002"


def _moved_to_november(fixture: Path, target: Path) -> Path:
    text = fixture.read_text(encoding="utf-8")
    target.write_text(text.replace(OCTOBER, NOVEMBER).replace("2024-10-", "2024-11-"), encoding="utf-8")
    return target


def _cells(path: Path) -> list[tuple[str, tuple[object, ...]]]:
    """Every row of every sheet of the workbook: (sheet name, its values)."""
    workbook = openpyxl.load_workbook(path)
    return [(sheet.title, row) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]


def test_report_over_a_month_holds_its_settlement_only(prefect_api_url: str, us_v2_tsv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    october = shutil.copy(us_v2_tsv, tmp_path / "october.tsv")
    november = _moved_to_november(us_v2_tsv, tmp_path / "november.tsv")
    settled = m3sync(
        "settle",
        str(october),
        str(november),
        "--sandbox",
        "--json",
        "--home",
        str(home),
        *POST_WITHOUT_M3_DOCUMENTS_ARGS,
        api_url=prefect_api_url,
    )
    assert settled.code == 0, settled.stderr
    assert {(e["settlement_id"], e["deposit_date"], e["status"]) for e in settled.document["settlements"]} == {
        (OCTOBER, "2024-10-25", "posted"),
        (NOVEMBER, "2024-11-25", "posted"),
    }

    workbook = tmp_path / "out" / "november.xlsx"
    runs = {
        "november": ("--from", "2024-11-01", "--to", "2024-11-30", "--json", "--report", str(workbook)),
        "empty range": ("--from", "2024-12-01", "--to", "2024-12-31"),
        "inverted range": ("--from", "2024-11-30", "--to", "2024-11-01"),
        "bad date": ("--from", "2024-11-31", "--to", "2024-12-31"),
        "no history": ("--from", "2024-11-01", "--to", "2024-11-30", "--home", str(tmp_path / "new-home")),
        "unwritable workbook": ("--from", "2024-11-01", "--to", "2024-11-30", "--report", str(tmp_path)),
    }
    # No Prefect, no M3: each run is a plain process; they run side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            name: pool.submit(
                m3sync, "report", *args, *(() if "--home" in args else ("--home", str(home))), api_url=prefect_api_url
            )
            for name, args in runs.items()
        }
        done = {name: future.result() for name, future in futures.items()}

    report = done.pop("november")
    assert report.code == 0, report.stderr
    document = report.document
    assert document["period"] == {"from": "2024-11-01", "to": "2024-11-30", "by": "deposit_date"}
    (entry,) = document["settlements"]
    assert (entry["settlement_id"], entry["deposit_date"], entry["status"]) == (NOVEMBER, "2024-11-25", "posted")
    assert [v["key"] for v in entry["journal"]["vouchers"]] == [f"AMZ-{NOVEMBER}-202411"]
    assert document["totals"] == {"USD": "31.81"}  # the file's total-amount
    assert document["report"] == str(workbook)

    rows = _cells(workbook)
    ids = {v for _, row in rows for v in row if isinstance(v, str) and re.fullmatch(r"1000000000\d", v)}
    assert ids == {NOVEMBER}  # October's settlement is nowhere in the workbook
    assert any(f"AMZ-{NOVEMBER}-202411" in row for _, row in rows)
    # The fixture's deposit line: 31.81 USD debited to the clearing account 1930.
    assert any(sheet == "Journal" and "1930" in row and 31.81 in row for sheet, row in rows)
    # Its 20 transaction lines, each once on the Lines sheet.
    assert sum(1 for sheet, row in rows if sheet == "Lines" and row[0] == NOVEMBER) == 20

    expected = {
        "empty range": "no settlement with a deposit date from 2024-12-01 to 2024-12-31",
        "inverted range": "--from 2024-11-30 is after --to 2024-11-01",
        "bad date": "--from '2024-11-31' is not a date",
        "no history": "no settlement history",
        "unwritable workbook": "must be an .xlsx file",
    }
    for name, run in done.items():
        lines = run.stderr.splitlines()
        assert (run.code, len(lines), run.stdout) == (2, 1, ""), (name, run.stderr)
        assert lines[0].startswith("m3sync: ") and expected[name] in lines[0], (name, lines)
    assert not (tmp_path / "new-home").exists()  # a home without history is not created by asking


def _outcome(status: str, *, deposit: str = "2024-10-25 14:28:39", settlement_id: str = OCTOBER) -> SettlementOutcome:
    rows = [("Order", "ItemPrice", "Principal", 1000, "2024-10-18", "111-0000000-0000001")]
    settlement = make_settlement(rows, settlement_id=settlement_id, deposit=deposit)
    return SettlementOutcome(settlement=settlement, status=status)  # type: ignore[arg-type] - statuses as text


def test_kept_outcomes_follow_the_latest_run_and_the_deposit_date(tmp_path: Path) -> None:
    kept = SettledOutcomes(tmp_path)
    assert kept.records() == []
    assert not kept.record(_outcome("dry_run"))  # a dry run is kept nowhere
    assert kept.records() == []

    assert kept.record(_outcome("held"))
    assert kept.record(_outcome("posted"))  # a later run's outcome replaces the earlier one
    assert not kept.record(_outcome("duplicate"))  # "already posted" says nothing new: the posted one stays
    (record,) = kept.records()
    assert (record.settlement_id, record.deposit_date, record.path.name) == (
        OCTOBER,
        date(2024, 10, 25),
        "2024-10-25_10000000001.pickle",
    )
    (loaded,) = kept.load([record])
    assert (loaded.status, loaded.settlement.total_minor) == ("posted", 1000)

    # Both ends of the range are included; the deposit date (UTC day) decides, not the period's end.
    assert [r.settlement_id for r in kept.in_period(date(2024, 10, 25), date(2024, 10, 25))] == [OCTOBER]
    assert kept.in_period(date(2024, 10, 26), date(2024, 12, 31)) == []
    assert kept.in_period(date(2024, 10, 1), date(2024, 10, 24)) == []

    kept.record(_outcome("posted", deposit="2024-11-02 00:00:01"))  # a corrected file: one record, moved
    assert [(r.settlement_id, r.deposit_date) for r in kept.records()] == [(OCTOBER, date(2024, 11, 2))]


def test_an_unreadable_kept_outcome_is_one_line_and_settling_again_replaces_it(tmp_path: Path) -> None:
    kept = SettledOutcomes(tmp_path)
    assert kept.record(_outcome("duplicate"))  # none kept yet (posted before outcomes were kept)
    (record,) = kept.records()
    record.path.write_bytes(b"not a pickle")
    with pytest.raises(SettledRecordError, match=re.escape(str(record.path))) as raised:
        kept.load([record])
    assert "\n" not in str(raised.value)
    assert kept.record(_outcome("duplicate"))  # the unreadable one is replaced
    assert kept.load(kept.records())[0].status == "duplicate"


def test_period_arguments() -> None:
    assert parse_period("2024-10-01", "2024-10-31") == (date(2024, 10, 1), date(2024, 10, 31))
    assert parse_period("2024-10-31", "2024-10-31") == (date(2024, 10, 31), date(2024, 10, 31))  # one day
    with pytest.raises(ReportInputError, match="is after"):
        parse_period("2024-11-01", "2024-10-31")
    with pytest.raises(ReportInputError, match=r"--to '31\.10\.2024' is not a date"):
        parse_period("2024-10-01", "31.10.2024")
