"""``m3sync sandbox --advance``: the sandbox world moves on, and a settlement run has work to do.

Every marketplace settles on a 14-day cycle (sandbox/generator/world.py), and the demo's world
covers eight weeks, four windows per marketplace, ending on a day boundary after its last window
closed. So each 14 days on close exactly one more window per marketplace: with the four
marketplaces (US, DE, FR, UK), 4 settlements per fortnight.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from flows.cli import build_parser
from flows.connections import open_connections
from sandbox.catalog import MARKETPLACES
from sandbox.generator import advance_world, build_world
from sandbox.runtime import WORLD_ENDS_DAYS_AGO, SandboxClockError, start_sandbox

MARKETS = len(MARKETPLACES)  # 4
START = date(2026, 3, 2)


@pytest.fixture(scope="module")
def worlds():
    base = build_world(5, orders=120, start=START, days=56, anomalies=True)
    once = advance_world(base, 14, 30)
    twice = advance_world(once, 14, 30)
    return base, once, twice


def _order_ids(document) -> set[str]:
    return {row.order_id for row in document.rows if row.transaction_type == "Order" and row.order_id[:1].isdigit()}


def test_each_fortnight_closes_one_window_per_marketplace_continuing_the_last(worlds) -> None:
    base, once, twice = worlds
    assert (base.clock, once.clock, twice.clock) == (
        START + timedelta(56),
        START + timedelta(70),
        START + timedelta(84),
    )
    news = once.since(base)
    assert len(base.documents) == 4 * MARKETS and len(news.documents) == MARKETS
    assert {d.marketplace_id for d in news.documents} == {m.marketplace_id for m in MARKETPLACES.values()}
    for new in news.documents:
        last = max((d for d in base.documents if d.marketplace_id == new.marketplace_id), key=lambda d: d.end)
        # The window opens where the marketplace's previous one closed, lasts 14 days, and closes
        # (its report created) before the world's clock.
        assert new.start == last.end and new.end - new.start == timedelta(days=14, seconds=1)
        assert new.created_time.date() < once.clock
        assert int(new.settlement_id) > max(int(d.settlement_id) for d in base.documents)
        # What Amazon held back last time is paid out first this time; the total is its rows' sum.
        held_back = sum(r.amount for r in last.rows if r.amount_description == "Current Reserve Amount")
        carried = [r.amount for r in new.rows if r.amount_description == "Previous Reserve Amount Balance"]
        assert carried == ([-held_back] if held_back else [])
        assert new.total == Decimal(sum(r.amount for r in new.rows)).scaleb(-2)
    # The earlier world is untouched, byte for byte; no order is ever settled twice.
    assert once.documents[: len(base.documents)] == base.documents
    settled = [order for d in twice.documents for order in _order_ids(d)]
    assert len(settled) == len(set(settled))
    # New orders at the first weeks' rate: 120 orders in 56 days -> 30 in 14.
    assert len({o.order_id for o in once.orders} - {o.order_id for o in base.orders}) == 30
    assert len(twice.since(once).documents) == MARKETS


def test_the_same_advances_give_the_same_world() -> None:
    def new_settlements(seed: int) -> list[str]:
        base = build_world(seed, orders=120, start=START, days=56, anomalies=True)
        return [d.text for d in advance_world(base, 14, 30).since(base).documents]

    assert new_settlements(5) == new_settlements(5)
    assert new_settlements(5) != new_settlements(6)


def test_advance_takes_days_or_weeks() -> None:
    parser = build_parser()
    for text, days in (("14d", 14), ("2w", 14), ("14", 14), ("1D", 1), ("3W", 21)):
        assert parser.parse_args(["sandbox", "--advance", text]).advance == days
    for bad in ("0d", "-2w", "2x", "w", ""):
        with pytest.raises(SystemExit):
            parser.parse_args(["sandbox", "--advance", bad])


def test_the_world_never_runs_ahead_of_today(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, orders=20) as env:
        world = env.world()
        today = date.today()
        assert world.clock == today - timedelta(days=WORLD_ENDS_DAYS_AGO)
        assert env.advanced_world(WORLD_ENDS_DAYS_AGO, today=today).clock == today
        with pytest.raises(SandboxClockError, match=f"advance at most {WORLD_ENDS_DAYS_AGO} days"):
            env.advanced_world(WORLD_ENDS_DAYS_AGO + 1, today=today)


def test_a_settlement_run_posts_what_each_advance_created(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.demo import run_advance, run_demo
    from flows.settlement import settlement_reconciliation

    home = tmp_path / "home"
    with start_sandbox(home, seed=3, orders=40, time_scale=10.0):  # Amazon's usage plans x10, kept in the home
        pass
    assert run_demo(str(home), 3, echo=lambda line: None, orders=40) == 0

    def settle() -> list[dict]:
        document = settlement_reconciliation(from_amazon=True, sandbox=True, home=str(home))
        return document["settlements"]

    assert settle() == []  # the demo posted everything there was
    for fortnights in (1, 2):
        lines: list[str] = []
        assert run_advance(str(home), 14, echo=lines.append) == 0
        clock = date.today() - timedelta(days=WORLD_ENDS_DAYS_AGO - 14 * fortnights)
        assert lines[-1] == f"World clock {clock - timedelta(days=14)} -> {clock}", lines
        assert all(" 1 settlement created (" in line for line in lines[:MARKETS]), lines
        # The advance's orders reached M3 through order sync, none refused: its id map holds
        # every order of the world Amazon has confirmed (Pending waits, Canceled never goes).
        assert lines[MARKETS].startswith("Order sync: ") and lines[MARKETS].endswith(" 0 dead lettered"), lines
        with open_connections(home, sandbox=True) as connections:
            world, id_map = connections.sandbox_env.world(), connections.state.all_ids("order")
        assert set(id_map) == {o.order_id for o in world.orders if o.status in ("Unshipped", "Shipped")}
        entries = settle()
        assert len(entries) == MARKETS, [(e["settlement_id"], e["status"], e["reasons"]) for e in entries]
        # Every settled order's invoice and every refund's credit note is in M3: all post.
        assert {e["status"] for e in entries} == {"posted"}, [e["reasons"] for e in entries]
        assert all(e["reconciliation"]["missing_in_m3"] == 0 for e in entries)
    with start_sandbox(home) as env:
        assert env.world().clock == clock  # the marker keeps both advances
