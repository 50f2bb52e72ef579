"""Product Type Definitions API 2020-09-01 (issue #15, item 4): the SP-API sandbox serves the demo
catalog's product types as Amazon does, and the Amazon connector reads each schema once.

There is no model file of this API in ``shared/spapi-models``; the answer's required keys below are
those of ``ProductTypeDefinition`` in amzn/selling-partner-api-models
``definitionsProductTypes_2020-09-01.json``, the usage plan its "Default | 5 | 10".
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest
from _amazon_fixtures import DE, FR, Sandbox, start_sandbox
from _spapi_fixtures import access_token
from jsonschema import Draft201909Validator

from connectors.amazon import AmazonError, AmazonRequestError
from connectors.amazon.definitions import parse_schema
from sandbox.spapi import credentials

META_SCHEMA = "https://schemas.amazon.com/selling-partners/definitions/product-types/meta-schema/v1"
REQUIRED_KEYS = {
    "locale",
    "marketplaceIds",
    "productType",
    "productTypeVersion",
    "propertyGroups",
    "requirements",
    "requirementsEnforced",
    "schema",
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from start_sandbox(tmp_path_factory.mktemp("definitions"))


def test_the_definition_links_a_schema_amazon_style(sandbox: Sandbox) -> None:
    token = access_token(sandbox.base_url, credentials(sandbox.data_dir))
    answer = httpx.get(
        f"{sandbox.base_url}/definitions/2020-09-01/productTypes/KITCHEN",
        params={"marketplaceIds": FR, "requirementsEnforced": "NOT_ENFORCED"},
        headers={"x-amz-access-token": token},
    )
    assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"] == "5.0"
    definition = answer.json()
    assert REQUIRED_KEYS <= set(definition)
    assert (definition["productType"], definition["marketplaceIds"], definition["locale"]) == ("KITCHEN", [FR], "fr_FR")
    assert (definition["requirements"], definition["requirementsEnforced"]) == ("LISTING", "NOT_ENFORCED")
    assert definition["productTypeVersion"]["latest"] is True
    raw = httpx.get(definition["schema"]["link"]["resource"]).content
    assert definition["schema"]["link"]["verb"] == "GET"
    assert base64.b64encode(hashlib.md5(raw).digest()).decode() == definition["schema"]["checksum"]
    meta = httpx.get(definition["metaSchema"]["link"]["resource"]).json()
    assert meta["$id"] == META_SCHEMA

    bad = httpx.get(
        f"{sandbox.base_url}/definitions/2020-09-01/productTypes/LUGGAGE",
        params={"marketplaceIds": FR},
        headers={"x-amz-access-token": token},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "InvalidInput"
    two = httpx.get(
        f"{sandbox.base_url}/definitions/2020-09-01/productTypes/KITCHEN",
        params={"marketplaceIds": f"{FR},{DE}"},
        headers={"x-amz-access-token": token},
    )
    assert two.status_code == 400  # "limited to one marketplaceId at this time"


def test_the_connector_reads_each_schema_once_and_it_is_a_2019_09_schema(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        kitchen = amazon.product_type_schema("KITCHEN", DE)
        assert amazon.product_type_schema("KITCHEN", DE) is kitchen and amazon.schemas.reads == 1
        assert amazon.product_type_schema("KITCHEN", FR).schema != kitchen.schema  # its own languages
        assert amazon.schemas.reads == 2
        with pytest.raises(AmazonRequestError, match="HTTP 400"):
            amazon.product_type_schema("LUGGAGE", DE)
    schema = dict(kitchen.schema)
    Draft201909Validator.check_schema(schema)
    assert schema["$schema"] == META_SCHEMA and "required" not in schema  # not enforced: for patches
    item_name = schema["properties"]["item_name"]
    assert item_name["items"]["properties"]["value"]["maxLength"] == 200
    assert item_name["items"]["required"] == ["value", "language_tag", "marketplace_id"]
    assert schema["$defs"]["language_tag"]["enum"] == ["de_DE", "en_GB"]
    assert kitchen.version and kitchen.checksum


def test_a_schema_whose_checksum_differs_is_refused() -> None:
    good = b'{"type": "object"}'
    checksum = base64.b64encode(hashlib.md5(good).digest()).decode()
    assert parse_schema(good, checksum, "schema of KITCHEN") == {"type": "object"}
    with pytest.raises(
        AmazonError, match=f"schema of KITCHEN: checksum .* is not the announced {re.escape(checksum)}$"
    ):
        parse_schema(b'{"type": "array"}', checksum, "schema of KITCHEN")
