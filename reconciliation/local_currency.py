"""A voucher as M3 booked it in its division's local currency, and what the accountant must hear.

M3 converts every line of a foreign-currency voucher into the division's local currency on its
own (ACAM = CUAM x rate, rounded to the local currency's decimals), so the recorded amounts may
not net to zero; M3 books that rounding difference, in local currency only (CUAM 0), to the
account its FAM function names. m3sync reads every voucher back after posting and checks:
- the recorded amounts net to zero (an unbalanced local voucher is never passed over), and
- every line M3 added sits on an account the mapping names for it (the ``fx_rounding``
  category), so the difference is explained on a named account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from reconciliation.mapping import GLMapping

# Mapping categories naming the accounts M3 books currency differences to.
FX_CATEGORIES: tuple[str, ...] = ("fx_rounding",)


@dataclass(frozen=True)
class LocalLine:
    """One line as M3 recorded it; ``added_by_m3``: not one m3sync sent (M3's rounding line)."""

    dimensions: tuple[str, ...]  # AIT1 (the account), AIT2..
    amount: Decimal  # CUAM, in the voucher's currency
    local_amount: Decimal  # ACAM, in the division's local currency
    rate_type: int | None  # CRTP
    rate: Decimal | None  # ARAT
    added_by_m3: bool = False

    @property
    def account(self) -> str:
        return self.dimensions[0] if self.dimensions else ""


@dataclass(frozen=True)
class LocalVoucher:
    """A posted voucher's lines in local currency, in M3's order (ours first, then M3's), and
    the problems found in them (empty when it balances and every difference is on a named account)."""

    key: str
    division: str
    lines: tuple[LocalLine, ...]
    problems: tuple[str, ...] = ()

    @property
    def local_debit(self) -> Decimal:
        return sum((line.local_amount for line in self.lines if line.local_amount > 0), Decimal(0))

    @property
    def local_credit(self) -> Decimal:
        return -sum((line.local_amount for line in self.lines if line.local_amount < 0), Decimal(0))

    @property
    def sent_lines(self) -> tuple[LocalLine, ...]:
        return tuple(line for line in self.lines if not line.added_by_m3)

    @property
    def added_lines(self) -> tuple[LocalLine, ...]:
        return tuple(line for line in self.lines if line.added_by_m3)


def fx_accounts(mapping: GLMapping) -> frozenset[str]:
    """The accounts the mapping names for M3's currency differences."""
    return frozenset(mapping.categories[name].account for name in FX_CATEGORIES if name in mapping.categories)


def checked_local_voucher(
    key: str, division: str, lines: Iterable[LocalLine], named_accounts: frozenset[str]
) -> LocalVoucher:
    """The voucher with its problems: not balanced in local currency, or a difference M3 booked
    on an account no FX category of the mapping names."""
    voucher = LocalVoucher(key, division, tuple(lines))
    problems = []
    if voucher.local_debit != voucher.local_credit:
        problems.append(
            f"{key} is not balanced in the local currency of M3 division {division}: debit {voucher.local_debit} "
            f"credit {voucher.local_credit} (difference {voucher.local_debit - voucher.local_credit}); check its "
            "rates and M3's rounding account, and reverse it (m3sync reverse) if it is wrong"
        )
    for line in voucher.added_lines:
        if line.account not in named_accounts:
            problems.append(
                f"{key}: M3 booked a local-currency difference of {line.local_amount} to account {line.account} "
                f"in division {division}, which the mapping does not name as fx_rounding"
                + (f" (it names {', '.join(sorted(named_accounts))})" if named_accounts else "")
            )
    return LocalVoucher(key, division, voucher.lines, tuple(problems))
