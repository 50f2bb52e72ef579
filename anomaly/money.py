"""Vectorised formatting of minor units for the reasons an accountant reads.

Amounts stay integers until they become text; per-unit values and medians are rounded half
away from zero to whole minor units first, so "5.84" is exactly what the fee schedule says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def saturated_int64(value: int) -> int:
    """``value`` held within int64 (stored figures of absurd settlements saturate, they never wrap)."""
    bounds = np.iinfo("int64")
    return max(int(bounds.min), min(int(bounds.max), value))


def round_minor(values: np.ndarray | pd.Series) -> np.ndarray:
    """Float minor units (a per-unit fee, a median) -> int64, half away from zero."""
    array = np.asarray(values, dtype="float64")
    return (np.sign(array) * np.floor(np.abs(array) + 0.5)).astype("int64")


def format_minor_column(values: np.ndarray | pd.Series, decimals: int) -> pd.Series:
    """Integer minor units -> "1234.56" strings (no thousands separator, "-" for negatives)."""
    minor = pd.Series(np.asarray(values, dtype="int64"))
    if decimals == 0:
        return minor.astype(str)
    scale = 10**decimals
    absolute = minor.abs()
    text = (absolute // scale).astype(str) + "." + (absolute % scale).astype(str).str.zfill(decimals)
    return text.where(minor >= 0, "-" + text)


def format_percent(values: np.ndarray | pd.Series, digits: int = 1) -> pd.Series:
    """Ratios (0.15) -> "15.0%" strings."""
    array = np.asarray(values, dtype="float64") * 100
    return pd.Series(np.char.mod(f"%.{digits}f%%", np.round(array, digits)))
