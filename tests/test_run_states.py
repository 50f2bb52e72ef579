"""A run's final state tells the truth: Completed only when every settlement was posted, dry run,
duplicate or submitted; Failed, with a one-line message naming what and why, otherwise. The
document (what ``m3sync settle --json`` prints) and the exit code travel in the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _flow_runs import closed_port, home_with_unreachable_m3, without_task_retries
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # the fixture's orders were never invoiced in its M3
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Unavailable
from flows.contract import MESSAGE_NAMES, exit_code, run_document, run_message, run_state
from flows.exit_codes import EXIT_FAILED, EXIT_HELD, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE
from flows.failures import Endpoint, RunFailed, known_failure

FIXTURE_ID = "10000000001"  # the settlement id of tests/fixtures/settlements/us_v2_usd.tsv


def _entry(settlement_id: str | None, status: str, *reasons: str, source: str = "s.tsv") -> dict[str, Any]:
    return {"settlement_id": settlement_id, "source": source, "status": status, "reasons": list(reasons)}


def test_posted_dry_run_duplicate_and_submitted_runs_complete_with_the_document() -> None:
    document = {
        "settlements": [
            _entry("1", "posted"),
            _entry("2", "dry_run"),
            _entry("3", "duplicate", "already posted"),
            _entry("4", "submitted", "batch 7"),
        ],
        "unreachable": False,
    }
    assert run_state(document) is document  # Prefect makes a Completed state of a plain value
    assert run_message(document) == ""


def test_held_and_invalid_settlements_fail_the_run_naming_them_and_keep_the_document() -> None:
    held = [
        _entry(str(n), "held", f"accounting period 2024-{n:02} is closed (voucher AMZ-{n}-2024{n:02}); reopen it")
        for n in range(1, MESSAGE_NAMES + 3)
    ]
    document = {
        "settlements": [
            _entry("100", "posted"),
            *held,
            _entry(None, "invalid", "x.tsv:4:12: amount 'abc' is not a number", source="x.tsv"),
        ],
        "unreachable": False,
    }
    state = run_state(document)
    assert state.is_failed()
    # 7 entries: 1 posted, 5 held (3 named, 2 counted), 1 file that could not be read; each reason up to its first ";"
    assert state.message == (
        "5 of 7 held: 1 (accounting period 2024-01 is closed (voucher AMZ-1-202401)), "
        "2 (accounting period 2024-02 is closed (voucher AMZ-2-202402)), "
        "3 (accounting period 2024-03 is closed (voucher AMZ-3-202403)) and 2 more; "
        "1 of 7 invalid: x.tsv:4:12: amount 'abc' is not a number"
    )
    failed = state.data
    assert isinstance(failed, RunFailed)
    assert failed.document is document and failed.exit_code == exit_code(document) == EXIT_INVALID


def test_a_long_reason_is_cut_and_a_failed_workbook_is_said() -> None:
    document = {
        "settlements": [_entry("9", "failed", "unexpected error in m3sync while posting: " + "x" * 200)],
        "unreachable": False,
        "report_error": "workbook not written: OSError: No space left on device",
    }
    message = run_message(document)
    first, second = message.split("; ")
    assert first.startswith("1 of 1 failed: 9 (unexpected error in m3sync while posting: xxx")
    assert first.endswith("…)") and len(first) == len("1 of 1 failed: 9 ()") + 60
    assert second == "workbook not written: OSError: No space left on device"
    assert run_state(document).data.exit_code == EXIT_FAILED


def test_m3_out_of_reach_is_named_by_its_host_first() -> None:
    stopped = (
        "M3 unreachable: M3 unavailable for CRS750MI/LstPeriods: connection to https://m3.example.com:443 "
        "failed (ConnectError); nothing more posted"
    )
    document = {"settlements": [_entry("1", "held", stopped), _entry("2", "held", stopped)], "unreachable": True}
    m3 = Endpoint("M3", "https://m3.example.com:443", 16)
    message = run_message(document, m3)
    assert message.startswith(
        "M3 at https://m3.example.com:443 unreachable after 16 attempts: M3 unavailable for CRS750MI/LstPeriods: "
        "connection to https://m3.example.com:443 failed (ConnectError); nothing more posted; "
        "2 of 2 held: 1 (M3 unreachable"
    )
    assert run_state(document, m3).data.exit_code == EXIT_UNREACHABLE
    rejected = {**document, "settlements": [_entry("1", "held", "M3 rejected the credentials: HTTP 401")]}
    assert run_message(rejected, m3).startswith("M3 at https://m3.example.com:443 rejected the credentials: HTTP 401;")


# ---- the settlement flow, in this process, against a sandbox M3 configured as a live one --------------


def test_all_posted_completes_and_one_held_fails_naming_it(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    _, configure, _ = live_m3
    home = str(configure("cloudsuite"))
    # Its M3 has no invoice for the fixture's orders nor a credit note for its refund: held by default.
    held = settlement_reconciliation(files=[str(us_v2_tsv)], home=home, return_state=True)
    assert held.is_failed()
    assert held.message.startswith(f"1 of 1 held: {FIXTURE_ID} (")
    document = run_document(held)
    assert [e["status"] for e in document["settlements"]] == ["held"]
    assert exit_code(document) == EXIT_HELD == held.result(raise_on_failure=False).exit_code
    with pytest.raises(RunFailed, match=f"1 of 1 held: {FIXTURE_ID}"):  # a direct call raises it, not TypeError
        held.result()

    posted = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=home, return_state=True
    )
    assert posted.is_completed() and posted.name == "Completed"
    document = posted.result()
    assert [e["status"] for e in document["settlements"]] == ["posted"]
    assert exit_code(document) == EXIT_OK and run_document(posted) == document


def test_m3_unreachable_fails_the_run_naming_the_host(
    prefect_api_url: str, us_v2_tsv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.settlement import settlement_reconciliation

    without_task_retries(monkeypatch)
    port = closed_port()
    home = home_with_unreachable_m3(tmp_path / "home", port)
    state = settlement_reconciliation(files=[str(us_v2_tsv)], home=str(home), return_state=True)
    assert state.is_failed()
    # Found out when the run opens its connections (M3's company is checked first): nothing was settled.
    assert state.message.startswith(f"M3 at http://127.0.0.1:{port} unreachable: M3 unavailable for "), state.message
    assert f"connection to http://127.0.0.1:{port} failed" in state.message
    assert "secret-not-to-be-seen" not in state.message
    with pytest.raises(M3Unavailable):  # m3sync gives it exit code 4, as before
        run_document(state)
    assert known_failure(state.result(raise_on_failure=False)) == EXIT_UNREACHABLE


def test_missing_configuration_fails_the_run_in_one_line(prefect_api_url: str, us_v2_tsv: Path, tmp_path: Path) -> None:
    from connectors.settings import ConfigurationError
    from flows.settlement import settlement_reconciliation

    state = settlement_reconciliation(files=[str(us_v2_tsv)], home=str(tmp_path / "no-config"), return_state=True)
    assert state.is_failed()
    assert "ionapi" in state.message and "\n" not in state.message
    with pytest.raises(ConfigurationError):  # m3sync gives it exit code 2, as before
        run_document(state)


def test_every_flow_ends_the_same_way_and_the_cli_reads_the_exit_code_from_the_state() -> None:
    """``end_run`` (orders, shipments, replay, settlement): the document itself at exit 0; else Failed
    with the message, its data the document and the code, which ``run_exit_code`` gives back."""
    from flows.contract import run_exit_code
    from flows.failures import end_run

    document = {"dead_lettered": [{"order": "111-1"}]}
    assert end_run(document, EXIT_OK, "") is document
    state = end_run(document, EXIT_HELD, "1 order(s) dead-lettered: 111-1")
    assert state.is_failed() and state.message == "1 order(s) dead-lettered: 111-1"
    assert run_document(state) == document and run_exit_code(state) == EXIT_HELD
    assert run_exit_code(end_run(document, EXIT_UNREACHABLE, "stopped")) == EXIT_UNREACHABLE
    from prefect.states import Completed

    assert run_exit_code(Completed(data=document)) == EXIT_OK  # what Prefect makes of a returned document
