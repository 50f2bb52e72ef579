"""The state store: what was posted where, how far each feed has been read, which Amazon id
is which M3 id, and what failed (dead letters).

SQLAlchemy Core, portable SQL: SQLite under ``--home`` by default, PostgreSQL
(``postgresql+psycopg://``) when several workers share one store. Every write is its own short
transaction; races between processes are settled by the database's unique constraints and by
compare-and-set updates, never by a read-then-write in Python.

SQLite specifics: WAL journal (readers never block the writer), a busy timeout, and
``BEGIN IMMEDIATE`` for every transaction so two processes queue on the write lock instead of
failing with "database is locked" when a read transaction tries to upgrade.

PostgreSQL specifics: READ COMMITTED, pinned per connection whatever the server's default. Two
writers of one row queue on its row lock, and the second re-evaluates its WHERE against the
committed row, so a compare-and-set update has one winner and an insert of a taken key fails
with a unique violation: no serialization failures to retry. Schema creation and migrations
hold a transaction-scoped advisory lock, so processes opening an empty database at once queue.

The schema carries its version (table ``m3sync_schema``, one row per step applied); opening a
store brings an older one to `SCHEMA_VERSION` through `MIGRATIONS` and refuses a newer one.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from connectors.redact import redact, redact_text, redact_url

# claimed: a writer is on it; posted: in the target; failed: the target refused it, or nothing
# was sent (may be claimed again at once); in_doubt: a write was sent and its answer never came
# (the next claimer must first see what the target did); submitted: handed to the target, which
# has not finished it yet (an M3 GL batch awaiting its job; the next claimer confirms it).
PostingStatus = Literal["claimed", "posted", "failed", "in_doubt", "submitted"]
RECLAIMABLE_STATUSES = ("failed", "in_doubt", "submitted")
DeadLetterStatus = Literal["open", "replayed", "discarded"]

SQLITE_BUSY_TIMEOUT_S = 30.0
# How long a PostgreSQL connection attempt may take (libpq's default is to wait forever on a
# host that drops packets); a URL's own ``connect_timeout`` wins.
POSTGRES_CONNECT_TIMEOUT_S = 10
_KEY = 255  # identifier columns: posting keys, names, ids


class StateStoreError(Exception):
    """Base class of the state store's errors."""


class StateStoreUnavailable(StateStoreError):
    """The state database cannot be opened (server down, wrong host or credentials, no such
    database) or is at a newer schema version than this code: one line, exit 2 on the command line."""


class PostingNotFound(StateStoreError, KeyError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no posting with key {key!r} in the state store")
        self.key = key


class IdMapConflict(StateStoreError):
    """An Amazon id is already mapped to a different M3 id."""

    def __init__(self, kind: str, amazon_id: str, existing_m3_id: str, new_m3_id: str) -> None:
        super().__init__(
            f"{kind} {amazon_id!r} is already mapped to M3 {existing_m3_id!r}; refusing to remap it to {new_m3_id!r}"
        )
        self.kind, self.amazon_id = kind, amazon_id
        self.existing_m3_id, self.new_m3_id = existing_m3_id, new_m3_id


class AmbiguousIdMap(StateStoreError):
    """Several Amazon ids map to the M3 id asked about."""

    def __init__(self, kind: str, m3_id: str, amazon_ids: list[str]) -> None:
        super().__init__(f"M3 {kind} {m3_id!r} is mapped from several Amazon ids: {', '.join(amazon_ids)}")
        self.kind, self.m3_id, self.amazon_ids = kind, m3_id, amazon_ids


class DeadLetterNotFound(StateStoreError, KeyError):
    def __init__(self, letter_id: int) -> None:
        super().__init__(f"no dead letter with id {letter_id}")
        self.letter_id = letter_id


class DeadLetterNotOpen(StateStoreError):
    def __init__(self, letter_id: int, status: str) -> None:
        super().__init__(f"dead letter {letter_id} is already {status}; only open letters can be resolved")
        self.letter_id, self.status = letter_id, status


class AlreadyReversed(StateStoreError):
    """A version of a settlement's posting keys is already recorded as reversed."""

    def __init__(self, settlement_id: str, version: int) -> None:
        super().__init__(f"settlement {settlement_id} version {version} is already reversed")
        self.settlement_id, self.version = settlement_id, version


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the state store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

postings = sa.Table(
    "postings",
    metadata,
    sa.Column("posting_key", sa.String(_KEY), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("target_ref", sa.String(_KEY)),
    sa.Column("content_hash", sa.String(128), nullable=False),
    sa.Column("source_hash", sa.String(128)),
    sa.Column("detail", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("owner", sa.String(_KEY)),  # host:pid:start of the process holding the claim
    sa.Column("audit", sa.Text),  # JSON: what the write was made from (a voucher's audit record)
    sa.Index("ix_postings_kind_status", "kind", "status"),
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("name", sa.String(_KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

id_maps = sa.Table(
    "id_maps",
    metadata,
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("amazon_id", sa.String(_KEY), nullable=False),
    sa.Column("m3_id", sa.String(_KEY), nullable=False),
    sa.Column("marketplace", sa.String(40)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("kind", "amazon_id", name="uq_id_maps_kind_amazon_id"),
    sa.Index("ix_id_maps_kind_m3_id", "kind", "m3_id"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity", sa.String(100), nullable=False),
    sa.Column("entity_key", sa.String(_KEY), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
)
# A settlement's reversals (issue 11): one row per reversed version of its posting keys. The
# current version is 1 + the number of rows; the primary key makes a version reversed once.
reversals = sa.Table(
    "reversals",
    metadata,
    sa.Column("settlement_id", sa.String(_KEY), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),  # the version reversed
    sa.Column("reversed", sa.Text, nullable=False),  # JSON {posting key: M3 voucher} reversed
    sa.Column("reversal", sa.Text, nullable=False),  # JSON {reversing posting key: M3 voucher}
    sa.Column("accounting_date", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
# Which settlement settled (sold) which Amazon order (issue 12): written when a settlement is
# posted, read when reconciling a later one, so an invoice settled in an earlier run is never
# reported "not settled". The primary key makes recording a settlement twice harmless.
settled_orders = sa.Table(
    "settled_orders",
    metadata,
    sa.Column("order_id", sa.String(_KEY), primary_key=True),
    sa.Column("settlement_id", sa.String(_KEY), primary_key=True),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
)
# Catalog sync (issue 15): per SKU and marketplace, the listing's product type and a hash of each
# attribute's value as Amazon last accepted it (JSON {attribute: hash}), so only changes are sent.
catalog_listings = sa.Table(
    "catalog_listings",
    metadata,
    sa.Column("sku", sa.String(_KEY), primary_key=True),
    sa.Column("marketplace_id", sa.String(40), primary_key=True),
    sa.Column("product_type", sa.String(100), nullable=False),
    sa.Column("accepted", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
# What Amazon last accepted per SKU and marketplace (issue 15): the inventory sync sends only
# what differs from it. A row is first written from the listing as Amazon shows it (no
# submission); ``readback_due`` is set when a patch is accepted and cleared once it is read back.
listing_states = sa.Table(
    "listing_states",
    metadata,
    sa.Column("sku", sa.String(_KEY), primary_key=True),
    sa.Column("marketplace_id", sa.String(40), primary_key=True),
    sa.Column("product_type", sa.String(100), nullable=False),
    sa.Column("fulfillment", sa.String(8), nullable=False),  # MFN, AFN (Amazon's stock) or ABSENT (not listed)
    sa.Column("quantity", sa.Integer),
    sa.Column("price", sa.String(40)),  # Decimal text, exact
    sa.Column("currency", sa.String(3)),
    sa.Column("accepted_at", UtcDateTime),  # when Amazon accepted the last patch (None: as read from Amazon)
    sa.Column("submission_id", sa.String(_KEY)),
    sa.Column("readback_due", sa.Boolean, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
# Order ids per IN (...) query: below SQLite's variable limit (32766), a few queries for 200k orders.
_IDS_PER_QUERY = 10_000

# One *open* letter per entity; replayed/discarded ones are history and may repeat. Partial
# unique index: SQLite and PostgreSQL (the two backends we support) both have them.
_open_letter_where = dead_letters.c.status == "open"
sa.Index(
    "uq_dead_letters_open",
    dead_letters.c.flow,
    dead_letters.c.entity,
    dead_letters.c.entity_key,
    unique=True,
    sqlite_where=_open_letter_where,
    postgresql_where=_open_letter_where,
)

# The tables holding the store's rows (what `StateStore.copy_to` copies), parents of none.
DATA_TABLES = (
    postings,
    watermarks,
    id_maps,
    dead_letters,
    reversals,
    settled_orders,
    catalog_listings,
    listing_states,
)

# The schema's version: one row per migration step applied, the highest is the store's version.
schema_versions = sa.Table(
    "m3sync_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(_KEY), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``apply`` brings a store at ``version - 1`` to ``version``. Steps
    look before they change anything, so a store from before schema versions (which may hold
    any prefix of them) runs them all from the first."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(*tables: sa.Table) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables), checkfirst=True)

    return apply


def _add_column(table: sa.Table, name: str) -> Callable[[Connection], None]:
    column = table.c[name]
    assert column.nullable  # existing rows get NULL

    def apply(conn: Connection) -> None:
        if name in {found["name"] for found in sa.inspect(conn).get_columns(table.name)}:
            return
        quote = conn.dialect.identifier_preparer.quote
        type_sql = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(name)} {type_sql}")

    return apply


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "postings, watermarks, id_maps, dead_letters", _create_tables(postings, watermarks, id_maps, dead_letters)
    ),
    Migration(2, "postings.owner: the process holding a claim", _add_column(postings, "owner")),
    Migration(3, "postings.audit: what a write was made from", _add_column(postings, "audit")),
    Migration(4, "reversals: the reversed versions of a settlement's vouchers", _create_tables(reversals)),
    Migration(5, "settled_orders: which settlement settled which order", _create_tables(settled_orders)),
    Migration(
        6,
        "catalog_listings: the listing attributes Amazon last accepted, per SKU and marketplace",
        _create_tables(catalog_listings),
    ),
    Migration(7, "listing_states: what Amazon last accepted per SKU and marketplace", _create_tables(listing_states)),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))

# pg_advisory_xact_lock's key for schema changes ("m3sync" in ASCII); PostgreSQL scopes it to the database.
_SCHEMA_LOCK_KEY = int.from_bytes(b"m3sync", "big")


@dataclass(frozen=True)
class Posting:
    """One write to a target system, keyed by its idempotency key.

    ``posting_key``: the idempotency key (e.g. ``AMZ-10000000001-202410``); ``kind``: voucher,
    order, shipment, listing ...; ``source``: where it came from (file name, report id);
    ``status``: see `PostingStatus`; ``target_ref``: the target's reference once posted (M3
    voucher number, order number) or submitted (GLS840 batch KEY1); ``content_hash`` /
    ``source_hash``: fingerprints of what was (to be) posted and of its input; ``detail``: parsed
    JSON detail given to `mark_posted`; ``error``: last failure message; ``attempts``: times
    claimed; ``owner``: the process that last claimed it (``host:pid:start``); ``audit``: parsed
    JSON given to `claim_posting` (a voucher's file and mapping hashes, tool and key versions).
    """

    posting_key: str
    kind: str
    source: str
    status: PostingStatus
    target_ref: str | None
    content_hash: str
    source_hash: str | None
    detail: Any
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    audit: Any = None


@dataclass(frozen=True)
class Claim:
    """The result of `StateStore.claim_posting`. ``won`` is True for exactly one claimer;
    ``posting`` is the row as it stands after the claim (another writer's row when lost);
    ``claimed_content_hash`` is the hash this claimer brought; ``previous`` is the row the
    winner took over (None for a new key): its status says what to check in the target first."""

    won: bool
    posting: Posting
    claimed_content_hash: str
    previous: Posting | None = None

    @property
    def content_changed(self) -> bool:
        """True when the existing row was claimed or posted with different content: the same
        key now describes something else (e.g. a corrected settlement file)."""
        return self.claimed_content_hash != self.posting.content_hash


@dataclass(frozen=True)
class CatalogListing:
    """A listing the catalog sync keeps in step: its product type and, per attribute, the hash of
    the value Amazon last accepted (``sync.catalog.attribute_hash``)."""

    sku: str
    marketplace_id: str
    product_type: str
    accepted: dict[str, str]
    updated_at: datetime


@dataclass(frozen=True)
class Reversal:
    """A reversed version of a settlement's vouchers: ``reversed`` maps each original posting
    key to its M3 voucher, ``reversal`` each reversing posting key to its M3 voucher."""

    settlement_id: str
    version: int
    reversed: dict[str, str]
    reversal: dict[str, str]
    accounting_date: str  # YYYY-MM-DD
    created_at: datetime


@dataclass(frozen=True)
class DeadLetter:
    """An entity a flow could not process. ``payload`` is the redacted input (parsed JSON),
    ``error`` the last error (redacted), ``attempts`` how often it was dead-lettered while open."""

    id: int
    flow: str
    entity: str
    entity_key: str
    payload: Any
    error: str
    attempts: int
    first_seen: datetime
    last_seen: datetime
    status: DeadLetterStatus


@dataclass(frozen=True)
class ListingState:
    """What Amazon last accepted for one SKU in one marketplace (or showed when first read):
    ``fulfillment`` MFN, AFN or ABSENT; ``price`` exact; ``submission_id`` and ``accepted_at``
    of the last accepted patch (None when the row was read from Amazon); ``readback_due`` while
    an accepted patch has not been read back."""

    sku: str
    marketplace_id: str
    product_type: str
    fulfillment: str
    quantity: int | None
    price: Decimal | None
    currency: str | None
    accepted_at: datetime | None = None
    submission_id: str | None = None
    readback_due: bool = False
    updated_at: datetime | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dump_json(value: Any) -> str:
    return json.dumps(redact(value), sort_keys=True, default=str)


def _is_sqlite_memory(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _connect_args(parsed: sa.URL) -> dict[str, Any]:
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        return {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    return {}


def _reason(exc: DBAPIError) -> str:
    """The driver's message in one line, without secrets."""
    return redact_text(" ".join(str(exc.orig).split()))


def connection_problem(url: str) -> str | None:
    """Why a connection to the database server at ``url`` cannot be made (down, wrong host,
    role or database), in one line; None when it can. Nothing is created or changed."""
    from sqlalchemy.pool import NullPool

    parsed = make_url(url)
    engine = sa.create_engine(parsed, poolclass=NullPool, connect_args=_connect_args(parsed))
    try:
        with engine.connect():
            return None
    except DBAPIError as exc:
        return _reason(exc)
    finally:
        engine.dispose()


def _make_engine(url: str) -> Engine:
    from connectors.settings import check_state_url

    # A missing driver is a one-line ConfigurationError, not an ImportError; the store connects itself next.
    check_state_url(url, reachable=False)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # READ COMMITTED whatever the server's default: the module docstring says why it suffices.
        return sa.create_engine(
            parsed, pool_pre_ping=True, isolation_level="READ COMMITTED", connect_args=_connect_args(parsed)
        )
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if _is_sqlite_memory(parsed):
        # One shared connection, or every checkout would see a different empty database.
        engine = sa.create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        assert parsed.database  # a file-less SQLite URL is the in-memory case above
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit so that SQLAlchemy's "begin" event below decides how
        # transactions start (the sqlite3 module would otherwise BEGIN DEFERRED lazily).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if not _is_sqlite_memory(parsed):
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class StateStore:
    """The project's durable state. Construct with any SQLAlchemy URL, or `for_home`.

    Thread-safe (a connection pool); safe across processes (see the module docstring).
    ``clock`` exists for tests that need to age rows.
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.url = url
        self._clock = clock
        self._shown_url = redact_url(url)
        self._engine = _make_engine(url)
        try:
            with self._engine.connect():
                pass  # a server that is down, a wrong host, role or database: said here in one line
            self.create_schema()
        except DBAPIError as exc:
            self._engine.dispose()
            raise StateStoreUnavailable(f"cannot open the state database {self._shown_url}: {_reason(exc)}") from None
        except StateStoreUnavailable:
            self._engine.dispose()
            raise

    @classmethod
    def for_home(cls, home: Path, **kwargs: Any) -> StateStore:
        """SQLite at ``home/state.sqlite``; the folder is created when missing."""
        home = Path(home).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{(home / 'state.sqlite').absolute()}", **kwargs)

    def __repr__(self) -> str:
        # The URL may carry a database password.
        return f"StateStore({make_url(self.url).render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def create_schema(self) -> None:
        """Create the schema, or bring an older one to `SCHEMA_VERSION`. Idempotent, and safe
        when several processes open an empty or older database at once: they queue on SQLite's
        write lock (BEGIN IMMEDIATE) or PostgreSQL's advisory lock, and each looks again under
        it. A store at a newer version raises `StateStoreUnavailable` (an older m3sync must not
        write to it)."""
        if self._checked_version() == SCHEMA_VERSION:
            return  # the usual case, without queueing on the lock
        for attempt in range(3):
            try:
                with self._tx() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
                    version = self._checked_version(conn)
                    for migration in MIGRATIONS[version:]:
                        if migration.version == 1:
                            schema_versions.create(conn, checkfirst=True)
                        migration.apply(conn)
                        conn.execute(
                            schema_versions.insert().values(
                                version=migration.version, description=migration.description, applied_at=_utcnow()
                            )
                        )
                return
            except DBAPIError:
                # Backends without a lock for DDL: a loser's "already exists" is answered by looking again.
                if attempt == 2 or self._engine.dialect.name in ("sqlite", "postgresql"):
                    raise

    def schema_version(self) -> int:
        """The store's schema version: the last migration step applied (0: no schema)."""
        with self._tx() as conn:
            return _schema_version(conn)

    def _checked_version(self, conn: Connection | None = None) -> int:
        if conn is None:
            with self._tx() as own:
                return self._checked_version(own)
        version = _schema_version(conn)
        if version > SCHEMA_VERSION:
            raise StateStoreUnavailable(
                f"the state database {self._shown_url} is at schema version {version}, newer than this "
                f"m3sync's {SCHEMA_VERSION}: upgrade m3-amazon-sync before using it"
            )
        return version

    def copy_to(self, target: StateStore, *, rows_per_batch: int = 5_000) -> dict[str, int]:
        """Copy every row of this store into ``target``, which must hold none (`StateStoreError`
        otherwise), in one transaction on the target: all or nothing. Returns the rows copied per
        table. This store is read in one transaction (SQLite: holding the write lock; PostgreSQL:
        one snapshot), but flows writing to it should be stopped first: what they write after
        the copy is not in the target."""
        if make_url(self.url) == make_url(target.url):
            raise StateStoreError(f"the state database {target._shown_url} cannot be copied into itself")
        copied: dict[str, int] = {}
        with target._tx() as out:
            if out.dialect.name == "postgresql":  # a second copy into the same target waits, then finds rows
                out.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            taken = [t.name for t in DATA_TABLES if out.execute(sa.select(sa.func.count()).select_from(t)).scalar()]
            if taken:
                raise StateStoreError(
                    f"the state database {target._shown_url} already holds rows ({', '.join(taken)}): "
                    "copy only into a new, empty database"
                )
            source = self._engine.connect()
            if source.dialect.name == "postgresql":
                source = source.execution_options(isolation_level="REPEATABLE READ")
            with source, source.begin():
                for table in DATA_TABLES:
                    copied[table.name] = 0
                    rows = source.execute(sa.select(table)).mappings()
                    for batch in rows.partitions(rows_per_batch):
                        out.execute(table.insert(), [dict(row) for row in batch])
                        copied[table.name] += len(batch)
            if out.dialect.name == "postgresql":  # dead letters were copied with their ids: new ones follow them
                out.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('dead_letters', 'id'), COALESCE(MAX(id), 1), "
                    "MAX(id) IS NOT NULL) FROM dead_letters"
                )
        return copied

    # -- postings ---------------------------------------------------------------------

    def claim_posting(
        self,
        key: str,
        *,
        kind: str,
        source: str,
        content_hash: str,
        source_hash: str | None = None,
        reclaim_claimed_after: timedelta | None = None,
        audit: Any = None,
    ) -> Claim:
        """Claim ``key`` for writing. Exactly one of several concurrent claimers wins.

        A new key is inserted as "claimed", owned by this process. An existing "failed",
        "in_doubt" or "submitted" row is reclaimed (the claimer wins and the attempt count goes
        up). An existing "claimed" row is reclaimed when its owner process is gone (same host,
        that pid no longer running the process that claimed it) or, for owners elsewhere, when
        it is older than ``reclaim_claimed_after``. A winner over an "in_doubt", "submitted" or
        "claimed" row (``Claim.previous``) must check the target before writing. Anything else:
        ``won=False`` with that row. ``audit`` (any JSON-able value) is stored with the claim by
        whoever wins it: the record of what this write was made from.
        """
        now = self._clock()
        owner = process_owner()
        audit_json = None if audit is None else _dump_json(audit)
        try:
            with self._tx() as conn:
                conn.execute(
                    postings.insert().values(
                        posting_key=key,
                        kind=kind,
                        source=source,
                        status="claimed",
                        target_ref=None,
                        content_hash=content_hash,
                        source_hash=source_hash,
                        detail=None,
                        error=None,
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                        owner=owner,
                        audit=audit_json,
                    )
                )
            return Claim(True, self._require_posting(key), content_hash)
        except IntegrityError:
            pass
        previous = self._require_posting(key)
        reclaimable = previous.status in RECLAIMABLE_STATUSES or (
            previous.status == "claimed"
            and (
                owner_is_gone(previous.owner)
                or (reclaim_claimed_after is not None and previous.updated_at < now - reclaim_claimed_after)
            )
        )
        if not reclaimable:
            return Claim(False, previous, content_hash)
        with self._tx() as conn:
            # Compare-and-set on the row as read: of several reclaimers the database picks one.
            won = (
                conn.execute(
                    postings.update()
                    .where(
                        postings.c.posting_key == key,
                        postings.c.status == previous.status,
                        postings.c.attempts == previous.attempts,
                        postings.c.updated_at == previous.updated_at,
                    )
                    .values(
                        status="claimed",
                        kind=kind,
                        source=source,
                        content_hash=content_hash,
                        source_hash=source_hash,
                        attempts=postings.c.attempts + 1,
                        updated_at=now,
                        owner=owner,
                        audit=audit_json,
                    )
                ).rowcount
                == 1
            )
        return Claim(won, self._require_posting(key), content_hash, previous if won else None)

    def mark_posted(self, key: str, target_ref: str, detail: Any = None) -> Posting:
        """Record that ``key`` was written to the target as ``target_ref``. ``detail`` is any
        JSON-able value (redacted before it is stored)."""
        self._update_posting(
            key,
            status="posted",
            target_ref=target_ref,
            detail=None if detail is None else _dump_json(detail),
            error=None,
        )
        return self._require_posting(key)

    def mark_failed(self, key: str, error: str | BaseException) -> Posting:
        """Record that writing ``key`` failed (refused, or nothing sent); a later
        `claim_posting` may reclaim it and write at once."""
        self._update_posting(key, status="failed", error=redact_text(str(error)))
        return self._require_posting(key)

    def mark_in_doubt(self, key: str, error: str | BaseException) -> Posting:
        """Record that a write of ``key`` was sent and its answer never came: the target may
        have committed it. ``updated_at`` (now) bounds when it was sent; a later claimer must
        see what the target did before writing again."""
        self._update_posting(key, status="in_doubt", error=redact_text(str(error)))
        return self._require_posting(key)

    def mark_submitted(self, key: str, target_ref: str, detail: Any = None) -> Posting:
        """Record that ``key`` was handed to the target as ``target_ref`` (a GLS840 batch KEY1)
        and is not finished yet; a later claimer confirms it, never submits it again."""
        self._update_posting(
            key,
            status="submitted",
            target_ref=target_ref,
            error=None,
            detail=None if detail is None else _dump_json(detail),
        )
        return self._require_posting(key)

    def get_posting(self, key: str) -> Posting | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(postings).where(postings.c.posting_key == key)).mappings().first()
        return None if row is None else _posting(row)

    def list_postings(self, kind: str | None = None, status: PostingStatus | None = None) -> list[Posting]:
        """Postings oldest first, optionally filtered by kind and status."""
        query = sa.select(postings).order_by(postings.c.created_at, postings.c.posting_key)
        if kind is not None:
            query = query.where(postings.c.kind == kind)
        if status is not None:
            query = query.where(postings.c.status == status)
        with self._tx() as conn:
            return [_posting(row) for row in conn.execute(query).mappings()]

    def forget_posting(self, key: str) -> bool:
        """Delete the record of ``key`` (an operator's decision to allow posting again).
        True when a row was deleted."""
        with self._tx() as conn:
            return conn.execute(postings.delete().where(postings.c.posting_key == key)).rowcount == 1

    def _update_posting(self, key: str, **values: Any) -> None:
        with self._tx() as conn:
            updated = conn.execute(
                postings.update().where(postings.c.posting_key == key).values(updated_at=self._clock(), **values)
            ).rowcount
        if updated != 1:
            raise PostingNotFound(key)

    def _require_posting(self, key: str) -> Posting:
        posting = self.get_posting(key)
        if posting is None:  # forgotten between our write and this read
            raise PostingNotFound(key)
        return posting

    # -- reversals and posting-key versions --------------------------------------------

    def settlement_version(self, settlement_id: str) -> int:
        """The version of the posting keys the settlement is posted under now: 1, plus one per
        reversal recorded."""
        with self._tx() as conn:
            reversed_count = conn.execute(
                sa.select(sa.func.count()).select_from(reversals).where(reversals.c.settlement_id == settlement_id)
            ).scalar_one()
        return int(reversed_count) + 1

    def record_reversal(
        self,
        settlement_id: str,
        version: int,
        reversed_vouchers: dict[str, str],
        reversal_vouchers: dict[str, str],
        accounting_date: str,
    ) -> Reversal:
        """Record that ``version`` of the settlement's vouchers is reversed: from now on it is
        posted under ``version + 1``. `AlreadyReversed` when it was recorded before (the
        primary key decides between racing processes)."""
        try:
            with self._tx() as conn:
                conn.execute(
                    reversals.insert().values(
                        settlement_id=settlement_id,
                        version=version,
                        reversed=_dump_json(reversed_vouchers),
                        reversal=_dump_json(reversal_vouchers),
                        accounting_date=accounting_date,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError:
            raise AlreadyReversed(settlement_id, version) from None
        found = self.get_reversal(settlement_id, version)
        assert found is not None  # just inserted; rows are never deleted
        return found

    def get_reversal(self, settlement_id: str, version: int) -> Reversal | None:
        with self._tx() as conn:
            row = (
                conn.execute(
                    sa.select(reversals).where(
                        reversals.c.settlement_id == settlement_id, reversals.c.version == version
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Reversal(
            settlement_id=row["settlement_id"],
            version=row["version"],
            reversed=json.loads(row["reversed"]),
            reversal=json.loads(row["reversal"]),
            accounting_date=row["accounting_date"],
            created_at=row["created_at"],
        )

    # -- settled orders ---------------------------------------------------------------

    def record_settled_orders(self, settlement_id: str, order_ids: Iterable[str]) -> int:
        """Record that ``settlement_id`` settled ``order_ids``, in one transaction; pairs recorded
        before are left as they are. Returns how many pairs were new."""
        now = self._clock()
        wanted = sorted(set(order_ids))
        new = 0
        for _ in range(3):
            try:
                with self._tx() as conn:
                    known: set[str] = set()
                    for chunk in _chunks(wanted):
                        known.update(
                            conn.execute(
                                sa.select(settled_orders.c.order_id).where(
                                    settled_orders.c.settlement_id == settlement_id,
                                    settled_orders.c.order_id.in_(chunk),
                                )
                            ).scalars()
                        )
                    rows = [
                        {"order_id": o, "settlement_id": settlement_id, "recorded_at": now}
                        for o in wanted
                        if o not in known
                    ]
                    if rows:
                        conn.execute(settled_orders.insert(), rows)
                    new = len(rows)
                return new
            except IntegrityError:
                continue  # another process recorded some of them meanwhile: look again
        raise StateStoreError(f"could not record the orders of settlement {settlement_id!r}: kept losing races")

    def settlements_of_orders(self, order_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(order id, settlement id) for every recorded settlement of ``order_ids``, sorted."""
        found: list[tuple[str, str]] = []
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(order_ids))):
                found.extend(
                    (row.order_id, row.settlement_id)
                    for row in conn.execute(
                        sa.select(settled_orders.c.order_id, settled_orders.c.settlement_id).where(
                            settled_orders.c.order_id.in_(chunk)
                        )
                    )
                )
        return sorted(found)

    # -- catalog listings --------------------------------------------------------------

    def catalog_listings(self) -> dict[tuple[str, str], CatalogListing]:
        """Every listing the catalog sync knows, by (SKU, marketplace id)."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(catalog_listings)).mappings().all()
        return {(row["sku"], row["marketplace_id"]): _catalog_listing(row) for row in rows}

    def catalog_listing(self, sku: str, marketplace_id: str) -> CatalogListing | None:
        with self._tx() as conn:
            row = (
                conn.execute(
                    sa.select(catalog_listings).where(
                        catalog_listings.c.sku == sku, catalog_listings.c.marketplace_id == marketplace_id
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _catalog_listing(row)

    def record_catalog_listing(
        self, sku: str, marketplace_id: str, product_type: str, accepted: dict[str, str] | None = None
    ) -> CatalogListing:
        """Record the listing's product type and merge ``accepted`` (attribute -> hash of the value
        Amazon just accepted) into what it accepted before. The row is locked while merging
        (PostgreSQL: FOR UPDATE; SQLite: the write lock of BEGIN IMMEDIATE), so two writers never
        lose each other's attributes."""
        where = sa.and_(catalog_listings.c.sku == sku, catalog_listings.c.marketplace_id == marketplace_id)
        for _ in range(3):
            now = self._clock()
            with self._tx() as conn:
                row = conn.execute(sa.select(catalog_listings).where(where).with_for_update()).mappings().first()
                if row is not None:
                    merged = {**json.loads(row["accepted"]), **(accepted or {})}
                    conn.execute(
                        catalog_listings.update()
                        .where(where)
                        .values(product_type=product_type, accepted=json.dumps(merged, sort_keys=True), updated_at=now)
                    )
                    return CatalogListing(sku, marketplace_id, product_type, merged, now)
            try:
                with self._tx() as conn:
                    conn.execute(
                        catalog_listings.insert().values(
                            sku=sku,
                            marketplace_id=marketplace_id,
                            product_type=product_type,
                            accepted=json.dumps(dict(accepted or {}), sort_keys=True),
                            updated_at=now,
                        )
                    )
                return CatalogListing(sku, marketplace_id, product_type, dict(accepted or {}), now)
            except IntegrityError:
                continue  # another writer inserted it first: merge into that row
        raise StateStoreError(f"could not record catalog listing {sku} in {marketplace_id}: kept losing races")

    # -- watermarks -------------------------------------------------------------------

    def get_watermark(self, name: str) -> str | None:
        with self._tx() as conn:
            return conn.execute(sa.select(watermarks.c.value).where(watermarks.c.name == name)).scalar()

    def set_watermark(self, name: str, value: str) -> None:
        """Set (insert or overwrite) the watermark ``name``."""
        if not isinstance(value, str):
            raise TypeError(
                f"watermark {name!r} value must be a string (e.g. an ISO timestamp), got {type(value).__name__}"
            )
        for _ in range(3):
            now = self._clock()
            with self._tx() as conn:
                if (
                    conn.execute(
                        watermarks.update().where(watermarks.c.name == name).values(value=value, updated_at=now)
                    ).rowcount
                    == 1
                ):
                    return
            try:
                with self._tx() as conn:
                    conn.execute(watermarks.insert().values(name=name, value=value, updated_at=now))
                return
            except IntegrityError:
                continue  # another writer inserted it first: update it
        raise StateStoreError(f"could not set watermark {name!r}: kept losing races")

    # -- id maps ----------------------------------------------------------------------

    def map_id(self, kind: str, amazon_id: str, m3_id: str, marketplace: str | None = None) -> None:
        """Record that Amazon ``amazon_id`` is M3 ``m3_id``. Repeating the same mapping is a
        no-op; mapping the Amazon id to another M3 id raises `IdMapConflict`."""
        try:
            with self._tx() as conn:
                conn.execute(
                    id_maps.insert().values(
                        kind=kind,
                        amazon_id=amazon_id,
                        m3_id=m3_id,
                        marketplace=marketplace,
                        created_at=self._clock(),
                    )
                )
            return
        except IntegrityError:
            existing = self.m3_id_for(kind, amazon_id)
        if existing != m3_id:
            raise IdMapConflict(kind, amazon_id, str(existing), m3_id)

    def m3_id_for(self, kind: str, amazon_id: str) -> str | None:
        with self._tx() as conn:
            return conn.execute(
                sa.select(id_maps.c.m3_id).where(id_maps.c.kind == kind, id_maps.c.amazon_id == amazon_id)
            ).scalar()

    def amazon_id_for(self, kind: str, m3_id: str) -> str | None:
        """The Amazon id mapped to ``m3_id``; `AmbiguousIdMap` when several are."""
        with self._tx() as conn:
            found = list(
                conn.execute(
                    sa.select(id_maps.c.amazon_id)
                    .where(id_maps.c.kind == kind, id_maps.c.m3_id == m3_id)
                    .order_by(id_maps.c.amazon_id)
                ).scalars()
            )
        if len(found) > 1:
            raise AmbiguousIdMap(kind, m3_id, found)
        return found[0] if found else None

    def all_ids(self, kind: str, *, marketplace: str | None = None) -> dict[str, str]:
        """Every mapping of ``kind`` (of one marketplace, when given) as {amazon_id: m3_id}."""
        query = sa.select(id_maps.c.amazon_id, id_maps.c.m3_id).where(id_maps.c.kind == kind)
        if marketplace is not None:
            query = query.where(id_maps.c.marketplace == marketplace)
        with self._tx() as conn:
            return {amazon_id: m3_id for amazon_id, m3_id in conn.execute(query)}

    # -- listing states ---------------------------------------------------------------

    def listing_states(self, marketplace_id: str | None = None) -> dict[tuple[str, str], ListingState]:
        """Every recorded listing (of one marketplace, when given) by (SKU, marketplace id)."""
        query = sa.select(listing_states)
        if marketplace_id is not None:
            query = query.where(listing_states.c.marketplace_id == marketplace_id)
        with self._tx() as conn:
            found = [_listing_state(row) for row in conn.execute(query).mappings()]
        return {(s.sku, s.marketplace_id): s for s in found}

    def record_listing_state(self, state: ListingState) -> ListingState:
        """Insert or overwrite the row of (``state.sku``, ``state.marketplace_id``); returns it
        as stored (``updated_at`` set)."""
        now = self._clock()
        values = {
            "product_type": state.product_type,
            "fulfillment": state.fulfillment,
            "quantity": state.quantity,
            "price": None if state.price is None else str(state.price),
            "currency": state.currency,
            "accepted_at": state.accepted_at,
            "submission_id": state.submission_id,
            "readback_due": state.readback_due,
            "updated_at": now,
        }
        key = (listing_states.c.sku == state.sku, listing_states.c.marketplace_id == state.marketplace_id)
        for _ in range(3):
            with self._tx() as conn:
                if conn.execute(listing_states.update().where(*key).values(**values)).rowcount == 1:
                    return replace(state, updated_at=now)
            try:
                with self._tx() as conn:
                    conn.execute(
                        listing_states.insert().values(sku=state.sku, marketplace_id=state.marketplace_id, **values)
                    )
                return replace(state, updated_at=now)
            except IntegrityError:
                continue  # another writer inserted it first: update it
        raise StateStoreError(f"could not record listing {state.sku!r} in {state.marketplace_id}: kept losing races")

    # -- dead letters -----------------------------------------------------------------

    def add_dead_letter(
        self, flow: str, entity: str, entity_key: str, payload: Any, error: str | BaseException
    ) -> DeadLetter:
        """Record a failed entity. ``payload`` is JSON-able (or JSON text) and is redacted
        again here. When an open letter for (flow, entity, entity_key) exists, its attempts go
        up and its error and last_seen are updated instead."""
        payload_json = _dump_json(_parse_json_text(payload))
        error_text = redact_text(str(error))
        open_letter = sa.and_(
            dead_letters.c.flow == flow,
            dead_letters.c.entity == entity,
            dead_letters.c.entity_key == entity_key,
            dead_letters.c.status == "open",
        )
        for _ in range(3):
            now = self._clock()
            with self._tx() as conn:
                bumped = conn.execute(
                    dead_letters.update()
                    .where(open_letter)
                    .values(
                        attempts=dead_letters.c.attempts + 1,
                        last_seen=now,
                        error=error_text,
                        payload=payload_json,
                    )
                ).rowcount
            if bumped:
                break
            try:
                with self._tx() as conn:
                    conn.execute(
                        dead_letters.insert().values(
                            flow=flow,
                            entity=entity,
                            entity_key=entity_key,
                            payload=payload_json,
                            error=error_text,
                            attempts=1,
                            first_seen=now,
                            last_seen=now,
                            status="open",
                        )
                    )
                break
            except IntegrityError:
                continue  # another process opened it first: bump that one
        else:
            raise StateStoreError(f"could not record dead letter {flow}/{entity}/{entity_key}: kept losing races")
        with self._tx() as conn:
            row = conn.execute(sa.select(dead_letters).where(open_letter)).mappings().one()
        return _dead_letter(row)

    def list_dead_letters(self, flow: str | None = None, status: DeadLetterStatus | None = "open") -> list[DeadLetter]:
        """Dead letters in id order; ``status=None`` lists every status."""
        query = sa.select(dead_letters).order_by(dead_letters.c.id)
        if flow is not None:
            query = query.where(dead_letters.c.flow == flow)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        with self._tx() as conn:
            return [_dead_letter(row) for row in conn.execute(query).mappings()]

    def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(dead_letters).where(dead_letters.c.id == letter_id)).mappings().first()
        return None if row is None else _dead_letter(row)

    def resolve_dead_letter(self, letter_id: int, status: Literal["replayed", "discarded"]) -> DeadLetter:
        """Close an open letter as replayed or discarded."""
        if status not in ("replayed", "discarded"):
            raise ValueError(f"a dead letter is resolved as 'replayed' or 'discarded', not {status!r}")
        with self._tx() as conn:
            updated = conn.execute(
                dead_letters.update()
                .where(
                    dead_letters.c.id == letter_id,
                    dead_letters.c.status == "open",
                )
                .values(status=status, last_seen=self._clock())
            ).rowcount
        letter = self.get_dead_letter(letter_id)
        if letter is None:
            raise DeadLetterNotFound(letter_id)
        if not updated:
            raise DeadLetterNotOpen(letter_id, letter.status)
        return letter


def _switch_to_wal(cursor: Any) -> None:
    """WAL mode (kept in the file). Switching needs the database to itself and SQLite answers
    "database is locked" at once, without its busy timeout, while another process opens it too
    (several workers starting on a new store): wait as the busy timeout would."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IDS_PER_QUERY):
        yield values[start : start + _IDS_PER_QUERY]


def _schema_version(conn: Connection) -> int:
    """The highest step recorded in ``m3sync_schema``; 0 without that table (an empty database,
    or a store from before schema versions: its steps look for what is there)."""
    if not sa.inspect(conn).has_table(schema_versions.name):
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(schema_versions.c.version), 0))).scalar_one())


def _process_start(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot, Linux); "" where /proc is not available,
    "zombie" for a process that has exited but not been reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    if len(fields) < 20:
        return ""
    return "zombie" if fields[0] == "Z" else fields[19]


def process_owner(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or ``pid``): who holds a claim. The start time tells
    a reused pid from the claimer."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` ran on this host and that process no longer runs. Owners on other
    hosts (or unknown) are never declared gone: their claims age out instead."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    return bool(start) and _process_start(pid) not in ("", start)


def _parse_json_text(payload: Any) -> Any:
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except ValueError:
            return payload
    return payload


def _posting(row: sa.RowMapping) -> Posting:
    return Posting(
        posting_key=row["posting_key"],
        kind=row["kind"],
        source=row["source"],
        status=row["status"],
        target_ref=row["target_ref"],
        content_hash=row["content_hash"],
        source_hash=row["source_hash"],
        detail=None if row["detail"] is None else json.loads(row["detail"]),
        error=row["error"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        owner=row.get("owner"),
        audit=None if row.get("audit") is None else json.loads(row["audit"]),
    )


def _catalog_listing(row: sa.RowMapping) -> CatalogListing:
    return CatalogListing(
        sku=row["sku"],
        marketplace_id=row["marketplace_id"],
        product_type=row["product_type"],
        accepted=json.loads(row["accepted"]),
        updated_at=row["updated_at"],
    )


def _dead_letter(row: sa.RowMapping) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        flow=row["flow"],
        entity=row["entity"],
        entity_key=row["entity_key"],
        payload=json.loads(row["payload"]),
        error=row["error"],
        attempts=row["attempts"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        status=row["status"],
    )


def _listing_state(row: sa.RowMapping) -> ListingState:
    return ListingState(
        sku=row["sku"],
        marketplace_id=row["marketplace_id"],
        product_type=row["product_type"],
        fulfillment=row["fulfillment"],
        quantity=row["quantity"],
        price=None if row["price"] is None else Decimal(row["price"]),
        currency=row["currency"],
        accepted_at=row["accepted_at"],
        submission_id=row["submission_id"],
        readback_due=bool(row["readback_due"]),
        updated_at=row["updated_at"],
    )
