"""Where a run's workbook goes: ``--report PATH``, else ``HOME/reports/settlements-<UTC time>.xlsx``."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def report_path(home: Path, report: str | None, *, now: datetime | None = None) -> Path:
    if report:
        path = Path(report)
    else:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        path = home / "reports" / f"settlements-{stamp}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
