"""Render the Summary sheet of a settlement workbook to PNG (LibreOffice headless -> PDF -> PNG).

    python scripts/render_summary.py WORKBOOK.xlsx docs/summary.png [--pages N]

Used by ``make summary-png`` (runs the demo first) to regenerate the README's picture. Needs
``soffice`` (LibreOffice) and ``pdftoppm`` (poppler-utils) on PATH. The Summary's first N printed
pages (2 unless given: the table and the settlements side by side) are written one under the
other. Prints the Summary's page count.
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import openpyxl

_PAGE_GAP = 6  # grey pixel rows between two pages
_PPM_HEADER = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+255\s")


def render(workbook: Path, png: Path, dpi: int = 70, pages: int = 2) -> int:
    """Write the Summary's first ``pages`` printed pages to ``png``; return the Summary's page count."""
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
        count = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))
        stem = work / "page"
        # PPM (raw RGB), stacked and written as PNG here: no image library needed
        subprocess.run([pdftoppm, "-r", str(dpi), "-f", "1", "-l", str(pages), str(pdf), str(stem)], check=True)
        images = [_read_ppm(path) for path in sorted(work.glob("page*.ppm"))]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(_stacked_png(images))
    return count


def _read_ppm(path: Path) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of a binary PPM (pdftoppm's default output)."""
    data = path.read_bytes()
    header = _PPM_HEADER.match(data)
    if header is None:
        raise SystemExit(f"render_summary: {path.name} is not an 8-bit binary PPM")
    width, height = int(header.group(1)), int(header.group(2))
    return width, height, data[header.end() : header.end() + width * height * 3]


def _stacked_png(images: list[tuple[int, int, bytes]]) -> bytes:
    """The pages one under the other (same width: one paper size), a grey gap between them, as PNG."""
    width = max(w for w, _, _ in images)
    rows: list[bytes] = []
    for index, (page_width, height, rgb) in enumerate(images):
        if index:
            rows.extend([b"\xc0" * (width * 3)] * _PAGE_GAP)
        stride = page_width * 3
        pad = b"\xff" * ((width - page_width) * 3)
        rows.extend(rgb[y * stride : (y + 1) * stride] + pad for y in range(height))
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (none) on every row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workbook", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--pages", type=int, default=2, help="how many of the first printed pages (default 2)")
    args = parser.parse_args()
    count = render(args.workbook, args.png, pages=args.pages)
    print(f"Summary: {count} page(s); first {min(args.pages, count)} written to {args.png}")
