"""``m3sync deadletters``: the entities a flow could not process, for a person (issue #14, item 6).

``list`` and ``show`` read the state store; ``discard`` closes a letter without retrying it;
``replay`` runs the flow's own per-entity code for the letter's entity once more (order sync:
the order re-fetched from Amazon by id and ``orders_steps.sync_order``; shipment sync:
``shipments.ship_order``; catalog sync: ``catalog_steps.sync_listing`` with the listing's product
type read from Amazon again). A letter is resolved as replayed only when that succeeds; a replay
that fails again leaves it open with one more attempt and the new error (the flow's code
records it, as in a run).

Replays run inside the Prefect flow ``dead-letter-replay``: the per-entity code is made of
Prefect tasks (the Amazon and M3 reads, with their retries), and a replay shows in the UI next
to the runs that dead-lettered the entity.

A new flow that writes dead letters adds one entry to ``REPLAYERS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prefect import flow

from connectors.amazon import AmazonError
from connectors.m3 import M3Error
from connectors.settings import ConfigurationError
from connectors.state import DeadLetter, DeadLetterNotFound, DeadLetterNotOpen, StateStore
from flows.connections import Connections, open_connections
from flows.exit_codes import EXIT_HELD, EXIT_OK, EXIT_UNREACHABLE
from flows.failures import end_run, flow_boundary, one_line

ReplayStatus = Literal["replayed", "failed", "unreachable"]


@dataclass(frozen=True)
class Replayed:
    """What replaying one letter did: ``detail`` is the outcome or the new error (no buyer data)."""

    letter_id: int
    flow: str
    entity_key: str
    status: ReplayStatus
    detail: str

    def document(self) -> dict[str, Any]:
        return {
            "id": self.letter_id,
            "flow": self.flow,
            "entity_key": self.entity_key,
            "status": self.status,
            "detail": self.detail,
        }


class ReplayRefused(ConfigurationError):
    """An unknown id, a letter already resolved, a flow without a replay: one line and exit 2, as
    for any bad argument (``flows.failures.known_failure``)."""


# ---- replays, one per flow: (connections, letter) -> (succeeded, detail) ------------------------


def replay_order(connections: Connections, letter: DeadLetter) -> tuple[bool, str]:
    """Order sync for the letter's order: re-fetched from Amazon by id, then ``sync_order``."""
    from flows import orders_steps as steps
    from sync.routing import load_routing

    routing = load_routing(connections.home, sandbox=connections.sandbox)
    marketplace_id = str(letter.payload["marketplace_id"])
    order = steps.fetch_order(connections, marketplace_id, letter.entity_key, buyers=routing.customers == "buyer")
    lookups = steps.M3Lookups(connections, routing)
    # The letter being replayed no longer holds its order back: a person says it is fixed, and an
    # order M3 holds half-made is checked against its lines (completed or lettered with why).
    lookups.open_letters.pop(letter.entity_key, None)
    result = steps.sync_order(connections, routing, lookups, order)
    if result.outcome == "dead_lettered":  # sync_order recorded the new attempt
        return False, result.reason
    if result.outcome == "waiting":  # Amazon has not confirmed it yet: still not in M3
        connections.state.add_dead_letter(letter.flow, letter.entity, letter.entity_key, letter.payload, result.reason)
        return False, result.reason
    return True, result.outcome.replace("_", " ") + (f" {result.orno}" if result.orno else "")


def replay_shipment(connections: Connections, letter: DeadLetter) -> tuple[bool, str]:
    """Shipment sync for the letter's order: ``ship_order``, the flow's per-order path."""
    from flows.shipments import OrderToShip, check_mappings, ship_order

    carriers, routing = check_mappings(connections.home, sandbox=connections.sandbox)
    payload = letter.payload
    order = OrderToShip(letter.entity_key, str(payload["orno"]), str(payload["marketplace_id"]))
    document: dict[str, Any] = {"confirmed": [], "already_confirmed": 0, "waiting": [], "dead_lettered": []}
    if not ship_order(connections, carriers, routing, order, document):
        raise _Unreachable(document["unreachable"])
    if document["dead_lettered"]:  # ship_order recorded the new attempt
        return False, str(document["dead_lettered"][0]["error"])
    return True, f"{len(document['confirmed'])} package(s) confirmed, {len(document['waiting'])} waiting"


def replay_refund(connections: Connections, letter: DeadLetter) -> tuple[bool, str]:
    """Refund credit for the letter's refund (its payload is the refund): ``credit_refund``."""
    from flows.refunds_steps import credit_refund
    from sync.credits import AmazonRefund
    from sync.routing import load_routing

    routing = load_routing(connections.home, sandbox=connections.sandbox)
    result = credit_refund(connections, routing, AmazonRefund.from_json(letter.payload))
    if result.outcome == "dead_lettered":  # credit_refund recorded the new attempt
        return False, result.reason
    return True, result.outcome.replace("_", " ") + (f" {result.orno}" if result.orno else "")


def replay_listing(connections: Connections, letter: DeadLetter) -> tuple[bool, str]:
    """Catalog sync for the letter's listing: M3's item read again, the product type asked of
    Amazon again (a listing Amazon moved to another product type is refused as INVALID), then
    ``sync_listing``, which sends the attributes Amazon has not accepted yet."""
    from flows import catalog_steps as steps

    _, catalog = steps.load_settings_of(connections.home, sandbox=connections.sandbox)
    payload = letter.payload
    key = steps.ListingKey(str(payload["sku"]), str(payload["itno"]), str(payload["marketplace_id"]))
    if key.marketplace_id not in catalog.languages:
        return False, f"marketplace {key.marketplace_id} has no language in catalog.yaml any more"
    item = steps.read_items(connections, [key.itno])[key.itno]
    known = connections.state.catalog_listing(key.sku, key.marketplace_id)
    result = steps.sync_listing(connections, catalog, key, item, known, reread_product_type=True)
    if result.outcome in ("rejected", "held"):  # a rejection recorded the new attempt itself
        if result.outcome == "held":
            connections.state.add_dead_letter(letter.flow, letter.entity, letter.entity_key, payload, result.reason)
        return False, result.reason
    return True, f"{result.outcome} {', '.join(result.attributes)}".strip()


def replay_inventory(connections: Connections, letter: DeadLetter) -> tuple[bool, str]:
    """Inventory sync for the letter's SKU and marketplace: read from Amazon again, then its
    quantity and price sent (``inventory.sync_listings``, the flow's path)."""
    from flows.inventory import check_settings, sync_listings

    settings, routing = check_settings(connections.home, sandbox=connections.sandbox)
    pair = (str(letter.payload["sku"]), str(letter.payload["marketplace_id"]))
    run = sync_listings(connections, settings, routing, full=True, only=pair)
    if run.unreachable:
        raise _Unreachable(run.unreachable)
    if run.rejected:  # send recorded the new attempt
        return False, str(run.rejected[0]["reason"])
    if run.exceptions and not run.sent:  # e.g. Amazon refused the read: one more attempt, as a run records
        reason = str(run.exceptions[0]["reason"])
        connections.state.add_dead_letter(letter.flow, letter.entity, letter.entity_key, letter.payload, reason)
        return False, reason
    sent = [entry for entry in run.sent if (entry["sku"], entry["marketplace_id"]) == pair]
    if sent:
        return True, f"sent {' and '.join(sent[0]['sent'])}: quantity {sent[0]['quantity']}, price {sent[0]['price']}"
    return True, "nothing to send (fulfilled by Amazon, or no longer listed there)"


REPLAYERS: Mapping[str, Callable[[Connections, DeadLetter], tuple[bool, str]]] = {
    "orders": replay_order,
    "shipment-sync": replay_shipment,
    "refunds": replay_refund,
    "catalog": replay_listing,
    "inventory": replay_inventory,
}


class _Unreachable(Exception):
    pass


# ---- the flow ------------------------------------------------------------------------------------


@flow(name="dead-letter-replay")
@flow_boundary
def dead_letter_replay(letter_ids: list[int] | None = None, sandbox: bool = False, home: str | None = None) -> dict:
    """Replay dead letters: run the flow's own code for each letter's entity once more.

    Args:
        letter_ids: The ids of the open letters to replay; none given replays every open letter.
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, order_routing.yaml, carriers.yaml and state
            (default $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        ``{"replays": [...]}``, one entry per letter replayed: id, flow, entity key, status
        (replayed, failed or unreachable) and the outcome or the new error. M3 or Amazon out of
        reach stops the replay. The run ends Failed when a replay failed again or was stopped.
    """
    with open_connections(home, sandbox=sandbox, need_m3=True, need_amazon=True) as connections:
        letters = letters_to_replay(connections.state, letter_ids)
        document = {"replays": [entry.document() for entry in replay_letters(connections, letters)]}
    return end_run(document, replay_exit_code(document["replays"]), replay_message(document["replays"]))


def replay_message(entries: list[dict[str, Any]]) -> str:
    """The one-line reason a replay run fails: the letters not replayed; "" when every one was."""
    failed = [e for e in entries if e["status"] != "replayed"]
    if not failed:
        return ""
    return f"{len(failed)} dead letter(s) not replayed: " + "; ".join(
        f"{e['id']} ({e['entity_key']}): {e['status']}: {e['detail']}" for e in failed[:3]
    )


def letters_to_replay(state: StateStore, letter_ids: list[int] | None) -> list[DeadLetter]:
    """The open letters asked for, checked before any is replayed; ``letter_ids`` None: every open
    letter of a flow with a replay (the others wait for ``discard`` or a person)."""
    if letter_ids is None:
        return [letter for letter in state.list_dead_letters(status="open") if letter.flow in REPLAYERS]
    letters = []
    for letter_id in letter_ids:
        letter = state.get_dead_letter(letter_id)
        if letter is None:
            raise ReplayRefused(str(DeadLetterNotFound(letter_id)))
        if letter.status != "open":
            raise ReplayRefused(str(DeadLetterNotOpen(letter_id, letter.status)))
        letters.append(letter)
    for letter in letters:
        if letter.flow not in REPLAYERS:
            raise ReplayRefused(
                f"dead letter {letter.id}: flow {letter.flow!r} has no replay (known: {', '.join(REPLAYERS)})"
            )
    return letters


def replay_letters(connections: Connections, letters: list[DeadLetter]) -> list[Replayed]:
    """Replay each letter in turn; out of reach stops (that letter stays as it was)."""
    done: list[Replayed] = []
    for letter in letters:
        try:
            succeeded, detail = REPLAYERS[letter.flow](connections, letter)
        except (_Unreachable, AmazonError, M3Error) as exc:
            done.append(Replayed(letter.id, letter.flow, letter.entity_key, "unreachable", one_line(str(exc))))
            break
        if succeeded:
            connections.state.resolve_dead_letter(letter.id, "replayed")
        status: ReplayStatus = "replayed" if succeeded else "failed"
        done.append(Replayed(letter.id, letter.flow, letter.entity_key, status, one_line(detail)))
    return done


def replay_exit_code(entries: list[dict[str, Any]]) -> int:
    """4 when out of reach, else 3 when a replay failed again, else 0."""
    statuses = {entry["status"] for entry in entries}
    if "unreachable" in statuses:
        return EXIT_UNREACHABLE
    return EXIT_HELD if "failed" in statuses else EXIT_OK


# ---- list, show, discard -------------------------------------------------------------------------


def letter_document(letter: DeadLetter, *, payload: bool) -> dict[str, Any]:
    """A letter as JSON (its payload and error were redacted when it was recorded)."""
    document: dict[str, Any] = {
        "id": letter.id,
        "flow": letter.flow,
        "entity": letter.entity,
        "entity_key": letter.entity_key,
        "status": letter.status,
        "attempts": letter.attempts,
        "first_seen": letter.first_seen.isoformat(),
        "last_seen": letter.last_seen.isoformat(),
        "error": letter.error,
    }
    if payload:
        document["payload"] = letter.payload
    return document


def list_line(letter: DeadLetter) -> str:
    """One line of ``deadletters list``."""
    seen = f"{letter.first_seen:%Y-%m-%d %H:%M}..{letter.last_seen:%Y-%m-%d %H:%M}"
    status = "" if letter.status == "open" else f" [{letter.status}]"
    return (
        f"{letter.id:>5}  {letter.flow:<14} {letter.entity_key:<20} x{letter.attempts:<3} {seen}{status}  "
        f"{one_line(letter.error, 120)}"
    )


def discard(state: StateStore, letter_id: int) -> DeadLetter:
    """Close an open letter without replaying it; ReplayRefused (exit 2) for an unknown or closed one."""
    try:
        return state.resolve_dead_letter(letter_id, "discarded")
    except (DeadLetterNotFound, DeadLetterNotOpen) as exc:
        raise ReplayRefused(str(exc).strip("\"'")) from None


# ---- the command line ----------------------------------------------------------------------------


def deadletters_command(args: argparse.Namespace) -> int:
    """``m3sync deadletters ACTION``: exit 0; 2 unknown id, resolved letter or bad arguments; 3 a
    replay failed again; 4 M3 or Amazon out of reach."""
    if args.deadletters_command == "replay":
        return _replay_command(args)
    with _state_of(args.home) as state:
        if args.deadletters_command == "list":
            letters = state.list_dead_letters(status=None if args.all else "open")
            if args.json:
                print(json.dumps({"dead_letters": [letter_document(x, payload=False) for x in letters]}, indent=2))
            else:
                print(
                    "\n".join(list_line(letter) for letter in letters)
                    or ("no dead letters" if args.all else "no open dead letters")
                )
            return EXIT_OK
        if args.deadletters_command == "show":
            letter = state.get_dead_letter(args.letter_id)
            if letter is None:
                raise ReplayRefused(str(DeadLetterNotFound(args.letter_id)).strip("\"'"))
            document = letter_document(letter, payload=True)
        else:
            document = letter_document(discard(state, args.letter_id), payload=False)
    if args.json or args.deadletters_command == "show":
        print(json.dumps(document, indent=2))
    else:
        print(f"dead letter {document['id']} ({document['flow']} {document['entity_key']}) discarded")
    return EXIT_OK


def _state_of(home: str | None) -> StateStore:
    from connectors.settings import load_settings, resolve_home

    return StateStore(load_settings(resolve_home(home)).state_url)


def _replay_command(args: argparse.Namespace) -> int:
    from flows.cli import _failure, _prefect_files_in_home, concise_console_logs
    from flows.connections import checked_settings
    from flows.contract import run_document, run_exit_code
    from flows.prefect_server import start_ephemeral_server

    if (args.letter_id is None) == (not args.all):
        raise ReplayRefused("replay needs a dead letter ID or --all, not both")
    letter_ids = None if args.all else [args.letter_id]
    with _state_of(args.home) as store:
        letters_to_replay(store, letter_ids)  # an unknown or resolved letter is one line before Prefect starts
    _prefect_files_in_home(args)
    server = start_ephemeral_server()
    try:
        checked_settings(args.home, sandbox=args.sandbox, need_m3=True, need_amazon=True)
        concise_console_logs()
    finally:
        server.wait()
    with server.in_use():
        run = dead_letter_replay(letter_ids=letter_ids, sandbox=args.sandbox, home=args.home, return_state=True)
    try:
        document = run_document(run)
    except Exception as exc:  # noqa: BLE001 - known failures become one line and an exit code
        return _failure(exc, run.state_details.flow_run_id)
    entries = document["replays"]
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(
            "\n".join(
                f"dead letter {e['id']} ({e['flow']} {e['entity_key']}): {e['status']}: {e['detail']}" for e in entries
            )
            or "no open dead letters"
        )
    sys.stdout.flush()
    code = run_exit_code(run)
    if code != EXIT_OK:
        print(f"m3sync: {run.message}", file=sys.stderr)
    return code
