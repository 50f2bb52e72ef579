"""The settlement run's artifacts and where its workbook goes (issue 13, item 4).

Flows run in process under the session's Prefect server, against an M3 sandbox configured as a
live M3 (``live_m3``), or the embedded sandbox for a run from Amazon; the artifacts are read
back from Prefect's API by flow run.

The reconciled settlement is written below, by hand, with two AMZUS orders M3 invoices:

    ORDER_OFF  Principal 100.00, Commission -15.00   M3 invoice  97.50: settled 100.00, difference 2.50
    ORDER_OK   Principal  50.00, Commission  -7.50   M3 invoice  50.00: matched
                                                     total 127.50

so the one order the exceptions name is ORDER_OFF, with the difference 2.50 USD. The capped one
sells CAP_ORDERS orders M3 has no invoice for: held (the default), one exception row for the
gate and one per order.
"""

from __future__ import annotations

import importlib.util
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import fsspec
import openpyxl
import pytest
from _cli import m3sync
from _live_m3 import invoice_amzus_orders, live_m3  # noqa: F401 - a fixture

from connectors.settings import ConfigurationError, load_settings
from flows.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from reconciliation.workbook import WorkbookError
from tests._settlement_builders import V2_HEADER as HEADER

ORDER_OFF, ORDER_OK = "111-0000000-8100001", "111-0000000-8100002"
CAP_ORDERS = 205  # above the artifact's 200 rows
_ids = count(1)


def _settlement(folder: Path, rows: list[tuple[str, str, str, str]], total: str) -> tuple[str, Path]:
    """An Amazon.com settlement of Order rows (order id, amount type, description, amount)."""
    sid = f"2300000000{next(_ids)}"
    head = f"{sid}\t2024-10-09 14:28:38 UTC\t2024-10-23 14:28:39 UTC\t2024-10-25 14:28:39 UTC\t{total}\tUSD" + "\t" * 18
    lines = [
        f"{sid}\t\t\t\t\t\tOrder\t{order}\t{order}\t\tSHP\tAmazon.com\t{amount_type}\t{description}\t{amount}\t"
        f"AFN\t2024-10-18\t2024-10-18 02:58:02 UTC\t{order[-7:]}\t\t\tSKU-1\t1\t"
        for order, amount_type, description, amount in rows
    ]
    path = folder / f"{sid}.tsv"
    path.write_text("\n".join([HEADER, head, *lines]) + "\n", encoding="utf-8")
    return sid, path


def _configure(home: Path, extra: str) -> None:
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write(extra)


def _run(**parameters: Any) -> tuple[dict, Any]:
    """The flow's document and its flow run id."""
    from flows.contract import run_document
    from flows.settlement import settlement_reconciliation

    state = settlement_reconciliation(**parameters, return_state=True)
    return run_document(state), state.state_details.flow_run_id


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The flow run's artifacts by key (a table's data as rows)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {}
    for artifact in found:
        data = artifact.data
        by_key[artifact.key] = (artifact.type, json.loads(data) if artifact.type == "table" else data)
    return by_key


def _sheet_rows(workbook: bytes, sheet: str = "Exceptions") -> list[dict[str, Any]]:
    rows = list(openpyxl.load_workbook(io.BytesIO(workbook), data_only=True)[sheet].iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def _link(url: str) -> str:
    """A link artifact as Prefect stores it: markdown, the workbook's name linking to its URL."""
    return f"[{url.rsplit('/', 1)[1]}]({url})"


def test_exceptions_name_settlement_order_and_difference_and_the_workbook_is_uploaded_and_linked(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    server, configure, ionapi = live_m3
    home = configure("brief")
    location = f"memory://m3sync-{uuid.uuid4().hex}/reports"
    _configure(home, f'\n[reports]\nlocation = "{location}"\n\n[m3sync]\nenvironment = "Artifacts Test"\n')
    invoice_amzus_orders(server.base_url, ionapi, [(ORDER_OFF, "97.50", "20241015"), (ORDER_OK, "50.00", "20241015")])
    sid, path = _settlement(
        tmp_path,
        [
            (ORDER_OFF, "ItemPrice", "Principal", "100.00"),
            (ORDER_OFF, "ItemFees", "Commission", "-15.00"),
            (ORDER_OK, "ItemPrice", "Principal", "50.00"),
            (ORDER_OK, "ItemFees", "Commission", "-7.50"),
        ],
        "127.50",
    )
    document, run_id = _run(files=[str(path)], home=str(home))

    (entry,) = document["settlements"]
    assert entry["status"] == "posted", entry["reasons"]
    assert entry["reconciliation"]["amount_mismatch"] == 1 and entry["reconciliation"]["matched"] == 1
    # The workbook went to the configured location, named as ever; the document says where.
    url = document["report"]
    assert url.startswith(f"{location}/settlements-") and url.endswith(".xlsx"), url
    assert document["nothing_new"] is False and "report_error" not in document
    filesystem = fsspec.filesystem("memory")
    workbook = filesystem.cat_file(url)
    assert not list((home / "reports").glob("*.xlsx"))  # uploaded, not left on this machine

    artifacts = _artifacts(run_id)
    assert set(artifacts) == {
        f"settlement-{kind}-artifacts-test" for kind in ("summary", "exceptions", "anomalies", "workbook")
    }
    assert artifacts["settlement-workbook-artifacts-test"] == ("markdown", _link(url))
    assert url in artifacts["settlement-summary-artifacts-test"][1]
    rows = artifacts["settlement-exceptions-artifacts-test"][1]
    (off,) = [r for r in rows if r["order, fee type or file"] == ORDER_OFF]
    assert (off["settlement"], off["kind"], off["amount"]) == (sid, "Amount differs from the M3 invoice", "2.50 USD")
    assert "difference 2.50 USD" in off["what"]
    assert not [r for r in rows if ORDER_OK in r["order, fee type or file"]]
    # One source: the artifact lists the workbook's Exceptions rows, in its order.
    sheet = _sheet_rows(workbook)
    assert [(r["settlement"], r["kind"], r["order, fee type or file"], r["next step"]) for r in rows] == [
        (r["Settlement ID"] or "", r["Kind"], r["Order, fee type or file"] or "", r["Next step"] or "") for r in sheet
    ]


def test_exceptions_beyond_the_cap_are_counted_and_a_block_location_takes_the_workbook(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    from prefect.filesystems import RemoteFileSystem

    server, configure, _ = live_m3
    home = configure("brief")
    basepath = f"memory://m3sync-{uuid.uuid4().hex}/block-reports"
    block = f"m3sync-reports-{uuid.uuid4().hex[:8]}"
    RemoteFileSystem(basepath=basepath).save(block)
    _configure(home, f'\n[reports]\nlocation = "block:remote-file-system/{block}"\n')
    orders = [f"111-0000000-{8200000 + n}" for n in range(1, CAP_ORDERS + 1)]
    sid, path = _settlement(tmp_path, [(order, "ItemPrice", "Principal", "10.00") for order in orders], "2050.00")
    document, run_id = _run(files=[str(path)], home=str(home))

    (entry,) = document["settlements"]
    assert entry["status"] == "held"
    assert document["report"] == f"{basepath}/{document['report'].rsplit('/', 1)[1]}"
    workbook = fsspec.filesystem("memory").cat_file(document["report"])
    artifacts = _artifacts(run_id)
    assert artifacts["settlement-workbook-live"] == ("markdown", _link(document["report"]))  # no environment: live
    rows = artifacts["settlement-exceptions-live"][1]
    # The gate that held it, then one row per order M3 has no invoice for: 1 + 205, 200 shown.
    assert len(rows) == 201
    assert rows[0]["settlement"] == sid and rows[0]["kind"] == "Settlement held"
    missing = rows[1:200]
    assert [r["order, fee type or file"] for r in missing] == orders[:199]
    assert {(r["kind"], r["amount"]) for r in missing} == {("Order without an M3 invoice", "10.00 USD")}
    assert rows[200]["kind"] == "and 6 more in the workbook (Exceptions sheet)"
    assert len(_sheet_rows(workbook)) == 1 + CAP_ORDERS


def test_a_failed_upload_keeps_the_workbook_and_the_document_says_so(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path
) -> None:
    from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS
    from prefect.filesystems import LocalFileSystem

    from flows.contract import exit_code

    server, configure, _ = live_m3
    home = configure("brief")
    block = f"m3sync-unreachable-{uuid.uuid4().hex[:8]}"
    LocalFileSystem(basepath="/dev/null/reports").save(block)  # no folder can be made there
    _configure(home, f'\n[reports]\nlocation = "block:local-file-system/{block}"\n')
    document, run_id = _run(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))

    assert document["settlements"][0]["status"] == "posted"  # what was posted stays posted
    (kept,) = (home / "reports").glob("settlements-*.xlsx")
    assert document["report"] == str(kept)
    assert document["report_error"].startswith(f"workbook not uploaded to Prefect block local-file-system/{block}")
    assert document["report_error"].endswith(f"it is kept at {kept}")
    assert exit_code(document) == EXIT_FAILED
    assert _artifacts(run_id)["settlement-workbook-live"] == ("markdown", f"[{kept.name}]({kept.as_uri()})")


def test_nothing_new_from_amazon_writes_no_workbook_and_says_since_when(prefect_api_url: str, tmp_path: Path) -> None:
    from connectors.state import StateStore
    from flows.contract import exit_code
    from flows.settlement_steps import SETTLEMENT_REPORTS_WATERMARK
    from sandbox.runtime import start_sandbox

    home = tmp_path / "home"
    start_sandbox(home, orders=20).stop()  # a small world, seeded once
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # after every seeded report
    with StateStore.for_home(home) as state:
        state.set_watermark(SETTLEMENT_REPORTS_WATERMARK, since.isoformat())  # the last run saw everything
    document, run_id = _run(from_amazon=True, sandbox=True, home=str(home))

    assert document["settlements"] == [] and document["nothing_new"] is True and document["report"] is None
    assert document["report_skipped"].startswith(f"nothing new since {since:%Y-%m-%d %H:%M:%S} UTC: ")
    assert exit_code(document) == EXIT_OK
    assert not (home / "reports").exists() or not list((home / "reports").iterdir())
    artifacts = _artifacts(run_id)
    assert set(artifacts) == {"settlement-summary-sandbox"}
    kind, text = artifacts["settlement-summary-sandbox"]
    assert kind == "markdown" and f"Nothing new since {since:%Y-%m-%d %H:%M:%S} UTC" in text


def test_report_locations_are_checked_before_anything_is_posted(tmp_path: Path) -> None:
    from flows.reports import report_target

    home = tmp_path / "home"
    home.mkdir()

    def target(location: str | None, report: str | None = None):
        (home / "config.toml").write_text(f'[reports]\nlocation = "{location}"\n' if location else "")
        return report_target(home, report, load_settings(home), now=datetime(2026, 11, 29, 6, 30, tzinfo=UTC))

    name = "settlements-20261129-063000.xlsx"
    assert target(None).path == home / "reports" / name and target(None).destination is None
    assert target("books").path == home / "books" / name  # relative to HOME
    assert target(f"file://{tmp_path}/by-url").path == tmp_path / "by-url" / name
    remote = target("memory://bucket/prefix")
    assert remote.path == Path(name) and remote.destination.url == "memory://bucket/prefix"
    assert target("memory://bucket/prefix", str(tmp_path / "mine.xlsx")).path == tmp_path / "mine.xlsx"  # --report
    with pytest.raises(ConfigurationError, match=r"\[reports\] location in .*nope://x is not a location fsspec"):
        target("nope://x")
    if importlib.util.find_spec("s3fs") is None:  # S3 needs s3fs (or prefect-aws's block): said before posting
        with pytest.raises(ConfigurationError, match=r"s3://bucket/prefix needs a package .*Install s3fs"):
            target("s3://bucket/prefix")
    with pytest.raises(ConfigurationError, match="must name a Prefect block as block:<block type>/<name>"):
        target("block:just-a-name")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(WorkbookError, match="cannot create its folder"):
        target(str(tmp_path / "a-file" / "sub"))
    (home / "config.toml").write_text('[m3sync]\nenvironment = "Prod EU"\n')
    assert load_settings(home).environment == "prod-eu"


def test_artifact_environments_never_mix_sandbox_and_live(tmp_path: Path) -> None:
    from flows.artifacts import artifact_environment

    def environment(configured: str | None, sandbox: bool) -> str:
        (tmp_path / "config.toml").write_text(f'[m3sync]\nenvironment = "{configured}"\n' if configured else "")
        return artifact_environment(load_settings(tmp_path), sandbox)

    assert (environment(None, False), environment(None, True)) == ("live", "sandbox")
    assert (environment("Production", False), environment("Production", True)) == ("production", "production-sandbox")
    with pytest.raises(ConfigurationError, match="kept for sandbox runs"):
        environment("my sandbox", False)


def test_cli_refuses_a_bad_location_in_one_line_before_posting(prefect_api_url: str, tmp_path: Path, us_v2_tsv) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[reports]\nlocation = "nope://reports"\n')
    run = m3sync("settle", str(us_v2_tsv), "--sandbox", "--home", str(home), api_url=prefect_api_url)
    assert run.code == EXIT_INVALID, (run.stdout, run.stderr)
    (line,) = run.stderr.strip().splitlines()
    assert "[reports] location in" in line and "nope://reports is not a location fsspec can write to" in line
    assert not (home / "sandbox").exists()  # stopped before the sandbox (and M3) was even started
