"""Where a run's workbook goes: ``--report PATH``, else ``HOME/reports/settlements-<UTC time>.xlsx``.

The path is checked before anything is posted (the command line checks it before the flow
starts, the flow again before reading): a workbook that cannot be written must not be found
out after a voucher is in M3.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from reconciliation.workbook import WorkbookError


def report_path(home: Path, report: str | None, *, now: datetime | None = None) -> Path:
    """The workbook's path, its folder created; raises WorkbookError (one line) when it cannot be written."""
    if report:
        path = Path(report).expanduser().absolute()
    else:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        path = home / "reports" / f"settlements-{stamp}.xlsx"
    if path.suffix.lower() != ".xlsx":
        raise WorkbookError(f"workbook {path}: must be an .xlsx file")
    if path.is_dir():
        raise WorkbookError(f"workbook {path}: is a folder; give a file name ending in .xlsx")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbookError(f"workbook {path}: cannot create its folder {folder} ({exc.strerror or exc})") from None
    try:
        # The workbook (and any CSV of lines beside it) is written to a new file in the folder
        # and renamed: the folder must take new files, which only trying tells (root ignores modes).
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".m3sync-probe-"):
            pass
    except OSError as exc:
        raise WorkbookError(f"workbook {path}: cannot write in folder {folder} ({exc.strerror or exc})") from None
    return path
