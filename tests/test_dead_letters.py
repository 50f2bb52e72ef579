"""``m3sync deadletters`` (issue #14, item 6) against the embedded M3 and SP-API sandboxes.

Order sync dead-letters two orders with SKUs M3 does not know; the routing file then maps one of
them to a catalog item, and its replay creates the order; the other fails again, and is discarded.
Expected values come from the seeded orders.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from _cli import m3sync
from _spapi_fixtures import order

from connectors.state import StateStore
from flows.cli import main
from flows.connections import open_connections
from flows.contract import run_document
from flows.dead_letters import ReplayRefused, letters_to_replay
from flows.exit_codes import EXIT_HELD, EXIT_INVALID, EXIT_OK
from flows.orders_steps import ORDER_ID_KIND
from sandbox.spapi import SpApiStore
from sync.routing import routing_path

ITNO = "A10001"  # an item of the sandbox M3's catalog (seed 0)
PURCHASED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
FIXED, STILL_BAD = "111-4100000-0000001", "111-4100000-0000002"
FIXED_SKU, BAD_SKU = "SKU-FIXED-LATER", "SKU-NEVER-KNOWN"
BUYER_DATA = ("Jane Doe", "Seattle", "abc123@marketplace.amazon.com")  # what _spapi_fixtures.order holds


def _order(order_id: str, sku: str, hours: int):
    head, items = order(order_id, PURCHASED + timedelta(hours=hours), status="Unshipped", items=1)
    items[0].update(SellerSKU=sku, QuantityOrdered=2)
    return head, items


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dead-letters-home")
    with open_connections(path, sandbox=True, orders=20):
        pass
    seller = json.loads((path / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    store = SpApiStore(path / "sandbox" / "spapi")
    try:
        store.seed([_order(FIXED, FIXED_SKU, 0), _order(STILL_BAD, BAD_SKU, 1)], [], [], seller)
    finally:
        store.close()
    return path


def _letters(home: Path) -> dict[str, object]:
    with StateStore.for_home(home) as state:
        return {letter.entity_key: letter for letter in state.list_dead_letters("orders", status=None)}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_dead_letter_lifecycle(prefect_api_url: str, home: Path, capsys: pytest.CaptureFixture[str]):
    from flows.dead_letters import dead_letter_replay
    from flows.orders import order_sync

    assert order_sync(sandbox=True, home=str(home), return_state=True).is_failed()
    letters = _letters(home)
    assert set(letters) == {FIXED, STILL_BAD}
    fixed, bad = letters[FIXED], letters[STILL_BAD]
    assert fixed.attempts == 1 and FIXED_SKU in fixed.error

    # list: both open, one line each; --json the same letters.
    code, out, _ = _cli(capsys, "deadletters", "list", "--home", str(home))
    assert code == EXIT_OK and len(out.splitlines()) == 2
    assert f"{FIXED}" in out and "x1" in out and FIXED_SKU in out
    code, out, _ = _cli(capsys, "deadletters", "list", "--json", "--home", str(home))
    listed = json.loads(out)["dead_letters"]
    assert [(e["id"], e["entity_key"], e["attempts"], e["status"]) for e in listed] == [
        (fixed.id, FIXED, 1, "open"),
        (bad.id, STILL_BAD, 1, "open"),
    ]

    # show: what re-fetches the order, never the buyer's name, address or e-mail.
    code, out, _ = _cli(capsys, "deadletters", "show", str(fixed.id), "--home", str(home))
    shown = json.loads(out)
    assert code == EXIT_OK and shown["payload"]["amazon_order_id"] == FIXED
    assert shown["payload"]["marketplace_id"] == "ATVPDKIKX0DER" and shown["flow"] == "orders"
    assert not any(text in out for text in BUYER_DATA)

    # Fix the cause of one: the routing sandbox runs read maps its SKU to a catalog item.
    routing_file = routing_path(home, sandbox=True)
    routing = yaml.safe_load(routing_file.read_text(encoding="utf-8"))
    routing["items"][FIXED_SKU] = ITNO
    routing_file.write_text(yaml.safe_dump(routing, sort_keys=False), encoding="utf-8")

    # The other fails again: still open, one more attempt, its new error.
    state = dead_letter_replay(letter_ids=[bad.id], sandbox=True, home=str(home), return_state=True)
    assert state.is_failed()
    assert [(e["id"], e["status"]) for e in run_document(state)["replays"]] == [(bad.id, "failed")]
    assert state.result(raise_on_failure=False).exit_code == EXIT_HELD
    again = _letters(home)[STILL_BAD]
    assert (again.status, again.attempts, again.id) == ("open", 2, bad.id) and BAD_SKU in again.error

    # As a user runs it, every open letter: the fixed order is created in M3 once and its letter
    # resolved; the other fails a third time (exit 3, one line naming it).
    run = m3sync("deadletters", "replay", "--all", "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == EXIT_HELD, run.stderr
    assert [(e["id"], e["status"]) for e in run.document["replays"]] == [(fixed.id, "replayed"), (bad.id, "failed")]
    assert run.stderr.startswith(f"m3sync: 1 dead letter(s) not replayed: {bad.id} ({STILL_BAD}): failed: ")
    assert run.stderr.count("\n") == 1 and BAD_SKU in run.stderr
    assert _letters(home)[STILL_BAD].attempts == 3
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        orno = connections.m3.orders_by_reference("AMZUS")[FIXED]
        assert connections.state.m3_id_for(ORDER_ID_KIND, FIXED) == orno
        assert [(line.itno, int(line.quantity)) for line in connections.m3.list_order_lines(orno)] == [(ITNO, 2)]
    assert _letters(home)[FIXED].status == "replayed"

    # Resolved or unknown letters: one line, exit 2.
    code, out, err = _cli(capsys, "deadletters", "replay", str(fixed.id), "--sandbox", "--home", str(home))
    assert (code, out) == (EXIT_INVALID, "") and err.count("\n") == 1 and "already replayed" in err
    code, out, err = _cli(capsys, "deadletters", "show", "999999", "--home", str(home))
    assert (code, out, err) == (EXIT_INVALID, "", "m3sync: no dead letter with id 999999\n")
    code, _, err = _cli(capsys, "deadletters", "replay", "--sandbox", "--home", str(home))
    assert code == EXIT_INVALID and "ID or --all" in err

    # discard: closed, listed only with --all; a second discard is refused.
    code, out, _ = _cli(capsys, "deadletters", "discard", str(bad.id), "--home", str(home))
    assert code == EXIT_OK and f"dead letter {bad.id} (orders {STILL_BAD}) discarded" in out
    code, _, err = _cli(capsys, "deadletters", "discard", str(bad.id), "--home", str(home))
    assert code == EXIT_INVALID and err.count("\n") == 1 and "already discarded" in err
    code, out, _ = _cli(capsys, "deadletters", "list", "--home", str(home))
    assert (code, out) == (EXIT_OK, "no open dead letters\n")
    code, out, _ = _cli(capsys, "deadletters", "list", "--all", "--json", "--home", str(home))
    statuses = {e["entity_key"]: e["status"] for e in json.loads(out)["dead_letters"]}
    assert statuses == {FIXED: "replayed", STILL_BAD: "discarded"}


def test_a_flow_without_a_replay_is_refused_in_one_line(tmp_path: Path):
    with StateStore.for_home(tmp_path) as state:
        state.create_schema()
        letter = state.add_dead_letter("invoices", "invoice", "INV-1", {"invoice": "INV-1"}, "refused")
        with pytest.raises(ReplayRefused) as refused:
            letters_to_replay(state, [letter.id])
        assert letters_to_replay(state, None) == []  # --all: left for discard or a person
    assert str(refused.value) == (
        f"dead letter {letter.id}: flow 'invoices' has no replay "
        "(known: orders, shipment-sync, refunds, catalog, inventory)"
    )


def test_a_shipment_letter_replays_that_order_only_once_its_carrier_is_mapped(prefect_api_url: str, tmp_path: Path):
    from test_shipment_sync import UNKNOWN_AGENT, _enter_and_deliver, _shipments

    from flows.dead_letters import dead_letter_replay
    from flows.shipments import shipment_sync

    home = tmp_path / "home"
    facts = _enter_and_deliver(home)  # one order's delivery has forwarding agent PIGEON, unknown
    assert shipment_sync(sandbox=True, home=str(home), return_state=True).is_failed()
    with StateStore.for_home(home) as state:
        [letter] = state.list_dead_letters("shipment-sync")
    assert letter.entity_key == UNKNOWN_AGENT and letter.payload["orno"] == facts[UNKNOWN_AGENT]["orno"]

    (home / "carriers.yaml").write_text("carriers:\n  PIGEON: {code: Other, name: Pigeon Post}\n", encoding="utf-8")
    state = dead_letter_replay(letter_ids=[letter.id], sandbox=True, home=str(home), return_state=True)
    assert state.is_completed()
    assert [(e["id"], e["status"], e["detail"]) for e in run_document(state)["replays"]] == [
        (letter.id, "replayed", "1 package(s) confirmed, 0 waiting")
    ]
    with open_connections(home, sandbox=True) as connections:
        shipments = _shipments(connections.sandbox_env)
        assert connections.state.get_dead_letter(letter.id).status == "replayed"
    delivery = facts[UNKNOWN_AGENT]["delivery"]
    pigeon = [s["packageDetail"] for s in shipments if s["amazonOrderId"] == UNKNOWN_AGENT]
    assert [(p["carrierCode"], p["carrierName"], p["trackingNumber"]) for p in pigeon] == [
        ("Other", "Pigeon Post", delivery["ETRN"])
    ]
    assert len(shipments) == 2  # the order confirmed by the run, and this one: nothing else was touched
