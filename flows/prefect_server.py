"""Prefect's ephemeral API server, started while the command is still importing.

Without ``PREFECT_API_URL``, a flow run starts a temporary Prefect server (a uvicorn
subprocess) and waits until it answers: 3-8 s on 2 cores during which the command does
nothing, after importing the whole server application (FastAPI, SQLAlchemy, every API
route: 1.3 s, and ~0.1 GB) into the command's own process only to launch it.

``start_ephemeral_server`` launches the same subprocess Prefect would
(``prefect.server.api.server.SubprocessASGIServer``: the same uvicorn command and
environment) first thing, waits for its health check in a background thread while this
process imports Prefect, pandas, scikit-learn and the flow, and hands its URL to the flow
run through ``temporary_settings``. The server stops when the command exits, as Prefect's
does. With ``PREFECT_API_URL`` configured (a running server, Prefect Cloud) or ephemeral
mode disabled, no server is used and Prefect behaves as always: when the environment or a
Prefect settings file may configure one, Prefect's settings are loaded before deciding;
otherwise the server is started before Prefect is even imported, and stopped again if
Prefect's settings then say it is not needed. If the early start fails, the flow run starts
Prefect's own server and reports any error itself.

The command line keeps Prefect's files (this server's SQLite database among them) under
``HOME/prefect`` unless ``PREFECT_HOME`` is set (``keep_prefect_home_in``), so the database
outlives the command and is migrated once: Prefect runs Alembic's upgrade at every start, which
costs about a second of CPU even when there is nothing to do, so the server is started with
migrations off when the database is already at the installed Prefect's newest migration.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# How the two settings that decide look in profiles.toml / .env (PREFECT_API_URL,
# PREFECT_SERVER_EPHEMERAL_ENABLED) and in prefect.toml / pyproject.toml ([api] url,
# [server.ephemeral] enabled), lower-cased.
_SETTING_KEYS = (
    "api_url",
    "ephemeral_enabled",
    "[api]",
    "api.url",
    "[tool.prefect.api]",
    "ephemeral]",
    "ephemeral.enabled",
)
_PORT_IN_USE = 3  # uvicorn's exit code when the port was taken between our check and its bind


class EphemeralServer:
    """An early-started ephemeral Prefect server; ``url`` is set once it answered its health check."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> EphemeralServer:
        if _server_maybe_configured() and not _ephemeral_server_needed():
            return self
        self._thread = threading.Thread(target=self._start, name="prefect-ephemeral-server", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Until the server answered, or its start failed (then ``url`` stays None)."""
        if self._thread is None:
            return
        self._thread.join()
        if self.url is not None and not _ephemeral_server_needed():  # started before the settings were read
            self.stop()
            self.url = None

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Flow runs inside talk to this server (when it started)."""
        self.wait()
        if self.url is None:
            yield
            return
        from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

        # No UI link: the ephemeral server serves no UI and stops with the command (Prefect's own
        # ephemeral runs print none either; the UI URL would otherwise be derived from the API URL).
        ui = {} if PREFECT_UI_URL.value() else {PREFECT_UI_URL: ""}
        with temporary_settings(updates={PREFECT_API_URL: self.url, **ui}):
            yield

    def stop(self) -> None:
        self._stopped = True  # the starting thread launches nothing more
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _start(self) -> None:
        try:
            self.url = self._launch_and_wait()
        except Exception:  # noqa: BLE001 - the flow run falls back to Prefect's own start
            self.url = None
        if self.url is None:
            self.stop()

    def _launch_and_wait(self) -> str | None:
        # The standard library only: this thread runs while the main thread imports Prefect, and
        # two threads importing one package's modules at once can deadlock.
        port = _free_port()
        self.process = _launch(port)
        atexit.register(self.stop)
        deadline = time.monotonic() + _startup_timeout()
        while time.monotonic() < deadline and not self._stopped:
            code = self.process.poll() if self.process is not None else -1
            if code == _PORT_IN_USE:
                port = _free_port()
                self.process = _launch(port)
                continue
            if code is not None:
                return None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as answer:
                    if answer.status == 200:
                        return f"http://127.0.0.1:{port}/api"
            except OSError:  # refused while it boots (URLError and timeouts are OSErrors)
                pass
            time.sleep(0.1)
        return None


def _server_maybe_configured() -> bool:
    """Whether the environment or a Prefect settings file may set an API URL or turn ephemeral
    mode off (a cheap look, no Prefect import; when in doubt Prefect's own settings decide)."""
    if any(name in os.environ for name in ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_ENABLED", "PREFECT_PROFILE")):
        return True
    for settings_file in (_profiles_path(), Path("prefect.toml"), Path(".env"), Path("pyproject.toml")):
        try:
            text = settings_file.read_text(encoding="utf-8", errors="replace").lower()
        except OSError:
            continue
        if any(key in text for key in _SETTING_KEYS):
            return True
    return False


def _prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()


def _profiles_path() -> Path:
    """Prefect's profiles file (``PREFECT_PROFILES_PATH``, else in ``PREFECT_HOME``)."""
    return Path(os.environ.get("PREFECT_PROFILES_PATH", str(_prefect_home() / "profiles.toml"))).expanduser()


def _ephemeral_server_needed() -> bool:
    """Prefect's own decision (its settings: environment, profile, settings files)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


def _startup_timeout() -> float:
    # Prefect's setting, read from the environment (the command line sets a default before this).
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20"))
    except ValueError:
        return 20.0


def prefect_database_is_current(prefect_package: Path) -> bool:
    """Whether the temporary server's database is Prefect's default one (``PREFECT_HOME/prefect.db``,
    nothing configures another) and already at the newest of the installed Prefect's migrations.
    When in doubt, False: Prefect then migrates as always."""
    if any(name.startswith(("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")) for name in os.environ):
        return False
    for settings_file in (_profiles_path(), Path("prefect.toml"), Path(".env"), Path("pyproject.toml")):
        try:
            if "database" in settings_file.read_text(encoding="utf-8", errors="replace").lower():
                return False
        except OSError:
            continue
    database = _prefect_home() / "prefect.db"
    if not database.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as connection:
            versions = {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return False
    head = _migration_heads(prefect_package / "server" / "database" / "_migrations" / "versions" / "sqlite")
    return bool(head) and versions == head


def _migration_heads(folder: Path) -> set[str]:
    """The Alembic revisions in ``folder`` no other revision follows (read as text: no Alembic import)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in folder.glob("*.py"):
        text = script.read_text(encoding="utf-8", errors="replace")
        revision = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", text, re.MULTILINE)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.MULTILINE)
        if revision:
            revisions.add(revision.group(1))
        if down:
            followed.update(re.findall(r"['\"](\w+)['\"]", down.group(1)))
    return revisions - followed


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _launch(port: int) -> subprocess.Popen[bytes]:
    """The command and environment of ``SubprocessASGIServer._run_uvicorn_command`` (Prefect 3).

    Prefect adds the settings set in its process; before Prefect is imported there are none
    but the environment's, which the server inherits (and it reads the same profile and
    settings files itself)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("prefect is not installed")
    app_dir = Path(list(spec.submodule_search_locations)[0]).parent
    environment = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    if prefect_database_is_current(app_dir / "prefect"):
        # Prefect runs Alembic's upgrade at every start (~1 s of CPU loading every migration
        # script, for nothing once the database is at the installed Prefect's head).
        environment["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(app_dir),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env=environment,
    )


def keep_prefect_home_in(home: Path, *, create: bool = False) -> None:
    """Prefect's files (its temporary server's database, results, logs) under ``HOME/prefect``
    unless ``PREFECT_HOME`` is set; before Prefect is imported, which reads it once. The user's
    Prefect profiles (``~/.prefect/profiles.toml``: a configured server) still count. The folder
    is made now if ``home`` exists or ``create`` says the command makes it anyway (Prefect
    makes no parents, and warns)."""
    if "PREFECT_HOME" in os.environ:
        return
    profiles = Path("~/.prefect/profiles.toml").expanduser()
    if "PREFECT_PROFILES_PATH" not in os.environ and profiles.is_file():
        os.environ["PREFECT_PROFILES_PATH"] = str(profiles)
    folder = home / "prefect"
    if create or home.is_dir():
        with contextlib.suppress(OSError):  # Prefect then says it could not create it
            folder.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(folder)


def start_ephemeral_server() -> EphemeralServer:
    """Start the ephemeral server now if a flow run would start one; see the module docstring."""
    return EphemeralServer().start()
