"""The README's production section is scripts/try-deployment.sh: run as an operator would, against
the session's real Prefect server, it ends with a scheduled deployment and a run of it, by a
worker, against the sandbox, that settled the new settlements and ended Completed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _prefect_server import PrefectServer, prefect_server  # noqa: F401 - a fixture

from connectors.state import StateStore

REPO = Path(__file__).resolve().parents[1]
SETTLEMENT = "settlement-reconciliation/settlement-reconciliation"


@pytest.mark.slow
def test_from_an_empty_home_to_a_scheduled_deployment_and_a_green_run(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    environment = prefect_server.environment(
        M3SYNC_HOME=str(home),
        VENV=str(Path(sys.executable).parents[1]),  # the project's environment (make install's .venv)
        PYTHONPATH=str(REPO),
        DEMO_ORDERS="30",  # a smaller world than the demo's 400 orders: the same commands, faster
    )
    del environment["PREFECT_HOME"]  # the script keeps Prefect's files under HOME/prefect
    script = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "try-deployment.sh")],
        cwd=tmp_path,  # any folder: the script finds the checkout itself
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = script.communicate(timeout=420)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the worker, if the script did not stop it
            os.killpg(script.pid, signal.SIGKILL)
    assert script.returncode == 0, output[-4000:]
    assert output.rstrip().endswith("the settlement deployment ran against the sandbox and ended Completed")

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(SETTLEMENT)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        # Besides the scheduler's runs for the coming mornings, the one the script ran.
        [run] = [r for r in runs if r.state is not None and not r.state.is_scheduled()]
        task_runs = client.read_task_runs(flow_run_filter=_runs(run.id))
    # Scheduled daily at 06:30 UTC, one run at a time, on the process pool.
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [("30 6 * * *", True)]
    assert deployment.global_concurrency_limit is not None and deployment.global_concurrency_limit.limit == 1
    assert deployment.work_pool_name == "m3sync-process"
    # The run: by the worker, against the sandbox, green, and it settled what the 14 days brought.
    assert run.state is not None and (run.state.type.value, run.state.name) == ("COMPLETED", "Completed")
    assert run.parameters["sandbox"] is True and run.work_pool_name == "m3sync-process"
    settled = sorted(t.name.removeprefix("settle-") for t in task_runs if t.name.startswith("settle-"))
    assert settled, "the deployment's run found nothing new to settle"
    store = StateStore.for_home(home)
    try:
        posted = {p.posting_key.split("-")[1] for p in store.list_postings(kind="voucher", status="posted")}
    finally:
        store.close()
    assert set(settled) <= posted


def _runs(flow_run_id: object) -> object:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
