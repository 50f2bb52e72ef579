"""Both emulators from one seeded world, persisted under ``HOME/sandbox``.

Used by ``m3sync sandbox`` (foreground), ``m3sync demo`` and ``--sandbox`` runs (in-process
threads). Two starts on the same home see the same M3 and the same Amazon: the state is in
SQLite under ``HOME/sandbox/m3`` and ``HOME/sandbox/spapi``; only the ports change, so the
``.ionapi`` file and the SP-API credentials file are rewritten at every start. So is
``HOME/sandbox/order_routing.yaml``, the order routing sandbox runs read (``sync.routing``): the
shipped defaults with the catalog's SKU -> item number map (the world sells HOM-10001, its M3
stocks A10001), kept apart from a user's HOME/order_routing.yaml, which it never touches.

The world is its seed's first eight weeks, then each ``m3sync sandbox --advance`` in turn (the
marker lists them; ``advance_world`` rebuilds each stretch the same way), so that rebuilding it
gives what the emulators hold.

Amazon has one host per region (na, eu, fe) and one refresh token per region, so the SP-API
sandbox runs one server per region on its own port, all over the same data folder. The
credentials file holds the shared LWA app and seller, and per region its endpoint, refresh
token and the world's marketplaces there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.catalog import MARKETPLACES, build_catalog
from sandbox.server import RunningServer, serve_in_thread

if TYPE_CHECKING:  # for the annotations only: serving the sandbox does not load the generator
    from sandbox.generator import World

# The sandbox's quotas are Amazon's unless a time scale is given (start_sandbox's time_scale): per
# region, the world's settlements fit in getReportDocument's burst of 15 (EU has 3 marketplaces x
# 4 fortnights = 12). The connector is told the same scale so its own limiter stays in step with
# the server's.
DEFAULT_TIME_SCALE = 1.0
# Seconds between GLS840MI/UpdBatch and the sandbox's batch job booking the voucher: short, so
# the demo and --sandbox runs confirm each voucher at once (the connector polls for it).
SANDBOX_GL_BATCH_DELAY = 0.1
TENANT = "SANDBOX_TST"
WORLD_MARKER = "world.json"
M3_STEPS = {"allocate": "33", "deliver": "66", "invoice": "77"}  # the sandbox M3's order steps -> status
# The world's eight weeks end 30 days before the first start: every settlement is already
# "created" and within getReports' 90-day retention (the first for about two more weeks), and
# `m3sync sandbox --advance` can move the world on by two fortnights before it reaches today
# (the flows list reports created until now, so the world never runs ahead of the clock).
WORLD_DAYS = 56
WORLD_ENDS_DAYS_AGO = 30


class SandboxClockError(ValueError):
    """The world cannot move on that far: it would pass today."""


@dataclass
class SandboxEnvironment:
    home: Path
    seed: int
    m3: RunningServer
    spapi: dict[str, RunningServer]  # region (na, eu, fe) -> that region's SP-API host
    ionapi_path: Path
    spapi_credentials_path: Path
    seeded_now: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def folder(self) -> Path:
        return self.home / "sandbox"

    def amazon_settings(self) -> dict[str, object]:
        return json.loads(self.spapi_credentials_path.read_text(encoding="utf-8"))

    def advance_m3_order(self, orno: str, step: str, day: date | None = None) -> str:
        """Drive the M3 business simulation: ``step`` is allocate, deliver or invoice; returns the status."""
        import httpx

        body = {"date": day.strftime("%Y%m%d")} if day else {}
        answer = httpx.post(f"{self.m3.base_url}/sandbox/orders/{orno}/{step}", json=body, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["status"])

    def advance_m3_orders(
        self, step: str, day: date, ornos: Sequence[str] | None = None, *, leave: Collection[str] = ()
    ) -> list[str]:
        """Drive many orders at once (``/sandbox/advance``): ``ornos``, or every M3 order but
        those in ``leave``, as far as ``step`` (allocate, deliver or invoice) on ``day``. Returns
        the orders this call moved (an order already that far is left as it is)."""
        import httpx

        if ornos is not None and not ornos:
            return []
        body: dict[str, Any] = {"to": M3_STEPS[step], "date": day.strftime("%Y%m%d")}
        if ornos is not None:
            body["orders"] = list(ornos)
        elif leave:
            body["except"] = sorted(leave)
        answer = httpx.post(f"{self.m3.base_url}/sandbox/advance", json=body, timeout=120)
        answer.raise_for_status()
        return list(answer.json()["moved"])

    def credit_m3_order(
        self, orno: str, net: Decimal, tax: Decimal, day: date | None = None, reference: str = ""
    ) -> str:
        """A credit note in M3 for invoiced order ``orno`` (as M3 makes for a return); once per
        ``reference``. Returns its invoice number."""
        import httpx

        body = {"net": str(net), "tax": str(tax), "reference": reference}
        if day:
            body["date"] = day.strftime("%Y%m%d")
        answer = httpx.post(f"{self.m3.base_url}/sandbox/orders/{orno}/credit", json=body, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["ivno"])

    def amazon_listings(self) -> list[dict[str, Any]]:
        """Every listing Amazon's sandbox stores (``/sandbox/state``), once each: SKU,
        marketplaceId, quantity, price, currency, fulfillmentChannels. (The regions' hosts may
        share one store: a listing they all show is one listing.)"""
        import httpx

        listings: dict[tuple[str, str], dict[str, Any]] = {}
        for server in self.spapi.values():
            answer = httpx.get(f"{server.base_url}/sandbox/state", timeout=30)
            answer.raise_for_status()
            listings.update(((r["sku"], r["marketplaceId"]), r) for r in answer.json()["listings"])
        return [listings[key] for key in sorted(listings)]

    def world(self) -> World:
        """The seeded world this home's sandbox holds (rebuilt deterministically from its marker:
        the first eight weeks, then each advance in turn)."""
        from sandbox.generator import advance_world, build_world

        marker = self._marker()
        world = build_world(
            marker["seed"],
            orders=marker["orders"],
            start=date.fromisoformat(marker["start"]),
            days=marker["days"],
            anomalies=True,
        )
        for days in marker.get("advances", []):
            world = advance_world(world, days, _orders_in(marker, days))
        return world

    def advanced_world(self, days: int, today: date | None = None) -> World:
        """The world ``days`` further on (not yet published): raises ``SandboxClockError`` if that
        passes ``today`` (UTC)."""
        from sandbox.generator import advance_world

        world = self.world()
        today = today or datetime.now(UTC).date()
        if world.clock + timedelta(days=days) > today:
            room = (today - world.clock).days
            raise SandboxClockError(
                f"the sandbox world's clock is at {world.clock}: {days} days on would pass today ({today}); "
                + (f"advance at most {room} days" if room > 0 else "wait for the calendar to catch up")
            )
        return advance_world(world, days, _orders_in(self._marker(), days))

    def publish(self, world: World, days: int) -> None:
        """Make ``world`` (``advanced_world(days)``) the home's: Amazon's new orders and settlement
        reports in the SP-API sandbox, then the advance in the marker."""
        from sandbox.spapi import seed_world

        seed_world(self.folder / "spapi", world)
        marker = self._marker()
        marker["advances"] = [*marker.get("advances", []), days]
        _write_marker(self.folder / WORLD_MARKER, marker)

    def _marker(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / WORLD_MARKER).read_text(encoding="utf-8")))

    def stop(self) -> None:
        if not self._stopped:
            # Both at once: each server notices should_exit on its next 0.1 s tick.
            for server in (self.m3, *self.spapi.values()):
                server.signal_exit()
            for server in (self.m3, *self.spapi.values()):
                server.stop()
            self._stopped = True

    def __enter__(self) -> SandboxEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def marketplace_lines(before: World, after: World) -> list[str]:
    """Per marketplace: the settlements ``after`` added to ``before`` and the orders placed."""
    news = after.since(before)
    known = {o.order_id for o in before.orders}
    lines = []
    for code, marketplace in MARKETPLACES.items():
        settlements = [d.settlement_id for d in news.documents if d.marketplace_id == marketplace.marketplace_id]
        placed = sum(1 for o in news.orders if o.market == code and o.order_id not in known)
        listed = f" ({', '.join(settlements)})" if settlements else ""
        lines.append(
            f"{code} {marketplace.name}: {len(settlements)} settlement{'' if len(settlements) == 1 else 's'} "
            f"created{listed}, {placed} orders"
        )
    return lines


def write_sandbox_routing(home: Path, seed: int) -> Path:
    """Write the routing sandbox runs read, once: the shipped defaults (whose customers, warehouses
    and order types are the sandbox M3's) with ``items`` mapping each catalog SKU to its item
    number. Kept when it exists, so routing changes can be tried against the sandbox."""
    from sync.routing import SHIPPED_ROUTING, routing_path

    path = routing_path(home, sandbox=True)
    if path.is_file():
        return path
    routing = yaml.safe_load(SHIPPED_ROUTING.read_text(encoding="utf-8"))
    routing["items"] = {item.sku: item.itno for item in build_catalog(seed)}
    path.write_text(
        "# Written by the sandbox when it was seeded (sandbox/runtime.py); edit it to try routing\n"
        "# changes against the sandbox. Sandbox runs read this file, never HOME/order_routing.yaml.\n"
        + yaml.safe_dump(routing, sort_keys=False),
        encoding="utf-8",
    )
    return path


def _orders_in(marker: dict[str, Any], days: int) -> int:
    """Amazon orders in ``days`` of the world: its first weeks' rate."""
    return round(int(marker["orders"]) * days / int(marker["days"]))


def _write_marker(path: Path, marker: dict[str, Any]) -> None:
    # Written whole, then renamed: a marker is never half-written.
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(marker), encoding="utf-8")
    partial.replace(path)


def start_sandbox(
    home: Path,
    *,
    seed: int = 0,
    m3_port: int = 0,
    spapi_port: int = 0,
    orders: int = 400,
    time_scale: float | None = None,
) -> SandboxEnvironment:
    """Start the M3 and SP-API emulators for ``home`` (seeding the world on first use).
    ``spapi_port`` (0: free ports) is North America's; Europe and Far East take the next two.

    ``time_scale`` speeds Amazon's usage plans up by that factor, in the SP-API sandbox's buckets
    and in the connector's limiter alike (the credentials file carries it): 250 = 250 times
    Amazon's rates. Given, it becomes the home's (kept in the world marker, as the seed), so later
    starts without one, such as the flows' ``--sandbox`` runs, keep it; None: the home's, else 1
    (Amazon's pace)."""
    if time_scale is not None and not time_scale > 0:
        raise ValueError(f"time_scale must be positive, got {time_scale}")
    from sandbox.generator import build_world
    from sandbox.m3.app import create_app as create_m3_app
    from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
    from sandbox.spapi import REGIONS, seed_world
    from sandbox.spapi import create_app as create_spapi_app
    from sandbox.spapi import credentials as spapi_credentials
    from sandbox.spapi.app import LWA_TOKEN_PATH

    folder = home / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / WORLD_MARKER
    seeded_now = False
    if marker.exists():
        seed = int(json.loads(marker.read_text(encoding="utf-8"))["seed"])  # the home's world wins
    else:
        start = date.today() - timedelta(days=WORLD_DAYS + WORLD_ENDS_DAYS_AGO)
        world = build_world(seed, orders=orders, start=start, days=WORLD_DAYS, anomalies=True)
        seed_world(folder / "spapi", world)
        _write_marker(
            marker,
            {
                "seed": seed,
                "orders": orders,
                "start": start.isoformat(),
                "days": WORLD_DAYS,
                "seller_id": world.seller_id,
            },
        )
        seeded_now = True
    recorded = json.loads(marker.read_text(encoding="utf-8"))
    seller_id = recorded["seller_id"]
    if time_scale is not None and recorded.get("time_scale") != time_scale:
        _write_marker(marker, dict(recorded, time_scale=time_scale))
    scale = float(time_scale if time_scale is not None else recorded.get("time_scale", DEFAULT_TIME_SCALE))

    m3 = serve_in_thread(
        lambda url: create_m3_app(folder / "m3", url, tenant=TENANT, seed=seed, gl_batch_delay=SANDBOX_GL_BATCH_DELAY),
        port=m3_port,
    )
    spapi: dict[str, RunningServer] = {}
    try:
        for n, region in enumerate(REGIONS):
            spapi[region] = serve_in_thread(
                functools.partial(create_spapi_app, folder / "spapi", region=region, time_scale=scale),
                port=spapi_port + n if spapi_port else 0,
            )
    except BaseException:
        for server in (m3, *spapi.values()):
            server.stop()
        raise
    ionapi_path = write_ionapi(folder / "m3.ionapi", m3.base_url, TENANT, sandbox_credentials(folder / "m3", seed))
    app = spapi_credentials(folder / "spapi", "na")
    account = {
        "token_url": f"{spapi['na'].base_url}{LWA_TOKEN_PATH}",  # LWA is global (api.amazon.com)
        "seller_id": seller_id,
        "lwa_app_id": app["lwa_app_id"],
        "lwa_client_secret": app["lwa_client_secret"],
        "time_scale": scale,
        "regions": {
            region: {
                "endpoint": server.base_url,
                "refresh_token": spapi_credentials(folder / "spapi", region)["refresh_token"],
                "marketplace_ids": [m.marketplace_id for m in MARKETPLACES.values() if m.region == region],
            }
            for region, server in spapi.items()
        },
    }
    write_sandbox_routing(home, seed)
    credentials_path = folder / "spapi-credentials.json"
    credentials_path.write_text(json.dumps(account, indent=2), encoding="utf-8")
    credentials_path.chmod(0o600)
    return SandboxEnvironment(
        home=home,
        seed=seed,
        m3=m3,
        spapi=spapi,
        ionapi_path=ionapi_path,
        spapi_credentials_path=credentials_path,
        seeded_now=seeded_now,
    )
