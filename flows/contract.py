"""The JSON document ``m3sync settle --json`` prints (DESIGN.md, "Contracts"), and its exit code.

Other tools script against this shape: keys are never renamed, amounts are strings with the
currency's decimals, dates are ISO 8601 (UTC for times).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from reconciliation.model import format_amount
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from flows.exit_codes import EXIT_HELD, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE



def _utc(moment: pd.Timestamp) -> str:
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def settlement_entry(outcome: SettlementOutcome) -> dict[str, Any]:
    s = outcome.settlement
    vouchers = []
    refs = {p.key: p.m3_ref for p in outcome.posted}
    for voucher in outcome.vouchers:
        vouchers.append({"key": voucher.key, "date": voucher.accounting_date.isoformat(), "lines": len(voucher.lines),
                         "debit": format_amount(voucher.debit_minor, s.currency),
                         "credit": format_amount(voucher.credit_minor, s.currency),
                         "m3_ref": refs.get(voucher.key)})
    rec = outcome.reconciliation
    reconciliation: dict[str, Any] = {"status": "done" if rec is not None else "skipped"}
    if rec is not None:
        reconciliation.update(rec.counts)
    else:
        reconciliation.update({"matched": 0, "amount_mismatch": 0, "missing_in_m3": 0, "not_settled": 0,
                               "refund_without_credit": 0, "reason": outcome.reconciliation_skipped_reason})
    anomalies = []
    if outcome.anomalies is not None:
        for row in outcome.anomalies.itertuples(index=False):
            anomalies.append({"order_id": row.order_id, "sku": row.sku, "kind": row.kind,
                              "score": round(float(row.score), 4), "reasons": list(row.reasons)})
    return {
        "settlement_id": s.settlement_id, "source": s.source, "format": s.format, "marketplace": s.marketplace,
        "currency": s.currency, "start": _utc(s.start), "end": _utc(s.end),
        "deposit_date": s.deposit_date.tz_convert("UTC").date().isoformat(),
        "total_amount": format_amount(s.total_minor, s.currency), "line_count": s.line_count,
        "status": outcome.status, "reasons": list(outcome.reasons),
        "journal": {"vouchers": vouchers},
        "reconciliation": reconciliation,
        "anomalies": anomalies,
    }


def invalid_entry(source: str, errors: Sequence[SettlementFileError]) -> dict[str, Any]:
    """A file (or part of one) that could not be read: no settlement, status ``invalid``."""
    return {"settlement_id": None, "source": source, "format": None, "marketplace": None, "currency": None,
            "start": None, "end": None, "deposit_date": None, "total_amount": None, "line_count": 0,
            "status": "invalid", "reasons": [str(e) for e in errors], "journal": {"vouchers": []},
            "reconciliation": {"status": "skipped", "matched": 0, "amount_mismatch": 0, "missing_in_m3": 0,
                               "not_settled": 0},
            "anomalies": []}


def duplicate_entry(kept: dict[str, Any], source: str) -> dict[str, Any]:
    """A second copy of a settlement in the same run (another file or document): processed once."""
    return {**kept, "source": source, "status": "duplicate",
            "reasons": [f"same settlement as {kept['source']}; processed once"]}


def settle_document(outcomes: Sequence[SettlementOutcome], sources: Any, workbook: Any) -> dict[str, Any]:
    entries = [settlement_entry(o) for o in outcomes]
    by_id = {entry["settlement_id"]: entry for entry in entries}
    entries += [duplicate_entry(by_id[d.settlement_id], d.source) for d in sources.duplicates_in_input
                if d.settlement_id in by_id]
    by_source: dict[str, list[SettlementFileError]] = {}
    for error in sources.errors:
        by_source.setdefault(error.source, []).append(error)
    entries += [invalid_entry(source, errors) for source, errors in by_source.items()]
    document: dict[str, Any] = {"settlements": entries,
                                "unreachable": any(o.unreachable for o in outcomes)}
    if workbook is not None:
        document["report"] = str(workbook.path)
        # Every raw line, when the workbook's Lines sheet holds them summed (large runs); else null.
        document["lines_file"] = str(workbook.lines_file) if workbook.lines_file is not None else None
    return document


def exit_code(document: dict[str, Any], unreachable: bool = False) -> int:
    """4 unreachable, else 2 invalid input, else 3 held, else 0 (posted, dry run, duplicate)."""
    statuses = {entry["status"] for entry in document["settlements"]}
    if unreachable:
        return EXIT_UNREACHABLE
    if "invalid" in statuses:
        return EXIT_INVALID
    if "held" in statuses:
        return EXIT_HELD
    return EXIT_OK
