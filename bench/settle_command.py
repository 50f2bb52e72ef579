"""The whole ``m3sync settle`` command against a fresh ``pandas.read_csv`` process, side by side.

    python -m bench.settle_command [--lines 1000000] [--out DIR] [--runs 1] [--seed 1]
                                  [--prefect ephemeral|server|both]

1. Generates a balanced ``--lines`` V2 settlement (sandbox.generator.large; not timed), in a
   child process so this one stays small.
2. Runs, as child processes one after the other (``--runs`` rounds, alternating):
   (a) the baseline: a fresh ``python -c`` that imports pandas and reads the file with
       ``pd.read_csv(path, sep="\\t", engine="pyarrow", dtype=str)``;
   (b) the command a user types: ``m3sync settle FILE --sandbox --dry-run --json --report
       OUT.xlsx --home FRESH_HOME`` (``sys.executable -m flows.cli``), with a fresh home each run.
   ``--prefect ephemeral`` (the default, what a user without a Prefect server gets): the command
   starts Prefect's ephemeral server itself, a child process of its own. ``--prefect server``:
   the bench starts one Prefect server first and passes its URL in ``PREFECT_API_URL`` (a user
   who runs ``prefect server start``); the server is not the command's and is not measured.
3. For each child: wall time from start to exit, and the peak RSS of every process of its tree
   (sampled every 50 ms with psutil, or ``/proc`` without it; each process's ``VmHWM`` is read
   at every sample, so a peak between samples is not missed). The figure for the targets is the
   largest single process; the largest sum over the tree at one sample is printed beside it.
   ``ru_maxrss`` of the children (``getrusage(RUSAGE_CHILDREN)``) is printed too; it is the
   largest of all children so far, and survives fork + exec (a child reports at least what this
   process had at the fork), so it only bounds the per-process figures from above.

Targets (issue 8, item 6): command wall time <= 15x the baseline's, largest process of the
command <= 2 GB (2e9 bytes). Exit code 0 whether or not a target is met (a measurement); 1 if
the command failed or did not settle the file (then nothing was measured).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

RATIO_TARGET = 15.0
PEAK_RSS_TARGET_BYTES = 2 * 10**9
SAMPLE_SECONDS = 0.05
GIB = 1024**3
REPO = Path(__file__).resolve().parents[1]

BASELINE_CODE = (
    "import sys, pandas as pd; "
    "frame = pd.read_csv(sys.argv[1], sep='\\t', engine='pyarrow', dtype=str); "
    "print(len(frame))"
)


# --- process tree sampling ------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            return [pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.Error:
            return []
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += children.get(current, [])
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS ``VmHWM``) of one process in bytes; (0, 0) when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount, _unit = line.split()
            values[key] = int(amount) * 1024
    return values.get("VmRSS:", 0), values.get("VmHWM:", 0)


def _command_line(pid: int) -> str:
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [p.decode(errors="replace") for p in parts if p]
    if "-m" in words:  # python -m MODULE ...: the module names the process
        return " ".join(words[words.index("-m") + 1 :][:2])
    return " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words[:2]))[:60]


@dataclass
class TreeSampler:
    """Samples a process tree until stopped: per process its peak RSS, and the tree's largest sum."""

    root: int
    peaks: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    tree_peak: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_SECONDS)

    def sample(self) -> None:
        total = 0
        for pid in _descendants(self.root):
            rss, hwm = _memory(pid)
            if pid not in self.names:
                self.names[pid] = _command_line(pid)
            self.peaks[pid] = max(self.peaks.get(pid, 0), rss, hwm)
            total += rss
        self.tree_peak = max(self.tree_peak, total)
        self.samples += 1

    def stop(self) -> None:
        self._stop.set()

    @property
    def largest(self) -> tuple[int, str]:
        if not self.peaks:
            return 0, "?"
        pid = max(self.peaks, key=self.peaks.__getitem__)
        return self.peaks[pid], self.names.get(pid, "?")


@dataclass(frozen=True)
class ChildRun:
    label: str
    seconds: float
    returncode: int
    largest_rss: int
    largest_name: str
    tree_rss: int
    processes: tuple[tuple[str, int], ...]  # (name, peak) per process seen, largest first
    children_maxrss: int  # getrusage(RUSAGE_CHILDREN).ru_maxrss after it, bytes
    stdout: str
    stderr: str


def run_child(label: str, argv: Sequence[str], env: dict[str, str], cwd: Path) -> ChildRun:
    """Run one child to its end, sampling its process tree; its wall time from start to exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out, stderr=err)
        sampler = TreeSampler(process.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        # The sampler reads VmHWM while the process exists; wait without reaping, so the last
        # sample still sees the finished process's peak, then reap it.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        seconds = time.perf_counter() - started
        sampler.stop()
        thread.join()
        sampler.sample()
        returncode = process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    largest, name = sampler.largest
    processes = tuple(
        sorted(((sampler.names[p], peak) for p, peak in sampler.peaks.items()), key=lambda item: -item[1])
    )
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    maxrss = int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
    return ChildRun(label, seconds, returncode, largest, name, sampler.tree_peak, processes, maxrss, stdout, stderr)


# --- the two children -----------------------------------------------------------------------


def _child_environment(api_url: str | None) -> dict[str, str]:
    """A user's environment: no M3SYNC_* settings; Prefect as tests/_cli.py sets it, but the API
    URL only with ``--prefect server`` (without it the command starts its ephemeral server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("M3SYNC_", "SP_API_DEFAULT", "PREFECT_API_URL"))}
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def run_baseline(settlement: Path, env: dict[str, str]) -> ChildRun:
    return run_child("read_csv", [sys.executable, "-c", BASELINE_CODE, str(settlement)], env, REPO)


def run_command(settlement: Path, folder: Path, run: int, env: dict[str, str]) -> ChildRun:
    home, report = folder / f"home-{run}", folder / f"report-{run}.xlsx"
    argv = [
        sys.executable,
        "-m",
        "flows.cli",
        "settle",
        str(settlement),
        "--sandbox",
        "--dry-run",
        "--json",
        "--report",
        str(report),
        "--home",
        str(home),
    ]
    return run_child("m3sync settle", argv, env, REPO)


def check_command(result: ChildRun, lines: int) -> str:
    """What the command produced, or raises BenchmarkError when it did not settle the file."""
    if result.returncode != 0:
        raise BenchmarkError(f"m3sync settle exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    try:
        document = json.loads(result.stdout)
    except ValueError as exc:
        raise BenchmarkError(f"m3sync settle printed no JSON document ({exc}): {result.stdout[:500]}") from exc
    entries = document.get("settlements", [])
    if len(entries) != 1 or entries[0]["status"] != "dry_run" or entries[0]["line_count"] != lines:
        raise BenchmarkError(
            f"m3sync settle did not settle the file: "
            f"{[(e['status'], e['line_count'], e['reasons'][:3]) for e in entries]}"
        )
    entry = entries[0]
    report = Path(document["report"])
    side = f", lines file {Path(document['lines_file']).name}" if document.get("lines_file") else ""
    return (
        f"settlement {entry['settlement_id']}: {entry['line_count']:,} lines, {entry['status']}, total "
        f"{entry['total_amount']} {entry['currency']}, reconciliation {entry['reconciliation']['status']}; "
        f"workbook {report.name} {report.stat().st_size / 1e6:.1f} MB{side}"
    )


class BenchmarkError(RuntimeError):
    """The command did not run through, so there is nothing to measure."""


def _generate(path: Path, lines: int, seed: int) -> float:
    from sandbox.generator.large import write_large_settlement

    started = time.perf_counter()
    write_large_settlement(path, lines, seed)
    return time.perf_counter() - started


def generate(path: Path, lines: int, seed: int) -> float:
    # In a spawned child: this process stays small, so ru_maxrss of later children is theirs.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_generate, path, lines, seed).result()


class PrefectServer:
    """A Prefect server of the bench's own (``--prefect server``), as ``prefect server start`` would run."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> PrefectServer:
        import socket
        import urllib.request

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**self.env, "PREFECT_UI_ENABLED": "0"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise BenchmarkError("the Prefect server did not start within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- report ---------------------------------------------------------------------------------


def _gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_facts() -> list[str]:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), {_gib(ram)} RAM, {platform.platform()}",
        f"python: {sys.executable} {platform.python_version()}",
    ]


def _describe(run: ChildRun) -> str:
    others = ", ".join(f"{name} {_gib(peak)}" for name, peak in run.processes[1:4])
    return (
        f"  {run.label:<14}{run.seconds:>8.2f} s   largest process {_gib(run.largest_rss)} ({run.largest_name})"
        f"; tree {_gib(run.tree_rss)}" + (f"; others: {others}" if others else "")
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@dataclass(frozen=True)
class ModeResult:
    mode: str
    baseline: tuple[ChildRun, ...]
    command: tuple[ChildRun, ...]

    @property
    def ratio(self) -> float:
        return statistics.median(c.seconds for c in self.command) / statistics.median(b.seconds for b in self.baseline)

    @property
    def peak(self) -> int:
        return max(c.largest_rss for c in self.command)


def measure(mode: str, settlement: Path, folder: Path, lines: int, runs: int) -> ModeResult:
    env = _child_environment(None)
    server = PrefectServer(env) if mode == "server" else None
    if server is not None:
        server.__enter__()
        env = _child_environment(server.url)
    try:
        baseline, command = [], []
        print(
            f"\nPrefect {mode}: "
            + (
                "the command starts its own ephemeral server (what a user without a server gets)"
                if server is None
                else f"a running server at {server.url}, not measured"
            ),
            flush=True,
        )
        for run in range(runs):
            print(f"round {run + 1} (load average {_load()}):", flush=True)
            baseline.append(run_baseline(settlement, env))
            print(_describe(baseline[-1]), flush=True)
            command.append(run_command(settlement, folder, len(list(folder.glob("home-*"))), env))
            print(_describe(command[-1]), flush=True)
            if baseline[-1].returncode != 0:
                raise BenchmarkError(f"read_csv exited {baseline[-1].returncode}: {baseline[-1].stderr[-2000:]}")
            print(
                f"  -> {check_command(command[-1], lines)}; ru_maxrss of the children so far "
                f"{_gib(command[-1].children_maxrss)}",
                flush=True,
            )
        return ModeResult(mode, tuple(baseline), tuple(command))
    finally:
        if server is not None:
            server.__exit__()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the settlement file")
    parser.add_argument("--out", type=Path, help="keep the file, homes and workbooks here (default: temp dir)")
    parser.add_argument("--runs", type=int, default=1, help="rounds of baseline + command (medians)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--prefect",
        choices=("ephemeral", "server", "both"),
        default="ephemeral",
        help="let the command start Prefect's ephemeral server (default), give it a running one, or measure both",
    )
    args = parser.parse_args(argv)
    if args.lines < 1 or args.runs < 1:
        parser.error("--lines and --runs must be >= 1")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return _run(args, args.out.resolve())
    with tempfile.TemporaryDirectory(prefix="bench-settle-") as folder:
        return _run(args, Path(folder))


def _run(args: argparse.Namespace, folder: Path) -> int:
    print(
        f"settle command benchmark: {args.lines:,} lines, seed {args.seed}, {args.runs} round(s), "
        f"Prefect {args.prefect}; files in {folder}"
    )
    for fact in machine_facts():
        print(fact)
    print(f"load average before (1/5/15 min): {_load()}", flush=True)
    settlement = folder / f"settlement_{args.lines}.tsv"
    seconds = generate(settlement, args.lines, args.seed)
    print(
        f"generated {settlement.name} ({settlement.stat().st_size / 1e6:.0f} MB) in {seconds:.1f} s (not timed)",
        flush=True,
    )
    modes = ("ephemeral", "server") if args.prefect == "both" else (args.prefect,)
    try:
        results = [measure(mode, settlement, folder, args.lines, args.runs) for mode in modes]
    except BenchmarkError as exc:
        print(f"ERROR: nothing measured: {exc}", file=sys.stderr)
        return 1
    print(f"\nload average after (1/5/15 min): {_load()}")
    for result in results:
        command_s = statistics.median(c.seconds for c in result.command)
        baseline_s = statistics.median(b.seconds for b in result.baseline)
        print(
            f"{_verdict(result.ratio <= RATIO_TARGET)}  [{result.mode}] command {command_s:.2f} s / read_csv "
            f"{baseline_s:.2f} s = {result.ratio:.1f}x (target <= {RATIO_TARGET:.0f}x)"
        )
        print(
            f"{_verdict(result.peak <= PEAK_RSS_TARGET_BYTES)}  [{result.mode}] largest process of the command "
            f"{result.peak / 1e9:.2f} GB = {_gib(result.peak)} (target <= {PEAK_RSS_TARGET_BYTES / 1e9:.0f} GB)"
        )
    return 0


if __name__ == "__main__":
    # Through the package name, so the spawned generator process unpickles bench.settle_command._generate
    from bench.settle_command import main as package_main

    sys.exit(package_main())
