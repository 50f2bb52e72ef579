"""Infor M3 connector: MI REST client (v1, v2, bulk), ION API auth, business operations."""
from connectors.m3.auth import BasicCredentials, IonApiCredentials, IonApiOAuth
from connectors.m3.client import BulkResult, M3Client
from connectors.m3.errors import (
    M3AuthError,
    M3BatchFailed,
    M3Error,
    M3OrderIncomplete,
    M3TransactionError,
    M3Unavailable,
    M3WriteInDoubt,
)
from connectors.m3.operations import M3Operations
from connectors.m3.records import (
    CreatedOrder,
    Customer,
    CustomerInvoice,
    CustomerRequest,
    Delivery,
    DeliveryLine,
    Item,
    JournalEntry,
    JournalLine,
    M3DataError,
    OrderAddress,
    OrderHead,
    OrderLine,
    OrderLineRequest,
    OrderRequest,
    PostedVoucher,
    PostedVoucherLine,
    StockBalance,
    SubmittedVoucher,
)

__all__ = [
    "BasicCredentials", "BulkResult", "CreatedOrder", "Customer", "CustomerInvoice", "CustomerRequest", "Delivery",
    "DeliveryLine", "IonApiCredentials", "IonApiOAuth", "Item", "JournalEntry", "JournalLine", "M3AuthError",
    "M3Client", "M3DataError", "M3Error", "M3Operations", "M3OrderIncomplete", "M3TransactionError", "M3Unavailable",
    "OrderAddress", "OrderHead", "OrderLine", "OrderLineRequest", "OrderRequest", "PostedVoucher",
    "PostedVoucherLine", "StockBalance", "SubmittedVoucher", "M3BatchFailed", "M3WriteInDoubt",
]
