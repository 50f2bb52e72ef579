"""Fixtures every test area shares. Area-specific fixtures live beside their tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Before Prefect is imported: a loaded 2-core machine needs more than the default 20 s to start
# a Prefect server, and there is no network for telemetry.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


# A real-format V2 settlement (US, USD) the tests' expected figures are worked out from by hand.
US_V2_FIXTURE = REPO / "tests" / "fixtures" / "settlements" / "us_v2_usd.tsv"


@pytest.fixture(scope="session")
def us_v2_tsv() -> Path:
    return US_V2_FIXTURE


@pytest.fixture(scope="session")
def spapi_models() -> Path:
    """Amazon's official SP-API models; the only thing tests need from outside the repository."""
    from sandbox.spapi.models import HOW_TO_GET_MODELS, models_dir

    folder = models_dir()
    if folder is None:
        pytest.skip(HOW_TO_GET_MODELS)
    return folder


@pytest.fixture(autouse=True)
def _no_default_marketplace(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-amazon-sp-api silently replaces any marketplace argument with this (python-amazon-sp-api's base client).
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` (seconds each) every test that runs a flow or the CLI under the session's
    Prefect server, and the notebooks; other slow tests carry ``@pytest.mark.slow`` themselves.
    ``pytest -m "not slow"`` is the quick loop (CONTRIBUTING.md)."""
    for item in items:
        if "prefect_api_url" in getattr(item, "fixturenames", ()) or item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
