"""``m3sync reverse``: a settlement's vouchers reversed in M3 and posted again under a new version
of their posting keys, each exactly once, against an M3 sandbox over real HTTP in both profiles.

The fixture ``us_v2_usd.tsv`` is settlement 10000000001: one voucher ``AMZ-10000000001-202410``
dated 2024-10-25 (the deposit date) whose deposit line debits the clearing account 1930 with the
file's total-amount, 31.81 USD.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _flow_runs import settle  # a Failed run's document (a held settlement fails the run)
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Client, M3Operations, PostedVoucher
from connectors.m3.operations import key_of
from connectors.state import StateStore
from flows.connections import open_connections
from flows.reversal import reverse_settlement
from reconciliation.vouchers import at_version, key_version, posting_key, reversal_key

SETTLEMENT = "10000000001"
KEY_V1 = "AMZ-10000000001-202410"
KEY_V2 = "AMZ-10000000001-202410-v2"
DEPOSIT = date(2024, 10, 25)
REVERSED_ON = date(2024, 11, 4)


def _vouchers(ionapi: Path, key: str, around: date) -> list[PostedVoucher]:
    """Every voucher M3 holds whose posting key is ``key`` (not only the first), read back."""
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, divi="AAA")
        records = client.execute(
            "GLS200MI", "LstVouchersByDt", {"DIVI": "AAA", "FDAT": around, "TDAT": around}, maxrecs=0
        )
        return [ops.read_voucher("AAA", int(r["YEA4"]), r["VONO"]) for r in records if key_of(r["VTXT"]) == key]


def _lines(voucher: PostedVoucher) -> list[tuple[tuple[str, ...], Decimal]]:
    return sorted((line.dimensions, line.amount) for line in voucher.lines)


def _reverse(home: Path, on: date = REVERSED_ON):
    with open_connections(home, sandbox=False) as connections:
        return reverse_settlement(connections, SETTLEMENT, on)


def test_keys_per_version_fit_m3() -> None:
    assert posting_key("10000000001", "202410") == KEY_V1
    assert posting_key("10000000001", "202410", 2) == KEY_V2
    assert reversal_key(KEY_V2) == "REV-AMZ-10000000001-202410-v2"
    assert (key_version(KEY_V1), key_version(KEY_V2), key_version("AMZ-1-202410-v12")) == (1, 2, 12)
    assert len(reversal_key(KEY_V2)) <= 30  # GLS840 KEY1 holds it without shortening


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_reverse_then_settle_again_posts_version_2_once(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, profile: str
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure(profile)
    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))[
        "settlements"
    ][0]
    assert first["status"] == "posted", first["reasons"]
    assert [v["key"] for v in first["journal"]["vouchers"]] == [KEY_V1]
    (original,) = _vouchers(ionapi, KEY_V1, DEPOSIT)
    assert (Decimal("31.81"),) == tuple(l.amount for l in original.lines if l.dimensions[0] == "1930")

    reversed_ = _reverse(home)
    assert (reversed_.status, reversed_.version, reversed_.next_version, reversed_.exit_code) == ("reversed", 1, 2, 0)
    (reversal,) = _vouchers(ionapi, "REV-" + KEY_V1, REVERSED_ON)
    assert reversal.accounting_date == REVERSED_ON and reversal.currency == "USD"
    # Same lines as the original, each amount negated: the deposit's 31.81 debit becomes a credit.
    assert _lines(reversal) == sorted((dims, -amount) for dims, amount in _lines(original))
    assert [l.amount for l in reversal.lines if l.dimensions[0] == "1930"] == [Decimal("-31.81")]
    assert reversal.debit == reversal.credit == original.debit
    assert len(_vouchers(ionapi, KEY_V1, DEPOSIT)) == 1  # the original stays in M3

    again = _reverse(home)
    assert (again.status, again.exit_code) == ("refused", 2)
    assert "version 1 is already reversed" in again.reasons[0]
    assert len(_vouchers(ionapi, "REV-" + KEY_V1, REVERSED_ON)) == 1

    second = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))[
        "settlements"
    ][0]
    assert second["status"] == "posted", second["reasons"]
    assert [v["key"] for v in second["journal"]["vouchers"]] == [KEY_V2]
    assert second["journal"]["vouchers"][0]["audit"]["key_version"] == 2  # the audit record names the version
    (version_2,) = _vouchers(ionapi, KEY_V2, DEPOSIT)
    assert _lines(version_2) == _lines(original)

    third = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))[
        "settlements"
    ][0]
    assert third["status"] == "duplicate", third["reasons"]
    assert len(_vouchers(ionapi, KEY_V2, DEPOSIT)) == 1
    assert len(_vouchers(ionapi, KEY_V1, DEPOSIT)) == 1


@pytest.mark.slow
def test_reversal_timing_out_is_posted_once_on_rerun(prefect_api_url: str, live_m3, us_v2_tsv: Path) -> None:
    from connectors.m3 import M3WriteInDoubt
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    assert (
        settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))["settlements"][
            0
        ]["status"]
        == "posted"
    )
    # The reversal's write outlives the client's 1 s timeout: the command gives up with the write in
    # doubt while M3 commits it afterwards (as an ION gateway timeout leaves a real M3).
    with (home / "config.toml").open("a") as config:
        config.write("timeout_seconds = 1\n")
    httpx.post(f"{server.base_url}/sandbox/faults", json={"latency_ms": 2500, "transactions": ["GLS200MI/Add"]})
    try:
        with pytest.raises(M3WriteInDoubt):
            _reverse(home)
    finally:
        httpx.delete(f"{server.base_url}/sandbox/faults")
    with StateStore.for_home(home) as state:
        posting = state.get_posting("REV-" + KEY_V1)
        assert posting is not None and posting.status == "in_doubt"
        assert state.settlement_version(SETTLEMENT) == 1  # not recorded until M3 shows the voucher
    rerun = _reverse(home)
    assert rerun.status == "reversed"
    assert rerun.vouchers[0].already_posted  # found in M3, not written again
    assert len(_vouchers(ionapi, "REV-" + KEY_V1, REVERSED_ON)) == 1
    with StateStore.for_home(home) as state:
        assert state.settlement_version(SETTLEMENT) == 2


@pytest.mark.slow
def test_reverse_command_json_and_exit_codes(prefect_api_url: str, live_m3, us_v2_tsv: Path) -> None:
    """One subprocess for the refusal of a bad date (2), one for the reversal (0), one for the second (2)."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    assert (
        settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))["settlements"][
            0
        ]["status"]
        == "posted"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flows.cli", "reverse", SETTLEMENT, "--home", str(home), "--json", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    bad = run("--date", "2024-13-01")
    assert bad.returncode == 2 and "--date '2024-13-01' is not a date" in bad.stderr
    done = run("--date", REVERSED_ON.isoformat())
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "reversed" and document["version"] == 1 and document["next_version"] == 2
    assert document["accounting_date"] == "2024-11-04"
    (voucher,) = document["vouchers"]
    assert (voucher["key"], voucher["reverses"], voucher["already_posted"]) == ("REV-" + KEY_V1, KEY_V1, False)
    assert voucher["m3_ref"].startswith("AAA/2024/")
    refused = run()
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["status"] == "refused"
    assert "already reversed" in refused.stderr and "Traceback" not in refused.stderr


def test_at_version_rekeys_voucher_text(us_v2_tsv: Path) -> None:
    from reconciliation.mapping import load_mapping
    from reconciliation.parse import read_settlement_file
    from reconciliation.pipeline import prepare_settlement

    (settlement,) = read_settlement_file(us_v2_tsv).settlements
    prepared = prepare_settlement(settlement, load_mapping("invoice-clearing"), closed_periods=None)
    (voucher,) = prepared.gates.vouchers
    moved = at_version(voucher, 2)
    assert moved.key == KEY_V2 and moved.text.startswith(KEY_V2 + " ")
    assert moved.text[len(KEY_V2) :] == voucher.text[len(KEY_V1) :]
    assert moved.lines == voucher.lines


def test_state_store_records_each_version_reversed_once(tmp_path: Path) -> None:
    from connectors.state import AlreadyReversed

    with StateStore.for_home(tmp_path) as state:
        assert state.settlement_version(SETTLEMENT) == 1
        assert state.get_reversal(SETTLEMENT, 1) is None
        recorded = state.record_reversal(
            SETTLEMENT, 1, {KEY_V1: "AAA/2024/AZ/1"}, {"REV-" + KEY_V1: "AAA/2024/AZ/2"}, "2024-11-04"
        )
        assert (recorded.version, recorded.reversal, recorded.accounting_date) == (
            1,
            {"REV-" + KEY_V1: "AAA/2024/AZ/2"},
            "2024-11-04",
        )
        assert state.settlement_version(SETTLEMENT) == 2
        assert state.settlement_version("10000000002") == 1  # other settlements keep theirs
        with pytest.raises(AlreadyReversed, match="version 1 is already reversed"):
            state.record_reversal(SETTLEMENT, 1, {}, {}, "2024-11-05")
        assert state.settlement_version(SETTLEMENT) == 2


def test_version_2_into_a_closed_month_moves_to_the_first_open_period(
    prefect_api_url: str, live_m3, us_v2_tsv: Path
) -> None:
    """Version 1 was posted in October 2024 and reversed; October is closed since. Version 2 is not
    posted yet, so --first-open-period moves it to 2024-11-01 (version 1's posting must not count)."""
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    assert (
        settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))["settlements"][
            0
        ]["status"]
        == "posted"
    )
    assert _reverse(home).status == "reversed"
    closed = httpx.post(f"{server.base_url}/sandbox/periods", json={"divi": "AAA", "period": "202410", "closed": True})
    assert closed.status_code == 200, closed.text

    held = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))["settlements"][0]
    assert held["status"] == "held" and "2024-10 is closed" in " ".join(held["reasons"])
    moved = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home), first_open_period=True
    )
    entry = moved["settlements"][0]
    assert entry["status"] == "posted", entry["reasons"]
    assert [(v["key"], v["date"]) for v in entry["journal"]["vouchers"]] == [(KEY_V2, "2024-11-01")]
    assert len(_vouchers(ionapi, KEY_V2, date(2024, 11, 1))) == 1
