"""The one path every MI call takes: look up, validate, run, commit.

Validation comes from ``metadata.py`` alone, so v1, v2 and bulk (and both API profiles)
check inputs identically. Handlers are plain functions ``(Call) -> list[record]`` registered
with ``@mi(PGM, TRN)``; they raise ``MIError`` for business NOKs.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from . import metadata
from .errors import MANDATORY, NOT_FOUND, TOO_LONG, MIError, invalid
from .registry import HANDLERS, Call, Record
from .seed import CONO, DIVI
from .store import Store


def validate(meta: metadata.TransactionMeta, raw: dict[str, str]) -> dict[str, str]:
    """Field checks in M3's order: length, then format, then mandatory fields."""
    values: dict[str, str] = {}
    for name, value in raw.items():
        field = meta.inputs.get(name)
        if field is None:
            continue  # M3 ignores input fields a transaction does not define
        limit = 8 if field.type == "D" else field.length
        if len(value.rstrip()) > limit:
            raise MIError(TOO_LONG, f"Input field {name} is too long, max length is {limit}", field=name)
        value = value.strip()
        if not value:
            continue  # an empty input is the same as an omitted one
        if field.type == "N":
            try:
                Decimal(value)
            except InvalidOperation:
                raise invalid(name, value) from None
        elif field.type == "D" and not _is_date(value):
            raise invalid(name, value, "is not a valid date (yyyyMMdd)")
        values[name] = value
    for field in meta.inputs.values():
        if field.mandatory and field.name not in values:
            raise MIError(MANDATORY, f"Mandatory input field {field.name} not found", field=field.name)
    return values


def _is_date(value: str) -> bool:
    try:
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return len(value) == 8


def resolve(program: str, transaction: str) -> metadata.TransactionMeta:
    meta = metadata.lookup(program, transaction)
    if meta is None or (meta.program, meta.transaction) not in HANDLERS:
        raise MIError(NOT_FOUND, f"Transaction {transaction} does not exist in program {program}")
    return meta


def execute(store: Store, program: str, transaction: str, raw_inputs: dict[str, str],
            cono: str = "", divi: str = "") -> list[Record]:
    """Run one transaction in its own database transaction; raises ``MIError`` on NOK."""
    meta = resolve(program, transaction)
    inputs = validate(meta, raw_inputs)
    context_cono = inputs.get("CONO") or cono or CONO
    context_divi = inputs.get("DIVI") or divi or DIVI
    handler = HANDLERS[(meta.program, meta.transaction)]
    kept_error: MIError | None = None
    with store.transaction() as tx:
        try:
            records = handler(Call(tx, inputs, context_cono, context_divi))
        except MIError as error:
            if not error.commit:
                raise
            kept_error = error  # commit the writes, then report the NOK
    if kept_error is not None:
        raise kept_error
    return records


def _register_all() -> None:
    # Importing the handler modules fills HANDLERS.
    from . import tx_customers, tx_gl, tx_invoices, tx_orders, tx_stock  # noqa: F401

    missing = set(metadata.TRANSACTIONS) - set(HANDLERS)
    if missing:
        raise RuntimeError(f"metadata without handler: {sorted(missing)}")


_register_all()
