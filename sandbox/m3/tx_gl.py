"""General ledger: GLS200MI/Add (brief, non-standard [ours]), GLS840MI batch (CloudSuite), GLS200MI reads.

Both posting paths end in ``book_voucher``, which refuses a voucher that does not net to zero
or falls in a closed period, so the two profiles book identical vouchers.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import MIError, invalid, nok
from .metadata import FIELDS, number_error
from .money import fmt_amount, to_currency
from .registry import Call, Record, mi
from .seed import DEFAULT_RATE_TYPE, DIVI, DIVISION_CURRENCIES, ROUNDING_ACCOUNT, VSER
from .store import Store, Tx, dumps

AIT_FIELDS = ("AIT1", "AIT2", "AIT3", "AIT4", "AIT5", "AIT6", "AIT7")
GL_INTERFACE = "GLUPLOAD"


@dataclass(frozen=True)
class VoucherLine:
    aits: tuple[str, ...]
    amount: Decimal  # signed: debit positive, credit negative
    currency: str
    acdt: str
    vtxt: str
    vtcd: str = ""  # VAT code [ours on GLS200MI/Add and in the I1 record]
    crtp: str = ""  # exchange rate type as given ("" = the default type)
    arat: str = ""  # exchange rate as given ("" = the division's rate for ACDT)


@dataclass(frozen=True)
class Recorded:
    """A line in the division's local currency: CUAM x rate, rounded per line as M3 does."""

    rate_type: int
    rate: Decimal
    local_amount: Decimal  # ACAM


def local_currency(divi: str) -> str:
    return DIVISION_CURRENCIES.get(divi, DIVISION_CURRENCIES[DIVI])


def rounding_account(tx: Tx, divi: str) -> str:
    """The account M3's FAM function books currency rounding to ("" = none set up) [ours]."""
    account = tx.setting(f"rounding_account:{divi}")
    return ROUNDING_ACCOUNT if account is None else account


def exchange_rate(tx: Tx, divi: str, currency: str, rate_type: int, acdt: str) -> Decimal | None:
    """The division's rate (CRS058) of ``currency`` for ``rate_type`` valid on ``acdt``: the latest from-date."""
    row = tx.one(
        "SELECT arat FROM exchange_rates WHERE divi = ? AND cucd = ? AND crtp = ? AND fdat <= ? "
        "ORDER BY fdat DESC LIMIT 1",
        (divi, currency, rate_type, acdt),
    )
    return Decimal(row["arat"]) if row is not None else None


def recorded(tx: Tx, divi: str, line: VoucherLine, commit: bool = False) -> Recorded:
    """Convert one line into the division's local currency; NOK when no rate is known."""
    rate_type = int(line.crtp) if line.crtp else DEFAULT_RATE_TYPE
    local = local_currency(divi)
    if line.currency == local:
        rate: Decimal | None = Decimal(1)
    elif line.arat and Decimal(line.arat) != 0:
        rate = Decimal(line.arat)  # a rate given on the line wins over the table (a manual rate)
    else:
        rate = exchange_rate(tx, divi, line.currency, rate_type, line.acdt)
    if rate is None:
        raise nok(
            "WARAT03",
            "Exchange rate &1 does not exist",
            "ARAT",
            f"{line.currency}/{local} rate type {rate_type} on {line.acdt} in division {divi}",
            commit=commit,
        )
    return Recorded(rate_type, rate, to_currency(line.amount * rate, local))


def _unbalanced(lines: list[VoucherLine], commit: bool = False) -> Exception | None:
    debit = sum((ln.amount for ln in lines if ln.amount > 0), Decimal(0))
    credit = -sum((ln.amount for ln in lines if ln.amount < 0), Decimal(0))
    if debit == credit:
        return None
    currency = lines[0].currency
    return nok(
        "XBA0001",
        "Voucher does not balance: debit &1 credit &2",
        "CUAM",
        fmt_amount(debit, currency),
        fmt_amount(credit, currency),
        commit=commit,
    )


def check_period(tx: Tx, divi: str, acdt: str) -> None:
    if tx.period_closed(divi, acdt):
        raise nok("WPE0101", "Accounting period &1 is closed", "ACDT", acdt[:6])


def check_voucher(tx: Tx, divi: str, lines: list[VoucherLine], commit: bool = False) -> None:
    """Every rule a voucher must pass before it is booked."""
    if len({ln.currency for ln in lines}) > 1:
        raise nok("WCUCD01", "Currency differs between lines of voucher &1", "CUCD", lines[0].vtxt, commit=commit)
    if len({ln.acdt for ln in lines}) > 1:
        raise nok(
            "WACDT01", "Accounting date differs between lines of voucher &1", "ACDT", lines[0].vtxt, commit=commit
        )
    check_period(tx, divi, lines[0].acdt)
    error = _unbalanced(lines, commit)
    if error is not None:
        raise error
    for line in lines:
        recorded(tx, divi, line, commit)


def book_voucher(tx: Tx, divi: str, lines: list[VoucherLine], vdsc: str = "") -> Record:
    check_voucher(tx, divi, lines)
    first = lines[0]
    year = first.acdt[:4]
    vono = str(tx.next_number(f"voucher-{divi}-{year}", 1))
    jrno = str(tx.next_number(f"journal-{divi}-{year}", 1))
    currency = first.currency
    debit = sum((ln.amount for ln in lines if ln.amount > 0), Decimal(0))
    credit = sum((ln.amount for ln in lines if ln.amount < 0), Decimal(0))
    head = {
        "DIVI": divi,
        "VONO": vono,
        "YEA4": year,
        "VSER": VSER,
        "ACDT": first.acdt,
        "VTXT": first.vtxt,
        "CUCD": currency,
        "DSUM": fmt_amount(debit, currency),
        "CSUM": fmt_amount(credit, currency),
        "JRNO": jrno,
        "VDSC": vdsc,
    }
    tx.execute(
        "INSERT INTO vouchers (divi, yea4, vono, acdt, data) VALUES (?, ?, ?, ?, ?)",
        (divi, year, vono, first.acdt, dumps(head)),
    )
    local = local_currency(divi)
    booked = [(line, recorded(tx, divi, line)) for line in lines]
    # Each line is converted and rounded on its own, so the recorded amounts may not net to zero:
    # M3 books the difference to the rounding account of its FAM function, in local currency
    # only (CUAM 0) [ours: the account; the sandbox books none when the setting is blanked].
    difference = -sum((rec.local_amount for _, rec in booked), Decimal(0))
    account = rounding_account(tx, divi)
    if difference and account:
        first_rec = booked[0][1]
        rounding = VoucherLine((account,), Decimal(0), currency, first.acdt, first.vtxt)
        booked.append((rounding, Recorded(first_rec.rate_type, first_rec.rate, difference)))
    for jsno, (line, rec) in enumerate(booked, start=1):
        record = {
            "DIVI": divi,
            "VONO": vono,
            "YEA4": year,
            "VSER": VSER,
            "JRNO": jrno,
            "JSNO": str(jsno),
            **dict(zip(AIT_FIELDS, line.aits)),
            "CUCD": currency,
            "CUAM": fmt_amount(line.amount, currency),
            "ACAM": fmt_amount(rec.local_amount, local),
            "CRTP": str(rec.rate_type),
            "ARAT": str(rec.rate),
            "DBCR": "D" if (line.amount or rec.local_amount) >= 0 else "C",
            "VTXT": line.vtxt,
            "ACDT": line.acdt,
            "VTCD": line.vtcd,
        }
        tx.execute(
            "INSERT INTO voucher_lines (divi, yea4, vono, jsno, data) VALUES (?, ?, ?, ?, ?)",
            (divi, year, vono, jsno, dumps(record)),
        )
    return {"VONO": vono, "YEA4": year, "JRNO": jrno}


# ---- GLS200MI/Add: one call per line, buffered until NLIN lines have arrived ----------------


@mi("GLS200MI", "Add")
def add_voucher_line(call: Call) -> list[Record]:
    tx, divi, vtxt = call.tx, call.divi, call.get("VTXT")
    line_no, total = int(call.decimal("LINE")), int(call.decimal("NLIN"))
    if total < 1:
        raise invalid("NLIN", call.get("NLIN"))
    if not 1 <= line_no <= total:
        raise invalid("LINE", call.get("LINE"), f"is invalid - must be 1..{total}")
    check_period(tx, divi, call.get("ACDT"))
    if line_no == 1:  # a voucher starts again at line 1; drop what an earlier attempt left behind
        tx.execute("DELETE FROM gl_pending WHERE divi = ? AND vtxt = ?", (divi, vtxt))
    tx.execute(
        "INSERT OR REPLACE INTO gl_pending (divi, vtxt, line, data) VALUES (?, ?, ?, ?)",
        (divi, vtxt, line_no, dumps(call.inputs)),
    )
    pending = tx.records("SELECT data FROM gl_pending WHERE divi = ? AND vtxt = ? ORDER BY line", (divi, vtxt))
    if len(pending) < total:
        return []
    tx.execute("DELETE FROM gl_pending WHERE divi = ? AND vtxt = ?", (divi, vtxt))
    lines = [
        VoucherLine(
            tuple(p.get(a, "") for a in AIT_FIELDS),
            Decimal(p["CUAM"]),
            p["CUCD"],
            p["ACDT"],
            vtxt,
            vtcd=p.get("VTCD", ""),
            crtp=p.get("CRTP", ""),
            arat=p.get("ARAT", ""),
        )
        for p in pending
    ]
    # On failure the buffer stays cleared (commit=True): nothing of this voucher is booked.
    check_voucher(tx, divi, lines, commit=True)
    return [book_voucher(tx, divi, lines, call.get("VDSC"))]


# ---- GLS840MI: batch head, fixed-width I1 lines, control, update ------------------------

# "I1" + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..AIT7(10 each) + CUCD(3) + CUAM(17) + ACDT(8) + VTXT(40)
# + VTCD(2) + CRTP(2) + ARAT(13) (the VAT code, rate type and rate after VTXT: [ours], docs/m3-contract.md)
I1_LAYOUT: tuple[tuple[str, int], ...] = (
    ("RCID", 2),
    ("RNNO", 9),
    ("GRNR", 8),
    ("DIVI", 3),
    *((a, 10) for a in AIT_FIELDS),
    ("CUCD", 3),
    ("CUAM", 17),
    ("ACDT", 8),
    ("VTXT", 40),
    ("VTCD", 2),
    ("CRTP", 2),
    ("ARAT", 13),
)
I1_LENGTH = sum(width for _, width in I1_LAYOUT)


def parse_i1(parm: str) -> dict[str, str]:
    """Split a GLUPLOAD ``I1`` record; raises a NOK naming the first bad part."""
    if len(parm) > I1_LENGTH:
        raise invalid("PARM", parm[:20] + "...", f"is invalid - longer than {I1_LENGTH} characters")
    padded = parm.ljust(I1_LENGTH)
    fields: dict[str, str] = {}
    position = 0
    for name, width in I1_LAYOUT:
        fields[name] = padded[position : position + width].strip()
        position += width
    if fields["RCID"] != "I1":
        raise invalid("PARM", parm[:2], "is invalid - record must start with I1")
    for name in ("GRNR", "AIT1", "CUCD", "CUAM", "ACDT"):
        if not fields[name]:
            raise invalid("PARM", parm[:20] + "...", f"is invalid - {name} is blank")
    if number_error(FIELDS["CUAM"], fields["CUAM"]) is not None:  # M3's number grammar, not Python's Decimal
        raise invalid("PARM", fields["CUAM"], "is invalid - CUAM is not a number")
    if fields["VTCD"] and not fields["VTCD"].isdigit():
        raise invalid("PARM", fields["VTCD"], "is invalid - VTCD is not a number")
    if not (fields["ACDT"].isdigit() and len(fields["ACDT"]) == 8):
        raise invalid("PARM", fields["ACDT"], "is invalid - ACDT is not yyyyMMdd")
    if fields["CRTP"] and number_error(FIELDS["CRTP"], fields["CRTP"]) is not None:
        raise invalid("PARM", fields["CRTP"], "is invalid - CRTP is not a rate type")
    if fields["ARAT"] and number_error(FIELDS["ARAT"], fields["ARAT"]) is not None:
        raise invalid("PARM", fields["ARAT"], "is invalid - ARAT is not a rate")
    return fields


# Batch states: open -> controlled (CtrlBatch) -> queued (UpdBatch) -> updated (the batch job
# booked it) or failed (the job found errors; the batch stays, unbooked, with its errors).
QUEUED, UPDATED, FAILED = "queued", "updated", "failed"


def _batch(call: Call) -> dict[str, Any]:
    """The batch named by CONO/KEY1 while it can still be changed (open or controlled)."""
    key1 = call.get("KEY1")
    row = call.tx.one("SELECT state, data FROM gl_batches WHERE cono = ? AND key1 = ?", (call.get("CONO"), key1))
    if row is None:
        raise nok("XRE0103", "Record does not exist: batch &1", "KEY1", key1)
    data = json.loads(row["data"])
    if row["state"] == UPDATED:
        raise nok("XRE0104", "Record already exists: batch &1 is already updated", "KEY1", key1)
    if row["state"] == QUEUED:
        raise nok("XBA0002", "Batch &1 is submitted for update; wait for the update job", "KEY1", key1)
    if row["state"] == FAILED:
        raise nok(
            "XBA0003", "Batch &1: update job ended with errors: &2", "KEY1", key1, "; ".join(data.get("errors", []))
        )
    return {"state": row["state"], "DIVI": call.get("DIVI") or data.get("DIVI") or call.divi}


def _batch_groups(tx: Tx, cono: str, key1: str, divi: str) -> dict[str, list[VoucherLine]]:
    rows = tx.records("SELECT data FROM gl_batch_lines WHERE cono = ? AND key1 = ? ORDER BY line", (cono, key1))
    if not rows:
        raise nok("XRE0103", "Record does not exist: batch &1 has no lines", "KEY1", key1)
    groups: dict[str, list[VoucherLine]] = defaultdict(list)
    for r in rows:
        groups[r["GRNR"]].append(
            VoucherLine(
                tuple(r[a] for a in AIT_FIELDS),
                Decimal(r["CUAM"]),
                r["CUCD"],
                r["ACDT"],
                r["VTXT"],
                vtcd=r.get("VTCD", ""),
                crtp=r.get("CRTP", ""),
                arat=r.get("ARAT", ""),
            )
        )
    for lines in groups.values():
        check_voucher(tx, divi, lines)
    return groups


@mi("GLS840MI", "AddBatchHead")
def add_batch_head(call: Call) -> list[Record]:
    if call.get("INTN") != GL_INTERFACE:
        raise nok("WINTN03", "Interface &1 does not exist", "INTN", call.get("INTN"))
    if call.tx.one("SELECT 1 FROM gl_batches WHERE cono = ? AND key1 = ?", (call.get("CONO"), call.get("KEY1"))):
        raise nok("XRE0104", "Record already exists: batch &1", "KEY1", call.get("KEY1"))
    call.tx.execute(
        "INSERT INTO gl_batches (cono, key1, state, data) VALUES (?, ?, 'open', ?)",
        (call.get("CONO"), call.get("KEY1"), dumps(dict(call.inputs))),
    )
    return []


@mi("GLS840MI", "AddBatchLine")
def add_batch_line(call: Call) -> list[Record]:
    batch = _batch(call)
    fields = parse_i1(call.get("PARM"))
    fields["DIVI"] = fields["DIVI"] or batch["DIVI"]
    line = int(call.decimal("LINE"))
    key = (call.get("CONO"), call.get("KEY1"), line)
    if call.tx.one("SELECT 1 FROM gl_batch_lines WHERE cono = ? AND key1 = ? AND line = ?", key):
        raise nok("XRE0104", "Record already exists: line &1", "LINE", line)
    call.tx.execute("INSERT INTO gl_batch_lines (cono, key1, line, data) VALUES (?, ?, ?, ?)", (*key, dumps(fields)))
    call.tx.execute("UPDATE gl_batches SET state = 'open' WHERE cono = ? AND key1 = ?", key[:2])
    return []


@mi("GLS840MI", "CtrlBatch")
def control_batch(call: Call) -> list[Record]:
    batch = _batch(call)
    _batch_groups(call.tx, call.get("CONO"), call.get("KEY1"), batch["DIVI"])
    call.tx.execute(
        "UPDATE gl_batches SET state = 'controlled' WHERE cono = ? AND key1 = ?", (call.get("CONO"), call.get("KEY1"))
    )
    return []


@mi("GLS840MI", "UpdBatch")
def update_batch(call: Call) -> list[Record]:
    """Checks the batch and queues it for M3's batch job; no voucher yet (GLS840 option 9
    submits a job). The job books it later: see :class:`BatchJobs`."""
    batch = _batch(call)
    _batch_groups(call.tx, call.get("CONO"), call.get("KEY1"), batch["DIVI"])
    _set_state(
        call.tx,
        call.get("CONO"),
        call.get("KEY1"),
        QUEUED,
        {"DIVI": batch["DIVI"], "queued_at": time.time(), "errors": [], "vouchers": []},
    )
    return [{"CONO": call.get("CONO")}]


def _set_state(tx: Tx, cono: str, key1: str, state: str, changes: dict[str, Any]) -> None:
    row = tx.one("SELECT data FROM gl_batches WHERE cono = ? AND key1 = ?", (cono, key1))
    assert row is not None  # callers look the batch up first
    data = json.loads(row["data"])
    data.update(changes)
    tx.execute(
        "UPDATE gl_batches SET state = ?, data = ? WHERE cono = ? AND key1 = ?",
        (state, json.dumps(data, sort_keys=True), cono, key1),
    )


FAIL_NEXT_SETTING = "gl_batch_job_fail_next"  # shared by every instance on the database
FAIL_MESSAGE_SETTING = "gl_batch_job_fail_message"
DEFAULT_FAILURE = "XBA0009 Account string is blocked (sandbox: batch job failure injected)"


class BatchJobs:
    """M3's GL batch update job as the sandbox runs it.

    A batch queued by UpdBatch is booked once it has waited ``delay`` seconds. The sandbox runs
    due jobs before it answers any request (MI or admin), so from the outside the job runs on
    time; a request can never see a due batch unbooked. Instances on one database share the
    queue: a job runs in one ``BEGIN IMMEDIATE`` transaction that first checks the batch is
    still queued, so it runs exactly once whichever instance (or process) gets there first.
    """

    def __init__(self, store: Store, delay: float = 0.5) -> None:
        if delay < 0:
            raise ValueError(f"GL batch job delay must be >= 0 seconds, got {delay!r}")
        self.store = store
        self.delay = delay

    def run_due(self, *, now: float | None = None, everything: bool = False) -> list[dict[str, Any]]:
        """Run every queued batch whose delay has passed (``everything``: all queued ones)."""
        moment = time.time() if now is None else now
        queued = self.store.snapshot("SELECT cono, key1, data FROM gl_batches WHERE state = ?", (QUEUED,))
        ran = []
        for row in queued:
            if everything or json.loads(row["data"]).get("queued_at", 0) + self.delay <= moment:
                result = self._run(row["cono"], row["key1"])
                if result is not None:
                    ran.append(result)
        return ran

    def _run(self, cono: str, key1: str) -> dict[str, Any] | None:
        with self.store.transaction() as tx:
            row = tx.one("SELECT state, data FROM gl_batches WHERE cono = ? AND key1 = ?", (cono, key1))
            if row is None or row["state"] != QUEUED:
                return None  # another instance ran it first
            divi = json.loads(row["data"])["DIVI"]
            fail_next = int(tx.setting(FAIL_NEXT_SETTING) or 0)
            if fail_next > 0:
                tx.execute(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    (FAIL_NEXT_SETTING, str(fail_next - 1)),
                )
                errors = [tx.setting(FAIL_MESSAGE_SETTING) or DEFAULT_FAILURE]
            else:
                try:
                    groups = _batch_groups(tx, cono, key1, divi)
                    booked = [book_voucher(tx, divi, groups[grnr], GL_INTERFACE) for grnr in sorted(groups)]
                except MIError as error:  # e.g. the period was closed after the batch was queued
                    errors = [f"{error.code} {error.message}".strip()]
                else:
                    _set_state(tx, cono, key1, UPDATED, {"vouchers": booked, "updated_at": time.time()})
                    return {"cono": cono, "key1": key1, "state": UPDATED, "vouchers": booked}
            _set_state(tx, cono, key1, FAILED, {"errors": errors, "failed_at": time.time()})
            return {"cono": cono, "key1": key1, "state": FAILED, "errors": errors}

    def fail_next(self, count: int, message: str | None = None) -> None:
        with self.store.transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (FAIL_NEXT_SETTING, str(count)))
            if message is not None:
                tx.execute(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (FAIL_MESSAGE_SETTING, message)
                )

    def state(self) -> dict[str, Any]:
        with self.store.transaction() as tx:
            fail_next = int(tx.setting(FAIL_NEXT_SETTING) or 0)
            rows = tx.all("SELECT cono, key1, state, data FROM gl_batches ORDER BY cono, key1")
        batches = []
        for row in rows:
            data = json.loads(row["data"])
            batches.append(
                {
                    "cono": row["cono"],
                    "key1": row["key1"],
                    "state": row["state"],
                    "divi": data.get("DIVI", ""),
                    "errors": data.get("errors", []),
                    "vouchers": data.get("vouchers", []),
                }
            )
        return {"delay_ms": round(self.delay * 1000), "fail_next": fail_next, "batches": batches}


# ---- GLS200MI reads -----------------------------------------------------------------------


def _voucher_key(call: Call) -> tuple[str, str, str]:
    return call.get("DIVI"), call.get("YEA4"), str(int(call.decimal("VONO")))


@mi("GLS200MI", "GetVoucherHead")
def get_voucher_head(call: Call) -> list[Record]:
    head = call.tx.record("SELECT data FROM vouchers WHERE divi = ? AND yea4 = ? AND vono = ?", _voucher_key(call))
    if head is None or call.get("VSER", head["VSER"]) != head["VSER"]:
        raise nok("XRE0103", "Record does not exist: voucher &1", "VONO", call.get("VONO"))
    return [head]


@mi("GLS200MI", "LstVoucherLines")
def list_voucher_lines(call: Call) -> list[Record]:
    get_voucher_head(call)
    return call.tx.records(
        "SELECT data FROM voucher_lines WHERE divi = ? AND yea4 = ? AND vono = ? ORDER BY jsno", _voucher_key(call)
    )


@mi("GLS200MI", "LstVouchersByDt")
def list_vouchers_by_date(call: Call) -> list[Record]:
    return call.tx.records(
        "SELECT data FROM vouchers WHERE divi = ? AND acdt BETWEEN ? AND ? ORDER BY acdt, yea4, CAST(vono AS INTEGER)",
        (call.get("DIVI"), call.get("FDAT"), call.get("TDAT")),
    )


# ---- GLS900MI/LstPeriods [ours]: the status of each accounting period in a range -------------

PERIOD_OPEN, PERIOD_CLOSED = "10", "90"  # STAT values [ours]
MAX_PERIODS = 120  # months one call lists [ours]


def _period(call: Call, field: str) -> tuple[int, int]:
    text = call.get(field)
    year, month = divmod(int(text), 100) if text.isdigit() and len(text) == 6 else (0, 0)
    if not 1 <= month <= 12:
        raise invalid(field, text, "is invalid - must be a period YYYYMM")
    return year, month


@mi("GLS900MI", "LstPeriods")
def list_periods(call: Call) -> list[Record]:
    """One record per month from FPER to TPER (inclusive): open unless closed through the admin API."""
    divi = call.get("DIVI")
    year, month = _period(call, "FPER")
    last = _period(call, "TPER")
    count = (last[0] - year) * 12 + last[1] - month + 1
    if not 1 <= count <= MAX_PERIODS:
        raise invalid("TPER", call.get("TPER"), f"is invalid - must be FPER..FPER+{MAX_PERIODS - 1} months")
    records = []
    for _ in range(count):
        period = f"{year:04d}{month:02d}"
        closed = call.tx.period_closed(divi, period)
        records.append({"DIVI": divi, "PERI": period, "STAT": PERIOD_CLOSED if closed else PERIOD_OPEN})
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return records
