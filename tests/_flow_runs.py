"""Flow runs in this process (under the session's Prefect server), their documents and their logs."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def settle(**parameters: Any) -> dict[str, Any]:
    """The settlement flow's document, whether the run ended Completed or Failed because of its
    settlements (a Failed run's direct call raises: its document travels in the state)."""
    from flows.contract import run_document
    from flows.settlement import settlement_reconciliation

    return run_document(settlement_reconciliation(**parameters, return_state=True))


def run_logs(flow_run_id: Any) -> list[Any]:
    """Every log line of the flow run (its task runs' included) as Prefect's API holds it, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the handler sends in batches: what the run logged is in the API after this
    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def home_with_unreachable_m3(home: Path, port: int) -> Path:
    """A home whose config.toml points M3 (an .ionapi file, as a live installation's) at ``port``."""
    home.mkdir(parents=True, exist_ok=True)
    ionapi = home / "m3.ionapi"
    ionapi.write_text(
        json.dumps(
            {
                "ti": "T",
                "ci": "c",
                "cs": "client-secret-not-to-be-seen",
                "iu": f"http://127.0.0.1:{port}",
                "pu": f"http://127.0.0.1:{port}/T/as/",
                "ot": "token.oauth2",
                "or": "revoke_token.oauth2",
                "saak": "a",
                "sask": "service-secret-not-to-be-seen",
            }
        )
    )
    (home / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\n')
    return home


def without_task_retries(monkeypatch: Any) -> None:
    """The connector tasks' own retries off (their waits are 2, 8, 30 s): the M3 client still tries
    each request ``backoff.attempts`` times."""
    from flows import settlement_steps as steps

    for task in (
        steps.read_period_locks,
        steps.fetch_invoices,
        steps.post_vouchers,
        steps.settle_customer_ledger,
        steps.fetch_from_amazon,
    ):
        monkeypatch.setattr(task, "retries", 0)
