"""Every Amazon marketplace defined once; which marketplace a settlement books to; the
marketplace gate holding what cannot be told (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _flow_runs import settle  # a Failed run's document (a held settlement fails the run)
from _settlement_builders import make_settlement

from connectors.amazon.config import MARKETPLACE_REGIONS
from reconciliation.mapping import UnknownMarketplaceError, load_mapping, marketplace_code
from reconciliation.marketplaces import (
    CURRENCY_DECIMALS,
    MARKETPLACES,
    find_marketplace,
    is_multichannel,
    main_marketplace_name,
    marketplace_by_id,
    resolve_marketplace,
)
from reconciliation.model import currency_decimals, format_amount
from reconciliation.pipeline import GATE_MARKETPLACE, prepare_settlement

# docs/settlement-vocabulary.md §2, as settlement files spell them
NAMES = [
    "Amazon.com",
    "Amazon.ca",
    "Amazon.com.mx",
    "Amazon.com.br",
    "Amazon.co.uk",
    "Amazon.de",
    "Amazon.fr",
    "Amazon.it",
    "Amazon.es",
    "Amazon.nl",
    "Amazon.se",
    "Amazon.pl",
    "Amazon.com.be",
    "Amazon.com.tr",
    "Amazon.ie",
    "Amazon.ae",
    "Amazon.sa",
    "Amazon.eg",
    "Amazon.in",
    "Amazon.co.jp",
    "Amazon.com.au",
    "Amazon.sg",
    "Amazon.co.za",
]
# name -> (GL code, currency, decimals), by hand from ISO 4217 and the presets' US/DE/FR/UK
EXPECTED = {
    "Amazon.com": ("US", "USD", 2),
    "Amazon.ca": ("CA", "CAD", 2),
    "Amazon.com.mx": ("MX", "MXN", 2),
    "Amazon.com.br": ("BR", "BRL", 2),
    "Amazon.co.uk": ("UK", "GBP", 2),
    "Amazon.de": ("DE", "EUR", 2),
    "Amazon.fr": ("FR", "EUR", 2),
    "Amazon.it": ("IT", "EUR", 2),
    "Amazon.es": ("ES", "EUR", 2),
    "Amazon.nl": ("NL", "EUR", 2),
    "Amazon.se": ("SE", "SEK", 2),
    "Amazon.pl": ("PL", "PLN", 2),
    "Amazon.com.be": ("BE", "EUR", 2),
    "Amazon.com.tr": ("TR", "TRY", 2),
    "Amazon.ie": ("IE", "EUR", 2),
    "Amazon.ae": ("AE", "AED", 2),
    "Amazon.sa": ("SA", "SAR", 2),
    "Amazon.eg": ("EG", "EGP", 2),
    "Amazon.in": ("IN", "INR", 2),
    "Amazon.co.jp": ("JP", "JPY", 0),
    "Amazon.com.au": ("AU", "AUD", 2),
    "Amazon.sg": ("SG", "SGD", 2),
    "Amazon.co.za": ("ZA", "ZAR", 2),
}
EUR_MARKETPLACES = "Amazon.de, Amazon.fr, Amazon.it, Amazon.es, Amazon.nl, Amazon.com.be, Amazon.ie"
DE_ID, FR_ID, US_ID, CA_ID = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
UK_ID = "A1F83G8C2ARO7P"
GOLDEN = Path(__file__).parent / "golden" / "categories"


def test_every_marketplace_once_with_code_currency_and_decimals():
    assert sorted(m.name for m in MARKETPLACES) == sorted(NAMES) and len(MARKETPLACES) == len(NAMES)
    assert {m.name: (m.code, m.currency, m.decimals) for m in MARKETPLACES} == EXPECTED
    for attribute in ("name", "marketplace_id", "code"):
        values = [getattr(m, attribute) for m in MARKETPLACES]
        assert len(set(values)) == len(values), attribute


def test_ids_and_regions_agree_with_the_connectors():
    # The connector's id -> region lookup is derived from the table (settings use the same one:
    # tests/test_marketplace_regions_agree.py walks every id through both).
    ours = {m.marketplace_id: m.region.lower() for m in MARKETPLACES}
    assert ours == MARKETPLACE_REGIONS
    assert marketplace_by_id(DE_ID).name == "Amazon.de" and marketplace_by_id("A0000000000000") is None


def test_currency_decimals_come_from_the_table():
    assert CURRENCY_DECIMALS["JPY"] == 0
    assert {c: d for c, d in CURRENCY_DECIMALS.items() if d != 2} == {"JPY": 0}
    assert set(CURRENCY_DECIMALS) == {currency for _, currency, _ in EXPECTED.values()}
    assert currency_decimals("jpy ") == 0 and currency_decimals("XXX") == 2
    assert format_amount(32169, "JPY") == "32169" and format_amount(-32169, "CAD") == "-321.69"


@pytest.mark.parametrize("name", NAMES)
def test_marketplace_code_of_every_name(name):
    assert marketplace_code(name) == EXPECTED[name][0]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Non-Amazon US", "US"),
        ("Non-Amazon UK", "UK"),
        ("Non-Amazon CA", "CA"),
        ("Non-Amazon DE", "DE"),
        ("Non-Amazon GB", "UK"),
        ("SI CA Prod Marketplace", "CA"),
        ("amazon.DE", "DE"),
        (" Amazon.com ", "US"),
    ],
)
def test_multichannel_names_and_spellings(name, code):
    assert marketplace_code(name) == code


def test_multichannel_recognition():
    assert all(is_multichannel(n) for n in ("Non-Amazon", "Non-Amazon US", "NON_AMAZON", "SI CA Prod Marketplace"))
    assert not any(is_multichannel(n) for n in ("Amazon.com", "Amazon.xx", "", "Walmart"))
    assert find_marketplace("Non-Amazon") is None  # no country: the settlement's currency decides


def test_unknown_marketplace_code_is_a_one_line_value_error():
    with pytest.raises(UnknownMarketplaceError, match=r"^unknown marketplace 'Amazon\.xx'$") as caught:
        marketplace_code("Amazon.xx")
    assert isinstance(caught.value, ValueError)


def test_main_marketplace_prefers_amazon_names_over_mcf_and_empty():
    names = pd.Series(["", "Non-Amazon US", "Non-Amazon US", "Non-Amazon US", "Amazon.com", ""], dtype="str")
    assert main_marketplace_name(names) == "Amazon.com"
    assert main_marketplace_name(pd.Series(["", "Non-Amazon UK"], dtype="str")) == "Non-Amazon UK"
    assert main_marketplace_name(pd.Series(["", ""], dtype="str")) == ""
    # an unknown name is kept for the report rather than an MCF name
    assert main_marketplace_name(pd.Series(["Non-Amazon", "Non-Amazon", "Amazon.xx"], dtype="str")) == "Amazon.xx"


def _names(*names: str) -> pd.Series:
    return pd.Series(list(names), dtype="str")


@pytest.mark.parametrize(
    ("names", "currency", "configured", "expected", "decided_by"),
    [
        (("Amazon.com", "Non-Amazon US", "", "Amazon.com"), "USD", (), "Amazon.com", "rows"),
        (("", "Amazon.de", "Amazon.fr", "Amazon.de"), "EUR", (), "Amazon.de", "rows"),
        (("Non-Amazon UK", "Non-Amazon UK"), "GBP", (), "Amazon.co.uk", "multi-channel rows"),
        (("Non-Amazon US", "Non-Amazon CA"), "CAD", (), "Amazon.ca", "multi-channel rows"),
        (("Non-Amazon", ""), "USD", (), "Amazon.com", "currency"),
        (("", "", "", "", ""), "CAD", (), "Amazon.ca", "currency"),
        (("",), "JPY", (), "Amazon.co.jp", "currency"),
        (("",), "GBP", (), "Amazon.co.uk", "currency"),
        (("",), "USD", (), "Amazon.com", "currency"),
        (("",), "EUR", (US_ID, FR_ID), "Amazon.fr", "configuration"),
        (("",), "CAD", (US_ID, CA_ID), "Amazon.ca", "configuration"),
        (("",), "USD", (DE_ID,), "Amazon.com", "currency"),  # configured ids outside the currency: the currency decides
    ],
)
def test_resolution(names, currency, configured, expected, decided_by):
    resolution = resolve_marketplace(_names(*names), currency, configured)
    assert (resolution.marketplace.name, resolution.decided_by, resolution.problem) == (expected, decided_by, "")
    assert not resolution.held


def test_ambiguous_currency_is_held_with_what_to_configure():
    resolution = resolve_marketplace(_names("", ""), "EUR")
    assert resolution.held and resolution.marketplace is None
    assert resolution.problem == (
        f"no marketplace-name on any row and EUR is used by {EUR_MARKETPLACES}; set [amazon] marketplaces in "
        'config.toml to this seller account\'s marketplace ids (e.g. "A1PA6795UKMFR9" for Amazon.de) so the '
        "marketplace can be told"
    )


def test_configured_marketplaces_that_share_the_currency_are_held():
    resolution = resolve_marketplace(_names(""), "EUR", (DE_ID, FR_ID, US_ID))
    assert resolution.held and resolution.marketplace is None
    assert resolution.problem.startswith(
        "no marketplace-name on any row and the configured marketplaces "
        "Amazon.de, Amazon.fr all settle in EUR: cannot tell which one"
    )


def test_currency_no_marketplace_uses_is_held():
    resolution = resolve_marketplace(_names(""), "CHF", ("NOT-AN-ID",))
    assert resolution.problem == (
        "no marketplace-name on any row and no Amazon marketplace settles in CHF "
        "(configured id(s) 'NOT-AN-ID' are not Amazon marketplace ids); nothing is "
        "posted for this settlement"
    )


def test_mcf_rows_without_a_country_and_an_ambiguous_currency_are_held():
    resolution = resolve_marketplace(_names("Non-Amazon", "Non-Amazon"), "EUR")
    assert resolution.held
    assert resolution.problem.startswith("only multi-channel rows ('Non-Amazon') and EUR is used by Amazon.de")


def test_unknown_name_is_a_reported_fact():
    alone = resolve_marketplace(_names("Amazon.xx", "Amazon.xx", ""), "USD")
    assert alone.held and alone.marketplace is None and alone.unknown_names == (("Amazon.xx", 2),)
    assert alone.problem == (
        "unknown marketplace-name 'Amazon.xx' (2 lines): not an Amazon marketplace or "
        "multi-channel name this version knows; nothing is posted for this settlement"
    )
    beside = resolve_marketplace(_names("Amazon.com", "Amazon.com", "Amazon.xx"), "USD")
    assert beside.held and beside.marketplace.name == "Amazon.com"
    assert "'Amazon.xx' (1 line)" in beside.problem


# --- the marketplace stage of prepare_settlement -------------------------------------------

# The real CA file's shape (docs/settlement-vocabulary.md §2): account-level rows only, no
# marketplace-name on any row. Amounts chosen here; they sum to -321.69 CAD like the real one.
CA_ROWS = [
    ("Subscription Fee", "other-transaction", "Subscription Fee", -3999, "2024-10-10"),
    ("Inbound Transportation Fee", "ShipmentFees", "FBA transportation fee", -15000, "2024-10-11"),
    ("other-transaction", "other-transaction", "Storage Fee", -9870, "2024-10-12"),
    ("other-transaction", "other-transaction", "Storage Fee", -3300, "2024-10-13"),
    ("Successful charge", "other-transaction", "Successful charge", 0, "2024-10-14"),
]


def test_settlement_without_marketplace_names_takes_it_from_the_currency():
    settlement = make_settlement(CA_ROWS, currency="CAD", marketplace="")
    assert settlement.total_minor == -32169
    prepared = prepare_settlement(settlement, load_mapping())
    assert not prepared.held, prepared.reasons
    assert prepared.settlement.marketplace == "Amazon.ca" and settlement.marketplace == ""  # a new record
    assert prepared.marketplace.decided_by == "currency"
    assert set(prepared.mapped.lines["ait3"]) == {"CA"}
    [voucher] = prepared.gates.vouchers
    # 4050 inbound transport (landed cost) 150.00, 6150 subscription 39.99, 6160 storage
    # 98.70 + 33.00 = 131.70; the seller owes Amazon 321.69: a credit on 2450 payable to Amazon.
    assert [(l.account, l.dimensions[1], l.amount_minor) for l in voucher.lines] == [
        ("4050", "CA", 15000),
        ("6150", "CA", 3999),
        ("6160", "CA", 13170),
        ("2450", "CA", -32169),
    ]
    assert voucher.text.startswith(f"{voucher.key} Amazon CA CAD")


def test_ambiguous_settlement_is_held_by_the_marketplace_gate_not_a_traceback():
    settlement = make_settlement(CA_ROWS, currency="EUR", marketplace="")
    prepared = prepare_settlement(settlement, load_mapping())
    assert prepared.held and prepared.gates.vouchers == ()
    assert [f.gate for f in prepared.gates.failures] == [GATE_MARKETPLACE]
    assert prepared.reasons[0].startswith(f"no marketplace-name on any row and EUR is used by {EUR_MARKETPLACES}")
    assert prepared.settlement.marketplace == ""
    # the other stages still ran: every line is mapped, with the marketplace left open
    assert prepared.mapped.complete and set(prepared.mapped.lines["ait3"]) == {"??"}
    # the account's configuration settles it
    configured = prepare_settlement(settlement, load_mapping(), configured_marketplaces=(US_ID, FR_ID))
    assert not configured.held and configured.settlement.marketplace == "Amazon.fr"
    assert set(configured.mapped.lines["ait3"]) == {"FR"}


def test_unknown_marketplace_name_holds_and_other_gates_still_report():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1000, "2024-10-18"),
            ("Order", "ItemFees", "BrandNewFee", -100, "2024-10-18"),
        ],
        marketplace="Amazon.xx",
    )
    prepared = prepare_settlement(settlement, load_mapping())
    assert prepared.held
    assert [f.gate for f in prepared.gates.failures] == [GATE_MARKETPLACE, "mapping"]
    assert "unknown marketplace-name 'Amazon.xx' (2 lines)" in prepared.reasons[0]
    assert prepared.settlement.marketplace == "Amazon.xx"  # reported as the file spells it


def test_multichannel_only_settlement_books_to_its_country():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 0, "2024-10-18"),
            ("Order", "ItemFees", "FBAPerUnitFulfillmentFee", -1011, "2024-10-18"),
        ],
        marketplace="Non-Amazon UK",
        currency="GBP",
    )
    prepared = prepare_settlement(settlement, load_mapping())
    assert not prepared.held, prepared.reasons
    assert prepared.settlement.marketplace == "Amazon.co.uk"
    [voucher] = prepared.gates.vouchers
    # UK fees include 20 % VAT (the shipped UK tax profile): 10.11 x 0.20 / 1.20 = 1.685 -> 1.69
    # (half up) input VAT on 2640, 8.42 fulfilment expense.
    assert [(l.account, l.dimensions[1], l.amount_minor) for l in voucher.lines] == [
        ("2640", "UK", 169),
        ("6120", "UK", 842),
        ("2450", "UK", -1011),
    ]


def test_jpy_settlement_has_no_decimals():
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1980, "2024-10-18"),
            ("Order", "ItemFees", "Commission", -198, "2024-10-18"),
        ],
        marketplace="Amazon.co.jp",
        currency="JPY",
    )
    prepared = prepare_settlement(settlement, load_mapping())
    assert not prepared.held and prepared.settlement.decimals == 0
    [voucher] = prepared.gates.vouchers
    assert voucher.decimals == 0
    # JP fees include 10 % consumption tax (shipped JP profile), in whole yen:
    # 198 x 0.10 / 1.10 = 18 input tax (2640), 180 commission.
    assert [(l.account, l.dimensions[1], l.amount_minor) for l in voucher.lines] == [
        ("1510", "JP", -1980),
        ("2640", "JP", 18),
        ("6110", "JP", 180),
        ("1930", "JP", 1782),
    ]


def test_flow_places_settlements_by_currency_and_configuration_and_holds_the_rest(
    prefect_api_url: str, tmp_path: Path
) -> None:
    """One dry run through the flow: the CA file (no marketplace-name, CAD) books to Amazon.ca by
    its currency; the same rows in EUR book to Amazon.fr because config.toml lists Amazon.co.uk
    and Amazon.fr, one EUR marketplace; in CHF they are held with the reason, and the run goes on."""
    from flows.contract import exit_code

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[amazon]\nrefresh_token = "t"\nlwa_app_id = "a"\nlwa_client_secret = "s"\n'
        f'marketplaces = ["{UK_ID}", "{FR_ID}"]\n',
        encoding="utf-8",
    )
    ca = (GOLDEN / "ca_v2_account_level_no_marketplace.tsv").read_text(encoding="utf-8")
    files = [str(GOLDEN / "ca_v2_account_level_no_marketplace.tsv")]
    for currency, settlement_id in (("EUR", "40000000014"), ("CHF", "40000000024")):
        path = tmp_path / f"{currency}.tsv"
        path.write_text(
            ca.replace("\tCAD\t", f"\t{currency}\t").replace("40000000004", settlement_id), encoding="utf-8"
        )
        files.append(str(path))
    document = settle(files=files, dry_run=True, home=str(home), report=str(tmp_path / "r.xlsx"))

    entries = {e["settlement_id"]: e for e in document["settlements"]}
    assert {k: (e["currency"], e["marketplace"], e["status"]) for k, e in entries.items()} == {
        "40000000004": ("CAD", "Amazon.ca", "dry_run"),
        "40000000014": ("EUR", "Amazon.fr", "dry_run"),
        "40000000024": ("CHF", "", "held"),
    }
    assert entries["40000000024"]["reasons"][0].startswith(
        "no marketplace-name on any row and no Amazon marketplace settles in CHF"
    )
    assert entries["40000000004"]["total_amount"] == "-321.69"
    assert exit_code(document) == 3
