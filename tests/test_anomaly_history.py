"""The anomaly history is idempotent (issue 13, item 5): a settlement scored twice (held, then
rerun) adds to the history once, and is judged the second time as it was the first.

Four Amazon.com settlements, written below by hand, one a fortnight (SKU-X's FBA fee per unit,
SKU-Y's unit price; every order one unit, commission 15 % of the price):

    S1  ends 2024-10-09  SKU-X 3.00, 3.00          SKU-Y 30.00
    S2  ends 2024-10-23  SKU-X 3.00, 3.00
    S3  ends 2024-11-06  SKU-X 3.00, 3.90 (ORDER_HIGH)   SKU-Y 30.00 (ORDER_PRICE)
    S4  ends 2024-11-20  SKU-X 3.00                SKU-Y 20.00, 20.00, 20.00

Scored in order, S3's ORDER_HIGH is flagged: FBA fee 3.90 against SKU-X's median 3.00 over 3
settlements (S1-S3), 30 % over. ORDER_PRICE is not: SKU-Y has two prices (30.00, 30.00), fewer
than the three a price median needs. Scored again after S4 is recorded (S3 held, then rerun),
S3 must be judged the same way: had S4 counted, SKU-X's median would be "over 4 settlements"
and SKU-Y's median 20.00 (30, 30, 20, 20, 20) would flag ORDER_PRICE 50 % over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from _live_m3 import live_m3  # noqa: F401 - a fixture

from anomaly import AnomalyHistory, score_items
from reconciliation.model import Settlement
from reconciliation.parse import parse_settlement_bytes
from tests._settlement_builders import V2_HEADER as HEADER

ORDER_HIGH, ORDER_PRICE = "111-0000000-8300302", "111-0000000-8300303"
PRICE_X = Decimal("25.00")


@dataclass(frozen=True)
class Sale:
    order_id: str
    sku: str
    price: Decimal
    fba: Decimal | None  # FBA fee per unit (SKU-X's), None for SKU-Y


# (settlement id, start, end, sales)
SETTLEMENTS = [
    (
        "24000000001",
        "2024-09-25",
        "2024-10-09",
        [
            Sale("111-0000000-8300101", "SKU-X", PRICE_X, Decimal("3.00")),
            Sale("111-0000000-8300102", "SKU-X", PRICE_X, Decimal("3.00")),
            Sale("111-0000000-8300103", "SKU-Y", Decimal("30.00"), None),
        ],
    ),
    (
        "24000000002",
        "2024-10-09",
        "2024-10-23",
        [
            Sale("111-0000000-8300201", "SKU-X", PRICE_X, Decimal("3.00")),
            Sale("111-0000000-8300202", "SKU-X", PRICE_X, Decimal("3.00")),
        ],
    ),
    (
        "24000000003",
        "2024-10-23",
        "2024-11-06",
        [
            Sale("111-0000000-8300301", "SKU-X", PRICE_X, Decimal("3.00")),
            Sale(ORDER_HIGH, "SKU-X", PRICE_X, Decimal("3.90")),
            Sale(ORDER_PRICE, "SKU-Y", Decimal("30.00"), None),
        ],
    ),
    (
        "24000000004",
        "2024-11-06",
        "2024-11-20",
        [
            Sale("111-0000000-8300401", "SKU-X", PRICE_X, Decimal("3.00")),
            Sale("111-0000000-8300402", "SKU-Y", Decimal("20.00"), None),
            Sale("111-0000000-8300403", "SKU-Y", Decimal("20.00"), None),
            Sale("111-0000000-8300404", "SKU-Y", Decimal("20.00"), None),
        ],
    ),
]
S3 = SETTLEMENTS[2][0]


def _text(sid: str, start: str, end: str, sales: list[Sale]) -> str:
    day = f"{start[:8]}{int(start[8:]) + 2:02d}"
    rows = []
    for sale in sales:
        amounts = [("ItemPrice", "Principal", sale.price), ("ItemFees", "Commission", -sale.price * Decimal("0.15"))]
        if sale.fba is not None:
            amounts.append(("ItemFees", "FBAPerUnitFulfillmentFee", -sale.fba))
        rows += [
            f"{sid}\t\t\t\t\t\tOrder\t{sale.order_id}\t{sale.order_id}\t\tSHP\tAmazon.com\t{kind}\t{what}\t{amount}\t"
            f"AFN\t{day}\t{day} 02:58:02 UTC\t{sale.order_id[-6:]}\t\t\t{sale.sku}\t1\t"
            for kind, what, amount in amounts
        ]
    total = sum((s.price - s.price * Decimal("0.15") - (s.fba or Decimal(0)) for s in sales), Decimal(0)).quantize(
        Decimal("0.01")
    )
    head = f"{sid}\t{start} 14:28:38 UTC\t{end} 14:28:38 UTC\t{end} 14:28:39 UTC\t{total}\tUSD" + "\t" * 18
    return "\n".join([HEADER, head, *rows]) + "\n"


def _files(folder: Path) -> list[Path]:
    paths = []
    for sid, start, end, sales in SETTLEMENTS:
        path = folder / f"{sid}.tsv"
        path.write_text(_text(sid, start, end, sales), encoding="utf-8")
        paths.append(path)
    return paths


def _settlements(folder: Path) -> list[Settlement]:
    return [parse_settlement_bytes(p.read_bytes(), p.name).settlements[0] for p in _files(folder)]


def _tables(history: AnomalyHistory) -> dict[str, pd.DataFrame]:
    return {
        "items": history.items(),
        "settlements": history.settlements(),
        "reimbursements": history.reimbursements(),
        "scores": history.scores(),
    }


def _score_and_record(settlement: Settlement, history: AnomalyHistory) -> pd.DataFrame:
    """What the settlement flow's ``score_anomalies`` does: score every item, record, keep the flags."""
    scored = score_items(settlement, history, persist_model=False)
    history.add(settlement, scores=scored.flagged(0.0))
    return scored.flagged()


def _s3_expectations(flags: pd.DataFrame) -> None:
    """S3's flags as worked out in the module docstring."""
    (high,) = flags[flags["order_id"] == ORDER_HIGH].itertuples(index=False)
    assert high.kind == "fee_overcharge_fba"
    assert high.reasons[0].startswith("FBA fee 3.90 per unit; this SKU's median 3.00 over 3 settlements (+30.0%")
    assert ORDER_PRICE not in set(flags["order_id"]), flags


def test_scoring_a_recorded_settlement_again_judges_it_as_the_first_time(tmp_path: Path) -> None:
    settlements = _settlements(tmp_path)
    history = AnomalyHistory(tmp_path / "home")
    first = {s.settlement_id: _score_and_record(s, history) for s in settlements}
    _s3_expectations(first[S3])
    recorded = _tables(history)
    files = {p.name: p.read_bytes() for p in (tmp_path / "home" / "history").glob("*.parquet")}

    # S3 was judged against S1 and S2 only, and is again, though S4 is recorded now.
    assert history.settlements(before=S3)["settlement_id"].tolist() == [s.settlement_id for s in settlements[:2]]
    assert history.items(before=settlements[0].settlement_id).empty
    # Held, then rerun: every settlement scored again.
    again = {s.settlement_id: _score_and_record(s, history) for s in settlements}
    for sid, flags in again.items():
        pd.testing.assert_frame_equal(flags, first[sid], obj=sid)
    _s3_expectations(again[S3])
    for name, frame in _tables(history).items():
        pd.testing.assert_frame_equal(frame, recorded[name], obj=name)
    assert {p.name: p.read_bytes() for p in (tmp_path / "home" / "history").glob("*.parquet")} == files  # not rewritten


def test_a_different_settlement_still_adds_and_a_new_version_replaces_its_rows(tmp_path: Path) -> None:
    settlements = _settlements(tmp_path)
    history = AnomalyHistory(tmp_path / "home")
    for settlement in settlements[:3]:
        assert history.add(settlement) is True
    assert history.add(settlements[1]) is False  # already recorded as it is
    # 3 + 2 + 3 one-unit sales recorded; S4 adds its 4.
    assert len(history.items()) == 8
    assert history.add(settlements[3]) is True
    assert len(history.items()) == 12 and len(history.settlements()) == 4

    # A new version of S2's document (its second order at 3.30 FBA): its rows replaced, in its place.
    sid, start, end, sales = SETTLEMENTS[1]
    changed = [sales[0], Sale(sales[1].order_id, "SKU-X", PRICE_X, Decimal("3.30"))]
    version = parse_settlement_bytes(_text(sid, start, end, changed).encode(), "v2.tsv").settlements[0]
    assert history.add(version) is True
    assert history.settlements()["settlement_id"].tolist() == [s.settlement_id for s in settlements]
    items = history.items()
    assert len(items) == 12
    fees = items[items["settlement_id"] == sid].set_index("order_id")["fba"]
    assert fees.to_dict() == {sales[0].order_id: 300, sales[1].order_id: 330}
    assert history.add(version) is False


def test_held_then_rerun_flow_adds_to_the_history_once(prefect_api_url: str, live_m3, tmp_path: Path) -> None:
    from tests._flow_runs import settle

    server, configure, _ = live_m3
    home = configure("brief")
    files = [str(p) for p in _files(tmp_path)]
    # M3 has no invoice for any of these orders: every settlement is held (the default), twice.
    first = settle(files=files, home=str(home), report=str(tmp_path / "first.xlsx"))
    history = AnomalyHistory(home)
    recorded = _tables(history)
    second = settle(files=files, home=str(home), report=str(tmp_path / "second.xlsx"))

    assert {e["status"] for e in first["settlements"] + second["settlements"]} == {"held"}
    assert [e["anomalies"] for e in second["settlements"]] == [e["anomalies"] for e in first["settlements"]]
    (s3,) = [e for e in second["settlements"] if e["settlement_id"] == S3]
    (high,) = [a for a in s3["anomalies"] if a["order_id"] == ORDER_HIGH]
    assert high["kind"] == "fee_overcharge_fba" and "median 3.00 over 3 settlements" in high["reasons"][0]
    assert ORDER_PRICE not in {a["order_id"] for a in s3["anomalies"]}
    for name, frame in _tables(history).items():
        pd.testing.assert_frame_equal(frame, recorded[name], obj=name)
    assert len(recorded["settlements"]) == 4 and len(recorded["items"]) == 12


@pytest.mark.parametrize("before", [None, "not-recorded"])
def test_history_before_an_unrecorded_settlement_is_all_of_it(tmp_path: Path, before: str | None) -> None:
    settlements = _settlements(tmp_path)
    history = AnomalyHistory(tmp_path / "home")
    for settlement in settlements[:2]:
        history.add(settlement)
    assert len(history.items(before=before)) == 5
