"""The M3 connector against the sandbox M3 over real HTTP (both API profiles, both auth modes).

Expected values are worked out from the inputs (prices, quantities, line amounts we send), never
read back from the connector first.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from connectors.m3 import (
    IonApiCredentials,
    IonApiOAuth,
    M3AuthError,
    M3BatchFailed,
    M3Client,
    M3TransactionError,
    M3Unavailable,
    M3WriteInDoubt,
)
from connectors.m3.client import format_value
from connectors.m3.gl_record import I1_LENGTH, I1Record, I1RecordError, decode_i1, encode_i1
from connectors.m3.operations import M3Operations, batch_key, key_of
from connectors.m3.records import (
    CustomerRequest,
    JournalEntry,
    JournalLine,
    M3DataError,
    OrderAddress,
    OrderLineRequest,
    OrderRequest,
)
from connectors.retry import Backoff
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import DEFAULT_TENANT, basic_auth_credentials, sandbox_credentials, write_ionapi
from sandbox.server import RunningServer, serve_in_thread

FAST = Backoff(attempts=6, base=0.01, cap=0.05)
_unique = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_unique):04d}"


@dataclass
class Sandbox:
    server: RunningServer
    data_dir: Path
    ionapi: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def admin(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        response = httpx.request(method, f"{self.base_url}{path}", json=body, timeout=10)
        assert response.status_code < 400, response.text
        return response

    def state(self) -> dict:
        return self.admin("GET", "/sandbox/state").json()

    def oauth_client(self, **kwargs) -> M3Client:
        return M3Client.from_ionapi(self.ionapi, backoff=FAST, **kwargs)


def start_sandbox(tmp_path_factory: pytest.TempPathFactory, name: str, **app_kwargs) -> Sandbox:
    data_dir = tmp_path_factory.mktemp(name)
    server = serve_in_thread(lambda base: create_app(data_dir, base, **app_kwargs))
    ionapi = write_ionapi(
        data_dir / "sandbox.ionapi",
        server.base_url,
        app_kwargs.get("tenant", DEFAULT_TENANT),
        sandbox_credentials(data_dir),
    )
    return Sandbox(server, data_dir, ionapi)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory, "m3oauth", auth="oauth")
    yield box
    box.server.stop()


@pytest.fixture(scope="module")
def client(sandbox) -> Iterator[M3Client]:
    with sandbox.oauth_client() as c:
        yield c


@pytest.fixture(params=["brief", "cloudsuite"])
def ops(request, client) -> M3Operations:
    return M3Operations(client, request.param, cono=100, divi="AAA")


@pytest.fixture
def no_faults(sandbox) -> Iterator[None]:
    yield
    sandbox.admin("DELETE", "/sandbox/faults")


# ---------------------------------------------------------------------------------------------
# Pure units: I1 record, journal entries, value formatting, .ionapi parsing
# ---------------------------------------------------------------------------------------------


def test_i1_record_layout_worked_out_by_hand():
    record = I1Record(
        rnno=1,
        grnr=1,
        divi="AAA",
        dimensions=("3010", "", "US"),
        currency="USD",
        amount=Decimal("-120.00"),
        accounting_date=date(2024, 10, 25),
        text="AMZ-1 fees",
    )
    expected = (
        "I1"
        + "000000001"
        + "00000001"
        + "AAA"
        + "3010      "
        + " " * 10
        + "US        "
        + " " * 40  # AIT1..AIT7, 10 each
        + "USD"
        + " " * 10
        + "-120.00"  # CUAM right-aligned in 17
        + "20241025"
        + "AMZ-1 fees"
        + " " * 30
        + "  "  # VTCD(2): blank, the line has no VAT code
        + " " * 15  # CRTP(2), ARAT(13): blank, M3's default rate type and rate
    )  # ACDT, VTXT(40)
    assert encode_i1(record) == expected
    assert len(expected) == 177 == I1_LENGTH
    assert expected[95:112] == "          -120.00"  # CUAM sits at chars 96..112
    assert decode_i1(expected) == I1Record(
        1, 1, "AAA", ("3010", "", "US", "", "", "", ""), "USD", Decimal("-120.00"), date(2024, 10, 25), "AMZ-1 fees"
    )
    assert decode_i1(expected.rstrip()) == decode_i1(expected)  # M3 may trim trailing blanks


def test_i1_record_refuses_values_that_do_not_fit():
    base = dict(
        rnno=1, grnr=1, divi="AAA", currency="EUR", amount=Decimal("1"), accounting_date=date(2024, 1, 1), text="x"
    )
    with pytest.raises(I1RecordError, match="AIT1"):
        encode_i1(I1Record(dimensions=("12345678901",), **base))
    with pytest.raises(I1RecordError, match="VTXT"):
        encode_i1(I1Record(**{**base, "text": "x" * 41}, dimensions=("1",)))
    with pytest.raises(I1RecordError, match="RNNO"):
        encode_i1(I1Record(**{**base, "rnno": 10**9}, dimensions=("1",)))
    with pytest.raises(I1RecordError, match="CUAM"):
        decode_i1("I1" + "0" * 17 + "AAA" + " " * 73 + "not-a-number".rjust(17) + "20240101")


def entry(
    key: str,
    lines: tuple[JournalLine, ...],
    *,
    text: str = "Amazon",
    acdt: date = date(2024, 10, 25),
    currency: str = "EUR",
) -> JournalEntry:
    return JournalEntry(key=key, divi="AAA", accounting_date=acdt, currency=currency, text=text, lines=lines)


def balanced_lines(amount: str = "120.00") -> tuple[JournalLine, ...]:
    return (
        JournalLine(("1930", "", "DE"), Decimal(amount), "bank"),
        JournalLine(("3010",), -Decimal(amount) + Decimal("15.50"), "sales"),
        JournalLine(("6570", "AMZFEE"), Decimal("-15.50"), "fees"),
    )


def test_journal_entry_refuses_unbalanced_and_oversized_values():
    with pytest.raises(M3DataError, match=r"do not balance: debit 120\.00 credit 119\.99"):
        entry("K1", (JournalLine(("1930",), Decimal("120.00")), JournalLine(("3010",), Decimal("-119.99"))))
    with pytest.raises(M3DataError, match="AIT2 is 11 characters, M3 allows 10"):
        JournalLine(("1930", "ABCDEFGHIJK"), Decimal("1"))
    with pytest.raises(M3DataError, match="VTXT"):
        entry("AMZ-10000000001-202410", balanced_lines(), text="a text much too long for forty chars")
    with pytest.raises(M3DataError, match="never float"):
        JournalLine(("1930",), 1.5)  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(M3DataError, match="at least two lines"):
        entry("K2", (JournalLine(("1930",), Decimal(0)),))
    ok = entry("K3", balanced_lines())
    assert (ok.debit, ok.credit) == (Decimal("120.00"), Decimal("120.00"))
    assert ok.voucher_text == "K3 Amazon" and ok.line_text(ok.lines[1]) == "K3 sales"


def test_key_of_and_batch_key():
    assert key_of("AMZ-1-202410 Amazon settlement") == "AMZ-1-202410"
    assert key_of("AMZ-1-202410") == "AMZ-1-202410"
    assert batch_key("SHORT") == "SHORT"
    long_key = "AMZ-10000000001-202410-EXTRA-PART"
    assert len(batch_key(long_key)) == 30 and batch_key(long_key) != batch_key(long_key + "X")
    assert batch_key(long_key) == batch_key(long_key)  # no attempt counter: a rerun meets its own batch


def test_format_value_for_m3():
    assert format_value(date(2024, 2, 9)) == "20240209"
    assert format_value(Decimal("-1.50")) == "-1.50"
    assert format_value(Decimal("1E+2")) == "100"
    assert format_value(7) == "7"
    from datetime import datetime

    with pytest.raises(TypeError):
        format_value(datetime(2024, 1, 1))  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(TypeError):
        format_value(True)


def test_ionapi_file_parsing_hides_secrets(tmp_path):
    path = tmp_path / "x.ionapi"
    path.write_text(
        json.dumps(
            {
                "ti": "T1",
                "ci": "T1~cid",
                "cs": "CLIENTSECRET",
                "iu": "https://ion/",
                "pu": "https://sso/T1/as/",
                "ot": "token.oauth2",
                "or": "revoke_token.oauth2",
                "saak": "T1#ACCESSKEY",
                "sask": "SECRETKEY",
            }
        )
    )
    creds = IonApiCredentials.from_file(path)
    assert creds.m3_base_url == "https://ion/T1/M3"
    assert creds.token_url == "https://sso/T1/as/token.oauth2"
    assert creds.revoke_url == "https://sso/T1/as/revoke_token.oauth2"
    for secret in ("CLIENTSECRET", "ACCESSKEY", "SECRETKEY"):
        assert secret not in repr(creds)
    path.write_text(json.dumps({"ti": "T1", "ci": "c", "cs": "s", "iu": "u", "pu": "p", "ot": "t"}))
    with pytest.raises(M3AuthError, match="lacks saak, sask"):
        IonApiCredentials.from_file(path)
    path.write_text("{not json")
    with pytest.raises(M3AuthError, match="not valid JSON"):
        IonApiCredentials.from_file(path)


# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------


def test_token_fetched_once_and_reused_and_logs_hold_no_secret(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    creds = IonApiCredentials.from_file(sandbox.ionapi)
    auth = IonApiOAuth(creds)
    with M3Client(creds.iu, auth, tenant=creds.ti, backoff=FAST) as c:
        assert c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})[0]["CUCD"] == "USD"
        c.execute(
            "MMS200MI",
            "GetItmBasic",
            {"ITNO": c.execute("MMS080MI", "LstItemBal", {"WHLO": "100"}, maxrecs=1)[0]["ITNO"]},
        )
        token = auth.access_token()
        assert auth.grants == ["password"]
    for secret in (token, creds.cs, creds.sask, creds.saak):
        assert secret not in caplog.text
        assert secret not in repr(auth) and secret not in repr(c)


def test_token_refreshed_before_expiry(sandbox):
    now = [1000.0]
    creds = IonApiCredentials.from_file(sandbox.ionapi)
    auth = IonApiOAuth(creds, clock=lambda: now[0])
    with M3Client(creds.iu, auth, tenant=creds.ti, backoff=FAST) as c:
        c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})
        first = auth.access_token()
        now[0] += 7200 - 59  # inside the renewal margin (the last 60 s of 7200)
        c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})
        assert auth.access_token() != first
        assert auth.grants[0] == "password" and len(auth.grants) == 2
        assert auth.grants[1] in ("refresh_token", "password")


def test_expired_token_gets_401_then_one_refresh(tmp_path_factory):
    # The server expires tokens after 1 s; our clock never moves, so only the 401 tells us.
    import time

    box = start_sandbox(tmp_path_factory, "m3short", auth="oauth", token_lifetime=1)
    try:
        creds = IonApiCredentials.from_file(box.ionapi)
        auth = IonApiOAuth(creds, clock=lambda: 0.0)
        with M3Client(creds.iu, auth, tenant=creds.ti, backoff=FAST) as c:
            c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZDE"})
            time.sleep(1.3)
            assert c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZDE"})[0]["CUCD"] == "EUR"
            assert len(auth.grants) == 2
    finally:
        box.server.stop()


def test_close_revokes_the_token(sandbox):
    creds = IonApiCredentials.from_file(sandbox.ionapi)
    auth = IonApiOAuth(creds)
    c = M3Client(creds.iu, auth, tenant=creds.ti, backoff=FAST)
    c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})
    token = auth.access_token()
    url = f"{creds.m3_base_url}/m3api-rest/v2/execute/CRS610MI/GetBasicData?CUNO=AMZUS"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    c.close()
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_wrong_client_secret_is_an_auth_error_without_the_secret(sandbox, tmp_path):
    raw = json.loads(sandbox.ionapi.read_text())
    raw["sask"] = "WRONG-SECRET-VALUE"
    bad = tmp_path / "bad.ionapi"
    bad.write_text(json.dumps(raw))
    with M3Client.from_ionapi(bad, backoff=FAST) as c:
        with pytest.raises(M3AuthError) as info:
            c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})
    assert "WRONG-SECRET-VALUE" not in str(info.value)


@pytest.fixture(scope="module")
def basic_sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory, "m3basic", auth="basic")
    yield box
    box.server.stop()


def test_basic_auth(basic_sandbox):
    user, password = basic_credentials(basic_sandbox)
    with M3Client.basic(basic_sandbox.base_url, user, password, backoff=FAST) as c:
        assert c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZFR"})[0]["CUNO"] == "AMZFR"
    with M3Client.basic(basic_sandbox.base_url, user, password + "x", backoff=FAST) as c:
        with pytest.raises(M3AuthError):
            c.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZFR"})


def basic_credentials(box: Sandbox) -> tuple[str, str]:
    return basic_auth_credentials(box.data_dir)


# ---------------------------------------------------------------------------------------------
# Errors, bulk, v1
# ---------------------------------------------------------------------------------------------


def test_every_error_type_surfaces_with_code_and_field(client):
    with pytest.raises(M3TransactionError) as info:
        client.execute("CRS610MI", "GetBasicData", {"CUNO": "NOSUCH"})
    assert (info.value.error_type, info.value.code, info.value.field) == ("ServerReturnedNOK", "WCU0203", "CUNO")
    assert "NOSUCH" in info.value.message

    with pytest.raises(M3TransactionError) as info:
        client.execute("OIS100MI", "NoSuchTransaction", {}, idempotent=False)
    assert info.value.error_type == "TransactionNotFound"

    with pytest.raises(M3TransactionError) as info:
        client.execute("CRS610MI", "Add", {"CUTM": "AMZTMPL", "CUA1": "Street 1"})
    assert (info.value.error_type, info.value.field) == ("MandatoryInputFieldNotFound", "CUNM")

    with pytest.raises(M3TransactionError) as info:
        client.execute("CRS610MI", "Add", {"CUTM": "AMZTMPL", "CUNM": "N" * 37, "CUA1": "Street 1"})
    assert (info.value.error_type, info.value.field) == ("InputFieldTooLong", "CUNM")

    with pytest.raises(M3TransactionError) as info:
        client.execute("MMS200MI", "GetItmWhsBal", {"WHLO": "100", "ITNO": "NOSUCHITEM"})
    assert (info.value.code, info.value.field) == ("WIT0103", "ITNO")


def test_bulk_with_one_failing_transaction(client):
    results = client.execute_bulk(
        "CRS610MI",
        [
            ("GetBasicData", {"CUNO": "AMZUS"}),
            ("GetBasicData", {"CUNO": "NOSUCH"}),
            ("GetBasicData", {"CUNO": "AMZUK"}),
        ],
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].records[0]["CUCD"] == "USD" and results[2].records[0]["CUCD"] == "GBP"
    assert (results[1].error.code, results[1].error.field) == ("WCU0203", "CUNO")


def test_v1_parsing_trims_padding_and_reads_nok(client):
    [record] = client.execute_v1("CRS610MI", "GetBasicData", {"CUNO": "AMZDE"})
    assert record["CUNO"] == "AMZDE" and record["CUNM"] == "Amazon.de customers" and record["CUCD"] == "EUR"
    rows = client.execute_v1("CRS610MI", "LstByNumber", {}, maxrecs=2, returncols=["CUNO", "CUCD"])
    assert len(rows) == 2 and set(rows[0]) == {"CUNO", "CUCD"}
    with pytest.raises(M3TransactionError) as info:
        client.execute_v1("CRS610MI", "GetBasicData", {"CUNO": "NOSUCH"})
    assert (info.value.error_type, info.value.code, info.value.field) == ("ServerReturnedNOK", "WCU0203", "CUNO")
    assert info.value.message.endswith("does not exist")  # the 132-char padding is gone


def test_bad_names_are_refused_before_sending(client):
    with pytest.raises(ValueError, match="not an MI program"):
        client.execute("../admin", "Get", {})
    with pytest.raises(ValueError, match="field name"):
        client.execute("CRS610MI", "GetBasicData", {"cuno": "AMZUS"})


# ---------------------------------------------------------------------------------------------
# Business operations in both profiles
# ---------------------------------------------------------------------------------------------


def test_customer_created_and_read_back(ops, caplog):
    caplog.set_level(logging.DEBUG)
    name = unique("Jane-Buyer-")
    cuno = ops.create_customer(
        CustomerRequest(
            name=name,
            address1="1 Main Street",
            town="Berlin",
            country="DE",
            postal_code="10115",
            currency="EUR",
            email="jane@example.com",
        )
    )
    customer = ops.get_customer(cuno)
    assert (customer.cuno, customer.name, customer.town, customer.country, customer.currency) == (
        cuno,
        name,
        "Berlin",
        "DE",
        "EUR",
    )
    assert customer.address == ("1 Main Street",)
    assert "jane@example.com" not in repr(customer)
    assert cuno in [c.cuno for c in ops.search_customers(f"CUNM:{name}")]
    # buyer data travels in the query string; httpx's request log line must not show it
    assert "HTTP Request" in caplog.text and name not in caplog.text and "Berlin" not in caplog.text


def test_customer_request_checks_m3_limits():
    with pytest.raises(M3DataError, match="CUNM is 37 characters, M3 allows 36"):
        CustomerRequest(name="N" * 37, address1="Street 1")
    with pytest.raises(M3DataError, match="CUA1 must be given"):
        CustomerRequest(name="Jane", address1="")


def test_order_created_found_and_read_back(ops, sandbox):
    cuor = unique("111-0000000-")
    order = OrderRequest(
        cuno="AMZDE",
        customer_order_ref=cuor,
        order_type="AMZ",
        lines=(
            OrderLineRequest(itno=first_item(ops), quantity=2, unit_price=Decimal("10.50")),
            OrderLineRequest(
                itno=first_item(ops), quantity=Decimal(1), unit_price=Decimal("4.00"), discount=Decimal("1.00")
            ),
        ),
        delivery_address=OrderAddress(name="Jane Buyer", address1="1 Main Street", town="Berlin", country="DE"),
    )
    assert ops.find_order_by_reference("AMZDE", cuor) is None
    created = ops.create_order(order)
    assert created.line_numbers == (1, 2)
    assert (created.batch_orno is not None) == (ops.profile == "cloudsuite")
    assert ops.find_order_by_reference("AMZDE", cuor) == created.orno
    head = ops.get_order(created.orno)
    # 2 x 10.50 + (1 x 4.00 - 1.00) = 24.00 net; 19 % VAT on EUR orders in the sandbox = 4.56
    assert (head.cuno, head.customer_order_ref, head.currency) == ("AMZDE", cuor, "EUR")
    assert (head.net_amount, head.vat_amount, head.total_amount) == (
        Decimal("24.00"),
        Decimal("4.56"),
        Decimal("28.56"),
    )
    lines = ops.list_order_lines(created.orno)
    assert [(ln.line_number, ln.quantity, ln.unit_price, ln.net_amount) for ln in lines] == [
        (1, Decimal(2), Decimal("10.50"), Decimal("21.00")),
        (2, Decimal(1), Decimal("4.00"), Decimal("3.00")),
    ]


def test_order_with_an_unknown_item_reports_the_line(ops):
    from connectors.m3.errors import M3OrderIncomplete

    order = OrderRequest(
        cuno="AMZUS",
        customer_order_ref=unique("112-"),
        order_type="AMZ",
        lines=(OrderLineRequest(itno="NOSUCHITEM", quantity=1, unit_price=Decimal("1.00")),),
    )
    with pytest.raises(M3OrderIncomplete) as info:
        ops.create_order(order)
    assert info.value.errors[0].code == "WIT0103" and info.value.orno


def first_item(ops: M3Operations) -> str:
    return ops.client.execute("MMS080MI", "LstItemBal", {"WHLO": "100"}, maxrecs=1)[0]["ITNO"]


def test_balances_agree_across_profiles(client):
    brief, cloud = M3Operations(client, "brief"), M3Operations(client, "cloudsuite")
    all_brief = {b.itno: b for b in brief.read_balances("100")}
    all_cloud = {b.itno: b for b in cloud.read_balances("100")}
    assert all_brief.keys() == all_cloud.keys() and len(all_brief) > 3
    some = sorted(all_brief)[:3]
    for picked in (brief.read_balances("100", some), cloud.read_balances("100", some)):
        assert [b.itno for b in picked] == some
        for b in picked:
            assert (b.on_hand, b.allocated) == (all_brief[b.itno].on_hand, all_cloud[b.itno].allocated)
            assert b.allocatable == b.on_hand - b.allocated
    item = brief.get_item(some[0])
    assert item.itno == some[0] and item.status == "20" and item.unit == "PCS"
    with pytest.raises(M3TransactionError) as info:
        cloud.read_balances("XXX", some[:1])
    assert info.value.code == "WWH0103"


def test_delivery_tracking_and_invoices(ops, sandbox):
    itno = first_item(ops)
    created = ops.create_order(
        OrderRequest(
            cuno="AMZUK",
            customer_order_ref=unique("113-"),
            order_type="AMZ",
            lines=(OrderLineRequest(itno=itno, quantity=3, unit_price=Decimal("5.00")),),
        )
    )
    assert ops.delivery_tracking(created.orno) == []
    sandbox.admin("POST", "/sandbox/advance", {"to": "77", "orders": [created.orno], "date": "20241020"})
    [delivery] = ops.delivery_tracking(created.orno)
    assert delivery.tracking and delivery.orno == created.orno
    assert [(ln.itno, ln.quantity) for ln in delivery.lines] == [(itno, Decimal(3))]
    [invoice] = ops.list_invoices_for_order(created.orno)
    # 3 x 5.00 = 15.00 net; GBP VAT 20 % = 3.00
    assert (invoice.net, invoice.tax, invoice.gross, invoice.currency) == (
        Decimal("15.00"),
        Decimal("3.00"),
        Decimal("18.00"),
        "GBP",
    )
    assert invoice.ivdt == date(2024, 10, 20) and invoice.cuno == "AMZUK"
    in_range = ops.list_invoices(date(2024, 10, 1), date(2024, 10, 31))
    assert invoice.ivno in [i.ivno for i in in_range]
    assert invoice.ivno not in [i.ivno for i in ops.list_invoices(date(2024, 11, 1), date(2024, 11, 30))]


def test_voucher_posted_once_and_read_back(ops, sandbox):
    key = unique(f"AMZ-{ops.profile[:2].upper()}-")
    before = sandbox.state()["vouchers"]
    posted = ops.post_voucher(entry(key, balanced_lines()))
    assert not posted.already_posted and posted.key == key and posted.vono
    assert (posted.debit, posted.credit, posted.currency) == (Decimal("120.00"), Decimal("120.00"), "EUR")
    assert posted.accounting_date == date(2024, 10, 25)
    assert sorted(ln.amount for ln in posted.lines) == [Decimal("-104.50"), Decimal("-15.50"), Decimal("120.00")]
    assert ("6570", "AMZFEE") in [ln.dimensions for ln in posted.lines]
    again = ops.post_voucher(entry(key, balanced_lines()))
    assert again.already_posted and (again.year, again.vono) == (posted.year, posted.vono)
    assert sandbox.state()["vouchers"] == before + 1
    found = ops.find_voucher(key, date(2024, 10, 27))
    assert found is not None and found.vono == posted.vono
    assert ops.find_voucher(key + "X", date(2024, 10, 25)) is None


def test_unbalanced_voucher_refused_by_m3_when_sent_raw(client, ops, sandbox):
    key = unique("AMZ-RAW-")
    common = {"DIVI": "AAA", "ACDT": date(2024, 10, 25), "VTXT": key, "CUCD": "EUR", "NLIN": 2}
    results = client.execute_bulk(
        "GLS200MI",
        [
            ("Add", {**common, "LINE": 1, "AIT1": "1930", "CUAM": Decimal("100.00")}),
            ("Add", {**common, "LINE": 2, "AIT1": "3010", "CUAM": Decimal("-99.00")}),
        ],
    )
    assert results[0].ok and not results[1].ok
    assert (results[1].error.error_type, results[1].error.code) == ("ServerReturnedNOK", "XBA0001")
    assert ops.find_voucher(key, date(2024, 10, 25)) is None


def test_closed_period_is_refused(ops, sandbox):
    sandbox.admin("POST", "/sandbox/periods", {"divi": "AAA", "period": "202303", "closed": True})
    with pytest.raises(M3TransactionError) as info:
        ops.post_voucher(entry(unique("AMZ-CL-"), balanced_lines(), acdt=date(2023, 3, 15)))
    assert info.value.code == "WPE0101"


# ---------------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------------


def test_reads_are_retried_through_server_errors(client, sandbox, no_faults, caplog):
    caplog.set_level(logging.WARNING, logger="connectors.m3.client")
    sandbox.admin(
        "POST",
        "/sandbox/faults",
        {"error_rate": 0.5, "status": 503, "seed": 7, "transactions": ["CRS610MI/GetBasicData"]},
    )
    for _ in range(6):
        assert client.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})[0]["CUNO"] == "AMZUS"
    assert "retry" in caplog.text  # at least one of the 6 reads met a 503 and was retried


def test_reads_give_up_after_the_backoff_attempts(client, sandbox, no_faults):
    sandbox.admin(
        "POST", "/sandbox/faults", {"error_rate": 1.0, "status": 429, "transactions": ["CRS610MI/GetBasicData"]}
    )
    with pytest.raises(M3Unavailable) as info:
        client.execute("CRS610MI", "GetBasicData", {"CUNO": "AMZUS"})
    assert info.value.status == 429


def test_read_timeouts_are_retried_then_reported(sandbox, no_faults):
    sandbox.admin(
        "POST", "/sandbox/faults", {"timeout_rate": 1.0, "hang_ms": 800, "transactions": ["MMS200MI/GetItmBasic"]}
    )
    with M3Client.from_ionapi(sandbox.ionapi, timeout=0.2, backoff=Backoff(attempts=2, base=0.01, cap=0.01)) as c:
        with pytest.raises(M3Unavailable, match="timed out"):
            c.execute("MMS200MI", "GetItmBasic", {"ITNO": "ANY"})


def test_errors_survive_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(M3TransactionError("CRS610MI", "Add", "InputFieldTooLong", None, "CUNM", "x")))
    assert (error.program, error.transaction, error.error_type, error.field) == (
        "CRS610MI",
        "Add",
        "InputFieldTooLong",
        "CUNM",
    )
    unavailable = pickle.loads(pickle.dumps(M3Unavailable("GLS200MI/Add", "HTTP 503", status=503)))
    assert unavailable.status == 503 and "HTTP 503" in str(unavailable)
    since = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
    doubt = pickle.loads(pickle.dumps(M3WriteInDoubt("GLS200MI/Add", "timed out", key="AMZ-1", since=since)))
    assert (doubt.key, doubt.since, str(doubt)) == (
        "AMZ-1",
        since,
        "M3 unavailable for GLS200MI/Add: timed out; the write to M3 is in doubt (posting key AMZ-1)",
    )
    failed = pickle.loads(pickle.dumps(M3BatchFailed("AMZ-1", "XBA0003", "Account blocked")))
    assert (failed.batch, failed.code, failed.field, failed.message) == (
        "AMZ-1",
        "XBA0003",
        "KEY1",
        "GLS840 batch AMZ-1 was not booked by M3's update job: Account blocked",
    )


def test_writes_are_not_retried(client, sandbox, no_faults, caplog):
    caplog.set_level(logging.WARNING, logger="connectors.m3.client")
    sandbox.admin("POST", "/sandbox/faults", {"error_rate": 1.0, "status": 503, "transactions": ["CRS610MI/Add"]})
    ops = M3Operations(client)
    with pytest.raises(M3Unavailable):
        ops.create_customer(CustomerRequest(name="Never Twice", address1="Street"))
    assert "retry" not in caplog.text


def test_dropped_answer_after_commit_posts_exactly_one_voucher(ops, sandbox, no_faults):
    key = unique(f"AMZ-DR{ops.profile[:1].upper()}-")
    transaction = "GLS200MI/Add" if ops.profile == "brief" else "GLS840MI/UpdBatch"
    before = sandbox.state()["vouchers"]
    sandbox.admin("POST", "/sandbox/faults", {"drop_after_commit": 1, "transactions": [transaction]})
    posted = ops.post_voucher(entry(key, balanced_lines("80.00")))
    assert posted.already_posted and posted.key == key
    assert (posted.debit, posted.credit) == (Decimal("80.00"), Decimal("80.00"))
    assert sandbox.state()["vouchers"] == before + 1
    # and a later retry of the whole posting still finds it
    assert ops.post_voucher(entry(key, balanced_lines("80.00"))).vono == posted.vono
    assert sandbox.state()["vouchers"] == before + 1
