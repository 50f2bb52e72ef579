"""``m3sync ops setup`` against a real ``prefect server start`` (tests/_prefect_server.py): the
work pool, the concurrency limit and the alerting automations, created once and left alone the
second time; a flow run that ends Failed really reaches the notification block's webhook."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _prefect_server import PrefectServer, free_port, prefect_server  # noqa: F401 - a fixture

from flows.ops import (
    FAILED_AUTOMATION,
    DeploymentSpec,
    OpsSetupError,
    deployments_in,
    flow_name,
    project_flows,
    setup_operations,
)

REPO = Path(__file__).resolve().parents[1]
SETTLEMENT = "settlement-reconciliation/settlement-reconciliation"
ORDERS, SHIPMENTS = "order-sync/order-sync", "shipment-sync/shipment-sync"
REFUNDS = "refund-credit/refund-credit"
CATALOG = "catalog-sync/catalog-sync"
INVENTORY = "inventory-sync/inventory-sync"
DEPLOYMENTS = (SETTLEMENT, ORDERS, SHIPMENTS, REFUNDS, CATALOG, INVENTORY)  # prefect.yaml's, in its order
STALE_AUTOMATION = f"m3sync: {SETTLEMENT} not run for 26 h"
POOL = "m3sync-ops-test"  # not the production name: the try-deployment test shares the server
BLOCK = "ops-test-alerts"


# ---- prefect.yaml and the flows, read without a server -------------------------------------


def test_the_deployments_of_prefect_yaml_and_their_flows() -> None:
    # prefect.yaml declares six deployments; flows/settlement.py, flows/orders.py, flows/refunds.py,
    # flows/catalog.py and flows/inventory.py name their flows with @flow(name="..."), flows/shipments.py's
    # after its function.
    assert deployments_in(REPO / "prefect.yaml") == [
        DeploymentSpec(flow="settlement-reconciliation", name="settlement-reconciliation"),
        DeploymentSpec(flow="order-sync", name="order-sync"),
        DeploymentSpec(flow="shipment-sync", name="shipment-sync"),
        DeploymentSpec(flow="refund-credit", name="refund-credit"),
        DeploymentSpec(flow="catalog-sync", name="catalog-sync"),
        DeploymentSpec(flow="inventory-sync", name="inventory-sync"),
    ]
    assert project_flows() == [
        "catalog-sync",
        "dead-letter-replay",
        "inventory-sync",
        "order-sync",
        "refund-credit",
        "settlement-reconciliation",
        "shipment-sync",
    ]


def test_prefect_yaml_limits_each_deployment_to_one_run_and_reads_the_checkout_from_the_environment() -> None:
    import yaml

    document = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert [d["concurrency_limit"] for d in document["deployments"]] == [1] * len(DEPLOYMENTS)
    assert document["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $M3SYNC_CHECKOUT }}"}}
    ]
    assert [d["work_pool"]["name"] for d in document["deployments"]] == ["m3sync-process"] * len(DEPLOYMENTS)
    # Orders every 5 minutes, shipments every 10, inventory every 15 (in seconds); settlements, refunds
    # and the catalog daily.
    assert [d.get("schedules", [{}])[0].get("interval") for d in document["deployments"]] == [
        None,
        300,
        600,
        None,
        None,
        900,
    ]
    assert [d["schedules"][0].get("cron") for d in document["deployments"]] == [
        "30 6 * * *",
        None,
        None,
        "0 6 * * *",
        "0 5 * * *",
        None,
    ]


def test_a_flow_without_a_name_is_named_after_its_function(tmp_path: Path) -> None:
    source = tmp_path / "f.py"
    source.write_text("from prefect import flow\n\n@flow\ndef nightly_orders_sync():\n    pass\n")
    assert flow_name(source, "nightly_orders_sync") == "nightly-orders-sync"
    with pytest.raises(OpsSetupError, match=r"f\.py: no function absent"):
        flow_name(source, "absent")


def test_without_prefect_api_url_nothing_is_attempted() -> None:
    with pytest.raises(OpsSetupError, match="^PREFECT_API_URL is not set: ops setup configures a running"):
        setup_operations(
            None, notify_block="custom-webhook/x", pool=POOL, pool_type="process", prefect_yaml=REPO / "prefect.yaml"
        )


# ---- against the server -------------------------------------------------------------------


class Receiver:
    """A webhook on 127.0.0.1 that keeps the JSON documents POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, text: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for document in self.received:
                if text in document["subject"]:
                    return document
            time.sleep(0.2)
        raise AssertionError(f"no notification mentioning {text!r} within {timeout} s: {self.received}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()


@contextlib.contextmanager
def _client(server: PrefectServer) -> Iterator[Any]:
    """A Prefect client of this process talking to ``server`` (and blocks saved there)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        yield client


def _a_clean_slate(server: PrefectServer, hook_url: str) -> Any:
    """The server as a new installation has it, whatever other tests of the session did: no
    automations of ours, prefect.yaml's deployments without a concurrency limit (as deployed by
    an older prefect.yaml), the notification block pointing at this test's webhook."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.exceptions import ObjectNotFound

    with _client(server) as client:
        for name in (FAILED_AUTOMATION, STALE_AUTOMATION):
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)
        for full_name in DEPLOYMENTS:
            try:
                client.delete_deployment(client.read_deployment_by_name(full_name).id)
            except ObjectNotFound:
                pass
            flow, name = full_name.split("/")
            client.create_deployment(flow_id=client.create_flow_from_name(flow), name=name, entrypoint="flows/x.py:x")
        block = CustomWebhookNotificationBlock(
            name="ops test", url=hook_url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        )
        return block.save(BLOCK, overwrite=True)


def _ops_setup(server: PrefectServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "ops", "setup", *args],
        cwd=REPO,
        env=server.environment(PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_setup_twice_then_a_held_settlement_notifies(
    prefect_server: PrefectServer, receiver: Receiver, us_v2_tsv: Path, tmp_path: Path
) -> None:
    server = prefect_server
    block_id = _a_clean_slate(server, receiver.url)
    args = ("--notify-block", f"custom-webhook/{BLOCK}", "--pool", POOL)

    first = _ops_setup(server, *args)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        f"work pool {POOL} (process): created",
        *(f"deployment {d}: concurrency limit 1: updated" for d in DEPLOYMENTS),
        f"automation '{FAILED_AUTOMATION}': created",
        f"automation '{STALE_AUTOMATION}': created",
        "9 changed",  # the pool, six deployments, two automations
    ]
    second = _ops_setup(server, *args)
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout.splitlines() == [
        f"work pool {POOL} (process): unchanged",
        *(f"deployment {d}: concurrency limit 1: unchanged" for d in DEPLOYMENTS),
        f"automation '{FAILED_AUTOMATION}': unchanged",
        f"automation '{STALE_AUTOMATION}': unchanged",
        "nothing changed: everything was already set up",
    ]

    with _client(server) as client:
        pool = client.read_work_pool(POOL)
        assert pool.type == "process"
        assert "command" in pool.base_job_template["variables"]["properties"]  # the process worker's template
        limits = [client.read_deployment_by_name(d).global_concurrency_limit for d in DEPLOYMENTS]
        assert [limit.limit if limit else None for limit in limits] == [1] * len(DEPLOYMENTS)
        [failed] = client.read_automations_by_name(FAILED_AUTOMATION)
        [stale] = client.read_automations_by_name(STALE_AUTOMATION)
    assert failed.trigger.posture == "Reactive"
    assert failed.trigger.expect == {"prefect.flow-run.*"}
    assert failed.trigger.match.root["prefect.state-type"] == ["FAILED", "CRASHED"]
    assert failed.trigger.match_related.root == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": [
            "catalog-sync",
            "dead-letter-replay",
            "inventory-sync",
            "order-sync",
            "refund-credit",
            "settlement-reconciliation",
            "shipment-sync",
        ],
    }
    assert [a.block_document_id for a in failed.actions] == [block_id]
    assert stale.trigger.posture == "Proactive"
    assert stale.trigger.within == timedelta(hours=26)
    assert stale.trigger.threshold == 1
    assert stale.trigger.match.root["prefect.state-type"] == ["COMPLETED", "FAILED"]
    assert [m.root for m in stale.trigger.match_related] == [
        {"prefect.resource.role": "flow", "prefect.resource.name": "settlement-reconciliation"},
        {"prefect.resource.role": "deployment", "prefect.resource.name": "settlement-reconciliation"},
    ]
    assert [a.block_document_id for a in stale.actions] == [block_id]

    # The real settlement flow against this server: a file whose summary row says 31.80 while its
    # lines add up to 31.81 is held (checked before anything is posted), so the run ends Failed and
    # the automation sends flow, run, the state's one-line message and the run's link.
    lines = us_v2_tsv.read_text(encoding="utf-8").split("\n")
    settlement_id = lines[1].split("\t")[0]
    held = tmp_path / "unbalanced.tsv"
    held.write_text("\n".join([lines[0], lines[1].replace("\t31.81\t", "\t31.80\t"), *lines[2:]]), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "flows.cli", "settle", str(held), "--dry-run", "--home", str(tmp_path / "home")],
        env=server.environment(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 3, run.stderr  # held
    with _client(server) as client:
        [flow_run] = client.read_flow_runs(limit=1, sort="EXPECTED_START_TIME_DESC")
    assert flow_run.state is not None and flow_run.state.type.value == "FAILED"
    notification = receiver.wait_for(flow_run.name, timeout=30)
    assert notification["subject"] == f"m3sync: settlement-reconciliation run {flow_run.name} ended Failed"
    ui = server.api_url.removesuffix("/api")
    body = notification["body"].split("\n")
    assert body[:2] == ["Flow: settlement-reconciliation", f"Run: {flow_run.name}"]
    assert body[2].startswith(f"State: Failed: 1 of 1 held: {settlement_id} (") and "31.8" in body[2], body[2]
    assert body[3:] == [f"{ui}/runs/flow-run/{flow_run.id}"]


@pytest.mark.slow
def test_what_the_operator_must_fix_first(prefect_server: PrefectServer) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.blocks.system import Secret

    server = prefect_server
    with _client(server) as client:
        Secret(value="not a notifier").save("ops-test-secret", overwrite=True)
        client.create_work_pool(_pool("ops-test-process-pool", "process"), overwrite=True)

    def setup(api_url: str | None, block: str, pool: str = POOL, pool_type: str = "process") -> str:
        with pytest.raises(OpsSetupError) as error:
            setup_operations(
                api_url, notify_block=block, pool=pool, pool_type=pool_type, prefect_yaml=REPO / "prefect.yaml"
            )
        return str(error.value)

    assert setup(server.api_url, "custom-webhook/absent") == (
        "no notification block custom-webhook/absent on this Prefect server: create it first (README, Alerts)"
    )
    assert setup(server.api_url, "secret/ops-test-secret") == (
        "block secret/ops-test-secret cannot send notifications: name a notification block (README, Alerts)"
    )
    assert setup(server.api_url, "slack") == "--notify-block 'slack': give TYPE/NAME, e.g. slack-webhook/ops"
    # A pool of that name but another type is not silently reused (docker asked, process there).
    with _client(server):
        CustomWebhookNotificationBlock(name="x", url="http://127.0.0.1:9/x").save("ops-test-any", overwrite=True)
    assert setup(server.api_url, "custom-webhook/ops-test-any", "ops-test-process-pool", "docker") == (
        "work pool ops-test-process-pool exists with type process, not docker: name another with --pool"
    )

    # The command line: a server that does not answer is one line and exit 2.
    dead = f"http://127.0.0.1:{free_port()}/api"
    done = _ops_setup(dataclasses.replace(server, api_url=dead), "--notify-block", "custom-webhook/x")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"m3sync: Prefect's API at {dead} does not answer: start that server or fix PREFECT_API_URL\n"
    )


def _pool(name: str, pool_type: str) -> Any:
    from prefect.client.schemas.actions import WorkPoolCreate

    return WorkPoolCreate(name=name, type=pool_type)


@pytest.mark.slow
def test_another_block_updates_the_automations_in_place_and_a_copy_made_by_hand_goes(
    prefect_server: PrefectServer,
) -> None:
    from prefect.automations import AutomationCore
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    server = prefect_server

    def setup(block: str) -> list[str]:
        steps = setup_operations(
            server.api_url, notify_block=block, pool=POOL, pool_type="process", prefect_yaml=REPO / "prefect.yaml"
        )
        return [step.line() for step in steps if step.subject.startswith("automation")]

    with _client(server) as client:
        first = CustomWebhookNotificationBlock(name="a", url="http://127.0.0.1:9/a").save("ops-test-a", overwrite=True)
        second = CustomWebhookNotificationBlock(name="b", url="http://127.0.0.1:9/b").save("ops-test-b", overwrite=True)
        setup("custom-webhook/ops-test-a")
        [before] = client.read_automations_by_name(FAILED_AUTOMATION)
        assert [a.block_document_id for a in before.actions] == [first]
        # The same automation once more, as if made by hand.
        copy = client.create_automation(AutomationCore.model_validate(before.model_dump(exclude={"id"})))

        assert setup("custom-webhook/ops-test-b") == [
            f"automation '{FAILED_AUTOMATION}': updated",
            f"automation '{STALE_AUTOMATION}': updated",
        ]
        automations = [client.read_automations_by_name(n) for n in (FAILED_AUTOMATION, STALE_AUTOMATION)]
    assert [len(found) for found in automations] == [1, 1]
    assert [a.block_document_id for found in automations for a in found[0].actions] == [second, second]
    assert automations[0][0].id in (before.id, copy)  # one of the two updated in place, not made anew
