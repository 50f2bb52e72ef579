"""Which status a settlement ends in, decided by ``reconciliation.outcome.decide_outcome``: every
status and every reason text, from inputs built by hand (no Prefect, no M3, no state store).

Each expected reason below is written out in full from the rule it states, never copied from a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from _settlement_builders import make_settlement

from reconciliation.gates import GateFailure, GateOutcome
from reconciliation.mapping import MappedLines
from reconciliation.matching import Reconciliation
from reconciliation.outcome import (
    STATUSES,
    PostedVoucherRef,
    PostingResult,
    PostingUnknown,
    ReconciliationSkipped,
    RunOptions,
    SettlementOutcome,
    SubmittedVoucherRef,
    decide_outcome,
    may_post,
)
from reconciliation.pipeline import PreparedSettlement
from reconciliation.schemas import FAILURE_COLUMNS, ValidationReport
from reconciliation.vouchers import Voucher, VoucherLine

SETTLEMENT = make_settlement(
    [
        ("Order", "ItemPrice", "Principal", 1000, "2024-10-10", "111-A"),
        ("Order", "ItemFees", "Commission", -150, "2024-10-10", "111-A"),
    ]
)
POST = RunOptions()
K1 = PostedVoucherRef("AZ10000000001-1", "AAA/2024/AZ/1", already_posted=False)
K2 = PostedVoucherRef("AZ10000000001-2", "AAA/2024/AZ/2", already_posted=False)
GATE_REASON = "lines sum to 8.50 but total-amount is 9.00"


def _voucher(key: str) -> Voucher:
    return Voucher(
        key=key,
        settlement_id=SETTLEMENT.settlement_id,
        accounting_date=date(2024, 10, 23),
        currency="USD",
        decimals=2,
        text=f"{key} Amazon settlement",
        lines=(VoucherLine("1930", (), 850, "deposit", "deposit"), VoucherLine("3010", (), -850, "sales", "sales")),
    )


def _prepared(*, held: bool = False) -> PreparedSettlement:
    validation = ValidationReport(ok=True, failure_cases=pd.DataFrame(columns=FAILURE_COLUMNS), reasons=[])
    mapped = MappedLines(SETTLEMENT.lines, (), "US", "USD")
    gates = (
        GateOutcome(True, (GateFailure("sum", GATE_REASON),), ())
        if held
        else GateOutcome(False, (), (_voucher(K1.key), _voucher(K2.key)))
    )
    return PreparedSettlement(SETTLEMENT, validation, mapped, gates)


def _reconciliation(*categories: str) -> Reconciliation:
    orders = pd.DataFrame({"order_id": [f"111-{i}" for i in range(len(categories))], "category": list(categories)})
    counts = {c: categories.count(c) for c in ("matched", "amount_mismatch", "missing_in_m3")}
    return Reconciliation(orders=orders, tolerance_minor=1, counts=counts)


@dataclass(frozen=True)
class Crash:
    """An unexpected error as the flow reports it (``flows.failures.UnexpectedError`` has the same shape)."""

    stage: str

    def reason(self) -> str:
        return f"unexpected error in m3sync while {self.stage}: ZeroDivisionError: division by zero"


def test_statuses_are_the_seven_of_the_contract() -> None:
    assert set(STATUSES) == {"posted", "dry_run", "held", "duplicate", "submitted", "invalid", "failed"}
    # invalid is written for a file that cannot be read (flows.contract); the record accepts it.
    assert SettlementOutcome(settlement=SETTLEMENT, status="invalid").status == "invalid"
    with pytest.raises(ValueError, match="unknown settlement status 'booked'"):
        SettlementOutcome(settlement=SETTLEMENT, status="booked")  # type: ignore[arg-type]  # the point


def test_run_options_are_one_frozen_record() -> None:
    options = RunOptions()
    assert (options.dry_run, options.strict, options.tolerance) == (False, False, Decimal("0.01"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.dry_run = True  # type: ignore[misc]  # the point


def test_posted() -> None:
    reconciliation = _reconciliation("matched", "matched")
    outcome = decide_outcome(SETTLEMENT, _prepared(), reconciliation, PostingResult(posted=(K1, K2)), POST)
    assert outcome.status == "posted"
    assert outcome.reasons == ()
    assert outcome.posted == (K1, K2)
    assert outcome.reconciliation is reconciliation
    assert outcome.reconciliation_skipped_reason == ""
    assert outcome.unreachable == ""
    assert [v.key for v in outcome.vouchers] == [K1.key, K2.key]


def test_posted_when_some_were_already_in_m3_and_one_is_new() -> None:
    already = dataclasses.replace(K1, already_posted=True)
    outcome = decide_outcome(
        SETTLEMENT, _prepared(), _reconciliation("matched"), PostingResult(posted=(already, K2)), POST
    )
    assert outcome.status == "posted"


def test_posted_names_a_batch_m3_booked_since_an_earlier_run_submitted_it() -> None:
    posting = PostingResult(posted=(K1,), confirmed=("AZ10000000001-1 (AAA/2024/AZ/1, batch 77)",))
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), posting, POST)
    assert outcome.status == "posted"
    assert outcome.reasons == (
        "booked by M3 since an earlier run submitted it: AZ10000000001-1 (AAA/2024/AZ/1, batch 77)",
    )


def test_dry_run_posts_nothing_and_keeps_why_reconciliation_was_skipped() -> None:
    options = RunOptions(dry_run=True)
    skipped = ReconciliationSkipped("M3 is not configured (dry run)")
    assert not may_post(_prepared(), skipped, options)
    outcome = decide_outcome(SETTLEMENT, _prepared(), skipped, None, options)
    assert outcome.status == "dry_run"
    assert outcome.reasons == ()
    assert outcome.reconciliation is None
    assert outcome.reconciliation_skipped_reason == "M3 is not configured (dry run)"


def test_held_by_a_gate_even_in_a_dry_run_with_the_mapping_suggestions_after_the_gate_reasons() -> None:
    suggestion = "BrandNewFee looks like a selling fee: add it under fees in the mapping"
    for options in (POST, RunOptions(dry_run=True)):
        assert not may_post(_prepared(held=True), None, options)
        outcome = decide_outcome(
            SETTLEMENT,
            _prepared(held=True),
            ReconciliationSkipped("M3 unreachable: down"),
            None,
            options,
            suggestions=(suggestion,),
        )
        assert outcome.status == "held"
        assert outcome.reasons == (GATE_REASON, suggestion)
        assert outcome.vouchers == ()


def test_held_by_strict_reconciliation_counting_the_orders_that_do_not_match() -> None:
    reconciliation = _reconciliation("matched", "amount_mismatch", "missing_in_m3")
    strict = RunOptions(strict=True)
    assert may_post(_prepared(), reconciliation, POST)  # without --strict, differences are reported only
    assert may_post(_prepared(), _reconciliation("matched"), strict)
    assert may_post(_prepared(), ReconciliationSkipped("M3 unreachable: down"), strict)
    assert not may_post(_prepared(), reconciliation, strict)
    outcome = decide_outcome(SETTLEMENT, _prepared(), reconciliation, None, strict)
    assert outcome.status == "held"
    assert outcome.reasons == ("strict reconciliation: 2 order(s) do not match M3 invoices",)


def test_held_when_m3_became_unreachable_while_posting() -> None:
    posting = PostingResult(posted=(K1,), unreachable="M3 unreachable: https://m3.example.com:443 did not answer")
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), posting, POST)
    assert outcome.status == "held"
    stopped = "M3 unreachable: https://m3.example.com:443 did not answer; nothing more posted"
    assert outcome.reasons == (stopped, "posted before the refusal: AZ10000000001-1")
    assert outcome.unreachable == stopped  # exit code 4
    assert outcome.posted == (K1,)


def test_held_when_m3_refused_a_voucher_naming_what_went_before() -> None:
    refusal = "M3 refused AZ10000000001-2: period 202410 is closed (GL_PERIOD)"
    earlier = SubmittedVoucherRef("AZ10000000001-0", "42")
    posting = PostingResult(posted=(K1,), refused=(refusal,), submitted=(earlier,))
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), posting, POST)
    assert outcome.status == "held"
    assert outcome.reasons == (
        refusal,
        "posted before the refusal: AZ10000000001-1",
        "submitted to M3 before the refusal, not booked yet (the next run confirms them): AZ10000000001-0 (batch 42)",
    )
    assert outcome.unreachable == ""
    assert outcome.submitted == (earlier,)


def test_held_when_what_was_posted_is_unknown() -> None:
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), PostingUnknown(), POST)
    assert outcome.status == "held"
    assert outcome.reasons == (
        "could not tell what was posted before the error (the state store and M3 know; "
        "a rerun never posts a voucher twice)",
    )


def test_submitted_when_m3_has_not_booked_the_batch_yet() -> None:
    posting = PostingResult(submitted=(SubmittedVoucherRef(K1.key, "77"),))
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), posting, POST)
    assert outcome.status == "submitted"
    assert outcome.reasons == (
        "AZ10000000001-1 was submitted to M3 as GL batch 77 (GLS840); M3's batch job has "
        "not booked it yet: the next run confirms it and never submits it again",
    )
    assert outcome.posted == ()


def test_duplicate_when_every_voucher_was_already_in_m3() -> None:
    posting = PostingResult(posted=tuple(dataclasses.replace(p, already_posted=True) for p in (K1, K2)))
    outcome = decide_outcome(SETTLEMENT, _prepared(), _reconciliation("matched"), posting, POST)
    assert outcome.status == "duplicate"
    assert outcome.reasons == ("already posted to M3: AAA/2024/AZ/1, AAA/2024/AZ/2",)


def test_failed_before_anything_was_prepared() -> None:
    crash = Crash("validating and mapping")
    outcome = decide_outcome(SETTLEMENT, None, None, None, POST, error=crash)
    assert outcome.status == "failed"
    assert outcome.reasons == (
        "unexpected error in m3sync while validating and mapping: ZeroDivisionError: division by zero",
        "nothing posted for this settlement",
    )
    assert outcome.settlement is SETTLEMENT
    assert (outcome.vouchers, outcome.posted, outcome.gates) == ((), (), None)
    assert outcome.reconciliation_skipped_reason == "not done: failed while validating and mapping"


def test_failed_after_posting_names_what_was_posted_and_keeps_the_reconciliation() -> None:
    reconciliation = _reconciliation("matched")
    outcome = decide_outcome(
        SETTLEMENT, _prepared(), reconciliation, PostingResult(posted=(K1,)), POST, error=Crash("reporting the outcome")
    )
    assert outcome.status == "failed"
    assert outcome.reasons == (
        "unexpected error in m3sync while reporting the outcome: ZeroDivisionError: division by zero",
        "posted before the error: AZ10000000001-1 (AAA/2024/AZ/1)",
    )
    assert outcome.posted == (K1,)
    assert outcome.reconciliation is reconciliation
    assert outcome.reconciliation_skipped_reason == ""


def test_failed_when_what_was_posted_cannot_be_told_keeps_why_reconciliation_was_skipped() -> None:
    outcome = decide_outcome(
        SETTLEMENT,
        _prepared(held=True),
        ReconciliationSkipped("M3 unreachable: down"),
        PostingUnknown(),
        RunOptions(dry_run=True),
        error=Crash("posting to M3"),
    )
    assert outcome.status == "failed"  # an unexpected error outranks a gate and a dry run
    assert outcome.reasons == (
        "unexpected error in m3sync while posting to M3: ZeroDivisionError: division by zero",
        GATE_REASON,
        "could not tell what was posted before the error (the state store and M3 know; "
        "a rerun never posts a voucher twice)",
    )
    assert outcome.reconciliation_skipped_reason == "M3 unreachable: down"


def test_a_settlement_not_prepared_can_only_have_failed() -> None:
    with pytest.raises(ValueError, match="can only have failed"):
        decide_outcome(SETTLEMENT, None, None, None, POST)
