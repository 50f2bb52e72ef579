"""Where the settlement flow's per-settlement tasks run: ``[runner]`` in ``HOME/config.toml``.

A Prefect flow's task runner is fixed when it is decorated, but which one to use is
configuration, read when the run starts (the same for ``m3sync settle`` and a deployment's
runs). So the flow submits its settlements to `settlement_task_runner`: with ``[runner]``
unset, the flow's own task runner (a thread pool, or whatever ``with_options(task_runner=...)``
gave it); with ``dask_address``, prefect-dask's ``DaskTaskRunner`` on that existing cluster;
with ``dask_workers = N``, a ``DaskTaskRunner`` on a local cluster of N single-threaded worker
processes, started for the run and stopped after it.

Tasks sent to Dask workers are pickled: `flows.connections.Connections` travel as their
``ConnectionSpec`` and each worker process opens its own connections (``flows.connections``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner
from prefect.tasks import Task
from prefect.utilities.callables import get_call_parameters

from connectors.redact import redact_text
from connectors.settings import ConfigurationError, RunnerSettings


def dask_task_runner(runner: RunnerSettings) -> TaskRunner:
    """prefect-dask's ``DaskTaskRunner`` for ``[runner]``; ConfigurationError without the ``dask`` extra."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigurationError(
            f"{runner.origin or '[runner]'} needs prefect-dask, which is not installed: "
            "pip install 'm3-amazon-sync[dask]'"
        ) from None
    if runner.dask_address is not None:
        return DaskTaskRunner(address=runner.dask_address)
    # One thread per process: the settlement steps are CPU-bound pandas, and a process per
    # settlement is what scales past the GIL. The dashboard on any free port (Prefect logs it):
    # two runs on one machine would otherwise compete for 8787.
    cluster = {"n_workers": runner.dask_workers, "processes": True, "threads_per_worker": 1, "dashboard_address": ":0"}
    return DaskTaskRunner(cluster_kwargs=cluster)


@contextmanager
def settlement_task_runner(runner: RunnerSettings) -> Iterator[TaskRunner]:
    """The started task runner the flow run submits its settlements to (see the module's docstring)."""
    if not runner.uses_dask:
        context = FlowRunContext.get()
        if context is None or context.task_runner is None:
            raise RuntimeError("settlement_task_runner needs a flow run (the flow's task runner)")
        yield context.task_runner  # already started by the flow run
        return
    with dask_task_runner(runner) as started:
        _connect(started, runner)
        yield started


def _connect(started: Any, runner: RunnerSettings) -> None:
    """Connect to (or start) the cluster now, once: a scheduler that cannot be reached fails the
    run before anything is posted, with one line naming it, instead of once per settlement."""
    try:
        started.client  # noqa: B018 - the property connects (or starts the local cluster)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, dask's own: all mean "not there"
        where = f"the Dask scheduler at {runner.dask_address}" if runner.dask_address else "a local Dask cluster"
        raise ConfigurationError(
            f"{runner.origin}: {where} could not be used ({type(exc).__name__}: {redact_text(str(exc).strip()[:200])})"
        ) from None


def shared(runner: TaskRunner, value: Any) -> Any:
    """``value`` for many tasks on ``runner``: on Dask, sent to every worker once (the tasks get a
    future each worker resolves to its copy) instead of pickled into every task; else itself."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        return value
    if not isinstance(runner, DaskTaskRunner):
        return value
    return runner.client.scatter(value, broadcast=True)


def submit(runner: TaskRunner, task: Task[..., Any], *args: Any, **kwargs: Any) -> PrefectFuture[Any]:
    """``task.submit(*args, **kwargs)`` on ``runner`` instead of the flow's own task runner."""
    with warnings.catch_warnings():
        # A settlement's lines travel to the worker that settles it by design (tens of MB for
        # 100,000 lines): Dask's advice to load them on the cluster instead does not apply.
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        return runner.submit(task, get_call_parameters(task.fn, args, kwargs))
