"""SQLite state of the SP-API sandbox, kept under a data folder.

Two runs on the same folder see the same Amazon: the seller's orders (JSON with indexed
filter columns), settlement reports with their documents, listings, the LWA app and the
access tokens issued to it. Seeding is idempotent: records already present keep their state
(an order shipped through the sandbox stays shipped when the world is seeded again).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from reconciliation.marketplaces import MARKETPLACES

from .errors import LwaError, SeedError
from .timeutil import as_utc, parse_iso, sortable

DB_NAME = "spapi.sqlite3"
# SP-API regions (hosts sellingpartnerapi-na/eu/fe.amazon.com); a seller authorises an app once
# per region and gets one refresh token per region (selling-partner-api-models#4825).
# Region codes in the one marketplace table's order (na, eu, fe), not repeated here.
REGIONS: tuple[str, ...] = tuple(dict.fromkeys(m.region.lower() for m in MARKETPLACES))
SETTLEMENT_V2 = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
ACCESS_TOKEN_SECONDS = 3600

# Download variants seen from Amazon's S3 (as reported against python-amazon-sp-api): charset in Content-Type and
# compression. Seeded reports rotate through all of them so every decoding path is exercised.
CHARSETS = ("utf-8", "Cp1252", "")
COMPRESSIONS = ("", "GZIP")
VARIANTS: tuple[tuple[str, str], ...] = tuple((c, z) for z in COMPRESSIONS for c in CHARSETS)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lwa_apps (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, refresh_token TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS refresh_tokens (region TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY, client_id TEXT NOT NULL, expires_at REAL NOT NULL, region TEXT NOT NULL DEFAULT 'na');
CREATE TABLE IF NOT EXISTS restricted_tokens (
    token TEXT PRIMARY KEY, client_id TEXT NOT NULL, expires_at REAL NOT NULL, resources_json TEXT NOT NULL,
    region TEXT NOT NULL DEFAULT 'na');
CREATE TABLE IF NOT EXISTS orders (
    amazon_order_id TEXT PRIMARY KEY, marketplace_id TEXT NOT NULL, purchase_date TEXT NOT NULL,
    last_update_date TEXT NOT NULL, order_status TEXT NOT NULL, fulfillment_channel TEXT,
    order_json TEXT NOT NULL, items_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_created ON orders (marketplace_id, purchase_date);
CREATE INDEX IF NOT EXISTS orders_updated ON orders (marketplace_id, last_update_date);
CREATE TABLE IF NOT EXISTS shipments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, amazon_order_id TEXT NOT NULL,
    package_json TEXT NOT NULL, confirmed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY, settlement_id TEXT UNIQUE, report_type TEXT NOT NULL,
    marketplace_id TEXT NOT NULL, created_time TEXT NOT NULL, data_start TEXT, data_end TEXT,
    processing_status TEXT NOT NULL, document_id TEXT UNIQUE, text TEXT,
    charset TEXT NOT NULL DEFAULT '', compression TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS reports_created ON reports (report_type, created_time);
CREATE TABLE IF NOT EXISTS listings (
    seller_id TEXT NOT NULL, sku TEXT NOT NULL, marketplace_id TEXT NOT NULL,
    product_type TEXT NOT NULL, asin TEXT, title TEXT, quantity INTEGER NOT NULL DEFAULT 0,
    price TEXT, currency TEXT, attributes_json TEXT NOT NULL, created TEXT NOT NULL,
    updated TEXT NOT NULL, PRIMARY KEY (seller_id, sku, marketplace_id));
CREATE INDEX IF NOT EXISTS listings_updated ON listings (seller_id, marketplace_id, updated);
-- What Amazon checks after accepting a patch (set through POST /sandbox/listings), and the
-- issues that processing found, shown on later reads (sandbox/spapi/listings.py).
CREATE TABLE IF NOT EXISTS listing_checks (
    seller_id TEXT NOT NULL, sku TEXT NOT NULL, marketplace_id TEXT NOT NULL,
    min_price TEXT, max_price TEXT, suppressed INTEGER NOT NULL DEFAULT 0,
    issues_json TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (seller_id, sku, marketplace_id));
"""


class SettlementDocumentLike(Protocol):
    """The contract's ``SettlementDocument`` (sandbox.generator), read by attribute only
    (properties: frozen dataclasses satisfy it)."""

    @property
    def settlement_id(self) -> str: ...
    @property
    def marketplace_id(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def created_time(self) -> datetime: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TokenOwner:
    """Whom an access token (or RDT) was issued to, and for which region's refresh token."""

    client_id: str
    region: str


@dataclass(frozen=True)
class ReportRecord:
    report_id: str
    settlement_id: str | None
    report_type: str
    marketplace_id: str
    created_time: datetime
    data_start: datetime | None
    data_end: datetime | None
    processing_status: str
    document_id: str | None
    charset: str
    compression: str


@dataclass(frozen=True)
class ReportDocumentRecord:
    document_id: str
    report_id: str
    text: str
    charset: str
    compression: str


_LISTING_SELECT = (
    "SELECT l.*, c.min_price, c.max_price, COALESCE(c.suppressed, 0) AS suppressed, c.issues_json"
    " FROM listings l LEFT JOIN listing_checks c"
    " ON c.seller_id = l.seller_id AND c.sku = l.sku AND c.marketplace_id = l.marketplace_id"
)


@dataclass(frozen=True)
class ListingSearch:
    """searchListingsItems' filters the store applies: the SKUs (None: all), creation and
    last-update windows, the order."""

    skus: list[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    sort_by: str = "lastUpdatedDate"
    ascending: bool = False


@dataclass(frozen=True)
class ListingRecord:
    seller_id: str
    sku: str
    marketplace_id: str
    product_type: str
    asin: str | None
    title: str | None
    quantity: int
    price: Decimal | None
    currency: str | None
    attributes: dict
    created: datetime
    updated: datetime
    # Amazon's checks after acceptance (listing_checks) and the issues they found.
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    suppressed: bool = False
    issues: tuple[dict, ...] = ()


@dataclass(frozen=True)
class OrderQuery:
    """getOrders filters, already validated. Dates are sortable UTC text."""

    marketplace_ids: tuple[str, ...]
    date_column: str  # "purchase_date" or "last_update_date"
    after: str
    before: str
    statuses: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()


def _report_id_for(settlement_id: str) -> str:
    # Real report ids are 11+ digit numbers; derive one stably from the settlement id.
    digest = int(hashlib.sha256(f"report:{settlement_id}".encode()).hexdigest()[:12], 16)
    return str(50_000_000_000 + digest % 49_999_999_999)


def _document_id_for(report_id: str) -> str:
    return f"amzn1.spdoc.1.4.na.{uuid.uuid5(uuid.NAMESPACE_URL, 'spapi-doc:' + report_id)}.T1SANDBOX"


class SpApiStore:
    """The sandbox's persistent state. Thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.data_dir / DB_NAME, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._ensure_app()

    def __repr__(self) -> str:  # never show secrets
        return f"SpApiStore({str(self.data_dir)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- meta / credentials -------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _migrate(self) -> None:
        """Folders created before regions existed: token tables gain their region column."""
        for table in ("access_tokens", "restricted_tokens"):
            columns = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if "region" not in columns:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN region TEXT NOT NULL DEFAULT 'na'")

    def _ensure_app(self) -> None:
        app = self._db.execute("SELECT refresh_token FROM lwa_apps").fetchone()
        if app is None:
            self._db.execute(
                "INSERT INTO lwa_apps (client_id, client_secret, refresh_token) VALUES (?, ?, ?)",
                (
                    f"amzn1.application-oa2-client.{secrets.token_hex(16)}",
                    f"amzn1.oa2-cs.v1.{secrets.token_hex(32)}",
                    f"Atzr|{secrets.token_urlsafe(48)}",
                ),
            )
            self._set_meta("url_signing_key", secrets.token_hex(32))
            app = self._db.execute("SELECT refresh_token FROM lwa_apps").fetchone()
        # The app's original refresh token is North America's (older folders keep working).
        self._db.execute(
            "INSERT OR IGNORE INTO refresh_tokens (region, token) VALUES ('na', ?)", (app["refresh_token"],)
        )
        for region in REGIONS:
            self._db.execute(
                "INSERT OR IGNORE INTO refresh_tokens (region, token) VALUES (?, ?)",
                (region, f"Atzr|{secrets.token_urlsafe(48)}"),
            )
        if self._meta("seller_id") is None:
            self._set_meta("seller_id", "A2SANDBOXSELLER")

    def credentials(self, region: str = "na") -> dict[str, str]:
        """The ``credentials=`` dict python-amazon-sp-api takes for this sandbox's ``region``."""
        if region not in REGIONS:
            raise ValueError(f"unknown SP-API region {region!r}; one of {', '.join(REGIONS)}")
        with self._lock:
            row = self._db.execute("SELECT * FROM lwa_apps LIMIT 1").fetchone()
            token = self._db.execute("SELECT token FROM refresh_tokens WHERE region = ?", (region,)).fetchone()
        return {
            "refresh_token": token["token"],
            "lwa_app_id": row["client_id"],
            "lwa_client_secret": row["client_secret"],
        }

    @property
    def seller_id(self) -> str:
        with self._lock:
            return self._meta("seller_id") or "A2SANDBOXSELLER"

    @property
    def url_signing_key(self) -> bytes:
        with self._lock:
            return (self._meta("url_signing_key") or "").encode()

    # ---- LWA ----------------------------------------------------------------------------
    def issue_access_token(
        self, client_id: str, client_secret: str, refresh_token: str, now: datetime
    ) -> tuple[str, int]:
        """Exchange a refresh token; raises ``LwaError`` as LWA does (401 client, 400 grant).
        The access token works on the hosts of the refresh token's region only."""
        with self._lock:
            app = self._db.execute("SELECT * FROM lwa_apps WHERE client_id = ?", (client_id,)).fetchone()
            if app is None or not secrets.compare_digest(app["client_secret"], client_secret):
                raise LwaError(401, "invalid_client", "Client authentication failed")
            region = next(
                (
                    row["region"]
                    for row in self._db.execute("SELECT region, token FROM refresh_tokens")
                    if secrets.compare_digest(row["token"], refresh_token)
                ),
                None,
            )
            if region is None:
                raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
            token = f"Atza|{secrets.token_urlsafe(48)}"
            self._db.execute(
                "INSERT INTO access_tokens (token, client_id, expires_at, region) VALUES (?, ?, ?, ?)",
                (token, client_id, now.timestamp() + ACCESS_TOKEN_SECONDS, region),
            )
            return token, ACCESS_TOKEN_SECONDS

    def access_token_owner(self, token: str, now: datetime) -> TokenOwner | None:
        """Whom an access token or restricted data token belongs to; None if unknown/expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT client_id, expires_at, region FROM access_tokens WHERE token = ?"
                " UNION ALL SELECT client_id, expires_at, region FROM restricted_tokens"
                " WHERE token = ?",
                (token, token),
            ).fetchone()
        if row is None or row["expires_at"] <= now.timestamp():
            return None
        return TokenOwner(row["client_id"], row["region"])

    def issue_restricted_token(self, owner: TokenOwner, resources: list[dict], now: datetime) -> tuple[str, int]:
        """A restricted data token (RDT) for ``resources`` [{method, path, dataElements}], same region."""
        token = f"Atz.sprdt|{secrets.token_urlsafe(48)}"
        with self._lock:
            self._db.execute(
                "INSERT INTO restricted_tokens (token, client_id, expires_at, resources_json, region)"
                " VALUES (?, ?, ?, ?, ?)",
                (token, owner.client_id, now.timestamp() + ACCESS_TOKEN_SECONDS, json.dumps(resources), owner.region),
            )
        return token, ACCESS_TOKEN_SECONDS

    def restricted_resources(self, token: str, now: datetime) -> list[dict]:
        """The resources an unexpired RDT grants ([] for a plain access token)."""
        with self._lock:
            row = self._db.execute(
                "SELECT expires_at, resources_json FROM restricted_tokens WHERE token = ?", (token,)
            ).fetchone()
        if row is None or row["expires_at"] <= now.timestamp():
            return []
        return json.loads(row["resources_json"])

    def expire_access_tokens(self) -> int:
        """Make every issued token (and RDT) expired, to exercise re-authentication."""
        with self._lock:
            self._db.execute("UPDATE restricted_tokens SET expires_at = 0")
            return self._db.execute("UPDATE access_tokens SET expires_at = 0").rowcount

    # ---- seeding ------------------------------------------------------------------------
    def seed(
        self,
        orders: Iterable[tuple[dict, list[dict]]],
        documents: Iterable[SettlementDocumentLike],
        listings: Iterable[dict],
        seller_id: str,
    ) -> None:
        """Load a world (the generator contract's shapes). Idempotent: existing records stay."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._set_meta("seller_id", seller_id)
                for n, (order, items) in enumerate(orders):
                    self._insert_order(order, items, where=f"orders[{n}]", replace=False)
                for n, document in enumerate(documents):
                    self._insert_settlement(document, charset=None, compression=None, where=f"documents[{n}]")
                for n, listing in enumerate(listings):
                    self._insert_listing(seller_id, listing, where=f"listings[{n}]")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert_order(self, order: dict, items: Sequence[dict], *, where: str, replace: bool) -> None:
        try:
            order_id = order["AmazonOrderId"]
            row = (
                order_id,
                order["MarketplaceId"],
                sortable(parse_iso(order["PurchaseDate"])),
                sortable(parse_iso(order["LastUpdateDate"])),
                order["OrderStatus"],
                order.get("FulfillmentChannel"),
                json.dumps(order),
                json.dumps(list(items)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SeedError(f"{where}: not an Orders v0 Order ({type(exc).__name__}: {exc})") from None
        for i, item in enumerate(items):
            if not all(k in item for k in ("OrderItemId", "ASIN", "QuantityOrdered")):
                raise SeedError(f"{where} item {i}: OrderItem needs OrderItemId, ASIN, QuantityOrdered")
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self._db.execute(f"{verb} INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def _insert_settlement(
        self, document: SettlementDocumentLike, *, charset: str | None, compression: str | None, where: str
    ) -> str:
        try:
            settlement_id = str(document.settlement_id)
            report_id = _report_id_for(settlement_id)
            text = document.text
            values = (
                report_id,
                settlement_id,
                SETTLEMENT_V2,
                document.marketplace_id,
                sortable(document.created_time),
                sortable(document.start),
                sortable(document.end),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise SeedError(f"{where}: not a SettlementDocument ({exc})") from None
        existing = self._db.execute(
            "SELECT report_id FROM reports WHERE settlement_id = ?", (settlement_id,)
        ).fetchone()
        if existing:
            return existing["report_id"]
        if charset is None or compression is None:
            count = self._db.execute("SELECT COUNT(*) FROM reports WHERE settlement_id IS NOT NULL").fetchone()[0]
            charset, compression = _default_variant(count, text)
        _check_encodable(text, charset, where)
        self._db.execute(
            "INSERT INTO reports (report_id, settlement_id, report_type, marketplace_id, created_time,"
            " data_start, data_end, processing_status, document_id, text, charset, compression)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'DONE', ?, ?, ?, ?)",
            (*values, _document_id_for(report_id), text, charset, compression),
        )
        return report_id

    def _insert_listing(self, seller_id: str, listing: dict, *, where: str) -> None:
        try:
            sku, marketplace_id = str(listing["sku"]), str(listing["marketplace_id"])
            price = Decimal(str(listing["price"]))
            quantity = int(listing["quantity"])
            attributes = {
                "item_name": [{"value": listing["title"], "marketplace_id": marketplace_id}],
                "purchasable_offer": [
                    {
                        "marketplace_id": marketplace_id,
                        "currency": listing["currency"],
                        "our_price": [{"schedule": [{"value_with_tax": price}]}],
                    }
                ],
                "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
            }
            row = (
                seller_id,
                sku,
                marketplace_id,
                listing["product_type"],
                listing.get("asin"),
                listing.get("title"),
                quantity,
                str(price),
                listing["currency"],
                dump_attributes(attributes),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise SeedError(f"{where}: not a listing record ({type(exc).__name__}: {exc})") from None
        self._db.execute(
            "INSERT OR IGNORE INTO listings (seller_id, sku, marketplace_id, product_type, asin, title,"
            " quantity, price, currency, attributes_json, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, datetime('now'), datetime('now'))",
            row,
        )

    # ---- orders -------------------------------------------------------------------------
    def query_orders(self, query: OrderQuery, offset: int, limit: int) -> list[dict]:
        """Orders matching ``query`` ordered by the filtered date, one page."""
        column = {"purchase_date": "purchase_date", "last_update_date": "last_update_date"}[query.date_column]
        marks = ",".join("?" * len(query.marketplace_ids))
        sql = f"SELECT order_json FROM orders WHERE marketplace_id IN ({marks}) AND {column} >= ? AND {column} <= ?"
        args: list[Any] = [*query.marketplace_ids, query.after, query.before]
        for name, values in (
            ("order_status", query.statuses),
            ("fulfillment_channel", query.channels),
            ("amazon_order_id", query.order_ids),
        ):
            if values:
                sql += f" AND {name} IN ({','.join('?' * len(values))})"
                args.extend(values)
        sql += f" ORDER BY {column}, amazon_order_id LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit, offset)).fetchall()
        return [json.loads(r["order_json"]) for r in rows]

    def get_order(self, order_id: str) -> tuple[dict, list[dict]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT order_json, items_json FROM orders WHERE amazon_order_id = ?", (order_id,)
            ).fetchone()
        return (json.loads(row["order_json"]), json.loads(row["items_json"])) if row else None

    def set_order_status(self, order_id: str, status: str, updated: datetime) -> None:
        """Move an order to ``status`` (a buyer or Amazon cancelling it: ``Canceled``) as of ``updated``,
        its LastUpdateDate, so a sync reading from before then sees it again."""
        found = self.get_order(order_id)
        if found is None:
            raise KeyError(f"no order {order_id!r}")
        order, items = found
        order = {**order, "OrderStatus": status, "LastUpdateDate": updated.isoformat().replace("+00:00", "Z")}
        with self._lock:
            self._insert_order(order, items, where=order_id, replace=True)

    def record_shipment(self, order: dict, items: list[dict], package: dict, now: datetime) -> None:
        """Save the updated order and the confirmed package atomically."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._insert_order(order, items, where=order["AmazonOrderId"], replace=True)
                self._db.execute(
                    "INSERT INTO shipments (amazon_order_id, package_json, confirmed_at) VALUES (?, ?, ?)",
                    (order["AmazonOrderId"], json.dumps(package), sortable(now)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ---- reports ------------------------------------------------------------------------
    def add_settlement_report(
        self, document: SettlementDocumentLike, *, charset: str | None = None, compression: str | None = None
    ) -> str:
        """Add one settlement report (admin); returns its report id. Idempotent per settlement id."""
        with self._lock:
            return self._insert_settlement(
                document,
                charset=charset,
                compression=compression,
                where=f"settlement {getattr(document, 'settlement_id', '?')}",
            )

    def add_report(self, report_type: str, marketplace_id: str, created: datetime, status: str) -> str:
        """A non-settlement report requested through createReport (no document)."""
        report_id = str(60_000_000_000 + secrets.randbelow(9_999_999_999))
        with self._lock:
            self._db.execute(
                "INSERT INTO reports (report_id, report_type, marketplace_id, created_time, processing_status)"
                " VALUES (?, ?, ?, ?, ?)",
                (report_id, report_type, marketplace_id, sortable(created), status),
            )
        return report_id

    def set_report_variant(self, report_id: str, charset: str, compression: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT text FROM reports WHERE report_id = ?", (report_id,)).fetchone()
            if row is None:
                raise KeyError(report_id)
            _check_encodable(row["text"] or "", charset, f"report {report_id}")
            self._db.execute(
                "UPDATE reports SET charset = ?, compression = ? WHERE report_id = ?", (charset, compression, report_id)
            )

    def list_reports(
        self,
        report_types: Sequence[str],
        statuses: Sequence[str],
        marketplace_ids: Sequence[str],
        since: datetime,
        until: datetime,
        offset: int,
        limit: int,
        served_marketplaces: Sequence[str] = (),
    ) -> list[ReportRecord]:
        """Reports newest first. ``marketplace_ids`` narrows every type except settlement reports,
        which Amazon lists whatever the filter says; ``served_marketplaces`` (a regional host's
        marketplaces) bounds all of them."""
        sql = "SELECT * FROM reports WHERE created_time >= ? AND created_time <= ?"
        args: list[Any] = [sortable(since), sortable(until)]
        if marketplace_ids:
            sql += f" AND (report_type = ? OR marketplace_id IN ({','.join('?' * len(marketplace_ids))}))"
            args.extend([SETTLEMENT_V2, *marketplace_ids])
        for name, values in (
            ("report_type", report_types),
            ("processing_status", statuses),
            ("marketplace_id", served_marketplaces),
        ):
            if values:
                sql += f" AND {name} IN ({','.join('?' * len(values))})"
                args.extend(values)
        sql += " ORDER BY created_time DESC, report_id DESC LIMIT ? OFFSET ?"  # newest first, as Amazon
        with self._lock:
            rows = self._db.execute(sql, (*args, limit, offset)).fetchall()
        return [_report(r) for r in rows]

    def get_report(self, report_id: str) -> ReportRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM reports WHERE report_id = ?", (report_id,)).fetchone()
        return _report(row) if row else None

    def get_document(self, document_id: str) -> ReportDocumentRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM reports WHERE document_id = ?", (document_id,)).fetchone()
        if row is None:
            return None
        return ReportDocumentRecord(
            row["document_id"], row["report_id"], row["text"] or "", row["charset"], row["compression"]
        )

    # ---- listings -----------------------------------------------------------------------
    def get_listing(self, seller_id: str, sku: str, marketplace_id: str) -> ListingRecord | None:
        with self._lock:
            row = self._db.execute(
                f"{_LISTING_SELECT} WHERE l.seller_id = ? AND l.sku = ? AND l.marketplace_id = ?",
                (seller_id, sku, marketplace_id),
            ).fetchone()
        return _listing(row) if row else None

    def search_listings(self, seller_id: str, marketplace_id: str, search: ListingSearch) -> list[ListingRecord]:
        """The listings of ``marketplace_id`` that ``search`` selects, in its order (searchListingsItems)."""
        where, parameters = ["l.seller_id = ?", "l.marketplace_id = ?"], [seller_id, marketplace_id]
        if search.skus is not None:
            where.append(f"l.sku IN ({','.join('?' * len(search.skus))})")
            parameters += search.skus
        for column, operator, moment in (
            ("created", ">=", search.created_after),
            ("created", "<=", search.created_before),
            ("updated", ">=", search.updated_after),
            ("updated", "<=", search.updated_before),
        ):
            if moment is not None:  # stored as SQLite's datetime('now'): UTC "YYYY-MM-DD HH:MM:SS"
                where.append(f"l.{column} {operator} ?")
                parameters.append(as_utc(moment).strftime("%Y-%m-%d %H:%M:%S"))
        order = {"sku": "l.sku", "createdDate": "l.created", "lastUpdatedDate": "l.updated"}[search.sort_by]
        direction = "ASC" if search.ascending else "DESC"
        sql = f"{_LISTING_SELECT} WHERE {' AND '.join(where)} ORDER BY {order} {direction}, l.sku {direction}"
        with self._lock:
            rows = self._db.execute(sql, parameters).fetchall()
        return [_listing(row) for row in rows]

    def save_listing_attributes(
        self,
        listing: ListingRecord,
        attributes: dict,
        quantity: int,
        price: Decimal | None,
        issues: Sequence[dict] = (),
    ) -> None:
        """An accepted patch's result, with the issues Amazon's processing found (shown on later reads)."""
        key = (listing.seller_id, listing.sku, listing.marketplace_id)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "UPDATE listings SET attributes_json = ?, quantity = ?, price = ?, updated = datetime('now')"
                    " WHERE seller_id = ? AND sku = ? AND marketplace_id = ?",
                    (dump_attributes(attributes), quantity, None if price is None else str(price), *key),
                )
                if issues or listing.issues:
                    self._db.execute(
                        "INSERT INTO listing_checks (seller_id, sku, marketplace_id, issues_json)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (seller_id, sku, marketplace_id)"
                        " DO UPDATE SET issues_json = excluded.issues_json",
                        (*key, json.dumps(list(issues))),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_listing_checks(
        self,
        seller_id: str,
        sku: str,
        marketplace_id: str,
        *,
        min_price: Decimal | None,
        max_price: Decimal | None,
        suppressed: bool,
    ) -> bool:
        """What Amazon checks on this listing after accepting a patch; False when there is no such listing."""
        with self._lock:
            if self.get_listing(seller_id, sku, marketplace_id) is None:
                return False
            self._db.execute(
                "INSERT INTO listing_checks (seller_id, sku, marketplace_id, min_price, max_price, suppressed)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (seller_id, sku, marketplace_id) DO UPDATE SET"
                " min_price = excluded.min_price, max_price = excluded.max_price, suppressed = excluded.suppressed",
                (
                    seller_id,
                    sku,
                    marketplace_id,
                    None if min_price is None else str(min_price),
                    None if max_price is None else str(max_price),
                    int(suppressed),
                ),
            )
        return True

    # ---- admin view ---------------------------------------------------------------------
    def state(self) -> dict:
        """What the sandbox holds, for ``GET /sandbox/state`` (no secrets, no buyer data)."""
        with self._lock:
            by_status = {
                r["order_status"]: r["n"]
                for r in self._db.execute("SELECT order_status, COUNT(*) AS n FROM orders GROUP BY order_status")
            }
            reports = [
                {
                    "reportId": r["report_id"],
                    "settlementId": r["settlement_id"],
                    "reportType": r["report_type"],
                    "marketplaceId": r["marketplace_id"],
                    "createdTime": r["created_time"],
                    "processingStatus": r["processing_status"],
                    "charset": r["charset"],
                    "compression": r["compression"],
                }
                for r in self._db.execute("SELECT * FROM reports ORDER BY created_time")
            ]
            listings = [
                {
                    "sku": r["sku"],
                    "marketplaceId": r["marketplace_id"],
                    "quantity": r["quantity"],
                    "price": r["price"],
                    "currency": r["currency"],
                    # DEFAULT is the seller's (MFN); AMAZON_NA, AMAZON_EU, ... are Amazon's (FBA)
                    "fulfillmentChannels": [
                        a.get("fulfillment_channel_code")
                        for a in json.loads(r["attributes_json"]).get("fulfillment_availability") or []
                    ],
                }
                for r in self._db.execute("SELECT * FROM listings ORDER BY sku, marketplace_id")
            ]
            shipments = [
                {
                    "amazonOrderId": r["amazon_order_id"],
                    "confirmedAt": r["confirmed_at"],
                    "packageDetail": json.loads(r["package_json"]),
                }
                for r in self._db.execute("SELECT * FROM shipments ORDER BY id")
            ]
        return {
            "sellerId": self.seller_id,
            "orders": sum(by_status.values()),
            "ordersByStatus": by_status,
            "reports": reports,
            "listings": listings,
            "shipments": shipments,
        }


def dump_attributes(attributes: dict) -> str:
    """Attributes as JSON; Decimal prices become JSON numbers (Amazon sends numbers there)."""
    return json.dumps(attributes, default=_decimal_as_number)


def _decimal_as_number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)  # shortest repr of a 2-4 decimal price round-trips exactly
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _default_variant(index: int, text: str) -> tuple[str, str]:
    """Rotate through VARIANTS; skip cp1252 for text it cannot encode."""
    for step in range(len(VARIANTS)):
        charset, compression = VARIANTS[(index + step) % len(VARIANTS)]
        if _encodable(text, charset):
            return charset, compression
    return "utf-8", ""


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(document_codec(charset))
    except UnicodeEncodeError:
        return False
    return True


def _check_encodable(text: str, charset: str, where: str) -> None:
    if charset not in CHARSETS:
        raise SeedError(f"{where}: charset must be one of {list(CHARSETS)}, got {charset!r}")
    if not _encodable(text, charset):
        raise SeedError(f"{where}: document text cannot be encoded as {charset}")


def document_codec(charset: str) -> str:
    """Python codec for a served charset; no charset means the bytes are UTF-8 (S3 just omits it)."""
    return "cp1252" if charset.lower() == "cp1252" else "utf-8"


def _dt(text: str | None) -> datetime | None:
    return as_utc(parse_iso(text)) if text else None


def _report(row: sqlite3.Row) -> ReportRecord:
    return ReportRecord(
        row["report_id"],
        row["settlement_id"],
        row["report_type"],
        row["marketplace_id"],
        parse_iso(row["created_time"]),
        _dt(row["data_start"]),
        _dt(row["data_end"]),
        row["processing_status"],
        row["document_id"],
        row["charset"],
        row["compression"],
    )


def _listing(row: sqlite3.Row) -> ListingRecord:
    return ListingRecord(
        row["seller_id"],
        row["sku"],
        row["marketplace_id"],
        row["product_type"],
        row["asin"],
        row["title"],
        row["quantity"],
        None if row["price"] is None else Decimal(row["price"]),
        row["currency"],
        json.loads(row["attributes_json"]),
        parse_iso(row["created"].replace(" ", "T")),
        parse_iso(row["updated"].replace(" ", "T")),
        None if row["min_price"] is None else Decimal(row["min_price"]),
        None if row["max_price"] is None else Decimal(row["max_price"]),
        bool(row["suppressed"]),
        tuple(json.loads(row["issues_json"] or "[]")),
    )
