"""``m3sync reverse SETTLEMENT_ID``: reverse a settlement's vouchers in M3, so it can be posted again.

The vouchers of the settlement's current posting-key version (``AMZ-{id}-{YYYYMM}``, then
``…-v2`` …) that the state store records as posted are read back from M3, and each is reversed
by a voucher with the same lines and opposite amounts under its own posting key
(``REV-`` + the key), posted exactly once like any voucher (``settlement_steps.post_entry``).
Once every reversing voucher is in M3 the state store records the reversal: the settlement's
next ``settle`` posts it under the next version, exactly once again. A version is reversed
once; asking again is refused (exit 2). See docs/cli-contract.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from connectors.m3 import JournalEntry, JournalLine, PostedVoucherLine
from connectors.state import AlreadyReversed, Posting
from flows.connections import Connections
from flows.exit_codes import EXIT_HELD, EXIT_INVALID, EXIT_OK
from flows.settlement_steps import post_entry
from reconciliation.m3_fields import VTXT_LENGTH
from reconciliation.vouchers import key_version, reversal_key

ReversalStatus = Literal["reversed", "submitted", "refused", "held"]
_EXIT = {"reversed": EXIT_OK, "submitted": EXIT_OK, "refused": EXIT_INVALID, "held": EXIT_HELD}


@dataclass(frozen=True)
class ReversingVoucher:
    key: str  # REV-…
    reverses: str  # the posting key reversed
    original_m3_ref: str
    m3_ref: str | None = None  # DIVI/YEA4/VSER/VONO once booked
    batch: str | None = None  # GLS840 KEY1 while M3's batch job has not booked it
    already_posted: bool = False


@dataclass(frozen=True)
class ReversalOutcome:
    settlement_id: str
    status: ReversalStatus
    version: int | None  # the version reversed (or asked to be)
    accounting_date: date | None
    vouchers: tuple[ReversingVoucher, ...] = ()
    reasons: tuple[str, ...] = field(default=())

    @property
    def next_version(self) -> int | None:
        return self.version + 1 if self.status == "reversed" and self.version is not None else None

    @property
    def exit_code(self) -> int:
        return _EXIT[self.status]

    def document(self) -> dict[str, Any]:
        """The JSON document ``m3sync reverse --json`` prints (docs/cli-contract.md)."""
        return {
            "settlement_id": self.settlement_id,
            "status": self.status,
            "version": self.version,
            "next_version": self.next_version,
            "accounting_date": None if self.accounting_date is None else self.accounting_date.isoformat(),
            "vouchers": [
                {
                    "key": v.key,
                    "reverses": v.reverses,
                    "original_m3_ref": v.original_m3_ref,
                    "m3_ref": v.m3_ref,
                    "batch": v.batch,
                    "already_posted": v.already_posted,
                }
                for v in self.vouchers
            ],
            "reasons": list(self.reasons),
        }


def reversal_date(given: date | None) -> date:
    """The reversing vouchers' accounting date: the one given, else today (UTC).

    Seam for period locks (issue 11, item 6): once the M3 connector reads open periods, a date
    not given becomes the first open period's first day, and a given date in a closed period is
    refused here, before anything is posted."""
    return given if given is not None else datetime.now(UTC).date()


def current_postings(connections: Connections, settlement_id: str, version: int) -> list[Posting]:
    """The state store's voucher postings of ``version`` of the settlement's keys, oldest key first."""
    prefix = f"AMZ-{settlement_id}-"
    return sorted(
        (
            p
            for p in connections.state.list_postings(kind="voucher")
            if p.posting_key.startswith(prefix) and key_version(p.posting_key) == version
        ),
        key=lambda p: p.posting_key,
    )


def reverse_settlement(connections: Connections, settlement_id: str, on: date | None = None) -> ReversalOutcome:
    """Reverse the settlement's current version in M3 and record it (module docstring)."""
    state = connections.state
    version = state.settlement_version(settlement_id)
    postings = current_postings(connections, settlement_id, version)
    posted = [p for p in postings if p.status == "posted"]
    unsettled = [p for p in postings if p.status in ("claimed", "in_doubt", "submitted")]
    if unsettled:
        keys = ", ".join(f"{p.posting_key} ({p.status})" for p in unsettled)
        return ReversalOutcome(
            settlement_id,
            "held",
            version,
            None,
            reasons=(f"not every voucher of the settlement is known to be in M3: {keys}; run settle again first",),
        )
    if not posted:
        earlier = state.get_reversal(settlement_id, version - 1) if version > 1 else None
        reason = (
            f"settlement {settlement_id} version {version - 1} is already reversed "
            f"({', '.join(earlier.reversal)} on {earlier.accounting_date}); version {version} "
            "has not been posted since, so there is nothing to reverse"
            if earlier is not None
            else f"settlement {settlement_id}: the state store records no posted voucher of it; nothing to reverse"
        )
        return ReversalOutcome(settlement_id, "refused", version, None, reasons=(reason,))
    accounting_date = reversal_date(on)
    m3 = connections.require_m3()
    done: list[ReversingVoucher] = []
    for original in posted:
        ref = original.target_ref or ""
        divi, year, _series, vono = ref.split("/")
        voucher = m3.read_voucher(divi, int(year), vono)
        entry = reversing_entry(original.posting_key, voucher.divi, voucher.currency, accounting_date, voucher.lines)
        one = post_entry(
            connections,
            entry,
            kind="reversal",
            source=f"reversal of {original.posting_key} ({ref})",
            content_hash=entry_hash(entry),
            detail={"settlement_id": settlement_id, "reverses": original.posting_key, "version": version},
        )
        if one.refused is not None:
            return ReversalOutcome(settlement_id, "held", version, accounting_date, tuple(done), (one.refused,))
        done.append(ReversingVoucher(entry.key, original.posting_key, ref, one.reference, one.batch, one.already))
    if any(v.batch is not None for v in done):
        waiting = ", ".join(f"{v.key} (batch {v.batch})" for v in done if v.batch is not None)
        return ReversalOutcome(
            settlement_id,
            "submitted",
            version,
            accounting_date,
            tuple(done),
            (f"{waiting} submitted to M3; its batch job has not booked it yet: run reverse again to confirm",),
        )
    try:
        state.record_reversal(
            settlement_id,
            version,
            {p.posting_key: p.target_ref or "" for p in posted},
            {v.key: v.m3_ref or "" for v in done},
            accounting_date.isoformat(),
        )
    except AlreadyReversed:
        pass  # another run recorded the same reversal first: the vouchers are the same ones
    return ReversalOutcome(settlement_id, "reversed", version, accounting_date, tuple(done))


def reversing_entry(
    key: str, divi: str, currency: str, accounting_date: date, lines: tuple[PostedVoucherLine, ...]
) -> JournalEntry:
    """The voucher reversing the one posted under ``key`` in its division: its lines as M3 holds
    them, amounts negated, at the original's rate type and rate so the local amounts mirror it
    exactly. Lines M3 added itself (its rounding, CUAM 0) are left out: M3 books the mirrored
    difference again (per-line rounding half-up is symmetric in sign)."""
    sent = [line for line in lines if not line.added_by_m3]
    rated = next((line for line in sent if line.rate is not None), None)
    return JournalEntry(
        key=reversal_key(key),
        divi=divi,
        accounting_date=accounting_date,
        currency=currency,
        text="Reversal" if len(reversal_key(key)) + len(" Reversal") <= VTXT_LENGTH else "",
        lines=tuple(
            JournalLine(dimensions=tuple(line.dimensions), amount=-line.amount, vat_code=line.vat_code) for line in sent
        ),
        rate_type=rated.rate_type if rated is not None else None,
        rate=rated.rate if rated is not None else None,
    )


def entry_hash(entry: JournalEntry) -> str:
    body = "|".join(
        [
            entry.key,
            entry.accounting_date.isoformat(),
            entry.currency,
            *(f"{','.join(line.dimensions)}:{line.amount}" for line in entry.lines),
        ]
    )
    return hashlib.sha256(body.encode()).hexdigest()
