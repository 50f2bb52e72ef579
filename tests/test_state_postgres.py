"""The state store on PostgreSQL beyond what tests/test_state_store.py runs on both backends: a
server that cannot be reached, the command line's one line for it, and the settlement flow
posting with ``[state] url`` on PostgreSQL, exactly once across runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _cli import m3sync
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture
from _postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

from connectors.settings import ConfigurationError, check_state_url
from connectors.state import ListingState, StateStore, StateStoreUnavailable

# Port 1 on the loopback: nothing listens there, so the connection is refused at once.
UNREACHABLE = "postgresql+psycopg://sync:S3cret-pw@127.0.0.1:1/m3sync"


def test_an_unreachable_server_is_one_line_naming_it_without_the_password() -> None:
    with pytest.raises(StateStoreUnavailable) as down:
        StateStore(UNREACHABLE)
    message = str(down.value)
    assert message.startswith("cannot open the state database postgresql+psycopg://***@127.0.0.1:1/m3sync: ")
    assert '"127.0.0.1", port 1 failed: Connection refused' in message
    assert "S3cret" not in message and "\n" not in message
    with pytest.raises(ConfigurationError) as checked:
        check_state_url(UNREACHABLE, "[state] url")
    assert str(checked.value).startswith(
        "[state] url postgresql+psycopg://***@127.0.0.1:1/m3sync: cannot connect to the database (connection failed:"
    )
    check_state_url(UNREACHABLE, reachable=False)  # the URL and its driver are fine


def test_a_database_missing_on_a_running_server_is_named(postgres_server: str) -> None:
    url = sa.make_url(postgres_server).set(database="no_such_db").render_as_string(hide_password=False)
    with pytest.raises(StateStoreUnavailable, match='database "no_such_db" does not exist'):
        StateStore(url)


def test_times_are_utc_whatever_the_servers_time_zone(postgres_url: str) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    database = sa.make_url(postgres_url).database
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # the server answers in New York time on new connections
        conn.exec_driver_sql(f"ALTER DATABASE {database} SET timezone TO 'America/New_York'")
    engine.dispose()
    stockholm = timezone(timedelta(hours=2))
    with StateStore(postgres_url, clock=lambda: datetime(2024, 10, 25, 14, 0, tzinfo=stockholm)) as store:
        store.claim_posting("K", kind="voucher", source="us.tsv", content_hash="h")
        posting = store.get_posting("K")
        assert posting is not None and posting.created_at == datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
        assert posting.created_at.tzinfo is UTC
        # The compare-and-set of a reclaim matches the stored time to the microsecond.
        store.mark_failed("K", "refused")
        assert store.claim_posting("K", kind="voucher", source="us.tsv", content_hash="h").won
    naive = StateStore(postgres_url, clock=lambda: datetime(2024, 10, 25, 12, 0))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        naive.set_watermark("w", "1")
    naive.close()


def test_command_line_says_in_one_line_when_the_server_is_down_or_its_driver_missing(
    prefect_api_url: str, tmp_path: Path, us_v2_tsv: Path
) -> None:
    down = (
        "m3sync: M3SYNC_STATE_URL postgresql+psycopg://***@127.0.0.1:1/m3sync: cannot connect to the database "
        '(connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused'
    )
    no_driver = (
        "m3sync: M3SYNC_STATE_URL postgresql+psycopg2://***@db/m3sync needs the psycopg2 database driver, "
        "which is not installed: pip install 'psycopg2-binary' (or write postgresql+psycopg:// to use psycopg 3)"
    )
    cases = {UNREACHABLE: down, "postgresql+psycopg2://sync:S3cret-pw@db/m3sync": no_driver}
    for url, expected in cases.items():
        run = m3sync(
            "settle",
            str(us_v2_tsv),
            "--dry-run",
            "--home",
            str(tmp_path / "home"),
            api_url=prefect_api_url,
            env={"M3SYNC_STATE_URL": url},
        )
        assert run.code == 2, run.stderr
        (line,) = run.stderr.splitlines()
        assert line.startswith(expected), line
        assert "S3cret" not in run.stderr and run.stdout == ""


def test_settlement_flow_posts_once_with_its_state_on_postgresql(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, postgres_url: str
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write(f'[state]\nurl = "{postgres_url}"\n')
    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))
    (posted,) = first["settlements"]
    assert posted["status"] == "posted", posted["reasons"]
    (voucher,) = posted["journal"]["vouchers"]
    assert voucher["key"] == "AMZ-10000000001-202410"

    rerun = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))
    assert rerun["settlements"][0]["status"] == "duplicate"
    assert httpx.get(f"{server.base_url}/sandbox/state").json()["vouchers"] == 1
    # The state is in PostgreSQL, none under HOME.
    assert not (home / "state.sqlite").exists()
    with StateStore(postgres_url) as store:
        posting = store.get_posting("AMZ-10000000001-202410")
        assert posting is not None and posting.status == "posted" and posting.attempts == 1
        assert posting.target_ref == voucher["m3_ref"]


def _everything(store: StateStore) -> tuple:
    """What the store answers about the rows the migration test writes."""
    return (
        store.list_postings(),
        store.get_watermark("orders:ATVPDKIKX0DER"),
        store.all_ids("order"),
        store.list_dead_letters(status=None),
        store.get_reversal("S1", 1),
        store.settlements_of_orders(["111-A", "111-B"]),
        store.catalog_listings(),
    )


def test_state_migrate_copies_a_sqlite_store_into_postgresql_once(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from _state_fixtures import FakeClock

    from flows.cli import build_parser

    home, clock = tmp_path / "home", FakeClock()
    with StateStore.for_home(home, clock=clock) as old:
        old.claim_posting("AMZ-1-202410", kind="voucher", source="us.tsv", content_hash="h1", audit={"sha256": "ab"})
        clock.advance(minutes=1)
        old.mark_posted("AMZ-1-202410", "AAA/2024/AZ/1", detail={"lines": 9})
        old.claim_posting("AMZ-2-202410", kind="voucher", source="us.tsv", content_hash="h2", source_hash="s2")
        old.mark_in_doubt("AMZ-2-202410", "GLS200MI/Add timed out")
        old.set_watermark("orders:ATVPDKIKX0DER", "2024-10-01T00:00:00Z")
        old.map_id("order", "112-0000001-0000001", "1000001", marketplace="ATVPDKIKX0DER")
        replayed = old.add_dead_letter("orders", "order", "A1", {"n": 1}, "timeout")
        old.resolve_dead_letter(replayed.id, "replayed")
        old.add_dead_letter("orders", "order", "A1", {"n": 2}, "HTTP 500")
        old.record_reversal("S1", 1, {"AMZ-S1-202410": "V1"}, {"AMZ-S1-202410-R1": "V2"}, "2024-11-01")
        old.record_settled_orders("S1", ["111-A", "111-B"])
        old.record_catalog_listing("HOM-10001", "ATVPDKIKX0DER", "HOME", {"item_name": "h1"})
        old.record_listing_state(ListingState("HOM-1", "ATVPDKIKX0DER", "HOME", "MFN", 5, Decimal("9.99"), "USD"))
        before = _everything(old)
    assert len(before[0]) == 2 and len(before[3]) == 2  # what is compared below is there

    args = build_parser().parse_args(["state", "migrate", "--to", postgres_url, "--home", str(home)])
    assert args.handler(args) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(
        "copied 2 postings, 1 watermarks, 1 id_maps, 2 dead_letters, 1 reversals, 2 settled_orders, "
        "1 catalog_listings, 1 listing_states "
        f"from sqlite:///{home / 'state.sqlite'} to postgresql+psycopg://***@/m3sync_test_"
    )
    with StateStore(postgres_url) as new:
        assert _everything(new) == before
        assert new.settlement_version("S1") == 2
        assert new.listing_states()[("HOM-1", "ATVPDKIKX0DER")].price == Decimal("9.99")
        # The copied letters kept their ids 1 and 2; PostgreSQL numbers the next one after them.
        assert new.add_dead_letter("shipments", "order", "A2", {}, "no tracking").id == 3
        in_doubt = new.claim_posting("AMZ-2-202410", kind="voucher", source="us.tsv", content_hash="h2")
        assert in_doubt.won and in_doubt.previous is not None and in_doubt.previous.status == "in_doubt"

    assert args.handler(args) == 2  # a second copy finds the rows of the first
    (refused,) = capsys.readouterr().err.splitlines()
    assert refused.startswith("m3sync: the state database postgresql+psycopg://***@/m3sync_test_")
    assert refused.endswith(
        "already holds rows (postings, watermarks, id_maps, dead_letters, reversals, settled_orders, "
        "catalog_listings, listing_states): "
        "copy only into a new, empty database"
    )
    missing = build_parser().parse_args(["state", "migrate", "--to", postgres_url, "--home", str(tmp_path / "none")])
    assert missing.handler(missing) == 2
    assert "no state database to copy: " in capsys.readouterr().err
