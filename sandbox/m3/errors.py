"""MI errors as data: the four error types M3 reports, with message id and field."""

from __future__ import annotations

from dataclasses import dataclass

NOK = "ServerReturnedNOK"
MANDATORY = "MandatoryInputFieldNotFound"
TOO_LONG = "InputFieldTooLong"
NOT_FOUND = "TransactionNotFound"


@dataclass(eq=False)  # not frozen: raising sets __traceback__
class MIError(Exception):
    """A NOK answer. ``commit`` keeps the transaction's writes (e.g. a voucher buffer cleared on failure)."""

    type: str
    message: str
    code: str = ""
    field: str = ""
    commit: bool = False

    def __str__(self) -> str:
        return f"{self.type} {self.code} {self.field}: {self.message}".strip()


def nok(code: str, text: str, field: str = "", *args: object, commit: bool = False) -> MIError:
    """ServerReturnedNOK with M3-style ``&1``/``&2`` substitution."""
    for n, arg in enumerate(args, start=1):
        text = text.replace(f"&{n}", str(arg))
    return MIError(NOK, text, code, field, commit)


def does_not_exist(code: str, what: str, field: str, value: str) -> MIError:
    return nok(code, f"{what} &1 does not exist", field, value)


def invalid(field: str, value: str, why: str = "is invalid") -> MIError:
    # Pattern W + field + 01 (m3-api.md §6).
    return nok(f"W{field}01", f"{field} &1 {why}", field, value)
