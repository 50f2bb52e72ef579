"""Typed failures of the Amazon connector. Messages carry Amazon's code and text, never secrets."""

from __future__ import annotations


class AmazonError(Exception):
    """Base class: ``operation`` is the SP-API operation name (e.g. ``getOrders``)."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"Amazon {operation}: {message}")
        self.operation = operation


class AmazonUnavailable(AmazonError):
    """Amazon (or the network) kept failing with 429/5xx/timeouts after every retry."""

    def __init__(self, operation: str, *, attempts: int, status: int | None, code: str | None, message: str) -> None:
        what = f"HTTP {status}" if status is not None else "no response"
        super().__init__(operation, f"unavailable after {attempts} attempt(s): {what} {code or ''} {message}".rstrip())
        self.attempts = attempts
        self.status = status
        self.code = code
        self.detail = message


class AmazonRequestError(AmazonError):
    """Amazon rejected the request (400/403/404/409/...): retrying the same call will not help."""

    def __init__(self, operation: str, *, status: int, code: str | None, message: str) -> None:
        super().__init__(operation, f"HTTP {status} {code or ''}: {message}")
        self.status = status
        self.code = code
        self.detail = message


class AmazonAuthError(AmazonError):
    """Login with Amazon refused the credentials (``error`` is the OAuth error code, e.g. invalid_grant)."""

    def __init__(self, operation: str, *, status: int | None, error: str | None, message: str | None) -> None:
        super().__init__(operation, f"LWA token request refused (HTTP {status}, {error}): {message or ''}".rstrip())
        self.status = status
        self.error = error


class AmazonDocumentError(AmazonError):
    """A report document could not be fetched or decoded (``document_id`` names which)."""

    def __init__(self, document_id: str, message: str) -> None:
        super().__init__("getReportDocument", f"document {document_id}: {message}")
        self.document_id = document_id


class AmazonUnreachable(AmazonError):
    """No connection could be made to ``url`` (refused, DNS failure, connect timeout) within the
    connector's deadline. Not an ``AmazonUnavailable``: the connector already retried for as long
    as it was allowed to, so callers should fail now rather than retry again."""

    def __init__(self, operation: str, *, url: str, attempts: int, seconds: float, reason: str) -> None:
        super().__init__(
            operation, f"cannot connect to {url} ({reason}); gave up after {attempts} attempt(s) in {seconds:.1f}s"
        )
        self.url = url
        self.attempts = attempts
        self.seconds = seconds
