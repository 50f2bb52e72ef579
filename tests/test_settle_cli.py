"""``m3sync settle`` through a subprocess: the JSON contract, exit codes and bad input.

Expected figures are worked out from tests/fixtures/settlements/us_v2_usd.tsv by hand.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import httpx
import pytest
from _cli import m3sync
from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS_ARGS

from sandbox.runtime import start_sandbox

# The fixture's orders are in no M3 here: its refund and sales post by choice (sales returns,
# suspense) instead of being held (tests/test_invoice_holds_cli.py tests the hold).
CHOSEN = POST_WITHOUT_M3_DOCUMENTS_ARGS


def _sandbox_vouchers(home: Path) -> int:
    with start_sandbox(home) as env:
        return int(httpx.get(f"{env.m3.base_url}/sandbox/state").json()["vouchers"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fixture_file(us_v2_tsv: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "us_v2_usd.tsv"
    shutil.copy(us_v2_tsv, copy)
    return copy


def test_fixture_posts_once_with_the_contracted_json(prefect_api_url: str, fixture_file: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = _digest(fixture_file)
    first = m3sync(
        "settle", str(fixture_file), "--sandbox", "--json", "--home", str(home), *CHOSEN, api_url=prefect_api_url
    )
    assert first.code == 0, first.stderr
    (entry,) = first.document["settlements"]
    assert {
        k: entry[k]
        for k in (
            "settlement_id",
            "source",
            "format",
            "marketplace",
            "currency",
            "start",
            "end",
            "deposit_date",
            "total_amount",
            "line_count",
            "status",
        )
    } == {
        "settlement_id": "10000000001",
        "source": "us_v2_usd.tsv",
        "format": "v2",
        "marketplace": "Amazon.com",
        "currency": "USD",
        "start": "2024-10-09T14:28:38Z",
        "end": "2024-10-23T14:28:39Z",
        "deposit_date": "2024-10-25",
        "total_amount": "31.81",
        "line_count": 20,
        "status": "posted",
    }
    (voucher,) = entry["journal"]["vouchers"]
    # None of the fixture's orders are in the fresh sandbox M3 (CHOSEN posts them): debits:
    # commission 12.42 + FBA fees 21.79 (5.84+5.84+10.11) + digital services 0.49
    # (0.37+0.37-0.25) + refund commission 2.48 + refunded principal to sales returns 68.99 +
    # deposit 31.81 = 137.98. Credits: the two unbilled sales to suspense 137.98 (68.99 and
    # 68.99+2.99-2.99). Amazon.com is a facilitator marketplace invoiced net: the tax stays on
    # the facilitator clearing, nil (+4.14 tax -4.14 withheld, -4.83 tax refunded +4.83 withheld
    # given back); the multi-channel order's 0.00 principal nets to nothing.
    assert (voucher["key"], voucher["date"], voucher["debit"], voucher["credit"]) == (
        "AMZ-10000000001-202410",
        "2024-10-25",
        "137.98",
        "137.98",
    )
    assert voucher["m3_ref"]
    # None of the fixture's orders are in the fresh sandbox M3: two sales and one refund.
    assert entry["reconciliation"]["status"] == "done"
    assert entry["reconciliation"]["missing_in_m3"] == 2
    assert entry["reconciliation"]["refund_without_credit"] == 1
    assert _digest(fixture_file) == before
    assert _sandbox_vouchers(home) == 1

    again = m3sync(
        "settle", str(fixture_file), "--sandbox", "--json", "--home", str(home), *CHOSEN, api_url=prefect_api_url
    )
    assert again.code == 0, again.stderr
    assert again.document["settlements"][0]["status"] == "duplicate"
    assert again.document["settlements"][0]["journal"]["vouchers"][0]["m3_ref"] == voucher["m3_ref"]

    (home / "state.sqlite").unlink()  # a lost state database: M3 itself still knows the key
    lost = m3sync(
        "settle", str(fixture_file), "--sandbox", "--json", "--home", str(home), *CHOSEN, api_url=prefect_api_url
    )
    assert lost.code == 0, lost.stderr
    assert lost.document["settlements"][0]["status"] == "duplicate"
    assert _sandbox_vouchers(home) == 1


def _variant(fixture: Path, tmp_path: Path, name: str, edit) -> Path:
    lines = fixture.read_text(encoding="utf-8").split("\n")
    path = tmp_path / name
    path.write_bytes(edit(lines))
    return path


BAD_INPUTS = {
    "empty.tsv": (lambda lines: b"", "empty"),
    "binary.tsv": (lambda lines: b"\x00\x01\x02PK\x03\x04" * 50, "not a text file"),
    "truncated.tsv": (
        lambda lines: "\n".join(lines[:6] + ["\t".join(lines[6].split("\t")[:10])] + lines[7:]).encode(),
        ":7:",
    ),
    "nocolumn.tsv": (
        lambda lines: "\n".join("\t".join(f for i, f in enumerate(l.split("\t")) if i != 14) for l in lines).encode(),
        "amount",
    ),
    "commas.tsv": (lambda lines: "\n".join(l.replace("\t", ",") for l in lines).encode(), "tab-separated"),
    "letters.tsv": (
        lambda lines: "\n".join(lines[:4] + [lines[4].replace("\t-4.14\t", "\tabc\t")] + lines[5:]).encode(),
        ":5:15:",
    ),
    "baddate.tsv": (
        lambda lines: "\n".join(
            [lines[0], lines[1].replace("2024-10-09 14:28:38 UTC", "09/Oct/2024")] + lines[2:]
        ).encode(),
        ":2:2:",
    ),
}


def test_each_bad_input_is_invalid_naming_the_place_and_posts_nothing(
    prefect_api_url: str, fixture_file: Path, tmp_path: Path
) -> None:
    bad = {name: _variant(fixture_file, tmp_path, name, edit) for name, (edit, _) in BAD_INPUTS.items()}
    before = {name: _digest(path) for name, path in bad.items()}
    home = tmp_path / "home"
    run = m3sync("settle", *map(str, bad.values()), "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    entries = {entry["source"]: entry for entry in run.document["settlements"]}
    assert set(entries) == set(BAD_INPUTS)
    for name, (_, expected) in BAD_INPUTS.items():
        entry = entries[name]
        assert entry["status"] == "invalid"
        assert any(expected in reason for reason in entry["reasons"]), (name, entry["reasons"])
        assert all(reason.startswith(name) for reason in entry["reasons"])
        assert _digest(bad[name]) == before[name]
    assert _sandbox_vouchers(home) == 0


def test_unbalanced_settlement_is_held_with_exit_3(prefect_api_url: str, fixture_file: Path, tmp_path: Path) -> None:
    bad = _variant(
        fixture_file,
        tmp_path,
        "unbalanced.tsv",
        lambda lines: "\n".join([lines[0], lines[1].replace("\t31.81\t", "\t31.80\t")] + lines[2:]).encode(),
    )
    home = tmp_path / "home"
    run = m3sync("settle", str(bad), "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == 3, run.stderr
    (entry,) = run.document["settlements"]
    assert entry["status"] == "held"
    assert any("31.81" in r and "31.80" in r for r in entry["reasons"]), entry["reasons"]
    assert entry["journal"]["vouchers"] == []
    assert _sandbox_vouchers(home) == 0


def test_v1_file_and_a_file_with_two_settlements(prefect_api_url: str, tmp_path: Path) -> None:
    from sandbox.generator import build_world, write_settlement_v1

    documents = build_world(3, orders=60).settlement_documents()
    v1 = tmp_path / "legacy_v1.txt"
    v1.write_text(write_settlement_v1(documents[0]), encoding="utf-8")
    two = tmp_path / "two.tsv"
    us = [d for d in documents if d.marketplace_id == "ATVPDKIKX0DER"]
    first, second = us[0].text.rstrip("\n").split("\n"), us[1].text.rstrip("\n").split("\n")
    two.write_text("\n".join(first + second[1:]) + "\n", encoding="utf-8")
    run = m3sync(
        "settle",
        str(v1),
        str(two),
        "--sandbox",
        "--dry-run",
        "--json",
        "--home",
        str(tmp_path / "h"),
        api_url=prefect_api_url,
    )
    assert run.code in (0, 3), run.stderr
    by_id = {e["settlement_id"]: e for e in run.document["settlements"]}
    assert by_id[documents[0].settlement_id]["format"] == "v1"
    assert by_id[documents[0].settlement_id]["total_amount"] == str(documents[0].total)
    assert by_id[us[0].settlement_id]["source"] == "two.tsv" and by_id[us[1].settlement_id]["source"] == "two.tsv"
    for document in (us[0], us[1]):
        assert by_id[document.settlement_id]["total_amount"] == str(document.total)
        assert by_id[document.settlement_id]["status"] in ("dry_run", "held")


def test_without_configuration_says_what_to_configure(prefect_api_url: str, fixture_file: Path, tmp_path: Path) -> None:
    run = m3sync("settle", str(fixture_file), "--json", "--home", str(tmp_path / "empty-home"), api_url=prefect_api_url)
    assert run.code == 2
    assert "ionapi" in run.stderr and "--sandbox" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_unreachable_m3_exits_4(prefect_api_url: str, fixture_file: Path, tmp_path: Path) -> None:
    import json
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "home"
    home.mkdir()
    ionapi = home / "m3.ionapi"
    ionapi.write_text(
        json.dumps(
            {
                "ti": "T",
                "ci": "c",
                "cs": "s",
                "iu": f"http://127.0.0.1:{port}",
                "pu": f"http://127.0.0.1:{port}/T/as/",
                "ot": "token.oauth2",
                "or": "revoke_token.oauth2",
                "saak": "a",
                "sask": "b",
            }
        )
    )
    (home / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\n')
    run = m3sync(
        "settle",
        str(fixture_file),
        "--json",
        "--home",
        str(home),
        api_url=prefect_api_url,
        env={"M3SYNC_CONNECTOR_RETRIES": "0"},
    )
    assert run.code == 4, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert f"connection to http://127.0.0.1:{port} failed" in run.stderr  # the operator sees which host


def test_configuration_errors_are_one_line_exit_2_without_secrets(
    prefect_api_url: str, fixture_file: Path, tmp_path: Path
) -> None:
    homes = {name: tmp_path / name for name in ("latin1", "ftp", "driver", "report")}
    for home in homes.values():
        home.mkdir()
    (homes["latin1"] / "config.toml").write_bytes('[m3]\ndivi = "ÄÄÄ"\n'.encode("latin-1"))
    (homes["driver"] / "config.toml").write_text('[state]\nurl = "postgresql+psycopg://svc:S3cret-pw@db/m3sync"\n')
    (tmp_path / "folder.xlsx").mkdir()
    cases = {
        "latin1": (["--dry-run"], {}, f"{homes['latin1'] / 'config.toml'}:2:9: not UTF-8 text"),
        "ftp": (
            [],
            {
                "M3SYNC_M3_BASE_URL": "ftp://svc:S3cret-pw@m3host",
                "M3SYNC_M3_USER": "svc",
                "M3SYNC_M3_PASSWORD": "S3cret-pw",
            },
            "M3SYNC_M3_BASE_URL must be an http(s) URL",
        ),
        "driver": (["--sandbox"], {}, "needs the psycopg database driver"),
        "report": (["--sandbox", "--report", str(tmp_path / "folder.xlsx")], {}, "is a folder"),
    }
    if importlib.util.find_spec("psycopg") is not None:
        del cases["driver"]
    for name, (options, env, expected) in cases.items():
        run = m3sync(
            "settle",
            str(fixture_file),
            "--json",
            "--home",
            str(homes[name]),
            *options,
            api_url=prefect_api_url,
            env=env,
        )
        assert run.code == 2, (name, run.stdout, run.stderr)
        assert run.stdout == "" and run.stderr.count("\n") == 1, (name, run.stderr)
        assert run.stderr.startswith("m3sync: ") and expected in run.stderr, (name, run.stderr)
        assert "S3cret" not in run.stderr
    assert not (homes["report"] / "sandbox").exists()  # refused before the sandbox (or anything) started


@pytest.mark.slow  # an m3sync subprocess that waits for a Prefect API that never answers
def test_prefect_api_that_does_not_answer_is_one_line_and_exit_4(fixture_file: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nothing listens on once this block ends
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run = m3sync(
        "settle",
        str(fixture_file),
        "--sandbox",
        "--dry-run",
        "--home",
        str(tmp_path / "home"),
        api_url=f"http://127.0.0.1:{port}/api",
    )
    assert run.code == 4, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"m3sync: Prefect's API at http://127.0.0.1:{port}/api/ does not answer: start that server, or unset "
        "PREFECT_API_URL to let m3sync start a temporary one"
    ]
    assert "Traceback" not in run.stderr + run.stdout


def test_temporary_prefect_server_that_does_not_start_is_named() -> None:
    from flows.cli import _prefect_unreachable

    message = _prefect_unreachable(
        RuntimeError(
            "Timed out while attempting to connect to ephemeral Prefect API "
            "server. Ephemeral server process exited with code 1."
        )
    )
    assert message.startswith("Prefect's temporary server did not start within")
    assert "PREFECT_API_URL" in message
    assert _prefect_unreachable(RuntimeError("something else")) == ""
    assert _prefect_unreachable(ValueError("Failed to reach API at x")) == ""
