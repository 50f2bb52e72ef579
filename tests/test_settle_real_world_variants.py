"""Every real-world settlement shape the generator makes settles end to end: parsed, its
marketplace resolved, every line mapped, one balanced voucher posted to M3 per month, and the
JSON total equal to the file's own sum (read here with csv and Decimal, not with our parser).

One flow run over all variants at once (as a seller's mixed batch would be), against an M3
sandbox configured as a live M3.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from _invoice_choices import POST_WITHOUT_M3_DOCUMENTS  # their files name orders their M3 never invoiced
from _live_m3 import live_m3  # noqa: F401 - a fixture

from sandbox.generator import real_world_variants


def _file_total(data: bytes) -> tuple[str, Decimal, Decimal]:
    """(currency, total-amount of the summary row, sum of the amount column), decimal comma aware."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t"))
    header, body = rows[0], [r for r in rows[1:] if r]
    col = {name: i for i, name in enumerate(header)}

    def number(text: str) -> Decimal:
        return Decimal(text.strip().replace(",", ".")) if text.strip() else Decimal(0)

    summary = next(r for r in body if r[col["settlement-start-date"]].strip())
    lines = [r for r in body if not r[col["settlement-start-date"]].strip()]
    return (
        summary[col["currency"]],
        number(summary[col["total-amount"]]),
        sum((number(r[col["amount"]]) for r in lines), Decimal(0)),
    )


def test_every_real_world_variant_posts_one_balanced_voucher_per_month(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    _server, configure, _ = live_m3
    home = configure("cloudsuite")
    folder = tmp_path / "in"
    folder.mkdir()
    expected = {}
    for name, data in real_world_variants(7):
        (folder / f"{name}.tsv").write_bytes(data)
        currency, total, line_sum = _file_total(data)
        assert total == line_sum, name  # the generator's promise, checked independently
        expected[f"{name}.tsv"] = (currency, total)

    document = settlement_reconciliation(
        **POST_WITHOUT_M3_DOCUMENTS,
        files=sorted(str(p) for p in folder.iterdir()),
        home=str(home),
        report=str(tmp_path / "out.xlsx"),
    )

    entries = {e["source"]: e for e in document["settlements"]}
    assert set(entries) == set(expected)
    for source, (currency, total) in expected.items():
        entry = entries[source]
        assert entry["status"] == "posted", (source, entry["reasons"])
        assert entry["currency"] == currency
        assert Decimal(entry["total_amount"]) == total, source
        assert entry["marketplace"], source  # resolved even where no row names one
        vouchers = entry["journal"]["vouchers"]
        assert vouchers and all(v["debit"] == v["credit"] and v["m3_ref"] for v in vouchers), source
    assert entries["jp.tsv"]["total_amount"].isdigit() or entries["jp.tsv"]["total_amount"].lstrip("-").isdigit()
    assert entries["account_level_only.tsv"]["marketplace"] == "Amazon.ca"
    assert (tmp_path / "out.xlsx").is_file()
