"""Amazon settlements into M3's general ledger: the whole story on one screen.

read (files or SP-API since the watermark) -> score anomalies, oldest settlement first ->
per settlement, concurrently: validate, map, gate -> reconcile against M3 invoices -> post
balanced vouchers (never twice) -> one workbook for the run -> artifacts -> the JSON
document ``m3sync settle`` prints.
"""
from __future__ import annotations

from decimal import Decimal

import pandas as pd

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from connectors.m3 import M3Unavailable
from flows import settlement_steps as steps
from flows.artifacts import publish_settlement_artifacts
from flows.context import Connections, open_connections
from flows.contract import settle_document
from flows.reports import report_path
from reconciliation.mapping import GLMapping, load_mapping
from reconciliation.model import Settlement, decimal_to_minor
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook import write_workbook


@flow(name="settlement-reconciliation")
def settlement_reconciliation(files: list[str] | None = None, from_amazon: bool = False, sandbox: bool = False,
                              dry_run: bool = False, report: str | None = None, home: str | None = None,
                              mapping: str = "invoice-clearing", tolerance: str = "0.01",
                              strict: bool = False) -> dict:
    """Settle Amazon settlement reports in M3. Parameters are paths and flags, never data."""
    with open_connections(home, sandbox=sandbox, need_m3=not dry_run, need_amazon=from_amazon) as connections:
        gl_mapping = load_mapping(mapping, home=connections.home)
        sources = steps.fetch_from_amazon(connections) if from_amazon else steps.read_files(files or [])
        # Anomalies first, oldest settlement first: each is judged against those before it.
        chronological = sorted(sources.settlements, key=lambda s: (s.end, s.settlement_id))
        anomalies = {s.settlement_id: steps.score_anomalies(connections, s, dry_run) for s in chronological}
        futures = [settle_one.submit(connections, s, gl_mapping, anomalies[s.settlement_id], dry_run, tolerance,
                                     strict) for s in sources.settlements]
        outcomes = [f.result() for f in futures]
        workbook = write_workbook(outcomes, report_path(connections.home, report), file_errors=sources.errors)
        if from_amazon and sources.watermark and not dry_run and all(o.status != "held" for o in outcomes):
            connections.state.set_watermark(steps.SETTLEMENT_REPORTS_WATERMARK, sources.watermark)
        publish_settlement_artifacts(outcomes, sources.errors, workbook.path)
        return settle_document(outcomes, sources, workbook)


@task(cache_policy=NO_CACHE, task_run_name="settle-{settlement.settlement_id}")
def settle_one(connections: Connections, settlement: Settlement, mapping: GLMapping, anomalies: pd.DataFrame,
               dry_run: bool, tolerance: str, strict: bool) -> SettlementOutcome:
    prepared = steps.prepare(settlement, mapping, steps.configured_marketplaces(connections))
    settlement = prepared.settlement  # its marketplace resolved: what later steps read
    reconciliation, skipped = None, ""
    if connections.m3 is None:
        skipped = "M3 is not configured (dry run)"
    else:
        try:
            invoices = steps.fetch_invoices(connections, settlement)
            reconciliation = steps.reconcile(settlement, invoices, decimal_to_minor(Decimal(tolerance), settlement.decimals))
        except M3Unavailable as exc:
            skipped = f"M3 unreachable: {exc}"
    blocked = strict and reconciliation is not None and not reconciliation.exceptions.empty
    posting, unreachable = None, ""
    if not (prepared.held or dry_run or blocked):
        try:
            posting = steps.post_vouchers(connections, settlement, prepared.gates.vouchers)
        except M3Unavailable as exc:
            unreachable = f"M3 unreachable while posting, nothing more posted: {exc}"
    return steps.outcome_for(prepared, dry_run=dry_run, posting=posting, reconciliation=reconciliation,
                             skipped_reason=skipped, anomalies=anomalies, strict_block=blocked,
                             unreachable=unreachable, suggestions=steps.mapping_suggestions(prepared, mapping))
