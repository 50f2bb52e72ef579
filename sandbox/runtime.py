"""Both emulators from one seeded world, persisted under ``HOME/sandbox``.

Used by ``m3sync sandbox`` (foreground), ``m3sync demo`` and ``--sandbox`` runs (in-process
threads). Two starts on the same home see the same M3 and the same Amazon: the state is in
SQLite under ``HOME/sandbox/m3`` and ``HOME/sandbox/spapi``; only the ports change, so the
``.ionapi`` file and the SP-API credentials file are rewritten at every start.

Amazon has one host per region (na, eu, fe) and one refresh token per region, so the SP-API
sandbox runs one server per region on its own port, all over the same data folder. The
credentials file holds the shared LWA app and seller, and per region its endpoint, refresh
token and the world's marketplaces there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sandbox.catalog import MARKETPLACES
from sandbox.server import RunningServer, serve_in_thread

# The sandbox's quotas are Amazon's (time scale 1): per region, the world's settlements fit in
# getReportDocument's burst of 15 (EU has 3 marketplaces x 4 fortnights = 12). The connector is
# told the same scale so its own limiter stays in step with the server's.
SANDBOX_TIME_SCALE = 1.0
# Seconds between GLS840MI/UpdBatch and the sandbox's batch job booking the voucher: short, so
# the demo and --sandbox runs confirm each voucher at once (the connector polls for it).
SANDBOX_GL_BATCH_DELAY = 0.1
TENANT = "SANDBOX_TST"
WORLD_MARKER = "world.json"
# The world's eight weeks end a week before the first start, so every settlement is already
# "created" and stays within getReports' 90-day retention for a good while.
WORLD_DAYS = 56
WORLD_ENDS_DAYS_AGO = 7


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

    def world(self):  # -> sandbox.generator.World
        """The seeded world this home's sandbox holds (rebuilt deterministically from its marker)."""
        from sandbox.generator import build_world

        marker = json.loads((self.folder / WORLD_MARKER).read_text(encoding="utf-8"))
        return build_world(
            marker["seed"],
            orders=marker["orders"],
            start=date.fromisoformat(marker["start"]),
            days=marker["days"],
            anomalies=True,
        )

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


def start_sandbox(
    home: Path, *, seed: int = 0, m3_port: int = 0, spapi_port: int = 0, orders: int = 400
) -> SandboxEnvironment:
    """Start the M3 and SP-API emulators for ``home`` (seeding the world on first use).
    ``spapi_port`` (0: free ports) is North America's; Europe and Far East take the next two."""
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
        marker.write_text(
            json.dumps(
                {
                    "seed": seed,
                    "orders": orders,
                    "start": start.isoformat(),
                    "days": WORLD_DAYS,
                    "seller_id": world.seller_id,
                }
            ),
            encoding="utf-8",
        )
        seeded_now = True
    seller_id = json.loads(marker.read_text(encoding="utf-8"))["seller_id"]

    m3 = serve_in_thread(
        lambda url: create_m3_app(folder / "m3", url, tenant=TENANT, seed=seed, gl_batch_delay=SANDBOX_GL_BATCH_DELAY),
        port=m3_port,
    )
    spapi: dict[str, RunningServer] = {}
    try:
        for n, region in enumerate(REGIONS):
            spapi[region] = serve_in_thread(
                functools.partial(create_spapi_app, folder / "spapi", region=region, time_scale=SANDBOX_TIME_SCALE),
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
        "time_scale": SANDBOX_TIME_SCALE,
        "regions": {
            region: {
                "endpoint": server.base_url,
                "refresh_token": spapi_credentials(folder / "spapi", region)["refresh_token"],
                "marketplace_ids": [m.marketplace_id for m in MARKETPLACES.values() if m.region == region],
            }
            for region, server in spapi.items()
        },
    }
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
