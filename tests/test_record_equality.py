"""Frozen records that hold DataFrames (or arrays) compare by identity (``eq=False``): comparing two
never raises pandas' "truth value of a DataFrame is ambiguous", two records with the same content
are different records, and each can be a set member or a dict key."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from _settlement_builders import make_settlement
from sklearn.ensemble import IsolationForest

from anomaly.items import extract_items
from anomaly.model import AnomalyModel
from anomaly.rules import RuleHits
from anomaly.scoring import ScoredSettlement
from reconciliation.gates import GateOutcome
from reconciliation.mapping import MappedLines
from reconciliation.matching import Reconciliation
from reconciliation.outcome import SettlementOutcome
from reconciliation.pipeline import PreparedSettlement
from reconciliation.schemas import FAILURE_COLUMNS, ValidationReport

ROWS = [
    ("Order", "ItemPrice", "Principal", 1000, "2024-10-10", "111-A"),
    ("Order", "ItemFees", "Commission", -150, "2024-10-10", "111-A"),
]


def _pair() -> list[tuple[object, object]]:
    """Two records of each kind with equal content, built separately."""
    pairs: list[tuple[object, object]] = []
    first, second = make_settlement(ROWS), make_settlement(ROWS)
    pairs.append((first, second))
    validation = [ValidationReport(True, pd.DataFrame(columns=FAILURE_COLUMNS), []) for _ in range(2)]
    pairs.append((validation[0], validation[1]))
    mapped = [MappedLines(s.lines, (), "US", "USD") for s in (first, second)]
    pairs.append((mapped[0], mapped[1]))
    gates = GateOutcome(False, (), ())
    prepared = [PreparedSettlement(s, v, m, gates) for s, v, m in zip((first, second), validation, mapped)]
    pairs.append((prepared[0], prepared[1]))
    orders = pd.DataFrame({"order_id": ["111-A"], "category": ["matched"]})
    pairs.append((Reconciliation(orders, 1, {"matched": 1}), Reconciliation(orders.copy(), 1, {"matched": 1})))
    pairs.append(
        (
            SettlementOutcome(first, "posted", anomalies=orders),
            SettlementOutcome(second, "posted", anomalies=orders.copy()),
        )
    )
    pairs.append((extract_items(first), extract_items(second)))
    model = AnomalyModel(IsolationForest(), (), 1, 0)
    pairs.append((ScoredSettlement("1", orders, model), ScoredSettlement("1", orders.copy(), model)))
    pairs.append((RuleHits("fee", np.zeros(2), pd.Series(["", ""])), RuleHits("fee", np.zeros(2), pd.Series(["", ""]))))
    return pairs


@pytest.mark.parametrize("index", range(9))
def test_records_holding_dataframes_compare_by_identity_without_raising(index: int) -> None:
    a, b = _pair()[index]
    assert type(a) is type(b)
    assert dataclasses.is_dataclass(a)
    assert a == a
    assert not (a == b)
    assert a != b
    assert len({a, b}) == 2
