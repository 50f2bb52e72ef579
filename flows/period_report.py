"""``m3sync report --from DATE --to DATE``: the settlement workbook for a period, from what was kept.

Every settlement whose deposit date (the day of Amazon's transfer, UTC) is in the range, both
ends included, as its latest ``settle`` run left it (``reconciliation.settled``), goes into the
same workbook ``settle`` writes: an accountant checks a month against Seller Central's
date-range report and the bank. Nothing is read from or written to M3 or Amazon, and no
Prefect flow runs: it only reads HOME. Bad input (a date that is not one, an inverted range, a
home with no kept settlement, a range with none, a workbook path that cannot be written) is
one line and exit 2. See docs/cli-contract.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from connectors.settings import load_settings, resolve_home
from flows.contract import settlement_entry
from flows.reports import report_path
from reconciliation.exceptions import DEFAULT_NOT_SETTLED_AFTER_DAYS
from reconciliation.model import format_amount
from reconciliation.outcome import SettlementOutcome
from reconciliation.settled import SettledOutcomes
from reconciliation.workbook import WorkbookInfo, write_workbook


class ReportInputError(ValueError):
    """What ``report`` was asked cannot be answered (one line, exit 2)."""


@dataclass(frozen=True)
class PeriodReport:
    first: date
    last: date
    outcomes: tuple[SettlementOutcome, ...]  # by deposit date, then settlement id
    workbook: WorkbookInfo

    def totals(self) -> dict[str, int]:
        """Amazon's totals (the deposits) per currency, in minor units (exact)."""
        sums: dict[str, int] = defaultdict(int)
        for outcome in self.outcomes:
            sums[outcome.settlement.currency] += outcome.settlement.total_minor
        return dict(sorted(sums.items()))

    def document(self) -> dict[str, Any]:
        """The JSON document ``m3sync report --json`` prints (docs/cli-contract.md)."""
        return {
            "period": {"from": self.first.isoformat(), "to": self.last.isoformat(), "by": "deposit_date"},
            "settlements": [settlement_entry(o) for o in self.outcomes],
            "totals": {currency: format_amount(minor, currency) for currency, minor in self.totals().items()},
            "report": str(self.workbook.path),
            "lines_file": None if self.workbook.lines_file is None else str(self.workbook.lines_file),
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"{len(self.outcomes)} settlement(s) with a deposit date from {self.first} to {self.last}:",
            *(
                f"  {s.settlement_id} {s.deposit_date.tz_convert('UTC').date()} {s.marketplace:<13} "
                f"{format_amount(s.total_minor, s.currency):>12} {s.currency} {o.status}"
                for o in self.outcomes
                for s in (o.settlement,)
            ),
            *(f"Total {format_amount(minor, currency)} {currency}" for currency, minor in self.totals().items()),
            f"Workbook: {self.workbook.path}",
        ]
        if self.workbook.lines_file is not None:
            lines.append(f"Every line: {self.workbook.lines_file}")
        return lines


def parse_day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportInputError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def parse_period(first_text: str, last_text: str) -> tuple[date, date]:
    """``--from`` and ``--to`` as dates, the first not after the last."""
    first, last = parse_day("--from", first_text), parse_day("--to", last_text)
    if first > last:
        raise ReportInputError(f"--from {first} is after --to {last}: the range is empty; give the earlier date first")
    return first, last


def period_report(home_arg: str | None, first: date, last: date, report: str | None) -> PeriodReport:
    """Write the workbook of the settlements deposited from ``first`` to ``last`` (module docstring)."""
    home = resolve_home(home_arg)
    kept = SettledOutcomes(home)
    everything = kept.records()
    if not everything:
        raise ReportInputError(
            f"{home}: no settlement history (nothing in {kept.folder}): run m3sync settle with this home first"
        )
    chosen = kept.in_period(first, last)
    if not chosen:
        span = f"{everything[0].deposit_date} to {everything[-1].deposit_date}"
        raise ReportInputError(
            f"no settlement with a deposit date from {first} to {last} in {home} "
            f"({len(everything)} kept, deposited from {span})"
        )
    path = report_path(home, report or str(Path(home) / "reports" / f"period-{first}-to-{last}.xlsx"))
    outcomes = tuple(kept.load(chosen))
    # Invoices not settled: the same age as settle lists them ([settlement] not_settled_after_days).
    after_days = load_settings(home).settlement.not_settled_after_days or DEFAULT_NOT_SETTLED_AFTER_DAYS
    return PeriodReport(first, last, outcomes, write_workbook(outcomes, path, not_settled_after_days=after_days))
