"""The IsolationForest half of the score: what the rules do not name but looks unlike the rest.

Inputs are log2 ratios of each feature to its baseline (0 = normal), with a dead zone of about
7 % and quantised to 1/20 so the rounding of a percentage fee does not make an item
"unusual"; fees count only upwards (a fee below its baseline is no leak). Fitted on history plus the
current settlement, seeded, and persisted with joblib together with its feature list and a
version so a saved model scores exactly as it did when it was fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scikit-learn and joblib are imported where a model is fitted, saved or loaded
    from sklearn.ensemble import IsolationForest

MODEL_VERSION = 1
MODEL_FEATURES: tuple[str, ...] = (
    "fba",
    "referral",
    "price",
    "refund",
    "refund_commission",
    "chargeback",
    "refund_repeat",
)
FIT_SAMPLE = 50_000  # rows used to fit; scoring always covers every item
TREES = 48  # enough for seven low-dimensional features; fits and saves in well under a second
_QUANTUM = 20.0
_CODE_OFFSET = int(4 * _QUANTUM)  # quantised values lie within [-4, 4]
_CODE_BASE = 2 * _CODE_OFFSET + 1
_DEAD_ZONE = 0.1  # within about 7 % of the baseline counts as the baseline itself


class ModelFileError(ValueError):
    """A saved model that does not fit this code (other version or features); names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def model_matrix(features: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns (MODEL_FEATURES) for items and their features."""

    def log_ratio(column: str, *, fee: bool = True) -> np.ndarray:
        ratio = features[column].to_numpy(dtype="float64")
        value = np.clip(np.nan_to_num(np.log2(np.where(ratio > 0, ratio, 1.0))), 0 if fee else -4, 4)
        value = np.where(np.abs(value) < _DEAD_ZONE, 0.0, value)
        return np.round(value * _QUANTUM) / _QUANTUM

    shipping = items["shipping"].to_numpy(dtype="float64")
    excess = features["chargeback_excess"].to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "fba": log_ratio("fba_ratio"),
            "referral": log_ratio("referral_ratio"),
            "price": log_ratio("price_ratio", fee=False),
            "refund": log_ratio("refund_ratio"),
            "refund_commission": log_ratio("refund_commission_ratio"),
            "chargeback": np.round(np.clip(excess / np.where(shipping > 0, shipping, 100.0), 0, 4) * _QUANTUM)
            / _QUANTUM,
            "refund_repeat": np.clip(features["refund_rank"].fillna(1).to_numpy(dtype="float64") - 1, 0, 3),
        },
        index=features.index,
    )


@dataclass(frozen=True)
class AnomalyModel:
    estimator: IsolationForest
    features: tuple[str, ...]
    version: int
    seed: int

    @classmethod
    def fit(cls, matrix: pd.DataFrame, *, seed: int = 0) -> AnomalyModel:
        missing = [c for c in MODEL_FEATURES if c not in matrix.columns]
        if missing:
            raise ValueError(f"model matrix lacks feature column(s) {', '.join(missing)}")
        values = matrix[list(MODEL_FEATURES)].to_numpy(dtype="float64")
        if len(values) > FIT_SAMPLE:
            rows = np.random.default_rng(seed).choice(len(values), FIT_SAMPLE, replace=False)
            values = values[np.sort(rows)]
        if len(values) == 0:
            values = np.zeros((1, len(MODEL_FEATURES)))
        from sklearn.ensemble import IsolationForest  # ~1 s of imports (SciPy): only when fitting

        estimator = IsolationForest(n_estimators=TREES, random_state=seed, n_jobs=1).fit(values)
        return cls(estimator, MODEL_FEATURES, MODEL_VERSION, seed)

    def anomaly_score(self, matrix: pd.DataFrame) -> np.ndarray:
        """Isolation score per row in (0, 1]: about 0.5 or less is ordinary, near 1 is isolated."""
        if matrix.empty:
            return np.zeros(0)
        values = matrix[list(self.features)].to_numpy(dtype="float64")
        # Inputs are quantised, so a big settlement has only a few hundred distinct rows:
        # score those and spread the result back (same numbers, a fraction of the time).
        codes = np.rint(values * _QUANTUM).astype(np.int64) + _CODE_OFFSET
        if (
            not np.allclose(values * _QUANTUM, np.rint(values * _QUANTUM))
            or codes.min() < 0
            or codes.max() >= _CODE_BASE
        ):
            return -np.asarray(self.estimator.score_samples(values), dtype=np.float64)
        key = codes @ (_CODE_BASE ** np.arange(codes.shape[1], dtype=np.int64))
        back, distinct = pd.factorize(key)
        first = np.unique(back, return_index=True)[1]
        scores: np.ndarray = -np.asarray(self.estimator.score_samples(values[first]), dtype=np.float64)[back]
        return scores

    def save(self, path: Path | str) -> Path:
        target = Path(path)
        import joblib

        target.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"version": self.version, "features": list(self.features), "seed": self.seed, "estimator": self.estimator},
            target,
        )
        return target

    @classmethod
    def load(cls, path: Path | str) -> AnomalyModel:
        source = Path(path)
        if not source.is_file():
            raise ModelFileError(source, "model file not found")
        import joblib

        try:
            saved = joblib.load(source)
        except Exception as exc:  # joblib/pickle raise many types for a damaged file
            raise ModelFileError(source, f"cannot load model ({type(exc).__name__})") from None
        if not isinstance(saved, dict) or saved.get("version") != MODEL_VERSION:
            raise ModelFileError(
                source,
                f"model version {saved.get('version') if isinstance(saved, dict) else '?'}"
                f" does not match this code's version {MODEL_VERSION}",
            )
        if tuple(saved.get("features", ())) != MODEL_FEATURES:
            raise ModelFileError(source, f"model features {saved.get('features')} differ from {list(MODEL_FEATURES)}")
        return cls(saved["estimator"], tuple(saved["features"]), int(saved["version"]), int(saved["seed"]))
