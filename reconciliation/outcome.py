"""What settling one settlement produced: the record the flow returns, the JSON contract
and the workbook are written from.

Every stage's result is kept (not just the status) so that the workbook can explain each
number: the validation failures, the mapped lines, the gate failures, the vouchers and what
M3 answered, the reconciliation and the anomaly scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reconciliation.gates import GateOutcome
from reconciliation.mapping import MappedLines
from reconciliation.matching import Reconciliation
from reconciliation.model import Settlement
from reconciliation.schemas import ValidationReport
from reconciliation.vouchers import Voucher

# posted: written to M3 now; dry_run: checked, nothing posted by choice; held: a gate, M3's
# refusal or M3 being unreachable stopped it; duplicate: already in M3; submitted: handed to
# M3 as a GL batch that M3's batch job has not booked yet (the next run confirms it, never
# submits it again); invalid: the input is wrong; failed: an unexpected error in m3sync itself
# (the reason names it, the log has the traceback).
STATUSES = ("posted", "dry_run", "held", "duplicate", "submitted", "invalid", "failed")


@dataclass(frozen=True)
class PostedVoucherRef:
    """M3's answer for one voucher: its posting key and voucher number."""

    key: str
    m3_ref: str  # e.g. "AAA/2024/AZ/1234" (division/year/series/number)
    already_posted: bool  # found in M3 or the state store instead of written now


@dataclass(frozen=True)
class SubmittedVoucherRef:
    """A voucher M3 accepted as GLS840 batch ``batch`` (KEY1) and has not booked yet."""

    key: str
    batch: str


@dataclass(frozen=True)
class SettlementOutcome:
    settlement: Settlement
    status: str  # one of STATUSES
    reasons: tuple[str, ...] = ()
    validation: ValidationReport | None = None
    mapped: MappedLines | None = None
    gates: GateOutcome | None = None
    vouchers: tuple[Voucher, ...] = ()
    posted: tuple[PostedVoucherRef, ...] = ()
    submitted: tuple[SubmittedVoucherRef, ...] = ()  # in M3's batch queue, not booked yet
    reconciliation: Reconciliation | None = None
    anomalies: pd.DataFrame | None = None  # anomaly.ANOMALY_COLUMNS, sorted by score descending
    reconciliation_skipped_reason: str = ""
    unreachable: str = ""  # M3/Amazon could not be reached (exit code 4)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown settlement status {self.status!r}")
