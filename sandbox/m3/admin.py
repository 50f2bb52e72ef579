"""Admin API under ``/sandbox/...``: business simulation, periods, faults, state (loopback only, no auth)."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import ledger
from .faults import FaultConfig, FaultConfigError, FaultInjector
from .orders import STATUS_ORDER, SimulationError, advance_order, credit_order
from .seed import DEFAULT_RATE_TYPE, DIVI, DIVISION_CURRENCIES
from .store import Store, dumps
from .tx_gl import BatchJobs, rounding_account

_ACTIONS = {"allocate": "33", "deliver": "66", "invoice": "77"}
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
# Item master fields the admin may change, with their MMS200MI lengths (m3-api.md 4.3): what a
# user changes in MMS001, for the catalog and stock flows to pick up.
# Master data; SAPR (sales price, N19 with its '.'), SACD (per how many units) and CUCS (its currency)
# are the item's basic sales price MMS200MI/GetItmPrice returns.
_ITEM_FIELDS = {"ITDS": 30, "FUDS": 60, "STAT": 2, "UNMS": 3, "SAPR": 20, "SACD": 5, "CUCS": 3}


class AdminError(ValueError):
    """A bad admin request; answered 400 with the message."""


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AdminError(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


def _date(body: dict[str, Any]) -> str | None:
    date = body.get("date")
    if date is not None and not (isinstance(date, str) and re.fullmatch(r"\d{8}", date)):
        raise AdminError(f"date must be yyyyMMdd, got {date!r}")
    return date


def admin_routes(store: Store, faults: FaultInjector, gl_jobs: BatchJobs) -> list[Route]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.client is None or request.client.host not in _LOOPBACK:
                return JSONResponse({"error": "admin API is loopback only"}, status_code=403)
            try:
                await run_in_threadpool(gl_jobs.run_due)  # admin answers see the batch job on time too
                return await handler(request)
            except (AdminError, SimulationError, FaultConfigError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return endpoint

    def advance(
        ornos: list[str] | None, to: str, date: str | None, leave: frozenset[str] = frozenset()
    ) -> tuple[list[dict[str, str]], list[str]]:
        """Each order's status after moving it, and the orders that moved (the rest were that far)."""
        with store.transaction() as tx:
            if ornos is None:
                rows = tx.all("SELECT orno FROM orders WHERE kind = 'order' ORDER BY orno")
                ornos = [
                    r["orno"]
                    for r in rows
                    if r["orno"] not in leave and tx.one("SELECT 1 FROM order_lines WHERE orno = ?", (r["orno"],))
                ]
            statuses, moved = [], []
            for orno in ornos:
                head = tx.record("SELECT data FROM orders WHERE orno = ? AND kind = 'order'", (orno,))
                statuses.append({"orno": orno, "status": advance_order(tx, orno, to, date)})
                if head is not None and str(head["ORSL"]) < to:
                    moved.append(orno)
            return statuses, moved

    def credit(orno: str, body: dict[str, Any]) -> dict[str, str]:
        amounts = []
        for name in ("net", "tax"):
            try:
                amount = Decimal(str(body.get(name, "0")))
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite():
                raise AdminError(f"{name} must be an amount, got {body.get(name)!r}")
            amounts.append(amount)
        reference = body.get("reference", "")
        if not isinstance(reference, str):
            raise AdminError("reference must be a string")
        with store.transaction() as tx:
            net, tax = amounts
            return {"orno": orno, "ivno": credit_order(tx, orno, net, tax, _date(body), reference)}

    async def order_action(request: Request) -> Response:
        action = request.path_params["action"]
        body = await _json_body(request)
        if action == "credit":  # a credit note {"net", "tax", "date", "reference"}: a return or refund
            return JSONResponse(await run_in_threadpool(credit, request.path_params["orno"], body))
        if action not in _ACTIONS:
            raise AdminError(f"unknown action {action!r}; use one of {', '.join(_ACTIONS)}, credit")
        statuses, _ = await run_in_threadpool(advance, [request.path_params["orno"]], _ACTIONS[action], _date(body))
        return JSONResponse(statuses[0])

    async def advance_all(request: Request) -> Response:
        body = await _json_body(request)
        to = str(body.get("to", ""))
        if to not in STATUS_ORDER[1:]:
            raise AdminError(f"'to' must be one of 33, 66, 77, got {body.get('to')!r}")
        ornos, leave = body.get("orders"), body.get("except", [])
        for name, value in (("orders", ornos), ("except", leave)):
            if value is not None and not (isinstance(value, list) and all(isinstance(o, str) for o in value)):
                raise AdminError(f"'{name}' must be a list of order numbers (strings)")
        if ornos is not None and leave:
            raise AdminError("'except' goes with every order (no 'orders' list)")
        statuses, moved = await run_in_threadpool(advance, ornos, to, _date(body), frozenset(leave or ()))
        return JSONResponse({"orders": statuses, "moved": moved})

    async def set_faults(request: Request) -> Response:
        if request.method == "DELETE":
            faults.clear()
        elif request.method == "POST":
            faults.configure(FaultConfig.from_json(await _json_body(request)))
        return JSONResponse(faults.state())

    async def periods(request: Request) -> Response:
        body = await _json_body(request)
        divi, period, closed = body.get("divi", DIVI), body.get("period"), body.get("closed", True)
        if not (isinstance(period, str) and re.fullmatch(r"\d{4}(0[1-9]|1[0-2])", period)):
            raise AdminError(f"period must be YYYYMM, got {period!r}")
        if not isinstance(divi, str) or not isinstance(closed, bool):
            raise AdminError("divi must be a string and closed a boolean")

        def apply() -> None:
            with store.transaction() as tx:
                if closed:
                    tx.execute("INSERT OR IGNORE INTO closed_periods (divi, period) VALUES (?, ?)", (divi, period))
                else:
                    tx.execute("DELETE FROM closed_periods WHERE divi = ? AND period = ?", (divi, period))

        await run_in_threadpool(apply)
        return JSONResponse({"divi": divi, "period": period, "closed": closed})

    async def rates(request: Request) -> Response:
        """GET: every exchange rate (CRS058). POST {"divi", "currency", "rate", "date": yyyyMMdd
        (valid from; default 20200101), "rate_type" (default 1)}: add or change one."""
        if request.method == "POST":
            body = await _json_body(request)
            divi, currency, rate = body.get("divi"), body.get("currency"), body.get("rate")
            rate_type, valid_from = body.get("rate_type", DEFAULT_RATE_TYPE), _date(body) or "20200101"
            if divi not in DIVISION_CURRENCIES:
                raise AdminError(f"divi must be one of {', '.join(DIVISION_CURRENCIES)}, got {divi!r}")
            if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
                raise AdminError(f"currency must be an ISO 4217 code, got {currency!r}")
            if not (isinstance(rate, str) and re.fullmatch(r"\d{1,6}(\.\d{1,6})?", rate) and Decimal(rate) > 0):
                raise AdminError(f"rate must be a positive decimal string (N13.6), got {rate!r}")
            if not (isinstance(rate_type, int) and not isinstance(rate_type, bool) and 0 < rate_type < 100):
                raise AdminError(f"rate_type must be 1..99, got {rate_type!r}")

            def apply() -> None:
                with store.transaction() as tx:
                    tx.execute(
                        "INSERT OR REPLACE INTO exchange_rates (divi, cucd, crtp, fdat, arat) VALUES (?, ?, ?, ?, ?)",
                        (divi, currency, rate_type, valid_from, rate),
                    )

            await run_in_threadpool(apply)
        rows = await run_in_threadpool(
            store.snapshot, "SELECT divi, cucd, crtp, fdat, arat FROM exchange_rates ORDER BY divi, cucd, crtp, fdat"
        )
        return JSONResponse(
            {
                "rates": [
                    {
                        "divi": r["divi"],
                        "currency": r["cucd"],
                        "rate_type": r["crtp"],
                        "date": r["fdat"],
                        "rate": r["arat"],
                    }
                    for r in rows
                ]
            }
        )

    async def stock(request: Request) -> Response:
        """POST {"whlo", "itno", "on_hand" (whole units >= 0), "allocated" (default 0)}: set an
        item's balance in a warehouse; {"itno", "currency", "price"}: its base price in that
        currency's price list; {"itno", "status"}: its item status (MMS200 STAT). Any combination."""
        body = await _json_body(request)
        itno = body.get("itno")

        def apply() -> dict[str, Any]:
            with store.transaction() as tx:
                item = tx.one("SELECT data FROM items WHERE itno = ?", (itno,))
                if item is None:
                    raise AdminError(f"no item {itno!r}")
                data = json.loads(item["data"])
                if "on_hand" in body:
                    whlo, on_hand, allocated = body.get("whlo"), body["on_hand"], body.get("allocated", 0)
                    if tx.one("SELECT 1 FROM warehouses WHERE whlo = ?", (whlo,)) is None:
                        raise AdminError(f"no warehouse {whlo!r}")
                    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (on_hand, allocated)):
                        raise AdminError("on_hand and allocated must be whole numbers of 0 or more")
                    tx.execute(
                        "INSERT OR REPLACE INTO balances (whlo, itno, stqt, alqt) VALUES (?, ?, ?, ?)",
                        (whlo, itno, on_hand, allocated),
                    )
                if "price" in body:
                    currency, price = body.get("currency"), body["price"]
                    if not (isinstance(price, str) and re.fullmatch(r"\d{1,12}(\.\d{1,6})?", price)):
                        raise AdminError(f"price must be a decimal string of 0 or more, got {price!r}")
                    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
                        raise AdminError(f"currency must be an ISO 4217 code, got {currency!r}")
                    tx.execute(
                        "INSERT OR REPLACE INTO prices (itno, cucd, sapr) VALUES (?, ?, ?)", (itno, currency, price)
                    )
                if "status" in body:
                    if not (isinstance(body["status"], str) and re.fullmatch(r"\d{2}", body["status"])):
                        raise AdminError(f"status must be two digits, got {body['status']!r}")
                    data["STAT"] = body["status"]
                    tx.execute("UPDATE items SET data = ? WHERE itno = ?", (dumps(data), itno))
                balances = tx.all("SELECT whlo, stqt, alqt FROM balances WHERE itno = ? ORDER BY whlo", (itno,))
                return {
                    "itno": itno,
                    "status": data["STAT"],
                    "balances": [{"whlo": r["whlo"], "on_hand": r["stqt"], "allocated": r["alqt"]} for r in balances],
                }

        return JSONResponse(await run_in_threadpool(apply))

    async def divisions(request: Request) -> Response:
        """GET: each division's local currency and rounding account. POST {"divi", "rounding_account"}
        sets the account M3 books currency rounding to ("" : none set up, the voucher stays unbalanced)."""
        if request.method == "POST":
            body = await _json_body(request)
            divi, account = body.get("divi"), body.get("rounding_account")
            if divi not in DIVISION_CURRENCIES:
                raise AdminError(f"divi must be one of {', '.join(DIVISION_CURRENCIES)}, got {divi!r}")
            if not (isinstance(account, str) and len(account) <= 10):
                raise AdminError(f"rounding_account must be an account (at most 10 characters), got {account!r}")

            def apply() -> None:
                with store.transaction() as tx:
                    tx.execute(
                        "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                        (f"rounding_account:{divi}", account),
                    )

            await run_in_threadpool(apply)

        def listed() -> list[dict[str, str]]:
            with store.transaction() as tx:
                return [
                    {"divi": divi, "local_currency": currency, "rounding_account": rounding_account(tx, divi)}
                    for divi, currency in DIVISION_CURRENCIES.items()
                ]

        return JSONResponse({"divisions": await run_in_threadpool(listed)})

    async def item(request: Request) -> Response:
        """Change an item's master data: body {"ITDS"?, "FUDS"?, "STAT"?, "UNMS"?, "SAPR"?, "SACD"?,
        "CUCS"?} (M3's field lengths)."""
        itno, body = request.path_params["itno"], await _json_body(request)
        unknown = sorted(set(body) - set(_ITEM_FIELDS))
        if unknown or not body:
            raise AdminError(f"give some of {', '.join(_ITEM_FIELDS)}; unknown: {', '.join(unknown) or '-'}")
        for name, value in body.items():
            if not isinstance(value, str) or len(value) > _ITEM_FIELDS[name]:
                raise AdminError(f"{name} must be text of at most {_ITEM_FIELDS[name]} characters")

        def change() -> dict[str, str]:
            with store.transaction() as tx:
                record = tx.record("SELECT data FROM items WHERE itno = ?", (itno,))
                if record is None:
                    raise AdminError(f"no item {itno}")
                record.update(body)
                tx.execute("UPDATE items SET data = ? WHERE itno = ?", (dumps(record), itno))
                return record

        return JSONResponse(await run_in_threadpool(change))

    async def state(request: Request) -> Response:
        def counts() -> dict[str, int]:
            queries = {
                "customers": "SELECT count(*) FROM customers",
                "orders": "SELECT count(*) FROM orders WHERE kind = 'order'",
                "batch_orders": "SELECT count(*) FROM orders WHERE kind = 'batch'",
                "order_lines": "SELECT count(*) FROM order_lines",
                "deliveries": "SELECT count(*) FROM deliveries",
                "invoices": "SELECT count(*) FROM invoices",  # credit notes included
                "credit_notes": "SELECT count(*) FROM invoices WHERE json_extract(data, '$.AMT1') LIKE '-%'",
                "vouchers": "SELECT count(*) FROM vouchers",
                "voucher_lines": "SELECT count(*) FROM voucher_lines",
                "pending_voucher_lines": "SELECT count(*) FROM gl_pending",
                "gl_batches": "SELECT count(*) FROM gl_batches",
                "gl_batches_queued": "SELECT count(*) FROM gl_batches WHERE state = 'queued'",
                "gl_batches_failed": "SELECT count(*) FROM gl_batches WHERE state = 'failed'",
                "items": "SELECT count(*) FROM items",
                "ar_items": "SELECT count(*) FROM ar_items",
                "ar_open_items": "SELECT count(*) FROM ar_items WHERE json_extract(data, '$.RECO') != '9'",
                "payment_batches": "SELECT count(*) FROM ar_batches",
            }
            with store.transaction() as tx:
                return {name: tx.one(sql)[0] for name, sql in queries.items()}  # type: ignore[index]  # count(*) always has a row

        return JSONResponse(await run_in_threadpool(counts))

    async def gl_batch_job(request: Request) -> Response:
        """GET: the job's settings and every batch with its state, errors and vouchers.
        POST {"delay_ms": N, "fail_next": N, "error": "text"}: change them (delay: this instance)."""
        if request.method == "POST":
            body = await _json_body(request)
            unknown = sorted(set(body) - {"delay_ms", "fail_next", "error"})
            if unknown:
                raise AdminError(
                    f"unknown batch job setting(s): {', '.join(unknown)}; known: delay_ms, error, fail_next"
                )
            for name in ("delay_ms", "fail_next"):
                if name in body and not (
                    isinstance(body[name], int) and not isinstance(body[name], bool) and body[name] >= 0
                ):
                    raise AdminError(f"{name} must be a non-negative integer, got {body[name]!r}")
            if "error" in body and not (isinstance(body["error"], str) and body["error"].strip()):
                raise AdminError("error must be a non-empty string")
            if "delay_ms" in body:
                gl_jobs.delay = body["delay_ms"] / 1000
            if "fail_next" in body or "error" in body:
                current = (await run_in_threadpool(gl_jobs.state))["fail_next"]
                await run_in_threadpool(gl_jobs.fail_next, body.get("fail_next", current), body.get("error"))
        return JSONResponse(await run_in_threadpool(gl_jobs.state))

    async def gl_batch_job_run(request: Request) -> Response:
        """Run every queued batch now, whatever its delay."""
        return JSONResponse({"ran": await run_in_threadpool(lambda: gl_jobs.run_due(everything=True))})

    async def customer_ledger(request: Request) -> Response:
        """GET: the set-up, open ledger amounts per customer and GL balances per (account, AIT3).
        POST {"setup": "receivable"|"gl-clearing", "account": "1510"}: the set-up for invoices from now on."""
        if request.method == "POST":
            body = await _json_body(request)
            setup, account = body.get("setup"), body.get("account", ledger.RECEIVABLE_ACCOUNT)
            if setup not in ledger.SETUPS:
                raise AdminError(f"setup must be one of {', '.join(ledger.SETUPS)}, got {setup!r}")
            if not (isinstance(account, str) and 0 < len(account) <= 10):
                raise AdminError(f"account must be an account number (at most 10 characters), got {account!r}")

            def change() -> None:
                with store.transaction() as tx:
                    ledger.set_setup(tx, setup, account)

            await run_in_threadpool(change)
        divi = request.query_params.get("divi", DIVI)

        def read() -> dict[str, Any]:
            with store.transaction() as tx:
                name, account = ledger.setup(tx)
                return {"setup": name, "account": account, **ledger.balances(tx, divi)}

        return JSONResponse(await run_in_threadpool(read))

    return [
        Route("/sandbox/customer-ledger", guarded(customer_ledger), methods=["GET", "POST"]),
        Route("/sandbox/gl/batch-job", guarded(gl_batch_job), methods=["GET", "POST"]),
        Route("/sandbox/gl/batch-job/run", guarded(gl_batch_job_run), methods=["POST"]),
        Route("/sandbox/orders/{orno}/{action}", guarded(order_action), methods=["POST"]),
        Route("/sandbox/advance", guarded(advance_all), methods=["POST"]),
        Route("/sandbox/faults", guarded(set_faults), methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/periods", guarded(periods), methods=["POST"]),
        Route("/sandbox/rates", guarded(rates), methods=["GET", "POST"]),
        Route("/sandbox/divisions", guarded(divisions), methods=["GET", "POST"]),
        Route("/sandbox/state", guarded(state), methods=["GET"]),
        Route("/sandbox/items/{itno}", guarded(item), methods=["POST"]),
        Route("/sandbox/stock", guarded(stock), methods=["POST"]),
    ]
