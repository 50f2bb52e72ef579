"""The handler registry: ``@mi(PGM, TRN)`` functions ``(Call) -> list[record]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from . import metadata
from .store import Tx

Record = dict[str, str]


@dataclass(frozen=True)
class Call:
    """One validated transaction call: trimmed non-empty inputs, the company/division context."""

    tx: Tx
    inputs: dict[str, str]
    cono: str
    divi: str

    def get(self, name: str, default: str = "") -> str:
        return self.inputs.get(name, default)

    def decimal(self, name: str, default: str = "0") -> Decimal:
        return Decimal(self.inputs.get(name, default))


Handler = Callable[[Call], list[Record]]
HANDLERS: dict[tuple[str, str], Handler] = {}


def mi(program: str, transaction: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if (program, transaction) not in metadata.TRANSACTIONS:
            raise RuntimeError(f"{program}/{transaction} has a handler but no metadata")
        HANDLERS[(program, transaction)] = handler
        return handler

    return register
