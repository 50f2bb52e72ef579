"""A run's log as Prefect's API holds it (what the UI shows), read back by flow run id: the
project's own lines are there (set up by the flow itself, not by ``m3sync``), secrets are masked,
one INFO line per settlement, and no traceback for what m3sync expects (a held settlement,
missing configuration, M3 out of reach), also on the path a deployment run takes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from _flow_runs import closed_port, home_with_unreachable_m3, run_logs, without_task_retries
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # the fixture's orders were never invoiced in its M3
from _live_m3 import live_m3  # noqa: F401 - a fixture
from prefect import flow

from connectors.redact import RedactingFilter
from flows.failures import RunFailed, flow_boundary
from flows.run_logging import PREFECT_RUN_LOGGERS, PROJECT_LOGGERS, ExpectedFailures, RunLogHandler, install_run_logging

FIXTURE_ID = "10000000001"  # tests/fixtures/settlements/us_v2_usd.tsv: Amazon.com, USD, total 31.81, all in October
SECRET = "Atzr|IwEBIRefreshTokenNotToBeSeen"


@pytest.fixture
def bare_logging() -> None:
    """No handler, filter or level this project sets up: a run that logs must set them up itself
    (a worker's process never runs ``m3sync``)."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in [h for h in logger.handlers if isinstance(h, RunLogHandler)]:
            logger.removeHandler(handler)
        for f in [f for f in logger.filters if isinstance(f, (RedactingFilter, ExpectedFailures))]:
            logger.removeFilter(f)
        for handler in logger.handlers:
            for f in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(f)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def _messages(logs: list[Any]) -> list[str]:
    return [log.message for log in logs]


def _no_traceback(logs: list[Any]) -> None:
    assert not [m for m in _messages(logs) if "Traceback" in m], _messages(logs)


def test_run_logging_is_installed_once(bare_logging: None) -> None:
    install_run_logging()
    install_run_logging()
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        assert sum(isinstance(h, RunLogHandler) for h in logger.handlers) == 1, name
        assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1, name
        assert logger.level == logging.getLogger("prefect").getEffectiveLevel()
    for name in PREFECT_RUN_LOGGERS:
        assert sum(isinstance(f, ExpectedFailures) for f in logging.getLogger(name).filters) == 1, name


def test_held_then_posted_settlement_lines_without_tracebacks(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, bare_logging: None
) -> None:
    from flows.settlement import settlement_reconciliation

    _, configure, _ = live_m3
    home = str(configure("cloudsuite"))
    held = settlement_reconciliation(files=[str(us_v2_tsv)], home=home, return_state=True)
    logs = run_logs(held.state_details.flow_run_id)
    (line,) = [log for log in logs if log.name == "flows.settlement"]
    assert line.level == logging.INFO
    # Nothing posted; the deposit as the file says it; its M3 has none of the fixture's invoices.
    assert line.message.startswith(f"settlement {FIXTURE_ID} (US, USD) held: 0 vouchers, deposit 31.81 USD, ")
    assert "invoice" in line.message.split(" - ", 1)[1]  # the reasons follow the figures
    _no_traceback(logs)
    assert not [log for log in logs if log.level >= logging.ERROR]  # a hold is an outcome, not an error

    posted = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=home, return_state=True
    )
    logs = run_logs(posted.state_details.flow_run_id)
    (line,) = [log.message for log in logs if log.name == "flows.settlement"]
    # One voucher (the whole settlement is in October), no M3 invoice to match an order against.
    assert line.startswith(f"settlement {FIXTURE_ID} (US, USD) posted: 1 voucher, deposit 31.81 USD, 0 orders matched")
    _no_traceback(logs)


def test_unreachable_m3_and_missing_configuration_are_one_error_line(
    prefect_api_url: str, us_v2_tsv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare_logging: None
) -> None:
    from flows.settlement import settlement_reconciliation

    without_task_retries(monkeypatch)
    port = closed_port()
    home = home_with_unreachable_m3(tmp_path / "down", port)
    state = settlement_reconciliation(files=[str(us_v2_tsv)], home=str(home), return_state=True)
    logs = run_logs(state.state_details.flow_run_id)
    retries = [log for log in logs if log.name == "connectors.m3.client"]
    assert retries and all(log.level == logging.WARNING for log in retries)  # the connector's own lines reach the UI
    (error,) = [log.message for log in logs if log.level >= logging.ERROR]
    assert error == state.message and f"http://127.0.0.1:{port}" in error
    _no_traceback(logs)
    assert not [m for m in _messages(logs) if "not-to-be-seen" in m]

    state = settlement_reconciliation(files=[str(us_v2_tsv)], home=str(tmp_path / "no-config"), return_state=True)
    logs = run_logs(state.state_details.flow_run_id)
    (error,) = [log.message for log in logs if log.level >= logging.ERROR]
    assert "ionapi" in error
    _no_traceback(logs)


@flow(name="log-probe")
@flow_boundary
def _probe(fail: bool = False) -> str:
    logging.getLogger("connectors.probe").warning("LWA answered refresh_token=%s for seller A1", SECRET)
    logging.getLogger("sync.probe").info("an INFO line of the project's")
    if fail:
        raise ValueError("something m3sync did not expect")
    return "done"


def test_project_lines_reach_the_api_with_secrets_masked(prefect_api_url: str, bare_logging: None) -> None:
    state = _probe(return_state=True)
    assert state.is_completed()
    by_logger = {log.name: log for log in run_logs(state.state_details.flow_run_id)}
    warning = by_logger["connectors.probe"]
    assert warning.level == logging.WARNING
    assert SECRET not in warning.message and "refresh_token=***" in warning.message
    assert by_logger["sync.probe"].message == "an INFO line of the project's"


def _deployment_run(probe: Any, parameters: dict[str, Any]) -> Any:
    """Run ``probe`` as a worker's process does (``prefect.engine``): a flow run made first, then
    ``run_flow`` asked for the result, with the run's logger for what escapes it."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.logging.loggers import flow_run_logger

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(probe, parameters=parameters)
    with pytest.raises(Exception) as raised:  # Prefect raises what a Failed run ended with
        run_flow(probe, flow_run=flow_run, error_logger=flow_run_logger(flow_run=flow_run))
    return flow_run, raised.value


def test_deployment_runs_say_a_hold_or_missing_configuration_without_traceback_and_an_unexpected_error_once(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path, bare_logging: None
) -> None:
    from connectors.settings import ConfigurationError
    from flows.settlement import settlement_reconciliation

    _, configure, _ = live_m3
    flow_run, raised = _deployment_run(
        settlement_reconciliation, {"files": [str(us_v2_tsv)], "home": str(configure("cloudsuite"))}
    )
    assert isinstance(raised, RunFailed) and raised.document["settlements"][0]["status"] == "held"
    logs = run_logs(flow_run.id)
    _no_traceback(logs)
    assert not [m for m in _messages(logs) if "Engine execution exited" in m]

    # The case: a home without config.toml used to log two 30-line tracebacks.
    flow_run, raised = _deployment_run(
        settlement_reconciliation, {"files": [str(us_v2_tsv)], "home": str(tmp_path / "no-config")}
    )
    assert isinstance(raised, ConfigurationError)
    logs = run_logs(flow_run.id)
    (error,) = [log.message for log in logs if log.level >= logging.ERROR]
    assert "ionapi" in error
    _no_traceback(logs)

    flow_run, raised = _deployment_run(_probe, {"fail": True})
    assert isinstance(raised, ValueError)
    tracebacks = [m for m in _messages(run_logs(flow_run.id)) if "Traceback" in m]
    assert len(tracebacks) == 1 and "something m3sync did not expect" in tracebacks[0]


def test_settlement_lines_name_figures_and_reasons() -> None:
    from flows.run_logging import REASONS_LOGGED, settlement_line

    posted = {
        "settlement_id": "1234567",
        "source": "a.tsv",
        "marketplace": "Amazon.co.uk",
        "currency": "GBP",
        "total_amount": "12345.67",
        "status": "posted",
        "reasons": [],
        "journal": {"vouchers": [{}, {}, {}]},
        "reconciliation": {"status": "done", "matched": 212, "amount_mismatch": 2, "missing_in_m3": 0},
    }
    assert settlement_line(posted) == (
        "settlement 1234567 (UK, GBP) posted: 3 vouchers, deposit 12,345.67 GBP, 212 orders matched, 2 amount mismatch"
    )
    reasons = [f"reason {n};  said\non two lines" for n in range(REASONS_LOGGED + 2)]
    held = {**posted, "status": "held", "journal": {"vouchers": []}, "reasons": reasons}
    held["reconciliation"] = {"status": "skipped", "matched": 0}
    assert settlement_line(held) == (
        "settlement 1234567 (UK, GBP) held: 0 vouchers, deposit 12,345.67 GBP - "
        "reason 0; said on two lines; reason 1; said on two lines; reason 2; said on two lines (and 2 more)"
    )
    invalid = {"settlement_id": None, "source": "x.tsv", "status": "invalid", "reasons": ["x.tsv:4:12: not a number"]}
    assert settlement_line(invalid) == "file x.tsv invalid - x.tsv:4:12: not a number"


def test_expected_failures_lose_their_traceback_and_a_runs_final_error_is_not_logged_again() -> None:
    from connectors.m3 import M3Unavailable

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException as raised:  # noqa: BLE001 - a record as Prefect's task engine makes it
            return logging.LogRecord(
                "prefect.task_runs",
                logging.ERROR,
                __file__,
                1,
                "Task run failed with exception: %r - Retries are exhausted",
                (raised,),
                (type(raised), raised, raised.__traceback__),
            )

    expected = ExpectedFailures()
    down = record(M3Unavailable("CRS750MI/LstPeriods", "connection to https://m3.example.com:443 failed"))
    assert expected.filter(down) and down.exc_info is None and down.exc_text is None  # one line: it names the host
    surprise = record(ValueError("a bug"))
    assert expected.filter(surprise) and surprise.exc_info is not None  # an unexpected error keeps its traceback
    assert not expected.filter(record(RunFailed("1 of 1 held: 1 (closed)", {"settlements": []}, 3)))
