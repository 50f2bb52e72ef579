"""Amazon settlements into M3's general ledger: the whole story on one screen.

check where the workbook goes -> read (files or SP-API since the watermark) -> score
anomalies, oldest settlement first -> per settlement, concurrently: validate, map, gate ->
reconcile against M3 invoices (an invoice another settlement of the run, or an earlier run,
settled is not "not settled") -> hold (or post where the user chose) refunds and orders M3 has
no credit note or invoice for -> post balanced vouchers (never twice) -> record which orders
the posted settlements settled, and keep each outcome for ``m3sync report`` -> one workbook for
the run (to HOME/reports or ``[reports] location``; none when nothing new came from Amazon) ->
artifacts -> the JSON document ``m3sync settle`` prints.

One run is never half-done: whatever goes wrong with one file or settlement (an unexpected
error in m3sync included) becomes its outcome, the others go on, and the JSON document is
returned even when the workbook cannot be written. A run with a held, invalid or failed
settlement, or M3 out of reach, ends Failed with a one-line message naming them (the document
inside: ``flows.contract.run_state``); configuration, Amazon out of reach or anything unexpected
ends it Failed too, said once (``flows.failures.flow_boundary``). One log line per settlement.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from connectors.m3 import M3Error
from connectors.settings import load_settings
from flows import settlement_steps as steps
from flows.artifacts import artifact_environment, publish_settlement_artifacts
from flows.connections import (
    Connections,
    ConnectionSpec,
    connected,
    invoice_policy,
    load_gl_mapping,
    load_tax_profiles,
    open_connections,
)
from flows.contract import run_state, settle_document
from flows.failures import UnexpectedError, contained, flow_boundary, m3_endpoint, unexpected
from flows.reports import RunReport, nothing_new, report_keys, report_target, write_report
from flows.run_logging import log_settlements
from flows.task_runners import settlement_task_runner, shared, submit
from reconciliation.exceptions import DEFAULT_NOT_SETTLED_AFTER_DAYS, mapping_file_in_home
from reconciliation.local_currency import fx_accounts
from reconciliation.mapping import GLMapping
from reconciliation.model import Settlement
from reconciliation.outcome import (
    PostingResult,
    RunOptions,
    SettlementOutcome,
    decide_outcome,
    may_post,
)
from reconciliation.settled import SettledOutcomes

# Statuses after which the next run must see the same reports again (a submitted settlement is
# confirmed by the run that sees it next).
_RETRY_STATUSES = ("held", "failed", "submitted")


@flow(name="settlement-reconciliation")
@flow_boundary
def settlement_reconciliation(
    files: list[str] | None = None,
    from_amazon: bool = False,
    sandbox: bool = False,
    dry_run: bool = False,
    report: str | None = None,
    home: str | None = None,
    mapping: str = "invoice-clearing",
    tolerance: str = "0.01",
    strict: bool = False,
    first_open_period: bool = False,
    refunds_without_credit: str | None = None,
    missing_invoices: str | None = None,
    not_settled_after_days: int | None = None,
) -> dict:
    """Settle Amazon settlement reports in M3. Parameters are paths and flags, never data;
    ``refunds_without_credit`` and ``missing_invoices`` (None: config.toml's, else hold) see
    ``reconciliation.invoice_policy``; ``not_settled_after_days`` (None: config.toml's, else 30)
    when the workbook lists an M3 invoice no settlement paid as an exception.

    Args:
        files: Settlement flat files to settle (V2, or legacy V1), as paths on the worker; leave
            empty with from_amazon.
        from_amazon: Settle the settlement reports Amazon created since the last run (SP-API
            reports of every configured region).
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        dry_run: Check, map and reconcile (with M3 configured: report what would be held); post
            nothing.
        report: Workbook path (default HOME/reports/settlements-<time>.xlsx).
        home: The m3sync home folder: config.toml, state, sandbox and reports (default
            $M3SYNC_HOME, else ./.m3sync in the worker's directory).
        mapping: GL mapping: a preset (invoice-clearing, summary) or HOME/mappings/NAME.yaml.
        tolerance: Reconciliation tolerance per order, in the settlement's currency (default 0.01).
        strict: Hold settlements with any order not matching M3's invoices (amount mismatches,
            orders not settled, refunds without credit notes, orders without invoices).
        first_open_period: Post a voucher whose accounting period is closed in M3 in the first
            open period (default: hold the settlement).
        refunds_without_credit: A refund M3 has no credit note for: "hold" the settlement until
            M3 has it, or post it to sales "returns" (empty: config.toml's, else hold).
        missing_invoices: An order M3 has no invoice for: "hold" the settlement until M3 has it,
            or post its sales to "suspense" (empty: config.toml's, else hold).
        not_settled_after_days: List an M3 invoice no settlement paid this many days after its
            date as an exception (empty: config.toml's, else 30).

    Returns:
        The run's JSON document (docs/cli-contract.md): one entry per settlement.
    """
    with open_connections(home, sandbox=sandbox, need_m3=not dry_run, need_amazon=from_amazon) as connections:
        settings = load_settings(connections.home)
        policy = invoice_policy(settings, refunds_without_credit, missing_invoices)
        after_days = (
            not_settled_after_days or settings.settlement.not_settled_after_days or DEFAULT_NOT_SETTLED_AFTER_DAYS
        )
        options = RunOptions(
            dry_run=dry_run,
            strict=strict,
            tolerance=Decimal(tolerance),
            first_open_period=first_open_period,
            tax=load_tax_profiles(connections.home),
            invoice_policy=policy,
        )
        target = report_target(connections.home, report, settings)  # checked before anything is posted
        environment = artifact_environment(settings, sandbox)  # the artifacts' keys end in it
        gl_mapping = load_gl_mapping(mapping, connections.home)
        ledger = steps.customer_ledger_choice(connections, gl_mapping)  # once per run, before any posting
        sources = steps.fetch_from_amazon(connections) if from_amazon else steps.read_files(files or [])
        # Anomalies first, oldest settlement first: each is judged against those before it.
        chronological = sorted(sources.settlements, key=lambda s: (s.end, s.settlement_id))
        anomalies = {
            s.settlement_id: contained(
                f"scoring anomalies of settlement {s.settlement_id}",
                functools.partial(steps.score_anomalies, connections, s, options.dry_run),
            )
            for s in chronological
        }
        with settlement_task_runner(settings.runner) as runner:  # [runner]: the flow's threads, or Dask workers
            # Each settlement's orders, told to the others (and sent to each Dask worker once).
            in_run = shared(runner, steps.settled_in_run(sources.settlements))
            futures = [
                submit(
                    runner, settle_one, connections, s, gl_mapping, anomalies[s.settlement_id], options, ledger, in_run
                )
                for s in sources.settlements
            ]
            outcomes = [
                _outcome(future, settlement, connections, options)
                for future, settlement in zip(futures, sources.settlements)
            ]
        if not dry_run:
            contained("recording the settled orders", lambda: steps.record_settled_orders(connections.state, outcomes))
        # Kept for the period summary (``m3sync report``): the workbook's data per settlement.
        kept = SettledOutcomes(connections.home)
        for outcome in outcomes:
            contained(
                f"keeping the outcome of {outcome.settlement.settlement_id}", functools.partial(kept.record, outcome)
            )
        file_errors = [*sources.errors, *(f.as_file_error() for f in sources.failures)]
        run_report = RunReport(
            outcomes, file_errors, gl_mapping, mapping_file_in_home(connections.home, gl_mapping), after_days
        )
        quiet = nothing_new(connections.state, from_amazon, sources)  # the daily case: no workbook then
        workbook = None if quiet else contained("writing the workbook", lambda: write_report(target, run_report.write))
        if (
            from_amazon
            and sources.watermark
            and not dry_run
            and not sources.failures
            and all(o.status not in _RETRY_STATUSES for o in outcomes)
        ):
            connections.state.set_watermark(steps.SETTLEMENT_REPORTS_WATERMARK, sources.watermark)
        contained(
            "publishing the run's artifacts",
            lambda: publish_settlement_artifacts(
                environment, run_report, sources.errors, sources.failures, workbook, quiet
            ),
        )
        document = {
            **settle_document(outcomes, sources, workbook),
            **report_keys(workbook, quiet),
            "customer_ledger": ledger.as_dict(),
        }
        log_settlements(document)
        return run_state(document, m3_endpoint(connections))


@task(cache_policy=NO_CACHE, task_run_name="settle-{settlement.settlement_id}")
def settle_one(
    connections: Connections | ConnectionSpec,
    settlement: Settlement,
    mapping: GLMapping,
    anomalies: pd.DataFrame | UnexpectedError,
    options: RunOptions,
    ledger: steps.LedgerChoices,
    in_run: pd.DataFrame | None = None,
) -> SettlementOutcome:
    """One settlement from its checks to M3. Any failure is this settlement's outcome, never the run's.
    ``in_run``: the orders each settlement of the run settles (``steps.settled_in_run``); on a
    Dask worker, ``connections`` arrives as its spec and the worker's own are used."""
    connections = connected(connections)
    progress = steps.Progress(settlement)
    if isinstance(anomalies, UnexpectedError):
        return steps.failed_outcome(progress, anomalies, connections.state, None, options)
    try:
        return _settle(connections, progress, mapping, anomalies, options, ledger, in_run)
    except Exception as exc:  # noqa: BLE001 - an unexpected error fails this settlement only
        return steps.failed_outcome(progress, unexpected(progress.stage, exc), connections.state, anomalies, options)


def _settle(
    connections: Connections,
    progress: steps.Progress,
    mapping: GLMapping,
    anomalies: pd.DataFrame,
    options: RunOptions,
    ledgers: steps.LedgerChoices,
    in_run: pd.DataFrame | None,
) -> SettlementOutcome:
    """Gather what happened to the settlement; ``decide_outcome`` says what it comes to."""
    periods, m3_unread = None, None
    ledger = ledgers.for_division(steps.division_of(connections, progress.settlement))
    if ledger.mode == "unknown":  # the customer ledger's set-up could not be read: nothing is posted
        m3_unread = ledger.reason
    if connections.m3 is not None:  # read before anything is written: every voucher is checked first
        progress.stage = "reading M3's accounting periods"
        try:
            periods = steps.read_period_locks(connections, progress.settlement)
        except M3Error as exc:  # unreachable or rejecting us: nothing is posted unchecked
            m3_unread = steps.m3_problem(exc)
    progress.stage = "validating and mapping"
    prepared = progress.prepared = steps.prepare(
        progress.settlement,
        mapping,
        steps.configured_marketplaces(connections),
        periods,
        options.first_open_period,
        options.tax,
    )
    progress.stage = "reconciling against M3 invoices"
    invoices, progress.reconciliation = steps.reconcile_with_m3(connections, prepared.settlement, options, in_run)
    # Orders M3 has no invoice or credit note for are held, or posted where the user chose; with a
    # customer ledger to allocate, the receivable lines go to the payment clearing account.
    prepared = progress.prepared = steps.with_customer_ledger(
        steps.at_current_version(
            connections.state, steps.apply_invoice_policy(prepared, progress.reconciliation, mapping, periods, options)
        ),
        ledger,
    )
    settlement = prepared.settlement  # its marketplace resolved: what later steps read
    audits = progress.audits = steps.audit_records(settlement, mapping, prepared.gates.vouchers)
    m3_unread = m3_unread or steps.invoices_unread(connections, progress.reconciliation, mapping)
    posting_allowed = may_post(prepared, progress.reconciliation, options)
    if posting_allowed and m3_unread is not None:  # nothing is posted unchecked
        posted = tuple(steps.posted_in_state(connections.state, prepared.gates.vouchers))
        progress.posting = PostingResult(posted=posted, unreachable=m3_unread)
    elif posting_allowed:
        progress.stage, progress.posting_started = "posting to M3", True
        try:
            progress.posting = steps.post_vouchers(
                connections, settlement, prepared.gates.vouchers, audits, fx_accounts(mapping)
            )
            progress.posting = steps.settle_customer_ledger(
                connections, prepared, invoices, progress.posting, ledger, mapping
            )
        except M3Error as exc:  # unreachable or rejecting us; M3's refusals of a voucher are answers, not errors
            progress.posting = PostingResult(
                posted=tuple(steps.posted_in_state(connections.state, prepared.gates.vouchers)),
                unreachable=steps.m3_problem(exc),
            )
    progress.stage = "reporting the outcome"
    return decide_outcome(
        settlement,
        prepared,
        progress.reconciliation,
        progress.posting,
        options,
        anomalies=anomalies,
        suggestions=steps.mapping_suggestions(prepared, mapping),
        audits=audits,
    )


def _outcome(
    future: PrefectFuture, settlement: Settlement, connections: Connections, options: RunOptions
) -> SettlementOutcome:
    """The task's outcome; should the task itself fail (a task runner's error), a failed outcome."""
    result = contained(f"settling {settlement.settlement_id}", future.result)
    if isinstance(result, UnexpectedError):
        return steps.failed_outcome(
            steps.Progress(settlement, posting_started=True), result, connections.state, None, options
        )
    return result
