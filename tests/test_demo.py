"""``m3sync demo`` end to end on a small world: orders into M3, settlements posted, workbook written."""

from __future__ import annotations

from pathlib import Path

import httpx
from _cli import m3sync
from openpyxl import load_workbook

from sandbox.runtime import start_sandbox


def test_demo_posts_every_seeded_settlement_and_writes_the_workbook(prefect_api_url: str, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    run = m3sync("demo", "--home", str(home), "--orders", "60", "--seed", "2", api_url=prefect_api_url)
    assert run.code == 0, (run.stdout[-2000:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr
    out = run.stdout
    # Every refund is credited in M3 (as M3 does when order sync books the return), so no
    # settlement is held for want of a credit note.
    assert "M3 orders:" in out and "Settlements: 16 processed: 16 posted" in out, out
    assert "invalid" not in out, out
    workbooks = list((home / "reports").glob("settlements-*.xlsx"))
    assert len(workbooks) == 1
    book = load_workbook(workbooks[0], read_only=True)
    assert {"Summary", "Journal", "Reconciliation", "Anomalies"} <= set(book.sheetnames)
    with start_sandbox(home) as env:
        state = httpx.get(f"{env.m3.base_url}/sandbox/state").json()
    assert state["invoices"] == state["orders"] + state["credit_notes"] and state["credit_notes"] > 0
    posted = out.count(" posted ")
    assert posted >= 1 and state["vouchers"] >= posted

    # A second run: every order is already in M3 and no settlement report is new since the
    # watermark the first run stored, so nothing is created or posted again.
    again = m3sync("demo", "--home", str(home), api_url=prefect_api_url)
    assert again.code == 0, again.stderr[-2000:]
    assert "0 created" in again.stdout and "Settlements: 0 processed" in again.stdout, again.stdout
    with start_sandbox(home) as env:
        again_state = httpx.get(f"{env.m3.base_url}/sandbox/state").json()
    assert (again_state["vouchers"], again_state["credit_notes"]) == (state["vouchers"], state["credit_notes"])
