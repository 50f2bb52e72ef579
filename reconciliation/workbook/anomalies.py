"""The Anomalies sheet: orders whose Amazon fees look unusual, the highest score first."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    ANOMALY_KIND_WORDS,
    HEADER,
    SCORE,
    SHEET_ANOMALIES,
    fit_rows,
    name_words,
    words_of,
)
from reconciliation.xlsx_tables import (
    NUMBER,
    Column,
    PendingRows,
    Styles,
    float_cells,
    place_table,
    text_cells,
)


def write_anomalies(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    parts = [
        o.anomalies.assign(settlement_id=o.settlement.settlement_id)
        for o in outcomes
        if o.anomalies is not None and len(o.anomalies)
    ]
    anomalies = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["settlement_id", "order_id", "sku", "kind", "score", "reasons"])
    )
    anomalies = anomalies.assign(score=pd.to_numeric(anomalies["score"], errors="coerce").astype("float64"))
    anomalies = anomalies.sort_values("score", ascending=False, na_position="last", kind="stable")
    anomalies = fit_rows(anomalies, SHEET_ANOMALIES, max_rows, 0, notes)
    columns = [
        Column("Score", float_cells(anomalies["score"]), NUMBER, SCORE, 8),
        Column("Settlement ID", text_cells(anomalies["settlement_id"]), width=14),
        Column("Order ID", text_cells(anomalies["order_id"]), width=22),
        Column("SKU", text_cells(anomalies["sku"]), width=18),
        Column("Kind", text_cells(words_of(anomalies["kind"], _kind_words)), width=26),
        Column("Reasons", text_cells(anomalies["reasons"].map(_reason_text)), width=90),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)


def _reason_text(reasons: object) -> str:
    if isinstance(reasons, (list, tuple, np.ndarray)):
        return "; ".join(str(r) for r in reasons)
    return "" if reasons is None or (isinstance(reasons, float) and np.isnan(reasons)) else str(reasons)


def _kind_words(kind: str) -> str:
    return ANOMALY_KIND_WORDS.get(kind) or name_words(kind)
