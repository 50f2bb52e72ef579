"""Every Amazon marketplace, walked through the settings layer and the Amazon connector.

Issue 10: the region tables of ``connectors/settings.py`` and ``connectors/amazon/config.py``
had drifted (South Africa configured: ``load_settings`` could not tell the endpoint while
``region_for_marketplace`` answered EU). Both now derive from the one marketplace table; this
walks each marketplace id through both and checks they name the host Amazon documents for the
marketplace's region (developer-docs.amazon.com/sp-api/docs/sp-api-endpoints), written out
here by hand rather than taken from the code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.amazon import AmazonAccount, SellerAccounts, region_for_marketplace
from connectors.settings import ConfigurationError, load_settings
from reconciliation.marketplaces import MARKETPLACES, Marketplace

# Amazon's published SP-API hosts and LWA token endpoint.
HOSTS = {
    "NA": "https://sellingpartnerapi-na.amazon.com",
    "EU": "https://sellingpartnerapi-eu.amazon.com",
    "FE": "https://sellingpartnerapi-fe.amazon.com",
}
AWS_REGIONS = {"NA": "us-east-1", "EU": "eu-west-1", "FE": "us-west-2"}
LWA = "https://api.amazon.com/auth/o2/token"

CONFIG = """\
[amazon]
refresh_token = "Atzr|walk"
lwa_app_id = "amzn1.application-oa2-client.walk"
lwa_client_secret = "walk-secret"
seller_id = "A1SELLER"
marketplaces = ["{marketplace_id}"]
"""


def test_the_table_names_only_regions_amazon_has() -> None:
    assert {m.region for m in MARKETPLACES} == set(HOSTS)
    # Hand-checked anchors from Amazon's marketplace-id page: one per region, and the one that drifted.
    by_id = {m.marketplace_id: m.region for m in MARKETPLACES}
    assert (by_id["ATVPDKIKX0DER"], by_id["AE08WJ6YKNBMC"], by_id["A1VC38T7YXB528"]) == ("NA", "EU", "FE")


@pytest.mark.parametrize("marketplace", MARKETPLACES, ids=lambda m: m.name)
def test_settings_and_connector_agree_on_every_marketplace(marketplace: Marketplace, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG.format(marketplace_id=marketplace.marketplace_id), encoding="utf-8")
    amazon = load_settings(tmp_path, env={}).require_amazon()
    host = HOSTS[marketplace.region]
    assert (amazon.endpoint, amazon.token_url, amazon.marketplaces) == (host, LWA, (marketplace.marketplace_id,))
    assert [a.region for a in amazon.accounts] == [marketplace.region.lower()]

    region = region_for_marketplace(marketplace.marketplace_id)
    assert (region.code, region.endpoint, region.aws_region) == (
        marketplace.region.lower(),
        host,
        AWS_REGIONS[marketplace.region],
    )
    account = AmazonAccount.for_marketplaces(
        [marketplace.marketplace_id], seller_id="A1SELLER", refresh_token="r", lwa_app_id="a", lwa_client_secret="s"
    )
    assert (account.endpoint, account.token_url, account.region) == (host, LWA, marketplace.region.lower())

    # The settings handed to the connector open one account on the same host.
    with SellerAccounts.from_settings(amazon) as accounts:
        (connector,) = accounts.connectors
        assert (connector.account.endpoint, connector.account.region) == (host, marketplace.region.lower())
        assert accounts.for_marketplace(marketplace.marketplace_id) is connector


def test_south_africa_alone_is_configured_in_europe(tmp_path: Path) -> None:
    env = {
        "M3SYNC_AMAZON_REFRESH_TOKEN": "r",
        "M3SYNC_AMAZON_LWA_APP_ID": "a",
        "M3SYNC_AMAZON_LWA_CLIENT_SECRET": "s",
        "M3SYNC_AMAZON_MARKETPLACES": "AE08WJ6YKNBMC",
    }
    assert load_settings(tmp_path, env=env).require_amazon().endpoint == "https://sellingpartnerapi-eu.amazon.com"


def test_a_marketplace_in_the_wrong_regional_table_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[amazon]\nlwa_app_id = "a"\nlwa_client_secret = "s"\n'
        '[amazon.fe]\nrefresh_token = "r"\nmarketplaces = ["AE08WJ6YKNBMC"]\n',
        encoding="utf-8",
    )
    settings = load_settings(tmp_path, env={})
    with pytest.raises(ConfigurationError, match="not FE marketplaces"):
        settings.require_amazon()
