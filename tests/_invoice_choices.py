"""For tests whose settlement files name orders their M3 never invoiced (nor credited).

Since refunds without an M3 credit note and orders without an M3 invoice hold a settlement by
default (reconciliation/invoice_policy.py), a test about something else (posting exactly once,
batches, reversal, period locks, audit records) posts them by the accountant's choice instead:
refunds as sales returns, sales to the missing-invoice suspense account.
"""

from __future__ import annotations

# settlement_reconciliation(..., **POST_WITHOUT_M3_DOCUMENTS)
POST_WITHOUT_M3_DOCUMENTS = {"refunds_without_credit": "returns", "missing_invoices": "suspense"}
# m3sync("settle", ..., *POST_WITHOUT_M3_DOCUMENTS_ARGS)
POST_WITHOUT_M3_DOCUMENTS_ARGS = ("--refunds-without-credit", "returns", "--missing-invoices", "suspense")
