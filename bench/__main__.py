"""Run every benchmark in this folder with its defaults: ``python -m bench`` (``make bench``).

Benchmarks that are not present in this checkout (``bench.anomaly_eval`` comes with the
anomaly work) are skipped with a note. The exit code is the largest any benchmark returned.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time

# (module, what it measures); each module has ``main(argv: list[str] | None) -> int``.
BENCHMARKS = (
    ("bench.settlement_pipeline", "settlement pipeline vs read_csv, peak memory, workbook"),
    ("bench.anomaly_eval", "anomaly detection precision/recall and scoring speed"),
    ("bench.settle_command", "the whole m3sync settle command vs a fresh read_csv process, peak RSS"),
    ("bench.dask_scale_out", "the settlement flow on 1 vs 2 Dask worker processes, 32 settlements x 50,000 lines"),
    ("bench.settle_small", "the fixed cost of a command: m3sync settle of a 20-line file, cold and warm"),
    ("bench.order_sync", "10,000 orders through order sync at Amazon's time-scaled quota, M3 requests per order"),
    (
        "bench.inventory_sync",
        "50,000 SKUs x 3 marketplaces through inventory sync at Amazon's scaled quota: full, no change, 2% changed",
    ),
)


def main() -> int:
    worst = 0
    for name, purpose in BENCHMARKS:
        print(f"=== {name}: {purpose}", flush=True)
        if importlib.util.find_spec(name) is None:
            print(f"(skipped: {name} is not in this checkout)\n", flush=True)
            continue
        started = time.perf_counter()
        code = importlib.import_module(name).main([])  # [] = its defaults, not this command's argv
        print(f"=== {name}: exit code {code}, {time.perf_counter() - started:.0f} s\n", flush=True)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
