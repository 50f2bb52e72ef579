"""An M3 sandbox of a test's own, configured through HOME/config.toml as a live M3 would be.

Configuring the sandbox through config.toml (not --sandbox) exercises the path a real
installation takes: the .ionapi file, the profile, the state store under HOME.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.m3.app import create_app
from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
from sandbox.server import serve_in_thread


@pytest.fixture
def live_m3(tmp_path: Path):
    """An M3 sandbox of the test's own, and a home whose config.toml points at it."""
    data = tmp_path / "m3"
    server = serve_in_thread(lambda url: create_app(data, url, tenant="TST"))
    home = tmp_path / "home"
    home.mkdir()
    ionapi = write_ionapi(home / "m3.ionapi", server.base_url, "TST", sandbox_credentials(data))

    def configure(profile: str) -> Path:
        (home / "config.toml").write_text(
            f'[m3]\nionapi = "{ionapi}"\nprofile = "{profile}"\ncono = 100\ndivi = "AAA"\n'
        )
        return home

    yield server, configure, ionapi
    server.stop()
