"""The sandbox M3 as a Starlette app: MI REST v1/v2/bulk, ION API OAuth2, admin API.

Paths (both directly and under the ION gateway form ``/{tenant}/M3``):
``GET /m3api-rest/execute/{PGM}/{TRN};matrix?FLD=v`` (v1), ``GET /m3api-rest/v2/execute/{PGM}/{TRN}?...``
(v2), ``POST /m3api-rest/v2/execute`` (bulk), ``GET /m3api-rest/csrf``; token/revoke at
``/{tenant}/as/token.oauth2`` and ``/{tenant}/as/revoke_token.oauth2``; admin under ``/sandbox``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from . import metadata, transactions, wire
from .admin import admin_routes
from .auth import Authenticator, OAuthError, parse_form
from .errors import MIError, nok
from .faults import FaultInjector
from .ionapi import REVOKE_PATH, TOKEN_PATH
from .seed import seed_if_new
from .store import Store
from .tx_gl import BatchJobs


class ConnectionDropped(Exception):
    """Raised after the response head to make the server abort the connection (fault injection)."""


class DroppedResponse(Response):
    """Starts a response it never finishes: the client sees the connection close mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionDropped("fault injection: connection dropped after commit")


class RequestCount:
    """MI requests this app answered (single GETs, bulk POSTs): what an integration costs the gateway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.single = 0
        self.bulk = 0
        self.transactions = 0  # single requests plus every transaction of the bulk requests

    def request(self, *, bulk: bool) -> None:
        """One request arrived (counted before anything is checked: a refused one costs a request too)."""
        with self._lock:
            if bulk:
                self.bulk += 1
            else:
                self.single += 1
                self.transactions += 1

    def ran(self, transactions: int) -> None:
        """A bulk request's transactions were accepted to run."""
        with self._lock:
            self.transactions += transactions

    @property
    def requests(self) -> int:
        return self.single + self.bulk


def _split_matrix(segment: str) -> tuple[str, dict[str, str]]:
    name, *params = segment.split(";")
    matrix: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        if key:
            matrix[key.lower()] = value
    return name, matrix


def _fields_and_params(request: Request, rest: str) -> tuple[str, str, dict[str, str], dict[str, str]] | None:
    """(program, transaction, input fields, lower-case options) from the path and query."""
    segments = [s for s in rest.split("/") if s]
    if len(segments) != 2:
        return None
    program, matrix_p = _split_matrix(segments[0])
    transaction, matrix_t = _split_matrix(segments[1])
    params = {**matrix_p, **matrix_t}
    fields: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key[:1].isalpha() and key == key.upper():  # input fields are upper case (CUNO, CONO)
            fields[key] = value
        else:
            params.setdefault(key.lower(), value)  # unknown ones (_rid, format, ...) are ignored
    return program.upper(), transaction, fields, params


def _transaction_meta(program: str, transaction: str) -> metadata.TransactionMeta | None:
    try:
        return transactions.resolve(program, transaction)
    except MIError:
        return None


# Per bulk request, as a vendor's gateway documents them: "default batch of 80 transactions",
# "maximum size per message is 32 KB" (docs/m3-contract.md, "Limits")
BULK_MAX_TRANSACTIONS = 80
BULK_MAX_BYTES = 32 * 1024  # bulk request body


def create_app(
    data_dir: Path,
    base_url: str,
    *,
    auth: Literal["oauth", "basic"] = "oauth",
    token_lifetime: int = 7200,
    tenant: str = "SANDBOX_TST",
    seed: int = 0,
    bulk_max_transactions: int = BULK_MAX_TRANSACTIONS,
    bulk_max_bytes: int = BULK_MAX_BYTES,
    max_list_records: int = wire.MAX_LIST_RECORDS,
    gl_batch_delay: float = 0.5,
) -> Starlette:
    """The sandbox M3 on the database in ``data_dir`` (created and seeded when new).

    A bulk request above ``bulk_max_transactions`` or ``bulk_max_bytes`` is refused whole with
    HTTP 413, as the gateway does; no list answer holds more than ``max_list_records``.
    ``gl_batch_delay``: seconds between GLS840MI/UpdBatch and the batch job booking the voucher.
    """
    if auth not in ("oauth", "basic"):
        raise ValueError(f"auth must be 'oauth' or 'basic', got {auth!r}")
    if token_lifetime <= 0:
        raise ValueError(f"token_lifetime must be positive seconds, got {token_lifetime!r}")
    for name, limit in (
        ("bulk_max_transactions", bulk_max_transactions),
        ("bulk_max_bytes", bulk_max_bytes),
        ("max_list_records", max_list_records),
    ):
        if limit <= 0:
            raise ValueError(f"{name} must be positive, got {limit!r}")
    store = Store(Path(data_dir))
    seed_if_new(store, seed)
    authenticator = Authenticator(store, token_lifetime)
    faults = FaultInjector()
    gl_jobs = BatchJobs(store, gl_batch_delay)
    counted = RequestCount()

    def unauthorized() -> Response:
        if auth == "oauth":
            return JSONResponse(
                {"error": "invalid_token", "error_description": "missing, expired or revoked token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return PlainTextResponse(
            "<h2>Unauthorized</h2>", status_code=401, headers={"WWW-Authenticate": 'Basic realm="M3"'}
        )

    async def authorized(request: Request) -> bool:
        header = request.headers.get("authorization")
        check = authenticator.bearer_ok if auth == "oauth" else authenticator.basic_ok
        return await run_in_threadpool(check, header)

    async def with_faults(keys: list[str], writes: bool, run: Any) -> Response:
        """Apply latency / errors / hangs, execute ``run``, then maybe drop the answer."""
        decision = faults.before(keys)
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.hang_s:
            await asyncio.sleep(decision.hang_s)
            return PlainTextResponse("Gateway Timeout", status_code=504)
        if decision.error_status is not None:
            headers = {"Retry-After": "1"} if decision.error_status == 429 else {}
            return PlainTextResponse(
                f"sandbox fault {decision.error_status}", status_code=decision.error_status, headers=headers
            )
        response = await run()
        if faults.take_drop(keys, writes):
            return DroppedResponse()
        return response

    def locked(meta: metadata.TransactionMeta) -> MIError | None:
        """A write meeting a record another user holds (fault injection): M3's XUP0001, nothing written."""
        user = faults.take_lock(meta.key, meta.writes)
        return None if user is None else nok("XUP0001", "The record has been changed by user &1", "", user)

    def run_one(
        program: str, transaction: str, fields: dict[str, str], cono: str = "", divi: str = ""
    ) -> tuple[metadata.TransactionMeta | None, list[dict[str, str]] | MIError]:
        gl_jobs.run_due()  # M3's batch job runs on its own clock: never answer as if it had not
        try:
            meta = transactions.resolve(program, transaction)
            return meta, transactions.execute(store, program, transaction, fields, cono, divi, interrupt=locked)
        except MIError as error:
            return _transaction_meta(program, transaction), error

    async def single(request: Request, *, v1: bool) -> Response:
        counted.request(bulk=False)
        if not await authorized(request):
            return unauthorized()
        parsed = _fields_and_params(request, request.path_params["rest"])
        if parsed is None:
            return JSONResponse({"error": "path must be .../execute/{PROGRAM}/{TRANSACTION}"}, status_code=404)
        program, transaction, fields, params = parsed
        try:
            options = wire.Options.parse(params, v1=v1, max_records=max_list_records)
        except wire.BadParameter as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        cono, divi = params.get("cono", ""), params.get("divi", "")
        meta = _transaction_meta(program, transaction)

        async def run() -> Response:
            found, outcome = await run_in_threadpool(run_one, program, transaction, fields, cono, divi)
            if isinstance(outcome, MIError):
                if v1:
                    return JSONResponse(wire.v1_error(outcome))
                return JSONResponse(wire.v2_envelope([wire.v2_result_error(transaction, outcome)]), status_code=400)
            assert found is not None
            if v1:
                return JSONResponse(wire.v1_ok(found, outcome, options))
            return JSONResponse(wire.v2_envelope([wire.v2_result_ok(found, outcome, options)]))

        return await with_faults([f"{program}/{transaction}"], bool(meta and meta.writes), run)

    async def v1_execute(request: Request) -> Response:
        return await single(request, v1=True)

    async def v2_execute(request: Request) -> Response:
        return await single(request, v1=False)

    async def bulk(request: Request) -> Response:
        counted.request(bulk=True)
        if not await authorized(request):
            return unauthorized()
        raw = await request.body()
        if len(raw) > bulk_max_bytes:
            return JSONResponse(
                wire.v2_terminated(
                    f"Request body of {len(raw)} bytes exceeds the limit of {bulk_max_bytes} bytes; "
                    "split the bulk request",
                    "RequestTooLarge",
                ),
                status_code=413,
            )
        try:
            body = json.loads(raw)
            program, items, options, cono, divi = _parse_bulk(body, max_list_records)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse(wire.v2_terminated(f"bulk body is not JSON: {exc}"), status_code=400)
        except BulkBodyError as exc:
            return JSONResponse(wire.v2_terminated(str(exc)), status_code=400)
        if len(items) > bulk_max_transactions:
            return JSONResponse(
                wire.v2_terminated(
                    f"Bulk request has {len(items)} transactions, the limit is {bulk_max_transactions}; "
                    "split the bulk request",
                    "RequestTooLarge",
                ),
                status_code=413,
            )
        counted.ran(len(items))
        metas = [_transaction_meta(program, trn) for trn, _, _ in items]

        async def run() -> Response:
            def run_all() -> list[dict[str, Any]]:
                results = []
                for transaction, fields, columns in items:
                    found, outcome = run_one(program, transaction, fields, cono, divi)
                    if isinstance(outcome, MIError):
                        results.append(wire.v2_result_error(transaction, outcome))
                    else:
                        assert found is not None
                        item_options = wire.Options(
                            options.maxrecs, columns, True, options.exclude_empty, options.right_trim
                        )
                        results.append(wire.v2_result_ok(found, outcome, item_options))
                return results

            return JSONResponse(wire.v2_envelope(await run_in_threadpool(run_all)))

        keys = [f"{program}/{trn}" for trn, _, _ in items]
        return await with_faults(keys, any(m is not None and m.writes for m in metas), run)

    async def csrf(request: Request) -> Response:
        if not await authorized(request):
            return unauthorized()
        return PlainTextResponse(secrets.token_urlsafe(24))

    async def token(request: Request) -> Response:
        form = parse_form(await request.body())
        try:
            answer = await run_in_threadpool(authenticator.token, form, request.headers.get("authorization"))
        except OAuthError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def revoke(request: Request) -> Response:
        form = parse_form(await request.body())
        try:
            await run_in_threadpool(authenticator.revoke, form, request.headers.get("authorization"))
        except OAuthError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return Response(status_code=200)

    mi_routes = [
        Route("/m3api-rest/csrf", csrf, methods=["GET"]),
        Route("/m3api-rest/execute/{rest:path}", v1_execute, methods=["GET"]),
        Route("/m3api-rest/v2/execute", bulk, methods=["POST"]),
        Route("/m3api-rest/v2/execute/{rest:path}", v2_execute, methods=["GET"]),
    ]
    routes: list[Any] = [*admin_routes(store, faults, gl_jobs), *mi_routes, Mount(f"/{tenant}/M3", routes=mi_routes)]
    if auth == "oauth":
        routes += [
            Route(f"/{tenant}/as/{TOKEN_PATH}", token, methods=["POST"]),
            Route(f"/{tenant}/as/{REVOKE_PATH}", revoke, methods=["POST"]),
        ]
    app = Starlette(routes=routes)
    app.state.store = store
    app.state.base_url = base_url.rstrip("/")
    app.state.tenant = tenant
    app.state.faults = faults
    app.state.gl_jobs = gl_jobs
    app.state.mi_requests = counted
    return app


class BulkBodyError(ValueError):
    """A bulk body the gateway cannot run; the message names the bad key."""


def _parse_bulk(
    body: Any, max_records: int
) -> tuple[str, list[tuple[str, dict[str, str], tuple[str, ...]]], wire.Options, str, str]:
    if not isinstance(body, dict):
        raise BulkBodyError("bulk body must be a JSON object")
    program = body.get("program")
    if not isinstance(program, str) or not program:
        raise BulkBodyError("bulk body needs 'program' (string)")
    raw_items = body.get("transactions")
    if not isinstance(raw_items, list) or not raw_items:
        raise BulkBodyError("bulk body needs 'transactions' (non-empty list)")
    items = []
    for n, item in enumerate(raw_items):
        if not isinstance(item, dict) or not isinstance(item.get("transaction"), str):
            raise BulkBodyError(f"transactions[{n}] needs 'transaction' (string)")
        record = item.get("record") or {}
        if not isinstance(record, dict):
            raise BulkBodyError(f"transactions[{n}].record must be an object")
        fields = {str(k): str(v) for k, v in record.items() if v is not None}
        columns = item.get("selectedColumns") or []
        if not isinstance(columns, list):
            raise BulkBodyError(f"transactions[{n}].selectedColumns must be a list")
        items.append((item["transaction"], fields, tuple(str(c).upper() for c in columns)))
    maxrecs = body.get("maxReturnedRecords", wire.DEFAULT_MAXRECS)
    if not isinstance(maxrecs, int) or maxrecs < 0:
        raise BulkBodyError("maxReturnedRecords must be a non-negative integer")
    options = wire.Options(
        maxrecs=wire.capped(maxrecs, max_records),
        exclude_empty=bool(body.get("excludeEmptyValues", False)),
        right_trim=bool(body.get("rightTrim", True)),
    )
    cono = "" if body.get("cono") is None else str(body["cono"])
    divi = "" if body.get("divi") is None else str(body["divi"])
    return program.upper(), items, options, cono, divi
