"""MNS150MI — the calling user's defaults and the companies/divisions it may use."""

from __future__ import annotations

from .errors import nok
from .registry import Call, Record, mi
from .users import COMPANY_NAMES, DEFAULTS, DIVISIONS, SANDBOX_USER, USER_NAME


def _check_user(call: Call) -> str:
    usid = call.get("USID", SANDBOX_USER)
    if usid != SANDBOX_USER:  # the sandbox knows one user
        raise nok("WUSID03", "User &1 does not exist", "USID", usid)
    return usid


@mi("MNS150MI", "GetUserData")
def get_user_data(call: Call) -> list[Record]:
    """The user's defaults (USID omitted: the calling user)."""
    usid = _check_user(call)
    cono, divi = DEFAULTS["CONO"], DEFAULTS["DIVI"]
    return [
        {
            **DEFAULTS,
            "USID": usid,
            "NAME": USER_NAME,
            "USTA": "20",
            "TX40": COMPANY_NAMES[cono],
            "CONM": DIVISIONS[(cono, divi)],
        }
    ]


@mi("MNS150MI", "LstCmpDivi")
def list_companies_and_divisions(call: Call) -> list[Record]:
    _check_user(call)
    return [
        {"CONO": cono, "DIVI": divi, "TX40": COMPANY_NAMES[cono], "CONM": name}
        for (cono, divi), name in sorted(DIVISIONS.items())
    ]
