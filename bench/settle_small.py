"""The fixed cost of a command: ``m3sync settle`` of a 20-line settlement, as an accountant runs it.

    python -m bench.settle_small [--runs 5] [--prefect ephemeral|server] [--out DIR]

1. Copies the repository's 20-line US settlement (tests/fixtures/settlements/us_v2_usd.tsv).
2. Runs ``m3sync settle FILE --dry-run --json --home HOME`` (``sys.executable -m flows.cli``)
   ``--runs`` times with one home: the first run is cold (a new home: Prefect's database under
   HOME/prefect is created and migrated), the others warm (the database is current, so the
   temporary server skips Alembic). ``--prefect ephemeral`` (the default, a user without a
   Prefect server): the command starts its temporary server itself. ``--prefect server``: the
   bench starts a Prefect server first and passes ``PREFECT_API_URL`` (not measured).
3. Prints each run's wall time and the CPU time of its process tree (user + system, the command
   and its server: on a loaded machine the steadier figure), the median of the warm runs, and the
   import time of the modules the command loads (median of ``--runs`` fresh interpreters) with the
   packages costing most (``python -X importtime``, self time summed per top-level package).

Target (issue 13, item 9): median warm wall time < 5 s on an idle 2-core machine. Exit code 0
whether or not it is met (a measurement); 1 if the command failed (nothing was measured).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.settle_command import (
    REPO,
    BenchmarkError,
    ChildRun,
    PrefectServer,
    _child_environment,
    _load,
    machine_facts,
    run_child,
)

SETTLEMENT = REPO / "tests" / "fixtures" / "settlements" / "us_v2_usd.tsv"
TARGET_SECONDS = 5.0
# What ``m3sync settle`` imports before its flow runs (flows/cli.py's _settle).
IMPORTS = "import flows.cli, flows.connections, flows.reports, flows.contract, flows.settlement"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def settle_once(settlement: Path, home: Path, env: dict[str, str]) -> tuple[ChildRun, float]:
    """One command run: its ChildRun and the CPU seconds of its process tree."""
    argv = [sys.executable, "-m", "flows.cli", "settle", str(settlement), "--dry-run", "--json", "--home", str(home)]
    before = _children_cpu()
    result = run_child("m3sync settle", argv, env, home.parent)
    cpu = _children_cpu() - before
    if result.returncode != 0:
        raise BenchmarkError(f"m3sync settle exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    try:
        entries = json.loads(result.stdout)["settlements"]
    except (ValueError, KeyError) as exc:
        raise BenchmarkError(f"m3sync settle printed no JSON document ({exc}): {result.stdout[:500]}") from exc
    if [e["status"] for e in entries] != ["dry_run"]:
        raise BenchmarkError(f"m3sync settle did not settle the file: {[(e['status'], e['reasons']) for e in entries]}")
    return result, cpu


def import_seconds(env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {IMPORTS}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def costliest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Self import time summed per top-level package, largest first (seconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORTS], env=env, cwd=REPO, capture_output=True, text=True
    )
    per_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        self_us, name = fields[0].strip(), fields[2].strip()
        per_package[name.split(".")[0]] += int(self_us) / 1e6
    return sorted(per_package.items(), key=lambda item: -item[1])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.settle_small", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="command runs: the first cold, the rest warm (default 5)")
    parser.add_argument("--prefect", choices=("ephemeral", "server"), default="ephemeral")
    parser.add_argument("--out", type=Path, help="keep the home here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 (one cold, one warm)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        return _run(args, args.out)
    with tempfile.TemporaryDirectory(prefix="bench-settle-small-") as folder:
        return _run(args, Path(folder))


def _run(args: argparse.Namespace, folder: Path) -> int:
    for line in machine_facts():
        print(line)
    print(f"load average before: {_load()}")
    settlement = folder / SETTLEMENT.name
    shutil.copy(SETTLEMENT, settlement)
    home = folder / "home"
    base_env = _child_environment(None)
    base_env.pop("PREFECT_HOME", None)  # the command keeps Prefect's files under HOME/prefect
    try:
        if args.prefect == "server":
            server_home = folder / "prefect-server"
            with PrefectServer({**base_env, "PREFECT_HOME": str(server_home)}) as server:
                runs = _settle_runs(settlement, home, _child_environment(server.url), args.runs)
        else:
            runs = _settle_runs(settlement, home, base_env, args.runs)
    except BenchmarkError as exc:
        print(f"bench.settle_small: {exc}", file=sys.stderr)
        return 1
    imports = [import_seconds(base_env) for _ in range(args.runs)]
    warm = [seconds for seconds, _ in runs[1:]]
    median = statistics.median(warm)
    print(f"m3sync settle {SETTLEMENT.name} --dry-run ({args.prefect} Prefect), {args.runs} runs:")
    for n, (seconds, cpu) in enumerate(runs):
        print(f"  run {n + 1} ({'cold' if n == 0 else 'warm'}): {seconds:6.2f} s wall, {cpu:6.2f} s CPU (tree)")
    print(f"median warm: {median:.2f} s wall, {statistics.median(cpu for _, cpu in runs[1:]):.2f} s CPU")
    print(f"imports ({IMPORTS.removeprefix('import ')}): median {statistics.median(imports):.2f} s")
    print("  costliest: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in costliest_imports(base_env)))
    verdict = "met" if median < TARGET_SECONDS else "NOT met (on an idle 2-core machine?)"
    print(f"target median warm < {TARGET_SECONDS:.0f} s: {verdict}; load average after: {_load()}")
    return 0


def _settle_runs(settlement: Path, home: Path, env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds) per run, one home: the first run cold, the others warm."""
    results = []
    for _ in range(runs):
        result, cpu = settle_once(settlement, home, env)
        results.append((result.seconds, cpu))
    return results


if __name__ == "__main__":
    sys.exit(main())
