"""One real ``prefect server start`` for the whole test session, for tests that need what
Prefect's in-process test harness does not give: automations that fire, work pools,
deployments, workers, ``prefect deploy`` (import the fixture: ``from _prefect_server import
prefect_server  # noqa: F401 - a fixture``).

The server listens on a free 127.0.0.1 port with its own PREFECT_HOME in a temporary folder
(so it never touches ``~/.prefect``), serves no UI (the API is what tests use; it starts
faster), and is stopped with its whole process group when the session ends. Test modules
import the fixture; they all get the same server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT_SECONDS = 120  # a fresh database is migrated first: 8-12 s idle, more on a loaded machine


@dataclass(frozen=True)
class PrefectServer:
    api_url: str  # http://127.0.0.1:PORT/api
    home: Path  # the server's PREFECT_HOME
    log: Path  # its stdout and stderr

    def environment(self, **extra: str) -> dict[str, str]:
        """This process's environment for a subprocess that talks to this server (no M3SYNC_*
        settings of the developer's, no other Prefect server or profile)."""
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("M3SYNC_", "SP_API_DEFAULT", "PREFECT_API_", "PREFECT_PROFILE"))
        }
        environment.update(
            {
                "PREFECT_API_URL": self.api_url,
                "PREFECT_HOME": str(self.home / "client"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
        )
        environment.update(extra)
        return environment


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:  # refused while it boots (URLError and timeouts are OSErrors)
        return False


@contextlib.contextmanager
def running_prefect_server(folder: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port, PREFECT_HOME under ``folder``; stopped on exit."""
    home = folder / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    log = folder / "prefect-server.log"
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, log)
    environment = {k: v for k, v in server.environment().items() if k != "PREFECT_API_URL"}
    environment["PREFECT_HOME"] = str(home)
    prefect = Path(sys.executable).with_name("prefect")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown stops uvicorn and services too
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not _answers(server.api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"prefect server start did not answer on {server.api_url}:\n{tail}")
            time.sleep(0.2)
        yield server
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, then SIGKILL to whatever of it is left (uvicorn's children too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


_session_server: PrefectServer | None = None


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> PrefectServer:
    """One ``prefect server start`` for every test of the session that asks for it, whichever
    modules import this fixture (each import is a fixture of its own to pytest: the server is
    this module's, started by the first, stopped when the session ends)."""
    global _session_server
    if _session_server is None:
        stack = contextlib.ExitStack()
        _session_server = stack.enter_context(running_prefect_server(tmp_path_factory.mktemp("prefect-server")))
        request.config.add_cleanup(stack.close)
    return _session_server
