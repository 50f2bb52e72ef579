"""Render the Summary sheet of a settlement workbook to PNG (LibreOffice headless -> PDF -> PNG).

    python scripts/render_summary.py WORKBOOK.xlsx docs/summary.png

Used by ``make summary-png`` (runs the demo first) to regenerate the README's picture. Needs
``soffice`` (LibreOffice) and ``pdftoppm`` (poppler-utils) on PATH; the first page of the Summary
is written. Prints the Summary's page count.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl


def render(workbook: Path, png: Path, dpi: int = 70) -> int:
    """Write the Summary's first printed page to ``png``; return the Summary's page count."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    pdftoppm = shutil.which("pdftoppm")
    if soffice is None or pdftoppm is None:
        raise SystemExit("render_summary: needs soffice (LibreOffice) and pdftoppm (poppler-utils) on PATH")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        book = openpyxl.load_workbook(workbook)
        for name in book.sheetnames:  # print the Summary alone
            if name != "Summary":
                del book[name]
        summary = work / "summary.xlsx"
        book.save(summary)
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation={(work / 'profile').as_uri()}",
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(work),
                str(summary),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        pdf = work / "summary.pdf"
        pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))
        stem = work / "page"
        subprocess.run([pdftoppm, "-png", "-r", str(dpi), "-f", "1", "-l", "1", str(pdf), str(stem)], check=True)
        (first,) = sorted(work.glob("page*.png"))
        png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, png)
    return pages


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    count = render(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"Summary: {count} page(s); first page written to {sys.argv[2]}")
