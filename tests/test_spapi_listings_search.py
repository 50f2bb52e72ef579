"""searchListingsItems in the SP-API sandbox, Amazon's fulfillment channels on reads, and the
issues Amazon's processing finds after an ACCEPTED patch (sandbox/spapi/listings.py), driven by
the unmodified python-amazon-sp-api client and the AmazonConnector over HTTP; every answer checked
against Amazon's model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _spapi_fixtures import DE, HTTP, NOW, SELLER, US, clients, listing
from sp_api.base.exceptions import SellingApiBadRequestException

from sandbox.server import serve_in_thread
from sandbox.spapi import SpApiStore, create_app, credentials

# 25 US listings SKU-00 .. SKU-24 (quantity n, price 10 + n), and SKU-00 .. SKU-02 in DE.
US_SKUS = [f"SKU-{n:02d}" for n in range(25)]
LISTINGS = [listing(sku, US, quantity=n, price=f"{10 + n}.00") for n, sku in enumerate(US_SKUS)] + [
    listing(f"SKU-{n:02d}", DE, quantity=100 + n) for n in range(3)
]
ALL_DATA = "summaries,attributes,issues,offers,fulfillmentAvailability,productTypes"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("spapi-search")
    store = SpApiStore(data_dir)
    store.seed([], [], LISTINGS, SELLER)
    store.close()
    with serve_in_thread(lambda url: create_app(data_dir, url, rate_limits=False, now=lambda: NOW)) as server:
        server.data_dir = data_dir  # type: ignore[attr-defined]  # a note for the tests on the running server
        yield server


@pytest.fixture(scope="module")
def api(sandbox):
    return clients(sandbox.base_url, credentials(sandbox.data_dir))


def _search(api, marketplace: str = US, **params) -> dict:
    """The answer's body (the client takes ``pagination`` out of the payload: put back)."""
    answer = api.listings.search_listings_items(SELLER, marketplaceIds=[marketplace], **params)
    return dict(answer.payload, **({"pagination": answer.pagination} if answer.pagination else {}))


def _patch(api, sku: str, *patches: dict, marketplace: str = US) -> dict:
    body = {"productType": "HOME", "patches": list(patches)}
    return dict(api.listings.patch_listings_item(SELLER, sku, marketplaceIds=[marketplace], body=body).payload)


def _availability(code: str, quantity: int) -> dict:
    return {
        "op": "replace",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": code, "quantity": quantity}],
    }


def _price(amount: float) -> dict:
    return {
        "op": "replace",
        "path": "/attributes/purchasable_offer",
        "value": [{"marketplace_id": US, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": amount}]}]}],
    }


def _checks(sandbox, sku: str, **checks: object) -> httpx.Response:
    return HTTP.post(f"{sandbox.base_url}/sandbox/listings", json={"sku": sku, "marketplace_id": US, **checks})


def test_search_by_skus_in_one_marketplace_pages_and_sorts(api) -> None:
    wanted = [*US_SKUS[3:22], "NOT-LISTED"]  # 19 listed + 1 unknown = 20 identifiers, the most allowed
    found = _search(
        api, identifiers=",".join(wanted), identifiersType="SKU", pageSize=20, sortBy="sku", sortOrder="ASC"
    )
    assert found["numberOfResults"] == 19 and "pagination" not in found
    assert [item["sku"] for item in found["items"]] == US_SKUS[3:22]
    assert found["items"][0]["summaries"][0]["marketplaceId"] == US  # includedData defaults to summaries
    assert set(found["items"][0]) == {"sku", "summaries"}

    first = _search(api, sortBy="sku", sortOrder="DESC")  # no identifiers: every US listing, 10 a page
    assert first["numberOfResults"] == 25 and [i["sku"] for i in first["items"]] == US_SKUS[::-1][:10]
    second = _search(api, sortBy="sku", sortOrder="DESC", pageToken=first["pagination"]["nextToken"])
    assert [i["sku"] for i in second["items"]] == US_SKUS[::-1][10:20]
    assert "previousToken" in second["pagination"]

    german = _search(api, DE, identifiers="SKU-00,SKU-01,SKU-05", identifiersType="SKU", includedData="offers")
    assert sorted(i["sku"] for i in german["items"]) == ["SKU-00", "SKU-01"]  # SKU-05 is not listed in DE
    assert {i["offers"][0]["marketplaceId"] for i in german["items"]} == {DE}
    assert _search(api, lastUpdatedAfter="2999-01-01T00:00:00Z")["numberOfResults"] == 0


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"identifiers": ",".join(f"X{n}" for n in range(21)), "identifiersType": "SKU"}, "at most 20"),
        ({"identifiers": "SKU-00"}, "identifiersType is required"),
        ({"identifiers": "SKU-00", "identifiersType": "ASIN"}, "use SKU"),
        ({"pageSize": 21}, "pageSize"),
        ({"sortBy": "price"}, "sortBy"),
        ({"withIssueSeverity": "FATAL"}, "withIssueSeverity"),
    ],
)
def test_search_refuses_what_amazon_refuses(api, params: dict, fragment: str) -> None:
    with pytest.raises(SellingApiBadRequestException) as bad:
        _search(api, **params)
    assert fragment in bad.value.message


def test_amazon_fulfilled_channels_are_shown(api) -> None:
    assert _patch(api, "SKU-05", _availability("AMAZON_NA", 7))["status"] == "ACCEPTED"
    item = api.listings.get_listings_item(SELLER, "SKU-05", marketplaceIds=[US], includedData=ALL_DATA).payload
    assert item["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "AMAZON_NA", "quantity": 7}]
    searched = _search(api, identifiers="SKU-05,SKU-06", identifiersType="SKU", includedData="fulfillmentAvailability")
    shown = {i["sku"]: i["fulfillmentAvailability"] for i in searched["items"]}
    assert shown == {
        "SKU-05": [{"fulfillmentChannelCode": "AMAZON_NA", "quantity": 7}],
        "SKU-06": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 6}],  # seeded: merchant-fulfilled
    }


def test_issues_found_after_an_accepted_patch_show_on_later_reads(api, sandbox) -> None:
    assert _checks(sandbox, "SKU-10", min_price="15.00", max_price="30.00").status_code == 200
    assert _checks(sandbox, "SKU-11", suppressed=True).status_code == 200
    assert _checks(sandbox, "NO-SUCH", suppressed=True).status_code == 404
    assert _checks(sandbox, "SKU-10", min_price="cheap").status_code == 400

    # Accepted without issues in the answer (Amazon processes the patch later)...
    accepted = _patch(api, "SKU-10", _price(4.99))
    assert (accepted["status"], accepted["issues"]) == ("ACCEPTED", [])
    assert _patch(api, "SKU-11", _availability("DEFAULT", 3))["issues"] == []
    # ...the next reads show what processing found; the values are stored as sent.
    found = _search(api, identifiers="SKU-10,SKU-11,SKU-12", identifiersType="SKU", includedData=ALL_DATA)
    items = {i["sku"]: i for i in found["items"]}
    assert [(i["code"], i["severity"], i["marketplaceIds"]) for i in items["SKU-10"]["issues"]] == [
        ("PRICE_OUTSIDE_SELLER_ALLOWED_RANGE", "ERROR", [US])
    ]
    assert "4.99 is outside the seller-allowed range 15.00 to 30.00" in items["SKU-10"]["issues"][0]["message"]
    assert items["SKU-10"]["offers"][0]["price"]["amount"] == "4.99"
    assert items["SKU-10"]["summaries"][0]["status"] == ["DISCOVERABLE"]  # quantity 10, but the offer is inactive
    assert [i["code"] for i in items["SKU-11"]["issues"]] == ["LISTING_SUPPRESSED"]
    assert items["SKU-11"]["summaries"][0]["status"] == []
    assert items["SKU-12"]["issues"] == [] and items["SKU-12"]["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    single = api.listings.get_listings_item(SELLER, "SKU-10", marketplaceIds=[US], includedData="issues").payload
    assert single["issues"] == items["SKU-10"]["issues"]
    with_errors = _search(api, withIssueSeverity="ERROR", sortBy="sku", sortOrder="ASC")
    assert [i["sku"] for i in with_errors["items"]] == ["SKU-10", "SKU-11"]

    # A later accepted price inside the range clears the price issue.
    assert _patch(api, "SKU-10", _price(19.99))["status"] == "ACCEPTED"
    again = api.listings.get_listings_item(SELLER, "SKU-10", marketplaceIds=[US], includedData="issues").payload
    assert again["issues"] == []


def test_every_search_answer_matches_the_model(api, sandbox, spapi_models: Path) -> None:
    import jsonschema

    from sandbox.spapi.models import OPERATION_SCHEMAS, schema_for

    _checks(sandbox, "SKU-20", max_price="11.00")
    _patch(api, "SKU-20", _price(50.0))  # an issue to show
    _patch(api, "SKU-21", _availability("AMAZON_NA", 2))  # an Amazon channel to show
    spec = OPERATION_SCHEMAS["searchListingsItems"]
    success = jsonschema.Draft4Validator(schema_for(spapi_models, spec.model, spec.success))
    item = jsonschema.Draft4Validator(schema_for(spapi_models, spec.model, "Item"))
    for params in (
        {"identifiers": "SKU-20,SKU-21,SKU-22", "identifiersType": "SKU", "includedData": ALL_DATA},
        {"includedData": ALL_DATA, "withIssueSeverity": "ERROR"},
        {"pageSize": 3},
    ):
        answer = _search(api, **params)
        success.validate(answer)
        assert answer["items"]
    item.validate(api.listings.get_listings_item(SELLER, "SKU-20", marketplaceIds=[US], includedData=ALL_DATA).payload)
    error = jsonschema.Draft4Validator(schema_for(spapi_models, spec.model, spec.error))
    refused = HTTP.get(
        f"{sandbox.base_url}/listings/2021-08-01/items/{SELLER}",
        params={"marketplaceIds": US, "pageSize": 0},
        headers={"x-amz-access-token": _token(sandbox)},
    )
    assert refused.status_code == 400
    error.validate(refused.json())


def _token(sandbox) -> str:
    from _spapi_fixtures import access_token

    return access_token(sandbox.base_url, credentials(sandbox.data_dir))


def test_the_connector_reads_twenty_skus_a_call_and_the_sandbox_counts_calls(tmp_path: Path) -> None:
    """AmazonConnector.search_listings against a rate-limited sandbox: one searchListingsItems
    call per 20 SKUs, counted per operation in GET /sandbox/state."""
    from connectors.amazon.client import AmazonConnector
    from connectors.amazon.config import AmazonAccount

    store = SpApiStore(tmp_path)
    store.seed([], [], LISTINGS, SELLER)
    store.close()
    with serve_in_thread(lambda url: create_app(tmp_path, url, now=lambda: NOW, time_scale=100)) as server:
        account = AmazonAccount(
            endpoint=server.base_url,
            token_url=f"{server.base_url}/auth/o2/token",
            seller_id=SELLER,
            marketplace_ids=(US,),
            **credentials(tmp_path),
        )
        with AmazonConnector(account, time_scale=100) as connector:
            found = connector.search_listings(US_SKUS[:20], US)
            assert sorted(found) == US_SKUS[:20]
            assert found["SKU-07"]["offers"][0]["price"]["amount"] == "17.00"
            assert connector.search_listings(["SKU-24", "NONE"], US).keys() == {"SKU-24"}
            with pytest.raises(ValueError, match="1 to 20 SKUs"):
                connector.search_listings(US_SKUS[:21], US)
        requests = HTTP.get(f"{server.base_url}/sandbox/state").json()["requests"]
        assert requests["answered"] == {"searchListingsItems": 2}
