"""Seeded marketplace data: Amazon orders, settlement flat files (V2 and legacy V1), listings.

Used by the SP-API sandbox, the demo and the tests; ``large`` builds benchmark-size files;
``variants`` (opt-in, outside the default world) builds one small file per row shape and
vocabulary of real sellers' files: ``real_world_variants(seed) -> [(name, bytes), ...]``.
"""

from .formats import V1_COLUMNS, V2_COLUMNS, write_settlement_v1
from .records import InjectedAnomaly, M3OrderLine, SettlementDocument, SettlementRow
from .variants import VARIANTS, real_world_variants, variant_settlement
from .world import SELLER_ID, World, advance_world, build_world

__all__ = [
    "SELLER_ID",
    "V1_COLUMNS",
    "V2_COLUMNS",
    "InjectedAnomaly",
    "M3OrderLine",
    "SettlementDocument",
    "SettlementRow",
    "VARIANTS",
    "World",
    "advance_world",
    "build_world",
    "real_world_variants",
    "variant_settlement",
    "write_settlement_v1",
]
