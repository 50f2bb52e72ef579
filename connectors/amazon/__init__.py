"""Amazon Selling Partner API connector (python-amazon-sp-api underneath)."""

from connectors.amazon.accounts import SellerAccounts
from connectors.amazon.client import SETTLEMENT_REPORT_TYPE, AmazonConnector
from connectors.amazon.config import (
    LWA_TOKEN_URL,
    MARKETPLACE_REGIONS,
    REGIONS,
    AmazonAccount,
    AmazonConfigError,
    region_for_marketplace,
)
from connectors.amazon.definitions import ProductTypeSchema
from connectors.amazon.documents import DocumentLimits, DownloadedDocument
from connectors.amazon.errors import (
    AmazonAuthError,
    AmazonDocumentError,
    AmazonError,
    AmazonRequestError,
    AmazonUnavailable,
    AmazonUnreachable,
)
from connectors.amazon.orders import Orders20260101Source, OrdersSource, OrdersV0Source
from connectors.amazon.ratelimit import PUBLISHED_LIMITS, RateLimit, RateLimiter
from connectors.amazon.records import ListingIssue, ListingSubmission, PackageDetail, ReportInfo, ShipmentItem

__all__ = [
    "AmazonAccount",
    "AmazonAuthError",
    "AmazonConfigError",
    "AmazonConnector",
    "AmazonDocumentError",
    "AmazonError",
    "AmazonRequestError",
    "AmazonUnavailable",
    "AmazonUnreachable",
    "DocumentLimits",
    "DownloadedDocument",
    "LWA_TOKEN_URL",
    "SellerAccounts",
    "ListingIssue",
    "ListingSubmission",
    "MARKETPLACE_REGIONS",
    "Orders20260101Source",
    "OrdersSource",
    "OrdersV0Source",
    "PUBLISHED_LIMITS",
    "PackageDetail",
    "ProductTypeSchema",
    "REGIONS",
    "RateLimit",
    "RateLimiter",
    "ReportInfo",
    "SETTLEMENT_REPORT_TYPE",
    "ShipmentItem",
    "region_for_marketplace",
]
