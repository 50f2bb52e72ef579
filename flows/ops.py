"""``m3sync ops setup``: what an operator needs from Prefect, as code, idempotent.

Against the configured Prefect server (``PREFECT_API_URL``) it creates, or brings back to
what this module says:

- the work pool the deployments run on (``m3sync-process``, type process, unless named);
- a concurrency limit of 1 on every deployment ``prefect.yaml`` declares (two runs of one
  deployment at once would list and settle the same reports; ``prefect.yaml`` says
  ``concurrency_limit: 1`` too, so ``prefect deploy`` sets it; a deployment not deployed yet
  is reported as such);
- two automations notifying through the notification block the operator names: a run of any
  m3sync flow ending Failed or Crashed (flow, run, state message, link to the run), and the
  settlement deployment having had no finished run (Completed or Failed) for 26 hours (its
  daily schedule missed: no worker, a paused schedule, a run stuck).

Everything is found by name and compared first: a second run changes nothing and says so.
Runs are matched by state *type* (FAILED, CRASHED, COMPLETED), not by state name, so a
Failed state with a name of its own alerts as well.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.automations import AutomationCore
    from prefect.client.orchestration import SyncPrefectClient

DEFAULT_POOL = "m3sync-process"
DEFAULT_POOL_TYPE = "process"
SETTLEMENT_FLOW = "settlement-reconciliation"
NOT_RUN_FOR = timedelta(hours=26)  # a daily schedule plus two hours' grace
FAILED_AUTOMATION = "m3sync: flow run failed or crashed"


class OpsSetupError(Exception):
    """Something the operator must fix first; the message is the one line they see."""


@dataclass(frozen=True)
class Step:
    """One thing ``ops setup`` looked at and what it did (``created``, ``updated``, ``unchanged``...)."""

    subject: str
    outcome: str

    @property
    def changed(self) -> bool:
        return self.outcome in ("created", "updated")

    def line(self) -> str:
        return f"{self.subject}: {self.outcome}"


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment of prefect.yaml: its name and the name of the flow its entrypoint runs."""

    flow: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"


def add_ops_command(commands: Any) -> None:
    """``m3sync ops setup`` on the command line's subcommands."""
    ops = commands.add_parser("ops", help="set up Prefect for operating m3sync (work pool, limits, alerts)")
    actions = ops.add_subparsers(dest="ops_command", required=True, metavar="ACTION")
    setup = actions.add_parser(
        "setup",
        help="create or update, on the Prefect server of PREFECT_API_URL, the work pool, a concurrency limit of 1 "
        "per deployment and the alerting automations (idempotent)",
    )
    setup.add_argument(
        "--notify-block",
        required=True,
        metavar="TYPE/NAME",
        help="the Prefect notification block alerts go through, e.g. slack-webhook/ops, custom-webhook/ops",
    )
    setup.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME", help=f"work pool (default {DEFAULT_POOL})")
    setup.add_argument(
        "--pool-type", default=DEFAULT_POOL_TYPE, metavar="TYPE", help="type of a new work pool (default process)"
    )
    setup.add_argument(
        "--prefect-yaml",
        default="prefect.yaml",
        metavar="PATH",
        help="the deployments' definitions (default ./prefect.yaml: run it from the checkout)",
    )
    setup.set_defaults(handler=_setup_command)


def _setup_command(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    from flows.cli import _fail
    from flows.exit_codes import EXIT_INVALID, EXIT_OK

    try:
        steps = setup_operations(
            PREFECT_API_URL.value(),
            notify_block=args.notify_block,
            pool=args.pool,
            pool_type=args.pool_type,
            prefect_yaml=Path(args.prefect_yaml),
        )
    except OpsSetupError as exc:
        return _fail(str(exc), EXIT_INVALID)
    for step in steps:
        print(step.line())
    changed = sum(step.changed for step in steps)
    print(f"{changed} changed" if changed else "nothing changed: everything was already set up")
    sys.stdout.flush()
    return EXIT_OK


def setup_operations(
    api_url: str | None, *, notify_block: str, pool: str, pool_type: str, prefect_yaml: Path
) -> list[Step]:
    """Bring the server at ``api_url`` to this module's set-up; what it did, one step each."""
    if not api_url:
        raise OpsSetupError(
            "PREFECT_API_URL is not set: ops setup configures a running Prefect server "
            "(prefect server start; export PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    deployments = deployments_in(prefect_yaml)
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        if client.api_healthcheck() is not None:
            raise OpsSetupError(f"Prefect's API at {api_url} does not answer: start that server or fix PREFECT_API_URL")
        block_id = _notification_block(client, notify_block)
        ui_url = str(PREFECT_UI_URL.value() or "").rstrip("/")
        steps = [_work_pool(client, pool, pool_type)]
        steps += [_concurrency_limit(client, deployment) for deployment in deployments]
        steps += [_automation(client, wanted) for wanted in automations(deployments, block_id, ui_url)]
    return steps


def deployments_in(prefect_yaml: Path) -> list[DeploymentSpec]:
    """The deployments prefect.yaml declares, with the flow name each entrypoint's ``@flow`` gives."""
    import yaml

    try:
        document = yaml.safe_load(prefect_yaml.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise OpsSetupError(
            f"{prefect_yaml}: cannot read it ({exc.strerror}): run ops setup from the checkout or give --prefect-yaml"
        ) from None
    except yaml.YAMLError as exc:
        raise OpsSetupError(f"{prefect_yaml}: not valid YAML: {' '.join(str(exc).split())}") from None
    specs = []
    for entry in document.get("deployments") or []:
        name, entrypoint = entry.get("name"), entry.get("entrypoint")
        if not name or not entrypoint or ":" not in entrypoint:
            raise OpsSetupError(f"{prefect_yaml}: a deployment needs a name and an entrypoint path.py:function")
        path, function = entrypoint.rsplit(":", 1)
        specs.append(DeploymentSpec(flow=flow_name(prefect_yaml.parent / path, function), name=name))
    return specs


def flow_name(source: Path, function: str) -> str:
    """The name Prefect gives the flow ``function`` of ``source`` (read, not imported: no pandas,
    no scikit-learn): ``@flow(name=...)``, else the function's name with dashes (Prefect's rule)."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except OSError as exc:
        raise OpsSetupError(f"{source}: cannot read the flow's source ({exc.strerror})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                for keyword in decorator.keywords if isinstance(decorator, ast.Call) else ():
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        return str(keyword.value.value)
            return function.replace("_", "-")
    raise OpsSetupError(f"{source}: no function {function} (prefect.yaml's entrypoint)")


def project_flows() -> list[str]:
    """Every flow m3sync defines (its ``flows/`` package), by name: the failure alert covers them
    all, deployed or run from the command line."""
    names = set()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _is_flow_decorator(d) for d in node.decorator_list
            ):
                names.add(flow_name(source, node.name))
    return sorted(names)


def _is_flow_decorator(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "flow") or (
        isinstance(target, ast.Attribute) and target.attr == "flow"
    )


def automations(deployments: list[DeploymentSpec], block_id: Any, ui_url: str) -> list[AutomationCore]:
    """The alerting automations: any m3sync flow run Failed or Crashed; each settlement deployment
    with no finished run for ``NOT_RUN_FOR``."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    run_link = f"\n{ui_url}/runs/flow-run/{{{{ flow_run.id }}}}" if ui_url else ""
    wanted = [
        AutomationCore(
            name=FAILED_AUTOMATION,
            description="Created by m3sync ops setup: a run of an m3sync flow ended Failed or Crashed.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.*"},
                match={"prefect.resource.id": "prefect.flow-run.*", "prefect.state-type": ["FAILED", "CRASHED"]},
                match_related={"prefect.resource.role": "flow", "prefect.resource.name": project_flows()},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject="m3sync: {{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }}",
                    body=(
                        "Flow: {{ flow.name }}\nRun: {{ flow_run.name }}\n"
                        "State: {{ flow_run.state.name }}: {{ flow_run.state.message }}" + run_link
                    ),
                )
            ],
        )
    ]
    hours = int(NOT_RUN_FOR.total_seconds() // 3600)
    for deployment in deployments:
        if deployment.flow != SETTLEMENT_FLOW:
            continue
        link = f"\n{ui_url}/deployments" if ui_url else ""
        wanted.append(
            AutomationCore(
                name=f"m3sync: {deployment.full_name} not run for {hours} h",
                description=f"Created by m3sync ops setup: no Completed or Failed run of {deployment.full_name} "
                f"for {hours} hours.",
                trigger=EventTrigger(
                    expect={"prefect.flow-run.*"},
                    match={
                        "prefect.resource.id": "prefect.flow-run.*",
                        "prefect.state-type": ["COMPLETED", "FAILED"],
                    },
                    match_related=[
                        {"prefect.resource.role": "flow", "prefect.resource.name": deployment.flow},
                        {"prefect.resource.role": "deployment", "prefect.resource.name": deployment.name},
                    ],
                    posture=Posture.Proactive,
                    threshold=1,
                    within=NOT_RUN_FOR,
                ),
                actions=[
                    SendNotification(
                        block_document_id=block_id,
                        subject=f"m3sync: no finished run of {deployment.full_name} for {hours} hours",
                        body=f"The deployment {deployment.full_name} has had no Completed or Failed run for "
                        f"{hours} hours: is a worker polling its work pool, is its schedule active?" + link,
                    )
                ],
            )
        )
    return wanted


def _notification_block(client: SyncPrefectClient, slug: str) -> Any:
    """The id of the notification block ``TYPE/NAME``; a missing or non-notifying one is an error."""
    from prefect.exceptions import ObjectNotFound

    block_type, _, name = slug.partition("/")
    if not block_type or not name:
        raise OpsSetupError(f"--notify-block {slug!r}: give TYPE/NAME, e.g. slack-webhook/ops")
    try:
        document = client.read_block_document_by_name(name=name, block_type_slug=block_type)
    except ObjectNotFound:
        raise OpsSetupError(
            f"no notification block {slug} on this Prefect server: create it first (README, Alerts)"
        ) from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise OpsSetupError(f"block {slug} cannot send notifications: name a notification block (README, Alerts)")
    return document.id


def _work_pool(client: SyncPrefectClient, name: str, pool_type: str) -> Step:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.base import BaseWorker

    subject = f"work pool {name} ({pool_type})"
    try:
        existing = client.read_work_pool(name)
    except ObjectNotFound:
        existing = None
    if existing is not None:
        if existing.type != pool_type:
            raise OpsSetupError(
                f"work pool {name} exists with type {existing.type}, not {pool_type}: name another with --pool"
            )
        return Step(subject, "unchanged")
    worker = BaseWorker.get_worker_class_from_type(pool_type)
    if worker is None:
        raise OpsSetupError(
            f"no {pool_type} worker is installed here to take the pool's job template from: create it with "
            f"prefect work-pool create {name} --type {pool_type}, then run ops setup again"
        )
    template = worker.get_default_base_job_template()
    client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
    return Step(subject, "created")


def _concurrency_limit(client: SyncPrefectClient, deployment: DeploymentSpec) -> Step:
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.exceptions import ObjectNotFound

    subject = f"deployment {deployment.full_name}: concurrency limit 1"
    try:
        existing = client.read_deployment_by_name(deployment.full_name)
    except ObjectNotFound:
        return Step(subject, "not deployed yet (prefect deploy sets it from prefect.yaml)")
    limit = existing.global_concurrency_limit.limit if existing.global_concurrency_limit else None
    if limit == 1:
        return Step(subject, "unchanged")
    client.update_deployment(existing.id, DeploymentUpdate(concurrency_limit=1))
    return Step(subject, "updated")


def _automation(client: SyncPrefectClient, wanted: AutomationCore) -> Step:
    """Create ``wanted``, or update the automation of its name when it differs; extra copies of
    that name (made by hand, or by two set-ups at once) are removed."""
    from prefect.automations import AutomationCore

    subject = f"automation {wanted.name!r}"
    found = client.read_automations_by_name(wanted.name)
    if not found:
        client.create_automation(wanted)
        return Step(subject, "created")
    first, *copies = found
    for copy in copies:
        client.delete_automation(copy.id)
    current = AutomationCore.model_validate(first.model_dump(exclude={"id"}))
    same = _comparable(current) == _comparable(wanted)
    if not same:
        client.update_automation(first.id, wanted)
    return Step(subject, "unchanged" if same and not copies else "updated")


def _comparable(automation: AutomationCore) -> Any:
    """The automation as plain data with sets and lists in a fixed order (the server does not
    keep the order of a set)."""
    return _sorted(automation.model_dump(mode="json"))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_sorted(item) for item in value), key=repr)
    return value
