"""Admin endpoints under ``/sandbox/`` (never under an API path): faults, reports, state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.catalog import MARKETPLACES

from .context import Sandbox
from .errors import SeedError
from .timeutil import parse_iso

_MARKETPLACE_BY_NAME = {m.name: m.marketplace_id for m in MARKETPLACES.values()}
_SETTLEMENT_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S UTC", "%d.%m.%Y %H:%M:%S UTC")


@dataclass(frozen=True)
class PostedSettlement:
    """A settlement document posted to ``POST /sandbox/reports`` (SettlementDocument's fields we use)."""

    settlement_id: str
    marketplace_id: str
    start: datetime
    end: datetime
    created_time: datetime
    text: str


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> object:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise SeedError(f"body is not JSON: {exc}") from None


async def arm_faults(request: Request, sb: Sandbox) -> Response:
    try:
        sb.faults.arm(await _body(request))
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"faults": sb.faults.describe()})


async def clear_faults(request: Request, sb: Sandbox) -> Response:
    sb.faults.clear()
    return JSONResponse({"faults": None})


async def add_report(request: Request, sb: Sandbox) -> Response:
    """Body: {"text", "charset"?: "utf-8"|"Cp1252"|"", "compression"?: "GZIP"|"", and optionally
    "settlement_id", "marketplace_id", "start", "end", "created_time" (derived from the text when absent)}."""
    try:
        spec = await _body(request)
        if not isinstance(spec, dict) or not isinstance(spec.get("text"), str):
            raise SeedError("body must be a JSON object with the document in 'text'")
        document = settlement_from_text(spec)
        report_id = sb.store.add_settlement_report(document)
        if "charset" in spec or "compression" in spec:  # unspecified half of the variant = none
            charset = "" if spec.get("charset") in (None, "none") else spec["charset"]
            sb.store.set_report_variant(report_id, charset, _compression(spec.get("compression")) or "")
    except SeedError as exc:
        return _bad(str(exc))
    report = sb.store.get_report(report_id)
    return JSONResponse(
        {"reportId": report_id, "reportDocumentId": report.document_id if report else None}, status_code=201
    )


def _compression(value: object) -> str | None:
    if value is None:
        return None
    if value not in ("", "GZIP", "none"):
        raise SeedError(f"compression must be 'GZIP' or '' (none), got {value!r}")
    return "GZIP" if value == "GZIP" else ""


def settlement_from_text(spec: dict) -> PostedSettlement:
    """Fill settlement id, period and marketplace from the V2 summary row unless given."""
    lines = spec["text"].split("\n")
    if len(lines) < 2:
        raise SeedError("text: a V2 settlement file needs a header line and a summary row")
    header = lines[0].rstrip("\r").split("\t")
    summary = dict(zip(header, lines[1].rstrip("\r").split("\t")))
    try:
        settlement_id = str(spec.get("settlement_id") or summary["settlement-id"])
        start = _time(spec.get("start") or summary["settlement-start-date"], "settlement-start-date")
        end = _time(spec.get("end") or summary["settlement-end-date"], "settlement-end-date")
    except KeyError as exc:
        raise SeedError(f"text line 2: summary row lacks {exc.args[0]}") from None
    marketplace_id = spec.get("marketplace_id") or _marketplace_from_rows(header, lines[2:])
    created = _time(spec["created_time"], "created_time") if spec.get("created_time") else end + timedelta(hours=3)
    return PostedSettlement(settlement_id, marketplace_id, start, end, created, spec["text"])


def _time(text: str, field: str) -> datetime:
    for fmt in _SETTLEMENT_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        return parse_iso(text)
    except ValueError:
        raise SeedError(f"{field}: {text!r} is not a settlement date-time") from None


def _marketplace_from_rows(header: list[str], rows: list[str]) -> str:
    if "marketplace-name" in header:
        column = header.index("marketplace-name")
        for row in rows:
            fields = row.split("\t")
            if column < len(fields) and fields[column] in _MARKETPLACE_BY_NAME:
                return _MARKETPLACE_BY_NAME[fields[column]]
    raise SeedError("marketplace_id: not given and no row names a known marketplace-name")


async def expire_tokens(request: Request, sb: Sandbox) -> Response:
    return JSONResponse({"expired": sb.store.expire_access_tokens()})


async def state(request: Request, sb: Sandbox) -> Response:
    return JSONResponse(dict(sb.store.state(), faults=sb.faults.describe(), requests=sb.requests.describe()))


async def set_listing_checks(request: Request, sb: Sandbox) -> Response:
    """Body {"sku", "marketplace_id", "min_price"?, "max_price"? (decimal strings or null),
    "suppressed"? (default false)}: what Amazon checks on that listing after accepting a patch
    (sandbox/spapi/listings.py); the issues appear on later reads."""
    try:
        spec = await _body(request)
    except SeedError as exc:
        return _bad(str(exc))
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("sku"), str)
        or not isinstance(spec.get("marketplace_id"), str)
    ):
        return _bad("body must be a JSON object with 'sku' and 'marketplace_id'")
    bounds: dict[str, Decimal | None] = {}
    for key in ("min_price", "max_price"):
        raw = spec.get(key)
        try:
            bounds[key] = None if raw is None else Decimal(str(raw))
        except ArithmeticError:
            return _bad(f"{key} must be a decimal string or null, got {raw!r}")
    suppressed = spec.get("suppressed", False)
    if not isinstance(suppressed, bool):
        return _bad(f"suppressed must be true or false, got {suppressed!r}")
    found = sb.store.set_listing_checks(
        sb.store.seller_id,
        spec["sku"],
        spec["marketplace_id"],
        min_price=bounds["min_price"],
        max_price=bounds["max_price"],
        suppressed=suppressed,
    )
    if not found:
        return _bad(f"no listing {spec['sku']!r} in marketplace {spec['marketplace_id']}", 404)
    return JSONResponse({"sku": spec["sku"], "marketplace_id": spec["marketplace_id"], "checks": "set"})


async def set_document_url(request: Request, sb: Sandbox) -> Response:
    """Body {"base": "https://host"} or {"base": null}: where getReportDocument points its URLs
    (tests of the client's host and https checks; null = this host again)."""
    try:
        spec = await _body(request)
    except SeedError as exc:
        return _bad(str(exc))
    base = spec.get("base") if isinstance(spec, dict) else None
    if base is not None and not (isinstance(base, str) and base.startswith(("http://", "https://"))):
        return _bad("base must be an http(s) URL or null")
    sb.document_url_base = base.rstrip("/") if base else None
    return JSONResponse({"base": sb.document_url_base})
