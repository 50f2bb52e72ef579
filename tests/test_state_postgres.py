"""The state store on PostgreSQL beyond what tests/test_state_store.py runs on both backends: a
server that cannot be reached, the command line's one line for it, and the settlement flow
posting with ``[state] url`` on PostgreSQL, exactly once across runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _cli import m3sync
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture
from _postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

from connectors.settings import ConfigurationError, check_state_url
from connectors.state import StateStore, StateStoreUnavailable

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
