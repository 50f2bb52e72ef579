"""The state store on real SQLite files and a real PostgreSQL (each test on both, unless it is
about one backend): schema and its versions, claims under concurrency, watermarks, id maps,
settled orders and dead letters."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from _postgres import postgres_server, postgres_url, state_url  # noqa: F401 - fixtures
from _state_fixtures import FakeClock, RaceError, race_in_fresh_process

from connectors.state import (
    SCHEMA_VERSION,
    AlreadyReversed,
    AmbiguousIdMap,
    DeadLetterNotFound,
    DeadLetterNotOpen,
    IdMapConflict,
    PostingNotFound,
    StateStore,
    StateStoreUnavailable,
)

TABLES = {
    "postings",
    "watermarks",
    "id_maps",
    "dead_letters",
    "reversals",
    "settled_orders",
    "catalog_listings",
    "listing_states",
    "m3sync_schema",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(state_url: str, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(state_url, clock=clock) as opened:
        yield opened


def raw_rows(url: str, sql: str) -> list[tuple]:
    """Rows of ``sql`` read past the store, as the database holds them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def claim(store: StateStore, key: str = "AMZ-1-202410", content_hash: str = "h1", **kwargs: object):
    return store.claim_posting(key, kind="voucher", source="us.tsv", content_hash=content_hash, **kwargs)


# -- schema ---------------------------------------------------------------------------


def test_for_home_creates_folder_and_wal_sqlite_file(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    StateStore.for_home(home).close()
    database = home / "state.sqlite"
    assert database.is_file()
    with sqlite3.connect(database) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert TABLES <= names


def test_schema_is_idempotent_and_shared_by_two_stores(state_url: str) -> None:
    first = StateStore(state_url)
    first.create_schema()
    first.create_schema()
    second = StateStore(state_url)  # creates the schema again on the same database
    first.set_watermark("orders", "2024-10-01T00:00:00Z")
    assert second.get_watermark("orders") == "2024-10-01T00:00:00Z"
    engine = sa.create_engine(state_url)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
    # Seven steps, each recorded once however often the store was opened.
    versions = [row[0] for row in raw_rows(state_url, "SELECT version FROM m3sync_schema ORDER BY version")]
    assert versions == [1, 2, 3, 4, 5, 6, 7]
    assert first.schema_version() == second.schema_version() == SCHEMA_VERSION == 7
    first.close()
    second.close()


def test_in_memory_url_works(clock: FakeClock) -> None:
    store = StateStore("sqlite://", clock=clock)
    store.set_watermark("w", "1")
    assert store.get_watermark("w") == "1"


# -- postings -------------------------------------------------------------------------


def test_first_claim_wins_and_a_second_sees_the_claimed_row(store: StateStore, clock: FakeClock) -> None:
    first = claim(store, content_hash="h1", source_hash="s1")
    assert first.won
    assert first.posting.status == "claimed"
    assert first.posting.attempts == 1
    assert first.posting.source_hash == "s1"
    assert first.posting.created_at == datetime(2024, 10, 25, 12, 0, tzinfo=UTC)

    again = claim(store, content_hash="h1")
    assert not again.won
    assert not again.content_changed
    changed = claim(store, content_hash="h2")
    assert not changed.won
    assert changed.content_changed
    assert changed.posting.content_hash == "h1"


def test_posted_claim_cannot_be_reclaimed(store: StateStore, clock: FakeClock) -> None:
    claim(store)
    clock.advance(minutes=5)
    posted = store.mark_posted("AMZ-1-202410", "AZ-000123", detail={"lines": 9, "access_token": "Atza|x"})
    assert posted.status == "posted"
    assert posted.target_ref == "AZ-000123"
    assert posted.detail == {"lines": 9, "access_token": "***"}
    assert posted.updated_at == datetime(2024, 10, 25, 12, 5, tzinfo=UTC)
    lost = claim(store, reclaim_claimed_after=timedelta(seconds=1))
    assert not lost.won
    assert lost.posting.target_ref == "AZ-000123"


def test_failed_claim_is_reclaimed(store: StateStore) -> None:
    claim(store)
    failed = store.mark_failed("AMZ-1-202410", RuntimeError("M3 said no to Bearer abcdefghijklmnop"))
    assert failed.status == "failed"
    assert failed.error == "M3 said no to Bearer ***"
    retry = claim(store, content_hash="h2")
    assert retry.won
    assert retry.posting.status == "claimed"
    assert retry.posting.attempts == 2
    assert retry.posting.content_hash == "h2"
    assert not claim(store).won  # and now it is claimed again


def test_stale_claim_is_reclaimed_only_after_the_given_age(store: StateStore, clock: FakeClock) -> None:
    claim(store)
    clock.advance(minutes=10)
    assert not claim(store, reclaim_claimed_after=timedelta(minutes=15)).won
    assert not claim(store).won  # no age given: a claim is never stale
    clock.advance(minutes=10)
    assert claim(store, reclaim_claimed_after=timedelta(minutes=15)).won


def test_in_doubt_and_submitted_claims_are_taken_over_with_what_came_before(
    store: StateStore, clock: FakeClock
) -> None:
    claim(store)
    clock.advance(seconds=30)
    doubt = store.mark_in_doubt("AMZ-1-202410", "M3 unavailable for GLS200MI/Add: timed out (Bearer abcdefghijkl)")
    assert (doubt.status, doubt.error) == ("in_doubt", "M3 unavailable for GLS200MI/Add: timed out (Bearer ***)")
    clock.advance(seconds=5)
    retry = claim(store)
    assert retry.won and retry.posting.status == "claimed" and retry.posting.attempts == 2
    # The winner learns the write was in doubt since 12:00:30, so it looks in M3 before writing.
    assert retry.previous is not None and retry.previous.status == "in_doubt"
    assert retry.previous.updated_at == datetime(2024, 10, 25, 12, 0, 30, tzinfo=UTC)
    submitted = store.mark_submitted("AMZ-1-202410", "AMZ-1-202410", detail={"settlement_id": "1"})
    assert (submitted.status, submitted.target_ref, submitted.detail) == (
        "submitted",
        "AMZ-1-202410",
        {"settlement_id": "1"},
    )
    confirm = claim(store)
    assert confirm.won and confirm.previous is not None and confirm.previous.status == "submitted"
    assert not claim(store).won  # claimed again: the confirming run owns it now
    assert claim(store).previous is None


def test_claim_of_a_process_that_is_gone_is_taken_over_at_once(state_url: str) -> None:
    import subprocess
    import sys

    script = (
        "import sys; from connectors.state import StateStore; "
        "s = StateStore(sys.argv[1]); "
        "s.claim_posting('AMZ-9-202410', kind='voucher', source='x.tsv', content_hash='h'); s.close()"
    )
    subprocess.run([sys.executable, "-c", script, state_url], check=True, timeout=60)  # claims, then exits
    with StateStore(state_url) as store:
        dead = store.get_posting("AMZ-9-202410")
        assert dead is not None and dead.status == "claimed" and dead.owner
        taken = store.claim_posting(
            "AMZ-9-202410",
            kind="voucher",
            source="x.tsv",
            content_hash="h",
            reclaim_claimed_after=timedelta(minutes=15),
        )  # no 15-minute wait
        assert taken.won and taken.previous is not None and taken.previous.owner == dead.owner
        # This process is alive: its claim is not taken over by another claimer.
        assert not store.claim_posting("AMZ-9-202410", kind="voucher", source="x.tsv", content_hash="h").won


def test_owner_liveness() -> None:
    import os
    import socket

    from connectors.state import owner_is_gone, process_owner

    me = process_owner()
    assert me.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert not owner_is_gone(me)
    assert owner_is_gone(f"{socket.gethostname()}:999999999:1")  # no such pid
    host, pid, start = me.split(":")
    if start:  # /proc: the same pid with another start time is another process
        assert owner_is_gone(f"{host}:{pid}:{int(start) + 1}")
    assert not owner_is_gone("another-host:1:1") and not owner_is_gone(None)  # elsewhere: ages out instead


def test_a_store_from_before_schema_versions_is_migrated_on_open(state_url: str) -> None:
    """The first release's postings table (no owner, no audit), no reversals, settled orders or
    version table: opening it runs every step, keeps its rows, and records version 7."""
    engine = sa.create_engine(state_url)
    timestamp, stamp = (
        ("DATETIME", "'2024-10-25 12:00:00.000000'")
        if engine.dialect.name == "sqlite"
        else ("TIMESTAMP WITH TIME ZONE", "'2024-10-25 12:00:00+00'")
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE postings (posting_key VARCHAR(255) PRIMARY KEY, kind VARCHAR(40) NOT NULL, "
            "source VARCHAR(1000) NOT NULL, status VARCHAR(16) NOT NULL, target_ref VARCHAR(255), "
            "content_hash VARCHAR(128) NOT NULL, source_hash VARCHAR(128), detail TEXT, error TEXT, "
            f"attempts INTEGER NOT NULL, created_at {timestamp} NOT NULL, updated_at {timestamp} NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO postings VALUES ('OLD', 'voucher', 'a.tsv', 'posted', 'AAA/2024/AZ/1', 'h', NULL, "
            f"NULL, NULL, 1, {stamp}, {stamp})"
        )
        conn.exec_driver_sql(
            "CREATE TABLE watermarks (name VARCHAR(255) PRIMARY KEY, value TEXT NOT NULL, "
            f"updated_at {timestamp} NOT NULL)"
        )
        conn.exec_driver_sql(f"INSERT INTO watermarks VALUES ('orders', '2024-10-01T00:00:00Z', {stamp})")
    engine.dispose()

    with StateStore(state_url) as store:
        assert store.schema_version() == 7
        old = store.get_posting("OLD")
        assert old is not None and (old.status, old.target_ref, old.owner, old.audit) == (
            "posted",
            "AAA/2024/AZ/1",
            None,
            None,
        )
        assert old.created_at == datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
        assert store.get_watermark("orders") == "2024-10-01T00:00:00Z"
        new = claim(store, "NEW", audit={"file_sha256": "ab"}).posting
        assert new.owner is not None and new.audit == {"file_sha256": "ab"}
        assert store.record_settled_orders("S1", ["111-A"]) == 1  # tables of later steps exist
        assert store.settlement_version("S1") == 1
    versions = raw_rows(state_url, "SELECT version, description FROM m3sync_schema ORDER BY version")
    assert [v for v, _ in versions] == [1, 2, 3, 4, 5, 6, 7]
    assert versions[1][1].startswith("postings.owner") and versions[4][1].startswith("settled_orders")


def test_a_store_at_an_older_version_runs_only_the_later_steps(state_url: str) -> None:
    StateStore(state_url).close()
    applied = raw_rows(state_url, "SELECT version, applied_at FROM m3sync_schema ORDER BY version")
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:  # back to version 3: before reversals and settled orders
        conn.exec_driver_sql("DROP TABLE listing_states")
        conn.exec_driver_sql("DROP TABLE catalog_listings")
        conn.exec_driver_sql("DROP TABLE settled_orders")
        conn.exec_driver_sql("DROP TABLE reversals")
        conn.exec_driver_sql("DELETE FROM m3sync_schema WHERE version > 3")
    engine.dispose()
    with StateStore(state_url) as store:
        assert store.schema_version() == 7
        assert store.record_settled_orders("S1", ["111-A"]) == 1
    again = raw_rows(state_url, "SELECT version, applied_at FROM m3sync_schema ORDER BY version")
    assert again[:3] == applied[:3]  # steps 1-3 were not applied again
    assert [v for v, _ in again[3:]] == [4, 5, 6, 7]


def test_a_store_at_a_newer_version_is_refused_in_one_line(state_url: str) -> None:
    StateStore(state_url).close()
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO m3sync_schema (version, description, applied_at) "
            "VALUES (8, 'from a later m3sync', '2026-01-01 00:00:00')"
        )
    engine.dispose()
    with pytest.raises(StateStoreUnavailable) as refused:
        StateStore(state_url)
    message = str(refused.value)
    assert "schema version 8, newer than this m3sync's 7: upgrade m3-amazon-sync" in message
    assert "\n" not in message


def test_marking_an_unknown_posting_raises(store: StateStore) -> None:
    with pytest.raises(PostingNotFound, match="NOPE"):
        store.mark_posted("NOPE", "1")
    with pytest.raises(PostingNotFound):
        store.mark_failed("NOPE", "x")


def test_list_get_and_forget_postings(store: StateStore, clock: FakeClock) -> None:
    claim(store, "V1")
    clock.advance(seconds=1)
    store.claim_posting("O1", kind="order", source="orders", content_hash="o")
    clock.advance(seconds=1)
    claim(store, "V2")
    store.mark_posted("V2", "AZ-2")
    assert [p.posting_key for p in store.list_postings()] == ["V1", "O1", "V2"]
    assert [p.posting_key for p in store.list_postings(kind="voucher")] == ["V1", "V2"]
    assert [p.posting_key for p in store.list_postings(kind="voucher", status="posted")] == ["V2"]
    assert store.get_posting("O1").kind == "order"
    assert store.forget_posting("V1") is True
    assert store.forget_posting("V1") is False
    assert store.get_posting("V1") is None
    assert claim(store, "V1").won  # forgotten: may be posted again


def test_threads_racing_for_one_key_have_exactly_one_winner(store: StateStore) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait()
        result = claim(store, "RACE", content_hash=f"h{index}")
        with lock:
            outcomes.append((f"h{index}", result.won))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [content for content, won in outcomes if won]
    assert len(outcomes) == workers
    assert len(winners) == 1
    assert store.get_posting("RACE").content_hash == winners[0]


def race(url: str, action: str, workers: int = 4) -> list:
    """``workers`` processes opening a fresh database at once (so they also race to create the
    schema) and doing ``action`` together; what each reported. "fork" starts in milliseconds
    (no re-import); each child opens its own store after the fork."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=race_in_fresh_process, args=(url, action, i, barrier, results)) for i in range(workers)
    ]
    for process in processes:
        process.start()
    reported = [results.get(timeout=120) for _ in range(workers)]
    for process in processes:
        process.join(30)
    failures = [value for _, value in reported if isinstance(value, RaceError)]
    assert not failures, failures
    assert [process.exitcode for process in processes] == [0] * workers
    return [value for _, value in sorted(reported)]


def test_processes_racing_for_one_key_have_exactly_one_winner(state_url: str) -> None:
    outcomes = race(state_url, "claim")
    winners = [content for content, won, _ in outcomes if won]
    assert len(winners) == 1
    # every process saw the winner's row
    assert {row_hash for _, _, row_hash in outcomes} == {winners[0]}
    with StateStore(state_url) as store:
        assert store.get_posting("RACE").attempts == 1


def test_processes_racing_for_one_watermark_leave_one_of_their_values(state_url: str) -> None:
    indexes = race(state_url, "watermark")
    assert sorted(indexes) == [0, 1, 2, 3]  # none failed
    with StateStore(state_url) as store:
        assert store.get_watermark("orders:ATVPDKIKX0DER") in {f"2024-10-0{i + 1}T00:00:00Z" for i in range(4)}
    assert raw_rows(state_url, "SELECT COUNT(*) FROM watermarks") == [(1,)]


def test_processes_dead_lettering_one_entity_open_one_letter_with_every_attempt(state_url: str) -> None:
    letter_ids = race(state_url, "dead_letter")
    assert len(set(letter_ids)) == 1
    with StateStore(state_url) as store:
        (letter,) = store.list_dead_letters(status=None)
    assert letter.id == letter_ids[0] and letter.attempts == 4 and letter.status == "open"
    assert letter.payload in [{"try": i} for i in range(4)]


def test_processes_recording_overlapping_settled_orders_record_each_once(state_url: str) -> None:
    # Processes 0-3 record orders 0-9, 1-10, 2-11, 3-12: 13 orders in all.
    assert sum(race(state_url, "settled_orders")) == 13
    assert raw_rows(state_url, "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM settled_orders") == [(13, 13)]


def test_processes_reversing_one_version_record_it_once(state_url: str) -> None:
    assert sorted(race(state_url, "reversal")) == [False, False, False, True]
    with StateStore(state_url) as store:
        assert store.settlement_version("S9") == 2


# -- reversals ------------------------------------------------------------------------


def test_a_settlement_version_is_reversed_once(store: StateStore, clock: FakeClock) -> None:
    assert store.settlement_version("S1") == 1
    assert store.get_reversal("S1", 1) is None
    recorded = store.record_reversal("S1", 1, {"AMZ-S1-202410": "V1"}, {"AMZ-S1-202410-R1": "V9"}, "2024-11-01")
    assert (recorded.settlement_id, recorded.version, recorded.accounting_date) == ("S1", 1, "2024-11-01")
    assert (recorded.reversed, recorded.reversal) == ({"AMZ-S1-202410": "V1"}, {"AMZ-S1-202410-R1": "V9"})
    assert recorded.created_at == datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
    assert store.settlement_version("S1") == 2 and store.settlement_version("S2") == 1
    with pytest.raises(AlreadyReversed, match="settlement S1 version 1 is already reversed"):
        store.record_reversal("S1", 1, {}, {}, "2024-11-02")
    assert store.get_reversal("S1", 1) == recorded
    clock.advance(days=1)
    store.record_reversal("S1", 2, {"AMZ-S1-202410-v2": "V3"}, {"AMZ-S1-202410-v2-R1": "V4"}, "2024-11-02")
    assert store.settlement_version("S1") == 3


# -- watermarks -----------------------------------------------------------------------


def test_watermarks(store: StateStore) -> None:
    assert store.get_watermark("orders:ATVPDKIKX0DER") is None
    store.set_watermark("orders:ATVPDKIKX0DER", "2024-10-01T00:00:00Z")
    store.set_watermark("orders:A1PA6795UKMFR9", "2024-09-01T00:00:00Z")
    store.set_watermark("orders:ATVPDKIKX0DER", "2024-10-02T00:00:00Z")
    assert store.get_watermark("orders:ATVPDKIKX0DER") == "2024-10-02T00:00:00Z"
    assert store.get_watermark("orders:A1PA6795UKMFR9") == "2024-09-01T00:00:00Z"
    with pytest.raises(TypeError, match="orders"):
        store.set_watermark("orders", datetime(2024, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]  # the wrong type on purpose


# -- id maps --------------------------------------------------------------------------


def test_id_maps(store: StateStore) -> None:
    store.map_id("order", "112-0000001-0000001", "1000001", marketplace="ATVPDKIKX0DER")
    store.map_id("order", "112-0000001-0000001", "1000001")  # same again: no-op
    store.map_id("order", "302-0000002-0000002", "1000002")
    store.map_id("customer", "112-0000001-0000001", "AMZUS")
    assert store.m3_id_for("order", "112-0000001-0000001") == "1000001"
    assert store.m3_id_for("order", "999") is None
    assert store.amazon_id_for("order", "1000002") == "302-0000002-0000002"
    assert store.amazon_id_for("order", "AMZUS") is None
    assert store.all_ids("order") == {"112-0000001-0000001": "1000001", "302-0000002-0000002": "1000002"}
    assert store.all_ids("customer") == {"112-0000001-0000001": "AMZUS"}

    with pytest.raises(IdMapConflict) as conflict:
        store.map_id("order", "112-0000001-0000001", "1000009")
    assert (conflict.value.existing_m3_id, conflict.value.new_m3_id) == ("1000001", "1000009")
    assert store.m3_id_for("order", "112-0000001-0000001") == "1000001"


def test_reverse_lookup_of_a_shared_m3_id_is_ambiguous(store: StateStore) -> None:
    store.map_id("customer", "buyer-a", "AMZUS")
    store.map_id("customer", "buyer-b", "AMZUS")
    with pytest.raises(AmbiguousIdMap, match="buyer-a, buyer-b"):
        store.amazon_id_for("customer", "AMZUS")


# -- dead letters ---------------------------------------------------------------------


def test_settled_orders_are_recorded_once_and_found_by_order(store: StateStore) -> None:
    assert store.record_settled_orders("S1", ["111-A", "111-B", "111-A"]) == 2
    assert store.record_settled_orders("S1", ["111-B", "111-C"]) == 1  # 111-B was recorded before
    assert store.record_settled_orders("S2", ["111-B"]) == 1  # one order, two settlements
    assert store.settlements_of_orders(["111-B", "111-C", "111-Z"]) == [
        ("111-B", "S1"),
        ("111-B", "S2"),
        ("111-C", "S1"),
    ]
    assert store.settlements_of_orders([]) == []


def test_settled_orders_beyond_one_query_of_ids(store: StateStore) -> None:
    """25,000 orders: three IN (...) queries of at most 10,000 ids each, every order found once."""
    orders = [f"111-{n:07d}" for n in range(25_000)]
    assert store.record_settled_orders("S1", orders) == 25_000
    found = store.settlements_of_orders(orders[::2] + ["999-0000000"])
    assert len(found) == 12_500 and found[0] == ("111-0000000", "S1") and found[-1] == ("111-0024998", "S1")


def test_dead_letter_payload_and_error_are_redacted(store: StateStore) -> None:
    payload = {
        "AmazonOrderId": "112-0000001-0000001",
        "BuyerInfo": {"BuyerEmail": "jane@marketplace.amazon.com"},
        "ShippingAddress": {"Name": "Jane Doe", "AddressLine1": "1 Main St"},
        "headers": {"x-amz-access-token": "Atza|IwEBsecret"},
        "note": "mail jane@example.com",
    }
    letter = store.add_dead_letter(
        "orders", "order", "112-0000001-0000001", payload, ValueError("rejected with refresh_token=Atzr|leaked")
    )
    assert letter.payload == {
        "AmazonOrderId": "112-0000001-0000001",
        "BuyerInfo": "***",
        "ShippingAddress": "***",
        "headers": {"x-amz-access-token": "***"},
        "note": "mail ***",
    }
    assert letter.error == "rejected with refresh_token=***"
    ((stored_payload, stored_error),) = raw_rows(store.url, "SELECT payload, error FROM dead_letters")
    assert "jane" not in stored_payload.lower() and "IwEB" not in stored_payload
    assert "leaked" not in stored_error


def test_dead_letter_repeats_increment_then_resolve(store: StateStore, clock: FakeClock) -> None:
    first = store.add_dead_letter("orders", "order", "A1", {"n": 1}, "timeout")
    assert (first.attempts, first.status, first.payload) == (1, "open", {"n": 1})
    clock.advance(minutes=3)
    second = store.add_dead_letter("orders", "order", "A1", '{"n": 2}', "HTTP 500")  # JSON text works too
    assert second.id == first.id
    assert second.attempts == 2
    assert second.error == "HTTP 500"
    assert second.payload == {"n": 2}
    assert second.first_seen == datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
    assert second.last_seen == datetime(2024, 10, 25, 12, 3, tzinfo=UTC)
    other = store.add_dead_letter("shipments", "order", "A1", {}, "no tracking")
    assert other.id != first.id

    assert [d.id for d in store.list_dead_letters()] == [first.id, other.id]
    assert [d.id for d in store.list_dead_letters(flow="orders")] == [first.id]

    resolved = store.resolve_dead_letter(first.id, "replayed")
    assert resolved.status == "replayed"
    assert store.get_dead_letter(first.id).status == "replayed"
    assert [d.id for d in store.list_dead_letters(flow="orders")] == []
    assert [d.id for d in store.list_dead_letters(flow="orders", status="replayed")] == [first.id]
    with pytest.raises(DeadLetterNotOpen, match="replayed"):
        store.resolve_dead_letter(first.id, "discarded")

    # the same entity failing again after a replay opens a new letter
    reopened = store.add_dead_letter("orders", "order", "A1", {"n": 3}, "again")
    assert reopened.id not in (first.id, other.id)
    assert reopened.attempts == 1
    assert len(store.list_dead_letters(flow="orders", status=None)) == 2


def test_dead_letter_resolution_errors(store: StateStore) -> None:
    with pytest.raises(DeadLetterNotFound):
        store.resolve_dead_letter(404, "discarded")
    assert store.get_dead_letter(404) is None
    letter = store.add_dead_letter("orders", "order", "A1", {}, "x")
    with pytest.raises(ValueError, match="'open'"):
        store.resolve_dead_letter(letter.id, "open")  # type: ignore[arg-type]  # the wrong value on purpose
