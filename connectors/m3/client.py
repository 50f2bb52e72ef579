"""httpx client for Infor M3's MI REST API: v2 single GET, v2 bulk POST, v1 GET (m3-api.md §1-2).

Transport failures (timeouts, dropped connections, 5xx, 429) are retried with exponential
backoff and jitter for reads always, for writes only when the caller says the write is
idempotent: MI has no idempotency key, so a blind retry of an Add could write twice.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from connectors.m3.auth import BasicCredentials, IonApiCredentials, IonApiOAuth
from connectors.m3.errors import M3AuthError, M3Error, M3TransactionError, M3Unavailable
from connectors.retry import Backoff, call_with_retries

log = logging.getLogger(__name__)

FieldValue = str | int | Decimal | date
Fields = Mapping[str, FieldValue | None]

_NAME = re.compile(r"^[A-Z0-9]{1,12}$")
_PROGRAM = re.compile(r"^[A-Z0-9]{2,10}$")
_TRANSACTION = re.compile(r"^[A-Za-z0-9]{1,32}$")
_READ_PREFIXES = ("Get", "Lst", "Search", "Sel")


class _RedactQueryFilter(logging.Filter):
    """httpx logs every request URL at INFO; MI inputs travel in the query string and may hold
    buyer names and addresses, so the query is cut from those log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactQueryFilter) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactQueryFilter())


def is_read_transaction(transaction: str) -> bool:
    """Get/Lst/Search/Sel transactions only read, so they may always be retried."""
    return transaction.startswith(_READ_PREFIXES)


def format_value(value: FieldValue) -> str:
    """An MI input value as M3 expects it: dates yyyyMMdd, decimals with '.', ints plain."""
    if isinstance(value, bool):
        raise TypeError("MI fields take no booleans; pass the M3 code (e.g. 1/0) instead")
    if isinstance(value, datetime):
        raise TypeError("MI date fields take a datetime.date, not a datetime")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"MI numeric field got {value}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"MI field value of type {type(value).__name__} is not supported")


@dataclass(frozen=True)
class BulkResult:
    """One transaction of a bulk request: its records, or the error M3 answered with."""

    transaction: str
    records: tuple[dict[str, str], ...] = ()
    error: M3TransactionError | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


class M3Client:
    """One M3 environment. ``base_url`` is the host (``https://m3:443``) or the ION API route;
    with ``tenant`` the gateway form ``{base_url}/{tenant}/M3`` is used."""

    def __init__(self, base_url: str, auth: httpx.Auth | None, *, tenant: str | None = None,
                 cono: int | str | None = None, divi: str | None = None, timeout: float = 30.0,
                 backoff: Backoff = Backoff(attempts=4, base=0.5, cap=8.0),
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        root = base_url.rstrip("/")
        self.base_url = f"{root}/{tenant}/M3" if tenant else root
        self.cono = None if cono is None else str(cono)
        self.divi = divi
        self.backoff = backoff
        self._auth = auth
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"M3Client({self.base_url!r}, cono={self.cono!r}, divi={self.divi!r})"

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_ionapi(cls, path: str | Path, *, cono: int | str | None = None, divi: str | None = None,
                    timeout: float = 30.0, backoff: Backoff | None = None,
                    transport: httpx.BaseTransport | None = None, **kwargs: Any) -> "M3Client":
        credentials = IonApiCredentials.from_file(path)
        auth = IonApiOAuth(credentials, timeout=timeout, transport=transport)
        extra = {"backoff": backoff} if backoff is not None else {}
        return cls(credentials.iu, auth, tenant=credentials.ti, cono=cono, divi=divi, timeout=timeout,
                   transport=transport, **extra, **kwargs)

    @classmethod
    def basic(cls, base_url: str, user: str, password: str, **kwargs: Any) -> "M3Client":
        return cls(base_url, BasicCredentials(user, password).auth(), **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Revoke the OAuth token (if any) and close the connections."""
        try:
            if isinstance(self._auth, IonApiOAuth):
                self._auth.close()
        finally:
            self._http.close()

    def __enter__(self) -> "M3Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- MI calls -------------------------------------------------------------------------------
    def execute(self, program: str, transaction: str, fields: Fields | None = None, *,
                maxrecs: int | None = None, returncols: Sequence[str] | None = None,
                idempotent: bool | None = None) -> list[dict[str, str]]:
        """Run one transaction with the v2 single GET; returns its records (trimmed strings)."""
        _check_names(program, transaction)
        params = self._context_params() | _encode_fields(program, transaction, fields)
        if maxrecs is not None:
            params["maxrecs"] = str(maxrecs)
        if returncols:
            params["returncols"] = ",".join(returncols)
        path = f"/m3api-rest/v2/execute/{program}/{transaction}"
        body = self._call(program, transaction, _retry_allowed(transaction, idempotent),
                          lambda: self._http.get(path, params=params), accept_400=True)
        results = body.get("results") or []
        if body.get("wasTerminated") and not results:
            raise _termination_error(program, transaction, body)
        if not results:
            raise M3Error(f"{program}/{transaction}: M3 answered without results")
        first = results[0]
        error = _result_error(program, transaction, first)
        if error is not None:
            raise error
        return [_strings(rec) for rec in first.get("records") or []]

    def execute_bulk(self, program: str, records: Sequence[tuple[str, Fields]], *,
                     idempotent: bool = False, maxrecs: int | None = None) -> list[BulkResult]:
        """Run several transactions of one program in one v2 bulk POST, in order.

        A failing transaction does not stop the others; each :class:`BulkResult` carries its
        own records or error. Retried on transport failures only if every transaction reads or
        the caller says the whole bulk is idempotent.
        """
        if not records:
            return []
        transactions = []
        for transaction, fields in records:
            _check_names(program, transaction)
            transactions.append({"transaction": transaction,
                                 "record": _encode_fields(program, transaction, fields),
                                 "selectedColumns": []})
        payload: dict[str, Any] = {"program": program, "transactions": transactions}
        if self.cono is not None:
            payload["cono"] = int(self.cono) if self.cono.isdigit() else self.cono
        if self.divi is not None:
            payload["divi"] = self.divi
        if maxrecs is not None:
            payload["maxReturnedRecords"] = maxrecs
        retry = idempotent or all(is_read_transaction(t) for t, _ in records)
        names = sorted({t for t, _ in records})
        body = self._call(program, f"{'+'.join(names)} (bulk of {len(records)})", retry,
                          lambda: self._http.post("/m3api-rest/v2/execute", json=payload), accept_400=True)
        results = body.get("results") or []
        if body.get("wasTerminated") and len(results) < len(records):
            raise _termination_error(program, records[len(results)][0] if results else records[0][0], body)
        if len(results) != len(records):
            raise M3Error(f"{program} bulk: sent {len(records)} transactions, M3 answered {len(results)} results")
        out = []
        for (transaction, _), result in zip(records, results):
            error = _result_error(program, transaction, result)
            out.append(BulkResult(transaction=transaction,
                                  records=() if error else tuple(_strings(r) for r in result.get("records") or []),
                                  error=error))
        return out

    def execute_v1(self, program: str, transaction: str, fields: Fields | None = None, *,
                   maxrecs: int | None = None, returncols: Sequence[str] | None = None,
                   idempotent: bool | None = None) -> list[dict[str, str]]:
        """Run one transaction with the v1 GET (matrix parameters, padded ``MIRecord`` values)."""
        _check_names(program, transaction)
        matrix = ";metadata=false"
        if maxrecs is not None:
            matrix += f";maxrecs={int(maxrecs)}"
        if returncols:
            for col in returncols:
                if not _NAME.match(col):
                    raise ValueError(f"{program}/{transaction}: returncols entry {col!r} is not an M3 field name")
            matrix += ";returncols=" + ",".join(returncols)
        if self.cono is not None:
            matrix += f";cono={quote(self.cono)}"
        if self.divi is not None:
            matrix += f";divi={quote(self.divi)}"
        path = f"/m3api-rest/execute/{program}/{transaction}{matrix}"
        params = _encode_fields(program, transaction, fields)
        body = self._call(program, transaction, _retry_allowed(transaction, idempotent),
                          lambda: self._http.get(path, params=params), accept_400=False)
        nok = body.get("ErrorMessage") if isinstance(body.get("ErrorMessage"), dict) else (
            body if "@type" in body else None)
        if nok is not None:
            raise M3TransactionError(program, transaction, str(nok.get("@type") or "ServerReturnedNOK"),
                                     _clean(nok.get("@code")), _clean(nok.get("@field")),
                                     str(nok.get("Message") or ""))
        rows = []
        for mi_record in body.get("MIRecord") or []:
            rows.append({str(nv["Name"]).strip(): str(nv.get("Value") or "").rstrip()
                         for nv in mi_record.get("NameValue") or []})
        return rows

    # -- plumbing -------------------------------------------------------------------------------
    def _context_params(self) -> dict[str, str]:
        params = {}
        if self.cono is not None:
            params["cono"] = self.cono
        if self.divi is not None:
            params["divi"] = self.divi
        return params

    def _call(self, program: str, transaction: str, retry: bool, send: Callable[[], httpx.Response], *,
              accept_400: bool) -> dict[str, Any]:
        """Send with retries; the decoded JSON object of the answer. ``transaction`` may be a
        label ("Add+Get (bulk of 3)") used only in messages."""
        what = f"{program}/{transaction}"

        def attempt() -> dict[str, Any]:
            try:
                response = send()
            except httpx.TimeoutException:
                raise M3Unavailable(what, "timed out") from None
            except httpx.TransportError as exc:
                # e.g. RemoteProtocolError when M3 dropped the connection after committing
                raise M3Unavailable(what, f"connection failed ({type(exc).__name__})") from None
            return _decode(program, transaction, response, accept_400)

        def on_retry(n: int, exc: BaseException, wait: float) -> None:
            log.warning("M3 %s failed (%s); retry %d in %.2fs", what, exc, n, wait)

        return call_with_retries(
            attempt,
            retryable=lambda exc: retry and isinstance(exc, M3Unavailable),
            backoff=self.backoff,
            sleep=self._sleep,
            min_wait=lambda exc: min(getattr(exc, "retry_after", None) or 0.0, self.backoff.cap),
            on_retry=on_retry,
        )


def _decode(program: str, transaction: str, response: httpx.Response, accept_400: bool) -> dict[str, Any]:
    what = f"{program}/{transaction}"
    status = response.status_code
    if status in (401, 403):
        raise M3AuthError(f"M3 refused the credentials for {what}: HTTP {status}")
    if status == 429 or status >= 500:
        raise M3Unavailable(what, f"HTTP {status}", status=status,
                            retry_after=_retry_after(response.headers.get("Retry-After")))
    if status == 200 or (status == 400 and accept_400):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        if status == 400:
            # The ION gateway answers an unknown program/transaction with a bare 400.
            raise M3TransactionError(program, transaction, "TransactionNotFound", None, None,
                                     "HTTP 400 without an MI answer")
        raise M3Error(f"{what}: M3 answered HTTP 200 without a JSON object")
    raise M3Error(f"{what}: unexpected HTTP {status} from M3")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _retry_allowed(transaction: str, idempotent: bool | None) -> bool:
    return is_read_transaction(transaction) if idempotent is None else idempotent


def _check_names(program: str, transaction: str) -> None:
    # Names go into the URL path: refuse anything that is not a plain MI name.
    if not _PROGRAM.match(program):
        raise ValueError(f"{program!r} is not an MI program name (e.g. OIS100MI)")
    if not _TRANSACTION.match(transaction):
        raise ValueError(f"{program}: {transaction!r} is not an MI transaction name")


def _encode_fields(program: str, transaction: str, fields: Fields | None) -> dict[str, str]:
    encoded = {}
    for name, value in (fields or {}).items():
        if not _NAME.match(name):
            raise ValueError(f"{program}/{transaction}: {name!r} is not an M3 field name (upper-case, e.g. CUNO)")
        if value is None:
            continue  # MI convention: empty inputs are omitted
        try:
            encoded[name] = format_value(value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{program}/{transaction} field {name}: {exc}") from None
    return encoded


def _clean(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _result_error(program: str, transaction: str, result: Mapping[str, Any]) -> M3TransactionError | None:
    if not (result.get("errorType") or result.get("errorCode") or result.get("errorMessage")):
        return None
    return M3TransactionError(program, str(result.get("transaction") or transaction),
                              str(result.get("errorType") or "ServerReturnedNOK"),
                              _clean(result.get("errorCode")), _clean(result.get("errorField")),
                              str(result.get("errorMessage") or ""))


def _termination_error(program: str, transaction: str, body: Mapping[str, Any]) -> M3TransactionError:
    return M3TransactionError(program, transaction, str(body.get("terminationErrorType") or "ServerReturnedNOK"),
                              None, None, str(body.get("terminationReason") or "request terminated by M3"))


def _strings(record: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v).strip() for k, v in record.items()}
