"""The settlement flow on 1 vs 2 Dask worker processes: many settlements in one run.

    python -m bench.dask_scale_out [--settlements 32] [--lines 50000] [--workers 1,2] [--rounds 1]
                                   [--out DIR] [--seed 1]

1. Generates ``--settlements`` balanced V2 settlements of ``--lines`` lines each
   (``sandbox.generator.large``, one seed each, so each has its own settlement id and orders;
   not timed).
2. Serves the sandbox M3 in this process, configured in the home's config.toml as a live M3
   (its .ionapi file; the workers reach it over HTTP, as they would a real M3), starts a
   Prefect server of its own (state under the output folder, not measured) and, per
   worker count, a local Dask cluster of that many single-threaded worker processes, each worker
   importing the flow before anything is timed (a long-lived cluster, as ``[runner] dask_address``
   uses one); then one untimed run of one settlement warms up this process.
3. Times ``settlement_reconciliation(files, dry_run=True)`` in this process with
   ``[runner] dask_address`` pointing at each cluster in turn, ``--rounds`` times (alternating
   the order), and prints the run's wall time and the settle phase (first settlement task
   started on a worker to the last one ended, from Dask's task stream), with the ratios
   1 worker / N workers.

Why a dry run against the sandbox: each settlement goes through everything a worker does
(validate, map, gates, vouchers, reading M3's periods and invoices over HTTP, the outcome) and
every run does the same work. Posting would make the second run a rerun (all duplicates, nothing
posted), and a posting is one short voucher per month per settlement: a small part next to the
50,000 lines a worker checks and maps. What runs in the flow's own process stays serial whatever
the worker count: reading the files and the anomaly scores (each settlement judged against the
ones before it), the workbook.

Exit code 0 (a measurement); 1 when a run does not settle every file as ``dry_run``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.settle_command import PrefectServer, _load, machine_facts


class BenchmarkError(RuntimeError):
    """A run did not settle every file, so there is nothing to compare."""


@dataclass(frozen=True)
class RunTimes:
    workers: int
    seconds: float  # the whole flow run, wall time
    settle_seconds: float  # first settlement task's start on a worker to the last one's end
    compute_seconds: float  # the settlement tasks' compute time on the workers, summed
    workers_used: int  # worker processes that ran settlement tasks


def _write_one(folder: Path, lines: int, seed: int) -> Path:
    from sandbox.generator.large import write_large_settlement

    return write_large_settlement(folder / f"settlement_{seed}.tsv", lines, seed)


def generate(folder: Path, count: int, lines: int, seed: int) -> list[Path]:
    """``count`` settlement files, seeds ``seed`` .. ``seed + count - 1``, in two spawned processes."""
    import multiprocessing

    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_write_one, [folder] * count, [lines] * count, range(seed, seed + count)))


def warm_worker() -> int:
    """Run on every worker before timing: the flow's imports (pandas, Prefect, the domain)."""
    import flows.settlement  # noqa: F401 - imported for its cost, before the clock starts

    return os.getpid()


@contextmanager
def dask_cluster(workers: int) -> Iterator[Any]:
    """A client of a local cluster of ``workers`` single-threaded processes, warmed up."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster,
        # Not the process's default client: prefect-dask's runner would use that one's cluster
        # instead of the configured address.
        Client(cluster, set_as_default=False) as client,
    ):
        client.run(warm_worker)
        client.get_task_stream()  # installs the scheduler's task stream recorder, which run_once reads
        yield client


def settle_phase(stream: Sequence[dict[str, Any]], expected: int) -> tuple[float, float, int]:
    """From Dask's task stream of the run: seconds from the first settlement task's start to the
    last one's end on the workers, the seconds the workers spent computing them (summed), and how
    many worker processes ran them."""
    computes = [
        (part["start"], part["stop"], record["worker"])
        for record in stream
        for part in record.get("startstops", ())
        if part["action"] == "compute"
    ]
    if len(computes) != expected:
        raise BenchmarkError(f"the cluster computed {len(computes)} tasks for {expected} settlements")
    span = max(c[1] for c in computes) - min(c[0] for c in computes)
    return span, sum(c[1] - c[0] for c in computes), len({c[2] for c in computes})


def run_once(home: Path, m3_config: str, files: Sequence[Path], client: Any, workers: int) -> RunTimes:
    """One timed flow run on ``client``'s cluster; checks every file was settled as a dry run."""
    from distributed import get_task_stream

    from flows.settlement import settlement_reconciliation

    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f'{m3_config}[runner]\ndask_address = "{client.scheduler.address}"\n')
    with get_task_stream(client=client) as stream:
        started = time.perf_counter()
        state = settlement_reconciliation(
            files=[str(f) for f in files],
            dry_run=True,
            home=str(home),
            # The sandbox's M3 never invoiced the generated orders: the accountant's choice to post
            # them anyway (to suspense) takes every settlement the whole way instead of holding it.
            missing_invoices="suspense",
            refunds_without_credit="returns",
            return_state=True,
        )
        seconds = time.perf_counter() - started
    document = state.result(raise_on_failure=False)
    entries = document["settlements"] if isinstance(document, dict) else []
    statuses = sorted({e["status"] for e in entries})
    if len(entries) != len(files) or statuses != ["dry_run"]:
        reasons = sorted({r for e in entries for r in e["reasons"]})[:3]
        raise BenchmarkError(f"{len(entries)} of {len(files)} settlements, statuses {statuses}: {reasons}")
    return RunTimes(workers, seconds, *settle_phase(stream.data, len(files)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settlements", type=int, default=32, help="settlement files in the run")
    parser.add_argument("--lines", type=int, default=50_000, help="lines of each settlement file")
    parser.add_argument("--workers", default="1,2", help="worker process counts to compare, the first is the base")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs per worker count (medians)")
    parser.add_argument("--out", type=Path, help="keep the files and the home here (default: temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    if args.settlements < 1 or args.lines < 1 or args.rounds < 1 or not counts or min(counts) < 1:
        parser.error("--settlements, --lines, --rounds and every --workers count must be >= 1")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return _run(args, counts, args.out.resolve())
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as folder:
        return _run(args, counts, Path(folder))


def _run(args: argparse.Namespace, counts: list[int], folder: Path) -> int:
    print(
        f"dask scale-out benchmark: {args.settlements} settlements x {args.lines:,} lines, workers {counts}, "
        f"{args.rounds} round(s), dry run against the sandbox; files in {folder}"
    )
    for fact in machine_facts():
        print(fact)
    print(f"load average before (1/5/15 min): {_load()}", flush=True)
    started = time.perf_counter()
    files = generate(folder, args.settlements, args.lines, args.seed)
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"generated {len(files)} files ({size:.0f} MB) in {time.perf_counter() - started:.1f} s (not timed)")
    # Prefect's own files (its server's database) stay in the output folder, not in ~/.prefect.
    env = {**os.environ, "PREFECT_HOME": str(folder / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    os.environ.update({"PREFECT_HOME": env["PREFECT_HOME"], "PREFECT_LOGGING_LEVEL": "WARNING"})
    try:
        results = _measure(args, counts, folder, files, env)
    except BenchmarkError as exc:
        print(f"ERROR: nothing measured: {exc}", file=sys.stderr)
        return 1
    print(f"\nload average after (1/5/15 min): {_load()}")
    base = counts[0]
    for workers in counts:
        runs = [r for r in results if r.workers == workers]
        seconds = statistics.median(r.seconds for r in runs)
        settle = statistics.median(r.settle_seconds for r in runs)
        every = ", ".join(f"{r.seconds:.1f}" for r in runs)
        print(f"{workers} worker process(es): run {seconds:.1f} s (median of {every}), settle phase {settle:.1f} s")
    for workers in counts[1:]:
        base_runs = [r for r in results if r.workers == base]
        runs = [r for r in results if r.workers == workers]
        run_ratio = statistics.median(r.seconds for r in base_runs) / statistics.median(r.seconds for r in runs)
        settle_ratio = statistics.median(r.settle_seconds for r in base_runs) / statistics.median(
            r.settle_seconds for r in runs
        )
        print(f"speed-up {base} -> {workers} worker processes: run {run_ratio:.2f}x, settle phase {settle_ratio:.2f}x")
    return 0


def _measure(
    args: argparse.Namespace, counts: list[int], folder: Path, files: list[Path], env: dict[str, str]
) -> list[RunTimes]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    results: list[RunTimes] = []
    with ExitStack() as stack:
        # First, before any Prefect machinery runs in this process (see ``sandbox_m3``).
        m3_config = stack.enter_context(sandbox_m3(folder))
        server = stack.enter_context(PrefectServer(env))
        stack.enter_context(temporary_settings({PREFECT_API_URL: server.url}))
        clients = {}
        for workers in counts:
            started = time.perf_counter()
            clients[workers] = stack.enter_context(dask_cluster(workers))
            print(
                f"started and warmed {workers} worker process(es) in {time.perf_counter() - started:.1f} s (not timed)"
            )
        home = folder / "home"
        started = time.perf_counter()
        run_once(home, m3_config, files[:1], clients[counts[0]], counts[0])  # this process's first flow run
        print(f"warm-up run of one settlement in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
        for round_number in range(args.rounds):
            order = counts if round_number % 2 == 0 else counts[::-1]
            for workers in order:
                result = run_once(home, m3_config, files, clients[workers], workers)
                results.append(result)
                print(
                    f"round {round_number + 1}, {workers} worker process(es): run {result.seconds:.1f} s, "
                    f"settle phase {result.settle_seconds:.1f} s on {result.workers_used} worker(s), "
                    f"tasks computing {result.compute_seconds:.1f} s in all (load average {_load()})",
                    flush=True,
                )
    return results


@contextmanager
def sandbox_m3(folder: Path) -> Iterator[str]:
    """The sandbox M3 served in this process and configured as a live M3 would be (``[m3]`` in
    config.toml, its .ionapi file); yields that ``[m3]`` section. Started once, before the flow
    runs: a ``--sandbox`` run starts its emulators inside the flow run, and uvicorn's logging
    set-up there can deadlock against Prefect's own threads starting (see the report)."""
    from sandbox.m3.app import create_app
    from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
    from sandbox.server import serve_in_thread

    data = folder / "m3"
    server = serve_in_thread(lambda url: create_app(data, url, tenant="BENCH"))
    try:
        ionapi = write_ionapi(folder / "m3.ionapi", server.base_url, "BENCH", sandbox_credentials(data))
        yield f'[m3]\nionapi = "{ionapi}"\nprofile = "brief"\ncono = 100\ndivi = "AAA"\n'
    finally:
        server.stop()


if __name__ == "__main__":
    # Through the package name, so spawned processes unpickle bench.dask_scale_out's functions
    from bench.dask_scale_out import main as package_main

    sys.exit(package_main())
