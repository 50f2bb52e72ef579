"""Anomaly detection against the generator's ground truth: precision, recall, false positives, speed.

    python -m bench.anomaly_eval [--orders 50000] [--seed 1] [--threshold 0.5] [--lines 1000000]

1. A world with injected anomalies: every settlement is scored in date order against the
   history of the ones before it, then added to the history (as the flow does).
   Precision and recall per kind at the threshold; an item counts once per
   (settlement, order or SKU). Missing reimbursements leave no trace in a settlement, so they
   are scored with a simulated inventory ledger (the reimbursed events plus the lost one named
   in the ground truth) and reported on their own line.
2. The same world without anomalies: the share of settled orders flagged (false positives).
3. Scoring time of one settlement of ``--lines`` lines (sandbox.generator.large).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from anomaly import DEFAULT_THRESHOLD, AnomalyHistory, score_items
from reconciliation.parse import parse_settlement_bytes, read_settlement_file
from sandbox.generator import World, build_world
from sandbox.generator.large import write_large_settlement

TARGET_FEE_RECALL, TARGET_PRECISION, TARGET_CLEAN_FP, TARGET_SECONDS = 0.9, 0.7, 0.005, 10.0
FEE_KINDS = ("fee_overcharge_fba", "fee_overcharge_commission")
_EVENT = re.compile(r"event (\S+?)\)")


@dataclass(frozen=True, eq=False)
class WorldRun:
    """Compares by identity (``eq=False``): ``flagged`` is a DataFrame."""

    flagged: pd.DataFrame  # settlement_id, key, kind, score
    orders: int  # distinct settled orders
    seconds: float


def run_world(world: World, threshold: float, *, ledger: bool) -> WorldRun:
    hints = {item.sku: item.category for item in world.catalog}
    lost = {a.settlement_id: a for a in world.anomalies if a.kind == "missing_reimbursement"}
    flagged, orders, elapsed = [], set(), 0.0
    with tempfile.TemporaryDirectory() as home:
        history = AnomalyHistory(Path(home))
        for document in world.settlement_documents():
            settlement = parse_settlement_bytes(document.text.encode("utf-8"), document.settlement_id).settlements[0]
            events = _simulated_ledger(settlement, lost.get(settlement.settlement_id)) if ledger else None
            started = time.perf_counter()
            scored = score_items(settlement, history, catalog_hints=hints, inventory_events=events)
            elapsed += time.perf_counter() - started
            history.add(settlement)
            hits = scored.flagged(threshold)
            hits = hits.assign(
                settlement_id=settlement.settlement_id,
                key=hits["order_id"].where(hits["order_id"] != "", "sku:" + hits["sku"]),
            )
            flagged.append(hits)
            lines = settlement.lines
            orders |= set(lines.loc[lines["transaction_type"] == "Order", "order_id"])
    frame = pd.concat(flagged, ignore_index=True)[["settlement_id", "key", "kind", "score"]]
    return WorldRun(frame, len(orders), elapsed)


def _simulated_ledger(settlement, lost) -> pd.DataFrame:
    lines = settlement.lines
    reimbursed = lines[lines["amount_type"] == "FBA Inventory Reimbursement"]
    events = pd.DataFrame(
        {
            "event_id": reimbursed["adjustment_id"],
            "sku": reimbursed["sku"],
            "quantity": reimbursed["quantity"].fillna(1).astype("int64"),
        }
    )
    if lost is not None:
        match = _EVENT.search(lost.detail)
        event_id = match.group(1) if match else "unknown"
        events = pd.concat([events, pd.DataFrame({"event_id": [event_id], "sku": [lost.sku], "quantity": [1]})])
    return events


def precision_recall(world: World, run: WorldRun) -> pd.DataFrame:
    truth = pd.DataFrame(
        [
            {"settlement_id": a.settlement_id, "key": a.order_id or f"sku:{a.sku}", "kind": a.kind}
            for a in world.anomalies
        ]
    ).drop_duplicates()
    found = run.flagged.drop_duplicates(["settlement_id", "key", "kind"])
    rows = []
    for kind in sorted(set(truth["kind"]) | set(found["kind"])):
        t, f = truth[truth["kind"] == kind], found[found["kind"] == kind]
        hit_t = t.merge(f, on=["settlement_id", "key", "kind"]).shape[0]
        # A flag on a truly anomalous item under another kind name is still a true alarm.
        hit_f = f.merge(truth[["settlement_id", "key"]].drop_duplicates(), on=["settlement_id", "key"]).shape[0]
        rows.append(
            {
                "kind": kind,
                "injected": len(t),
                "flagged": len(f),
                "recall": hit_t / len(t) if len(t) else float("nan"),
                "precision": hit_f / len(f) if len(f) else float("nan"),
            }
        )
    items = run.flagged.drop_duplicates(["settlement_id", "key"])
    true_items = items.merge(truth[["settlement_id", "key"]].drop_duplicates(), on=["settlement_id", "key"]).shape[0]
    rows.append(
        {
            "kind": "OVERALL",
            "injected": len(truth.drop_duplicates(["settlement_id", "key"])),
            "flagged": len(items),
            "recall": float("nan"),
            "precision": true_items / len(items) if len(items) else float("nan"),
        }
    )
    return pd.DataFrame(rows)


def time_large(lines: int, seed: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        path = write_large_settlement(Path(folder) / "large.tsv", lines, seed)
        settlement = read_settlement_file(path).settlements[0]
        started = time.perf_counter()
        scored = score_items(settlement, AnomalyHistory(Path(folder) / "home"))
        seconds = time.perf_counter() - started
    return seconds, len(scored.items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    pd.set_option("display.width", 160)

    started = time.perf_counter()
    world = build_world(args.seed, orders=args.orders, anomalies=True)
    print(
        f"world: {args.orders} orders, seed {args.seed}, {len(world.documents)} settlements, "
        f"{len(world.anomalies)} injected anomalies (built in {time.perf_counter() - started:.0f} s)"
    )
    run = run_world(world, args.threshold, ledger=True)
    table = precision_recall(world, run)
    print(f"\nwith anomalies, threshold {args.threshold} (scoring {run.seconds:.1f} s for all settlements):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    fee = table[table["kind"].isin(FEE_KINDS)]
    fee_recall = (fee["recall"] * fee["injected"]).sum() / fee["injected"].sum()
    precision = float(table.loc[table["kind"] == "OVERALL", "precision"].iloc[0])
    print(
        "(missing_reimbursement is scored against a simulated inventory ledger; a settlement alone has no trace of it)"
    )

    clean = run_world(build_world(args.seed, orders=args.orders, anomalies=False), args.threshold, ledger=False)
    flagged_orders = clean.flagged.loc[~clean.flagged["key"].str.startswith("sku:"), "key"].nunique()
    fp_rate = flagged_orders / clean.orders if clean.orders else 0.0
    print(
        f"\nclean world: {flagged_orders} of {clean.orders} settled orders flagged = {fp_rate:.3%}; "
        f"{len(clean.flagged)} flags in total"
    )
    if len(clean.flagged):
        print(clean.flagged["kind"].value_counts().to_string())

    seconds, items = time_large(args.lines, args.seed)
    print(f"\nscoring one settlement of {args.lines:,} lines ({items:,} items): {seconds:.2f} s")

    checks = {
        f"fee overcharge recall >= {TARGET_FEE_RECALL}": fee_recall >= TARGET_FEE_RECALL,
        f"overall precision >= {TARGET_PRECISION}": precision >= TARGET_PRECISION,
        f"clean-world false positives <= {TARGET_CLEAN_FP:.1%}": fp_rate <= TARGET_CLEAN_FP,
        f"{args.lines:,} lines in <= {TARGET_SECONDS:.0f} s": seconds <= TARGET_SECONDS,
    }
    print(f"\nfee overcharge recall {fee_recall:.3f}, overall precision {precision:.3f}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
