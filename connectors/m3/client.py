"""httpx client for Infor M3's MI REST API: v2 single GET, v2 bulk POST, v1 GET (docs/m3-contract.md).

Transport failures (timeouts, dropped connections, 5xx, 429) and M3's "record locked / changed
by another user" answers are retried with exponential backoff and jitter for reads always, for
writes only when the caller says the write is idempotent: MI has no idempotency key, so a blind
retry of an Add could write twice.

Limits: a bulk request is split to stay within the gateway's size (``bulk_max_transactions``,
``bulk_max_bytes``); ``maxrecs=0`` ("all") asks for ``max_records`` and raises
:class:`M3ListTruncated` when the answer is full, so no caller works on a silently cut list.
"""

from __future__ import annotations

import json
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

from connectors.m3.auth import BasicCredentials, IonApiCredentials, IonApiOAuth, origin
from connectors.m3.errors import M3AuthError, M3Error, M3ListTruncated, M3TransactionError, M3Unavailable
from connectors.retry import Backoff, call_with_retries

log = logging.getLogger(__name__)

FieldValue = str | int | Decimal | date
Fields = Mapping[str, FieldValue | None]

_NAME = re.compile(r"^[A-Z0-9]{1,12}$")
_PROGRAM = re.compile(r"^[A-Z0-9]{2,10}$")
_TRANSACTION = re.compile(r"^[A-Za-z0-9]{1,32}$")
_READ_PREFIXES = ("Get", "Lst", "Search", "Sel")
# M3's answers for a record another job holds or changed meanwhile (docs/m3-contract.md): worth a retry.
LOCKED_CODES = frozenset({"XUP0001", "XO_1130"})
BULK_MAX_TRANSACTIONS = 80  # what the gateway takes in one bulk request (a vendor's documented limits)
BULK_MAX_BYTES = 32 * 1024
MAX_RECORDS = 10_000  # the most records M3 returns for one list call (maxrecs=0)


class _RedactQueryFilter(logging.Filter):
    """httpx logs every request URL at INFO; MI inputs travel in the query string and may hold
    buyer names and addresses, so the query is cut from those log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactQueryFilter) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactQueryFilter())


def is_locked(error: BaseException) -> bool:
    """True for M3's "record locked / changed by another user" answers."""
    return isinstance(error, M3TransactionError) and error.code in LOCKED_CODES


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

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None,
        *,
        tenant: str | None = None,
        cono: int | str | None = None,
        divi: str | None = None,
        timeout: float = 30.0,
        backoff: Backoff = Backoff(attempts=4, base=0.5, cap=8.0),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        bulk_max_transactions: int = BULK_MAX_TRANSACTIONS,
        bulk_max_bytes: int = BULK_MAX_BYTES,
        max_records: int = MAX_RECORDS,
    ) -> None:
        for name, limit in (
            ("bulk_max_transactions", bulk_max_transactions),
            ("bulk_max_bytes", bulk_max_bytes),
            ("max_records", max_records),
        ):
            if limit <= 0:
                raise ValueError(f"{name} must be positive, got {limit!r}")
        root = base_url.rstrip("/")
        self.base_url = f"{root}/{tenant}/M3" if tenant else root
        self.cono = None if cono is None else str(cono)
        self.divi = divi
        self.backoff = backoff
        self.bulk_max_transactions = bulk_max_transactions
        self.bulk_max_bytes = bulk_max_bytes
        self.max_records = max_records
        self._auth = auth
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    @property
    def _origin(self) -> str:
        """scheme://host:port of M3 for messages (never a path, user or password)."""
        return origin(str(self._http.base_url))

    def __repr__(self) -> str:
        return f"M3Client({self.base_url!r}, cono={self.cono!r}, divi={self.divi!r})"

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_ionapi(
        cls,
        path: str | Path,
        *,
        cono: int | str | None = None,
        divi: str | None = None,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        transport: httpx.BaseTransport | None = None,
        **kwargs: Any,
    ) -> M3Client:
        credentials = IonApiCredentials.from_file(path)
        auth = IonApiOAuth(credentials, timeout=timeout, transport=transport)
        extra: dict[str, Any] = {"backoff": backoff} if backoff is not None else {}
        return cls(
            credentials.iu,
            auth,
            tenant=credentials.ti,
            cono=cono,
            divi=divi,
            timeout=timeout,
            transport=transport,
            **extra,
            **kwargs,
        )

    @classmethod
    def basic(cls, base_url: str, user: str, password: str, **kwargs: Any) -> M3Client:
        return cls(base_url, BasicCredentials(user, password).auth(), **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Revoke the OAuth token (if any) and close the connections."""
        try:
            if isinstance(self._auth, IonApiOAuth):
                self._auth.close()
        finally:
            self._http.close()

    def __enter__(self) -> M3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- MI calls -------------------------------------------------------------------------------
    def execute(
        self,
        program: str,
        transaction: str,
        fields: Fields | None = None,
        *,
        maxrecs: int | None = None,
        returncols: Sequence[str] | None = None,
        idempotent: bool | None = None,
    ) -> list[dict[str, str]]:
        """Run one transaction with the v2 single GET; returns its records (trimmed strings).

        ``maxrecs=0`` means every record: :class:`M3ListTruncated` if M3's limit cut the list.
        """
        _check_names(program, transaction)
        params = self._context_params() | _encode_fields(program, transaction, fields)
        if maxrecs is not None:
            params["maxrecs"] = str(self._maxrecs(maxrecs))
        if returncols:
            params["returncols"] = ",".join(returncols)
        path = f"/m3api-rest/v2/execute/{program}/{transaction}"
        retry = _retry_allowed(transaction, idempotent)

        def attempt() -> list[dict[str, str]]:
            body = self._call(program, transaction, retry, lambda: self._http.get(path, params=params), accept_400=True)
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

        records = self._retry_locked(f"{program}/{transaction}", retry, attempt)
        self._check_complete(f"{program}/{transaction}", maxrecs, len(records))
        return records

    def execute_bulk(
        self,
        program: str,
        records: Sequence[tuple[str, Fields]],
        *,
        idempotent: bool = False,
        maxrecs: int | None = None,
    ) -> list[BulkResult]:
        """Run several transactions of one program in v2 bulk POSTs, in order.

        A failing transaction does not stop the others; each :class:`BulkResult` carries its
        own records or error. The transactions are split into as many requests as the gateway's
        limits need (in order; a transport failure stops the remaining requests). Retried on
        transport failures and record locks only if every transaction reads or the caller says
        the whole bulk is idempotent; then only the locked transactions are sent again.
        """
        if not records:
            return []
        items = []
        for transaction, fields in records:
            _check_names(program, transaction)
            items.append(
                {
                    "transaction": transaction,
                    "record": _encode_fields(program, transaction, fields),
                    "selectedColumns": [],
                }
            )
        header: dict[str, Any] = {"program": program}
        if self.cono is not None:
            header["cono"] = int(self.cono) if self.cono.isdigit() else self.cono
        if self.divi is not None:
            header["divi"] = self.divi
        if maxrecs is not None:
            header["maxReturnedRecords"] = self._maxrecs(maxrecs)
        retry = idempotent or all(is_read_transaction(t) for t, _ in records)
        results: list[BulkResult] = [BulkResult(transaction=t) for t, _ in records]
        pending = list(range(len(records)))
        attempt = 0
        while True:
            for chunk in self._bulk_chunks(program, header, [items[i] for i in pending]):
                chunk_indexes = pending[: len(chunk)]
                pending = pending[len(chunk) :]
                for index, result in zip(chunk_indexes, self._send_bulk(program, header, chunk, retry)):
                    results[index] = result
            locked = [i for i, r in enumerate(results) if r.error is not None and is_locked(r.error)]
            attempt += 1
            if not (retry and locked) or attempt >= self.backoff.attempts:
                break
            wait = self.backoff.delay(attempt - 1)
            log.warning(
                "M3 %s bulk: %d transaction(s) met a locked record; retry %d in %.2fs",
                program,
                len(locked),
                attempt,
                wait,
            )
            self._sleep(wait)
            pending = locked
        for result in results:
            if result.ok:
                self._check_complete(f"{program}/{result.transaction}", maxrecs, len(result.records))
        return results

    def _bulk_chunks(
        self, program: str, header: Mapping[str, Any], items: list[dict[str, Any]]
    ) -> list[list[dict[str, Any]]]:
        """``items`` in order, cut into requests within the transaction and byte limits."""
        empty = len(_bulk_body(header, []))
        chunks: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = empty
        for item in items:
            item_size = len(_bulk_body({}, [item])) - len(_bulk_body({}, [])) + 1  # + the comma
            if empty + item_size > self.bulk_max_bytes:
                raise M3Error(
                    f"{program}/{item['transaction']}: one transaction of {item_size} bytes does not fit "
                    f"a bulk request of at most {self.bulk_max_bytes} bytes"
                )
            if current and (len(current) >= self.bulk_max_transactions or size + item_size > self.bulk_max_bytes):
                chunks.append(current)
                current, size = [], empty
            current.append(item)
            size += item_size
        if current:
            chunks.append(current)
        return chunks

    def _send_bulk(
        self, program: str, header: Mapping[str, Any], items: list[dict[str, Any]], retry: bool
    ) -> list[BulkResult]:
        body_bytes = _bulk_body(header, items)
        names = sorted({item["transaction"] for item in items})
        body = self._call(
            program,
            f"{'+'.join(names)} (bulk of {len(items)})",
            retry,
            lambda: self._http.post(
                "/m3api-rest/v2/execute", content=body_bytes, headers={"Content-Type": "application/json"}
            ),
            accept_400=True,
        )
        results = body.get("results") or []
        if body.get("wasTerminated") and len(results) < len(items):
            raise _termination_error(
                program, items[len(results)]["transaction"] if results else items[0]["transaction"], body
            )
        if len(results) != len(items):
            raise M3Error(f"{program} bulk: sent {len(items)} transactions, M3 answered {len(results)} results")
        out = []
        for item, result in zip(items, results):
            error = _result_error(program, item["transaction"], result)
            out.append(
                BulkResult(
                    transaction=item["transaction"],
                    records=() if error else tuple(_strings(r) for r in result.get("records") or []),
                    error=error,
                )
            )
        return out

    def execute_v1(
        self,
        program: str,
        transaction: str,
        fields: Fields | None = None,
        *,
        maxrecs: int | None = None,
        returncols: Sequence[str] | None = None,
        idempotent: bool | None = None,
    ) -> list[dict[str, str]]:
        """Run one transaction with the v1 GET (matrix parameters, padded ``MIRecord`` values)."""
        _check_names(program, transaction)
        matrix = ";metadata=false"
        if maxrecs is not None:
            matrix += f";maxrecs={self._maxrecs(int(maxrecs))}"
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
        retry = _retry_allowed(transaction, idempotent)

        def attempt() -> list[dict[str, str]]:
            body = self._call(
                program, transaction, retry, lambda: self._http.get(path, params=params), accept_400=False
            )
            nok = (
                body.get("ErrorMessage")
                if isinstance(body.get("ErrorMessage"), dict)
                else (body if "@type" in body else None)
            )
            if nok is not None:
                raise M3TransactionError(
                    program,
                    transaction,
                    str(nok.get("@type") or "ServerReturnedNOK"),
                    _clean(nok.get("@code")),
                    _clean(nok.get("@field")),
                    str(nok.get("Message") or ""),
                )
            rows = []
            for mi_record in body.get("MIRecord") or []:
                rows.append(
                    {
                        str(nv["Name"]).strip(): str(nv.get("Value") or "").rstrip()
                        for nv in mi_record.get("NameValue") or []
                    }
                )
            return rows

        rows = self._retry_locked(f"{program}/{transaction}", retry, attempt)
        self._check_complete(f"{program}/{transaction}", maxrecs, len(rows))
        return rows

    # -- plumbing -------------------------------------------------------------------------------
    def _maxrecs(self, maxrecs: int) -> int:
        """What to send for ``maxrecs``: 0 ("all") becomes the most M3 returns, so a cut list shows."""
        if maxrecs < 0:
            raise ValueError(f"maxrecs must be 0 (all) or more, got {maxrecs}")
        return self.max_records if maxrecs == 0 else maxrecs

    def _check_complete(self, what: str, maxrecs: int | None, received: int) -> None:
        if maxrecs == 0 and received >= self.max_records:
            raise M3ListTruncated(what, self.max_records)

    def _retry_locked(
        self, what: str, retry: bool, attempt: Callable[[], list[dict[str, str]]]
    ) -> list[dict[str, str]]:
        """``attempt`` again with backoff while M3 answers that the record is locked, if ``retry``."""

        def on_retry(n: int, exc: BaseException, wait: float) -> None:
            log.warning("M3 %s met a locked record (%s); retry %d in %.2fs", what, exc, n, wait)

        return call_with_retries(
            attempt,
            retryable=lambda exc: retry and is_locked(exc),
            backoff=self.backoff,
            sleep=self._sleep,
            on_retry=on_retry,
        )

    def _context_params(self) -> dict[str, str]:
        params = {}
        if self.cono is not None:
            params["cono"] = self.cono
        if self.divi is not None:
            params["divi"] = self.divi
        return params

    def _call(
        self, program: str, transaction: str, retry: bool, send: Callable[[], httpx.Response], *, accept_400: bool
    ) -> dict[str, Any]:
        """Send with retries; the decoded JSON object of the answer. ``transaction`` may be a
        label ("Add+Get (bulk of 3)") used only in messages."""
        what = f"{program}/{transaction}"

        def attempt() -> dict[str, Any]:
            try:
                response = send()
            except httpx.TimeoutException:
                raise M3Unavailable(what, f"{self._origin} timed out") from None
            except httpx.TransportError as exc:
                # e.g. RemoteProtocolError when M3 dropped the connection after committing
                raise M3Unavailable(what, f"connection to {self._origin} failed ({type(exc).__name__})") from None
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


def _bulk_body(header: Mapping[str, Any], items: list[dict[str, Any]]) -> bytes:
    """The bulk request body exactly as sent (its length is what the gateway limits)."""
    return json.dumps(
        {**header, "transactions": items}, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _decode(program: str, transaction: str, response: httpx.Response, accept_400: bool) -> dict[str, Any]:
    what = f"{program}/{transaction}"
    status = response.status_code
    if status in (401, 403):
        raise M3AuthError(f"M3 refused the credentials for {what}: HTTP {status}")
    if status == 413:
        try:
            reason = str(response.json().get("terminationReason") or "")
        except (ValueError, AttributeError):
            reason = ""
        raise M3Error(f"{what}: M3 refused the request as too large (HTTP 413){': ' + reason if reason else ''}")
    if status == 429 or status >= 500:
        raise M3Unavailable(
            what, f"HTTP {status}", status=status, retry_after=_retry_after(response.headers.get("Retry-After"))
        )
    if status == 200 or (status == 400 and accept_400):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        if status == 400:
            # The ION gateway answers an unknown program/transaction with a bare 400.
            raise M3TransactionError(
                program, transaction, "TransactionNotFound", None, None, "HTTP 400 without an MI answer"
            )
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
    return M3TransactionError(
        program,
        str(result.get("transaction") or transaction),
        str(result.get("errorType") or "ServerReturnedNOK"),
        _clean(result.get("errorCode")),
        _clean(result.get("errorField")),
        str(result.get("errorMessage") or ""),
    )


def _termination_error(program: str, transaction: str, body: Mapping[str, Any]) -> M3TransactionError:
    return M3TransactionError(
        program,
        transaction,
        str(body.get("terminationErrorType") or "ServerReturnedNOK"),
        None,
        None,
        str(body.get("terminationReason") or "request terminated by M3"),
    )


def _strings(record: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v).strip() for k, v in record.items()}
