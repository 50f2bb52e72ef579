"""Fixtures every test area shares. Area-specific fixtures live beside their tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Before Prefect is imported: a loaded 2-core machine needs more than the default 20 s to start
# a Prefect server (stack-notes.md §2), and there is no network for telemetry.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def shared_dir() -> Path:
    """The shared/ folder beside the clone (CI lays it there), or $M3SYNC_SHARED."""
    return Path(os.environ.get("M3SYNC_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared folder not found at {path} (set M3SYNC_SHARED)")
    return path


@pytest.fixture(autouse=True)
def _no_default_marketplace(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-amazon-sp-api silently replaces any marketplace argument with this (sp-api.md §7.8).
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)


@pytest.fixture(scope="session")
def prefect_api_url():
    """One temporary Prefect server for the session (flows in-process and CLI subprocesses).

    Flows in this process run under ``prefect_test_harness``; subprocesses get its API URL, so
    each ``m3sync`` process talks to it instead of starting an ephemeral server of its own.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield PREFECT_API_URL.value()
