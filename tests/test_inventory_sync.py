"""Inventory sync (flows/inventory.py) against both sandboxes over HTTP: the listings the SP-API
sandbox stores after a sync hold the quantities and prices worked out by hand from the balances
set in the sandbox M3 (its admin API) and the buffer rules below; deltas only; price review
hold; INVALID -> dead letter -> replay; read back; the oversell walk; the command."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _cli import m3sync

from flows.connections import Connections, open_connections
from flows.dead_letters import REPLAYERS
from flows.inventory import check_settings, sync_listings
from flows.inventory_steps import DEAD_LETTER_FLOW, Run, inventory_document, inventory_exit_code
from sandbox.catalog import build_catalog

DE, FR, UK = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1F83G8C2ARO7P"
HOM, KIT, SPO, TOY, ELE = "HOM-10001", "KIT-10002", "SPO-10003", "TOY-10004", "ELE-10005"
SETTINGS = {
    "review_percent": 20,
    "readback_after_seconds": 0,  # read back at the next run
    "skus": [HOM, KIT, SPO, TOY, ELE],
    "buffers": {"default": {"units": 2, "percent": 10}, "item_groups": {"HOME": {"percent": 25}}},
    "marketplaces": {
        "DE": {"warehouses": ["100"], "price_list": "AMZEUR"},
        "FR": {"warehouses": ["100"], "price_list": "AMZEUR", "rounding": {"nearest": "0.05"}},
        "UK": {"warehouses": ["100"], "price_list": "AMZGBP"},
    },
}
# Warehouse 100 (item number: on hand, allocated) and what each SKU publishes, by hand:
BALANCES = {"A10001": (100, 0), "A10002": (40, 0), "A10003": (15, 3), "A10004": (1, 0), "A10005": (0, 0)}
EXPECTED_QUANTITY = {
    HOM: 75,  # HOME group: 100 - 25% of 100
    KIT: 36,  # 40 - max(2, 4)
    SPO: 10,  # 15 - 3 allocated = 12 - max(2, 1.2 -> 2)
    TOY: 0,  # 1 - 2, floored
    ELE: 0,
}
CATALOG = {item.sku: item for item in build_catalog(0)}  # the seeded world's prices (minor units)


def listed(sku: str) -> list[str]:
    """HOM-10001 is not listed in FR (the catalog lists every fifth item in US, DE and UK only)."""
    return [DE, UK] if sku == HOM else [DE, FR, UK]


def seeded_price(sku: str, code: str) -> Decimal:
    return Decimal(CATALOG[sku].prices[code]) / 100


def expected_price(sku: str, marketplace_id: str) -> Decimal:
    """DE and UK: M3's price lists hold the listings' own prices (unchanged); FR: the EUR list
    (DE's price) rounded to the nearest 0.05."""
    if marketplace_id == FR:
        return (seeded_price(sku, "DE") / Decimal("0.05")).quantize(Decimal(1), ROUND_HALF_UP) * Decimal("0.05")
    return seeded_price(sku, "DE" if marketplace_id == DE else "UK")


def set_stock(connections: Connections, itno: str, **body: Any) -> None:
    answer = httpx.post(f"{connections.sandbox_env.m3.base_url}/sandbox/stock", json={"itno": itno, **body}, timeout=30)
    assert answer.status_code == 200, answer.text


def amazon_listings(connections: Connections) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """The SP-API sandbox's stored listings: (SKU, marketplace id) -> (quantity, price)."""
    state = httpx.get(f"{connections.sandbox_env.spapi['eu'].base_url}/sandbox/state", timeout=30).json()
    return {(r["sku"], r["marketplaceId"]): (r["quantity"], Decimal(r["price"])) for r in state["listings"]}


def prepare(home: Path, profile: str = "brief") -> None:
    """A sandbox home with the settings above (and the cloudsuite profile when asked)."""
    with open_connections(home, sandbox=True, orders=20) as connections:
        for itno, (on_hand, allocated) in BALANCES.items():
            set_stock(connections, itno, whlo="100", on_hand=on_hand, allocated=allocated)
    (home / "inventory.yaml").write_text(yaml.safe_dump(SETTINGS), encoding="utf-8")
    if profile == "cloudsuite":
        ionapi = home / "sandbox" / "m3.ionapi"
        (home / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "cloudsuite"\n', encoding="utf-8")


def sync(connections: Connections, *, full: bool = False) -> Run:
    settings, routing = check_settings(connections.home, sandbox=True)
    return sync_listings(connections, settings, routing, full=full)


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_first_sync_publishes_allocatable_minus_buffer_and_the_price_lists(
    prefect_api_url: str, tmp_path: Path, profile: str
) -> None:
    prepare(tmp_path, profile)
    with open_connections(tmp_path, sandbox=True) as connections:
        assert connections.m3_profile == profile
        # TOY-10004 in UK is fulfilled by Amazon: its channel is AMAZON_EU. Never patched.
        before = connections.require_amazon().for_marketplace(UK)
        fba_patch = {
            "op": "replace",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "AMAZON_EU", "quantity": 0}],
        }
        assert before.patch_listing(TOY, UK, "TOY", [fba_patch]).accepted
        untouched = amazon_listings(connections)

        first = sync(connections)
        assert first.unreachable is None and first.exceptions == [] and first.held == [] and first.rejected == []
        assert first.fba == 1
        shown = amazon_listings(connections)
        for sku, quantity in EXPECTED_QUANTITY.items():
            for marketplace_id in listed(sku):
                if (sku, marketplace_id) == (TOY, UK):
                    assert shown[(sku, marketplace_id)] == untouched[(sku, marketplace_id)]
                    continue
                assert shown[(sku, marketplace_id)] == (quantity, expected_price(sku, marketplace_id)), (
                    sku,
                    marketplace_id,
                )
        assert (HOM, FR) not in shown
        prices_sent = {(e["sku"], e["marketplace_id"]) for e in first.sent if "price" in e["sent"]}
        assert prices_sent == {(sku, FR) for sku in (KIT, SPO, TOY, ELE)}  # DE and UK already had M3's prices
        for other in (s for s in shown if s[0] not in EXPECTED_QUANTITY):
            assert shown[other] == untouched[other]  # SKUs not configured are left alone

        second = sync(connections)
        assert (len(second.sent), second.unchanged, second.read_back) == (0, 13, len(first.sent))
        assert second.exceptions == [] and amazon_listings(connections) == shown


def test_the_items_own_sales_price_as_the_price_source(prefect_api_url: str, tmp_path: Path) -> None:
    """DE and UK take the item's sales price (MMS200MI/GetItmPrice: EUR, the sandbox company's
    currency), FR keeps its price list: both sources in one run."""
    prepare(tmp_path)
    marketplaces = {
        "DE": {"warehouses": ["100"], "price_source": "item"},
        "FR": SETTINGS["marketplaces"]["FR"],  # type: ignore[index]  # the module's settings: a dict
        "UK": {"warehouses": ["100"], "price_source": "item"},
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({**SETTINGS, "marketplaces": marketplaces}))
    # KIT-10002's sales price in M3 becomes 10% above its DE price (within the 20% review), quoted
    # for 2 pieces (SACD 2): the listing's price is half of SAPR.
    unit = (seeded_price(KIT, "DE") * Decimal("1.1")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    with open_connections(tmp_path, sandbox=True) as connections:
        changed = httpx.post(
            f"{connections.sandbox_env.m3.base_url}/sandbox/items/A10002",
            json={"SAPR": str(unit * 2), "SACD": "2"},
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        run = sync(connections)
        shown = amazon_listings(connections)
    assert run.unreachable is None and run.exceptions == [] and run.rejected == []
    assert shown[(KIT, DE)] == (EXPECTED_QUANTITY[KIT], unit)
    for sku in (HOM, SPO, TOY, ELE):  # the other items' sales prices are their DE prices: unchanged
        assert shown[(sku, DE)] == (EXPECTED_QUANTITY[sku], seeded_price(sku, "DE")), sku
    # UK sells in GBP: the EUR sales price is held for every SKU, the quantities still go out.
    assert {(e["sku"], e["marketplace"]): e["reason"] for e in run.held} == {
        (sku, "UK"): "the M3 item's sales price (MMS200MI) is in EUR, not GBP" for sku in EXPECTED_QUANTITY
    }
    for sku, quantity in EXPECTED_QUANTITY.items():
        assert shown[(sku, UK)] == (quantity, seeded_price(sku, "UK")), sku
        if FR in listed(sku):
            assert shown[(sku, FR)] == (quantity, expected_price(sku, FR)), sku
    prices_sent = {(e["sku"], e["marketplace_id"]) for e in run.sent if "price" in e["sent"]}
    assert prices_sent == {(KIT, DE)} | {(sku, FR) for sku in (KIT, SPO, TOY, ELE)}


def test_deltas_price_hold_read_back_and_dead_letter(prefect_api_url: str, tmp_path: Path) -> None:
    prepare(tmp_path)
    with open_connections(tmp_path, sandbox=True) as connections:
        sync(connections)

        # A changed balance: KIT 40 -> 30 on hand publishes 30 - max(2, 3) = 27, in its three marketplaces.
        set_stock(connections, "A10002", whlo="100", on_hand=30)
        changed = sync(connections)
        assert sorted((e["sku"], e["marketplace_id"], e["quantity"], tuple(e["sent"])) for e in changed.sent) == [
            (KIT, mp, 27, ("quantity",)) for mp in sorted([DE, FR, UK])
        ]
        assert changed.unchanged == 11  # 14 listings, 3 sent

        # Amazon changed a quantity after accepting it: the next run's read back says so, and it sends it again.
        amazon = connections.require_amazon().for_marketplace(DE)
        quantity_patch = {
            "op": "replace",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 99}],
        }
        assert amazon.patch_listing(KIT, DE, "KITCHEN", [quantity_patch]).accepted
        submission = _submission(connections, KIT, DE)

        # SPO's GBP price +50%: held, Amazon keeps the old price; its quantity change is still sent.
        old_price = seeded_price(SPO, "UK")
        set_stock(connections, "A10003", currency="GBP", price=str(old_price * Decimal("1.5")))
        new_price = (old_price * Decimal("1.5")).quantize(Decimal("0.01"), ROUND_HALF_UP)  # in GBP's decimals
        set_stock(connections, "A10004", currency="GBP", price="0.00")  # TOY: a price of zero is held too
        set_stock(connections, "A10003", whlo="100", on_hand=25, allocated=3)  # 22 - max(2, 2.2 -> 3) = 19
        held = sync(connections)
        assert held.exceptions == [
            {
                "sku": KIT,
                "marketplace": "DE",
                "reason": f"read back (submission {submission}): Amazon shows quantity 99, 27 was sent",
            }
        ]
        assert sorted((e["sku"], e["marketplace"], e["quantity"], tuple(e["sent"])) for e in held.sent) == [
            (KIT, "DE", 27, ("quantity",)),
            (SPO, "DE", 19, ("quantity",)),
            (SPO, "FR", 19, ("quantity",)),
            (SPO, "UK", 19, ("quantity",)),
        ]
        document = inventory_document(held, full=False)
        assert inventory_exit_code(document) == 3
        assert [(e["sku"], e["marketplace"], e["reason"]) for e in held.held] == [
            (
                SPO,
                "UK",
                f"price {old_price} -> {new_price} GBP changes 50.0% (more than 20%): held for review",
            ),
            (TOY, "UK", "price 0.00 GBP in M3 price list AMZGBP is not positive"),
        ]
        assert document["inventory"]["held"] == 2
        assert amazon_listings(connections)[(SPO, UK)] == (19, old_price)
        assert amazon_listings(connections)[(KIT, DE)][0] == 27

        # Amazon answers INVALID (the product type recorded is not the listing's): dead letters. The replay
        # reads the listing again and sends it; a plain run reads the other again, and Amazon already
        # shows what M3 says: resolved without a patch.
        for marketplace_id in (DE, UK):
            seen = connections.state.listing_states()[(ELE, marketplace_id)]
            connections.state.record_listing_state(replace(seen, product_type="WRONG_TYPE", quantity=5))
        rejected = sync(connections)
        assert {(e["sku"], e["marketplace_id"]) for e in rejected.rejected} == {(ELE, DE), (ELE, UK)}
        assert "90244" in rejected.rejected[0]["reason"]
        letters = {letter.entity_key: letter for letter in connections.state.list_dead_letters(flow=DEAD_LETTER_FLOW)}
        assert set(letters) == {f"{ELE}@{DE}", f"{ELE}@{UK}"} and "WRONG_TYPE" in letters[f"{ELE}@{DE}"].error
        assert {letter.entity for letter in letters.values()} == {"listing"}
        assert amazon_listings(connections)[(ELE, DE)][0] == 0
        succeeded, detail = REPLAYERS["inventory"](connections, letters[f"{ELE}@{DE}"])
        assert succeeded and detail.startswith("sent quantity and price: quantity 0"), detail
        assert connections.state.listing_states()[(ELE, DE)].product_type == "CONSUMER_ELECTRONICS"
        connections.state.resolve_dead_letter(letters[f"{ELE}@{DE}"].id, "replayed")  # as the replay command does
        after = sync(connections)
        assert (after.sent, after.rejected) == ([], [])
        assert connections.state.list_dead_letters(flow=DEAD_LETTER_FLOW) == []
        assert connections.state.listing_states()[(ELE, UK)].product_type == "CONSUMER_ELECTRONICS"


def listings_calls(connections: Connections) -> dict[str, int]:
    """The Listings calls the EU SP-API sandbox answered since it started, per operation."""
    state = httpx.get(f"{connections.sandbox_env.spapi['eu'].base_url}/sandbox/state", timeout=30).json()
    return {name: n for name, n in state["requests"]["answered"].items() if "Listings" in name}


def test_issues_amazon_finds_after_accepting_are_exceptions_and_reads_go_20_skus_a_call(
    prefect_api_url: str, tmp_path: Path
) -> None:
    """Amazon accepts a price above KIT-10002's maximum seller-allowed price in DE and a quantity
    on SPO-10003's suppressed UK listing, and finds the problems later: the read back of the run
    after turns them into exceptions. Listings reads are searchListingsItems, one per marketplace
    for these 5 SKUs; patches one per changed pair."""
    prepare(tmp_path)
    with open_connections(tmp_path, sandbox=True) as connections:
        first = sync(connections)
        assert first.exceptions == []
        # 5 SKUs in DE, FR and UK: one search per marketplace finds them (HOM-10001 is not in FR).
        assert listings_calls(connections) == {"searchListingsItems": 3, "patchListingsItem": len(first.sent)}

        eu = connections.sandbox_env.spapi["eu"].base_url
        old = seeded_price(KIT, "DE")
        checks = {"sku": KIT, "marketplace_id": DE, "max_price": str(old)}
        assert httpx.post(f"{eu}/sandbox/listings", json=checks, timeout=30).status_code == 200
        checks = {"sku": SPO, "marketplace_id": UK, "suppressed": True}
        assert httpx.post(f"{eu}/sandbox/listings", json=checks, timeout=30).status_code == 200
        raised = (old * Decimal("1.10")).quantize(Decimal("0.01"), ROUND_HALF_UP)  # within the 20% review
        set_stock(connections, "A10002", currency="EUR", price=str(raised))
        set_stock(connections, "A10003", whlo="100", on_hand=25, allocated=3)  # 22 - max(2, 2.2 -> 3) = 19
        second = sync(connections)
        assert second.exceptions == [] and second.rejected == []  # accepted: Amazon has not processed them yet
        assert sorted((e["sku"], e["marketplace"], tuple(e["sent"])) for e in second.sent) == [
            (KIT, "DE", ("price",)),
            (KIT, "FR", ("price",)),
            (SPO, "DE", ("quantity",)),
            (SPO, "FR", ("quantity",)),
            (SPO, "UK", ("quantity",)),
        ]
        submissions = {m: _submission(connections, sku, m) for sku, m in ((KIT, DE), (SPO, UK))}

        before = listings_calls(connections)
        third = sync(connections)
        assert third.read_back == 5 and third.sent == []
        reasons = {(e["sku"], e["marketplace"]): e["reason"] for e in third.exceptions}
        assert set(reasons) == {(KIT, "DE"), (SPO, "UK")}
        assert reasons[(KIT, "DE")].startswith(
            f"read back (submission {submissions[DE]}): issue PRICE_OUTSIDE_SELLER_ALLOWED_RANGE: The price "
        )
        assert f"is outside the seller-allowed range - to {old}" in reasons[(KIT, "DE")]
        assert reasons[(SPO, "UK")] == (
            f"read back (submission {submissions[UK]}): issue LISTING_SUPPRESSED: "
            "The listing is suppressed: the quantity 19 is not offered to buyers."
        )
        assert inventory_exit_code(inventory_document(third, full=False)) == 3
        # The read back of 5 pairs in 3 marketplaces: 3 searches; nothing to patch.
        after = listings_calls(connections)
        assert {name: after[name] - before.get(name, 0) for name in after} == {
            "searchListingsItems": 3,
            "patchListingsItem": 0,
        }
        fourth = sync(connections)  # read back once: the issues are not reported again
        assert fourth.exceptions == [] and fourth.read_back == 0


def _submission(connections: Connections, sku: str, marketplace_id: str) -> str | None:
    return connections.state.listing_states()[(sku, marketplace_id)].submission_id


def test_oversell_walk_amazon_never_shows_more_than_available_minus_buffer(prefect_api_url: str, tmp_path: Path):
    """SPO-10003 (15 on hand) is allocated step by step to orders until nothing is left; after each
    sync Amazon shows exactly available minus buffer in every marketplace, never more, through a
    429 storm too. Then stock comes back while Amazon is out of reach: nothing is recorded as sent,
    and the next run sends it."""
    prepare(tmp_path)
    walk = [(3, 10), (6, 7), (10, 3), (13, 0), (15, 0)]  # allocated -> 15 - allocated - max(2, 10% up)
    with open_connections(tmp_path, sandbox=True) as connections:
        faults = f"{connections.sandbox_env.spapi['eu'].base_url}/sandbox/faults"
        for step, (allocated, expected) in enumerate(walk):
            set_stock(connections, "A10003", whlo="100", on_hand=15, allocated=allocated)
            if step == 1:  # a 429 storm on the patches: retried within the connector's limits
                storm = {"status": 429, "count": 3, "operations": ["patchListingsItem"]}
                assert httpx.post(faults, json=storm, timeout=30).status_code == 200
            run = sync(connections)
            assert run.unreachable is None and run.rejected == []
            shown = amazon_listings(connections)
            available = 15 - allocated
            for marketplace_id in (DE, FR, UK):
                quantity = shown[(SPO, marketplace_id)][0]
                assert quantity == expected and quantity <= max(available - 2, 0)

        set_stock(connections, "A10003", whlo="100", on_hand=15, allocated=0)  # 15 - max(2, 2) = 13
        down = {"status": 503, "count": 5, "operations": ["patchListingsItem"]}  # every attempt of the first patch
        assert httpx.post(faults, json=down, timeout=30).status_code == 200
        stopped = sync(connections)
        assert stopped.unreachable is not None and "patchListingsItem" in stopped.unreachable
        assert inventory_exit_code(inventory_document(stopped, full=False)) == 4
        assert stopped.sent == [] and {amazon_listings(connections)[(SPO, m)][0] for m in (DE, FR, UK)} == {0}
        resumed = sync(connections)
        assert sorted(e["marketplace"] for e in resumed.sent) == ["DE", "FR", "UK"]
        assert {amazon_listings(connections)[(SPO, m)][0] for m in (DE, FR, UK)} == {13}


def test_command_json_full_and_bad_settings(prefect_api_url: str, tmp_path: Path) -> None:
    prepare(tmp_path)
    first = m3sync("inventory", "--sandbox", "--json", "--home", str(tmp_path), api_url=prefect_api_url)
    assert first.code == 0, first.stderr
    body = first.document["inventory"]
    assert (body["held"], body["rejected"], body["exceptions"], body["unreachable"]) == (0, 0, [], None)
    assert body["sent"] + body["unchanged"] == 14 and body["sent"] == len(body["items"])
    kit = next(e for e in body["items"] if (e["sku"], e["marketplace"]) == (KIT, "FR"))
    assert (kit["quantity"], kit["price"], kit["currency"]) == (36, str(expected_price(KIT, FR)), "EUR")

    full = m3sync("inventory", "--sandbox", "--full", "--home", str(tmp_path), api_url=prefect_api_url)
    assert full.code == 0, full.stderr
    assert full.stdout.startswith("Inventory: 14 listings patched, 0 unchanged, 0 held")

    (tmp_path / "inventory.yaml").write_text("marketplaces:\n  XX: {warehouses: ['100']}\n", encoding="utf-8")
    bad = m3sync("inventory", "--sandbox", "--home", str(tmp_path), api_url=prefect_api_url)
    assert bad.code == 2 and bad.stdout == ""
    assert bad.stderr.strip().endswith(
        "inventory.yaml: marketplaces.XX: unknown marketplace code (known: "
        "AE, AU, BE, BR, CA, DE, EG, ES, FR, IE, IN, IT, JP, MX, NL, PL, SA, SE, SG, TR, UK, US, ZA)"
    )


def test_the_deployment_runs_the_flow_every_15_minutes_one_at_a_time() -> None:
    import inspect

    from prefect.flows import load_flow_from_entrypoint

    repo = Path(__file__).resolve().parents[1]
    document = yaml.safe_load((repo / "prefect.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in document["deployments"] if d["name"] == "inventory-sync"]
    entry_file, _, function = deployment["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(repo / entry_file) + ":" + function)
    assert flow.name == "inventory-sync"
    assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert deployment["parameters"] == {"full": False, "sandbox": False}
    assert (deployment["concurrency_limit"], deployment["schedules"][0]["interval"]) == (1, 900)


def test_a_sync_keeps_what_the_seller_set_beside_quantity_and_price(prefect_api_url: str, tmp_path: Path) -> None:
    """KIT-10002 in DE carries a handling time and seller-allowed prices set on Amazon; the sync
    merges its quantity (36) and price (the EUR list's) into them instead of replacing them."""
    prepare(tmp_path)
    price = expected_price(KIT, DE)
    with open_connections(tmp_path, sandbox=True) as connections:
        amazon = connections.require_amazon().for_marketplace(DE)
        seller_set = [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 5, "lead_time_to_ship_max_days": 3}],
            },
            {
                "op": "replace",
                "path": "/attributes/purchasable_offer",
                "value": [
                    {
                        "marketplace_id": DE,
                        "currency": "EUR",
                        "our_price": [{"schedule": [{"value_with_tax": price + 1}]}],
                        "minimum_seller_allowed_price": [{"schedule": [{"value_with_tax": 1}]}],
                    }
                ],
            },
        ]
        assert amazon.patch_listing(KIT, DE, "KITCHEN", seller_set).accepted
        run = sync(connections)
        assert [e["sent"] for e in run.sent if (e["sku"], e["marketplace_id"]) == (KIT, DE)] == [["quantity", "price"]]
        attributes = amazon.get_listing(KIT, DE)["attributes"]
        [availability] = attributes["fulfillment_availability"]
        assert (availability["quantity"], availability["lead_time_to_ship_max_days"]) == (36, 3)
        [offer] = attributes["purchasable_offer"]
        assert Decimal(str(offer["our_price"][0]["schedule"][0]["value_with_tax"])) == price
        assert offer["minimum_seller_allowed_price"] == [{"schedule": [{"value_with_tax": 1}]}]


def test_a_price_the_product_types_schema_refuses_is_held_before_sending(prefect_api_url: str, tmp_path: Path) -> None:
    """KIT-10002's GBP list price set to 150,000.00 (the sandbox's KITCHEN schema allows up to
    100,000; no review limit here): UK's price is held, naming the rule, and never sent, while its
    quantity is; the sandbox's patchListingsItem refuses that price the same way."""
    prepare(tmp_path)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({**SETTINGS, "review_percent": 10**9}), encoding="utf-8")
    with open_connections(tmp_path, sandbox=True) as connections:
        assert sync(connections).held == []
        set_stock(connections, "A10002", currency="GBP", price="150000.00")
        set_stock(connections, "A10002", whlo="100", on_hand=30)  # 30 - max(2, 3) = 27
        run = sync(connections)
        [held] = [e for e in run.held if e["sku"] == KIT]
        assert held["marketplace_id"] == UK and held["reason"] == (
            f"{KIT} in {UK}: purchasable_offer breaks product type KITCHEN's schema: maximum 100000 "
            "(value 150000.00 at /purchasable_offer/0/our_price/0/schedule/0/value_with_tax)"
        )
        assert [
            (e["marketplace_id"], e["sent"]) for e in run.sent if e["sku"] == KIT and e["marketplace_id"] == UK
        ] == [(UK, ["quantity"])]
        assert amazon_listings(connections)[(KIT, UK)] == (27, seeded_price(KIT, "UK"))
        dear = {
            "op": "merge",
            "path": "/attributes/purchasable_offer",
            "value": [
                {"marketplace_id": UK, "currency": "GBP", "our_price": [{"schedule": [{"value_with_tax": 150000}]}]}
            ],
        }
        answer = connections.require_amazon().for_marketplace(UK).patch_listing(KIT, UK, "KITCHEN", [dear])
        assert answer.status == "INVALID" and answer.issues[0].attribute_names == ("purchasable_offer",)
