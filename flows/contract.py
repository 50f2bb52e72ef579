"""The JSON document ``m3sync settle --json`` prints (docs/cli-contract.md), and its exit code.

Other tools script against this shape: keys are never renamed, amounts are strings with the
currency's decimals, dates are ISO 8601 (UTC for times).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from flows.exit_codes import EXIT_FAILED, EXIT_HELD, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE
from flows.failures import Endpoint, RunFailed, UnexpectedError, contained, end_run, one_line
from reconciliation.model import format_amount
from reconciliation.outcome import PostedVoucherRef, SettlementOutcome
from reconciliation.parse import SettlementFileError


def _utc(moment: pd.Timestamp) -> str:
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def settlement_entry(outcome: SettlementOutcome) -> dict[str, Any]:
    s = outcome.settlement
    vouchers = []
    refs = {p.key: p.m3_ref for p in outcome.posted}
    for voucher in outcome.vouchers:
        vouchers.append(
            {
                "key": voucher.key,
                "date": voucher.accounting_date.isoformat(),
                "lines": len(voucher.lines),
                "debit": format_amount(voucher.debit_minor, s.currency),
                "credit": format_amount(voucher.credit_minor, s.currency),
                "m3_ref": refs.get(voucher.key),
                "audit": audit.as_dict() if (audit := outcome.audits.get(voucher.key)) is not None else None,
            }
        )
    rec = outcome.reconciliation
    reconciliation: dict[str, Any] = {"status": "done" if rec is not None else "skipped"}
    if rec is not None:
        reconciliation.update(rec.counts)
    else:
        reconciliation.update(
            {
                "matched": 0,
                "amount_mismatch": 0,
                "missing_in_m3": 0,
                "not_settled": 0,
                "refund_without_credit": 0,
                "reason": outcome.reconciliation_skipped_reason,
            }
        )
    anomalies = []
    if outcome.anomalies is not None:
        for row in outcome.anomalies.itertuples(index=False):
            anomalies.append(
                {
                    "order_id": row.order_id,
                    "sku": row.sku,
                    "kind": row.kind,
                    "score": round(float(row.score), 4),
                    "reasons": list(row.reasons),
                }
            )
    return {
        "settlement_id": s.settlement_id,
        "source": s.source,
        "format": s.format,
        "marketplace": s.marketplace,
        "currency": s.currency,
        "start": _utc(s.start),
        "end": _utc(s.end),
        "deposit_date": s.deposit_date.tz_convert("UTC").date().isoformat(),
        "total_amount": format_amount(s.total_minor, s.currency),
        "line_count": s.line_count,
        "status": outcome.status,
        "reasons": list(outcome.reasons),
        "journal": {"vouchers": vouchers},
        "reconciliation": reconciliation,
        "anomalies": anomalies,
    }


def file_entry(
    source: str,
    status: str,
    reasons: Sequence[str],
    settlement_id: str | None = None,
    posted: Sequence[PostedVoucherRef] = (),
) -> dict[str, Any]:
    """An entry with what is known when no settlement can be described: a file that could not be
    read (``invalid``), whose reading failed, or an outcome whose description failed (``failed``,
    with what was posted); every key of the contract is there."""
    return {
        "settlement_id": settlement_id,
        "source": source,
        "format": None,
        "marketplace": None,
        "currency": None,
        "start": None,
        "end": None,
        "deposit_date": None,
        "total_amount": None,
        "line_count": 0,
        "status": status,
        "reasons": list(reasons),
        "journal": {
            "vouchers": [
                {
                    "key": p.key,
                    "date": None,
                    "lines": None,
                    "debit": None,
                    "credit": None,
                    "m3_ref": p.m3_ref,
                    "audit": None,
                }
                for p in posted
            ]
        },
        "reconciliation": {
            "status": "skipped",
            "matched": 0,
            "amount_mismatch": 0,
            "missing_in_m3": 0,
            "not_settled": 0,
        },
        "anomalies": [],
    }


def invalid_entry(source: str, errors: Sequence[SettlementFileError]) -> dict[str, Any]:
    """A file (or part of one) that could not be read: no settlement, status ``invalid``."""
    return file_entry(source, "invalid", [str(e) for e in errors])


def _entry(outcome: SettlementOutcome) -> dict[str, Any]:
    """The outcome's entry; should describing it fail, the essentials (what was posted above all)."""
    entry = contained(f"describing settlement {outcome.settlement.settlement_id}", lambda: settlement_entry(outcome))
    if not isinstance(entry, UnexpectedError):
        return entry
    return file_entry(
        outcome.settlement.source,
        "failed",
        [*outcome.reasons, entry.reason()],
        settlement_id=outcome.settlement.settlement_id,
        posted=outcome.posted,
    )


def duplicate_entry(kept: dict[str, Any], source: str) -> dict[str, Any]:
    """A second copy of a settlement in the same run (another file or document): processed once."""
    return {
        **kept,
        "source": source,
        "status": "duplicate",
        "reasons": [f"same settlement as {kept['source']}; processed once"],
    }


def settle_document(outcomes: Sequence[SettlementOutcome], sources: Any, workbook: Any) -> dict[str, Any]:
    """The run's document. ``workbook`` is the written workbook's info (``.path``), or the
    `UnexpectedError` that stopped it: then ``report`` is null and ``report_error`` says why."""
    entries = [_entry(o) for o in outcomes]
    by_id = {entry["settlement_id"]: entry for entry in entries}
    entries += [
        duplicate_entry(by_id[d.settlement_id], d.source)
        for d in sources.duplicates_in_input
        if d.settlement_id in by_id
    ]
    by_source: dict[str, list[SettlementFileError]] = {}
    for error in sources.errors:
        by_source.setdefault(error.source, []).append(error)
    entries += [invalid_entry(source, errors) for source, errors in by_source.items()]
    entries += [
        file_entry(f.source, "failed", [f.error.reason(), "nothing posted for this file"]) for f in sources.failures
    ]
    document: dict[str, Any] = {"settlements": entries, "unreachable": any(o.unreachable for o in outcomes)}
    if isinstance(workbook, UnexpectedError):
        document["report"] = None
        document["report_error"] = f"workbook not written: {workbook.reason()}"
    elif workbook is not None:
        document["report"] = str(workbook.path)
        # Every raw line, when the workbook's Lines sheet holds them summed (large runs); else null.
        document["lines_file"] = str(workbook.lines_file) if workbook.lines_file is not None else None
    return document


def exit_code(document: dict[str, Any]) -> int:
    """4 unreachable, else 5 failed (a settlement, a file or the workbook), else 2 invalid input,
    else 3 held, else 0 (posted, dry run, duplicate, submitted). See ``flows/exit_codes.py``."""
    statuses = {entry["status"] for entry in document["settlements"]}
    if document.get("unreachable"):
        return EXIT_UNREACHABLE
    if "failed" in statuses or document.get("report_error"):
        return EXIT_FAILED
    if "invalid" in statuses:
        return EXIT_INVALID
    if "held" in statuses:
        return EXIT_HELD
    return EXIT_OK


# Settlements named per status in a Failed run's message; the rest are counted ("and 3 more").
MESSAGE_NAMES = 3
REASON_LENGTH = 60  # characters of an entry's first reason in the run's message


def _short(text: str) -> str:
    """The first clause of a reason, on one line, at most ``REASON_LENGTH`` characters."""
    clause = " ".join(text.split()).split("; ")[0]
    return clause if len(clause) <= REASON_LENGTH else clause[: REASON_LENGTH - 1].rstrip() + "…"


def _named(entry: dict[str, Any]) -> str:
    """An entry in the run's message: the settlement and why; a file that could not be read by its
    first error (``file:line:column: message``)."""
    reason = _short(entry["reasons"][0]) if entry["reasons"] else entry["status"]
    return reason if entry["settlement_id"] is None else f"{entry['settlement_id']} ({reason})"


def _out_of_reach(entries: list[dict[str, Any]], m3: Endpoint | None) -> str:
    """M3 out of reach (or rejecting m3sync), by its host: the first such reason of a held settlement
    (``flows.settlement_steps.m3_problem`` wrote it)."""
    reason = next(
        (
            r
            for e in entries
            if e["status"] == "held"
            for r in e["reasons"]
            if "M3 unreachable" in r or "M3 rejected" in r
        ),
        "M3 unreachable",
    )
    if m3 is None:
        return one_line(reason)
    if "M3 rejected" in reason:
        return one_line(f"M3 at {m3.origin} {reason[reason.index('M3 rejected') + 3 :]}")
    return m3.unreachable(reason[reason.index("M3 unreachable") :].removeprefix("M3 unreachable").lstrip(": "))


def run_message(document: dict[str, Any], m3: Endpoint | None = None) -> str:
    """One line an operator reads in the run list: what kept the run from being a plain success,
    e.g. ``2 of 16 held: 1234567 (amount mismatch …), 7654321 (accounting period 2024-10 is
    closed …); 1 invalid: x.tsv:4:3: …``; M3 out of reach first, by its host. "" when nothing did."""
    entries = document["settlements"]
    parts = []
    if document.get("unreachable"):
        parts.append(_out_of_reach(entries, m3))
    for status in ("held", "invalid", "failed"):
        chosen = [e for e in entries if e["status"] == status]
        if chosen:
            named = ", ".join(_named(e) for e in chosen[:MESSAGE_NAMES])
            more = f" and {len(chosen) - MESSAGE_NAMES} more" if len(chosen) > MESSAGE_NAMES else ""
            parts.append(f"{len(chosen)} of {len(entries)} {status}: {named}{more}")
    if document.get("report_error"):
        parts.append(document["report_error"])
    return one_line("; ".join(parts), limit=1000)


def run_state(document: dict[str, Any], m3: Endpoint | None = None) -> Any:
    """The settlement run's end (``end_run``): the document when every settlement was posted, dry
    run, duplicate or submitted (Completed); else Failed with ``run_message``."""
    code = exit_code(document)
    return end_run(document, code, run_message(document, m3) if code != EXIT_OK else "")


def run_document(state: Any) -> dict[str, Any]:
    """The document of a finished run (``flow(..., return_state=True)``), Completed or Failed
    because of its settlements; the exception that ended any other Failed run is raised."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunFailed):
        return result.document
    if isinstance(result, BaseException):
        raise result
    return result  # a Completed settlement run's data is its document


def run_exit_code(state: Any) -> int:
    """``m3sync``'s exit code for a finished run of any flow whose document ``run_document`` read:
    the one its Failed state carries (`RunFailed`), else 0."""
    result = state.result(raise_on_failure=False)
    return result.exit_code if isinstance(result, RunFailed) else EXIT_OK
