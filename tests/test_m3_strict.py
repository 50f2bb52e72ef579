"""The M3 emulator as strict as real M3, and the connector living with it, over real HTTP (issue 9 items 3-7).

Company/division authorisation (XAU0008) and the start-up check, numbers and keys as M3 reads
them, bulk size limits and list record caps, and records locked by another user. Expected values
come from the inputs (the sandbox's seeded user 100/AAA, the limits each sandbox is started with).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _live_m3 import live_m3  # noqa: F401 - a fixture

from connectors.m3 import M3Client, M3Operations, M3TransactionError
from connectors.m3.errors import M3Error, M3ListTruncated
from connectors.m3.records import (
    CustomerRequest,
    JournalEntry,
    JournalLine,
    OrderAddress,
    OrderLineRequest,
    OrderRequest,
)
from connectors.retry import Backoff
from connectors.settings import ConfigurationError
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
from sandbox.server import RunningServer, serve_in_thread

TENANT = "SANDBOX_TST"
FAST = Backoff(attempts=6, base=0.01, cap=0.05)
_unique = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_unique):04d}"


@dataclass
class Box:
    server: RunningServer
    data_dir: Path
    ionapi: Path
    http: httpx.Client
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def v2(self, pgm: str, trn: str, **params: str) -> httpx.Response:
        return self.http.get(f"/m3api-rest/v2/execute/{pgm}/{trn}", params=params, headers=self.auth)

    def v1(self, pgm: str, trn: str, **params: str) -> httpx.Response:
        return self.http.get(f"/m3api-rest/execute/{pgm}/{trn}", params=params, headers=self.auth)

    def bulk(self, body: dict | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            "/m3api-rest/v2/execute", content=content, headers={**self.auth, "Content-Type": "application/json"}
        )

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 400, response.text
        return response.json()

    def state(self) -> dict:
        return self.admin("GET", "/sandbox/state")

    def client(self, **kwargs) -> M3Client:
        return M3Client.from_ionapi(self.ionapi, backoff=FAST, **kwargs)

    def stored(self, sql: str) -> list[dict]:
        """Records as the emulator stored them (its own SQLite file, read-only)."""
        with sqlite3.connect(f"file:{self.data_dir / 'm3.sqlite'}?mode=ro", uri=True) as db:
            return [json.loads(row[0]) for row in db.execute(sql)]


def start(tmp_path_factory: pytest.TempPathFactory, name: str, **limits: int) -> Box:
    data_dir = tmp_path_factory.mktemp(name)
    server = serve_in_thread(lambda base: create_app(data_dir, base, tenant=TENANT, **limits))
    creds = sandbox_credentials(data_dir)
    ionapi = write_ionapi(data_dir / "sandbox.ionapi", server.base_url, TENANT, creds)
    http = httpx.Client(base_url=server.base_url, timeout=10)
    token = http.post(
        f"/{TENANT}/as/token.oauth2",
        data={
            "grant_type": "password",
            "username": creds.service_access_key,
            "password": creds.service_secret_key,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
    ).json()["access_token"]
    return Box(server, data_dir, ionapi, http, token)


@pytest.fixture(scope="module")
def box(tmp_path_factory) -> Iterator[Box]:
    """The emulator with its default limits (100 transactions / 64 KB per bulk)."""
    sandbox = start(tmp_path_factory, "m3strict")
    yield sandbox
    sandbox.http.close()
    sandbox.server.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[Box]:
    """The emulator with tiny limits: 5 transactions or 2,000 bytes per bulk, 3 records per list."""
    sandbox = start(tmp_path_factory, "m3small", bulk_max_transactions=5, bulk_max_bytes=2000, max_list_records=3)
    yield sandbox
    sandbox.http.close()
    sandbox.server.stop()


@pytest.fixture
def no_faults(box) -> Iterator[None]:
    yield
    box.admin("DELETE", "/sandbox/faults")


def error_of(response: httpx.Response) -> dict:
    assert response.status_code == 400, response.text
    result = response.json()["results"][0]
    return {k: result[k] for k in ("errorType", "errorCode", "errorField", "errorMessage")}


# ---------------------------------------------------------------------------------------------
# Item 4: company and division
# ---------------------------------------------------------------------------------------------


def test_company_or_division_the_user_may_not_use_is_refused_before_anything_runs(box):
    assert error_of(box.v2("CRS610MI", "GetBasicData", CUNO="AMZUS", cono="999")) == {
        "errorType": "ServerReturnedNOK",
        "errorCode": "XAU0008",
        "errorField": "CONO",
        "errorMessage": "Not authorized for company 999",
    }
    assert error_of(box.v2("CRS610MI", "GetBasicData", CUNO="AMZUS", CONO="999"))["errorCode"] == "XAU0008"
    assert error_of(box.v2("OIS350MI", "LstInvHead", YEA4="2024", divi="ZZZ")) == {
        "errorType": "ServerReturnedNOK",
        "errorCode": "XAU0008",
        "errorField": "DIVI",
        "errorMessage": "Not authorized for division ZZZ",
    }
    # v1 answers the same NOK with HTTP 200, Message padded to 132
    v1 = box.v1("CRS610MI", "GetBasicData;cono=999", CUNO="AMZUS").json()
    assert (v1["@code"], v1["@field"], v1["Message"].rstrip()) == ("XAU0008", "CONO", "Not authorized for company 999")
    # the user's own company, written with a leading zero, is company 100
    assert box.v2("CRS610MI", "GetBasicData", CUNO="AMZUS", cono="0100").status_code == 200
    # CONO=999 no longer opens a GL batch
    before = box.state()["gl_batches"]
    refused = box.v2("GLS840MI", "AddBatchHead", CONO="999", KEY1=unique("K999-"), INTN="GLUPLOAD", DESC="x")
    assert error_of(refused)["errorCode"] == "XAU0008"
    assert box.state()["gl_batches"] == before
    # a bulk body's cono applies to every transaction in it
    body = box.bulk(
        {
            "program": "CRS610MI",
            "cono": 999,
            "transactions": [{"transaction": "GetBasicData", "record": {"CUNO": "AMZUS"}}],
        }
    ).json()
    assert body["nrOfFailedTransactions"] == 1 and body["results"][0]["errorCode"] == "XAU0008"


def test_user_data_and_authorised_divisions(box):
    [user] = box.v2("MNS150MI", "GetUserData").json()["results"][0]["records"]
    assert (user["USID"], user["CONO"], user["DIVI"]) == ("M3SANDBOX", "100", "AAA")
    listed = box.v2("MNS150MI", "LstCmpDivi", USID="M3SANDBOX").json()["results"][0]["records"]
    # AAA (the user's default) and one division per legal entity (issue 11: divisions)
    assert [(r["CONO"], r["DIVI"]) for r in listed] == [("100", d) for d in ("100", "200", "300", "400", "AAA")]
    assert error_of(box.v2("MNS150MI", "LstCmpDivi", USID="SOMEONE"))["errorCode"] == "WUSID03"


def test_every_record_the_emulator_creates_carries_company_and_division(box):
    with box.client(cono=100, divi="AAA") as client:
        ops = M3Operations(client, "cloudsuite")
        cuno = ops.create_customer(CustomerRequest(name="Company Check", address1="1 Street", currency="EUR"))
        itno = box.stored("SELECT data FROM items WHERE itno != 'FREIGHT' LIMIT 1")[0]["ITNO"]
        created = ops.create_order(
            OrderRequest(
                cuno="AMZDE",
                customer_order_ref=unique("CO-"),
                order_type="AMZ",
                lines=(OrderLineRequest(itno=itno, quantity=1, unit_price=Decimal("3.00")),),
            )
        )
    box.admin("POST", "/sandbox/advance", {"to": "77", "orders": [created.orno], "date": "20241001"})
    records = {
        "customer": box.stored(f"SELECT data FROM customers WHERE cuno = '{cuno}'"),
        "order": box.stored(f"SELECT data FROM orders WHERE orno = '{created.orno}'"),
        "line": box.stored(f"SELECT data FROM order_lines WHERE orno = '{created.orno}'"),
        "delivery": box.stored(f"SELECT data FROM deliveries WHERE orno = '{created.orno}'"),
        "invoice": box.stored(f"SELECT data FROM invoices WHERE orno = '{created.orno}'"),
    }
    for what, stored in records.items():
        assert stored, what
        assert {(r["CONO"], r["DIVI"]) for r in stored} == {("100", "AAA")}, what


def test_connector_checks_company_and_division_at_start_up(box):
    with box.client(cono=100, divi="AAA") as client:
        assert M3Operations(client).check_company() == ("100", "AAA")
    with box.client() as client:  # nothing configured: the user's defaults
        assert M3Operations(client).check_company() == ("100", "AAA")
    with box.client(cono=999, divi="AAA") as client, pytest.raises(ConfigurationError) as refused:
        M3Operations(client).check_company()
    message = str(refused.value)
    assert "[m3] cono = '999'" in message and "M3SYNC_M3_CONO" in message
    assert "Not authorized for company 999" in message
    with box.client(cono=100, divi="BBB") as client, pytest.raises(ConfigurationError) as refused:
        M3Operations(client).check_company()
    assert "[m3] divi = 'BBB'" in str(refused.value) and "M3SYNC_M3_DIVI" in str(refused.value)


def test_live_configuration_with_a_foreign_company_fails_at_start_up(live_m3):
    from flows.cli import _known_failure
    from flows.connections import open_connections
    from flows.exit_codes import EXIT_INVALID

    _, configure, _ = live_m3
    home = configure("cloudsuite")
    with open_connections(home, sandbox=False) as connections:  # 100/AAA: accepted
        assert connections.m3 is not None and connections.m3.profile == "cloudsuite"
    config = home / "config.toml"
    config.write_text(config.read_text().replace("cono = 100", "cono = 999"))
    with pytest.raises(ConfigurationError, match=r"\[m3\] cono = '999'.*Not authorized for company 999") as info:
        open_connections(home, sandbox=False)
    assert _known_failure(info.value) == EXIT_INVALID
    # a live configuration without a profile uses the standard CloudSuite transactions, and without
    # cono/divi the M3 user's defaults (GLS840MI then still gets its CONO)
    config.write_text(
        config.read_text()
        .replace('profile = "cloudsuite"\n', "")
        .replace("cono = 999\n", "")
        .replace('divi = "AAA"\n', "")
    )
    assert "cono" not in config.read_text() and "profile" not in config.read_text()
    with open_connections(home, sandbox=False) as connections:
        assert connections.m3 is not None and connections.m3.profile == "cloudsuite"
        assert connections.m3_profile == "cloudsuite"
        assert (connections.m3.cono, connections.m3.divi, connections.divi) == ("100", "AAA", "AAA")


# ---------------------------------------------------------------------------------------------
# Item 5: numbers and strings as M3 reads them
# ---------------------------------------------------------------------------------------------

NOT_NUMBERS = [
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1e2",
    "1E2",
    "1_000",
    "+3",
    " 3",
    "1,5",
    "--1",
    "1.2.3",
    ".",
    "-",
    "0x10",
    "١٢",
]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_what_is_not_an_m3_number_is_an_input_error_naming_the_field(box, value):
    # GLS200MI/Add validates before it buffers anything; CUAM is N17 with 2 decimals
    fields = dict(ACDT="20241001", VTXT=unique("NUM-"), CUCD="EUR", LINE="1", NLIN="2", AIT1="1930", CUAM=value)
    assert error_of(box.v2("GLS200MI", "Add", **fields)) == {
        "errorType": "ServerReturnedNOK",
        "errorCode": "WCUAM01",
        "errorField": "CUAM",
        "errorMessage": f"CUAM {value} is invalid - not a number",
    }
    v1 = box.v1("GLS200MI", "Add", **fields)
    assert v1.status_code == 200 and v1.json()["@field"] == "CUAM"


def test_numbers_beyond_the_fields_digits_or_decimals_are_refused(box):
    base = dict(ACDT="20241001", CUCD="EUR", LINE="1", NLIN="2", AIT1="1930")
    too_many_decimals = error_of(box.v2("GLS200MI", "Add", VTXT=unique("NUM-"), CUAM="1.234", **base))
    assert (too_many_decimals["errorCode"], too_many_decimals["errorField"]) == ("WCUAM01", "CUAM")
    assert too_many_decimals["errorMessage"] == "CUAM 1.234 is invalid - has more than 2 decimals"
    # N17 with 2 decimals leaves 15 digits before the separator: 16 (or 18) are too many
    for digits in ("1234567890123456", "123456789012345678"):
        too_long = error_of(box.v2("GLS200MI", "Add", VTXT=unique("NUM-"), CUAM=digits, **base))
        assert (too_long["errorType"], too_long["errorField"]) == ("InputFieldTooLong", "CUAM")
    # an integer field takes no decimals; YEA4 is N4
    assert (
        error_of(box.v2("OIS350MI", "LstInvHead", YEA4="2024.5"))["errorMessage"]
        == "YEA4 2024.5 is invalid - must be a whole number"
    )
    assert error_of(box.v2("OIS350MI", "LstInvHead", YEA4="20245"))["errorType"] == "InputFieldTooLong"
    # what M3 does accept: digits, one separator, a leading minus, leading zeros
    for good in ("2024", "02024"):
        assert box.v2("OIS350MI", "LstInvHead", YEA4=good).status_code == 200
    pending = box.state()["pending_voucher_lines"]
    for good in ("-12.5", "0.50", "123456789012345.99"):
        assert box.v2("GLS200MI", "Add", VTXT=unique("NUM-"), CUAM=good, **base).status_code == 200
    assert box.state()["pending_voucher_lines"] == pending + 3


def test_bad_numbers_in_bulk_bodies_and_gl_records_never_give_http_500(box):
    body = (
        b'{"program":"OIS350MI","transactions":[{"transaction":"LstInvHead","record":{"YEA4":NaN}},'
        b'{"transaction":"LstInvHead","record":{"YEA4":"Infinity"}}]}'
    )
    answer = box.bulk(body)
    assert answer.status_code == 200
    assert [r["errorCode"] for r in answer.json()["results"]] == ["WYEA401", "WYEA401"]
    key1 = unique("KNAN-")
    assert box.v2("GLS840MI", "AddBatchHead", CONO="100", KEY1=key1, INTN="GLUPLOAD", DESC="x").status_code == 200
    parm = "I1" + "000000001" + "00000001" + "AAA" + "1930".ljust(70) + "EUR" + "NaN".rjust(17) + "20241001"
    assert (
        error_of(box.v2("GLS840MI", "AddBatchLine", CONO="100", KEY1=key1, LINE="1", PARM=parm))["errorField"] == "PARM"
    )


def test_keys_are_not_trimmed_on_the_left(box):
    refused = error_of(box.v2("CRS610MI", "GetBasicData", CUNO=" AMZUS"))
    assert (refused["errorCode"], refused["errorMessage"]) == ("WCU0203", "Customer number  AMZUS does not exist")
    assert box.v2("CRS610MI", "GetBasicData", CUNO="AMZUS   ").json()["results"][0]["records"][0]["CUNO"] == "AMZUS"
    with box.client() as client, pytest.raises(M3TransactionError) as info:
        M3Operations(client).get_customer(" AMZUS")
    assert info.value.code == "WCU0203"


# ---------------------------------------------------------------------------------------------
# Item 6: bulk size limits and list record caps
# ---------------------------------------------------------------------------------------------


def _reads(n: int, cuno: str = "AMZUS") -> dict:
    return {"program": "CRS610MI", "transactions": [{"transaction": "GetBasicData", "record": {"CUNO": cuno}}] * n}


def test_gateway_refuses_bulk_requests_above_its_default_limits(box):
    assert box.bulk(_reads(80)).json()["nrOfSuccessfullTransactions"] == 80
    too_many = box.bulk(_reads(81))
    assert too_many.status_code == 413
    assert too_many.json()["wasTerminated"] and too_many.json()["terminationErrorType"] == "RequestTooLarge"
    assert "81 transactions, the limit is 80" in too_many.json()["terminationReason"]
    # 32 KB: 30 transactions whose CUNO is padded with blanks to a kilobyte each
    too_big = box.bulk(_reads(30, "AMZUS" + " " * 1100))
    assert too_big.status_code == 413 and "limit of 32768 bytes" in too_big.json()["terminationReason"]
    # nothing of a refused bulk runs
    customers = box.state()["customers"]
    adds = {
        "program": "CRS610MI",
        "transactions": [
            {"transaction": "Add", "record": {"CUTM": "AMZTMPL", "CUNM": f"Bulk {n}", "CUA1": "x"}} for n in range(81)
        ],
    }
    assert box.bulk(adds).status_code == 413
    assert box.state()["customers"] == customers


def test_list_answers_stop_at_the_servers_record_limit(small):
    # seeded: AMZTMPL and four marketplace customers; the limit is 3
    assert len(small.v2("CRS610MI", "LstByNumber", maxrecs="0").json()["results"][0]["records"]) == 3
    assert len(small.v2("CRS610MI", "LstByNumber", maxrecs="2").json()["results"][0]["records"]) == 2
    assert len(small.v2("CRS610MI", "LstByNumber", maxrecs="50").json()["results"][0]["records"]) == 3
    with small.client(max_records=3) as client:
        with pytest.raises(M3ListTruncated, match="CRS610MI/LstByNumber returned the maximum of 3 records"):
            client.execute("CRS610MI", "LstByNumber", maxrecs=0)
        assert len(client.execute("CRS610MI", "LstByNumber", maxrecs=2)) == 2


def test_connector_splits_bulk_reads_and_writes_to_the_gateways_limits(small):
    cunos = ["AMZDE", "AMZFR", "AMZUK", "AMZUS", "AMZTMPL"] * 3
    with small.client(bulk_max_transactions=5, bulk_max_bytes=2000) as client:
        # 15 reads = three requests of five; the answers come back in order
        results = client.execute_bulk("CRS610MI", [("GetBasicData", {"CUNO": c}) for c in cunos])
        assert [r.records[0]["CUNO"] for r in results] == cunos
        # reads that fit five to a request by count but not by bytes (CUNM padded to ~600 bytes)
        padded = client.execute_bulk("CRS610MI", [("GetBasicData", {"CUNO": "AMZUS", "CUNM": "x" * 600})] * 5)
        assert all(r.ok for r in padded) and len(padded) == 5
        # a voucher of 7 lines through GLS200MI/Add (one Add per line): split over two requests, booked once
        before = small.state()["vouchers"]
        lines = tuple(JournalLine(("1930",), Decimal("10.00"), f"l{n}") for n in range(6)) + (
            JournalLine(("3010",), Decimal("-60.00"), "sales"),
        )
        key = unique("SPLIT-")
        posted = M3Operations(client, "brief").post_voucher(
            JournalEntry(
                key=key, divi="AAA", accounting_date=date(2024, 10, 1), currency="EUR", text="split", lines=lines
            )
        )
        assert (posted.key, posted.debit, posted.credit) == (key, Decimal("60.00"), Decimal("60.00"))
        assert small.state()["vouchers"] == before + 1
        stored = small.stored(f"SELECT data FROM voucher_lines WHERE vono = '{posted.vono}' AND yea4 = '2024'")
        assert len(stored) == 7  # (this sandbox lists 3 records per call, so count them in its database)
    with small.client(bulk_max_bytes=2000) as client, pytest.raises(M3Error, match="does not fit"):
        client.execute_bulk("CRS610MI", [("GetBasicData", {"CUNO": "AMZUS", "CUNM": "x" * 2000})])


def test_invoice_lists_narrow_by_date_when_m3s_record_limit_cuts_them(small):
    # four invoices on four days; M3 returns at most three per call, so the connector halves the range
    days = ["20240903", "20240910", "20240917", "20240924"]
    with small.client(max_records=3) as client:
        ops = M3Operations(client, "brief")
        itno = small.stored("SELECT data FROM items WHERE itno != 'FREIGHT' LIMIT 1")[0]["ITNO"]
        for day in days:
            created = ops.create_order(
                OrderRequest(
                    cuno="AMZDE",
                    customer_order_ref=unique("INV-"),
                    order_type="AMZ",
                    lines=(OrderLineRequest(itno=itno, quantity=1, unit_price=Decimal("2.00")),),
                )
            )
            small.admin("POST", "/sandbox/advance", {"to": "77", "orders": [created.orno], "date": day})
        invoices = ops.list_invoices(date(2024, 9, 1), date(2024, 9, 30))
        assert sorted(inv.ivdt.strftime("%Y%m%d") for inv in invoices) == days


# ---------------------------------------------------------------------------------------------
# Item 7: records locked / changed by another user
# ---------------------------------------------------------------------------------------------


def test_injected_record_lock_answers_m3s_message_and_writes_nothing(box, no_faults):
    customers = box.state()["customers"]
    box.admin("POST", "/sandbox/faults", {"record_locked": 1, "locked_by": "PLANNER", "transactions": ["CRS610MI/Add"]})
    add = dict(CUTM="AMZTMPL", CUNM="Locked Out", CUA1="1 Street")
    assert error_of(box.v2("CRS610MI", "Add", **add)) == {
        "errorType": "ServerReturnedNOK",
        "errorCode": "XUP0001",
        "errorField": "",
        "errorMessage": "The record has been changed by user PLANNER",
    }
    assert box.state()["customers"] == customers
    assert box.v2("CRS610MI", "GetBasicData", CUNO="AMZUS").status_code == 200  # reads never meet the lock
    assert box.v2("CRS610MI", "Add", **add).status_code == 200  # the lock is gone
    assert box.state()["customers"] == customers + 1


def test_connector_retries_locked_idempotent_writes_and_surfaces_the_others(box, no_faults):
    with box.client() as client:
        [head] = client.execute("OIS100MI", "AddBatchHead", {"CUNO": "AMZUS", "ORTP": "AMZ"})
        address = {"ORNO": head["ORNO"], "ADRT": 1, "CUNM": "Jane Buyer", "CUA1": "1 Main Street"}
        # AddBatchAddress replaces the order's address of that type: safe to repeat
        box.admin("POST", "/sandbox/faults", {"record_locked": 2, "transactions": ["OIS100MI/AddBatchAddress"]})
        assert client.execute("OIS100MI", "AddBatchAddress", address, idempotent=True) == []
        assert box.admin("GET", "/sandbox/faults")["locks_left"] == 0  # locked twice, then written
        box.admin("POST", "/sandbox/faults", {"record_locked": 1, "transactions": ["OIS100MI/AddBatchAddress"]})
        results = client.execute_bulk(
            "OIS100MI", [("AddBatchAddress", address), ("AddBatchAddress", address)], idempotent=True
        )
        assert all(r.ok for r in results)
        # the cloudsuite order flow sends its address idempotently: a lock there does not stop the order
        box.admin("POST", "/sandbox/faults", {"record_locked": 1, "transactions": ["OIS100MI/AddBatchAddress"]})
        itno = box.stored("SELECT data FROM items WHERE itno != 'FREIGHT' LIMIT 1")[0]["ITNO"]
        created = M3Operations(client, "cloudsuite").create_order(
            OrderRequest(
                cuno="AMZUS",
                customer_order_ref=unique("LOCK-"),
                order_type="AMZ",
                lines=(OrderLineRequest(itno=itno, quantity=1, unit_price=Decimal("1.00")),),
                delivery_address=OrderAddress(name="Jane Buyer", address1="1 Main Street", town="Austin", country="US"),
            )
        )
        assert created.status == "90" and box.admin("GET", "/sandbox/faults")["locks_left"] == 0
        # creating a customer is not idempotent: M3's answer is surfaced, never retried
        customers = box.state()["customers"]
        box.admin(
            "POST", "/sandbox/faults", {"record_locked": 2, "locked_by": "PLANNER", "transactions": ["CRS610MI/Add"]}
        )
        with pytest.raises(M3TransactionError) as info:
            M3Operations(client).create_customer(CustomerRequest(name="Not Twice", address1="Street"))
        assert (info.value.code, info.value.message) == ("XUP0001", "The record has been changed by user PLANNER")
        assert box.admin("GET", "/sandbox/faults")["locks_left"] == 1  # one attempt only
        assert box.state()["customers"] == customers
