"""Typed M3 errors. Messages carry M3's own code/field/text, never tokens or secrets."""

from __future__ import annotations

from datetime import datetime


class M3Error(Exception):
    """Base of every error the M3 connector raises."""


class M3TransactionError(M3Error):
    """M3 answered NOK for one transaction.

    ``error_type`` is M3's: MandatoryInputFieldNotFound, InputFieldTooLong, TransactionNotFound
    or ServerReturnedNOK; ``code`` is the message id (e.g. WCU0203), ``field`` the input field.
    """

    def __init__(
        self, program: str, transaction: str, error_type: str, code: str | None, field: str | None, message: str
    ) -> None:
        self.program = program
        self.transaction = transaction
        self.error_type = error_type
        self.code = code or None
        self.field = field or None
        self.message = message.strip()
        where = f"{program}/{transaction}"
        detail = ", ".join(
            p for p in (f"code {self.code}" if self.code else "", f"field {self.field}" if self.field else "") if p
        )
        super().__init__(f"{where} {error_type}{f' ({detail})' if detail else ''}: {self.message}")

    def __reduce__(self):  # keep the typed fields when pickled (Prefect task results, process pools)
        return (type(self), (self.program, self.transaction, self.error_type, self.code, self.field, self.message))


class M3AuthError(M3Error):
    """Credentials or token rejected (HTTP 401/403 or a failed token grant)."""


class M3Unavailable(M3Error):
    """M3 could not be reached or answered with a transient failure (timeout, connection, 5xx, 429)."""

    def __init__(self, what: str, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        self.what = what
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"M3 unavailable for {what}: {reason}")

    def __reduce__(self):
        return (_rebuild_unavailable, (self.what, self.reason, self.status, self.retry_after))


def _rebuild_unavailable(what: str, reason: str, status: int | None, retry_after: float | None) -> M3Unavailable:
    return M3Unavailable(what, reason, status=status, retry_after=retry_after)


class M3OrderIncomplete(M3Error):
    """An order head was created but some of its lines (or its confirmation) failed.

    ``orno`` is the order (or temporary batch order) number left in M3, so an operator can
    finish or delete it; ``errors`` are M3's answers for the failed steps.
    """

    def __init__(self, orno: str, errors: tuple[M3TransactionError, ...]) -> None:
        self.orno = orno
        self.errors = errors
        first = errors[0] if errors else None
        super().__init__(
            f"order {orno} is incomplete: {len(errors)} step(s) failed" + (f"; first: {first}" if first else "")
        )

    def __reduce__(self):
        return (type(self), (self.orno, self.errors))


class M3ListTruncated(M3Error):
    """A list answer filled the most records M3 returns (``maxrecs``): records may be missing, so
    the caller narrows the selection (a shorter date range, a start position) instead of using it."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        super().__init__(
            f"{what} returned the maximum of {limit} records, so the list may be incomplete; narrow the selection"
        )

    def __reduce__(self):
        return (type(self), (self.what, self.limit))


class M3WriteInDoubt(M3Unavailable):
    """A write was sent and its answer never came (timeout, dropped connection): M3 may have
    committed it. Not a failure: the next attempt must first see what M3 did (``since`` is when
    the first write of the attempt was sent, UTC) and write again only on proven absence."""

    def __init__(self, what: str, reason: str, *, key: str, since: datetime) -> None:
        super().__init__(what, f"{reason}; the write to M3 is in doubt (posting key {key})")
        self.key = key
        self.since = since
        self.cause_reason = reason

    def __reduce__(self):
        return (_rebuild_in_doubt, (self.what, self.cause_reason, self.key, self.since))


def _rebuild_in_doubt(what: str, reason: str, key: str, since: datetime) -> M3WriteInDoubt:
    return M3WriteInDoubt(what, reason, key=key, since=since)


class M3BatchFailed(M3TransactionError):
    """M3's update job for GLS840MI batch ``batch`` ended with errors: nothing was booked and
    the batch stays in GLS840 with M3's errors. Never re-submitted under another KEY1: an
    operator corrects or deletes it in GLS840."""

    def __init__(self, batch: str, code: str | None, errors: str) -> None:
        super().__init__(
            "GLS840MI",
            "UpdBatch",
            "ServerReturnedNOK",
            code,
            "KEY1",
            f"GLS840 batch {batch} was not booked by M3's update job: {errors.strip()}",
        )
        self.batch = batch
        self.errors = errors

    def __reduce__(self):
        return (type(self), (self.batch, self.code, self.errors))
