"""Unexpected errors as data: one item's failure becomes that item's outcome, never the run's.

``contained(stage, call)`` runs ``call``; an exception it raises is logged with its traceback
at ERROR in the Prefect run's log (the console shows one line: ``flows.cli`` strips tracebacks
there) and returned as an `UnexpectedError` naming the stage, the error and the flow run whose
log has the details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from connectors.redact import redact_text

T = TypeVar("T")


@dataclass(frozen=True)
class UnexpectedError:
    """An exception m3sync did not expect: where it happened, what it was, and which flow
    run's log holds its traceback. It becomes one settlement's (or file's) ``failed`` outcome."""

    stage: str  # what m3sync was doing: "reconciling against M3 invoices", ...
    error_type: str
    message: str  # its first line, secrets masked
    flow_run_id: str = ""
    flow_run_name: str = ""

    MESSAGE_LENGTH = 300

    @classmethod
    def of(cls, stage: str, exc: BaseException) -> UnexpectedError:
        from prefect.runtime import flow_run

        lines = str(exc).strip().splitlines()
        message = redact_text(lines[0] if lines else "(no message)")
        if len(message) > cls.MESSAGE_LENGTH:
            message = message[: cls.MESSAGE_LENGTH - 1] + "…"
        return cls(stage, type(exc).__name__, message, str(flow_run.id or ""), str(flow_run.name or ""))

    def reason(self) -> str:
        where = (
            f"the traceback is in the log of flow run {self.flow_run_name} (prefect flow-run logs {self.flow_run_id})"
            if self.flow_run_id
            else "the traceback is in the log"
        )
        return f"unexpected error in m3sync while {self.stage}: {self.error_type}: {self.message}; {where}"


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (shown on the console and in the UI); m3sync's outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("m3sync")


def unexpected(stage: str, exc: BaseException) -> UnexpectedError:
    """Log ``exc`` with its traceback at ERROR in the run's log (the console shows one line) and describe it."""
    run_logger().error("unexpected error while %s: %s: %s", stage, type(exc).__name__, exc, exc_info=exc)
    return UnexpectedError.of(stage, exc)


def contained(stage: str, call: Callable[[], T]) -> T | UnexpectedError:
    """``call()``, or the unexpected error it raised (logged): one item's failure is never the run's."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - that is the point
        return unexpected(stage, exc)
