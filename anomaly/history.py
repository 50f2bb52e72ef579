"""What came before: the items and settlement figures each new settlement is judged against.

Stored as Parquet under ``HOME/history/`` (one file per table, rewritten atomically), keyed
by settlement id so adding the same settlement twice changes nothing. Items keep their
fulfilment channel (Amazon or MCF); files written before that column existed still load.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from reconciliation.model import Settlement

from .items import (
    ITEM_COLUMNS,
    REIMBURSEMENT_COLUMNS,
    SETTLEMENT_COLUMNS,
    SettlementItems,
    empty_frame,
    extract_items,
    fulfilment_channel,
)

# Scores as the flow kept them (ANOMALY_COLUMNS plus the settlement), for the analyst notebook.
SCORE_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "order_id": "str",
    "sku": "str",
    "kind": "str",
    "score": "float64",
    "reasons": "object",
}
_TABLES: dict[str, dict[str, str]] = {
    "items": ITEM_COLUMNS,
    "settlements": SETTLEMENT_COLUMNS,
    "reimbursements": REIMBURSEMENT_COLUMNS,
    "scores": SCORE_COLUMNS,
}


class HistoryError(RuntimeError):
    """A history file that cannot be read; names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class AnomalyHistory:
    """Past settlements' items under ``home/history``; ``add`` after scoring a settlement."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)
        self.folder = self.home / "history"

    def __repr__(self) -> str:
        return f"AnomalyHistory({str(self.home)!r})"

    @property
    def models_folder(self) -> Path:
        return self.folder / "models"

    def items(self) -> pd.DataFrame:
        return self._read("items")

    def settlements(self) -> pd.DataFrame:
        return self._read("settlements")

    def reimbursements(self) -> pd.DataFrame:
        return self._read("reimbursements")

    def scores(self) -> pd.DataFrame:
        """Scores recorded with ``add(..., scores=...)`` (reasons as lists of text)."""
        frame = self._read("scores")
        frame["reasons"] = [list(r) if r is not None else [] for r in frame["reasons"]]
        return frame

    def settlement_ids(self) -> set[str]:
        return set(self.settlements()["settlement_id"])

    def add(self, settlement: Settlement | SettlementItems, *, scores: pd.DataFrame | None = None) -> bool:
        """Record a settlement (and optionally its scores, ANOMALY_COLUMNS as ``score_settlement``
        returned them); False, and nothing written, when the settlement is already recorded."""
        extracted = settlement if isinstance(settlement, SettlementItems) else extract_items(settlement)
        sid = str(extracted.summary["settlement_id"].iloc[0])
        if sid in self.settlement_ids():
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        score_rows = _score_rows(scores, sid)
        for name, frame in (
            ("items", extracted.items),
            ("reimbursements", extracted.reimbursements),
            ("scores", score_rows),
            ("settlements", extracted.summary),
        ):  # settlements last: it marks "recorded"
            old = self._read(name)
            old = old[old["settlement_id"] != sid]  # a half-written earlier add is replaced, not doubled
            combined = frame if old.empty else pd.concat([old, frame], ignore_index=True)
            self._write(name, combined.astype(_TABLES[name]))
        return True

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def _read(self, name: str) -> pd.DataFrame:
        path = self._path(name)
        if not path.is_file():
            return empty_frame(_TABLES[name])
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise HistoryError(path, f"cannot read anomaly history ({type(exc).__name__}: {exc})") from None
        if (
            name == "items"
            and "channel" not in frame.columns
            and {"marketplace_name", "order_id"} <= set(frame.columns)
        ):
            # Written before items kept their channel: the stored name and order id still tell it
            # (every Amazon storefront order reads as "amazon", as it always was judged).
            frame["channel"] = fulfilment_channel(frame["marketplace_name"], frame["order_id"]).to_numpy()
        missing = [c for c in _TABLES[name] if c not in frame.columns]
        if missing:
            raise HistoryError(path, f"missing column(s) {', '.join(missing)}; was it written by another version?")
        return frame[list(_TABLES[name])].astype(_TABLES[name])

    def _write(self, name: str, frame: pd.DataFrame) -> None:
        target = self._path(name)
        temporary = target.with_suffix(".parquet.tmp")
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, target)  # readers never see a half-written file


def _score_rows(scores: pd.DataFrame | None, settlement_id: str) -> pd.DataFrame:
    if scores is None:
        return empty_frame(SCORE_COLUMNS)
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns and c != "settlement_id"]
    if missing:
        raise ValueError(f"scores for settlement {settlement_id} lack column(s) {', '.join(missing)}")
    rows = scores.assign(settlement_id=settlement_id)[list(SCORE_COLUMNS)].reset_index(drop=True)
    rows["reasons"] = [list(r) for r in rows["reasons"]]
    return rows
