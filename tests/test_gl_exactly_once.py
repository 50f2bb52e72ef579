"""Exactly-once GL posting against the sandbox M3 over real HTTP, as a real M3 behaves:
GLS840MI/UpdBatch only queues the batch and M3's batch job books it later; answers get lost
after M3 committed; M3 commits after the client stopped waiting; two threads post one key.

Every case ends by counting the vouchers M3 holds for the posting key once every queued batch
job has run: exactly one (or none, for a failed job).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _flow_runs import settle  # a Failed run's document (a held settlement fails the run)
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced

from connectors.m3 import (
    JournalEntry,
    JournalLine,
    M3BatchFailed,
    M3Client,
    M3Operations,
    M3WriteInDoubt,
    PostedVoucher,
    SubmittedVoucher,
)
from connectors.m3.operations import batch_key, key_of
from connectors.retry import Backoff
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
from sandbox.server import RunningServer, serve_in_thread

FAST = Backoff(attempts=3, base=0.01, cap=0.05)
ACDT = date(2024, 11, 5)
_unique = itertools.count(1)


class Crash(BaseException):
    """Stands for the process dying at that point (not an Exception: nothing handles it)."""


@dataclass
class Box:
    server: RunningServer
    ionapi: Path

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        response = httpx.request(method, f"{self.server.base_url}/sandbox/{path}", json=body, timeout=10)
        assert response.status_code < 400, response.text
        return response.json()

    def client(self, timeout: float = 10.0) -> M3Client:
        return M3Client.from_ionapi(self.ionapi, timeout=timeout, backoff=FAST)

    def batches(self, key1: str) -> list[dict]:
        return [b for b in self.admin("GET", "gl/batch-job")["batches"] if b["key1"] == key1]

    def vouchers_with_key(self, key: str) -> list[dict[str, str]]:
        """Every voucher whose text starts with ``key``, after every queued batch job has run."""
        self.admin("POST", "gl/batch-job/run")
        with self.client() as client:
            records = client.execute(
                "GLS200MI", "LstVouchersByDt", {"DIVI": "AAA", "FDAT": ACDT, "TDAT": ACDT}, maxrecs=0
            )
        return [r for r in records if key_of(r["VTXT"]) == key]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    data = tmp_path_factory.mktemp("m3gl")
    server = serve_in_thread(lambda url: create_app(data, url, gl_batch_delay=0.3))
    yield Box(server, write_ionapi(data / "sandbox.ionapi", server.base_url, "SANDBOX_TST", sandbox_credentials(data)))
    server.stop()


@pytest.fixture
def clean(box: Box) -> Iterator[None]:
    yield
    box.admin("DELETE", "faults")
    box.admin("POST", "gl/batch-job", {"delay_ms": 300, "fail_next": 0})


def key(prefix: str) -> str:
    return f"AMZ-{prefix}-{next(_unique):04d}"


def entry(posting_key: str) -> JournalEntry:
    # 100.00 to the bank, 85.00 sales and 15.00 fees credited: balanced by construction.
    return JournalEntry(
        key=posting_key,
        divi="AAA",
        accounting_date=ACDT,
        currency="EUR",
        text="Amazon",
        lines=(
            JournalLine(("1930",), Decimal("100.00"), "bank"),
            JournalLine(("3010",), Decimal("-85.00"), "sales"),
            JournalLine(("6570",), Decimal("-15.00"), "fees"),
        ),
    )


def ops(client: M3Client, profile: str, **kwargs) -> M3Operations:
    return M3Operations(client, profile, cono=100, divi="AAA", **kwargs)  # type: ignore[arg-type]  # options by name


# -- the asynchronous batch job ------------------------------------------------------------------


def test_posting_waits_for_the_batch_job_and_books_once(box: Box, clean: None) -> None:
    k = key("JOB")
    with box.client() as client:
        posted = ops(client, "cloudsuite", voucher_wait=5).post_voucher(entry(k))
        assert isinstance(posted, PostedVoucher) and not posted.already_posted
        assert (posted.key, posted.debit, posted.credit) == (k, Decimal("100.00"), Decimal("100.00"))
        again = ops(client, "cloudsuite", voucher_wait=5).post_voucher(entry(k))
        assert isinstance(again, PostedVoucher) and again.already_posted and again.vono == posted.vono
    assert [b["state"] for b in box.batches(batch_key(k))] == ["updated"]
    assert len(box.vouchers_with_key(k)) == 1


def test_crash_right_after_updbatch_then_rerun_books_once(box: Box, clean: None) -> None:
    def crash(_seconds: float) -> None:
        raise Crash  # the first pause after UpdBatch answered: the process dies there

    k = key("CRASH")
    with box.client() as client:
        with pytest.raises(Crash):
            ops(client, "cloudsuite", voucher_wait=5, sleep=crash).post_voucher(entry(k))
        assert [b["state"] for b in box.batches(batch_key(k))] == ["queued"]  # submitted, not booked yet
        rerun = ops(client, "cloudsuite", voucher_wait=5).post_voucher(entry(k))
    assert isinstance(rerun, PostedVoucher) and rerun.already_posted  # the first run's batch, awaited
    assert len(box.batches(batch_key(k))) == 1
    assert len(box.vouchers_with_key(k)) == 1


def test_answer_of_updbatch_lost_after_commit_books_once(box: Box, clean: None) -> None:
    k = key("DROP")
    box.admin("POST", "faults", {"drop_after_commit": 1, "transactions": ["GLS840MI/UpdBatch"]})
    with box.client() as client:
        posted = ops(client, "cloudsuite", voucher_wait=5).post_voucher(entry(k))
    assert isinstance(posted, PostedVoucher) and posted.already_posted
    assert len(box.vouchers_with_key(k)) == 1


def test_slow_batch_job_is_submitted_then_confirmed_without_a_second_batch(box: Box, clean: None) -> None:
    k = key("SLOW")
    box.admin("POST", "gl/batch-job", {"delay_ms": 3_600_000})  # M3's job queue is an hour behind
    with box.client() as client:
        first = ops(client, "cloudsuite", voucher_wait=0.3).post_voucher(entry(k))
        assert first == SubmittedVoucher(key=k, divi="AAA", batch=batch_key(k))
        second = ops(client, "cloudsuite", voucher_wait=0.3).post_voucher(entry(k))
        assert second == first  # the same batch awaited, never a new KEY1
        assert box.admin("POST", "gl/batch-job/run")["ran"][0]["key1"] == batch_key(k)  # the job runs at last
        confirmed = ops(client, "cloudsuite", voucher_wait=0.3).post_voucher(entry(k))
    assert isinstance(confirmed, PostedVoucher) and confirmed.already_posted
    assert len(box.batches(batch_key(k))) == 1
    assert len(box.vouchers_with_key(k)) == 1


def test_failed_batch_job_is_reported_with_m3s_errors_and_never_resubmitted(box: Box, clean: None) -> None:
    k = key("FAIL")
    box.admin("POST", "gl/batch-job", {"fail_next": 1, "error": "XBA0009 Account 6570 is blocked"})
    with box.client() as client:
        with pytest.raises(M3BatchFailed, match="Account 6570 is blocked") as info:
            ops(client, "cloudsuite", voucher_wait=1).post_voucher(entry(k))
        assert info.value.batch == batch_key(k)
        with pytest.raises(M3BatchFailed, match="Account 6570 is blocked"):  # a rerun: held again, nothing new
            ops(client, "cloudsuite", voucher_wait=1).post_voucher(entry(k))
    [batch] = box.batches(batch_key(k))
    assert (batch["state"], batch["errors"]) == ("failed", ["XBA0009 Account 6570 is blocked"])
    assert box.vouchers_with_key(k) == []


# -- M3 commits after the client stopped waiting ------------------------------------------------

LATENCY_MS, CLIENT_TIMEOUT, SETTLE = 2000, 1.0, 3.0


@pytest.mark.slow  # each case waits for its late request to land (~3 s)
@pytest.mark.parametrize(
    "profile, transaction",
    [
        ("brief", "GLS200MI/Add"),
        ("cloudsuite", "GLS840MI/AddBatchHead"),
        ("cloudsuite", "GLS840MI/AddBatchLine"),
        ("cloudsuite", "GLS840MI/CtrlBatch"),
        ("cloudsuite", "GLS840MI/UpdBatch"),
    ],
)
def test_write_committed_after_the_client_timed_out_is_booked_once(
    box: Box, clean: None, profile: str, transaction: str
) -> None:
    k = key(f"LATE{profile[0].upper()}")
    box.admin("POST", "faults", {"latency_ms": LATENCY_MS, "transactions": [transaction]})
    with box.client(timeout=CLIENT_TIMEOUT) as client:
        with pytest.raises(M3WriteInDoubt) as info:
            ops(client, profile, voucher_wait=5, settle_seconds=SETTLE).post_voucher(entry(k))
        # The last late request was sent CLIENT_TIMEOUT ago and reaches M3 LATENCY_MS after it was sent.
        all_landed = time.monotonic() + LATENCY_MS / 1000 - CLIENT_TIMEOUT
        box.admin("DELETE", "faults")  # the late requests are still on their way into M3
        # The next attempt at once, as a rerun or a task retry would: nothing is written twice.
        again = ops(client, profile, voucher_wait=5, settle_seconds=SETTLE).post_voucher(
            entry(k), in_doubt_since=info.value.since
        )
    assert isinstance(again, PostedVoucher) and again.key == k
    time.sleep(max(all_landed - time.monotonic(), 0) + 0.2)
    assert len(box.vouchers_with_key(k)) == 1


@pytest.mark.slow  # waits for the late request to land
def test_without_the_settle_wait_a_late_commit_would_book_twice(box: Box, clean: None) -> None:
    """The case the settle wait exists for (brief: GLS200MI/Add has no key M3 could refuse)."""
    k = key("NOWAIT")
    box.admin("POST", "faults", {"latency_ms": LATENCY_MS, "transactions": ["GLS200MI/Add"]})
    with box.client(timeout=CLIENT_TIMEOUT) as client:
        with pytest.raises(M3WriteInDoubt):
            ops(client, "brief").post_voucher(entry(k))
        all_landed = time.monotonic() + LATENCY_MS / 1000 - CLIENT_TIMEOUT
        box.admin("DELETE", "faults")
        ops(client, "brief").post_voucher(entry(k))  # no in_doubt_since: a blind second write
    time.sleep(max(all_landed - time.monotonic(), 0) + 0.2)
    assert len(box.vouchers_with_key(k)) == 2


def test_in_doubt_write_that_never_reached_m3_is_written_after_the_settle_time(box: Box, clean: None) -> None:
    k = key("ABSENT")
    started = time.monotonic()
    with box.client() as client:
        posted = ops(client, "brief", settle_seconds=1.0).post_voucher(entry(k), in_doubt_since=datetime.now(UTC))
    assert isinstance(posted, PostedVoucher) and not posted.already_posted
    assert time.monotonic() - started >= 1.0  # proven absent only once the settle time was over
    assert len(box.vouchers_with_key(k)) == 1


# -- two callers in one process --------------------------------------------------------------------


@pytest.mark.slow  # ten races, each through M3's batch job
@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_two_threads_posting_one_key_book_it_once(box: Box, clean: None, profile: str) -> None:
    keys = [key(f"RACE{profile[0].upper()}") for _ in range(10)]
    box.admin("POST", "gl/batch-job", {"delay_ms": 50})
    with box.client() as first, box.client() as second:
        for k in keys:
            barrier = threading.Barrier(2)
            results: list[object] = []

            def post(
                client: M3Client, k: str = k, barrier: threading.Barrier = barrier, results: list[object] = results
            ) -> None:
                barrier.wait(timeout=10)
                results.append(ops(client, profile, voucher_wait=5).post_voucher(entry(k)))

            threads = [threading.Thread(target=post, args=(c,)) for c in (first, second)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(isinstance(r, PostedVoucher) and r.already_posted for r in results) == [False, True]
    assert [len(box.vouchers_with_key(k)) for k in keys] == [1] * 10


# -- the settlement flow: submitted, confirmed, failed, in doubt --------------------------------------

from _live_m3 import live_m3  # noqa: E402,F401 - a fixture, for the live tests below

SETTLEMENT_KEY, SETTLEMENT_DATE = "AMZ-10000000001-202410", "20241025"  # us_v2_usd.tsv: one voucher


def _configure(home: Path, ionapi: Path, profile: str, **waits: float) -> None:
    extra = "".join(f"{name} = {value}\n" for name, value in waits.items())
    (home / "config.toml").write_text(
        f'[m3]\nionapi = "{ionapi}"\nprofile = "{profile}"\ncono = 100\ndivi = "AAA"\n{extra}'
    )


def _admin(server: RunningServer, method: str, path: str, body: dict | None = None) -> dict:
    response = httpx.request(method, f"{server.base_url}/sandbox/{path}", json=body, timeout=10)
    assert response.status_code < 400, response.text
    return response.json()


def _vouchers_for_settlement(server: RunningServer) -> int:
    _admin(server, "POST", "gl/batch-job/run")
    return _admin(server, "GET", "state")["vouchers"]


def test_settlement_submitted_then_confirmed_and_found_again_without_state(
    prefect_api_url: str, live_m3, us_v2_tsv: Path
) -> None:
    from flows.cli import problem_lines
    from flows.contract import exit_code
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    _configure(home, ionapi, "cloudsuite", voucher_wait_seconds=0.5)
    fixture = str(us_v2_tsv)
    _admin(server, "POST", "gl/batch-job", {"delay_ms": 3_600_000})  # M3's job queue is an hour behind

    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    [entry] = first["settlements"]
    assert entry["status"] == "submitted", entry["reasons"]
    assert any(f"GL batch {SETTLEMENT_KEY}" in r and "next run confirms it" in r for r in entry["reasons"])
    assert entry["journal"]["vouchers"][0]["m3_ref"] is None
    assert exit_code(first) == 0
    assert any(": submitted: " in line for line in problem_lines(first))  # the note on stderr

    assert len(_admin(server, "POST", "gl/batch-job/run")["ran"]) == 1  # M3's job runs at last
    third = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    [entry] = third["settlements"]
    assert entry["status"] == "posted", entry["reasons"]  # confirmed now: the earlier runs did not post it
    assert entry["journal"]["vouchers"][0]["m3_ref"].startswith("AAA/2024/")
    assert any("booked by M3 since an earlier run submitted it" in r for r in entry["reasons"])

    (home / "state.sqlite").unlink()  # a lost state database: M3 itself knows the key
    fourth = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert fourth["settlements"][0]["status"] == "duplicate"
    assert _vouchers_for_settlement(server) == 1
    assert _admin(server, "GET", "state")["gl_batches"] == 1


def test_settlement_whose_batch_job_fails_is_held_with_m3s_errors(
    prefect_api_url: str, live_m3, us_v2_tsv: Path
) -> None:

    server, configure, ionapi = live_m3
    home = configure("cloudsuite")
    _configure(home, ionapi, "cloudsuite", voucher_wait_seconds=1)
    fixture = str(us_v2_tsv)
    _admin(server, "POST", "gl/batch-job", {"fail_next": 1, "error": "XBA0009 Account 6570 is blocked"})
    for _ in range(2):  # the rerun is held the same way: the failed batch is never re-submitted
        [entry] = settle(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))["settlements"]
        assert entry["status"] == "held"
        assert any("Account 6570 is blocked" in r and SETTLEMENT_KEY in r for r in entry["reasons"]), entry["reasons"]
    batches = _admin(server, "GET", "gl/batch-job")["batches"]
    assert [(b["key1"], b["state"]) for b in batches] == [(SETTLEMENT_KEY, "failed")]
    assert _vouchers_for_settlement(server) == 0


def test_settlement_whose_write_commits_after_the_timeout_posts_once(
    prefect_api_url: str, live_m3, us_v2_tsv: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _configure(home, ionapi, "brief", timeout_seconds=1, settle_seconds=3)
    fixture = str(us_v2_tsv)
    _admin(server, "POST", "faults", {"latency_ms": 2000, "transactions": ["GLS200MI/Add"]})
    # The write times out; the claim stays in doubt; the task's retry waits for M3 instead of writing again.
    first = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert first["settlements"][0]["status"] in ("posted", "duplicate"), first["settlements"][0]["reasons"]
    second = settlement_reconciliation(**POST_WITHOUT_M3_DOCUMENTS, files=[fixture], home=str(home))
    assert second["settlements"][0]["status"] == "duplicate"
    assert _vouchers_for_settlement(server) == 1
