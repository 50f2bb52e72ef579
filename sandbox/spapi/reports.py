"""Reports API 2021-06-30 (not payload-wrapped) and the presigned document download.

Settlement reports are listed whatever ``marketplaceIds`` says (Amazon ignores that filter for
them: they belong to the seller's account, not to a marketplace request); a regional host lists
the reports of its region's marketplaces only.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from datetime import timedelta
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from .context import (
    Reply,
    Sandbox,
    date_param,
    decode_token,
    encode_token,
    int_param,
    json_body,
    marketplace_ids,
    values,
)
from .errors import invalid_input, not_found
from .store import ReportRecord, document_codec
from .timeutil import amazon_time, parse_iso, sortable

PROCESSING_STATUSES = frozenset({"CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"})
# Amazon refuses these in createReport with its internal report-type number (sp-api.md §0.1).
SETTLEMENT_TYPE_NUMBERS = {
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2": 1118,
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE": 1117,
    "GET_V2_SETTLEMENT_REPORT_DATA_XML": 1116,
}
RETENTION = timedelta(days=90)
URL_LIFETIME = timedelta(minutes=5)
DOWNLOAD_PREFIX = "/s3/tortuga"
_GET_REPORTS_PARAMS = (
    "reportTypes",
    "processingStatuses",
    "marketplaceIds",
    "pageSize",
    "createdSince",
    "createdUntil",
)


def report_json(report: ReportRecord) -> dict:
    body: dict = {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "marketplaceIds": [report.marketplace_id],
    }
    if report.data_start and report.data_end:
        body["dataStartTime"], body["dataEndTime"] = amazon_time(report.data_start), amazon_time(report.data_end)
    body["createdTime"] = amazon_time(report.created_time)
    body["processingStatus"] = report.processing_status
    if report.processing_status in ("DONE", "CANCELLED", "FATAL"):
        body["processingStartTime"] = amazon_time(report.created_time)
        body["processingEndTime"] = amazon_time(report.created_time)
    if report.document_id:
        body["reportDocumentId"] = report.document_id
    return body


async def get_reports(request: Request, sb: Sandbox) -> Reply:
    token = request.query_params.get("nextToken")
    if token:
        if any(name != "nextToken" for name in request.query_params.keys()):
            raise invalid_input("nextToken must be the only parameter when it is specified.")
        state = decode_token(token, "reports")
        filters, offset = state["q"], state["o"]
    else:
        filters, offset = _report_filters(request, sb), 0
    page_size = filters["size"]
    page = sb.store.list_reports(
        filters["types"],
        filters["statuses"],
        filters["markets"],
        parse_iso(filters["since"]),
        parse_iso(filters["until"]),
        offset,
        page_size + 1,
        served_marketplaces=sb.served_marketplaces(),
    )
    body: dict = {"reports": [report_json(r) for r in page[:page_size]]}
    if len(page) > page_size:
        body["nextToken"] = encode_token({"kind": "reports", "q": filters, "o": offset + page_size})
    return Reply(200, body)


def _report_filters(request: Request, sb: Sandbox) -> dict:
    types = values(request, "reportTypes")
    if not types:
        raise invalid_input("Either reportTypes or nextToken must be specified.")
    if len(types) > 10:
        raise invalid_input("reportTypes accepts between 1 and 10 values.")
    statuses = values(request, "processingStatuses")
    bad = [s for s in statuses if s not in PROCESSING_STATUSES]
    if bad:
        raise invalid_input(
            f"Invalid processingStatuses: {', '.join(bad)}.", f"Allowed: {', '.join(sorted(PROCESSING_STATUSES))}"
        )
    markets = marketplace_ids(request)
    if len(markets) > 10:
        raise invalid_input("marketplaceIds accepts between 1 and 10 values.")
    sb.check_served(markets)
    now = sb.now()
    since = date_param(request, "createdSince") or now - RETENTION
    until = date_param(request, "createdUntil") or now
    if since > until:
        raise invalid_input("createdSince must be earlier than createdUntil.")
    since = max(since, now - RETENTION)  # reports are retained for 90 days at most
    return {
        "types": types,
        "statuses": statuses,
        "markets": markets,
        "since": sortable(since),
        "until": sortable(until),
        "size": int_param(request, "pageSize", 10, 1, 100),
    }


async def get_report(request: Request, sb: Sandbox) -> Reply:
    report = sb.store.get_report(request.path_params["report_id"])
    if report is None or not sb.serves(report.marketplace_id):
        raise not_found(f"Report {request.path_params['report_id']} was not found.")
    return Reply(200, report_json(report))


async def create_report(request: Request, sb: Sandbox) -> Reply:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("reportType"), str) or not body["reportType"]:
        raise invalid_input("Missing required field reportType.")
    markets = body.get("marketplaceIds")
    if not isinstance(markets, list) or not markets or not all(isinstance(m, str) for m in markets):
        raise invalid_input("Missing required field marketplaceIds.")
    sb.check_served(markets)
    number = SETTLEMENT_TYPE_NUMBERS.get(body["reportType"])
    if number is not None:  # settlement reports are scheduled by Amazon, never requested
        raise invalid_input(f"Request for report type {number} is not allowed at this time")
    # Other report types have no data in the sandbox: Amazon then ends them CANCELLED.
    report_id = sb.store.add_report(body["reportType"], markets[0], sb.now(), "CANCELLED")
    return Reply(202, {"reportId": report_id})


async def get_report_document(request: Request, sb: Sandbox) -> Reply:
    document_id = request.path_params["document_id"]
    document = sb.store.get_document(document_id)
    report = sb.store.get_report(document.report_id) if document is not None else None
    if document is None or report is None or not sb.serves(report.marketplace_id):
        raise not_found(f"Report document {document_id} was not found.")
    body = {"reportDocumentId": document_id, "url": _presigned_url(sb, document_id)}
    if document.compression:
        body["compressionAlgorithm"] = document.compression
    return Reply(200, body)


def _signature(sb: Sandbox, document_id: str, expires: int) -> str:
    return hmac.new(sb.store.url_signing_key, f"{document_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def _presigned_url(sb: Sandbox, document_id: str) -> str:
    # Built from the configured base URL: the client's Host header is wrong (sp-api.md §7.1).
    expires = int((sb.now() + URL_LIFETIME).timestamp())
    return (
        f"{sb.document_url_base or sb.base_url}{DOWNLOAD_PREFIX}/{quote(document_id, safe='')}"
        f"?X-Amz-Expires={int(URL_LIFETIME.total_seconds())}&Expires={expires}"
        f"&X-Amz-Signature={_signature(sb, document_id, expires)}"
    )


async def download_document(request: Request, sb: Sandbox) -> Response:
    """The S3 side: bytes in the report's charset, gzip if announced, never Content-Encoding."""
    document_id = request.path_params["document_id"]
    try:
        expires = int(request.query_params.get("Expires", ""))
    except ValueError:
        expires = 0
    signature = request.query_params.get("X-Amz-Signature", "")
    if not hmac.compare_digest(signature, _signature(sb, document_id, expires)):
        return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
    if sb.now().timestamp() > expires:
        return _s3_error(403, "AccessDenied", "Request has expired")
    document = sb.store.get_document(document_id)
    if document is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    data = document.text.encode(document_codec(document.charset))
    if document.compression == "GZIP":
        data = gzip.compress(data, mtime=0)
    content_type = f"text/plain; charset={document.charset}" if document.charset else "text/plain"
    return Response(data, headers={"content-type": content_type})


def _s3_error(status: int, code: str, message: str) -> Response:
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(xml.encode(), status_code=status, headers={"content-type": "application/xml"})
