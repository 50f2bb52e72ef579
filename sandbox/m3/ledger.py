"""The customer ledger (M3's FSLEDG): one item per customer invoice, settled by payments.

Two tenant set-ups (docs/m3-contract.md "Customer ledger"): ``receivable`` (the default) —
an Amazon customer's invoice debits the receivable account and stays open until a payment
(ARS040MI) settles it; ``gl-clearing`` — the invoice debits a GL clearing account and its item
is settled at invoicing [ours: like cash payment terms], so the GL alone tells the story.
The invoice's own GL posting is kept on its item (``ACCT``, ``AIT3``), not as a GLS200MI
voucher [ours: invoice vouchers would crowd the voucher list the posting look-up reads].
"""

from __future__ import annotations

from decimal import Decimal

from .money import fmt_amount
from .store import Tx, dumps

RECEIVABLE, GL_CLEARING = "receivable", "gl-clearing"
SETUPS = (RECEIVABLE, GL_CLEARING)
SETUP_SETTING, ACCOUNT_SETTING = "customer_ledger_setup", "customer_ledger_account"
RECEIVABLE_ACCOUNT = "1510"  # AR10 of the Amazon customers' accounting [ours: the preset's receivable]
SETTLED = "9"  # RECO: "9=payed" (ARS200MI/LstInvoices)


def setup(tx: Tx) -> tuple[str, str]:
    """(set-up, account the Amazon customers' invoices debit)."""
    return tx.setting(SETUP_SETTING) or RECEIVABLE, tx.setting(ACCOUNT_SETTING) or RECEIVABLE_ACCOUNT


def set_setup(tx: Tx, name: str, account: str) -> None:
    for key, value in ((SETUP_SETTING, name), (ACCOUNT_SETTING, account)):
        tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))


def marketplace_dimension(cuno: str) -> str:
    """AIT3 of a marketplace customer's receivable: ``AMZUS`` -> ``US`` [ours: the preset's {marketplace}]."""
    return cuno[3:] if cuno.startswith("AMZ") else ""


def open_item(tx: Tx, invoice: dict[str, str]) -> None:
    """The ledger item of a new customer invoice (credit notes carry a negative amount)."""
    name, account = setup(tx)
    currency, amount = invoice["CUCD"], Decimal(invoice["AMT1"])
    settled = name == GL_CLEARING
    jrno = str(tx.next_number(f"journal-{invoice['DIVI']}-{invoice['YEA4']}", 1))
    item = {
        "DIVI": invoice["DIVI"],
        "YEA4": invoice["YEA4"],
        "JRNO": jrno,
        "JSNO": "1",
        "CUNO": invoice["CUNO"],
        "PYNO": invoice["PYNO"],
        "CINO": invoice["EXIN"],  # the extended invoice number is the ledger's invoice number
        "INYR": invoice["YEA4"],
        "TRCD": "10",
        "IVDT": invoice["IVDT"],
        "DUDT": invoice["DUDT"],
        "CUCD": currency,
        "CUAM": fmt_amount(amount, currency),
        "PCUA": fmt_amount(amount if settled else Decimal(0), currency),
        "OCUA": fmt_amount(Decimal(0) if settled else amount, currency),
        "RECO": SETTLED if settled else "0",
        "REDE": invoice["IVDT"] if settled else "",
        "ACCT": account,
        "AIT3": marketplace_dimension(invoice["CUNO"]),
    }
    tx.execute(
        "INSERT INTO ar_items (divi, cuno, cino, inyr, data) VALUES (?, ?, ?, ?, ?)",
        (item["DIVI"], item["CUNO"], item["CINO"], item["INYR"], dumps(item)),
    )


def pay(tx: Tx, item: dict[str, str], amount: Decimal, day: str) -> None:
    """Settle ``amount`` of ``item``; its outstanding amount may go to zero or past it (overpaid)."""
    currency = item["CUCD"]
    paid = Decimal(item["PCUA"]) + amount
    outstanding = Decimal(item["CUAM"]) - paid
    item.update(
        {
            "PCUA": fmt_amount(paid, currency),
            "OCUA": fmt_amount(outstanding, currency),
            "RECO": SETTLED if outstanding == 0 else "0",
            "REDE": day if outstanding == 0 else "",
        }
    )
    tx.execute(
        "UPDATE ar_items SET data = ? WHERE divi = ? AND cuno = ? AND cino = ? AND inyr = ?",
        (dumps(item), item["DIVI"], item["CUNO"], item["CINO"], item["INYR"]),
    )


def balances(tx: Tx, divi: str) -> dict[str, object]:
    """Open ledger items per customer, and GL balances per (AIT1, AIT3): booked vouchers plus the
    invoices' own postings (each invoice debits its item's account)."""
    ledger: dict[str, Decimal] = {}
    gl: dict[tuple[str, str], Decimal] = {}
    for item in tx.records("SELECT data FROM ar_items WHERE divi = ?", (divi,)):
        ledger[item["CUNO"]] = ledger.get(item["CUNO"], Decimal(0)) + Decimal(item["OCUA"])
        key = (item["ACCT"], item["AIT3"])
        gl[key] = gl.get(key, Decimal(0)) + Decimal(item["CUAM"])
    for line in tx.records("SELECT data FROM voucher_lines WHERE divi = ?", (divi,)):
        key = (line.get("AIT1", ""), line.get("AIT3", ""))
        gl[key] = gl.get(key, Decimal(0)) + Decimal(line["CUAM"])
    return {
        "ledger": {cuno: str(amount) for cuno, amount in sorted(ledger.items())},
        "gl": [{"account": a, "ait3": d, "balance": str(amount)} for (a, d), amount in sorted(gl.items())],
    }
