"""Seeded marketplace data: Amazon orders, settlement flat files (V2 and legacy V1), listings.

Used by the SP-API sandbox, the demo and the tests; ``large`` builds benchmark-size files.
"""
from .formats import V1_COLUMNS, V2_COLUMNS, write_settlement_v1
from .records import InjectedAnomaly, M3OrderLine, SettlementDocument, SettlementRow
from .world import SELLER_ID, World, build_world

__all__ = [
    "SELLER_ID", "V1_COLUMNS", "V2_COLUMNS", "InjectedAnomaly", "M3OrderLine", "SettlementDocument",
    "SettlementRow", "World", "build_world", "write_settlement_v1",
]
