"""Per-transaction MI metadata: one declarative table for validation, v1 metadata and padding.

Field definitions (type A/N/D, length) follow Infor's MI metadata (docs/m3-contract.md); a transaction lists its input
fields (``*`` = mandatory) and output fields by name. A per-transaction override is written
``NAME:N7`` where a program defines a field differently from the shared catalogue.

Numeric fields are written ``N<length>.<decimals>`` (``CUAM N17.2``: 17 digits, 2 of them
decimals); no ``.`` means an integer field. The decimals are [ours] where Infor's documentation gives only
the length: amounts 2, quantities and prices 6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TOO_LONG, MIError, invalid


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str  # "A" alpha, "N" numeric, "D" date (yyyyMMdd, metadata length 10)
    length: int  # characters (A), digits including decimals (N)
    description: str
    mandatory: bool = False
    decimals: int = 0  # N only: digits after the decimal separator


# What M3 reads as a number: digits, at most one '.', an optional leading '-'. Not NaN,
# Infinity, 1e2, 1_000, +3, ' 3' or '1,5' (Python's Decimal would take several of these).
_NUMBER = re.compile(r"(-?)([0-9]*)(?:\.([0-9]*))?")  # ASCII digits: \\d would take ١٢


def number_error(field: FieldDef, value: str) -> MIError | None:
    """M3's input error when ``value`` is not a number that fits numeric ``field``, else None."""
    match = _NUMBER.fullmatch(value)
    if match is None or not (match.group(2) or match.group(3)):
        return invalid(field.name, value, "is invalid - not a number")
    whole, decimals = match.group(2).lstrip("0"), match.group(3) or ""
    if len(decimals) > field.decimals:
        why = "must be a whole number" if field.decimals == 0 else f"has more than {field.decimals} decimals"
        return invalid(field.name, value, f"is invalid - {why}")
    digits = field.length - field.decimals
    if len(whole) > digits:
        return MIError(
            TOO_LONG,
            f"Input field {field.name} is too long, max {digits} digits before the decimal separator",
            field=field.name,
        )
    return None


def _type_length(spec: str) -> tuple[str, int, int]:
    """``"N17.2"`` -> ("N", 17, 2); ``"A10"`` -> ("A", 10, 0)."""
    length, _, decimals = spec[1:].partition(".")
    return spec[0], int(length), int(decimals or 0)


# name type+length description — the shared field catalogue.
_CATALOGUE = """
CONO N3 Company
DIVI A3 Division
FACI A3 Facility
WHLO A3 Warehouse
LNCD A2 Language
CUNO A10 Customer number
CUTM A10 Template customer
CUNM A36 Customer name
CUA1 A36 Customer address line 1
CUA2 A36 Customer address line 2
CUA3 A36 Customer address line 3
CUA4 A36 Customer address line 4
PONO A10 Postal code
TOWN A20 City
CSCD A3 Country
ECAR A2 State
PHNO A16 Telephone number 1
PHN2 A16 Telephone number 2
TFNO A16 Facsimile transmission number
CUTP N1 Customer type
ALCU A10 Search key
YREF A30 Your reference 1
YRE2 A30 Your reference 2
MAIL A50 E-mail address
STAT A2 Status
CUCD A3 Currency
CRTP N2 Exchange rate type
ARAT N13.6 Exchange rate
LMDT D10 Change date
RGDT D10 Entry date
VRNO A16 VAT registration number
ORTP A3 Customer order type
TEPY A3 Payment terms
MODL A3 Delivery method
TEDL A3 Delivery terms
PYNO A10 Payer
SQRY A256 Search query
ERRM A50 Error message
ITNO A15 Item number
ITDS A30 Name
FUDS A60 Description 2
UNMS A3 Basic unit of measure
ITGR A8 Item group
ITCL A5 Product group
ITTY A3 Item type
STQT N17.6 On-hand balance approved
QUQT N17.6 Quantity under inspection
RJQT N17.6 Rejected quantity
ALQT N17.6 Allocated quantity
AV01 N17.6 Allocatable net
AVAL N17.6 Allocatable on-hand balance
REQT N17.6 Reserved quantity
PLQT N17.6 Picking list quantity
AV02 N17.6 Available inventory
WHSL A10 Location
BANO A20 Lot number
STAS A1 Balance identity status
MVB1 N15.6 Movable net balance
ALOC N1 Allocatable
ORNO A10 Customer order number
ORDT D10 Order date
RLDT D10 Requested delivery date
CUDT D10 Customer order date
CUOR A20 Customer's order number
OREF A30 Our reference
NREF A20 Reference number
ADID A6 Address number
ADRT N2 Address type
ORSL A2 Lowest status - customer order
ORST A2 Highest status - customer order
NTAM N15.2 Net order value
VTAM N16.2 VAT amount
TOPY N16.2 Total order value
BRAM N17.2 Gross order value
PONR N5 Order line number
POSX N3 Line suffix
ATNR N17 Attribute number
ORQT N16.6 Ordered quantity - basic U/M
SAPR N18.6 Sales price
SACD N5 Sales price quantity
CUCS A3 Currency - sales price
SPUN A3 Sales price unit of measure
SAPB N19.6 Sales price - basic U/M
PDCC N1 Number of price decimal places
SPDT D10 Sales price date
PRRF A10 Price list
FVDT D10 From date
DWDT D10 Requested delivery date
DIA1 N16.2 Discount amount 1
DIA2 N16.2 Discount amount 2
DIA3 N16.2 Discount amount 3
DIA4 N16.2 Discount amount 4
DIA5 N16.2 Discount amount 5
DIA6 N16.2 Discount amount 6
NLAM N16.2 Net line amount
DLQT N16.6 Delivered quantity
IVQT N16.6 Invoiced quantity
CTYP A1 Confirmation type
LEVL A2 Error level
MDTA A132 Message data
TX60 A60 Message text
MSID A7 Message ID
IVNO N9 Invoice number
IVDT D10 Invoice date
FIVD D10 From invoice date
TIVD D10 To invoice date
AMT1 N17.2 Invoice amount incl. VAT
AMT2 N17.2 Invoice amount excl. VAT
YEA4 N4 Year
INPX A6 Invoice prefix
EXIN A14 Extended invoice number
DUDT D10 Due date
RAFC N17.2 Remaining amount
DLIX N11 Delivery number
OOIN N1 Only open invoices
ACDT D10 Accounting date
VSER A3 Voucher number series
VTXT A40 Voucher text
VTCD N2 VAT code
LINE N3 Line number
NLIN N3 Number of lines
AIT1 A10 Accounting dimension 1
AIT2 A10 Accounting dimension 2
AIT3 A10 Accounting dimension 3
AIT4 A10 Accounting dimension 4
AIT5 A10 Accounting dimension 5
AIT6 A10 Accounting dimension 6
AIT7 A10 Accounting dimension 7
CUAM N17.2 Foreign currency amount
ACAM N17.2 Recorded amount
VDSC A7 Voucher description
VONO N8 Voucher number
JRNO N7 Journal number
JSNO N7 Journal sequence number
DSUM N17.2 Debit sum
CSUM N17.2 Credit sum
DBCR A1 Debit/credit code
FDAT D10 From date
FPER N6 From period
TDAT D10 To date
TPER N6 To period
PERI N6 Period
KEY1 A30 Batch key
INTN A10 Interface
DESC A40 Description
PARM A500 Parameter record
USID A10 User
RORC N1 Reference order category
RIDN A10 Order number
RIDL N6 Order line
TRQT N15.6 Transaction quantity
ETRN A30 External tracking number
NBOL A17 Bill of lading
FWNO A10 Forwarding agent
CONN N7 Shipment
PGRS A2 Delivery status
DSDT D10 Departure date
LANC A2 Language
DTFM A3 Date format
DCFM A1 Decimal format
TIZO A5 Time zone
NAME A36 Name
USTA A2 User status
TX40 A40 Company name
CONM A40 Division name
PBID N10 Payment batch
BOPE A2 Batch payment type
BAAN A35 Bank account number
TRNO N7 Transaction number
CINO A15 Invoice number
INYR N4 Invoice year
PYAM N17.2 Payment amount
LPDT D10 Payment date
CKNO A10 Check number
IRNO A22 Invoice reference number
CHAM N17.2 Charge amount
CHRI A10 Charge
BVTM N17.2 VAT calculation amount
RECO N1 Internal reconciliation code
REDE D10 Internal reconciliation date
TRCD N2 Transaction code
TDSC A10 Transaction description
AAC0 N1 Only open invoices
FDIV A3 From division
TDIV A3 To division
PCUA N17.2 Paid currency amount
OCUA N17.2 Outstanding currency amount
MINM A10 Program name
TRNM A15 Transaction name
"""


def _parse_catalogue(text: str) -> dict[str, FieldDef]:
    fields: dict[str, FieldDef] = {}
    for line in text.strip().splitlines():
        name, typelen, description = line.split(" ", 2)
        kind, length, decimals = _type_length(typelen)
        fields[name] = FieldDef(name, kind, length, description, decimals=decimals)
    return fields


FIELDS: dict[str, FieldDef] = _parse_catalogue(_CATALOGUE)


@dataclass(frozen=True)
class TransactionMeta:
    program: str
    transaction: str
    inputs: dict[str, FieldDef]
    outputs: tuple[FieldDef, ...]
    writes: bool  # changes data (fault injection's drop-after-commit targets writes)

    @property
    def key(self) -> str:
        return f"{self.program}/{self.transaction}"


def _fields(spec: str, inputs: bool) -> list[FieldDef]:
    result: list[FieldDef] = []
    for token in spec.split():
        name, _, override = token.partition(":")
        mandatory = name.endswith("*")
        name = name.rstrip("*")
        base = FIELDS[name]
        if override:
            kind, length, decimals = _type_length(override)
            base = FieldDef(name, kind, length, base.description, decimals=decimals)
        result.append(
            FieldDef(
                base.name,
                base.type,
                base.length,
                base.description,
                mandatory=mandatory and inputs,
                decimals=base.decimals,
            )
        )
    return result


_ADDR = "CUA1 CUA2 CUA3 CUA4 PONO TOWN CSCD ECAR PHNO"
_CUSTOMER_OUT = (
    f"CONO DIVI LNCD CUNO CUNM {_ADDR} PHN2 TFNO CUTP ALCU YREF MAIL STAT CUCD ORTP TEPY MODL TEDL PYNO VRNO LMDT RGDT"
)
_ORDER_HEAD_IN = "CONO FACI WHLO ORDT RLDT CUDT CUOR YREF OREF CUCD PYNO ADID MODL TEDL TEPY NREF"
_LINE_IN = "CONO ITNO* ORQT* WHLO DWDT SAPR DIA1 DIA2 DIA3 DIA4 DIA5 DIA6 ITDS CUOR"
_ORDER_HEAD_OUT = "ORNO ORTP ORDT STAT ORSL ORST FACI WHLO DIVI CUNO CUOR YREF CUCD PYNO RLDT NTAM VTAM TOPY BRAM"
_LINE_OUT = "ORNO PONR POSX ITNO ITDS ORQT WHLO ORST SAPR DIA1 DIA2 DIA3 DIA4 DIA5 DIA6 NLAM ALQT DLQT IVQT CUOR CUCD"
_INV_OUT = "ORNO DLIX IVNO IVDT CUNO PYNO AMT1 AMT2 VTAM CUCD YEA4 INPX EXIN DUDT RAFC CUOR DIVI"
_AITS = "AIT1 AIT2 AIT3 AIT4 AIT5 AIT6 AIT7"
_AR_OUT = "YEA4 JRNO JSNO CINO TRCD INYR RECO REDE PYNO IVDT DUDT TDSC"

# (program, transaction, inputs, outputs, writes)
_TABLE: list[tuple[str, str, str, str, bool]] = [
    (
        "CRS610MI",
        "Add",
        "CUTM* CUNM* CUA1* CONO DIVI LNCD CUNO CUA2 CUA3 CUA4 PONO TOWN CSCD ECAR PHNO PHN2 TFNO "
        "CUTP ALCU YREF YRE2 MAIL STAT CUCD VRNO",
        "CUNO ERRM",
        True,
    ),
    ("CRS610MI", "GetBasicData", "CUNO* CONO", _CUSTOMER_OUT, False),
    ("CRS610MI", "LstByNumber", "CONO CUNO", _CUSTOMER_OUT, False),
    ("CRS610MI", "SearchCustomer", "SQRY* CONO", "CUNO CUNM STAT CUCD CSCD TOWN", False),
    ("OIS100MI", "AddHead", f"CUNO* ORTP* {_ORDER_HEAD_IN}", "ORNO", True),
    ("OIS100MI", "AddLine", f"ORNO* {_LINE_IN}", "ORNO PONR POSX", True),
    ("OIS100MI", "AddBatchHead", f"CUNO* ORTP {_ORDER_HEAD_IN}", "ORNO", True),
    ("OIS100MI", "AddBatchLine", f"ORNO* {_LINE_IN}", "PONR POSX ATNR", True),
    ("OIS100MI", "AddBatchAddress", f"ORNO* ADRT* CUNM {_ADDR} PHN2 VRNO YREF MODL TEDL", "", True),
    ("OIS100MI", "Confirm", "ORNO* CONO CTYP", "ORNO STAT", True),
    ("OIS100MI", "LstErrMsgOrder", "ORNO* CONO", "LEVL MDTA TX60 MSID", False),
    ("OIS100MI", "DelLine", "ORNO* PONR* POSX CONO", "", True),
    ("OIS100MI", "DelHead", "ORNO* CONO", "", True),
    ("OIS100MI", "GetHead", "ORNO* CONO", _ORDER_HEAD_OUT, False),
    ("OIS100MI", "LstHead", "CUNO* CONO ORSL ORST", "ORNO ORTP RLDT STAT CUOR ORDT ORSL ORST CUCD", False),
    ("OIS100MI", "LstLine", "ORNO* CONO ORST ITNO", _LINE_OUT, False),
    ("MMS200MI", "GetItmBasic", "ITNO* CONO LNCD", "STAT ITNO ITDS FUDS UNMS ITGR ITCL ITTY LMDT RGDT", False),
    (
        "MMS200MI",
        "GetItmWhsBal",
        "WHLO* ITNO* CONO",
        "WHLO ITNO FACI STQT QUQT RJQT ALQT AV01 AVAL REQT PLQT ORQT AV02",
        False,
    ),
    # The item's basic sales price (MMS001/MMS025's SAPR per SACD units), N19 here (OIS has N18).
    ("MMS200MI", "GetItmPrice", "ITNO* CONO LNCD", "SAPR:N19.6 SACD CUCS SPUN SAPB PDCC SPDT LMDT", False),
    ("MMS080MI", "LstItemBal", "WHLO* ITNO CONO", "WHLO ITNO ITDS STQT ALQT AVAL", False),
    ("OIS017MI", "GetBasePrice", "PRRF* CUCD* ITNO* CONO CUNO FVDT", "PRRF CUCD CUNO ITNO FVDT SAPR", False),
    ("MMS060MI", "LstBalID", "WHLO* ITNO WHSL BANO CONO", "WHLO ITNO WHSL BANO STAS STQT ALQT ALOC MVB1", False),
    ("OIS350MI", "LstInvHeadByCo", "ORNO* CONO WHLO DLIX OOIN", _INV_OUT, False),
    ("OIS350MI", "LstInvHead", "YEA4* CONO DIVI FIVD TIVD", _INV_OUT, False),
    (
        "GLS200MI",
        "Add",
        "DIVI ACDT* VSER VTXT* CUCD* LINE* NLIN* AIT1* AIT2 AIT3 AIT4 AIT5 AIT6 AIT7 CUAM* VDSC VTCD CRTP ARAT",
        "VONO YEA4 JRNO",
        True,
    ),
    (
        "GLS200MI",
        "GetVoucherHead",
        "DIVI* YEA4* VONO* VSER JRNO",
        "DIVI VONO YEA4 VSER ACDT VTXT CUCD DSUM CSUM JRNO VDSC",
        False,
    ),
    (
        "GLS200MI",
        "LstVoucherLines",
        "DIVI* YEA4* VONO* VSER",
        f"DIVI VONO YEA4 VSER JRNO JSNO {_AITS} CUCD CUAM ACAM CRTP ARAT DBCR VTXT ACDT VTCD",
        False,
    ),
    ("GLS200MI", "LstVouchersByDt", "DIVI* FDAT* TDAT*", "DIVI VONO YEA4 VSER JRNO ACDT VTXT CUCD DSUM CSUM", False),
    # [ours] period status; docs/m3-contract.md "Accounting periods"
    ("GLS900MI", "LstPeriods", "DIVI* FPER* TPER*", "DIVI PERI STAT", False),
    ("GLS840MI", "AddBatchHead", "CONO* KEY1* INTN* DESC* DIVI USID", "", True),
    ("GLS840MI", "AddBatchLine", "CONO* KEY1* LINE*:N7 PARM* DIVI", "", True),
    ("GLS840MI", "CtrlBatch", "CONO* KEY1* DIVI", "", True),
    ("GLS840MI", "UpdBatch", "CONO* KEY1* DIVI", "CONO", True),  # no voucher: a job books it later
    # Customer ledger (docs/m3-contract.md "Customer ledger"): Infor's names and inputs (m3h5);
    # the lengths of BOPE, BAAN, TRNO, CKNO, IRNO, CHRI, CHAM, BVTM and what ControlBatch answers are [ours].
    ("ARS200MI", "LstInvoices", "CUNO* CONO AAC0 IVDT", f"{_AR_OUT} CUNO", False),
    ("ARS200MI", "LstInvByDivi", "CONO FDIV TDIV PYNO CUNO AAC0 IVDT", f"{_AR_OUT} CUNO", False),
    ("ARS200MI", "GetInvTotInfo", "PYNO* CINO* INYR* CUNO* DIVI", f"{_AR_OUT} CUNO CUCD CUAM PCUA OCUA", False),
    ("ARS040MI", "AddBatchHead", "PBID* BOPE* CONO DIVI BAAN VONO ACDT", "PBID", True),
    (
        "ARS040MI",
        "AddBatchLine",
        f"PBID* TRNO* CINO* INYR* CUNO* PYAM* CONO DIVI PYNO CUCD ARAT LPDT CKNO {_AITS} IRNO",
        "",
        True,
    ),
    # [ours] AIT1..AIT7 on AddBatchCharge: the charge's accounting string (a real tenant takes it
    # from the accounting rules of charge CHRI)
    ("ARS040MI", "AddBatchCharge", f"PBID* CHAM* CONO DIVI CHRI CUCD ARAT VTCD VTAM BVTM {_AITS}", "", True),
    ("ARS040MI", "ControlBatch", "PBID* CONO DIVI", "PBID VONO YEA4 JRNO", True),  # [ours] books the batch
    ("MRS001MI", "LstTransactions", "MINM*", "MINM TRNM", False),
    ("MNS150MI", "GetUserData", "USID", "USID NAME CONO DIVI LANC DTFM DCFM TIZO FACI WHLO USTA TX40 CONM", False),
    ("MNS150MI", "LstCmpDivi", "USID*", "CONO DIVI TX40 CONM", False),
    ("MWS411MI", "LstDelLnByOrd", "RORC* RIDN* CONO", "CONO DLIX RORC RIDN RIDL ITNO TRQT WHLO", False),
    ("MWS410MI", "GetHead", "DLIX* CONO", "CONO DLIX RORC RIDN WHLO ETRN NBOL FWNO CONN PGRS DSDT IVNO MODL", False),
]


def _build(table: list[tuple[str, str, str, str, bool]]) -> dict[tuple[str, str], TransactionMeta]:
    metas: dict[tuple[str, str], TransactionMeta] = {}
    for program, transaction, inputs, outputs, writes in table:
        metas[(program, transaction)] = TransactionMeta(
            program,
            transaction,
            {f.name: f for f in _fields(inputs, inputs=True)},
            tuple(_fields(outputs, inputs=False)),
            writes,
        )
    return metas


TRANSACTIONS: dict[tuple[str, str], TransactionMeta] = _build(_TABLE)
PROGRAMS: frozenset[str] = frozenset(p for p, _ in TRANSACTIONS)


def lookup(program: str, transaction: str) -> TransactionMeta | None:
    return TRANSACTIONS.get((program.upper(), transaction))
