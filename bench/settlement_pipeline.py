"""Settlement pipeline benchmark: time and peak memory against ``pandas.read_csv`` of the same file.

    python -m bench.settlement_pipeline [--lines 1000000] [--workbook-lines 100000] [--out DIR]
                                        [--runs 3] [--seed 1] [--profile N]

1. Generates a balanced ``--lines`` V2 settlement (sandbox.generator.large) and its matching M3
   invoice set (not timed).
2. Time, in one fresh spawned process, the baseline ``pandas.read_csv(path, sep="\\t",
   engine="pyarrow", dtype=str)`` and the whole pipeline (parse, validate, map to GL, gates +
   vouchers, reconcile against the invoices) stage by stage: each once untimed (warm-up), then
   ``--runs`` rounds of baseline + pipeline. Medians; the ratio is median pipeline / median
   baseline. ``--profile N``: after the timed rounds, one more pipeline run in the same process
   under cProfile (not timed, not in the figures); prints its N costliest functions.
   Peak RSS: the pipeline once and the baseline once, each alone in a fresh process, read as
   that process's own peak (``VmHWM``; ``ru_maxrss`` off Linux). Both include the interpreter and
   imports (about 0.15 GiB); the pipeline's also the loaded invoices. Their (cold) times are
   printed too, for information.
3. Writes the workbook of a ``--workbook-lines`` settlement (full outcome incl. reconciliation)
   ``--runs`` times in one fresh process; median ``write_workbook`` time.

Exit code 0 whether or not a target is met (this is a measurement); 1 if the pipeline itself
fails (the file does not parse, or the settlement is held), since then nothing was measured.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow

from reconciliation.gates import check_gates
from reconciliation.mapping import load_mapping
from reconciliation.matching import INVOICE_COLUMNS, reconcile_orders
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import read_settlement_file
from reconciliation.pipeline import PreparedSettlement
from reconciliation.schemas import validate_settlement
from reconciliation.workbook import write_workbook
from sandbox.generator.large import matching_invoices, write_large_settlement

RATIO_TARGET = 8.0
PEAK_RSS_TARGET_BYTES = 3 * 1024**3
WORKBOOK_TARGET_SECONDS = 15.0
TOLERANCE_MINOR = 1  # the flow's default reconciliation tolerance (0.01)
GIB = 1024**3

STAGES = ("parse", "validate", "map", "gates + vouchers", "reconcile")

T = TypeVar("T")


class BenchmarkError(RuntimeError):
    """The pipeline did not run through, so there is nothing to measure."""


@dataclass(frozen=True)
class BenchInputs:
    settlement: Path
    invoices: Path  # parquet of reconciliation.matching.INVOICE_COLUMNS
    lines: int


@dataclass(frozen=True)
class TimedRound:
    """One baseline read and one pipeline run, back to back in the timing process."""

    baseline_seconds: float
    stage_seconds: tuple[float, ...]  # aligned with STAGES

    @property
    def pipeline_seconds(self) -> float:
        return sum(self.stage_seconds)


@dataclass(frozen=True)
class TimingSession:
    rounds: tuple[TimedRound, ...]
    summary: str  # what the pipeline produced (settlement, vouchers, reconciliation)
    profile: str = ""  # cProfile of one more, untimed run (--profile)


@dataclass(frozen=True)
class PeakMeasure:
    """A fresh process that did one thing once: its own peak RSS, and that cold run's time."""

    seconds: float
    startup_rss: int  # bytes, after imports (and the invoices, for the pipeline)
    peak_rss: int


@dataclass(frozen=True)
class WorkbookTrial:
    prepare_seconds: float  # parse .. reconcile of the workbook's settlement (not the target)
    write_seconds: tuple[float, ...]
    peak_rss: int
    size_bytes: int
    sheets_note: str


# --- measurements (each runs in a fresh spawned process) -------------------------------


def _peak_rss_bytes() -> int:
    """This process's peak RSS. On Linux VmHWM, because ru_maxrss survives fork + exec: a spawned
    child reports at least its parent's RSS at the fork (measured: 0.97 GiB floor when the parent
    had generated the data), so it cannot tell a small child from a big parent."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def _read_baseline(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", engine="pyarrow", dtype=str)


def _settle(inputs: BenchInputs, invoices: pd.DataFrame) -> tuple[SettlementOutcome, tuple[float, ...]]:
    """The flow's pure stages in order (what prepare_settlement + reconcile do), timed one by one."""
    mapping = load_mapping()
    parsed, parse_s = _timed(lambda: read_settlement_file(inputs.settlement))
    if not parsed.ok or len(parsed.settlements) != 1:
        problems = "; ".join(str(e) for e in parsed.errors[:5])
        raise BenchmarkError(
            f"{inputs.settlement.name}: expected one settlement, got "
            f"{len(parsed.settlements)} ({problems or 'no errors reported'})"
        )
    settlement = parsed.settlements[0]
    validation, validate_s = _timed(lambda: validate_settlement(settlement))
    mapped, map_s = _timed(lambda: mapping.map_settlement(settlement))
    gates, gates_s = _timed(lambda: check_gates(settlement, mapped, mapping))
    prepared = PreparedSettlement(settlement, validation, mapped, gates)
    if prepared.held:
        raise BenchmarkError(f"{inputs.settlement.name}: settlement held: {'; '.join(prepared.reasons)}")
    reconciliation, reconcile_s = _timed(
        lambda: reconcile_orders(settlement.lines, invoices, tolerance_minor=TOLERANCE_MINOR)
    )
    outcome = SettlementOutcome(
        settlement=settlement,
        status="dry_run",
        reasons=prepared.reasons,
        validation=validation,
        mapped=mapped,
        gates=gates,
        vouchers=gates.vouchers,
        reconciliation=reconciliation,
    )
    return outcome, (parse_s, validate_s, map_s, gates_s, reconcile_s)


def _describe(outcome: SettlementOutcome) -> str:
    settlement, reconciliation = outcome.settlement, outcome.reconciliation
    counts = ", ".join(f"{k} {v:,}" for k, v in reconciliation.counts.items() if v)
    return (
        f"settlement {settlement.settlement_id}: {settlement.line_count:,} lines, {outcome.status}, "
        f"{len(outcome.vouchers)} voucher(s) with {sum(len(v.lines) for v in outcome.vouchers)} lines, "
        f"validation {'ok' if outcome.validation.ok else 'FAILED'}, reconciliation: {counts}"
    )


def _load_invoices(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).astype(INVOICE_COLUMNS)


def timing_session(inputs: BenchInputs, runs: int, profile_top: int = 0) -> TimingSession:
    """Both sides warmed up once (untimed), then ``runs`` rounds of baseline + pipeline.

    Warm-up, because a cold first call pays for lazy imports, pyarrow's thread pool and fresh
    heap pages; without it, whichever side runs first in a process looks slower.
    """
    invoices = _load_invoices(inputs.invoices)  # an input of the pipeline, loaded untimed
    _read_baseline(inputs.settlement)
    outcome, _stages = _settle(inputs, invoices)
    summary = _describe(outcome)
    del outcome
    rounds = []
    for _ in range(runs):
        _frame, baseline_seconds = _timed(lambda: _read_baseline(inputs.settlement))
        del _frame
        _outcome, stage_seconds = _settle(inputs, invoices)
        del _outcome
        rounds.append(TimedRound(baseline_seconds, stage_seconds))
    return TimingSession(tuple(rounds), summary, _profiled(inputs, invoices, profile_top) if profile_top else "")


def _profiled(inputs: BenchInputs, invoices: pd.DataFrame, top: int) -> str:
    """The ``top`` functions by cumulative time of one more pipeline run (after the timed ones)."""
    profiler = cProfile.Profile()
    profiler.runcall(_settle, inputs, invoices)
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(top)
    return report.getvalue()


def pipeline_peak(inputs: BenchInputs) -> PeakMeasure:
    invoices = _load_invoices(inputs.invoices)
    startup = _peak_rss_bytes()
    _outcome, stage_seconds = _settle(inputs, invoices)
    return PeakMeasure(sum(stage_seconds), startup, _peak_rss_bytes())


def baseline_peak(path: Path) -> PeakMeasure:
    startup = _peak_rss_bytes()
    _frame, seconds = _timed(lambda: _read_baseline(path))
    return PeakMeasure(seconds, startup, _peak_rss_bytes())


def workbook_trial(inputs: BenchInputs, workbook: Path, runs: int) -> WorkbookTrial:
    invoices = _load_invoices(inputs.invoices)
    started = time.perf_counter()
    outcome, _stages = _settle(inputs, invoices)
    prepare_seconds = time.perf_counter() - started
    timed = [_timed(lambda: write_workbook([outcome], workbook)) for _ in range(runs)]
    info = timed[-1][0]
    note = (
        f"lines summed on the Lines sheet, every line in {info.lines_file.name}"
        if info.lines_file
        else "all lines on the Lines sheet"
    )
    seconds = [elapsed for _info, elapsed in timed]
    return WorkbookTrial(prepare_seconds, tuple(seconds), _peak_rss_bytes(), workbook.stat().st_size, note)


def _in_fresh_process(function: Callable[..., T], *args: object) -> T:
    # spawn, one task per process: every measurement starts from a clean interpreter, so
    # ru_maxrss is that measurement's own peak.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        return pool.submit(function, *args).result()


# --- data -------------------------------------------------------------------------------


def generate_inputs(folder: Path, lines: int, seed: int) -> tuple[BenchInputs, float]:
    started = time.perf_counter()
    settlement = write_large_settlement(folder / f"settlement_{lines}.tsv", lines, seed)
    invoices = folder / f"invoices_{lines}.parquet"
    matching_invoices(lines, seed)[list(INVOICE_COLUMNS)].to_parquet(invoices, index=False)
    return BenchInputs(settlement, invoices, lines), time.perf_counter() - started


# --- report -----------------------------------------------------------------------------


def _gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB"


def _runs(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine_facts() -> list[str]:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        f"machine: {os.cpu_count()} cores, {_gib(ram)} RAM, {platform.platform()}",
        f"software: Python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pyarrow.__version__}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the pipeline settlement")
    parser.add_argument("--workbook-lines", type=int, default=100_000, help="lines of the workbook settlement")
    parser.add_argument("--out", type=Path, help="keep generated files and the workbook here (default: temp dir)")
    parser.add_argument(
        "--runs", type=int, default=3, help="timed rounds of baseline + pipeline, and workbook writes (medians)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="print the N costliest functions (cProfile) of one extra, untimed pipeline run",
    )
    args = parser.parse_args(argv)
    if args.lines < 1 or args.workbook_lines < 1 or args.runs < 1 or args.profile < 0:
        parser.error("--lines, --workbook-lines and --runs must be >= 1, --profile >= 0")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return _run(args, args.out)
    with tempfile.TemporaryDirectory(prefix="bench-settlement-") as folder:
        return _run(args, Path(folder))


def _run(args: argparse.Namespace, folder: Path) -> int:
    print(
        f"settlement pipeline benchmark: {args.lines:,} lines, workbook {args.workbook_lines:,} lines, "
        f"seed {args.seed}, {args.runs} run(s) each, medians; files in {folder}"
    )
    for fact in machine_facts():
        print(fact)
    print(f"load average before (1/5/15 min): {_load()}", flush=True)

    # Generated in a child too, so this process stays small (see _peak_rss_bytes).
    inputs, generated_s = _in_fresh_process(generate_inputs, folder, args.lines, args.seed)
    print(
        f"generated {inputs.settlement.name} ({inputs.settlement.stat().st_size / 1e6:.0f} MB) and its "
        f"matching invoices in {generated_s:.1f} s (not timed)",
        flush=True,
    )
    try:
        session = _in_fresh_process(timing_session, inputs, args.runs, args.profile)
        pipeline_cold = _in_fresh_process(pipeline_peak, inputs)
        baseline_cold = _in_fresh_process(baseline_peak, inputs.settlement)
        workbook_inputs, _ = _in_fresh_process(generate_inputs, folder, args.workbook_lines, args.seed)
        workbook = _in_fresh_process(workbook_trial, workbook_inputs, folder / "settlement_workbook.xlsx", args.runs)
    except BenchmarkError as exc:
        print(f"ERROR: the pipeline did not run through, nothing measured: {exc}", file=sys.stderr)
        return 1

    rounds = session.rounds
    print(f"\npipeline on {session.summary}")
    print(f"one process, warmed up, then {len(rounds)} rounds of baseline + pipeline:")
    print(f"{'stage':<44}{'median':>10}   runs (s)")
    for index, stage in enumerate(STAGES):
        values = [r.stage_seconds[index] for r in rounds]
        print(f"  {stage:<42}{statistics.median(values):>8.2f} s   {_runs(values)}")
    pipeline_s = statistics.median(r.pipeline_seconds for r in rounds)
    baseline_s = statistics.median(r.baseline_seconds for r in rounds)
    ratio = pipeline_s / baseline_s
    peak = pipeline_cold.peak_rss
    print(f"  {'pipeline total':<42}{pipeline_s:>8.2f} s   {_runs([r.pipeline_seconds for r in rounds])}")
    print(
        f"  {'baseline read_csv(pyarrow, dtype=str)':<42}{baseline_s:>8.2f} s   "
        f"{_runs([r.baseline_seconds for r in rounds])}"
    )
    print(
        f"cold, each alone in a fresh process: pipeline {pipeline_cold.seconds:.2f} s, baseline "
        f"{baseline_cold.seconds:.2f} s (ratio {pipeline_cold.seconds / baseline_cold.seconds:.2f}x, not the target)"
    )
    print(
        f"peak RSS: pipeline process {_gib(peak)} (after imports + invoices {_gib(pipeline_cold.startup_rss)}); "
        f"baseline process {_gib(baseline_cold.peak_rss)} (after imports {_gib(baseline_cold.startup_rss)})"
    )
    if session.profile:
        print("\ncProfile of one more pipeline run in the timing process (untimed, not in the figures above):")
        print(session.profile.strip("\n"))

    workbook_s = statistics.median(workbook.write_seconds)
    print(
        f"\nworkbook of {args.workbook_lines:,} lines: write_workbook {workbook_s:.2f} s median "
        f"(runs {_runs(workbook.write_seconds)} s); {workbook.size_bytes / 1e6:.1f} MB, {workbook.sheets_note}; "
        f"process peak RSS {_gib(workbook.peak_rss)}; parse..reconcile before it {workbook.prepare_seconds:.2f} s"
    )

    print(f"\nload average after (1/5/15 min): {_load()}")
    print(f"{_verdict(ratio <= RATIO_TARGET)}  pipeline/baseline ratio {ratio:.2f}x (target <= {RATIO_TARGET:.0f}x)")
    print(
        f"{_verdict(peak <= PEAK_RSS_TARGET_BYTES)}  pipeline peak RSS {_gib(peak)} "
        f"(target <= {_gib(PEAK_RSS_TARGET_BYTES)})"
    )
    print(
        f"{_verdict(workbook_s <= WORKBOOK_TARGET_SECONDS)}  workbook {args.workbook_lines:,} lines "
        f"{workbook_s:.2f} s (target <= {WORKBOOK_TARGET_SECONDS:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    # Through the package name, so the spawned processes unpickle bench.settlement_pipeline.*
    from bench.settlement_pipeline import main as package_main

    sys.exit(package_main())
