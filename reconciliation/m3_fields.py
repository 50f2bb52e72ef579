"""M3's general-ledger field sizes a voucher must fit, defined once.

The domain builds vouchers within them (``reconciliation.vouchers``, ``reconciliation.mapping``);
the M3 connector checks journal entries and lays out GLS840MI ``I1`` records with them
(``connectors/m3/records.py``, ``connectors/m3/gl_record.py``); the settlement flow fits each
line's text into the voucher text with them.

Why in the domain: the domain imports nothing outside itself, so a fact it shares with the
connectors has to live here. Like ``reconciliation.marketplaces`` this is a pure data module
(no imports, no behaviour); such modules are the one part of the domain connectors may import.
The sandbox M3 keeps its own field dictionary (``sandbox/m3/metadata.py``, what a real M3's
metadata answers) on purpose: an emulator taking its limits from the code under test could not
catch that code exceeding them; ``tests/test_m3_fields.py`` checks the two agree.
"""

from __future__ import annotations

DIVI_LENGTH = 3  # division: A3
CUCD_LENGTH = 3  # currency: A3
AIT_COUNT = 7  # accounting dimensions AIT1..AIT7; AIT1 is the account
AIT_LENGTH = 10  # each AIT: A10
VTXT_LENGTH = 40  # voucher text: A40 (the posting key, then the line's text)
CUAM_LENGTH = 17  # amount: N17, counted as the characters of the formatted amount
MAX_VOUCHER_LINES = 999  # lines per voucher: NLIN is N3
VTCD_LENGTH = 2  # VAT code: N2
CRTP_LENGTH = 2  # exchange rate type: N2
ARAT_LENGTH = 13  # exchange rate: N13, counted as the characters of the formatted rate
