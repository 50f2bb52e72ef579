"""What came before: the items and settlement figures each new settlement is judged against.

Stored as Parquet under ``HOME/history/`` (one file per table, rewritten atomically), keyed
by settlement id so adding the same settlement twice changes nothing. Items keep their
fulfilment channel (Amazon or MCF); files written before that column existed still load.

Scoring is idempotent: ``settlements.parquet`` lists the settlements in the order they were
recorded, and a settlement scored again (held, then rerun) is judged only against those
recorded before it, as the first time, never against settlements that came after it. A
settlement recorded again with other content (a new version of its document, posted again
after ``m3sync reverse``) replaces its rows and keeps its place.
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

    def items(self, *, before: str | None = None) -> pd.DataFrame:
        """Every recorded item; with ``before``, only those a scoring of that settlement judges against."""
        return self._earlier(self._read("items"), before)

    def settlements(self, *, before: str | None = None) -> pd.DataFrame:
        """The recorded settlements' figures, in the order they were recorded (``before``: as ``items``)."""
        return self._earlier(self._read("settlements"), before)

    def reimbursements(self, *, before: str | None = None) -> pd.DataFrame:
        return self._earlier(self._read("reimbursements"), before)

    def scores(self) -> pd.DataFrame:
        """Scores recorded with ``add(..., scores=...)`` (reasons as lists of text)."""
        frame = self._read("scores")
        frame["reasons"] = [list(r) if r is not None else [] for r in frame["reasons"]]
        return frame

    def settlement_ids(self) -> set[str]:
        return set(self.settlements()["settlement_id"])

    def add(self, settlement: Settlement | SettlementItems, *, scores: pd.DataFrame | None = None) -> bool:
        """Record a settlement (and optionally its scores, ANOMALY_COLUMNS as ``score_settlement``
        returned them); False, and nothing written, when the settlement is already recorded as it
        is. One recorded with other items or figures (a new version of its document) has its
        rows and scores replaced, keeping its place in the order of recording (True)."""
        extracted = settlement if isinstance(settlement, SettlementItems) else extract_items(settlement)
        sid = str(extracted.summary["settlement_id"].iloc[0])
        tables = {
            "items": extracted.items,
            "reimbursements": extracted.reimbursements,
            "scores": _score_rows(scores, sid),
            "settlements": extracted.summary,  # last: it marks "recorded"
        }
        recorded = self._read("settlements")
        position = _position(recorded, sid)
        if position is not None and all(
            _same_rows(self._read(name), tables[name].astype(_TABLES[name]), sid)
            for name in ("items", "reimbursements", "settlements")
        ):
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            old = recorded if name == "settlements" else self._read(name)
            if name == "settlements" and position is not None:  # replaced where it was: the order holds
                combined = pd.concat([old.iloc[:position], frame, old.iloc[position + 1 :]], ignore_index=True)
            else:
                old = old[old["settlement_id"] != sid]  # a half-written earlier add is replaced, not doubled
                combined = frame if old.empty else pd.concat([old, frame], ignore_index=True)
            self._write(name, combined.astype(_TABLES[name]))
        return True

    def _earlier(self, frame: pd.DataFrame, before: str | None) -> pd.DataFrame:
        """``frame``'s rows of the settlements recorded before ``before`` (all others when it is
        not recorded): a settlement scored again sees the history it was first scored against."""
        if before is None:
            return frame
        order = self._read("settlements")["settlement_id"].tolist()
        if before not in order:
            return frame[frame["settlement_id"] != before].reset_index(drop=True)
        earlier = order[: order.index(before)]
        return frame[frame["settlement_id"].isin(earlier)].reset_index(drop=True)

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


def _position(settlements: pd.DataFrame, settlement_id: str) -> int | None:
    """Where the settlement is in the order of recording, None when it is not recorded."""
    found = (settlements["settlement_id"] == settlement_id).to_numpy().nonzero()[0]
    return int(found[0]) if len(found) else None


def _same_rows(stored: pd.DataFrame, new: pd.DataFrame, settlement_id: str) -> bool:
    """Whether ``stored`` holds exactly ``new`` as the settlement's rows (both of the table's types)."""
    mine = stored[stored["settlement_id"] == settlement_id].reset_index(drop=True)
    return bool(mine.equals(new[list(stored.columns)].reset_index(drop=True)))


def _score_rows(scores: pd.DataFrame | None, settlement_id: str) -> pd.DataFrame:
    if scores is None:
        return empty_frame(SCORE_COLUMNS)
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns and c != "settlement_id"]
    if missing:
        raise ValueError(f"scores for settlement {settlement_id} lack column(s) {', '.join(missing)}")
    rows = scores.assign(settlement_id=settlement_id)[list(SCORE_COLUMNS)].reset_index(drop=True)
    rows["reasons"] = [list(r) for r in rows["reasons"]]
    return rows
