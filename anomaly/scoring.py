"""One score per order item (and per settlement) in [0, 1], with reasons in words.

score = 1 - (1 - rule) * (1 - MODEL_WEIGHT * isolation)

``rule`` is the strongest explicit rule that fired (rules.py), ``isolation`` the
IsolationForest's view rescaled so ordinary items get 0. The model alone can reach at most
MODEL_WEIGHT, so an item no rule names is flagged only when it is far out of line; when a rule
fired, the model only raises its confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reconciliation.model import Settlement, format_minor

from .features import MIN_TRAILING_SETTLEMENTS, item_features, settlement_features
from .history import AnomalyHistory
from .items import extract_items
from .model import MODEL_FEATURES, AnomalyModel, model_matrix
from .money import format_percent
from .rules import evaluate_rules

ANOMALY_COLUMNS: tuple[str, ...] = ("order_id", "sku", "kind", "score", "reasons")
# Extra columns of ScoredSettlement.items (after ANOMALY_COLUMNS).
DETAIL_COLUMNS: tuple[str, ...] = (
    "settlement_id",
    "marketplace_name",
    "transaction_type",
    "order_item_code",
    "adjustment_id",
    "posted_date",
    "rule_score",
    "isolation",
)
DEFAULT_THRESHOLD = 0.5
MODEL_WEIGHT = 0.6
ISOLATION_FLOOR, ISOLATION_SPAN = 0.62, 0.18  # isolation scores below the floor are ordinary
FEE_SHARE_TOLERANCE = 1.25  # fees 25 % above their usual share of sales
RESERVE_SHARE_TOLERANCE = 0.05  # reserve 5 points of sales above usual
INVENTORY_EVENT_COLUMNS = ("event_id", "sku", "quantity")


@dataclass(frozen=True, eq=False)
class ScoredSettlement:
    """Every item of a settlement with its score (``items``: ANOMALY_COLUMNS + DETAIL_COLUMNS).

    Compares by identity (``eq=False``): ``items`` is a DataFrame; the key is ``settlement_id``."""

    settlement_id: str
    items: pd.DataFrame
    model: AnomalyModel

    def flagged(self, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
        """ANOMALY_COLUMNS of the items at or above ``threshold``, highest score first."""
        _check_threshold(threshold)
        chosen = self.items[self.items["score"] >= threshold]
        return chosen[list(ANOMALY_COLUMNS)].reset_index(drop=True)


def score_settlement(
    settlement: Settlement,
    history: AnomalyHistory,
    *,
    catalog_hints: Mapping[str, str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    inventory_events: pd.DataFrame | None = None,
    seed: int = 0,
    model: AnomalyModel | None = None,
    persist_model: bool = True,
) -> pd.DataFrame:
    """Anomalies of ``settlement`` judged against ``history``: ANOMALY_COLUMNS, score descending.

    ``catalog_hints`` maps SKU -> product category (referral rates are judged per category
    then). ``threshold=0`` returns every item. The fitted model is saved as
    ``HOME/history/models/<settlement id>.joblib`` unless ``persist_model`` is False (or a
    ``model`` is given). Call ``history.add(settlement)`` afterwards.
    """
    _check_threshold(threshold)
    return score_items(
        settlement,
        history,
        catalog_hints=catalog_hints,
        inventory_events=inventory_events,
        seed=seed,
        model=model,
        persist_model=persist_model,
    ).flagged(threshold)


def score_items(
    settlement: Settlement,
    history: AnomalyHistory,
    *,
    catalog_hints: Mapping[str, str] | None = None,
    inventory_events: pd.DataFrame | None = None,
    seed: int = 0,
    model: AnomalyModel | None = None,
    persist_model: bool = True,
) -> ScoredSettlement:
    """Score every item; fits (and saves under ``HOME/history/models``) a model unless one is given."""
    sid = settlement.settlement_id
    current = extract_items(settlement)
    # A settlement scored again is judged against what it was judged against the first time:
    # neither itself nor the settlements recorded after it (scoring twice flags nothing new).
    past = history.items(before=sid)
    everything = (
        pd.concat([past, current.items], ignore_index=True) if len(past) else current.items.reset_index(drop=True)
    )
    features = item_features(everything, catalog_hints)
    matrix = model_matrix(features, everything)
    if model is None:
        model = AnomalyModel.fit(matrix, seed=seed)
        if persist_model:
            model.save(history.models_folder / f"{_safe_name(sid)}.joblib")
    start = len(everything) - len(current.items)
    items = everything.iloc[start:].reset_index(drop=True)
    item_features_now = features.iloc[start:].reset_index(drop=True)
    isolation = model.anomaly_score(matrix.iloc[start:].reset_index(drop=True))
    scored = _combine(
        items, item_features_now, matrix.iloc[start:].reset_index(drop=True), isolation, settlement.decimals
    )
    extra = [_settlement_rows(current.summary, history.settlements(before=sid), sid, settlement.decimals)]
    if inventory_events is not None:
        seen = pd.concat([history.reimbursements(before=sid)["adjustment_id"], current.reimbursements["adjustment_id"]])
        extra.append(_missing_reimbursements(inventory_events, set(seen), sid))
    frames = [f for f in [scored, *extra] if len(f)]
    result = pd.concat(frames, ignore_index=True) if frames else scored
    result = result.sort_values(
        ["score", "order_id", "sku", "adjustment_id"], ascending=[False, True, True, True], kind="stable"
    ).reset_index(drop=True)
    return ScoredSettlement(sid, result[list(ANOMALY_COLUMNS + DETAIL_COLUMNS)], model)


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"anomaly threshold must be within [0, 1], got {threshold}")


def _safe_name(settlement_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in settlement_id) or "settlement"


def _combine(
    items: pd.DataFrame, features: pd.DataFrame, matrix: pd.DataFrame, isolation: np.ndarray, decimals: int
) -> pd.DataFrame:
    hits = evaluate_rules(items, features, decimals)
    rule_scores = np.column_stack([h.scores for h in hits]) if hits else np.zeros((len(items), 1))
    rule = rule_scores.max(axis=1) if len(items) else np.zeros(0)
    strongest = rule_scores.argmax(axis=1) if len(items) else np.zeros(0, dtype=int)
    kinds = np.array([h.kind for h in hits], dtype=object)[strongest] if len(items) else np.zeros(0, dtype=object)
    iso_part = np.clip((isolation - ISOLATION_FLOOR) / ISOLATION_SPAN, 0.0, 1.0)
    score = 1.0 - (1.0 - rule) * (1.0 - MODEL_WEIGHT * iso_part)
    kinds = np.where(rule > 0, kinds, np.where(iso_part > 0, "unusual", ""))

    # Reasons: one long frame of the fired rules (few rows), strongest first per item.
    long = [
        pd.DataFrame(
            {
                "pos": np.flatnonzero(h.scores > 0),
                "score": h.scores[h.scores > 0],
                "reason": h.reasons[h.scores > 0].to_numpy(),
            }
        )
        for h in hits
    ]
    unusual = np.flatnonzero((rule == 0) & (iso_part > 0))
    if len(unusual):
        long.append(
            pd.DataFrame(
                {"pos": unusual, "score": 0.0, "reason": _unusual_reasons(matrix.iloc[unusual], isolation[unusual])}
            )
        )
    reason_lists = np.empty(len(items), dtype=object)
    reason_lists[:] = [[] for _ in range(len(items))]  # every item gets its own (usually empty) list
    fired = pd.concat(long, ignore_index=True) if long else pd.DataFrame(columns=["pos", "score", "reason"])
    if len(fired):
        fired = fired.sort_values(["pos", "score"], ascending=[True, False], kind="stable")
        grouped = fired.groupby("pos", sort=False)["reason"].agg(list)
        # Element-wise: numpy would turn equal-length lists into a 2-D block. Only fired items loop.
        for position, reasons in zip(grouped.index.to_numpy(dtype=np.int64), grouped.to_list()):
            reason_lists[position] = reasons
    return pd.DataFrame(
        {
            "order_id": items["order_id"],
            "sku": items["sku"],
            "kind": kinds,
            "score": np.round(score, 4),
            "reasons": reason_lists,
            "settlement_id": items["settlement_id"],
            "marketplace_name": items["marketplace_name"],
            "transaction_type": items["transaction_type"],
            "order_item_code": items["order_item_code"],
            "adjustment_id": items["adjustment_id"],
            "posted_date": items["posted_date"],
            "rule_score": rule,
            "isolation": np.round(isolation, 4),
        }
    )


def _unusual_reasons(matrix: pd.DataFrame, isolation: np.ndarray) -> np.ndarray:
    labels = {
        "fba": "FBA fee",
        "referral": "commission",
        "price": "unit price",
        "refund": "refund",
        "refund_commission": "refund fee",
        "chargeback": "chargeback",
        "refund_repeat": "repeat refunds",
    }
    parts = pd.Series("", index=matrix.index, dtype=object)
    for column in MODEL_FEATURES:
        values = matrix[column].to_numpy()
        off = values != 0
        text = labels[column] + " x" + pd.Series(np.char.mod("%.2f", np.exp2(values))).to_numpy()
        if column in ("chargeback", "refund_repeat"):
            text = labels[column] + " " + pd.Series(np.char.mod("%.2f", values)).to_numpy()
        parts = parts + np.where(off, np.where(parts == "", "", ", ") + text, "")
    reasons: np.ndarray = (
        "unusual combination for this item (isolation score "
        + pd.Series(np.char.mod("%.2f", isolation), index=matrix.index)
        + ")"
        + np.where(parts != "", ": " + parts + " of its baseline", "")
    ).to_numpy()
    return reasons


def _account_level_defaults() -> dict[str, object]:
    """Detail columns of a row that belongs to the settlement, not to one order item."""
    return {
        "settlement_id": "",
        "marketplace_name": "",
        "transaction_type": "",
        "order_item_code": "",
        "adjustment_id": "",
        "posted_date": pd.NaT,
        "isolation": 0.0,
    }


def _settlement_rows(summary: pd.DataFrame, past: pd.DataFrame, sid: str, decimals: int) -> pd.DataFrame:
    """Fee share and reserve against the trailing settlements (only with enough of them)."""
    past = past[past["settlement_id"] != sid]
    f = settlement_features(summary, past).iloc[0]
    row = summary.iloc[0]
    trailing = int(f["trailing_settlements"])
    rows = []
    if trailing >= MIN_TRAILING_SETTLEMENTS and f["fee_share_median"] > 0:
        ratio = f["fee_share"] / f["fee_share_median"]
        if ratio > FEE_SHARE_TOLERANCE:
            rows.append(
                (
                    "fee_share_high",
                    min(1.0, 0.55 + (ratio - FEE_SHARE_TOLERANCE)),
                    f"fees {format_minor(row['fees_minor'], decimals)} are {format_percent([f['fee_share']])[0]}"
                    f" of sales {format_minor(row['sales_minor'], decimals)}; median "
                    f"{format_percent([f['fee_share_median']])[0]} over the last "
                    f"{trailing} settlements on {row['marketplace']}",
                )
            )
    if trailing >= MIN_TRAILING_SETTLEMENTS and pd.notna(f["reserve_share"]):
        excess = f["reserve_share"] - f["reserve_share_median"]
        if excess > RESERVE_SHARE_TOLERANCE:
            rows.append(
                (
                    "reserve_high",
                    min(1.0, 0.55 + excess),
                    f"reserve held back {format_minor(row['reserve_held_minor'], decimals)} is "
                    f"{format_percent([f['reserve_share']])[0]} of sales; median "
                    f"{format_percent([f['reserve_share_median']])[0]} over the last "
                    f"{trailing} settlements on {row['marketplace']}",
                )
            )
    return pd.DataFrame(
        [
            {
                **_account_level_defaults(),
                "order_id": "",
                "sku": "",
                "kind": kind,
                "score": round(score, 4),
                "reasons": [reason],
                "settlement_id": sid,
                "marketplace_name": row["marketplace"],
                "rule_score": score,
            }
            for kind, score, reason in rows
        ],
        columns=list(ANOMALY_COLUMNS + DETAIL_COLUMNS),
    )


def _missing_reimbursements(events: pd.DataFrame, reimbursed: set[str], sid: str) -> pd.DataFrame:
    """Inventory lost or damaged in Amazon's warehouses (ledger events) with no reimbursement row."""
    missing_columns = [c for c in INVENTORY_EVENT_COLUMNS if c not in events.columns]
    if missing_columns:
        raise ValueError(f"inventory_events lack column(s) {', '.join(missing_columns)}")
    open_events = events[~events["event_id"].astype(str).isin(reimbursed)]
    reasons = (
        "inventory event "
        + open_events["event_id"].astype(str)
        + ": "
        + open_events["quantity"].astype(str)
        + " unit(s) lost or damaged in Amazon's warehouse, "
        + "no reimbursement in this or an earlier settlement"
    )
    return pd.DataFrame(
        {
            **_account_level_defaults(),
            "order_id": "",
            "sku": open_events["sku"].astype(str).to_numpy(),
            "kind": "missing_reimbursement",
            "score": 0.75,
            "reasons": [[r] for r in reasons],
            "settlement_id": sid,
            "adjustment_id": open_events["event_id"].astype(str).to_numpy(),
            "rule_score": 0.75,
        },
        columns=list(ANOMALY_COLUMNS + DETAIL_COLUMNS),
    )
