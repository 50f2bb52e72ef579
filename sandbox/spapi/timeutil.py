"""ISO-8601 handling shared by the store and the handlers (all times UTC-aware)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date-time (``Z`` or offset; naive means UTC). Raises ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not an ISO-8601 date-time: {text!r}")
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sortable(value: datetime) -> str:
    """Fixed-width UTC text so SQLite string comparison orders like time."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def amazon_time(value: datetime) -> str:
    """The way Reports 2021-06-30 writes times (``2021-06-28T05:42:41+00:00``)."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S+00:00")
