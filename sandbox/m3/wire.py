"""MI REST response bodies: v1 (padded MIRecord/NameValue), v2 and bulk (flat records).

Output fields, their order and their padding come from ``metadata.py`` (m3-api.md §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MIError
from .metadata import FieldDef, TransactionMeta

MESSAGE_WIDTH = 132
DEFAULT_MAXRECS = 100  # M3's default when maxrecs is not given; 0 = as many as the server allows
MAX_LIST_RECORDS = 10_000  # [ours] the server's cap on any list answer, also for maxrecs=0


class BadParameter(ValueError):
    """A request parameter (maxrecs, ...) that is not valid; answered with HTTP 400."""


@dataclass(frozen=True)
class Options:
    """Output options of one call: v1 matrix parameters or v2 query parameters."""

    maxrecs: int = DEFAULT_MAXRECS
    returncols: tuple[str, ...] = ()
    metadata: bool = True
    exclude_empty: bool = False
    right_trim: bool = True

    @classmethod
    def parse(cls, params: Mapping[str, str], *, v1: bool, max_records: int = MAX_LIST_RECORDS) -> Options:
        def flag(name: str, default: bool) -> bool:
            value = params.get(name)
            if value is None or value == "":
                return default
            if value.lower() not in {"true", "false"}:
                raise BadParameter(f"parameter {name}={value!r} must be true or false")
            return value.lower() == "true"

        raw_max = params.get("maxrecs", "")
        try:
            maxrecs = int(raw_max) if raw_max != "" else DEFAULT_MAXRECS
        except ValueError:
            raise BadParameter(f"parameter maxrecs={raw_max!r} is not a number") from None
        if maxrecs < 0:
            raise BadParameter(f"parameter maxrecs={raw_max!r} must be 0 or more")
        maxrecs = capped(maxrecs, max_records)
        cols = tuple(c.strip().upper() for c in params.get("returncols", "").split(",") if c.strip())
        # v1 spells it excludempty (Odin), v2 excludeempty (developer portal); accept both on both.
        exclude = flag("excludeempty", flag("excludempty", False))
        return cls(
            maxrecs=maxrecs,
            returncols=cols,
            metadata=flag("metadata", True),
            exclude_empty=exclude,
            right_trim=False if v1 else flag("righttrim", True),
        )


def capped(maxrecs: int, max_records: int) -> int:
    """The records a list may return: ``maxrecs`` (0 = all) never above the server's cap."""
    return max_records if maxrecs == 0 else min(maxrecs, max_records)


def _columns(meta: TransactionMeta, options: Options) -> tuple[FieldDef, ...]:
    if not options.returncols:
        return meta.outputs
    wanted = set(options.returncols)
    return tuple(f for f in meta.outputs if f.name in wanted)


def _limit(records: list[dict[str, str]], maxrecs: int) -> list[dict[str, str]]:
    return records if maxrecs == 0 else records[:maxrecs]


def _values(record: Mapping[str, str], columns: tuple[FieldDef, ...], options: Options) -> list[tuple[str, str]]:
    pairs = []
    for field in columns:
        value = str(record.get(field.name, "") or "")
        if options.exclude_empty and not value.strip():
            continue
        pairs.append((field.name, value.strip() if options.right_trim else value.ljust(field.length)))
    return pairs


# ---- v1 --------------------------------------------------------------------------------


def v1_ok(meta: TransactionMeta, records: list[dict[str, str]], options: Options) -> dict[str, Any]:
    columns = _columns(meta, options)
    body: dict[str, Any] = {"Program": meta.program, "Transaction": meta.transaction}
    if options.metadata:
        body["Metadata"] = {
            "Field": [
                {"@name": f.name, "@type": f.type, "@length": f.length, "@description": f.description} for f in columns
            ]
        }
    body["MIRecord"] = [
        {"RowIndex": i, "NameValue": [{"Name": n, "Value": v} for n, v in _values(r, columns, options)]}
        for i, r in enumerate(_limit(records, options.maxrecs))
    ]
    return body


def v1_error(error: MIError) -> dict[str, Any]:
    return {
        "Message": error.message[:MESSAGE_WIDTH].ljust(MESSAGE_WIDTH),
        "@type": error.type,
        "@code": error.code or None,
        "@cfg": None,
        "@field": error.field or None,
    }


# ---- v2 and bulk -------------------------------------------------------------------------


def v2_result_ok(meta: TransactionMeta, records: list[dict[str, str]], options: Options) -> dict[str, Any]:
    columns = _columns(meta, options)
    return {
        "transaction": meta.transaction,
        "records": [dict(_values(r, columns, options)) for r in _limit(records, options.maxrecs)],
    }


def v2_result_error(transaction: str, error: MIError) -> dict[str, Any]:
    return {
        "transaction": transaction,
        "errorMessage": error.message,
        "errorType": error.type,
        "errorCode": error.code,
        "errorField": error.field,
        "records": [],
    }


def v2_envelope(results: list[dict[str, Any]]) -> dict[str, Any]:
    failed = sum(1 for r in results if "errorType" in r)
    return {
        "results": results,
        "wasTerminated": False,
        "nrOfSuccessfullTransactions": len(results) - failed,
        "nrOfNotProcessedTransactions": 0,
        "nrOfFailedTransactions": failed,
    }


def v2_terminated(reason: str, error_type: str = "ClientError") -> dict[str, Any]:
    """A request the gateway refuses as a whole (malformed bulk body)."""
    return {
        "results": [],
        "wasTerminated": True,
        "terminationReason": reason,
        "terminationErrorType": error_type,
        "nrOfSuccessfullTransactions": 0,
        "nrOfNotProcessedTransactions": 0,
        "nrOfFailedTransactions": 0,
    }
