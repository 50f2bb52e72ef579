"""Period locks (issue 11, item 6): the flow reads M3's closed periods before it writes anything.

A split settlement (September and October vouchers) is settled in-process against an M3
sandbox configured as a live M3; periods are closed through the sandbox's admin API and what
M3 booked is counted and read back over HTTP.

The split settlement is the US fixture with its first two orders posted on 2024-09-28 (its
start moved to 2024-09-25). Worked by hand from the fixture's rows:
- order 111-...-9000001: 68.99 + 4.14 - 4.14 - 5.84 - 12.42 - 0.37 = 50.36
- order 114-...-9000002: 68.99 + 2.99 - 5.84 - 12.42 - 0.37 - 2.99 = 50.36
so September's voucher AMZ-10000000001-202409 carries 100.72 to the carry-over account 1595
(debit, +S_M: vouchers.py's month split) and October's voucher AMZ-10000000001-202410
(dated the deposit day, 2024-10-25) takes it back (credit 100.72).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _flow_runs import settle  # a Failed run's document (a held settlement fails the run)
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Client, M3Operations, PostedVoucher
from flows.cli import build_parser

SEPTEMBER_KEY, OCTOBER_KEY = "AMZ-10000000001-202409", "AMZ-10000000001-202410"
CARRIED = Decimal("100.72")


@pytest.fixture
def split_tsv(us_v2_tsv: Path, tmp_path: Path) -> Path:
    text = us_v2_tsv.read_text(encoding="utf-8")
    assert text.count("2024-10-18") == 24  # the two orders' 12 rows: posted-date and posted-date-time each
    text = text.replace("2024-10-18", "2024-09-28").replace("2024-10-09 14:28:38", "2024-09-25 14:28:38")
    path = tmp_path / "split.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def _close(base_url: str, period: str) -> None:
    answer = httpx.post(f"{base_url}/sandbox/periods", json={"divi": "AAA", "period": period, "closed": True})
    assert answer.status_code == 200, answer.text


def _voucher_count(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/sandbox/state").json()["vouchers"])


def _voucher(ionapi: Path, key: str, around: date) -> PostedVoucher:
    with M3Client.from_ionapi(ionapi) as client:
        found = M3Operations(client, divi="AAA").find_voucher(key, around)
    assert found is not None, f"{key} not in M3"
    return found


def _carry_over(voucher: PostedVoucher) -> Decimal:
    (amount,) = [line.amount for line in voucher.lines if line.dimensions[:1] == ("1595",)]
    return amount


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_closed_periods_are_read_from_m3(live_m3, profile: str) -> None:
    server, configure, ionapi = live_m3
    _close(server.base_url, "202409")
    _close(server.base_url, "202501")
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, profile, divi="AAA")  # type: ignore[arg-type]  # a profile name from the list
        # The year end lies inside the range: December to February of the next year.
        assert ops.closed_periods(date(2024, 8, 15), date(2025, 2, 1)) == frozenset({"202409", "202501"})
        assert ops.closed_periods(date(2024, 10, 1), date(2024, 12, 31)) == frozenset()


def test_closed_first_month_holds_without_the_flag_and_moves_with_it(
    prefect_api_url: str, live_m3, split_tsv: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _close(server.base_url, "202409")

    held = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[str(split_tsv)], home=str(home))
    (entry,) = held["settlements"]
    assert entry["status"] == "held"
    (reason,) = [r for r in entry["reasons"] if "2024-09" in r]
    assert SEPTEMBER_KEY in reason and "closed" in reason and "--first-open-period" in reason
    assert "2024-10" in reason  # the first open period it would go to
    assert _voucher_count(server.base_url) == 0

    moved = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(split_tsv)], home=str(home), first_open_period=True
    )
    (entry,) = moved["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert _voucher_count(server.base_url) == 2
    september = _voucher(ionapi, SEPTEMBER_KEY, date(2024, 10, 1))
    october = _voucher(ionapi, OCTOBER_KEY, date(2024, 10, 25))
    assert september.accounting_date == date(2024, 10, 1)  # the first day of the first open period
    assert october.accounting_date == date(2024, 10, 25)  # the deposit day, as without locks
    assert _carry_over(september) == CARRIED and _carry_over(october) == -CARRIED


def test_every_voucher_is_checked_before_the_first_is_written(prefect_api_url: str, live_m3, split_tsv: Path) -> None:
    """Closing the SECOND month holds the whole settlement: September's voucher is not written either."""

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    _close(server.base_url, "202410")
    result = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[str(split_tsv)], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "held"
    assert any(OCTOBER_KEY in r and "2024-10 is closed" in r for r in entry["reasons"]), entry["reasons"]
    assert _voucher_count(server.base_url) == 0


def test_all_months_open_posts_as_before(prefect_api_url: str, live_m3, split_tsv: Path) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    result = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(split_tsv)], home=str(home), first_open_period=True
    )
    (entry,) = result["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert _voucher_count(server.base_url) == 2
    september = _voucher(ionapi, SEPTEMBER_KEY, date(2024, 9, 30))
    assert september.accounting_date == date(2024, 9, 30)  # its month's last day: nothing moved
    assert _carry_over(september) == CARRIED


def test_settle_accepts_the_first_open_period_flag() -> None:
    parser = build_parser()
    assert parser.parse_args(["settle", "x.tsv", "--first-open-period"]).first_open_period is True
    assert parser.parse_args(["settle", "x.tsv"]).first_open_period is False
