"""Settled settlements' outcomes, kept for the period summary (``m3sync report``).

The workbook explains every number from a settlement's whole outcome: its lines, the mapped
lines, the gates, the vouchers and M3's answers, the reconciliation, the anomaly scores and the
audit records. Most of it is not in M3 and none of it is in the state store, so ``settle``
keeps each settlement's latest outcome (a dry run's excepted) as a file under
``HOME/history/settled/``: ``<deposit date>_<settlement id>.pickle``. The period summary
selects them by the deposit date in the name and writes the same workbook from them, reading
nothing from M3 or Amazon.

A ``duplicate`` outcome (the settlement was already posted) does not replace the one
recorded: the recorded one says what was posted. It is recorded only when there is none (a
settlement posted before outcomes were kept, or whose kept file cannot be read). Files are
Python pickles of m3sync's own objects, trusted as the rest of HOME (the state database,
config.toml); a file another version of m3sync cannot read is named in a one-line error.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from reconciliation.outcome import SettlementOutcome

# Bumped when what is kept changes in a way older files cannot follow.
RECORD_FORMAT = 1
_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(.+)\.pickle$")


class SettledRecordError(ValueError):
    """A kept outcome that cannot be read; names the file."""


@dataclass(frozen=True)
class SettledRecord:
    """One kept outcome's file, known by its name without reading it."""

    settlement_id: str
    deposit_date: date  # the settlement's deposit date (UTC)
    path: Path


def deposit_day(outcome: SettlementOutcome) -> date:
    """The day (UTC) Amazon's transfer of the settlement is dated: the period summary's date."""
    day: date = outcome.settlement.deposit_date.tz_convert("UTC").date()
    return day


def _safe_id(settlement_id: str) -> str:
    # Amazon's ids are digits; anything else still names one file inside the folder.
    return re.sub(r"[^A-Za-z0-9.-]", "-", settlement_id) or "-"


class SettledOutcomes:
    """Settled settlements' latest outcomes under ``home/history/settled``."""

    def __init__(self, home: Path | str) -> None:
        self.folder = Path(home) / "history" / "settled"

    def records(self) -> list[SettledRecord]:
        """Every kept outcome, by deposit date then settlement id (none when the folder is absent)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            match = _NAME.match(path.name)
            if match is not None:
                found.append(SettledRecord(match.group(2), date.fromisoformat(match.group(1)), path))
        return sorted(found, key=lambda r: (r.deposit_date, r.settlement_id))

    def in_period(self, first: date, last: date) -> list[SettledRecord]:
        """Kept outcomes whose deposit date is from ``first`` to ``last``, both included."""
        return [r for r in self.records() if first <= r.deposit_date <= last]

    def record(self, outcome: SettlementOutcome) -> bool:
        """Keep ``outcome`` as its settlement's latest; False (nothing written) for a dry run, and
        for a duplicate when an outcome of the settlement is already kept."""
        if outcome.status == "dry_run":
            return False
        sid = _safe_id(outcome.settlement.settlement_id)
        earlier = list(self.folder.glob(f"*_{sid}.pickle")) if self.folder.is_dir() else []
        if outcome.status == "duplicate" and any(_readable(path) for path in earlier):
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{deposit_day(outcome).isoformat()}_{sid}.pickle"
        temporary = self.folder / f".{target.name}.{os.getpid()}.tmp"  # one per process: runs may overlap
        with temporary.open("wb") as file:
            pickle.dump((RECORD_FORMAT, outcome), file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, target)  # readers never see a half-written file
        for stale in earlier:  # the same settlement under another deposit date (a corrected file)
            if stale != target:
                stale.unlink(missing_ok=True)
        return True

    def load(self, records: Sequence[SettledRecord]) -> list[SettlementOutcome]:
        """The kept outcomes of ``records``, in their order; SettledRecordError names an unreadable file."""
        return [_load(r.path) for r in records]


def _readable(path: Path) -> bool:
    try:
        _load(path)
    except SettledRecordError:
        return False
    return True


def _load(path: Path) -> SettlementOutcome:
    try:
        with path.open("rb") as file:
            kept = pickle.load(file)  # m3sync's own file under HOME, trusted as the state database
    except Exception as exc:  # unpickling raises many types (a class m3sync no longer has, a cut file)
        raise SettledRecordError(
            f"{path}: cannot read the kept outcome ({type(exc).__name__}: {exc}); settle the settlement again"
        ) from None
    if not (isinstance(kept, tuple) and len(kept) == 2 and isinstance(kept[1], SettlementOutcome)):
        raise SettledRecordError(f"{path}: not an outcome kept by m3sync settle")
    if kept[0] != RECORD_FORMAT:
        raise SettledRecordError(
            f"{path}: kept by another version of m3sync (format {kept[0]}, this one reads {RECORD_FORMAT}); "
            "settle the settlement again"
        )
    return kept[1]
