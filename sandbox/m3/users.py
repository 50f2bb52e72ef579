"""The sandbox M3's user and the companies and divisions it may use (MNS150 / MNS151 in M3) [ours].

Every MI call runs in a company/division context: the ``cono``/``divi`` parameters or ``CONO``/``DIVI``
inputs, else the user's defaults. A context the user may not use is M3's authorisation error
``XAU0008`` ("Not authorized for company 999", docs/m3-contract.md), raised before any handler runs.
"""

from __future__ import annotations

from .errors import MIError, nok
from .seed import CONO, DIVI, DIVISION_NAMES, FACI

SANDBOX_USER = "M3SANDBOX"
USER_NAME = "Sandbox integration user"
COMPANY_NAMES = {CONO: "Sandbox Trading"}
# (company, division) -> division name: the user's MNS151 authorisations.
DIVISIONS = {(CONO, divi): name for divi, name in DIVISION_NAMES.items()}
DEFAULTS = {
    "CONO": CONO,
    "DIVI": DIVI,
    "FACI": FACI,
    "WHLO": "100",
    "LANC": "GB",
    "DTFM": "YMD",
    "DCFM": ".",
    "TIZO": "UTC",
}


def authorisation_error(cono: str, divi: str) -> MIError | None:
    """XAU0008 on CONO when the user may not use the company, on DIVI for the division [ours: same id]."""
    if cono not in COMPANY_NAMES:
        return nok("XAU0008", "Not authorized for company &1", "CONO", cono)
    if divi and (cono, divi) not in DIVISIONS:
        return nok("XAU0008", "Not authorized for division &1", "DIVI", divi)
    return None
