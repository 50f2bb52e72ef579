"""The one path every MI call takes: look up, validate, run, commit.

Validation comes from ``metadata.py`` alone, so v1, v2 and bulk (and both API profiles)
check inputs identically. Handlers are plain functions ``(Call) -> list[record]`` registered
with ``@mi(PGM, TRN)``; they raise ``MIError`` for business NOKs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from . import metadata
from .errors import MANDATORY, NOT_FOUND, TOO_LONG, MIError, invalid
from .registry import HANDLERS, Call, Record
from .seed import CONO, DIVI
from .store import Store
from .users import authorisation_error


def validate(meta: metadata.TransactionMeta, raw: dict[str, str]) -> dict[str, str]:
    """Field checks in M3's order: length, then format, then mandatory fields.

    Values are trimmed on the right only (M3 pads with blanks; a leading blank is part of the
    value, so " AMZUS" is not the key AMZUS).
    """
    values: dict[str, str] = {}
    for name, value in raw.items():
        field = meta.inputs.get(name)
        if field is None:
            continue  # M3 ignores input fields a transaction does not define
        value = value.rstrip()
        if not value:
            continue  # an empty (or blank) input is the same as an omitted one
        if field.type == "N":
            error = metadata.number_error(field, value)
            if error is not None:
                raise error
            values[name] = value
            continue
        limit = 8 if field.type == "D" else field.length
        if len(value) > limit:
            raise MIError(TOO_LONG, f"Input field {name} is too long, max length is {limit}", field=name)
        if field.type == "D" and not _is_date(value):
            raise invalid(name, value, "is not a valid date (yyyyMMdd)")
        values[name] = value
    for field in meta.inputs.values():
        if field.mandatory and field.name not in values:
            raise MIError(MANDATORY, f"Mandatory input field {field.name} not found", field=field.name)
    return values


def _is_date(value: str) -> bool:
    if not value.isdigit():
        return False
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


def execute(
    store: Store,
    program: str,
    transaction: str,
    raw_inputs: dict[str, str],
    cono: str = "",
    divi: str = "",
    interrupt: Callable[[metadata.TransactionMeta], MIError | None] | None = None,
) -> list[Record]:
    """Run one transaction in its own database transaction; raises ``MIError`` on NOK.

    The company/division context (``CONO``/``DIVI`` inputs, else the ``cono``/``divi``
    parameters, else the user's defaults) is checked against the user's authorisations first.
    ``interrupt`` (fault injection) may answer with an error after the checks, before the handler.
    """
    meta = resolve(program, transaction)
    inputs = validate(meta, raw_inputs)
    context_cono = inputs.get("CONO") or cono.strip() or CONO
    context_cono = str(int(context_cono)) if context_cono.isdigit() else context_cono  # N3: 0100 is 100
    context_divi = inputs.get("DIVI") or divi.strip() or DIVI
    refused = authorisation_error(context_cono, context_divi)
    if refused is None and interrupt is not None:
        refused = interrupt(meta)
    if refused is not None:
        raise refused
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
    from . import tx_ar, tx_customers, tx_gl, tx_invoices, tx_orders, tx_stock, tx_users  # noqa: F401 - imported to register

    missing = set(metadata.TRANSACTIONS) - set(HANDLERS)
    if missing:
        raise RuntimeError(f"metadata without handler: {sorted(missing)}")


_register_all()
