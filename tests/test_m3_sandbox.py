"""The M3 sandbox over real HTTP: auth, wire formats, validation, orders, invoices, vouchers, faults.

Expected amounts are worked out by hand in the comments next to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.catalog import build_catalog
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import basic_auth_credentials, sandbox_credentials, write_ionapi
from sandbox.server import RunningServer, serve_in_thread

TENANT = "SANDBOX_TST"


class M3:
    """A raw httpx client for one running sandbox, authenticated through the .ionapi flow."""

    def __init__(self, server: RunningServer, data_dir: Path) -> None:
        self.base = server.base_url
        self.creds = sandbox_credentials(data_dir)
        self.http = httpx.Client(base_url=self.base, timeout=10)
        self.token = self.fetch_token()["access_token"]

    def fetch_token(self, **overrides: str) -> dict[str, Any]:
        form = {
            "grant_type": "password",
            "username": self.creds.service_access_key,
            "password": self.creds.service_secret_key,
            "client_id": self.creds.client_id,
            "client_secret": self.creds.client_secret,
            **overrides,
        }
        response = self.http.post(f"/{TENANT}/as/token.oauth2", data=form)
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def v1(self, pgm: str, trn: str, matrix: str = "", **fields: str) -> httpx.Response:
        return self.http.get(f"/m3api-rest/execute/{pgm}/{trn}{matrix}", params=fields, headers=self.auth)

    def v2(self, pgm: str, trn: str, **fields: str) -> httpx.Response:
        return self.http.get(f"/m3api-rest/v2/execute/{pgm}/{trn}", params=fields, headers=self.auth)

    def ok(self, pgm: str, trn: str, **fields: str) -> list[dict[str, str]]:
        response = self.v2(pgm, trn, **fields)
        assert response.status_code == 200, response.text
        return response.json()["results"][0]["records"]

    def error(self, pgm: str, trn: str, **fields: str) -> dict[str, Any]:
        response = self.v2(pgm, trn, **fields)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["nrOfFailedTransactions"] == 1 and body["nrOfSuccessfullTransactions"] == 0
        return body["results"][0]

    def bulk(self, program: str, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        body = {"program": program, "transactions": [{"transaction": t, "record": r} for t, r in items]}
        response = self.http.post("/m3api-rest/v2/execute", json=body, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def admin(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> httpx.Response:
        return self.http.request(method, f"/sandbox/{path}", json=body)


@pytest.fixture(scope="module")
def m3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[M3]:
    """One sandbox for the module (starting a server per test costs most of the run time):
    tests use their own dates, keys and order numbers, and compare counts before and after."""
    data_dir = tmp_path_factory.mktemp("m3")
    with serve_in_thread(lambda url: create_app(data_dir, url)) as server:
        client = M3(server, data_dir)
        yield client
        client.http.close()


@pytest.fixture
def clear_faults(m3: M3) -> Iterator[None]:
    yield
    assert m3.admin("faults", method="DELETE").status_code == 200


def _count(m3: M3, what: str) -> int:
    return int(m3.admin("state", method="GET").json()[what])


# ---- auth ----------------------------------------------------------------------------------


def test_token_refresh_and_expiry(tmp_path: Path) -> None:
    with serve_in_thread(lambda url: create_app(tmp_path, url, token_lifetime=1)) as server:
        m3 = M3(server, tmp_path)
        first = m3.fetch_token()
        assert first["token_type"] == "Bearer" and first["expires_in"] == 1
        assert m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS").status_code == 200
        # refresh with client credentials as HTTP Basic (docs.infor.com) ...
        refreshed = m3.http.post(
            f"/{TENANT}/as/token.oauth2",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            auth=(m3.creds.client_id, m3.creds.client_secret),
        )
        assert refreshed.status_code == 200
        assert refreshed.json()["access_token"] != first["access_token"]
        time.sleep(1.3)
        m3.token = first["access_token"]
        expired = m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS")
        assert expired.status_code == 401
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
        # ... and as form fields; the refresh token outlives the access token
        again = m3.http.post(
            f"/{TENANT}/as/token.oauth2",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
                "client_id": m3.creds.client_id,
                "client_secret": m3.creds.client_secret,
            },
        )
        assert again.status_code == 200
        m3.token = again.json()["access_token"]
        assert m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS").status_code == 200


def test_missing_wrong_and_revoked_tokens_are_401(m3: M3) -> None:
    url = "/m3api-rest/v2/execute/CRS610MI/GetBasicData?CUNO=AMZUS"
    assert m3.http.get(url).status_code == 401
    assert m3.http.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    token = {"Authorization": f"Bearer {m3.fetch_token()['access_token']}"}
    assert m3.http.get(url, headers=token).status_code == 200
    revoke = m3.http.post(
        f"/{TENANT}/as/revoke_token.oauth2",
        data={"token": token["Authorization"][7:], "token_type_hint": "access_token"},
        auth=(m3.creds.client_id, m3.creds.client_secret),
    )
    assert revoke.status_code == 200
    assert m3.http.get(url, headers=token).status_code == 401
    assert m3.http.get("/m3api-rest/csrf").status_code == 401


def test_token_endpoint_rejects_bad_credentials(m3: M3) -> None:
    base = {
        "grant_type": "password",
        "username": m3.creds.service_access_key,
        "password": m3.creds.service_secret_key,
        "client_id": m3.creds.client_id,
    }
    wrong_client = m3.http.post(f"/{TENANT}/as/token.oauth2", data={**base, "client_secret": "nope"})
    assert (wrong_client.status_code, wrong_client.json()["error"]) == (401, "invalid_client")
    wrong_user = m3.http.post(
        f"/{TENANT}/as/token.oauth2", data={**base, "client_secret": m3.creds.client_secret, "password": "nope"}
    )
    assert (wrong_user.status_code, wrong_user.json()["error"]) == (400, "invalid_grant")
    assert m3.creds.client_secret not in wrong_user.text


def test_basic_auth_mode(tmp_path: Path) -> None:
    user, password = basic_auth_credentials(tmp_path)
    with serve_in_thread(lambda url: create_app(tmp_path, url, auth="basic")) as server:
        url = f"{server.base_url}/m3api-rest/v2/execute/CRS610MI/GetBasicData?CUNO=AMZFR"
        ok = httpx.get(url, auth=(user, password))
        assert ok.status_code == 200 and ok.json()["results"][0]["records"][0]["CUCD"] == "EUR"
        assert httpx.get(url, auth=(user, password + "x")).status_code == 401
        assert httpx.get(url).status_code == 401


def test_ionapi_file_drives_the_password_grant(m3: M3, tmp_path: Path) -> None:
    path = write_ionapi(tmp_path / "sandbox.ionapi", m3.base, TENANT, m3.creds)
    doc = json.loads(path.read_text())
    assert set(doc) == {"ti", "cn", "dt", "ci", "cs", "iu", "pu", "oa", "ot", "or", "ev", "v", "saak", "sask"}
    assert doc["pu"] == f"{m3.base}/{TENANT}/as/" and doc["iu"] == m3.base and doc["ti"] == TENANT
    token = httpx.post(
        doc["pu"] + doc["ot"],
        data={
            "grant_type": "password",
            "username": doc["saak"],
            "password": doc["sask"],
            "client_id": doc["ci"],
            "client_secret": doc["cs"],
        },
    ).json()["access_token"]
    via_gateway = httpx.get(
        f"{doc['iu']}/{doc['ti']}/M3/m3api-rest/v2/execute/CRS610MI/GetBasicData",
        params={"CUNO": "AMZUK"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert via_gateway.json()["results"][0]["records"][0]["CUCD"] == "GBP"
    assert m3.creds.client_secret not in repr(m3.creds) and m3.creds.service_secret_key not in repr(m3.creds)


# ---- wire formats and validation -------------------------------------------------------------


def test_v1_record_is_padded_and_has_metadata(m3: M3) -> None:
    item = build_catalog(0)[0]
    body = m3.v1("MMS200MI", "GetItmBasic", ";returncols=ITNO,ITDS,STAT", ITNO=item.itno).json()
    assert (body["Program"], body["Transaction"]) == ("MMS200MI", "GetItmBasic")
    assert body["Metadata"]["Field"] == [
        {"@name": "STAT", "@type": "A", "@length": 2, "@description": "Status"},
        {"@name": "ITNO", "@type": "A", "@length": 15, "@description": "Item number"},
        {"@name": "ITDS", "@type": "A", "@length": 30, "@description": "Name"},
    ]
    values = {nv["Name"]: nv["Value"] for nv in body["MIRecord"][0]["NameValue"]}
    assert values == {"STAT": "20", "ITNO": item.itno.ljust(15), "ITDS": item.name.ljust(30)}
    assert body["MIRecord"][0]["RowIndex"] == 0
    without = m3.v1("MMS200MI", "GetItmBasic", ";metadata=false", ITNO=item.itno).json()
    assert "Metadata" not in without


def test_v1_nok_is_http_200_with_padded_message(m3: M3) -> None:
    response = m3.v1("CRS610MI", "GetBasicData", CUNO="NOSUCH")
    assert response.status_code == 200
    body = response.json()
    assert len(body["Message"]) == 132 and body["Message"].rstrip() == "Customer number NOSUCH does not exist"
    assert (body["@type"], body["@code"], body["@field"]) == ("ServerReturnedNOK", "WCU0203", "CUNO")


def _order(m3: M3, customer: str = "AMZDE", **head: str) -> str:
    return m3.ok("OIS100MI", "AddHead", CUNO=customer, ORTP=head.pop("ORTP", "AMZ"), **head)[0]["ORNO"]


@pytest.mark.parametrize(
    "pgm, trn, fields, error_type, code, field",
    [
        ("CRS610MI", "GetNothing", {"CUNO": "AMZUS"}, "TransactionNotFound", "", ""),
        ("XXX999MI", "Get", {}, "TransactionNotFound", "", ""),
        ("CRS610MI", "GetBasicData", {}, "MandatoryInputFieldNotFound", "", "CUNO"),
        ("CRS610MI", "GetBasicData", {"CUNO": "   "}, "MandatoryInputFieldNotFound", "", "CUNO"),
        ("CRS610MI", "GetBasicData", {"CUNO": "A" * 11}, "InputFieldTooLong", "", "CUNO"),
        ("CRS610MI", "GetBasicData", {"CUNO": "NOSUCH"}, "ServerReturnedNOK", "WCU0203", "CUNO"),
        ("MMS200MI", "GetItmBasic", {"ITNO": "NOSUCH"}, "ServerReturnedNOK", "WIT0103", "ITNO"),
        ("MMS200MI", "GetItmWhsBal", {"WHLO": "ZZZ", "ITNO": "A10001"}, "ServerReturnedNOK", "WWH0103", "WHLO"),
        ("OIS100MI", "GetHead", {"ORNO": "4711"}, "ServerReturnedNOK", "WOR0303", "ORNO"),
        ("OIS100MI", "AddHead", {"CUNO": "AMZDE", "ORTP": "XYZ"}, "ServerReturnedNOK", "WTT0403", "ORTP"),
        ("OIS100MI", "AddLine", {"ORNO": "1", "ITNO": "A10001", "ORQT": "two"}, "ServerReturnedNOK", "WORQT01", "ORQT"),
        (
            "GLS200MI",
            "LstVouchersByDt",
            {"DIVI": "AAA", "FDAT": "20241301", "TDAT": "20241231"},
            "ServerReturnedNOK",
            "WFDAT01",
            "FDAT",
        ),
    ],
)
def test_v2_errors(m3: M3, pgm: str, trn: str, fields: dict[str, str], error_type: str, code: str, field: str) -> None:
    result = m3.error(pgm, trn, **fields)
    assert (result["errorType"], result["errorCode"], result["errorField"]) == (error_type, code, field)
    assert result["records"] == [] and result["errorMessage"]


def test_order_line_rules(m3: M3) -> None:
    orno = _order(m3)
    assert m3.error("OIS100MI", "AddLine", ORNO=orno, ITNO="A10001", ORQT="0")["errorCode"] == "WORQT01"
    assert m3.error("OIS100MI", "AddLine", ORNO=orno, ITNO="NOPE", ORQT="1")["errorCode"] == "WIT0103"
    assert m3.error("OIS100MI", "AddLine", ORNO=orno, ITNO="A10001", ORQT="1", WHLO="ZZZ")["errorCode"] == "WWH0103"
    too_long = m3.error("OIS100MI", "AddHead", CUNO="AMZDE", ORTP="AMZ", CUOR="1" * 21)
    assert (too_long["errorType"], too_long["errorField"]) == ("InputFieldTooLong", "CUOR")


def test_bulk_runs_every_transaction_and_reports_failures_per_item(m3: M3) -> None:
    body = m3.bulk(
        "CRS610MI",
        [
            ("GetBasicData", {"CUNO": "AMZUS", "CONO": 100}),
            ("GetBasicData", {"CUNO": "NOSUCH"}),
            ("GetBasicData", {"CUNO": "AMZUK"}),
        ],
    )
    assert body["nrOfSuccessfullTransactions"] == 2 and body["nrOfFailedTransactions"] == 1
    first, failed, last = body["results"]
    assert first["records"][0]["CUCD"] == "USD" and last["records"][0]["CUCD"] == "GBP"
    assert (failed["errorCode"], failed["errorField"]) == ("WCU0203", "CUNO")
    bad = m3.http.post("/m3api-rest/v2/execute", json={"transactions": []}, headers=m3.auth)
    assert bad.status_code == 400 and "program" in bad.json()["terminationReason"]


def test_v2_maxrecs_and_returncols(m3: M3) -> None:
    records = m3.ok("MMS080MI", "LstItemBal", WHLO="100", maxrecs="5", returncols="ITNO,STQT")
    assert len(records) == 5 and all(set(r) == {"ITNO", "STQT"} for r in records)
    assert len(m3.ok("MMS080MI", "LstItemBal", WHLO="FBA", maxrecs="0")) == len(build_catalog(0))


# ---- customers -------------------------------------------------------------------------------


def test_customer_add_and_read_back(m3: M3) -> None:
    cuno = m3.ok("CRS610MI", "Add", CUTM="AMZTMPL", CUNM="Jane Buyer", CUA1="1 High St", CUCD="GBP", CSCD="GB")[0][
        "CUNO"
    ]
    record = m3.ok("CRS610MI", "GetBasicData", CUNO=cuno)[0]
    assert (record["CUNM"], record["CUA1"], record["CUCD"], record["STAT"]) == ("Jane Buyer", "1 High St", "GBP", "20")
    assert [r["CUNO"] for r in m3.ok("CRS610MI", "SearchCustomer", SQRY="CUNM:JANE*")] == [cuno]
    assert cuno in [r["CUNO"] for r in m3.ok("CRS610MI", "LstByNumber", maxrecs="0")]
    assert m3.error("CRS610MI", "Add", CUTM="AMZTMPL", CUNM="X", CUA1="Y", CUNO=cuno)["errorCode"] == "WCU0204"
    missing = m3.error("CRS610MI", "Add", CUTM="NOPE", CUNM="X", CUA1="Y")
    assert (missing["errorCode"], missing["errorField"]) == ("WCU0203", "CUTM")
    assert m3.error("CRS610MI", "Add", CUTM="AMZTMPL", CUNM="X")["errorField"] == "CUA1"


# ---- orders to invoices ------------------------------------------------------------------------


def _balance(m3: M3, whlo: str, itno: str) -> int:
    return int(m3.ok("MMS200MI", "GetItmWhsBal", WHLO=whlo, ITNO=itno)[0]["STQT"])


def test_brief_order_to_invoice(m3: M3) -> None:
    stock_before = _balance(m3, "100", "A10001")
    orno = _order(m3, "AMZDE", CUOR="302-1234567-1234567")
    m3.ok("OIS100MI", "AddLine", ORNO=orno, ITNO="A10001", ORQT="2", SAPR="25.00", DIA1="5.00")
    m3.ok("OIS100MI", "AddLine", ORNO=orno, ITNO="A10002", ORQT="1", SAPR="10.00")
    head = m3.ok("OIS100MI", "GetHead", ORNO=orno)[0]
    # gross 2*25 + 10 = 60.00; net 60 - 5 = 55.00; VAT EUR 19% = 10.45; total 65.45
    assert (head["BRAM"], head["NTAM"], head["VTAM"], head["TOPY"]) == ("60.00", "55.00", "10.45", "65.45")
    assert (head["CUCD"], head["CUOR"], head["ORSL"], head["ORST"]) == ("EUR", "302-1234567-1234567", "22", "22")
    assert [h["ORNO"] for h in m3.ok("OIS100MI", "LstHead", CUNO="AMZDE") if h["CUOR"] == "302-1234567-1234567"] == [
        orno
    ]

    moved = m3.admin("advance", {"to": "77", "orders": [orno], "date": "20241025"})
    assert moved.status_code == 200 and moved.json()["orders"] == [{"orno": orno, "status": "77"}]
    assert moved.json()["moved"] == [orno]
    # An invoiced order does not move again; 'except' goes with every order, not with a list.
    assert m3.admin("advance", {"to": "77", "orders": [orno]}).json()["moved"] == []
    assert m3.admin("advance", {"to": "77", "orders": [orno], "except": [orno]}).status_code == 400
    lines = m3.ok("OIS100MI", "LstLine", ORNO=orno)
    assert [(ln["PONR"], ln["ORST"], ln["NLAM"], ln["IVQT"]) for ln in lines] == [
        ("1", "77", "45.00", "2"),
        ("2", "77", "10.00", "1"),
    ]
    invoice = m3.ok("OIS350MI", "LstInvHeadByCo", ORNO=orno)[0]
    assert (invoice["AMT1"], invoice["AMT2"], invoice["VTAM"]) == ("65.45", "55.00", "10.45")
    assert (invoice["IVDT"], invoice["YEA4"], invoice["CUNO"], invoice["CUCD"]) == ("20241025", "2024", "AMZDE", "EUR")
    in_range = m3.ok("OIS350MI", "LstInvHead", YEA4="2024", FIVD="20241001", TIVD="20241031")
    assert [i["IVNO"] for i in in_range] == [invoice["IVNO"]]
    assert m3.ok("OIS350MI", "LstInvHead", YEA4="2024", FIVD="20241026", TIVD="20241031") == []

    delivery_line = m3.ok("MWS411MI", "LstDelLnByOrd", RORC="3", RIDN=orno)[0]
    delivery = m3.ok("MWS410MI", "GetHead", DLIX=delivery_line["DLIX"])[0]
    assert delivery["RIDN"] == orno and delivery["ETRN"] and delivery["FWNO"] == "DHL"
    assert _balance(m3, "100", "A10001") == stock_before - 2


def test_cloudsuite_batch_order_to_invoice(m3: M3) -> None:
    temp = m3.ok("OIS100MI", "AddBatchHead", CUNO="AMZUK", ORTP="AFN", CUOR="026-7654321-7654321")[0]["ORNO"]
    assert (
        m3.ok("OIS100MI", "AddBatchLine", ORNO=temp, ITNO="A10003", ORQT="3", SAPR="12.50", DIA1="2.50")[0]["PONR"]
        == "1"
    )
    assert (
        m3.ok("OIS100MI", "AddBatchAddress", ORNO=temp, ADRT="1", CUNM="J Doe", CUA1="1 Road", TOWN="Leeds", CSCD="GB")
        == []
    )
    confirmed = m3.ok("OIS100MI", "Confirm", ORNO=temp)[0]
    orno = confirmed["ORNO"]
    assert orno != temp and confirmed["STAT"] == "90"
    assert m3.error("OIS100MI", "GetHead", ORNO=temp)["errorCode"] == "WOR0303"
    head = m3.ok("OIS100MI", "GetHead", ORNO=orno)[0]
    assert (head["WHLO"], head["CUCD"], head["CUOR"]) == ("FBA", "GBP", "026-7654321-7654321")

    assert m3.admin(f"orders/{orno}/invoice", {"date": "20241101"}).json() == {"orno": orno, "status": "77"}
    invoice = m3.ok("OIS350MI", "LstInvHeadByCo", ORNO=orno)[0]
    # net 3 * 12.50 - 2.50 = 35.00; VAT GBP 20% = 7.00; gross 42.00
    assert (invoice["AMT2"], invoice["VTAM"], invoice["AMT1"], invoice["IVDT"]) == (
        "35.00",
        "7.00",
        "42.00",
        "20241101",
    )


def test_us_orders_carry_no_vat(m3: M3) -> None:
    orno = _order(m3, "AMZUS")
    m3.ok("OIS100MI", "AddLine", ORNO=orno, ITNO="A10004", ORQT="3", SAPR="19.99")
    m3.admin(f"orders/{orno}/invoice", {"date": "20241105"})
    invoice = m3.ok("OIS350MI", "LstInvHeadByCo", ORNO=orno)[0]
    assert (invoice["AMT2"], invoice["VTAM"], invoice["AMT1"]) == ("59.97", "0.00", "59.97")  # 3 * 19.99


def test_admin_rejects_unknown_order_and_bad_target(m3: M3) -> None:
    unknown = m3.admin("orders/4711/deliver")
    assert unknown.status_code == 400 and "4711" in unknown.json()["error"]
    assert m3.admin("advance", {"to": "55"}).status_code == 400


# ---- vouchers --------------------------------------------------------------------------------

VTXT = "AMZ-10000000001-202410 settlement"


def _voucher_lines(amounts: list[str], acdt: str, vtxt: str = VTXT) -> list[tuple[str, dict[str, Any]]]:
    accounts = ["1930", "3010", "6570", "2611"]
    return [
        (
            "Add",
            {
                "DIVI": "AAA",
                "ACDT": acdt,
                "VSER": "AZ",
                "VTXT": vtxt,
                "CUCD": "EUR",
                "LINE": n,
                "NLIN": len(amounts),
                "AIT1": accounts[n - 1],
                "CUAM": amount,
            },
        )
        for n, amount in enumerate(amounts, start=1)
    ]


def test_brief_voucher_is_booked_when_all_lines_arrived(m3: M3) -> None:
    body = m3.bulk("GLS200MI", _voucher_lines(["100.00", "-80.00", "-20.00"], "20240510"))
    assert body["nrOfFailedTransactions"] == 0
    assert [r["records"] for r in body["results"][:2]] == [[], []]
    booked = body["results"][2]["records"][0]
    head = m3.ok("GLS200MI", "GetVoucherHead", DIVI="AAA", YEA4=booked["YEA4"], VONO=booked["VONO"])[0]
    assert (head["DSUM"], head["CSUM"], head["VTXT"], head["ACDT"], head["CUCD"]) == (
        "100.00",
        "-100.00",
        VTXT,
        "20240510",
        "EUR",
    )
    lines = m3.ok("GLS200MI", "LstVoucherLines", DIVI="AAA", YEA4=booked["YEA4"], VONO=booked["VONO"])
    assert [(ln["AIT1"], ln["CUAM"], ln["DBCR"]) for ln in lines] == [
        ("1930", "100.00", "D"),
        ("3010", "-80.00", "C"),
        ("6570", "-20.00", "C"),
    ]
    found = m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240501", TDAT="20240531")
    assert [(v["VONO"], v["VTXT"]) for v in found] == [(booked["VONO"], VTXT)]


def test_unbalanced_voucher_is_refused_and_nothing_booked(m3: M3) -> None:
    vouchers = _count(m3, "vouchers")
    body = m3.bulk("GLS200MI", _voucher_lines(["100.00", "-99.99"], "20240810"))
    failed = body["results"][1]
    assert (failed["errorCode"], failed["errorMessage"]) == (
        "XBA0001",
        "Voucher does not balance: debit 100.00 credit 99.99",
    )
    assert (_count(m3, "vouchers"), _count(m3, "pending_voucher_lines")) == (vouchers, 0)


def test_closed_period_refuses_postings(m3: M3) -> None:
    assert m3.admin("periods", {"divi": "AAA", "period": "202403", "closed": True}).status_code == 200
    try:
        body = m3.bulk("GLS200MI", _voucher_lines(["10.00", "-10.00"], "20240315"))
        assert [r.get("errorCode") for r in body["results"]] == ["WPE0101", "WPE0101"]
        _gl_batch(m3, "K-CLOSED", [("1", "1930", "10.00"), ("1", "3010", "-10.00")], "20240331")
        assert m3.error("GLS840MI", "CtrlBatch", CONO="100", KEY1="K-CLOSED")["errorCode"] == "WPE0101"
    finally:
        m3.admin("periods", {"divi": "AAA", "period": "202403", "closed": False})
    assert m3.bulk("GLS200MI", _voucher_lines(["10.00", "-10.00"], "20240315"))["nrOfFailedTransactions"] == 0


def i1_record(group: str, account: str, amount: str, acdt: str, vtxt: str = VTXT) -> str:
    """GLUPLOAD I1: I1 + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..7(10 each) + CUCD(3) + CUAM(17 right) + ACDT(8)
    + VTXT(40)."""
    return (
        "I1"
        + "1".rjust(9)
        + group.rjust(8)
        + "AAA"
        + account.ljust(10)
        + " " * 60
        + "EUR"
        + amount.rjust(17)
        + acdt
        + vtxt.ljust(40)
    )


def _gl_batch(m3: M3, key: str, lines: list[tuple[str, str, str]], acdt: str) -> None:
    assert m3.ok("GLS840MI", "AddBatchHead", CONO="100", KEY1=key, INTN="GLUPLOAD", DESC="Amazon settlement") == []
    for n, (group, account, amount) in enumerate(lines, start=1):
        m3.ok(
            "GLS840MI", "AddBatchLine", CONO="100", KEY1=key, LINE=str(n), PARM=i1_record(group, account, amount, acdt)
        )


def test_cloudsuite_gl_batch_books_one_voucher_per_group(m3: M3) -> None:
    assert len(i1_record("1", "1930", "1.00", "20240720")) == 160
    _gl_batch(
        m3,
        "AMZ-1",
        [("1", "1930", "50.00"), ("1", "3010", "-50.00"), ("2", "1930", "7.50"), ("2", "6570", "-7.50")],
        "20240720",
    )
    assert m3.ok("GLS840MI", "CtrlBatch", CONO="100", KEY1="AMZ-1") == []
    # UpdBatch submits M3's batch job: it answers with the company only, and books nothing yet.
    assert m3.ok("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-1") == [{"CONO": "100"}]
    assert m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240720", TDAT="20240720") == []
    # The batch can no longer change, nor be submitted again, nor be replaced by a new head.
    assert m3.error("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-1")["errorCode"] == "XBA0002"
    assert (
        m3.error(
            "GLS840MI",
            "AddBatchLine",
            CONO="100",
            KEY1="AMZ-1",
            LINE="5",
            PARM=i1_record("3", "1930", "1.00", "20240720"),
        )["errorCode"]
        == "XBA0002"
    )
    assert (
        m3.error("GLS840MI", "AddBatchHead", CONO="100", KEY1="AMZ-1", INTN="GLUPLOAD", DESC="again")["errorCode"]
        == "XRE0104"
    )
    ran = m3.admin("gl/batch-job/run").json()["ran"]
    assert [(r["key1"], r["state"], len(r["vouchers"])) for r in ran] == [("AMZ-1", "updated", 2)]
    vouchers = m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240720", TDAT="20240720")
    assert [(v["DSUM"], v["CSUM"]) for v in vouchers] == [("50.00", "-50.00"), ("7.50", "-7.50")]
    assert [v["VONO"] for v in vouchers] == [v["VONO"] for v in ran[0]["vouchers"]]
    assert m3.admin("gl/batch-job/run").json()["ran"] == []  # a job runs once
    assert m3.error("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-1")["errorCode"] == "XRE0104"
    assert (
        m3.error("GLS840MI", "AddBatchHead", CONO="100", KEY1="AMZ-1", INTN="GLUPLOAD", DESC="again")["errorCode"]
        == "XRE0104"
    )


def test_gl_batch_job_runs_after_its_delay_and_can_be_made_to_fail(m3: M3) -> None:
    assert m3.admin("gl/batch-job", {"delay_ms": 300}).json()["delay_ms"] == 300
    try:
        _gl_batch(m3, "AMZ-SLOW", [("1", "1930", "3.00"), ("1", "3010", "-3.00")], "20240722")
        m3.ok("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-SLOW")
        assert m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240722", TDAT="20240722") == []
        time.sleep(0.4)  # past the delay: the next request sees the job done
        [booked] = m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240722", TDAT="20240722")
        assert booked["DSUM"] == "3.00"
        # The next job fails: the batch stays unbooked, its errors visible to the admin call and to CtrlBatch.
        m3.admin("gl/batch-job", {"fail_next": 1, "error": "XBA0009 Account 3010 is blocked"})
        _gl_batch(m3, "AMZ-FAIL", [("1", "1930", "4.00"), ("1", "3010", "-4.00")], "20240723")
        m3.ok("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-FAIL")
        [failed] = m3.admin("gl/batch-job/run").json()["ran"]
        assert (failed["state"], failed["errors"]) == ("failed", ["XBA0009 Account 3010 is blocked"])
        assert m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240723", TDAT="20240723") == []
        listed = {b["key1"]: b for b in m3.admin("gl/batch-job", method="GET").json()["batches"]}
        assert listed["AMZ-FAIL"]["state"] == "failed" and listed["AMZ-SLOW"]["state"] == "updated"
        again = m3.error("GLS840MI", "CtrlBatch", CONO="100", KEY1="AMZ-FAIL")
        assert again["errorCode"] == "XBA0003" and "Account 3010 is blocked" in again["errorMessage"]
        assert m3.admin("gl/batch-job", method="GET").json()["fail_next"] == 0  # only the next job failed
        bad = m3.admin("gl/batch-job", {"delay_ms": -1})
        assert bad.status_code == 400 and "delay_ms" in bad.json()["error"]
    finally:
        m3.admin("gl/batch-job", {"delay_ms": 500})


def test_two_instances_on_one_folder_run_a_batch_job_once(tmp_path: Path) -> None:
    with (
        serve_in_thread(lambda url: create_app(tmp_path, url, gl_batch_delay=0.2)) as first,
        serve_in_thread(lambda url: create_app(tmp_path, url, gl_batch_delay=0.2)) as second,
    ):
        a, b = M3(first, tmp_path), M3(second, tmp_path)
        _gl_batch(a, "AMZ-SHARED", [("1", "1930", "9.00"), ("1", "3010", "-9.00")], "20240724")
        a.ok("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-SHARED")
        time.sleep(0.3)
        # Both instances are asked at once, many times: the job books one voucher.
        import threading

        answers: list[int] = []

        def ask(box: M3) -> None:
            for _ in range(5):
                answers.append(len(box.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240724", TDAT="20240724")))

        threads = [threading.Thread(target=ask, args=(box,)) for box in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [1] * 20
        assert a.admin("gl/batch-job/run").json()["ran"] == [] == b.admin("gl/batch-job/run").json()["ran"]


def test_cloudsuite_gl_batch_refuses_unbalanced_group_and_bad_records(m3: M3) -> None:
    vouchers = _count(m3, "vouchers")
    _gl_batch(m3, "AMZ-2", [("1", "1930", "50.00"), ("1", "3010", "-49.00")], "20240721")
    assert m3.error("GLS840MI", "CtrlBatch", CONO="100", KEY1="AMZ-2")["errorCode"] == "XBA0001"
    assert m3.error("GLS840MI", "UpdBatch", CONO="100", KEY1="AMZ-2")["errorCode"] == "XBA0001"
    bad = m3.error("GLS840MI", "AddBatchLine", CONO="100", KEY1="AMZ-2", LINE="9", PARM="X1 garbage")
    assert (bad["errorCode"], bad["errorField"]) == ("WPARM01", "PARM")
    assert _count(m3, "vouchers") == vouchers


# ---- faults and shared state ---------------------------------------------------------------------


def test_drop_after_commit_keeps_the_voucher(m3: M3, clear_faults: None) -> None:
    assert m3.admin("faults", {"drop_after_commit": 1, "transactions": ["GLS200MI/Add"]}).status_code == 200
    assert m3.ok("CRS610MI", "GetBasicData", CUNO="AMZUS")  # reads are not dropped
    body = {
        "program": "GLS200MI",
        "transactions": [{"transaction": t, "record": r} for t, r in _voucher_lines(["12.34", "-12.34"], "20240615")],
    }
    with pytest.raises(httpx.TransportError):
        m3.http.post("/m3api-rest/v2/execute", json=body, headers=m3.auth)
    found = m3.ok("GLS200MI", "LstVouchersByDt", DIVI="AAA", FDAT="20240615", TDAT="20240615")
    assert [(v["VTXT"], v["DSUM"]) for v in found] == [(VTXT, "12.34")]
    assert m3.bulk("GLS200MI", _voucher_lines(["1.00", "-1.00"], "20240616"))["nrOfFailedTransactions"] == 0


def test_error_status_latency_and_timeout_faults(m3: M3, clear_faults: None) -> None:
    m3.admin("faults", {"error_rate": 1.0, "status": 429})
    limited = m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS")
    assert limited.status_code == 429 and limited.headers["retry-after"]
    m3.admin("faults", {"error_rate": 1.0, "status": 503, "transactions": ["OIS100MI/AddHead"]})
    orders = _count(m3, "orders")
    assert m3.v2("OIS100MI", "AddHead", CUNO="AMZDE", ORTP="AMZ").status_code == 503
    assert _count(m3, "orders") == orders
    m3.admin("faults", {"latency_ms": 200})
    started = time.monotonic()
    assert m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS").status_code == 200
    assert time.monotonic() - started >= 0.2
    m3.admin("faults", {"timeout_rate": 1.0, "hang_ms": 2000})
    with pytest.raises(httpx.ReadTimeout):
        m3.http.get(
            "/m3api-rest/v2/execute/CRS610MI/GetBasicData", params={"CUNO": "AMZUS"}, headers=m3.auth, timeout=0.3
        )
    assert m3.admin("faults", method="DELETE").status_code == 200
    assert m3.v2("CRS610MI", "GetBasicData", CUNO="AMZUS").status_code == 200
    bad = m3.admin("faults", {"error_rate": 2})
    assert bad.status_code == 400 and "error_rate" in bad.json()["error"]


def test_two_instances_on_one_folder_share_state_and_tokens(tmp_path: Path) -> None:
    with (
        serve_in_thread(lambda url: create_app(tmp_path, url)) as first,
        serve_in_thread(lambda url: create_app(tmp_path, url)) as second,
    ):
        a, b = M3(first, tmp_path), M3(second, tmp_path)
        cuno = a.ok("CRS610MI", "Add", CUTM="AMZTMPL", CUNM="Shared", CUA1="Street 1")[0]["CUNO"]
        assert b.ok("CRS610MI", "GetBasicData", CUNO=cuno)[0]["CUNM"] == "Shared"
        b.token = a.token
        assert b.v2("CRS610MI", "GetBasicData", CUNO=cuno).status_code == 200
        # every catalog item, plus the non-stock FREIGHT item shipping charges are invoiced on
        assert a.admin("state", method="GET").json()["items"] == len(build_catalog(0)) + 1


def test_v1_through_the_ion_gateway_path_with_matrix_maxrecs(m3: M3) -> None:
    response = m3.http.get(
        f"/{TENANT}/M3/m3api-rest/execute/MMS060MI/LstBalID;maxrecs=3;excludempty=true",
        params={"WHLO": "FBA", "_rid": "12345"},
        headers=m3.auth,
    )
    records = response.json()["MIRecord"]
    assert [r["RowIndex"] for r in records] == [0, 1, 2]
    names = [nv["Name"] for nv in records[0]["NameValue"]]
    assert "BANO" not in names and names[:2] == ["WHLO", "ITNO"]  # the empty lot number is excluded
    assert m3.http.get(f"/{TENANT}/M3/m3api-rest/csrf", headers=m3.auth).status_code == 200
    assert m3.http.get("/OTHER_TENANT/M3/m3api-rest/csrf", headers=m3.auth).status_code == 404


def test_concurrent_writes_get_distinct_numbers(m3: M3) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(n: int) -> str:
        with httpx.Client(base_url=m3.base, headers=m3.auth, timeout=10) as client:
            response = client.get(
                "/m3api-rest/v2/execute/OIS100MI/AddHead", params={"CUNO": "AMZFR", "ORTP": "AMZ", "CUOR": f"CONC-{n}"}
            )
            return response.json()["results"][0]["records"][0]["ORNO"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        numbers = list(pool.map(create, range(8)))
    assert len(set(numbers)) == 8
    heads = [h for h in m3.ok("OIS100MI", "LstHead", CUNO="AMZFR", maxrecs="0") if h["CUOR"].startswith("CONC-")]
    assert sorted(h["ORNO"] for h in heads) == sorted(numbers)
