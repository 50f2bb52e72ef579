"""A run's log in Prefect's UI: the project's own lines, secrets masked, expected failures in one line.

A deployment run is started by a worker, never by ``m3sync``: what the command sets up for its
own runs, every flow sets up itself when it starts (``flows.failures.flow_boundary`` calls
``install_run_logging``), once per process:

- the project's loggers (``PROJECT_LOGGERS``) send what they log inside a flow or task run to
  Prefect's API, as ``PREFECT_LOGGING_EXTRA_LOGGERS`` would (at Prefect's logging level), without
  anyone having to set that variable;
- secrets and buyer data are masked on those loggers, their handlers and Prefect's
  (``connectors.redact.install_redaction``);
- on Prefect's run loggers, a failure m3sync expects (M3 or Amazon out of reach after the task's
  retries, a configuration error) is one line without its traceback, and the exception a run
  ended with is not logged a second time when Prefect's engine raises it again from the run's
  result.

``settlement_lines`` are the one INFO line per settlement the settlement flow logs.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from prefect.logging.handlers import APILogHandler

from connectors.redact import install_redaction
from flows.failures import is_final_state_error, known_failure
from reconciliation.marketplaces import find_marketplace

PROJECT_LOGGERS = ("connectors", "flows", "reconciliation", "sync", "anomaly", "sandbox", "m3sync")
# Prefect's loggers that write run logs (and, for the engine, what ends a run's process).
PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")
# Prefect's own defaults for its loggers and handlers, masked too (as ``m3sync`` masks them).
REDACTED_LOGGERS = ("", "prefect", "httpx", "sp_api", *PROJECT_LOGGERS)
REASONS_LOGGED = 3  # reasons of a held, invalid or failed settlement in its line, then "(and N more)"

logger = logging.getLogger("flows.settlement")
_lock = threading.Lock()


def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class RunLogHandler(APILogHandler):
    """Prefect's API log handler for the project's loggers: a record logged inside a flow or task
    run goes to that run's log; any other (a sandbox server's thread, code outside a run) is left
    to the console, without Prefect's warning about a missing flow run."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) is None and not _in_run():
            return
        super().emit(record)


class ExpectedFailures(logging.Filter):
    """On Prefect's run loggers: a failure m3sync expects loses its traceback (the message names
    it already); the exception a run ended with, raised again by Prefect's engine, is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if is_final_state_error(exc):
            return False
        if known_failure(exc) is not None:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install_run_logging() -> None:
    """The set-up the module docstring lists. Idempotent: running it again adds nothing."""
    with _lock:
        level = logging.getLogger("prefect").getEffectiveLevel()
        for name in PROJECT_LOGGERS:
            project = logging.getLogger(name)
            if project.level == logging.NOTSET:  # a level the user set stays
                project.setLevel(level)
            # PREFECT_LOGGING_EXTRA_LOGGERS may have given it Prefect's handler already: never two.
            if not any(isinstance(h, APILogHandler) for h in project.handlers):
                project.addHandler(RunLogHandler())
        for name in PREFECT_RUN_LOGGERS:
            run = logging.getLogger(name)
            if not any(isinstance(f, ExpectedFailures) for f in run.filters):
                run.addFilter(ExpectedFailures())
        install_redaction(REDACTED_LOGGERS)


def _money(amount: str | None, currency: str | None) -> str:
    """``12,345.67 USD`` from the document's amount string (exact: Decimal, never float)."""
    if amount is None:
        return "-"
    try:
        return f"{Decimal(amount):,} {currency or ''}".rstrip()
    except InvalidOperation:
        return f"{amount} {currency or ''}".rstrip()


def settlement_line(entry: dict[str, Any]) -> str:
    """One line for a settlement of the run's document with its figures, e.g. ``settlement
    1234567 (US, USD) posted: 3 vouchers, deposit 12,345.67 USD, 212 orders matched``; a held,
    invalid or failed one with its reasons. Order ids at most, never buyer data (the document has none)."""
    status = entry["status"]
    if entry["settlement_id"] is None:
        subject = f"file {entry['source']}"
    else:
        marketplace = find_marketplace(entry["marketplace"] or "")
        where = ", ".join(
            p for p in (marketplace.code if marketplace else entry["marketplace"], entry["currency"]) if p
        )
        subject = f"settlement {entry['settlement_id']}" + (f" ({where})" if where else "")
    figures = []
    if entry["settlement_id"] is not None:
        vouchers = len(entry["journal"]["vouchers"])
        figures += [
            f"{vouchers} voucher{'s' if vouchers != 1 else ''}",
            f"deposit {_money(entry['total_amount'], entry['currency'])}",
        ]
        rec = entry["reconciliation"]
        if rec["status"] == "done":
            figures.append(f"{rec['matched']} orders matched")
            figures += [
                f"{rec[key]} {key.replace('_', ' ')}"
                for key in ("amount_mismatch", "missing_in_m3", "refund_without_credit")
                if rec.get(key)
            ]
    line = f"{subject} {status}: {', '.join(figures)}" if figures else f"{subject} {status}"
    if status in ("held", "invalid", "failed") and entry["reasons"]:
        reasons = [" ".join(str(r).split()) for r in entry["reasons"][:REASONS_LOGGED]]
        more = len(entry["reasons"]) - REASONS_LOGGED
        line += " - " + "; ".join(reasons) + (f" (and {more} more)" if more > 0 else "")
    return line


def log_settlements(document: dict[str, Any]) -> None:
    """One INFO line per settlement (and per file that could not be read) of the run's document."""
    for entry in document["settlements"]:
        logger.info("%s", settlement_line(entry))
