"""The audit record of a voucher: what it was made from, and by which version of what.

An auditor retraces a GL voucher to the settlement file's exact bytes (``source_sha256``), the
GL mapping that chose its accounts (name and SHA-256 of its file), the m3sync release that made
it, and the version of its posting key (a reversed settlement is posted again under a new one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

DISTRIBUTION = "m3-amazon-sync"
FIRST_KEY_VERSION = 1


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the fingerprint every audit field uses."""
    return hashlib.sha256(data).hexdigest()


def tool_version() -> str:
    """The installed m3sync release ("" when run from a tree that is not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class AuditRecord:
    """One voucher's provenance, as stored with its posting and shown in the workbook and JSON."""

    source_sha256: str  # of the settlement file's bytes as read (an Amazon report's decoded document)
    mapping_name: str
    mapping_sha256: str  # of the mapping file's bytes
    tool_version: str
    key_version: int = FIRST_KEY_VERSION

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (state store, ``m3sync settle`` document)."""
        return {
            "source_sha256": self.source_sha256,
            "mapping": self.mapping_name,
            "mapping_sha256": self.mapping_sha256,
            "tool_version": self.tool_version,
            "key_version": self.key_version,
        }


def voucher_audits(
    source_sha256: str,
    mapping_name: str,
    mapping_sha256: str,
    voucher_keys: Iterable[str],
    *,
    tool_version: str,
) -> dict[str, AuditRecord]:
    """The audit record of each voucher (by posting key) made from one settlement file with one
    mapping; the key version is read from the key (``AMZ-…-v2`` after one reversal)."""
    # Imported here: reconciliation.vouchers imports the mapping module, which imports this one.
    from reconciliation.vouchers import key_version

    return {
        key: AuditRecord(source_sha256, mapping_name, mapping_sha256, tool_version, key_version(key))
        for key in voucher_keys
    }
