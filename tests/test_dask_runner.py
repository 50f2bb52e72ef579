"""The settlement flow on prefect-dask's DaskTaskRunner (``[runner]`` in config.toml).

Several settlements settled in one run by the worker processes of a local multi-process Dask
cluster, against an M3 sandbox running in this process (workers reach it over HTTP) and the
home's SQLite state store (shared through its file): every voucher is in M3 exactly once, and
a rerun posts nothing. What travels to a worker is a ConnectionSpec; a worker that sees another
configuration refuses to connect.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture
from distributed import Client, LocalCluster

from connectors.m3 import M3Client
from connectors.settings import ConfigurationError, RunnerSettings, load_settings
from connectors.state import StateStore
from sandbox.generator import build_world


@pytest.fixture
def dask_cluster():
    """An existing Dask cluster of two single-threaded worker processes, and a client of it that
    records which tasks it ran. Not the process's default client: prefect-dask's runner would
    take that one's cluster instead of the configured address."""
    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.get_task_stream()  # starts the scheduler's record of computed tasks
        yield cluster, client


def _expected_voucher_keys(text: str, deposit: datetime) -> set[str]:
    """From the file: one voucher per month the lines were posted in, later months than the
    deposit's booked in the deposit's month (``AMZ-<settlement>-<YYYYMM>``)."""
    rows = [row for row in csv.DictReader(io.StringIO(text), delimiter="\t") if row["posted-date-time"]]
    cap = deposit.year * 100 + deposit.month
    keys = set()
    for row in rows:
        stamp = row["posted-date-time"]
        posted = datetime.strptime(stamp, "%d.%m.%Y %H:%M:%S UTC" if "." in stamp[:3] else "%Y-%m-%d %H:%M:%S UTC")
        keys.add(f"AMZ-{row['settlement-id']}-{min(posted.year * 100 + posted.month, cap)}")
    return keys


def _voucher_keys_in_m3(ionapi: Path) -> Counter[str]:
    """Every voucher the sandbox M3 holds, counted by its posting key (the start of its text)."""
    with M3Client.from_ionapi(ionapi) as client:
        records = client.execute(
            "GLS200MI",
            "LstVouchersByDt",
            {"DIVI": "AAA", "FDAT": date(2000, 1, 1), "TDAT": date(2099, 12, 31)},
            maxrecs=0,
        )
    return Counter(str(r["VTXT"]).split()[0] for r in records)


def _set_runner(home: Path, runner: str) -> None:
    config = home / "config.toml"
    text = config.read_text().split("[runner]")[0]
    config.write_text(f"{text}[runner]\n{runner}\n")


def test_settlements_post_exactly_once_from_several_dask_worker_processes(
    prefect_api_url: str, live_m3, dask_cluster, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    _server, configure, ionapi = live_m3
    cluster, client = dask_cluster
    home = configure("brief")
    _set_runner(home, f'dask_address = "{cluster.scheduler_address}"')
    documents = build_world(5, orders=160).settlement_documents()[:4]
    files, expected = [], {}
    for document in documents:
        path = tmp_path / f"{document.settlement_id}.tsv"
        path.write_text(document.text, encoding="utf-8")
        files.append(str(path))
        expected[document.settlement_id] = _expected_voucher_keys(document.text, document.deposit_date)
    all_keys = set().union(*expected.values())
    assert len(all_keys) >= 4

    started = time.time()
    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=files, home=str(home))

    entries = {e["settlement_id"]: e for e in first["settlements"]}
    assert {sid: e["status"] for sid, e in entries.items()} == dict.fromkeys(expected, "posted")
    for settlement_id, keys in expected.items():
        assert {v["key"] for v in entries[settlement_id]["journal"]["vouchers"]} == keys
    assert _voucher_keys_in_m3(ionapi) == Counter(all_keys)  # each voucher in M3 once
    with StateStore(load_settings(home).state_url) as state:
        postings = {p.posting_key: p for p in state.list_postings(kind="voucher")}
    assert set(postings) == all_keys
    assert {(p.status, p.attempts) for p in postings.values()} == {("posted", 1)}
    # Claimed and posted by the cluster's worker processes, more than one of them, not by this one.
    claimers = {int(str(p.owner).split(":")[1]) for p in postings.values()}
    workers = set(client.run(os.getpid).values())
    assert len(claimers) > 1 and claimers <= workers and os.getpid() not in claimers

    # Again, on a local cluster the run starts itself: everything is a duplicate, nothing is posted.
    assert len(client.get_task_stream(start=started)) == len(expected)  # one task per settlement
    _set_runner(home, "dask_workers = 2")
    started = time.time()
    second = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=files, home=str(home))
    assert client.get_task_stream(start=started) == ()  # not on the existing cluster: on the run's own

    assert {e["settlement_id"]: e["status"] for e in second["settlements"]} == dict.fromkeys(expected, "duplicate")
    assert _voucher_keys_in_m3(ionapi) == Counter(all_keys)
    with StateStore(load_settings(home).state_url) as state:
        again = {p.posting_key: (p.status, p.attempts, p.owner) for p in state.list_postings(kind="voucher")}
    assert again == {k: (p.status, p.attempts, p.owner) for k, p in postings.items()}


def test_connections_travel_as_their_spec_and_refuse_another_configuration(live_m3) -> None:
    """A pickled Connections arrives as its spec (connecting nothing); ``connected`` opens the
    process's own connections once, or raises when the process sees another configuration
    under the home than the flow did, instead of connecting elsewhere."""
    from flows.connections import ConnectionSpec, connected, open_connections

    _server, configure, _ionapi = live_m3
    home = configure("brief")
    with open_connections(home, sandbox=False) as connections:
        spec = connections.spec
        payload = pickle.dumps(connections)
    travelled = pickle.loads(payload)  # connects nothing: a Dask scheduler unpickles tasks too
    assert isinstance(travelled, ConnectionSpec) and travelled == spec and len(payload) < 1000
    assert connected(connections) is connections  # in the flow's own process: its connections
    configure("cloudsuite")  # the flow's spec says "brief": this process now sees another M3 profile
    with pytest.raises(ConfigurationError, match="another configuration under .* than the flow run"):
        connected(travelled)
    configure("brief")
    reopened = connected(travelled)
    try:
        assert reopened is not connections and reopened.spec == spec
        assert connected(pickle.loads(payload)) is reopened  # once per process
        assert reopened.require_m3().get_customer("AMZUS").currency == "USD"
    finally:
        reopened.close()


def test_an_unreachable_scheduler_stops_the_run_with_one_line_naming_it() -> None:
    """Before any settlement is handed over: one line, no traceback, nothing posted."""
    import socket

    import dask

    from flows.task_runners import settlement_task_runner

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    runner = RunnerSettings(dask_address=address, origin="[runner] dask_address in /srv/m3sync/config.toml")
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(ConfigurationError) as raised:
        with settlement_task_runner(runner):
            pytest.fail("the runner started without a scheduler")
    message = str(raised.value)
    assert message.startswith(
        f"[runner] dask_address in /srv/m3sync/config.toml: the Dask scheduler at {address} could not be used ("
    )
    assert "\n" not in message and raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("", RunnerSettings()),
        ('dask_address = " tcp://10.0.0.5:8786 "', "tcp://10.0.0.5:8786"),
        ("dask_workers = 3", 3),
        ('dask_address = "scheduler:8786"', "[runner] dask_address in {file} must be a Dask scheduler address"),
        ("dask_workers = 0", "[runner] dask_workers in {file} must be a positive number, got 0"),
        (
            'dask_workers = 2\ndask_address = "tcp://s:8786"',
            "[runner] dask_address in {file} and [runner] dask_workers in {file}: choose one",
        ),
        ("dask_threads = 2", "unknown key 'dask_threads' in [runner]"),
    ],
)
def test_runner_settings(tmp_path: Path, config: str, expected: object) -> None:
    (tmp_path / "config.toml").write_text(f"[runner]\n{config}\n")
    if isinstance(expected, str) and " " in expected:
        with pytest.raises(ConfigurationError) as raised:
            load_settings(tmp_path, env={})
        assert expected.format(file=tmp_path / "config.toml") in str(raised.value)
        return
    runner = load_settings(tmp_path, env={}).runner
    if isinstance(expected, RunnerSettings):
        assert runner == expected and not runner.uses_dask
    elif isinstance(expected, int):
        assert (runner.dask_workers, runner.dask_address, runner.uses_dask) == (expected, None, True)
    else:
        assert (runner.dask_address, runner.dask_workers, runner.uses_dask) == (expected, None, True)
