"""The analyst notebook, executed as Jupyter would: every cell that draws a plot shows it.

nbmake (``--nbmake``) already runs the notebook but checks only that no cell fails; a notebook
whose plots go to a non-interactive backend passes it with no picture at all.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "anomalies.ipynb"

# A cell "draws a plot" when it calls pyplot (plt.subplots, plt.show, ...) or pandas' .plot().
PLOTTING_CALL = re.compile(r"\bplt\.\w+\(|\.plot\(")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_every_plotting_cell_of_the_anomaly_notebook_displays_a_png(monkeypatch: pytest.MonkeyPatch) -> None:
    # A headless CI often sets MPLBACKEND=Agg for the whole run; the kernel inherits it, and the
    # notebook must show its plots anyway (M3SYNC_HOME unset: the notebook's seeded demo world).
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("M3SYNC_HOME", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    plotting = [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and PLOTTING_CALL.search(cell.source)
    ]
    # The score histogram, one SKU's FBA fee history and the fee mix per marketplace.
    assert len(plotting) == 3, [index for index, _ in plotting]
    without_picture = []
    for index, cell in plotting:
        pngs = [output.data["image/png"] for output in cell.outputs if "image/png" in output.get("data", {})]
        if not pngs:
            without_picture.append(index)
        for png in pngs:
            assert base64.b64decode(png).startswith(PNG_SIGNATURE), f"cell {index}: image/png is not a PNG"
    assert without_picture == [], f"plotting cells with no image/png output: {without_picture}"
