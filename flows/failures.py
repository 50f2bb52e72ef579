"""Unexpected errors as data: one item's failure becomes that item's outcome, never the run's.

``contained(stage, call)`` runs ``call``; an exception it raises is logged with its traceback
at ERROR in the Prefect run's log (the console shows one line: ``flows.cli`` strips tracebacks
there) and returned as an `UnexpectedError` naming the stage, the error and the flow run whose
log has the details.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

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


# --- the flow boundary: how a run ends ----------------------------------------------------------


class RunFailed(Exception):
    """The data of a run that ended Failed because of its items (a settlement held, invalid or
    failed, a file that could not be read, M3 out of reach): the document the run produced and
    the exit code ``m3sync`` gives it. A Failed state's data must be an exception (Prefect raises
    it from the run's result), so the document travels inside one; ``flows.contract.run_document``
    takes it out."""

    def __init__(self, message: str, document: dict[str, Any], exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.document = document
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[Callable[..., RunFailed], tuple[str, dict[str, Any], int]]:
        return (type(self), (self.message, self.document, self.exit_code))


def end_run(document: dict[str, Any], exit_code: int, message: str) -> Any:
    """How every flow's run ends (what the flow returns): its document, Completed, when ``exit_code``
    is 0; else a Failed state with ``message``, the one line an operator reads in the run list,
    whose data carries the document and the exit code (`RunFailed`; ``flows.contract.run_document``
    and ``run_exit_code`` read them back)."""
    from flows.exit_codes import EXIT_OK

    if exit_code == EXIT_OK:
        return document
    from prefect.states import Failed

    return Failed(message=message, data=RunFailed(message, document, exit_code))


def known_failure(exc: BaseException) -> int | None:
    """The exit code of a failure m3sync expects and says in one line (configuration, input that
    cannot be used, M3 or Amazon unreachable or rejecting), else None: an unexpected error."""
    from connectors.amazon import AmazonError
    from connectors.amazon.config import AmazonConfigError
    from connectors.m3 import M3Error
    from connectors.settings import ConfigurationError
    from connectors.state import StateStoreUnavailable
    from flows.exit_codes import EXIT_INVALID, EXIT_UNREACHABLE
    from reconciliation.mapping import MappingError
    from reconciliation.workbook import WorkbookError

    if isinstance(exc, RunFailed):
        return exc.exit_code
    if isinstance(exc, (ConfigurationError, StateStoreUnavailable, MappingError, AmazonConfigError, WorkbookError)):
        return EXIT_INVALID
    if isinstance(exc, (M3Error, AmazonError)):
        return EXIT_UNREACHABLE
    return None


@dataclass(frozen=True)
class Endpoint:
    """Where a system was asked, and how many requests one call makes before giving up (the
    connector's attempts times the task's), for the run's message when it is out of reach."""

    system: str  # "M3", "Amazon"
    origin: str  # scheme://host:port, never a path, user or password
    attempts: int

    def unreachable(self, detail: str) -> str:
        return f"{self.system} at {self.origin} unreachable after {self.attempts} attempts: {one_line(detail)}"


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, secrets masked, at most ``limit`` characters."""
    line = redact_text(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_message(exc: BaseException) -> str:
    """The run's one-line message for a known failure: an unreachable system by its host."""
    from connectors.amazon import AmazonUnavailable
    from connectors.amazon.errors import AmazonUnreachable
    from connectors.m3 import M3Unavailable
    from connectors.m3.auth import origin

    if isinstance(exc, RunFailed):
        return exc.message
    if isinstance(exc, AmazonUnreachable):
        return Endpoint("Amazon", origin(exc.url), exc.attempts).unreachable(str(exc))
    if isinstance(exc, (AmazonUnavailable, M3Unavailable)):  # the connectors name the scheme://host:port they met
        system = "Amazon" if isinstance(exc, AmazonUnavailable) else "M3"
        found = _ORIGIN.search(str(exc))
        return one_line(f"{system} at {found.group(0)} unreachable: {exc}" if found else f"{system} unreachable: {exc}")
    return one_line(str(exc))


_ORIGIN = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/)]+")


# Set on an exception the boundary made a run's final state of: Prefect raises it again from the
# run's result (a deployment run's engine logs that with a traceback), and `flows.run_logging`
# drops those records: the run has said it once already.
_FINAL_MARK = "_m3sync_final_state"


def is_final_state_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the data of a final state a flow returned (the run said it already):
    the boundary's, or a `RunFailed` (never raised, only ever a Failed state's data)."""
    return isinstance(exc, RunFailed) or (exc is not None and getattr(exc, _FINAL_MARK, False) is True)


def failed_state(exc: BaseException) -> Any:
    """The Failed state a run ends in for ``exc``: one ERROR line for a failure m3sync expects,
    the traceback once for anything else; its data is ``exc`` (``m3sync`` reads the exit code from it)."""
    from prefect.states import Failed

    if known_failure(exc) is not None:
        message = failure_message(exc)
        run_logger().error("%s", message)
    else:
        message = unexpected("running the flow", exc).reason()
    try:
        object.__setattr__(exc, _FINAL_MARK, True)  # object's: frozen dataclass errors refuse setattr
    except (AttributeError, TypeError):
        pass  # an exception without attributes: Prefect's engine may log it once more
    return Failed(message=message, data=exc)


P = ParamSpec("P")


def flow_boundary(body: Callable[P, T]) -> Callable[P, T]:
    """Under ``@flow``: the run's project logs and secret masking are installed first
    (``flows.run_logging``), and an exception the body raises ends the run Failed
    (``failed_state``) instead of escaping with Prefect's tracebacks."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        from flows.run_logging import install_run_logging

        install_run_logging()
        try:
            return body(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure ends the run in a state, said once
            return failed_state(exc)  # a Failed state: what a flow may return instead of its value

    return run


def m3_endpoint(connections: Any) -> Endpoint | None:
    """Where the run's M3 is (None without one: a dry run): its origin, and the requests a
    settlement's first read makes before it is held (the client's attempts in each task attempt)."""
    from connectors.m3.auth import origin
    from flows.settlement_steps import read_period_locks  # the first M3 read of each settlement

    m3 = getattr(connections, "m3", None)
    if m3 is None:
        return None
    client = m3.client
    return Endpoint("M3", origin(client.base_url), client.backoff.attempts * (read_period_locks.retries + 1))
