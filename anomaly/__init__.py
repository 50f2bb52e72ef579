"""Anomaly detection on Amazon settlements and fee-type mapping suggestions (no network).

Public entry points: ``score_settlement`` / ``score_items`` with an ``AnomalyHistory`` under
the home folder, ``AnomalyModel`` (persisted IsolationForest) and ``suggest_categories``.
"""

from .history import AnomalyHistory, HistoryError
from .model import MODEL_FEATURES, MODEL_VERSION, AnomalyModel, ModelFileError
from .scoring import ANOMALY_COLUMNS, DEFAULT_THRESHOLD, ScoredSettlement, score_items, score_settlement
from .suggestions import Suggestion, load_vocabulary, suggest_categories

__all__ = [
    "ANOMALY_COLUMNS",
    "DEFAULT_THRESHOLD",
    "MODEL_FEATURES",
    "MODEL_VERSION",
    "AnomalyHistory",
    "AnomalyModel",
    "HistoryError",
    "ModelFileError",
    "ScoredSettlement",
    "Suggestion",
    "load_vocabulary",
    "score_items",
    "score_settlement",
    "suggest_categories",
]
