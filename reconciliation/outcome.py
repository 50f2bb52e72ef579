"""What settling one settlement produced, and the rule that decides its status.

``decide_outcome`` is that rule: a pure function of what the flow gathered (the prepared
settlement, the reconciliation or why it was skipped, what posting got from M3 and the state
store, an unexpected error) and the run's options. The flow only gathers these and calls it.

``SettlementOutcome`` is the record the flow returns and the JSON contract and the workbook are
written from. Every stage's result is kept (not just the status) so that the workbook can
explain each number: the validation failures, the mapped lines, the gate failures, the
vouchers and what M3 answered, the reconciliation and the anomaly scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol, get_args

import pandas as pd

from reconciliation.audit import AuditRecord
from reconciliation.gates import GateOutcome
from reconciliation.invoice_policy import InvoicePolicy
from reconciliation.local_currency import LocalVoucher
from reconciliation.mapping import MappedLines
from reconciliation.matching import Reconciliation
from reconciliation.model import Settlement
from reconciliation.pipeline import PreparedSettlement
from reconciliation.schemas import ValidationReport
from reconciliation.tax import TaxProfiles
from reconciliation.vouchers import Voucher

# posted: written to M3 now; dry_run: checked, nothing posted by choice; held: a gate, --strict,
# M3's refusal or M3 being unreachable stopped it; duplicate: already in M3; submitted: handed to
# M3 as a GL batch that M3's batch job has not booked yet (the next run confirms it, never
# submits it again); invalid: the input is wrong (a file that cannot be read: ``flows.contract``
# writes it, no settlement exists to decide about); failed: an unexpected error in m3sync itself
# (the reason names it, the log has the traceback).
Status = Literal["posted", "dry_run", "held", "duplicate", "submitted", "invalid", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class RunOptions:
    """How the run was asked to settle (``m3sync settle`` flags), the same for every settlement."""

    dry_run: bool = False  # check and report; post nothing
    strict: bool = False  # hold a settlement with any order not matching M3's invoices
    tolerance: Decimal = Decimal("0.01")  # per order, in the settlement's currency
    first_open_period: bool = False  # post a voucher whose period is closed in the first open one
    # refunds without an M3 credit note, orders without an M3 invoice: held unless chosen otherwise
    invoice_policy: InvoicePolicy = field(default_factory=InvoicePolicy)
    tax: TaxProfiles | None = None  # tax per marketplace (config.toml [tax]); None: the shipped profiles


@dataclass(frozen=True)
class ReconciliationSkipped:
    """Reconciliation against M3's invoices was not done, and why (M3 not configured or not answering)."""

    reason: str


@dataclass(frozen=True)
class PostedVoucherRef:
    """M3's answer for one voucher: its posting key and voucher number."""

    key: str
    m3_ref: str  # e.g. "AAA/2024/AZ/1234" (division/year/series/number)
    already_posted: bool  # found in M3 or the state store instead of written now
    local: LocalVoucher | None = None  # as M3 booked it in local currency (None: not read back)


@dataclass(frozen=True)
class SubmittedVoucherRef:
    """A voucher M3 accepted as GLS840 batch ``batch`` (KEY1) and has not booked yet."""

    key: str
    batch: str


@dataclass(frozen=True)
class PostingResult:
    """What posting a settlement's vouchers came to, built by the flow from M3's and the state
    store's answers. Posting goes in date order and stops at the first refusal."""

    posted: tuple[PostedVoucherRef, ...] = ()
    refused: tuple[str, ...] = ()  # why M3 or the state store refused a voucher
    submitted: tuple[SubmittedVoucherRef, ...] = ()  # M3's batch job has not booked them yet
    confirmed: tuple[str, ...] = ()  # submitted by an earlier run, found booked now: "key (ref, batch b)"
    # M3 could not be reached or rejected m3sync itself (an answer in doubt included): posting
    # stopped, and ``posted`` is what the state store records as posted.
    unreachable: str = ""
    notes: tuple[str, ...] = ()  # what else posting did (the customer ledger's payment), said as reasons


@dataclass(frozen=True)
class PostingUnknown:
    """Posting had begun when an unexpected error came, and what it wrote could not be read back."""


class ErrorReport(Protocol):
    """An unexpected error as data (``flows.failures.UnexpectedError``): the stage it stopped and one line."""

    @property
    def stage(self) -> str: ...

    def reason(self) -> str: ...


@dataclass(frozen=True, eq=False)
class SettlementOutcome:
    """Compares by identity (``eq=False``): it holds DataFrames, which have no single truth value.
    Two outcomes of one settlement are told apart by ``settlement.settlement_id`` and ``status``."""

    settlement: Settlement
    status: Status
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
    audits: Mapping[str, AuditRecord] = field(default_factory=dict)  # by voucher key: what it was made from

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown settlement status {self.status!r}")


def blocked_by_strict(reconciliation: Reconciliation | ReconciliationSkipped | None, options: RunOptions) -> bool:
    """With ``--strict``, a reconciliation with any order not matching M3's invoices holds the settlement
    (also one whose refunds or missing invoices ``invoice_policy`` would post elsewhere by choice)."""
    return options.strict and isinstance(reconciliation, Reconciliation) and not reconciliation.exceptions.empty


def may_post(
    prepared: PreparedSettlement, reconciliation: Reconciliation | ReconciliationSkipped | None, options: RunOptions
) -> bool:
    """Post only what no gate holds, outside a dry run, and (with ``--strict``) whose orders all match."""
    return not (prepared.held or options.dry_run or blocked_by_strict(reconciliation, options))


def decide_outcome(
    settlement: Settlement,
    prepared: PreparedSettlement | None,
    reconciliation: Reconciliation | ReconciliationSkipped | None,
    posting: PostingResult | PostingUnknown | None,
    options: RunOptions,
    *,
    error: ErrorReport | None = None,
    anomalies: pd.DataFrame | None = None,
    suggestions: tuple[str, ...] = (),
    audits: Mapping[str, AuditRecord] | None = None,
) -> SettlementOutcome:
    """The settlement's status and reasons from what happened to it.

    ``settlement`` is the one read; the outcome describes ``prepared.settlement`` (its
    marketplace resolved) when there is one. ``prepared`` is None, ``reconciliation`` None and
    ``posting`` None when an unexpected ``error`` came before that stage (or, for ``posting``,
    when nothing was to be posted).
    ``error`` makes it ``failed`` whatever else happened; otherwise: held by a gate, dry run,
    held by ``--strict``, held by M3 (unreachable, a refusal), submitted, duplicate or posted.
    ``suggestions`` (the likely GL category of an unmapped fee type) follow the reasons.
    ``audits`` (by voucher key) are kept as they are, whatever the status.
    """
    audits = audits or {}
    if error is not None:
        return _failed(settlement, prepared, reconciliation, posting, error, anomalies, audits)
    if prepared is None:
        raise ValueError("a settlement that was not prepared can only have failed: pass the error")
    reasons = [*prepared.reasons, *suggestions]
    result = posting if isinstance(posting, PostingResult) else PostingResult()
    stopped = f"{result.unreachable}; nothing more posted" if result.unreachable else ""
    status: Status
    if prepared.held:
        status = "held"
    elif options.dry_run:
        status = "dry_run"
    elif isinstance(reconciliation, Reconciliation) and blocked_by_strict(reconciliation, options):
        status = "held"
        reasons.append(f"strict reconciliation: {len(reconciliation.exceptions)} order(s) do not match M3 invoices")
    elif isinstance(posting, PostingUnknown):
        status = "held"
        reasons.append(POSTED_UNKNOWN)
    elif stopped:
        status = "held"
        reasons.append(stopped)
    elif result.refused:
        status = "held"
        reasons += result.refused
    elif result.submitted:
        status = "submitted"
        reasons += [
            f"{s.key} was submitted to M3 as GL batch {s.batch} (GLS840); M3's batch job has not booked "
            "it yet: the next run confirms it and never submits it again"
            for s in result.submitted
        ]
    elif result.posted and all(p.already_posted for p in result.posted):
        status = "duplicate"
        reasons.append("already posted to M3: " + ", ".join(p.m3_ref for p in result.posted))
    else:
        status = "posted"
    if (result.refused or stopped) and result.posted:
        reasons.append("posted before the refusal: " + ", ".join(p.key for p in result.posted))
    if (result.refused or stopped) and result.submitted:
        reasons.append(
            "submitted to M3 before the refusal, not booked yet (the next run confirms them): "
            + ", ".join(f"{s.key} (batch {s.batch})" for s in result.submitted)
        )
    if result.confirmed:
        reasons.append("booked by M3 since an earlier run submitted it: " + ", ".join(result.confirmed))
    reasons += result.notes
    local_problems = [problem for p in result.posted if p.local is not None for problem in p.local.problems]
    if local_problems:  # posted, but not as the books need it: never passed over as posted
        reasons += local_problems
        status = "held" if status in ("posted", "duplicate") else status
    return SettlementOutcome(
        settlement=prepared.settlement,
        status=status,
        reasons=tuple(reasons),
        validation=prepared.validation,
        mapped=prepared.mapped,
        gates=prepared.gates,
        vouchers=prepared.gates.vouchers,
        posted=result.posted,
        submitted=result.submitted,
        reconciliation=_done(reconciliation),
        anomalies=anomalies,
        reconciliation_skipped_reason=_skipped_reason(reconciliation),
        unreachable=stopped,
        audits=audits,
    )


POSTED_UNKNOWN = (
    "could not tell what was posted before the error (the state store and M3 know; a rerun never posts a voucher twice)"
)


def _failed(
    settlement: Settlement,
    prepared: PreparedSettlement | None,
    reconciliation: Reconciliation | ReconciliationSkipped | None,
    posting: PostingResult | PostingUnknown | None,
    error: ErrorReport,
    anomalies: pd.DataFrame | None,
    audits: Mapping[str, AuditRecord],
) -> SettlementOutcome:
    """Status ``failed``: the error, what had been done (mapped lines, vouchers, reconciliation)
    and what was posted before it."""
    reasons = [error.reason(), *(prepared.reasons if prepared is not None else ())]
    posted = posting.posted if isinstance(posting, PostingResult) else ()
    if isinstance(posting, PostingUnknown):
        reasons.append(POSTED_UNKNOWN)
    elif posted:
        reasons.append("posted before the error: " + ", ".join(f"{p.key} ({p.m3_ref})" for p in posted))
    else:
        reasons.append("nothing posted for this settlement")
    skipped = _skipped_reason(reconciliation) if reconciliation is not None else f"not done: failed while {error.stage}"
    return SettlementOutcome(
        settlement=prepared.settlement if prepared is not None else settlement,
        status="failed",
        reasons=tuple(reasons),
        validation=prepared.validation if prepared is not None else None,
        mapped=prepared.mapped if prepared is not None else None,
        gates=prepared.gates if prepared is not None else None,
        vouchers=prepared.gates.vouchers if prepared is not None else (),
        posted=posted,
        reconciliation=_done(reconciliation),
        anomalies=anomalies,
        reconciliation_skipped_reason=skipped,
        audits=audits,
    )


def _done(reconciliation: Reconciliation | ReconciliationSkipped | None) -> Reconciliation | None:
    return reconciliation if isinstance(reconciliation, Reconciliation) else None


def _skipped_reason(reconciliation: Reconciliation | ReconciliationSkipped | None) -> str:
    return reconciliation.reason if isinstance(reconciliation, ReconciliationSkipped) else ""
