"""A seller's SP-API accounts, one per region, and which one serves a marketplace.

Amazon's regions (na, eu, fe) each have their own host and their own refresh token for the
same app; a seller selling in the US and Germany has two authorisations. ``SellerAccounts``
opens one ``AmazonConnector`` per configured region and routes a marketplace to its region's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.amazon.client import AmazonConnector
from connectors.amazon.config import MARKETPLACE_REGIONS, AmazonAccount, AmazonConfigError
from connectors.amazon.documents import DocumentLimits


class SellerAccounts:
    """Connectors by region; ``for_marketplace`` picks the one whose account lists the marketplace."""

    def __init__(self, connectors: Sequence[AmazonConnector]) -> None:
        if not connectors:
            raise AmazonConfigError("accounts", "at least one Amazon account (region) is required")
        by_region: dict[str, AmazonConnector] = {}
        for connector in connectors:
            region = connector.account.region or connector.account.endpoint
            if region in by_region:
                raise AmazonConfigError("accounts", f"two accounts for region {region}; configure one per region")
            by_region[region] = connector
        self._by_region = by_region

    @classmethod
    def open(cls, accounts: Sequence[AmazonAccount], **connector_options: Any) -> SellerAccounts:
        """One connector per account (``connector_options`` go to each ``AmazonConnector``)."""
        opened: list[AmazonConnector] = []
        try:
            for account in accounts:
                opened.append(AmazonConnector(account, **connector_options))
            return cls(opened)
        except BaseException:
            for connector in opened:
                connector.close()
            raise

    @classmethod
    def from_sandbox_file(cls, values: Mapping[str, Any], **connector_options: Any) -> SellerAccounts:
        """From ``HOME/sandbox/spapi-credentials.json`` (written by ``sandbox.runtime``): shared LWA
        app and seller, and per region its endpoint, refresh token and marketplaces. Regions with
        no marketplace in the sandbox world are skipped."""
        shared = {k: values[k] for k in ("token_url", "seller_id", "lwa_app_id", "lwa_client_secret")}
        accounts = [
            AmazonAccount.from_mapping({**shared, **regional})
            for _, regional in sorted(dict(values["regions"]).items())
            if regional.get("marketplace_ids")
        ]
        return cls.open(accounts, time_scale=float(values.get("time_scale", 1.0)), **connector_options)

    @classmethod
    def from_settings(cls, settings: Any, **connector_options: Any) -> SellerAccounts:
        """From ``connectors.settings.AmazonSettings`` (secrets revealed here, handed to the clients only)."""
        accounts = [
            AmazonAccount(
                endpoint=regional.endpoint,
                token_url=settings.token_url,
                seller_id=settings.seller_id or "",
                marketplace_ids=regional.marketplaces,
                refresh_token=regional.refresh_token.reveal(),
                lwa_app_id=settings.lwa_app_id,
                lwa_client_secret=settings.lwa_client_secret.reveal(),
                orders_api_version=settings.orders_api_version,
            )
            for regional in settings.accounts
        ]
        limit = settings.max_document_bytes
        connector_options.setdefault("deadline", settings.deadline_seconds)
        connector_options.setdefault("document_limits", DocumentLimits(limit, limit))
        return cls.open(accounts, **connector_options)

    @property
    def connectors(self) -> tuple[AmazonConnector, ...]:
        return tuple(self._by_region.values())

    def __iter__(self) -> Iterator[AmazonConnector]:
        return iter(self.connectors)

    @property
    def marketplace_ids(self) -> tuple[str, ...]:
        """Every configured marketplace, all regions."""
        return tuple(m for connector in self.connectors for m in connector.account.marketplace_ids)

    def for_marketplace(self, marketplace_id: str) -> AmazonConnector:
        """The connector of the account that lists ``marketplace_id``."""
        for connector in self.connectors:
            if marketplace_id in connector.account.marketplace_ids:
                return connector
        region = MARKETPLACE_REGIONS.get(marketplace_id, "unknown")
        raise AmazonConfigError(
            "marketplaces",
            f"marketplace {marketplace_id} (region {region}) is not in any "
            "configured Amazon account; add it to that region's [amazon.<region>] marketplaces",
        )

    def close(self) -> None:
        for connector in self.connectors:
            connector.close()

    def __enter__(self) -> SellerAccounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SellerAccounts({', '.join(repr(c.account) for c in self.connectors)})"
