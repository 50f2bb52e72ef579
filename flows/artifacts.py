"""Prefect artifacts of a settlement run: a markdown summary, a table of exceptions, the workbook path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from reconciliation.model import format_amount
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError

if TYPE_CHECKING:
    from flows.settlement_steps import FileFailure


def summary_markdown(
    outcomes: Sequence[SettlementOutcome],
    errors: Sequence[SettlementFileError],
    workbook: Path,
    failures: Sequence[FileFailure] = (),
) -> str:
    rows = [
        "| settlement | marketplace | deposit | total | status | vouchers | reconciliation |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.settlement
        rec = o.reconciliation
        rec_text = (
            f"{rec.counts['matched']} matched, {len(rec.exceptions)} exceptions"
            if rec is not None
            else f"skipped ({o.reconciliation_skipped_reason})"
        )
        rows.append(
            f"| {s.settlement_id} | {s.marketplace} | {s.deposit_date.date()} | "
            f"{format_amount(s.total_minor, s.currency)} {s.currency} | {o.status} | "
            f"{', '.join(p.m3_ref for p in o.posted) or '-'} | {rec_text} |"
        )
    if errors:
        rows.append(f"\n{len(errors)} input problem(s); see the Exceptions sheet.")
    if failures:
        rows.append(f"\n{len(failures)} file(s) failed with an unexpected error; see the Exceptions sheet.")
    return "# Amazon settlements\n\n" + "\n".join(rows) + f"\n\nWorkbook: `{workbook}`\n"


def exceptions_artifact_rows(
    outcomes: Sequence[SettlementOutcome], errors: Sequence[SettlementFileError], failures: Sequence[FileFailure] = ()
) -> list[dict]:
    """One row per reason of the run's problems, for the ``settlement-exceptions`` table artifact
    (the workbook's Exceptions sheet, ``reconciliation.exceptions.exceptions``, has the detail)."""
    rows = [
        {"settlement": o.settlement.settlement_id, "status": o.status, "reason": reason}
        for o in outcomes
        for reason in o.reasons
        if o.status in ("held", "duplicate", "submitted", "failed")
    ]
    rows += [{"settlement": "", "status": "invalid", "reason": str(e)} for e in errors]
    rows += [{"settlement": "", "status": "failed", "reason": f"{f.source}: {f.error.reason()}"} for f in failures]
    return rows


def publish_settlement_artifacts(
    outcomes: Sequence[SettlementOutcome],
    errors: Sequence[SettlementFileError],
    workbook: Path,
    failures: Sequence[FileFailure] = (),
) -> None:
    create_markdown_artifact(
        summary_markdown(outcomes, errors, workbook, failures),
        key="settlement-summary",
        description="Settlements processed in this run",
    )
    create_table_artifact(
        exceptions_artifact_rows(outcomes, errors, failures) or [{"settlement": "", "status": "", "reason": "none"}],
        key="settlement-exceptions",
        description="Held, duplicate, failed and invalid settlements",
    )
    create_table_artifact(
        anomaly_rows(outcomes)
        or [{"settlement": "", "order_id": "", "sku": "", "kind": "", "score": "", "reasons": "none flagged"}],
        key="settlement-anomalies",
        description="Items flagged by the anomaly model and rules",
    )


def anomaly_rows(outcomes: Sequence[SettlementOutcome]) -> list[dict]:
    rows = []
    for o in outcomes:
        if o.anomalies is None:
            continue
        for a in o.anomalies.itertuples(index=False):
            rows.append(
                {
                    "settlement": o.settlement.settlement_id,
                    "order_id": a.order_id,
                    "sku": a.sku,
                    "kind": a.kind,
                    "score": round(float(a.score), 3),
                    "reasons": "; ".join(a.reasons),
                }
            )
    return sorted(rows, key=lambda r: -r["score"])
