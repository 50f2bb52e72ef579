"""Run an ASGI app on 127.0.0.1 in a background thread (tests, ``m3sync demo``).

The port is bound before the app is built so the app knows its own base URL: the SP-API
emulator must hand out absolute document URLs, and the client's Host header is wrong
(python-amazon-sp-api sends ``Host: 27.0.0.1:PORT`` for ``http://127.0.0.1:PORT``), so the URL
can never come from the request.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    base_url: str
    port: int
    app: Any
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def signal_exit(self) -> None:
        """Ask the server to stop without waiting (``stop`` waits)."""
        self._server.should_exit = True

    def stop(self) -> None:
        self.signal_exit()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then; without it every answer waits ~44 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve_in_thread(app_factory: Callable[[str], Any], host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Bind ``host:port`` (0 = a free port), build the app for its base URL, serve it in a thread."""
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    base_url = f"http://{host}:{actual_port}"
    app = app_factory(base_url)
    # log_config=None: uvicorn's default dictConfig takes the logging lock and flushes every handler,
    # Prefect's API log handler included, which waits on a lock Prefect's heartbeat thread holds
    # while it waits for the logging lock: a run starting the sandbox could hang.
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"sandbox-{actual_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox server on {base_url} did not start")
        time.sleep(0.01)
    return RunningServer(base_url=base_url, port=actual_port, app=app, _server=server, _thread=thread)
