"""``m3sync settle`` as a user without a Prefect server runs it: the command starts Prefect's
ephemeral API server early (flows/prefect_server.py), uses it, and stops it when it exits.

The other CLI tests pass a running server's URL (tests/_cli.py), so only this one goes the
ephemeral way. One subprocess run (several seconds: the server boots), with its own
PREFECT_HOME so the user's Prefect database is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS_ARGS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a subprocess that boots its own Prefect server


def _processes_with_prefect_home(prefect_home: Path) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("PREFECT_HOME") == str(prefect_home):
                found.append(" ".join(process.cmdline()[:6]))
        except psutil.Error:
            continue
    return found


def test_settle_without_a_prefect_server_starts_one_uses_it_and_stops_it(us_v2_tsv: Path, tmp_path: Path) -> None:
    settlement = tmp_path / "us_v2_usd.tsv"
    shutil.copy(us_v2_tsv, settlement)
    prefect_home = tmp_path / "prefect"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("M3SYNC_", "PREFECT_", "SP_API_DEFAULT"))}
    environment.update(
        {
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "settle",
            str(settlement),
            "--sandbox",
            "--dry-run",
            # The fixture's orders are in no M3 here: without a choice the dry run reports the
            # settlement as held (tests/test_invoice_holds_cli.py); this test is about Prefect.
            *POST_WITHOUT_M3_DOCUMENTS_ARGS,
            "--json",
            "--report",
            str(tmp_path / "run.xlsx"),
            "--home",
            str(tmp_path / "home"),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    [entry] = document["settlements"]
    assert (entry["settlement_id"], entry["status"], entry["total_amount"]) == ("10000000001", "dry_run", "31.81")
    # 20 lines: every one on the workbook's Lines sheet, no side file.
    assert document["report"] == str(tmp_path / "run.xlsx") and document["lines_file"] is None
    assert (tmp_path / "run.xlsx").is_file() and not (tmp_path / "run-lines.csv").exists()
    # The flow ran against a Prefect server using this PREFECT_HOME's database ...
    assert (prefect_home / "prefect.db").is_file()
    # ... started by the command before the flow run (Prefect's own start, the fallback, logs this) ...
    assert "Starting temporary server" not in done.stderr
    # ... that served no UI, so no "View at" link points at it, and that is gone now.
    assert "View at" not in done.stderr
    assert _processes_with_prefect_home(prefect_home) == []
