"""Credit notes (issue #14): refunds on Amazon become M3 return orders, once (``sync/credits.py``,
``flows/refunds.py``, ``m3sync refunds``), against the embedded M3 sandbox over HTTP.

Expected amounts are worked by hand from the rows written here: an order of 3 × A10001 at 10.00
less a 3.00 promotion (net 27.00) with 4.99 shipping; Amazon refunds 2 of the 3 units (principal
20.00, promotion taken back 2.00) and the shipping: the credit is 18.00 + 4.99 = 22.99 USD (US:
no VAT in the sandbox M3).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _cli import m3sync
from _flow_artifacts import flow_run_artifacts
from _settlement_builders import V2_HEADER, lines_frame

from connectors.m3 import M3TransactionError, M3Unavailable, OrderLineRequest, OrderRequest
from flows.connections import Connections, open_connections
from flows.orders_steps import ORDER_ID_KIND
from sync.credits import (
    CREDIT_ID_KIND,
    AmazonRefund,
    CreditLine,
    CreditRefused,
    M3OrderLine,
    PlannedCredit,
    RefundedItem,
    plan_credit,
    refunds_of,
)
from sync.routing import load_routing

D = Decimal
ROUTING = load_routing(None)  # the shipped routing: SKUs map to themselves, shipping item FREIGHT
SYNCED, PARTLY, NOT_SYNCED, BAD_SKU = (
    "111-5000000-0000001",
    "111-5000000-0000002",
    "111-5000000-0000003",
    "111-5000000-0000004",
)
ADJUSTMENT = "amzn1:crow:ABCDEFGHIJKLMNOPQRSTUV"  # 33 characters: YREF keeps the first 30


def _refund(*items: RefundedItem, key: str = "K1", order_id: str = "O1") -> AmazonRefund:
    return AmazonRefund(order_id, key, date(2026, 11, 20), "Amazon.com", "USD", items)


# ---- planning, golden cases worked by hand -------------------------------------------------------


def test_two_units_of_three_return_at_the_original_price_with_the_promotion_in_proportion() -> None:
    # Ordered 3 × 10.00 less 3.00 promotion (NLAM 27.00); refunded 20.00 less 2.00 promotion.
    lines = [M3OrderLine("A10001", D(3), D("10.00"), D("27.00"))]
    plan = plan_credit(_refund(RefundedItem("A10001", D("20.00"), D("2.00"))), lines, [], ROUTING)
    assert plan == PlannedCredit("O1", "K1", "K1", (CreditLine("A10001", D(-2), D("10.00"), D("2.00")),))
    assert plan.total == D("18.00")


def test_a_whole_return_at_a_rounded_up_unit_price_equals_the_refund() -> None:
    # Amazon's 10.00 for 3 pieces: SAPR 3.34 (rounded up), DIA1 0.02, NLAM 10.00. The refund of
    # the 10.00 is the 3 pieces: 3 × 3.34 less 0.02 = 10.00.
    lines = [M3OrderLine("A10001", D(3), D("3.34"), D("10.00"))]
    plan = plan_credit(_refund(RefundedItem("A10001", D("10.00"))), lines, [], ROUTING)
    assert isinstance(plan, PlannedCredit)
    assert plan.lines == (CreditLine("A10001", D(-3), D("3.34"), D("0.02")),) and plan.total == D("10.00")


def test_a_partial_refund_is_one_returned_piece_at_the_refunded_amount() -> None:
    lines = [M3OrderLine("A10001", D(1), D("12.99"), D("12.99"))]
    plan = plan_credit(_refund(RefundedItem("A10001", D("5.00"))), lines, [], ROUTING)
    assert isinstance(plan, PlannedCredit)
    assert plan.lines == (CreditLine("A10001", D(-1), D("5.00")),) and plan.total == D("5.00")


def test_refunded_shipping_is_a_negative_line_of_the_shipping_item_less_its_promotion() -> None:
    lines = [M3OrderLine("A10001", D(1), D("12.99"), D("12.99")), M3OrderLine("FREIGHT", D(1), D("4.99"), D("3.99"))]
    refund = _refund(RefundedItem("A10001", D("12.99"), shipping=D("4.99"), shipping_promotion=D("1.00")))
    plan = plan_credit(refund, lines, [], ROUTING)
    assert isinstance(plan, PlannedCredit)
    assert plan.lines == (
        CreditLine("A10001", D(-1), D("12.99")),
        CreditLine("FREIGHT", D(-1), D("4.99"), D("1.00")),
    )
    assert plan.total == D("16.98")  # 12.99 + 4.99 - 1.00


def test_a_restocking_fee_makes_the_returned_units_credit_smaller_and_goodwill_is_one_more_piece() -> None:
    # 2 × 12.99 ordered (25.98): both units back, 2.60 restocking fee kept -> 25.98 - 2.60 = 23.38
    # (discount 2.60); then a goodwill of 2.60 alone on the same order: one piece at 2.60.
    lines = [M3OrderLine("A10001", D(2), D("12.99"), D("25.98"))]
    refund = _refund(RefundedItem("A10001", D("25.98"), restocking_fee=D("2.60")))
    plan = plan_credit(refund, lines, [], ROUTING)
    assert isinstance(plan, PlannedCredit) and plan.lines == (CreditLine("A10001", D(-2), D("12.99"), D("2.60")),)
    assert plan.total == refund.total == D("23.38")
    goodwill = plan_credit(_refund(RefundedItem("A10001", goodwill=D("2.60")), key="K2"), lines, [plan.lines], ROUTING)
    assert isinstance(goodwill, PlannedCredit) and goodwill.lines == (CreditLine("A10001", D(-1), D("2.60")),)
    # 23.38 + 2.60 = 25.98 credited of 25.98: a further 0.01 is more than invoiced.
    rest = [plan.lines, goodwill.lines]
    over = plan_credit(_refund(RefundedItem("A10001", goodwill=D("0.01")), key="K3"), lines, rest, ROUTING)
    assert isinstance(over, CreditRefused) and "more refunded than invoiced" in over.reason


def test_a_sku_the_order_lacks_and_more_refunded_than_invoiced_are_reasons() -> None:
    lines = [M3OrderLine("A10001", D(2), D("12.99"), D("25.98"))]
    unknown = plan_credit(_refund(RefundedItem("NO-SUCH-SKU", D("5.00"))), lines, [], ROUTING)
    assert unknown == CreditRefused("O1", "K1", "refund K1: SKU not on the M3 order: NO-SUCH-SKU (item NO-SUCH-SKU)")
    over = plan_credit(_refund(RefundedItem("A10001", D("30.00"))), lines, [], ROUTING)
    assert isinstance(over, CreditRefused) and not over.duplicate
    assert over.reason == (
        "refund K1: more refunded than invoiced: SKU A10001: refunds 30.00, M3 invoiced 25.98 and credited 0 before"
    )
    # One unit credited before (12.99): a second refund of 12.99 fits, a third does not.
    earlier = [(CreditLine("A10001", D(-1), D("12.99")),)]
    assert isinstance(plan_credit(_refund(RefundedItem("A10001", D("12.99"))), lines, earlier, ROUTING), PlannedCredit)
    again = earlier * 2
    repeated = plan_credit(_refund(RefundedItem("A10001", D("12.99")), key="K3"), lines, again, ROUTING)
    assert isinstance(repeated, CreditRefused) and repeated.duplicate  # the same lines, credited already


def test_a_duplicated_refund_row_counts_once_and_a_refund_without_adjustment_id_is_keyed_by_order_date_sku() -> None:
    def row(
        amount_type: str, description: str, amount: int, adjustment: str, sku: str = "A10001", hour: int = 10
    ) -> dict:
        return {
            "transaction_type": "Refund",
            "amount_type": amount_type,
            "amount_description": description,
            "amount_minor": amount,
            "posted_date": f"2026-11-20 {hour}:00:00",
            "order_id": "O1",
            "adjustment_id": adjustment,
            "sku": sku,
            "order_item_code": "11111",
        }

    lines = lines_frame(
        [
            row("ItemPrice", "Principal", -2000, "AAA-TWIN", hour=12),  # Amazon repeating ADJ1 later
            row("ItemPrice", "Principal", -2000, "ADJ1"),
            row("ItemPrice", "Principal", -2000, "ADJ1"),  # the same row again
            row("Promotion", "Principal", 200, "ADJ1"),
            row("ItemPrice", "Tax", -160, "ADJ1"),  # tax: M3 computes the credit note's own
            row("ItemFees", "Commission", 300, "ADJ1"),  # fees are not the buyer's money
            row("ItemPrice", "Principal", -500, "", sku="A10002"),
            row("ItemPrice", "Shipping", -499, "", sku="A10002"),
            row("ItemPrice", "RestockingFee", 100, "", sku="A10002"),
            row("ItemPrice", "Goodwill", -250, "", sku="A10002"),
        ]
    )
    refunds = refunds_of(lines, "USD", "S1")
    assert [(r.key, r.items) for r in refunds] == [
        ("ADJ1", (RefundedItem("A10001", D("20.00"), D("2.00")),)),
        (
            "O1-20261120-A10002",
            (RefundedItem("A10002", D("5.00"), shipping=D("4.99"), restocking_fee=D("1.00"), goodwill=D("2.50")),),
        ),
        ("AAA-TWIN", (RefundedItem("A10001", D("20.00")),)),  # posted last: the one found a duplicate
    ]
    assert refunds[0].total == D("18.00") and refunds[1].total == D("11.49")  # 5.00 - 1.00 + 2.50 + 4.99
    assert AmazonRefund.from_json(refunds[0].to_json()) == refunds[0]  # the dead letter's payload replays it


def test_the_routing_names_each_marketplaces_return_order_type_default_ret() -> None:
    from sync.routing import RoutingSettingsError, parse_routing

    def routing(**us: object) -> dict:
        body = {
            "customer": "AMZUS",
            "currency": "USD",
            "facility": "100",
            "mfn": {"warehouse": "100", "order_type": "AMZ"},
            "afn": "skip",
        }
        return {"company_time_zone": "UTC", "shipping_item": "FREIGHT", "marketplaces": {"US": {**body, **us}}}

    us = "ATVPDKIKX0DER"
    assert parse_routing(routing(), "r.yaml").marketplaces[us].return_order_type == "RET"
    assert parse_routing(routing(return_order_type="RTN"), "r.yaml").marketplaces[us].return_order_type == "RTN"
    # Order sync leaves every marketplace's return orders out when it looks an order up by CUOR.
    assert parse_routing(routing(return_order_type="RTN"), "r.yaml").return_order_types == {"RTN", "RET"}
    with pytest.raises(RoutingSettingsError, match=r"^r\.yaml: marketplaces\.US\.return_order_type: 'RETURN' is 6"):
        parse_routing(routing(return_order_type="RETURN"), "r.yaml")
    assert ROUTING.route(us) is not None and ROUTING.route(us).return_order_type == "RET"  # the shipped file


# ---- end to end against the sandbox M3 -----------------------------------------------------------


def _settlement_file(path: Path, *refund_rows: tuple[str, str, str, str, str, str]) -> Path:
    """A V2 flat file: the sales of SYNCED (3 × 10.00 less 3.00, shipping 4.99) and PARTLY (30.00),
    and the refund rows (order, adjustment id, SKU, amount type, description, amount)."""
    summary = ["55500000001", "2026-11-10 00:00:00 UTC", "2026-11-24 00:00:00 UTC", "2026-11-26 00:00:00 UTC"]
    rows = []

    def row(kind: str, order: str, adjustment: str, sku: str, amount_type: str, description: str, amount: str) -> None:
        rows.append(
            [
                "55500000001",
                "",
                "",
                "",
                "",
                "",
                kind,
                order,
                order,
                adjustment,
                "",
                "Amazon.com",
                amount_type,
                description,
                amount,
                "MFN",
                "2026-11-20",
                "2026-11-20 10:00:00 UTC",
                "",
                "",
                "",
                sku,
                "" if kind == "Refund" else "1",
                "",
            ]  # fmt: skip
        )

    row("Order", SYNCED, "", "A10001", "ItemPrice", "Principal", "30.00")
    row("Order", SYNCED, "", "A10001", "Promotion", "Principal", "-3.00")
    row("Order", SYNCED, "", "A10001", "ItemPrice", "Shipping", "4.99")
    row("Order", PARTLY, "", "A10002", "ItemPrice", "Principal", "30.00")
    for refund in refund_rows:
        row("Refund", *refund)
    total = sum((Decimal(r[14]) for r in rows), Decimal(0))
    head = [*summary, f"{total}", "USD", *[""] * 18]
    text = "\n".join("\t".join(r) for r in [V2_HEADER.split("\t"), head, *rows]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


REFUND_ROWS = (
    (SYNCED, ADJUSTMENT, "A10001", "ItemPrice", "Principal", "-20.00"),
    (SYNCED, ADJUSTMENT, "A10001", "Promotion", "Principal", "2.00"),
    (SYNCED, ADJUSTMENT, "A10001", "ItemPrice", "Shipping", "-4.99"),
    (PARTLY, "", "A10002", "ItemPrice", "Principal", "-5.00"),  # partial, no adjustment id
    (NOT_SYNCED, "ADJ-NOT-SYNCED", "A10001", "ItemPrice", "Principal", "-10.00"),
)


def _sales_order(connections: Connections, order_id: str, *lines: OrderLineRequest) -> str:
    """An order as order sync leaves it (in M3 and the id map), invoiced through the sandbox admin."""
    m3 = connections.require_m3()
    orno = m3.create_order(OrderRequest(cuno="AMZUS", customer_order_ref=order_id, order_type="AMZ", lines=lines)).orno
    connections.state.map_id(ORDER_ID_KIND, order_id, orno, "US")
    connections.sandbox_env.advance_m3_order(orno, "invoice")
    return orno


def _return_orders(connections: Connections) -> list[dict[str, str]]:
    heads = connections.require_m3().client.execute("OIS100MI", "LstHead", {"CUNO": "AMZUS"}, maxrecs=0)
    return [h for h in heads if h["ORTP"] == "RET"]


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_refunds_become_credit_notes_once_even_when_m3_answer_is_lost(
    prefect_api_url: str, tmp_path: Path, profile: str
) -> None:
    from flows.refunds import refund_credit
    from flows.refunds_steps import credit_refund, refunds_in
    from flows.settlement_steps import read_files
    from reconciliation.matching import reconcile_orders
    from reconciliation.parse import read_settlement_file

    with open_connections(tmp_path, sandbox=True, orders=20):
        pass
    if profile == "cloudsuite":
        ionapi = tmp_path / "sandbox" / "m3.ionapi"
        (tmp_path / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "cloudsuite"\n', encoding="utf-8")
    settlement = _settlement_file(tmp_path / "settlement.txt", *REFUND_ROWS)
    with open_connections(tmp_path, sandbox=True) as connections:
        assert connections.m3_profile == profile
        m3 = connections.require_m3()
        synced = _sales_order(
            connections,
            SYNCED,
            OrderLineRequest(itno="A10001", quantity=3, unit_price=D("10.00"), discount=D("3.00")),
            OrderLineRequest(itno="FREIGHT", quantity=1, unit_price=D("4.99")),
        )
        partly = _sales_order(connections, PARTLY, OrderLineRequest(itno="A10002", quantity=1, unit_price=D("30.00")))
        [stock_before] = m3.read_balances("100", ["A10001"])

        # M3 commits the credit's write and the connection drops: nothing recorded, the run would stop.
        faults = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"
        write = "OIS100MI/AddLine" if profile == "brief" else "OIS100MI/Confirm"
        assert httpx.post(faults, json={"drop_after_commit": 1, "transactions": [write]}, timeout=20).is_success
        first = refunds_in(read_files.fn([str(settlement)]))[0]
        assert first.key == ADJUSTMENT
        with pytest.raises(M3Unavailable):
            credit_refund(connections, ROUTING, first)
        httpx.delete(faults, timeout=20)
        assert connections.state.m3_id_for(CREDIT_ID_KIND, ADJUSTMENT) is None
        assert len(_return_orders(connections)) == 1  # M3 did create it

    document = refund_credit(files=[str(settlement)], sandbox=True, home=str(tmp_path))
    by_order = {
        e["amazon_order_id"]: e for outcome in ("credited", "already_in_m3", "not_synced") for e in document[outcome]
    }
    assert document["counts"] == {
        "credited": 1,
        "already_in_m3": 1,
        "duplicate": 0,
        "not_synced": 1,
        "dead_lettered": 0,
        "unreadable": 0,
    }
    assert [e["amazon_order_id"] for e in document["already_in_m3"]] == [SYNCED]  # found in M3, recorded
    assert [e["amazon_order_id"] for e in document["credited"]] == [PARTLY]
    assert [e["amazon_order_id"] for e in document["not_synced"]] == [NOT_SYNCED]
    assert (by_order[SYNCED]["amount"], by_order[PARTLY]["amount"]) == ("22.99", "5.00")

    rerun = refund_credit(files=[str(settlement)], sandbox=True, home=str(tmp_path))
    assert rerun["counts"]["credited"] == 0 and rerun["counts"]["already_in_m3"] == 2

    with open_connections(tmp_path, sandbox=True) as connections:
        m3 = connections.require_m3()
        returns = _return_orders(connections)
        assert sorted(h["CUOR"] for h in returns) == [SYNCED, PARTLY]  # one return order per refund, not two
        credit_of = {h["CUOR"]: h["ORNO"] for h in returns}
        assert (
            credit_of[SYNCED] == by_order[SYNCED]["m3_order"] == connections.state.m3_id_for(CREDIT_ID_KIND, ADJUSTMENT)
        )
        head = m3.get_order(credit_of[SYNCED])
        assert (head.order_type, head.your_reference) == ("RET", ADJUSTMENT[:30])
        # The "is this Amazon order in M3" lookup finds the sales orders, never a return order:
        # not even one whose Amazon order M3 has no sales order for.
        stray = OrderRequest(
            cuno="AMZUS",
            customer_order_ref=NOT_SYNCED,
            order_type="RET",
            lines=(OrderLineRequest(itno="A10001", quantity=-1, unit_price=D("10.00"), returned=True),),
        )
        m3.create_credit_order(stray)
        assert m3.orders_by_reference("AMZUS") == {SYNCED: synced, PARTLY: partly}

        # The sandbox delivers (receives) and invoices the return orders: the credit notes.
        for orno in credit_of.values():
            connections.sandbox_env.advance_m3_order(orno, "invoice")
        [note] = m3.list_invoices_for_order(credit_of[SYNCED])
        assert (note.gross, note.net, note.tax, note.cuor) == (D("-22.99"), D("-22.99"), D(0), SYNCED)
        [partial_note] = m3.list_invoices_for_order(credit_of[PARTLY])
        assert (partial_note.gross, partial_note.cuor) == (D("-5.00"), PARTLY)
        [stock_after] = m3.read_balances("100", ["A10001"])
        assert stock_after.on_hand == stock_before.on_hand + 2  # the two returned units are back
        assert [d.tracking for d in m3.delivery_tracking(credit_of[SYNCED])] == [""]  # a receipt, not a shipment

        # The settlement now finds both refunds credited.
        parsed = read_settlement_file(settlement)
        [read] = parsed.settlements
        invoices = [inv for orno in (synced, partly, *credit_of.values()) for inv in m3.list_invoices_for_order(orno)]
        from flows.settlement_steps import invoices_frame

        result = reconcile_orders(read.lines, invoices_frame(invoices, read, set()))
        categories = dict(zip(result.orders["order_id"], result.orders["category"], strict=True))
        assert categories[SYNCED] == "matched" and categories[PARTLY] == "matched"
        assert categories[NOT_SYNCED] == "refund_without_credit"  # as before: never synced


def test_m3sync_refunds_dead_letters_a_refund_it_cannot_credit_and_replays_it(prefect_api_url: str, tmp_path: Path):
    """The command: a refund of an SKU the M3 order lacks is a dead letter (exit 3, no buyer data),
    the other is credited; ``deadletters replay`` runs the same code and fails again the same way."""
    from connectors.settings import ConfigurationError
    from flows.dead_letters import replay_letters
    from flows.exit_codes import EXIT_INVALID
    from flows.failures import RunFailed
    from flows.refunds import refund_credit

    with open_connections(tmp_path, sandbox=True, orders=20) as connections:
        _sales_order(connections, PARTLY, OrderLineRequest(itno="A10002", quantity=1, unit_price=D("30.00")))
        _sales_order(connections, BAD_SKU, OrderLineRequest(itno="A10002", quantity=1, unit_price=D("30.00")))
        # The sandbox M3: a return order's lines take negative quantities only, other orders positive only.
        client = connections.require_m3().client
        for ortp, quantity, message in (
            ("RET", "1", "a return order's quantity must be less than zero"),
            ("AMZ", "-1", "ordered quantity must be greater than zero"),
        ):
            [head] = client.execute("OIS100MI", "AddHead", {"CUNO": "AMZUS", "ORTP": ortp})
            with pytest.raises(M3TransactionError, match=message):
                client.execute("OIS100MI", "AddLine", {"ORNO": head["ORNO"], "ITNO": "A10001", "ORQT": quantity})
    settlement = _settlement_file(
        tmp_path / "settlement.txt",
        (PARTLY, "ADJ-PARTLY", "A10002", "ItemPrice", "Principal", "-30.00"),
        (BAD_SKU, "ADJ-BAD", "A10001", "ItemPrice", "Principal", "-10.00"),
    )
    run = m3sync(
        "refunds", "--file", str(settlement), "--sandbox", "--json", "--home", str(tmp_path), api_url=prefect_api_url
    )
    assert run.code == 3, run.stderr
    assert run.document["counts"]["credited"] == 1 and run.document["counts"]["dead_lettered"] == 1
    [letter_entry] = run.document["dead_lettered"]
    assert letter_entry["reason"] == "refund ADJ-BAD: SKU not on the M3 order: A10001 (item A10001)"
    assert run.stderr.strip() == (
        f"m3sync: 1 of 2 refunds dead-lettered: {BAD_SKU} (SKU not on the M3 order: A10001 (item A10001))"
    )
    for files, from_amazon in (([], False), ([str(settlement)], True)):
        with pytest.raises(ConfigurationError, match="needs settlement files or from_amazon"):
            refund_credit(files=files, from_amazon=from_amazon, sandbox=True, home=str(tmp_path))
    # An unreadable file: one line naming file, line and column, exit 2; nothing of it credited.
    bad = tmp_path / "bad.txt"
    bad.write_text(settlement.read_text(encoding="utf-8").replace("-10.00", "-ten"), encoding="utf-8")
    state = refund_credit(files=[str(bad)], sandbox=True, home=str(tmp_path), return_state=True)
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, RunFailed) and failed.exit_code == EXIT_INVALID
    assert state.message == (  # line 8, column 15 (amount): the BAD_SKU refund's row
        "1 settlement file(s) unreadable: bad.txt:8:15: amount '-ten' is not a number (this file uses decimal dot, "
        "e.g. 1234.56)"
    )
    assert failed.document["counts"]["unreadable"] == 1 and failed.document["counts"]["credited"] == 0
    with open_connections(tmp_path, sandbox=True) as connections:
        [letter] = connections.state.list_dead_letters("refunds")
        assert (letter.entity, letter.entity_key, letter.payload["amazon_order_id"]) == ("credit", "ADJ-BAD", BAD_SKU)
        [replayed] = replay_letters(connections, [letter])
        assert (replayed.status, replayed.detail) == ("failed", letter_entry["reason"])
        [again] = connections.state.list_dead_letters("refunds")
        assert again.attempts == 2

        # brief: M3 commits the return order's head and the answer is lost; the next attempt finds a
        # head without lines and keeps the refund for a person instead of calling it credited.
        from flows.refunds_steps import credit_refund

        refund = AmazonRefund(
            BAD_SKU, "ADJ-HEAD", date(2026, 11, 21), "Amazon.com", "USD", (RefundedItem("A10002", D("1.00")),)
        )
        faults = f"{connections.sandbox_env.m3.base_url}/sandbox/faults"
        assert httpx.post(
            faults, json={"drop_after_commit": 1, "transactions": ["OIS100MI/AddHead"]}, timeout=20
        ).is_success
        with pytest.raises(M3Unavailable):
            credit_refund(connections, ROUTING, refund)
        httpx.delete(faults, timeout=20)
        [head] = [h for h in _return_orders(connections) if h["CUOR"] == BAD_SKU]  # created, without lines
        result = credit_refund(connections, ROUTING, refund)
        assert (result.outcome, result.reason) == (
            "dead_lettered",
            f"refund ADJ-HEAD: return order {head['ORNO']} in M3 has no lines (an earlier attempt stopped after its "
            "head): add them in M3, or delete it and replay",
        )
        assert connections.state.m3_id_for(CREDIT_ID_KIND, "ADJ-HEAD") is None

    # Each run leaves its artifacts (keys end in the sandbox environment): the bad file's run
    # counts the unreadable file and dead-lettered nothing; the settlement read again finds the
    # credited refund in M3 and dead-letters the other once more, named in the table.
    unreadable = flow_run_artifacts(state.state_details.flow_run_id)
    assert unreadable["refund-credit-summary-sandbox"] == _refund_summary(unreadable=1)
    assert unreadable["refund-credit-dead-letters-sandbox"] == [{"order": "", "reason": "no refund was dead-lettered"}]
    again_state = refund_credit(files=[str(settlement)], sandbox=True, home=str(tmp_path), return_state=True)
    artifacts = flow_run_artifacts(again_state.state_details.flow_run_id)
    assert artifacts == {
        "refund-credit-summary-sandbox": _refund_summary(already_in_m3=1, dead_lettered=1),
        "refund-credit-dead-letters-sandbox": [{"order": BAD_SKU, "reason": letter_entry["reason"]}],
    }


def _refund_summary(*, already_in_m3: int = 0, dead_lettered: int = 0, unreadable: int = 0) -> str:
    return (
        "# Amazon refunds into M3 credit notes\n\n| | count |\n|---|---|\n"
        "| credited (return order made in M3) | 0 |\n"
        f"| already in M3 | {already_in_m3} |\n"
        "| duplicate (a refund Amazon repeated) | 0 |\n"
        "| not synced (order not created by order sync) | 0 |\n"
        f"| dead-lettered | {dead_lettered} |\n"
        f"| settlement files unreadable | {unreadable} |\n"
    )


def test_the_worlds_refunds_of_synced_orders_are_credited_as_the_generator_credits_them(
    prefect_api_url: str, tmp_path: Path
) -> None:
    """What the demo will run: order sync, M3 invoices, refund credit from Amazon's settlement
    reports, M3 invoices the return orders, and the settlements then find no refund without
    credit. Expected: the generator's own credit notes (``World.m3_credit_notes``: one per refund,
    net = principal + shipping - promotions) and its injected duplicated refunds."""
    import json

    from flows.contract import run_document

    ORDERS = 24  # enough for a few refunds and both of the world's duplicated refunds
    from flows.orders import order_sync
    from flows.refunds import refund_credit
    from flows.settlement import settlement_reconciliation

    def invoice_every_order() -> None:  # the sandbox M3's admin "advance" to 77 (invoiced)
        with open_connections(tmp_path, sandbox=True) as connections:
            advance = f"{connections.sandbox_env.m3.base_url}/sandbox/advance"
            assert httpx.post(advance, json={"to": "77"}, timeout=120).is_success

    with open_connections(tmp_path, sandbox=True, orders=ORDERS) as connections:
        world = connections.sandbox_env.world()
    start = json.loads((tmp_path / "sandbox" / "world.json").read_text(encoding="utf-8"))["start"]
    assert order_sync(since=f"{start}T00:00:00Z", sandbox=True, home=str(tmp_path))["counts"]["created"] == ORDERS
    invoice_every_order()  # the sales orders

    document = refund_credit(sandbox=True, home=str(tmp_path), from_amazon=True)
    notes = world.m3_credit_notes()
    assert notes, "the world has no refund"
    assert {e["credit_key"]: (e["amount"], e["currency"]) for e in document["credited"]} == {
        n.adjustment_id: (str(n.net), n.currency) for n in notes
    }
    duplicated = {a.order_id for a in world.anomalies if a.kind == "duplicate_refund"}
    assert duplicated and {e["amazon_order_id"] for e in document["duplicate"]} == duplicated
    assert document["counts"]["dead_lettered"] == document["counts"]["not_synced"] == 0

    invoice_every_order()  # the return orders: the credit notes
    state = settlement_reconciliation(
        from_amazon=True, sandbox=True, home=str(tmp_path), dry_run=True, return_state=True
    )
    settled = run_document(state)["settlements"]
    assert settled and all(s["reconciliation"]["refund_without_credit"] == 0 for s in settled)
