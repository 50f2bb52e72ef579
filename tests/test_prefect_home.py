"""``m3sync demo`` and ``m3sync sandbox`` keep Prefect's files under HOME/prefect (unless
PREFECT_HOME is set), not in the user's ~/.prefect; the sandbox world then moves on."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import prefect
import pytest

from flows.demo import NEXT_STEP
from flows.prefect_server import keep_prefect_home_in, prefect_database_is_current
from sandbox.runtime import WORLD_ENDS_DAYS_AGO, start_sandbox

REPO = Path(__file__).resolve().parents[1]


def _m3sync(*args: str, user_home: Path) -> subprocess.CompletedProcess[str]:
    # As a user runs it: no Prefect server configured (the command starts a temporary one),
    # no PREFECT_HOME, and a home directory of its own to see what lands in ~.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "M3SYNC_", "SP_API_DEFAULT"))}
    environment.update({"HOME": str(user_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=420,
    )


def test_demo_keeps_prefect_under_home_and_the_world_moves_on(tmp_path: Path) -> None:
    user_home, home = tmp_path / "user", tmp_path / "m3sync-home"
    user_home.mkdir()
    with start_sandbox(home, seed=1, orders=20, time_scale=10.0):  # Amazon's usage plans x10, kept in the home
        pass
    demo = _m3sync("demo", "--home", str(home), "--orders", "20", "--seed", "1", user_home=user_home)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert demo.stdout.splitlines()[-1] == NEXT_STEP
    assert (home / "prefect" / "prefect.db").is_file()  # the temporary server's database
    assert list(user_home.iterdir()) == []  # nothing in ~ (no ~/.prefect)
    _next_start_skips_the_migrations_of(home / "prefect", tmp_path)

    # Two weeks on: each of the four marketplaces closes one more 14-day window.
    advance = _m3sync("sandbox", "--advance", "2w", "--home", str(home), user_home=user_home)
    assert advance.returncode == 0, advance.stderr[-3000:]
    lines = advance.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["US", "DE", "FR", "UK"]
    assert all(" 1 settlement created (" in line for line in lines[:4]), lines
    # The world's clock never passes today: it is now 30 - 14 days behind, so three weeks are refused.
    behind = WORLD_ENDS_DAYS_AGO - 14
    too_far = _m3sync("sandbox", "--advance", "3w", "--home", str(home), user_home=user_home)
    assert too_far.returncode == 2 and too_far.stdout == ""
    assert too_far.stderr.splitlines() == [
        f"m3sync: the sandbox world's clock is at {date.today() - timedelta(days=behind)}: 21 days on would pass "
        f"today ({date.today()}); advance at most {behind} days"
    ]
    assert list(user_home.iterdir()) == []


def _next_start_skips_the_migrations_of(prefect_home: Path, tmp_path: Path) -> None:
    """The database Prefect itself just migrated counts as current (our reading of its migration
    scripts finds the head Alembic wrote); anything else leaves the migrations to Prefect."""
    package = Path(prefect.__file__).parent
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("PREFECT_")]:
            patch.delenv(name)
        patch.chdir(tmp_path)  # no prefect.toml, .env or pyproject.toml configuring a database
        patch.setenv("PREFECT_HOME", str(prefect_home))
        assert prefect_database_is_current(package)
        patch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path}/other.db")
        assert not prefect_database_is_current(package)  # another database: Prefect checks it
        patch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL")
        older = tmp_path / "older"
        older.mkdir()
        shutil.copy(prefect_home / "prefect.db", older / "prefect.db")
        with sqlite3.connect(older / "prefect.db") as connection:
            connection.execute("UPDATE alembic_version SET version_num = '9725c1cbee35'")  # the first migration
        patch.setenv("PREFECT_HOME", str(older))
        assert not prefect_database_is_current(package)
        patch.setenv("PREFECT_HOME", str(tmp_path / "none"))
        assert not prefect_database_is_current(package)  # no database yet: Prefect creates it


def test_prefect_home_is_the_users_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    keep_prefect_home_in(tmp_path / "home")
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "mine")

    monkeypatch.delenv("PREFECT_HOME")
    keep_prefect_home_in(tmp_path / "home")
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "home" / "prefect")
    assert "PREFECT_PROFILES_PATH" not in os.environ
    assert not (tmp_path / "home").exists()  # not made unless asked
    monkeypatch.delenv("PREFECT_HOME")
    keep_prefect_home_in(tmp_path / "home", create=True)  # demo, sandbox and settle make it anyway
    assert (tmp_path / "home" / "prefect").is_dir()

    # A user's Prefect profiles (which may name their server) still count.
    profiles = tmp_path / "user" / ".prefect" / "profiles.toml"
    profiles.parent.mkdir(parents=True)
    profiles.write_text('active = "local"\n', encoding="utf-8")
    monkeypatch.delenv("PREFECT_HOME")
    keep_prefect_home_in(tmp_path / "home")
    assert os.environ["PREFECT_PROFILES_PATH"] == str(profiles)
