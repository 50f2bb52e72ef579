"""Prefect's ephemeral API server, started while the command is still importing.

Without ``PREFECT_API_URL``, a flow run starts a temporary Prefect server (a uvicorn
subprocess) and waits until it answers: 3-8 s on 2 cores during which the command does
nothing, after importing the whole server application (FastAPI, SQLAlchemy, every API
route: 1.3 s, and ~0.1 GB) into the command's own process only to launch it.

``start_ephemeral_server`` launches the same subprocess Prefect would
(``prefect.server.api.server.SubprocessASGIServer``: the same uvicorn command, environment
and settings) as soon as the command knows it needs one, waits for its health check in a
background thread while this process imports pandas, scikit-learn and the flow, and hands
its URL to the flow run through ``temporary_settings``. The server stops when the command
exits, as Prefect's does. With ``PREFECT_API_URL`` configured (a running server, Prefect
Cloud) or ephemeral mode disabled, nothing is started and Prefect behaves as always. If the
early start fails, the flow run starts Prefect's own server and reports any error itself.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

_PORT_IN_USE = 3  # uvicorn's exit code when the port was taken between our check and its bind


class EphemeralServer:
    """An early-started ephemeral Prefect server; ``url`` is set once it answered its health check."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "EphemeralServer":
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            return self
        self._thread = threading.Thread(target=self._start, name="prefect-ephemeral-server", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Until the server answered, or its start failed (then ``url`` stays None)."""
        if self._thread is not None:
            self._thread.join()

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
        import httpx
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        deadline = time.monotonic() + float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        port = _free_port()
        self.process = _launch(port)
        atexit.register(self.stop)
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                code = self.process.poll() if self.process is not None else -1
                if code == _PORT_IN_USE:
                    port = _free_port()
                    self.process = _launch(port)
                    continue
                if code is not None:
                    return None
                try:
                    if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                        return f"http://127.0.0.1:{port}/api"
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        return None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _launch(port: int) -> subprocess.Popen[bytes]:
    """The command and environment of ``SubprocessASGIServer._run_uvicorn_command`` (Prefect 3)."""
    import prefect
    from prefect.settings import get_current_settings

    environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                   "PREFECT__SERVER_FINAL": "1",
                   **get_current_settings().to_environment_variables(exclude_unset=True)}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env=environment)


def start_ephemeral_server() -> EphemeralServer:
    """Start the ephemeral server now if a flow run would start one; see the module docstring."""
    return EphemeralServer().start()
