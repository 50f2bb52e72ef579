"""Inventory sync at Amazon's pace: N SKUs x 3 marketplaces, 2% changing (issue #15, "Benchmark").

    python -m bench.inventory_sync [--skus 50000] [--change 0.02] [--time-scale 5] [--full]
                                   [--seed 0] [--out DIR]

1. A sandbox home (a small world) seeded, untimed and deterministically from ``--seed``, with
   ``--skus`` items in the sandbox M3 (item number = SKU, a balance in warehouse 100, a EUR and a
   GBP price-list price) and their listings in the SP-API sandbox in DE, FR and UK (one EU host:
   one usage-plan bucket per operation), holding what M3 publishes (allocatable minus a buffer of
   2 units; the price lists' prices): the state of a seller whose listings are right when the
   integration is switched on. Written straight into the sandboxes' SQLite stores (the fast
   seeding path), and ``HOME/inventory.yaml`` naming the SKUs.
2. The ``inventory-sync`` flow, in this process (Prefect's ephemeral API unless PREFECT_API_URL
   is set), against the embedded sandboxes with Amazon's usage plans time-scaled by
   ``--time-scale`` on both sides (``open_connections(home, sandbox=True, time_scale=...)``
   makes it the home's), four times:
   - **full**: the first run, over an empty state store: every pair read from Amazon
     (searchListingsItems, 20 SKUs a call) and the differences sent (none: Amazon holds M3's
     values); ``--full`` makes it a full resync that sends every pair (quota-bound:
     3 x SKUs / (5 x time scale) seconds);
   - **no change**: nothing changed in M3;
   - **changed**: ``--change`` of the SKUs changed in M3 (untimed, between runs): half get 10
     more units on hand (3 pairs each), half a EUR price 5% higher (DE and FR: 2 pairs each);
   - **read back**: the next run, reading back what the changed run patched (due at once:
     ``readback_after_seconds: 0``).
3. Figures per run: wall time of the flow call; Listings calls the SP-API sandbox answered per
   operation (and throttled, 429); patches sent; the patching phase's time and its **share** of
   the quota (``max(0, patches - burst) / (5 x time scale)`` over the actual time; target
   >= 90%); this process's peak RSS during the run (Linux ``VmHWM``, reset before each run; it
   includes both sandboxes, which run in threads of this process). Then the ratio no change /
   full (target < 10%) and Listings calls / changed pairs (target 1; the read back's searches
   come one run later and are shown beside).

Exit code 0 whether or not the targets are met (a measurement); 1 if a run failed or sent other
than the expected patches (nothing was measured).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bench.order_sync import _peak_rss, _reset_peak_rss, _verdict
from bench.settle_command import machine_facts

MARKETPLACES = {
    "DE": ("A1PA6795UKMFR9", "AMZEUR"),
    "FR": ("A13V1IB3VIYZZH", "AMZEUR"),
    "UK": ("A1F83G8C2ARO7P", "AMZGBP"),
}
WAREHOUSE = "100"
BUFFER_UNITS = 2
TEMPLATE_ITEM = "A10001"  # the sandbox M3 item the bench items copy (status 20, its item group)
TARGET_SHARE = 0.90
TARGET_RATIO = 0.10
LISTINGS_OPERATIONS = ("searchListingsItems", "getListingsItem", "patchListingsItem")


def bench_sku(n: int) -> str:
    """The n-th bench SKU, also its M3 item number (no routing entry: order sync's SKU = ITNO)."""
    return f"BN{n:06d}"


@dataclass(frozen=True)
class Stock:
    """One bench item's M3 facts: on hand, allocated, EUR and GBP prices in cents/pence."""

    on_hand: int
    allocated: int
    eur: int
    gbp: int

    @property
    def published(self) -> int:
        return max(0, self.on_hand - self.allocated - BUFFER_UNITS)


def bench_stock(skus: int, seed: int) -> dict[str, Stock]:
    """Every bench SKU's M3 facts, deterministic from ``seed``."""
    rng = random.Random(seed)
    stock = {}
    for n in range(skus):
        on_hand = rng.randint(0, 200)
        eur = rng.randint(500, 20_000)
        stock[bench_sku(n)] = Stock(on_hand, rng.randint(0, min(on_hand, 10)), eur, eur * 86 // 100)
    return stock


def _money(minor: int) -> str:
    return str(Decimal(minor) / 100)


def prepare_home(home: Path, skus: int, *, seed: int = 0, time_scale: float) -> dict[str, Stock]:
    """A sandbox home with the bench's items in M3, their listings on Amazon and the
    inventory settings; returns the M3 facts seeded."""
    from flows.connections import open_connections
    from sandbox.spapi import SpApiStore

    with open_connections(home, sandbox=True, orders=20, time_scale=time_scale):
        pass  # the world, its marker (world.json) and the home's time scale
    stock = bench_stock(skus, seed)
    _seed_m3(home / "sandbox" / "m3" / "m3.sqlite", stock)
    seller = json.loads((home / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    listings = (
        {
            "sku": sku,
            "marketplace_id": marketplace_id,
            "asin": f"B0{sku}",
            "product_type": "HOME",
            "title": f"Bench item {sku}",
            "price": _money(facts.gbp if price_list == "AMZGBP" else facts.eur),
            "currency": "GBP" if price_list == "AMZGBP" else "EUR",
            "quantity": facts.published,
        }
        for sku, facts in stock.items()
        for marketplace_id, price_list in MARKETPLACES.values()
    )
    store = SpApiStore(home / "sandbox" / "spapi")
    try:
        store.seed([], [], listings, seller)
    finally:
        store.close()
    settings = {
        "review_percent": 20,
        "readback_after_seconds": 0,
        "skus": list(stock),
        "buffers": {"default": {"units": BUFFER_UNITS}},
        "marketplaces": {
            code: {"warehouses": [WAREHOUSE], "price_list": price_list}
            for code, (_, price_list) in MARKETPLACES.items()
        },
    }
    (home / "inventory.yaml").write_text(yaml.safe_dump(settings, default_flow_style=None), encoding="utf-8")
    return stock


def _seed_m3(path: Path, stock: dict[str, Stock]) -> None:
    """Items, balances and prices straight into the sandbox M3's SQLite (no server is running)."""
    db = sqlite3.connect(path)
    try:
        template = json.loads(db.execute("SELECT data FROM items WHERE itno = ?", (TEMPLATE_ITEM,)).fetchone()[0])
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO items (itno, data) VALUES (?, ?)",
                ((sku, json.dumps(dict(template, ITNO=sku, ITDS=f"Bench item {sku}"))) for sku in stock),
            )
            db.executemany(
                "INSERT OR REPLACE INTO balances (whlo, itno, stqt, alqt) VALUES (?, ?, ?, ?)",
                ((WAREHOUSE, sku, s.on_hand, s.allocated) for sku, s in stock.items()),
            )
            db.executemany(
                "INSERT OR REPLACE INTO prices (itno, cucd, sapr) VALUES (?, ?, ?)",
                (row for sku, s in stock.items() for row in ((sku, "EUR", _money(s.eur)), (sku, "GBP", _money(s.gbp)))),
            )
    finally:
        db.close()


def change_stock(home: Path, stock: dict[str, Stock], share: float, *, seed: int = 0) -> int:
    """Change ``share`` of the SKUs in M3 (half: 10 more on hand, half: EUR price +5%); returns
    the (SKU, marketplace) pairs whose published quantity or price changes."""
    rng = random.Random(seed + 1)
    chosen = sorted(rng.sample(sorted(stock), round(len(stock) * share)))
    more, pricier = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    db = sqlite3.connect(home / "sandbox" / "m3" / "m3.sqlite")
    try:
        with db:
            for sku in more:
                stock[sku] = Stock(stock[sku].on_hand + 10, stock[sku].allocated, stock[sku].eur, stock[sku].gbp)
                db.execute(
                    "UPDATE balances SET stqt = ? WHERE whlo = ? AND itno = ?", (stock[sku].on_hand, WAREHOUSE, sku)
                )
            for sku in pricier:
                eur = stock[sku].eur * 105 // 100  # >= 5.00: at least 0.25 more, within the 20% review
                stock[sku] = Stock(stock[sku].on_hand, stock[sku].allocated, eur, stock[sku].gbp)
                db.execute("UPDATE prices SET sapr = ? WHERE itno = ? AND cucd = 'EUR'", (_money(eur), sku))
    finally:
        db.close()
    return len(more) * len(MARKETPLACES) + len(pricier) * sum(1 for _, p in MARKETPLACES.values() if p == "AMZEUR")


@dataclass
class RunLog:
    """What the instrumented flow saw: the patching phase, the SP-API sandbox's call counts."""

    send_started: float | None = None
    send_finished: float | None = None
    requests: Any = None  # the EU SP-API sandbox's RequestCount


@dataclass(frozen=True)
class RunFigures:
    name: str
    seconds: float
    patches: int
    unchanged: int
    read_back: int
    calls: dict[str, int]  # Listings calls answered, per operation
    throttled: int
    send_seconds: float
    time_scale: float
    peak_rss: int | None
    exceptions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def listings_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def quota_bound(self) -> float:
        from sandbox.spapi.ratelimit import USAGE_PLANS

        plan = USAGE_PLANS["patchListingsItem"]
        return max(0, self.patches - plan.burst) / (plan.rate * self.time_scale)

    @property
    def share(self) -> float | None:
        return self.quota_bound / self.send_seconds if self.quota_bound and self.send_seconds else None


@contextmanager
def instrumented() -> Iterator[RunLog]:
    """The flow's sending timed and its SP-API sandbox's call counter caught (module attributes
    replaced while inside)."""
    from flows import inventory_steps as steps

    log = RunLog()
    original: Callable[..., None] = steps.send

    @functools.wraps(original)
    def send(connections: Any, *args: Any, **kwargs: Any) -> None:
        log.requests = connections.sandbox_env.spapi["eu"].app.state.sandbox.requests
        log.send_started = time.perf_counter()
        try:
            original(connections, *args, **kwargs)
        finally:
            log.send_finished = time.perf_counter()

    steps.send = send
    try:
        yield log
    finally:
        steps.send = original


def measure(home: Path, name: str, *, full: bool = False, time_scale: float) -> RunFigures:
    """One inventory-sync flow run over the home, and its figures."""
    from flows.contract import run_document
    from flows.inventory import inventory_sync

    _reset_peak_rss()
    with instrumented() as log:
        started = time.perf_counter()
        state = inventory_sync(full=full, sandbox=True, home=str(home), return_state=True)
        seconds = time.perf_counter() - started
    body = run_document(state)["inventory"]
    counter = log.requests
    answered = {op: counter.answered[op] for op in LISTINGS_OPERATIONS if counter and counter.answered[op]}
    throttled = sum(counter.throttled[op] for op in LISTINGS_OPERATIONS) if counter else 0
    problems = [f"{e['sku']}@{e['marketplace']}: {e['reason']}" for e in body["exceptions"][:3]]
    if body.get("unreachable"):
        problems.append(f"stopped: {body['unreachable']}")
    return RunFigures(
        name=name,
        seconds=seconds,
        patches=body["sent"],
        unchanged=body["unchanged"],
        read_back=body["read_back"],
        calls=answered,
        throttled=throttled,
        send_seconds=(log.send_finished or 0.0) - (log.send_started or 0.0),
        time_scale=time_scale,
        peak_rss=_peak_rss(),
        exceptions=len(body["exceptions"]) + body["rejected"] + body["held"],
        problems=problems,
    )


@dataclass(frozen=True)
class InventoryBench:
    skus: int
    changed_pairs: int
    runs: list[RunFigures]

    def run(self, name: str) -> RunFigures:
        return next(r for r in self.runs if r.name == name)

    @property
    def ratio(self) -> float:
        full = self.run("full").seconds
        return self.run("no change").seconds / full if full else 0.0

    @property
    def calls_per_changed_pair(self) -> float:
        return self.run("changed").listings_calls / self.changed_pairs if self.changed_pairs else 0.0


def run_bench(
    home: Path, skus: int, *, change: float = 0.02, time_scale: float, full: bool = False, seed: int = 0
) -> InventoryBench:
    """Seed the home, then the four runs (full, no change, changed, read back)."""
    stock = prepare_home(home, skus, seed=seed, time_scale=time_scale)
    _warm_up_prefect()
    runs = [measure(home, "full", full=full, time_scale=time_scale)]
    runs.append(measure(home, "no change", time_scale=time_scale))
    changed_pairs = change_stock(home, stock, change, seed=seed)
    runs.append(measure(home, "changed", time_scale=time_scale))
    runs.append(measure(home, "read back", time_scale=time_scale))
    return InventoryBench(skus, changed_pairs, runs)


def _warm_up_prefect() -> None:
    """One empty flow run first: the first flow call of a process starts Prefect's ephemeral API
    (seconds), which is no part of a sync."""
    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        return None

    warm_up()


def report(bench: InventoryBench) -> list[str]:
    pairs = bench.skus * len(MARKETPLACES)
    scale = bench.runs[0].time_scale
    lines = [
        f"{bench.skus} SKUs x {len(MARKETPLACES)} marketplaces ({', '.join(MARKETPLACES)}) = {pairs} pairs; "
        f"SP-API time scale {scale:g} (patchListingsItem and searchListingsItems 5/s x {scale:g} = {5 * scale:g}/s)",
        f"{'run':<10} {'wall s':>8} {'patches':>8} {'read back':>9}  Listings calls (throttled)"
        f"{'':>14} {'patching':>9} {'share':>7} {'peak RSS':>9}",
    ]
    for r in bench.runs:
        calls = ", ".join(f"{op} {n}" for op, n in r.calls.items()) or "none"
        share = f"{r.share:.1%}" if r.share is not None else "-"
        peak = f"{r.peak_rss / 2**20:.0f} MiB" if r.peak_rss else "unknown"
        lines.append(
            f"{r.name:<10} {r.seconds:>8.1f} {r.patches:>8} {r.read_back:>9}  {calls} ({r.throttled})"
            f"{'':>4} {r.send_seconds:>8.1f}s {share:>7} {peak:>9}"
        )
    changed, read_back = bench.run("changed"), bench.run("read back")
    full, still = bench.run("full"), bench.run("no change")
    # At Amazon's own rates (scale 1) the full run's Listings calls alone take calls / 5 seconds;
    # the no-change run makes none, so its time does not depend on the scale.
    amazon_full = full.listings_calls / 5.0
    lines += [
        f"at Amazon's rates (scale 1) the full run's {full.listings_calls} Listings calls alone take "
        f"{amazon_full:.0f} s: no change / full <= {still.seconds / amazon_full:.1%} there"
        if amazon_full
        else "the full run made no Listings calls",
        f"{_verdict(bench.ratio < TARGET_RATIO)}  no change / full = {bench.ratio:.1%} (target < {TARGET_RATIO:.0%})",
        f"{_verdict(changed.listings_calls == bench.changed_pairs)}  Listings calls / changed pairs = "
        f"{changed.listings_calls} / {bench.changed_pairs} = {bench.calls_per_changed_pair:.3f} (target 1; the next "
        f"run's read back: {read_back.listings_calls} searches for {read_back.read_back} pairs)",
    ]
    if changed.share is not None:
        lines.append(
            f"{_verdict(changed.share >= TARGET_SHARE)}  patching at {changed.patches / changed.send_seconds:.1f} "
            f"patches/s = {changed.share:.1%} of the quota 5/s x {scale:g} (target >= {TARGET_SHARE:.0%})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--change", type=float, default=0.02, help="share of SKUs changed in M3 (default 0.02)")
    parser.add_argument("--time-scale", type=float, default=5.0, help="SP-API quota speed-up (default 5)")
    parser.add_argument("--full", action="store_true", help="make the first run a full resync (sends every pair)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the sandbox home here (default: a temporary folder)")
    args = parser.parse_args(argv)
    for line in machine_facts():
        print(line, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as scratch:
        home = args.out or Path(scratch) / "home"
        bench = run_bench(
            home, args.skus, change=args.change, time_scale=args.time_scale, full=args.full, seed=args.seed
        )
    for line in report(bench):
        print(line, flush=True)
    failed = [r for r in bench.runs if r.problems or r.exceptions]
    expected = {"no change": 0, "changed": bench.changed_pairs, "read back": 0}
    wrong = [r.name for r in bench.runs if r.name in expected and r.patches != expected[r.name]]
    if failed or wrong:
        for r in failed:
            print(f"run {r.name}: {r.exceptions} exceptions/held/rejected; {'; '.join(r.problems)}", file=sys.stderr)
        if wrong:
            print(f"runs that sent other than the changed pairs: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
