"""``catalog_sync`` and ``m3sync catalog`` (issue #15, items 3 and 5) against the embedded M3 and
SP-API sandboxes over HTTP.

The sandbox M3's item master is the seeded catalog's (``sandbox/catalog.py``, seed 0): ITDS = the
item's name, FUDS = its category, UNMS = PCS. Amazon lists HOM-10001 (n = 0) in US, DE and UK,
every other of the first SKUs in all four marketplaces. Expected values come from there and from
the mapping written here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from _cli import m3sync

from flows.connections import open_connections
from flows.contract import run_document
from sandbox.catalog import MARKETPLACES, build_catalog
from sandbox.spapi import SpApiStore

US, DE, FR, UK = (MARKETPLACES[code].marketplace_id for code in ("US", "DE", "FR", "UK"))
LANGUAGE = {US: "en_US", DE: "de_DE", FR: "fr_FR", UK: "en_GB"}
ITEMS = {item.sku: item for item in build_catalog(0)[:4]}  # HOM-10001, KIT-10002, SPO-10003, TOY-10004
TEXT_ATTRIBUTES = ("item_name", "product_description", "bullet_point")
OLD = "2020-01-01 00:00:00"  # a listing's last update set by hand: a patch moves it to now


def _mapping(skus: list[str], languages: str = "{US: en_US, DE: de_DE, FR: fr_FR, UK: en_GB}", name: str = "{name}"):
    return (
        f'attributes:\n  item_name: "{name}"\n  product_description: "{{description}}"\n'
        f'  bullet_point: ["{{description}}", "Sold per {{unit}}"]\n'
        f"languages: {languages}\nskus: [{', '.join(skus)}]\n"
    )


def _home(path: Path, mapping: str, config: str = "") -> Path:
    with open_connections(path, sandbox=True, orders=20):
        pass
    (path / "catalog.yaml").write_text(mapping, encoding="utf-8")
    if config:
        (path / "config.toml").write_text(config, encoding="utf-8")
    return path


def _listings(home: Path, sku: str) -> dict[str, Any]:
    """What the sandbox Amazon holds for ``sku`` by marketplace: product type, our attributes, last update."""
    store = SpApiStore(home / "sandbox" / "spapi")
    try:
        found = {m: store.get_listing(store.seller_id, sku, m) for m in (US, DE, FR, UK)}
    finally:
        store.close()
    return {
        m: (r.product_type, {k: v for k, v in r.attributes.items() if k in TEXT_ATTRIBUTES})
        for m, r in found.items()
        if r is not None
    }


def _sandbox_sql(home: Path, sql: str, *params: str) -> list[tuple]:
    with sqlite3.connect(home / "sandbox" / "spapi" / "spapi.sqlite3") as db:
        return db.execute(sql, params).fetchall()


def _m3_item(home: Path, itno: str, **fields: str) -> None:
    """Change the item in the sandbox M3 as a user would in MMS001 (its admin API)."""
    with open_connections(home, sandbox=True) as connections:
        answer = httpx.post(f"{connections.sandbox_env.m3.base_url}/sandbox/items/{itno}", json=fields)
        answer.raise_for_status()


def _text(value: str, marketplace: str) -> list[dict[str, str]]:
    return [{"value": value, "language_tag": LANGUAGE[marketplace], "marketplace_id": marketplace}]


def _attributes(name: str, description: str, marketplace: str) -> dict[str, list[dict[str, str]]]:
    return {
        "item_name": _text(name, marketplace),
        "product_description": _text(description, marketplace),
        "bullet_point": _text(description, marketplace) + _text("Sold per PCS", marketplace),
    }


def _sent(document: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    return {
        (i["sku"], i["marketplace"]): i["attributes"] for i in document["catalog"]["items"] if i["outcome"] == "sent"
    }


def test_a_sync_makes_the_listings_the_item_master_then_sends_only_what_m3_changed(
    prefect_api_url: str, tmp_path: Path
):
    from flows.catalog import catalog_sync

    home = _home(tmp_path, _mapping(["HOM-10001", "KIT-10002", "SPO-10003"]))
    document = catalog_sync(sandbox=True, home=str(home))["catalog"]
    listed = {(sku, m) for sku in ("KIT-10002", "SPO-10003") for m in (US, DE, FR, UK)} | {
        ("HOM-10001", m) for m in (US, DE, UK)
    }
    assert {k: document[k] for k in ("sent", "unchanged", "held", "rejected", "skipped")} == {
        "sent": 11,
        "unchanged": 0,
        "held": 0,
        "rejected": 0,
        "skipped": 1,
    }
    assert set(_sent({"catalog": document})) == listed
    [skipped] = [i for i in document["items"] if i["outcome"] == "skipped"]
    assert (skipped["sku"], skipped["reason"]) == ("HOM-10001", f"SKU HOM-10001 is not listed in {FR}")
    for sku in ("HOM-10001", "KIT-10002", "SPO-10003"):
        item = ITEMS[sku]
        stored = _listings(home, sku)
        assert {m: attributes for m, (_, attributes) in stored.items()} == {
            m: _attributes(item.name, item.category, m) for m in stored
        }
        assert {product_type for product_type, _ in stored.values()} == {item.product_type}

    # Nothing changed in M3: nothing is sent (no listing's last update moves).
    _sandbox_sql(home, "UPDATE listings SET updated = ?", OLD)
    again = catalog_sync(sandbox=True, home=str(home))["catalog"]
    assert (again["sent"], again["unchanged"], again["skipped"]) == (0, 11, 1)
    assert _sandbox_sql(home, "SELECT DISTINCT updated FROM listings") == [(OLD,)]

    # The chef knife is renamed in M3: one patch per marketplace, with only its name.
    _m3_item(home, "A10002", ITDS="Pro Chef Knife 20 cm")
    renamed = catalog_sync(sandbox=True, home=str(home))
    assert _sent(renamed) == {("KIT-10002", m): ["item_name"] for m in (US, DE, FR, UK)}
    assert renamed["catalog"]["unchanged"] == 7
    for marketplace, (_, attributes) in _listings(home, "KIT-10002").items():
        assert attributes == _attributes("Pro Chef Knife 20 cm", "Kitchen", marketplace)
    assert _sandbox_sql(home, "SELECT sku, COUNT(*) FROM listings WHERE updated != ? GROUP BY sku", OLD) == [
        ("KIT-10002", 4)
    ]

    # A full resync sends every mapped attribute of every listing, changed or not.
    full = catalog_sync(full=True, sandbox=True, home=str(home))
    assert _sent(full) == {key: list(TEXT_ATTRIBUTES) for key in listed}


def test_an_over_long_name_is_held_before_sending_as_amazon_would_refuse_it(prefect_api_url: str, tmp_path: Path):
    """A title composed of several fields breaks the product type's 200 characters: held, not sent.
    So is a SKU without an M3 item; an item M3 no longer sells (status 90) is skipped."""
    from flows.catalog import catalog_sync

    long_description = "Resistance band set with door anchor, handles and a carry bag"[:60]
    name = f"{ITEMS['SPO-10003'].name} | {long_description} | {long_description} | {long_description}"
    assert len(name) > 200  # the input breaks Amazon's limit
    home = _home(
        tmp_path,
        _mapping(
            ["KIT-10002", "SPO-10003", "HOM-10001", "NO-SUCH-SKU"],
            "{US: en_US}",
            "{name} | {description} | {description} | {description}",
        ),
    )
    _m3_item(home, "A10003", FUDS=long_description)
    _m3_item(home, "A10001", STAT="90")
    state = catalog_sync(sandbox=True, home=str(home), return_state=True)
    assert state.is_failed()
    document = run_document(state)["catalog"]
    assert (document["sent"], document["held"], document["skipped"]) == (1, 2, 1)
    held, no_item = [i for i in document["items"] if i["outcome"] == "held"]
    assert held["sku"] == "SPO-10003" and held["attributes"] == list(TEXT_ATTRIBUTES)
    assert no_item["reason"].startswith("SKU NO-SUCH-SKU: no M3 item NO-SUCH-SKU: ") and no_item["attributes"] == []
    [skipped] = [i for i in document["items"] if i["outcome"] == "skipped"]
    assert (skipped["sku"], skipped["reason"]) == ("HOM-10001", "M3 item A10001 has status '90', not kept in step")
    assert held["reason"] == (
        f"SKU SPO-10003 in {US}: item_name: maxLength 200 ({len(name)} characters at /item_name/0/value)"
    )
    assert state.message.startswith(f"2 of 4 listings held, 0 rejected: SPO-10003 in {US} (SKU SPO-10003 in ")
    assert state.message.endswith(") and 1 more")
    assert _listings(home, "SPO-10003")[US][1]["item_name"] == [
        {"value": ITEMS["SPO-10003"].name, "marketplace_id": US}
    ]
    knife = f"{ITEMS['KIT-10002'].name} | Kitchen | Kitchen | Kitchen"
    assert _listings(home, "KIT-10002")[US][1]["item_name"] == _text(knife, US)

    # Sent anyway, Amazon (the sandbox, checking the schema it serves) refuses it naming the attribute.
    with open_connections(home, sandbox=True) as connections:
        connector = connections.require_amazon().for_marketplace(US)
        patch = [{"op": "replace", "path": "/attributes/item_name", "value": _text(name, US)}]
        answer = connector.patch_listing("SPO-10003", US, "SPORTING_GOODS", patch)
    assert answer.status == "INVALID"
    assert [(i.attribute_names, i.severity) for i in answer.issues] == [(("item_name",), "ERROR")]
    assert "maxLength 200" in answer.issues[0].message

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    artifacts = {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found}
    assert (
        "| held (breaks the product type's schema, or no M3 item): not sent | 2 |"
        in (artifacts["catalog-sync-summary-sandbox"])
    )
    assert [(r["sku"], r["outcome"]) for r in artifacts["catalog-sync-listings-sandbox"]] == [
        ("KIT-10002", "sent"),
        ("SPO-10003", "held"),
        ("NO-SUCH-SKU", "held"),
    ]


def test_an_invalid_answer_is_a_dead_letter_and_its_replay_sends_it(prefect_api_url: str, tmp_path: Path):
    """Amazon moved the listing to another product type: the patch under the remembered one is
    INVALID (90244), a dead letter; its replay reads the product type again and sends it."""
    from flows.catalog import catalog_sync
    from flows.dead_letters import dead_letter_replay

    home = _home(tmp_path, _mapping(["KIT-10002"], "{DE: de_DE}"))
    assert catalog_sync(sandbox=True, home=str(home))["catalog"]["sent"] == 1
    _sandbox_sql(home, "UPDATE listings SET product_type = 'HOME' WHERE sku = 'KIT-10002'")
    _m3_item(home, "A10002", ITDS="Chef Knife 2026")
    state = catalog_sync(sandbox=True, home=str(home), return_state=True)
    assert state.is_failed()
    document = run_document(state)["catalog"]
    assert (document["rejected"], document["sent"]) == (1, 0)
    assert document["items"][0]["reason"].startswith(f"SKU KIT-10002 in {DE}: Amazon answered INVALID: 90244 -: ")
    assert _listings(home, "KIT-10002")[DE][1]["item_name"] == _text(ITEMS["KIT-10002"].name, DE)
    with open_connections(home, sandbox=True) as connections:
        [letter] = connections.state.list_dead_letters("catalog")
    assert (letter.entity, letter.entity_key) == ("listing", f"KIT-10002@{DE}")
    assert letter.payload["product_type"] == "KITCHEN" and letter.payload["attributes"] == ["item_name"]
    assert [issue["code"] for issue in letter.payload["issues"]] == ["90244"]

    replays = dead_letter_replay(sandbox=True, home=str(home))["replays"]
    assert replays == [
        {
            "id": letter.id,
            "flow": "catalog",
            "entity_key": f"KIT-10002@{DE}",
            "status": "replayed",
            "detail": "sent item_name",
        }
    ]
    assert _listings(home, "KIT-10002")[DE] == ("HOME", _attributes("Chef Knife 2026", "Kitchen", DE))
    with open_connections(home, sandbox=True) as connections:
        assert connections.state.list_dead_letters("catalog") == []
        known = connections.state.catalog_listing("KIT-10002", DE)
        assert known is not None and known.product_type == "HOME"


def test_the_command_with_the_cloudsuite_profile_and_a_bad_mapping(prefect_api_url: str, tmp_path: Path):
    home = _home(tmp_path / "good", _mapping(["TOY-10004"], "{US: en_US, UK: en_GB}"))
    ionapi = home / "sandbox" / "m3.ionapi"
    (home / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "cloudsuite"\n', encoding="utf-8")
    run = m3sync("catalog", "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == 0, run.stderr
    assert _sent(run.document) == {("TOY-10004", US): list(TEXT_ATTRIBUTES), ("TOY-10004", UK): list(TEXT_ATTRIBUTES)}
    toy = ITEMS["TOY-10004"]
    assert {m: a for m, (_, a) in _listings(home, "TOY-10004").items() if m in (US, UK)} == {
        m: _attributes(toy.name, toy.category, m) for m in (US, UK)
    }
    again = m3sync("catalog", "--sandbox", "--home", str(home), api_url=prefect_api_url)
    assert (again.code, again.stdout.strip()) == (0, "0 sent, 2 unchanged, 0 held, 0 rejected, 0 skipped")

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "catalog.yaml").write_text('attributes:\n  item_name: "{title}"\nlanguages: {US: en_US}\n', encoding="utf-8")
    refused = m3sync("catalog", "--sandbox", "--home", str(bad), api_url=prefect_api_url)
    assert refused.code == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"m3sync: {bad / 'catalog.yaml'}: attributes.item_name: '{{title}}': {{title}} is not an item field "
        "(one of {itno}, {name}, {description}, {unit}, {status}, {item_group}, {item_type})"
    )


@pytest.mark.parametrize("field", ["ITDS", "FUDS"])
def test_the_sandbox_m3_keeps_its_field_lengths(tmp_path: Path, field: str) -> None:
    with open_connections(tmp_path, sandbox=True, orders=20) as connections:
        url = f"{connections.sandbox_env.m3.base_url}/sandbox/items/A10001"
        too_long = httpx.post(url, json={field: "x" * 61})
        assert too_long.status_code == 400 and "at most" in too_long.json()["error"]
        assert connections.require_m3().get_item("A10001").name == ITEMS["HOM-10001"].name
