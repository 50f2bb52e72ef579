"""bench/inventory_sync.py at a small size: the Listings calls of each run, counted by the SP-API
sandbox (not timings), and the sandbox time scale being the home's (sandbox/runtime.py)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.inventory_sync import report, run_bench


def test_listings_calls_are_pairs_over_20_to_discover_then_one_per_changed_pair(
    prefect_api_url: str, tmp_path: Path
) -> None:
    # 40 SKUs x DE, FR, UK. 5% changed = 2 SKUs: one with 10 more on hand (its 3 pairs), one with a
    # EUR price 5% higher (DE and FR): 5 changed pairs.
    bench = run_bench(tmp_path, 40, change=0.05, time_scale=1000)
    assert bench.changed_pairs == 5
    calls = {r.name: r.calls for r in bench.runs}
    assert calls == {
        "full": {"searchListingsItems": 6},  # 40 unseen SKUs a marketplace: 2 searches of 20, x 3
        "no change": {},
        "changed": {"patchListingsItem": 5},
        "read back": {"searchListingsItems": 3},  # the 5 patched pairs, in 3 marketplaces
    }
    assert [(r.patches, r.unchanged, r.read_back, r.exceptions) for r in bench.runs] == [
        (0, 120, 0, 0),
        (0, 120, 0, 0),
        (5, 115, 0, 0),
        (0, 120, 5, 0),
    ]
    assert bench.calls_per_changed_pair == 1.0
    assert any(line.startswith("PASS  Listings calls / changed pairs = 5 / 5 = 1.000") for line in report(bench))

    # The time scale given to the first start is the home's: the flows' sandboxes ran with it.
    assert json.loads((tmp_path / "sandbox" / "world.json").read_text(encoding="utf-8"))["time_scale"] == 1000
    credentials = json.loads((tmp_path / "sandbox" / "spapi-credentials.json").read_text(encoding="utf-8"))
    assert credentials["time_scale"] == 1000
