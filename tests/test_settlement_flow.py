"""The settlement flow under prefect_test_harness, against an M3 sandbox configured as a live M3.

Configuring the sandbox through HOME/config.toml (not --sandbox) exercises the path a real
installation takes: the .ionapi file, the profile, the state store under HOME.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
from _flow_runs import settle  # a Failed run's document (a held settlement fails the run)
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Client, M3Operations
from sandbox.generator import build_world


def _vouchers_in_m3(ionapi: Path, key: str, around) -> list:
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, divi="AAA")
        found = ops.find_voucher(key, around)
        return [] if found is None else [ops.read_voucher(found.divi, found.year, found.vono)]


def test_generated_world_posts_balanced_vouchers_equal_to_each_deposit(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    world = build_world(5, orders=160)
    files = []
    for document in world.settlement_documents():
        path = tmp_path / f"{document.settlement_id}.tsv"
        path.write_text(document.text, encoding="utf-8")
        files.append(str(path))
    result = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=files, home=str(home))

    entries = {e["settlement_id"]: e for e in result["settlements"]}
    assert len(entries) == len(world.settlement_documents())
    crossing = negative = 0
    for document in world.settlement_documents():
        entry = entries[document.settlement_id]
        assert entry["status"] == "posted", (document.settlement_id, entry["reasons"])
        assert Decimal(entry["total_amount"]) == document.total
        vouchers = entry["journal"]["vouchers"]
        months = {(d.year, d.month) for d in (document.start, document.end)}
        assert len(vouchers) >= 1
        crossing += len(vouchers) > 1 and len(months) > 1
        negative += document.total < 0
        deposit_voucher = max(vouchers, key=lambda v: v["date"])
        assert deposit_voucher["date"] == document.deposit_date.date().isoformat()
        for voucher in vouchers:
            assert voucher["debit"] == voucher["credit"]
            (posted,) = _vouchers_in_m3(
                ionapi, voucher["key"], __import__("datetime").date.fromisoformat(voucher["date"])
            )
            assert posted.debit == posted.credit == Decimal(voucher["debit"])
            assert len(posted.lines) == voucher["lines"]
        # The deposit line of the last part carries total-amount to the clearing (or payable) account.
        last = _vouchers_in_m3(
            ionapi, deposit_voucher["key"], __import__("datetime").date.fromisoformat(deposit_voucher["date"])
        )[0]
        clearing = [l.amount for l in last.lines if l.dimensions[0] in ("1930", "2450")]
        assert document.total in clearing or -document.total in clearing or document.total == 0
    assert crossing >= 1 and negative >= 1
    assert Path(result["report"]).is_file()


def test_drop_after_commit_and_rerun_never_post_twice(prefect_api_url: str, live_m3, us_v2_tsv: Path) -> None:
    from datetime import date

    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    fixture = str(us_v2_tsv)
    httpx.post(f"{server.base_url}/sandbox/faults", json={"drop_after_commit": 1, "transactions": ["GLS200MI/Add"]})
    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert first["settlements"][0]["status"] in ("posted", "duplicate"), first["settlements"][0]["reasons"]
    httpx.delete(f"{server.base_url}/sandbox/faults")
    second = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert second["settlements"][0]["status"] == "duplicate"
    (home / "state.sqlite").unlink()
    third = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert third["settlements"][0]["status"] == "duplicate"
    state = httpx.get(f"{server.base_url}/sandbox/state").json()
    assert state["vouchers"] == 1
    assert len(_vouchers_in_m3(ionapi, "AMZ-10000000001-202410", date(2024, 10, 25))) == 1


def test_run_publishes_summary_and_exception_artifacts(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    server, configure, ionapi = live_m3
    home = configure("brief")
    text = (us_v2_tsv).read_text()
    held = tmp_path / "held.tsv"
    held.write_text(text.replace("DigitalServicesFee", "BrandNewMysteryFee"))
    result = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[str(held)], home=str(home), report=str(tmp_path / "run.xlsx"))
    (entry,) = result["settlements"]
    assert entry["status"] == "held"
    assert any("BrandNewMysteryFee" in r for r in entry["reasons"])
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["settlement-summary-live", "settlement-exceptions-live"])
            )
        )
    # Other tests' runs share the session's Prefect server: this run's artifacts name its workbook.
    (summary,) = [a for a in artifacts if a.key == "settlement-summary-live" and str(tmp_path / "run.xlsx") in a.data]
    assert "10000000001" in summary.data and "held" in summary.data
    (exceptions,) = [
        a for a in artifacts if a.key == "settlement-exceptions-live" and a.flow_run_id == summary.flow_run_id
    ]
    assert "BrandNewMysteryFee" in json.dumps(exceptions.data)


def test_same_settlement_twice_in_one_run_posts_once(
    prefect_api_url: str, live_m3, us_v2_tsv: Path, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    text = (us_v2_tsv).read_bytes()
    first, second = tmp_path / "download-1.tsv", tmp_path / "download-2.tsv"
    first.write_bytes(text)
    second.write_bytes(text)
    result = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[str(first), str(second)], home=str(home))
    statuses = {e["source"]: e["status"] for e in result["settlements"]}
    assert statuses == {"download-1.tsv": "posted", "download-2.tsv": "duplicate"}
    assert httpx.get(f"{server.base_url}/sandbox/state").json()["vouchers"] == 1


def test_closed_period_holds_the_settlement_and_posts_nothing(prefect_api_url: str, live_m3, us_v2_tsv: Path) -> None:

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    closed = httpx.post(f"{server.base_url}/sandbox/periods", json={"divi": "AAA", "period": "202410", "closed": True})
    assert closed.status_code == 200, closed.text
    result = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[str(us_v2_tsv)], home=str(home))
    (entry,) = result["settlements"]
    assert entry["status"] == "held"
    assert any("AMZ-10000000001-202410" in r and "closed" in r.lower() for r in entry["reasons"]), entry["reasons"]
    assert httpx.get(f"{server.base_url}/sandbox/state").json()["vouchers"] == 0


def test_prefect_yaml_deployment_points_at_the_flow_with_valid_parameters() -> None:
    import inspect

    import yaml
    from prefect.flows import load_flow_from_entrypoint

    repo = Path(__file__).resolve().parents[1]
    document = yaml.safe_load((repo / "prefect.yaml").read_text())
    (deployment,) = [d for d in document["deployments"] if d["name"] == "settlement-reconciliation"]
    entry_file, _, function = deployment["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(repo / entry_file) + ":" + function)
    assert flow.name == "settlement-reconciliation"
    accepted = inspect.signature(flow.fn).parameters
    assert set(deployment["parameters"]) <= set(accepted)
    assert deployment["parameters"]["from_amazon"] is True and deployment["schedules"][0]["cron"]
    assert deployment["work_pool"]["name"]


def test_connections_survive_pickling_for_task_runners_in_other_processes(live_m3, tmp_path: Path) -> None:
    """Dask or process task runners pickle task arguments: a worker reconnects from the home."""
    import pickle
    import subprocess
    import sys

    from flows.connections import open_connections

    server, configure, ionapi = live_m3
    home = configure("brief")
    with open_connections(home, sandbox=False) as connections:
        payload = pickle.dumps(connections)
    assert b"sask" not in payload and b"password" not in payload  # only the home travels, no secrets
    worker = (
        "import pickle, sys\n"
        "from flows.connections import connected\n"
        "connections = connected(pickle.loads(sys.stdin.buffer.read()))\n"
        "print(connections.require_m3().get_customer('AMZUS').currency)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", worker],
        input=payload,
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "USD"
