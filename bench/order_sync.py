"""Order sync at Amazon's pace: N orders of 1-4 lines through both sandboxes (issue #14, "Benchmark").

    python -m bench.order_sync [--orders 10000] [--time-scale 250] [--profile brief|cloudsuite]
                               [--seed 0] [--out DIR]

1. A sandbox home (a small world, then ``--profile`` in its config.toml) whose SP-API store is
   seeded with ``--orders`` Unshipped US orders of 1-4 lines from the sandbox catalog
   (``sandbox.generator.order_load``, deterministic; not timed).
2. The ``order-sync`` flow, in this process (Prefect's ephemeral API unless PREFECT_API_URL is
   set), against the embedded sandboxes with Amazon's real usage plans time-scaled by
   ``--time-scale`` on both sides (the SP-API sandbox's buckets and the connector's limiter:
   ``open_connections(home, sandbox=True, time_scale=...)`` makes it the home's).
3. Figures:
   - **actual**: from the flow asking for the first Amazon page to the last page's orders
     recorded (the flow's start-up and Prefect's are not in it);
   - **quota-bound**: the least time Amazon's searchOrders plan allows for the pages
     (100 orders a page, items embedded): ``max(0, pages - burst) / (rate x time_scale)``, the
     first ``burst`` pages coming at once; **share** = quota-bound / actual (target >= 90%);
   - **orders/s** = created orders / actual;
   - **M3 requests per order**: the HTTP requests the flow's M3 sandbox answered during the
     run (single GETs and bulk POSTs, its ``RequestCount``) / orders (target <= 0.2);
   - **peak memory**: this process's peak RSS during the run (Linux ``VmHWM``, reset before
     the run; it includes both sandboxes, which run in threads of this process).

Exit code 0 whether or not the targets are met (a measurement); 1 if the run did not create
every order (nothing was measured).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.settle_command import machine_facts

PAGE_SIZE = 100  # searchOrders' largest page, what the flow asks for
TARGET_SHARE = 0.90
TARGET_REQUESTS_PER_ORDER = 0.2


@dataclass
class RunLog:
    """What the instrumented flow saw: when it asked for the first page and finished the last."""

    started: float | None = None
    finished: float | None = None
    pages: int = 0
    counter: Any = None  # the flow's M3 sandbox RequestCount
    at_start: tuple[int, int, int] = (0, 0, 0)  # (single, bulk, transactions) when the first page was asked for
    results: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class OrderSyncFigures:
    orders: int
    created: int
    pages: int
    time_scale: float
    profile: str
    seconds: float  # actual
    quota_bound: float
    m3_single: int
    m3_bulk: int
    m3_transactions: int
    peak_rss: int | None  # bytes

    @property
    def share(self) -> float:
        return self.quota_bound / self.seconds if self.seconds else 0.0

    @property
    def orders_per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0

    @property
    def m3_requests(self) -> int:
        return self.m3_single + self.m3_bulk

    @property
    def requests_per_order(self) -> float:
        return self.m3_requests / self.orders if self.orders else 0.0


def quota_bound_seconds(orders: int, time_scale: float, page_size: int = PAGE_SIZE) -> float:
    """The least time searchOrders' usage plan allows to read ``orders`` (a full bucket at the start)."""
    from sandbox.spapi.ratelimit import USAGE_PLANS

    plan = USAGE_PLANS["searchOrders"]
    pages = math.ceil(orders / page_size)
    return max(0, pages - plan.burst) / (plan.rate * time_scale)


def prepare_home(home: Path, orders: int, *, seed: int = 0, profile: str = "brief") -> datetime:
    """A sandbox home seeded with ``orders`` load orders (purchased in the last day); returns
    the moment to read them from."""
    from flows.connections import open_connections
    from sandbox.generator.order_load import load_orders
    from sandbox.spapi import SpApiStore

    with open_connections(home, sandbox=True, orders=20, seed=seed):
        pass  # the world and its marker (world.json) are written on the first start
    seller = json.loads((home / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    if profile != "brief":
        ionapi = home / "sandbox" / "m3.ionapi"
        (home / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "{profile}"\n', encoding="utf-8")
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    store = SpApiStore(home / "sandbox" / "spapi")
    try:
        store.seed(load_orders(orders, seed=seed, until=until), [], [], seller)
    finally:
        store.close()
    return until - timedelta(days=1, minutes=1)


@contextmanager
def instrumented() -> Iterator[RunLog]:
    """The flow's page loop timed and its M3 requests counted (module attributes replaced while
    inside)."""
    from flows import orders_steps as steps

    log = RunLog()
    saved = (steps.order_pages, steps.sync_orders)
    original_pages: Callable[..., Iterator[Any]] = steps.order_pages
    original_sync: Callable[..., list[Any]] = steps.sync_orders

    @functools.wraps(original_pages)
    def order_pages(connections: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        log.counter = connections.sandbox_env.m3.app.state.mi_requests
        log.at_start = (log.counter.single, log.counter.bulk, log.counter.transactions)
        log.started = time.perf_counter()
        for page in original_pages(connections, *args, **kwargs):
            log.pages += 1
            yield page

    @functools.wraps(original_sync)
    def sync_orders(*args: Any, **kwargs: Any) -> list[Any]:
        results = original_sync(*args, **kwargs)
        log.finished = time.perf_counter()
        log.results.extend(results)
        return results

    steps.order_pages, steps.sync_orders = order_pages, sync_orders
    try:
        yield log
    finally:
        steps.order_pages, steps.sync_orders = saved


def measure(home: Path, orders: int, since: datetime, *, time_scale: float, profile: str) -> OrderSyncFigures:
    """Run the order-sync flow once over the seeded home and read its figures."""
    from flows.connections import open_connections
    from flows.contract import run_document
    from flows.orders import order_sync

    with open_connections(home, sandbox=True, time_scale=time_scale):
        pass  # Amazon's plans scaled by time_scale in the sandbox the flow starts (the home's from now on)
    _reset_peak_rss()
    with instrumented() as log:
        state = order_sync(since=since.isoformat(), sandbox=True, home=str(home), return_state=True)
    document = run_document(state)
    counter = log.counter
    single0, bulk0, transactions0 = log.at_start
    return OrderSyncFigures(
        orders=orders,
        created=document["counts"]["created"],
        pages=log.pages,
        time_scale=time_scale,
        profile=profile,
        seconds=(log.finished or 0.0) - (log.started or 0.0),
        quota_bound=quota_bound_seconds(orders, time_scale),
        m3_single=counter.single - single0,
        m3_bulk=counter.bulk - bulk0,
        m3_transactions=counter.transactions - transactions0,
        peak_rss=_peak_rss(),
    )


def _reset_peak_rss() -> None:
    try:  # Linux: "5" resets VmHWM to the current RSS (proc(5), clear_refs)
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        pass


def _peak_rss() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024)


def report(figures: OrderSyncFigures) -> list[str]:
    f = figures
    peak = f"{f.peak_rss / 2**20:.0f} MiB" if f.peak_rss else "unknown"
    return [
        f"orders: {f.orders} ({f.created} created) in {f.pages} pages, profile {f.profile}, "
        f"SP-API time scale {f.time_scale:g}",
        f"actual {f.seconds:.1f} s, quota-bound {f.quota_bound:.1f} s: share {f.share:.1%} "
        f"(target >= {TARGET_SHARE:.0%}) {_verdict(f.share >= TARGET_SHARE)}",
        f"throughput {f.orders_per_second:.0f} orders/s "
        f"(quota-bound {f.orders / f.quota_bound if f.quota_bound else float('inf'):.0f} orders/s)",
        f"M3 HTTP requests {f.m3_requests} ({f.m3_bulk} bulk, {f.m3_single} single; {f.m3_transactions} "
        f"transactions): {f.requests_per_order:.3f} per order (target <= {TARGET_REQUESTS_PER_ORDER}) "
        f"{_verdict(f.requests_per_order <= TARGET_REQUESTS_PER_ORDER)}",
        f"peak RSS of the process (flow, Prefect client, both sandboxes): {peak}",
    ]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.order_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=250.0, help="SP-API quota speed-up (default 250)")
    parser.add_argument("--profile", choices=("brief", "cloudsuite"), default="brief")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the sandbox home here (default: a temporary folder)")
    args = parser.parse_args(argv)
    for line in machine_facts():
        print(line, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as scratch:
        home = args.out or Path(scratch) / "home"
        started = time.perf_counter()
        since = prepare_home(home, args.orders, seed=args.seed, profile=args.profile)
        print(f"seeded {args.orders} orders in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
        figures = measure(home, args.orders, since, time_scale=args.time_scale, profile=args.profile)
    for line in report(figures):
        print(line, flush=True)
    if figures.created != figures.orders:
        print(f"the run created {figures.created} of {figures.orders} orders: nothing measured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
