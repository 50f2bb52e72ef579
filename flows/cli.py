"""The ``m3sync`` command line (docs/cli-contract.md).

Exit codes (flows/exit_codes.py): 0 success (posted, dry run, duplicate, or submitted: M3's GL
batch job has not booked a voucher yet, a note on stderr says so); 2 invalid input or
configuration; 3 a settlement held (by a gate, or M3 refused its voucher); 4 M3 or Amazon
unreachable or rejecting; 5 an unexpected error in m3sync itself (the flow run's log has the
traceback). Several at once: 4, then 5, then 2, then 3. Exit code 1 is never used. No
traceback reaches the terminal: every failure is one line on stderr, and for ``settle`` each
reason of an invalid, held or failed settlement too (``file:line:column: message`` for input
errors), while ``--json`` keeps stdout to exactly one JSON document.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE
from flows.ops import add_ops_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m3sync", description="Infor M3 <-> Amazon Selling Partner API")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def home_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--home",
            metavar="DIR",
            help="state, sandbox and reports, and Prefect's files for demo, sandbox and settle (HOME/prefect "
            "unless PREFECT_HOME is set; default $M3SYNC_HOME, else ./.m3sync)",
        )

    demo = commands.add_parser("demo", help="run the whole story against the embedded sandbox")
    home_option(demo)
    demo.add_argument("--seed", type=int, default=0, help="seed of the sandbox world (first run of a home)")
    demo.add_argument("--orders", type=int, default=400, help="Amazon orders in the world (first run of a home)")
    demo.set_defaults(handler=_demo)

    sandbox = commands.add_parser("sandbox", help="run the M3 and SP-API emulators in the foreground")
    home_option(sandbox)
    sandbox.add_argument("--m3-port", type=int, default=0, metavar="P", help="M3 port (default: a free one)")
    sandbox.add_argument(
        "--spapi-port",
        type=int,
        default=0,
        metavar="Q",
        help="SP-API North America port; Europe and Far East take the next two (default: free ones)",
    )
    sandbox.add_argument("--seed", type=int, default=0, help="seed of the sandbox world (first run of a home)")
    sandbox.add_argument(
        "--advance",
        type=_advance_days,
        metavar="DAYS",
        help="move the sandbox world on by DAYS (14d, 2w or 14): new orders, their M3 invoices and the "
        "settlement reports Amazon creates in that time; then exit",
    )
    sandbox.set_defaults(handler=_sandbox)

    settle = commands.add_parser("settle", help="settle Amazon settlement reports in M3's general ledger")
    settle.add_argument("files", nargs="*", metavar="FILE", help="settlement flat files (V2, or legacy V1)")
    settle.add_argument("--from-amazon", action="store_true", help="settlement reports listed from SP-API")
    settle.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    settle.add_argument(
        "--dry-run",
        action="store_true",
        help="check, map and reconcile (with M3 configured: reports what would be held); post nothing",
    )
    settle.add_argument("--report", metavar="PATH", help="workbook path (default HOME/reports/settlements-<time>.xlsx)")
    settle.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    settle.add_argument(
        "--mapping",
        default="invoice-clearing",
        help="GL mapping preset or file (invoice-clearing, summary, or HOME/mappings/NAME.yaml)",
    )
    settle.add_argument("--tolerance", default="0.01", help="reconciliation tolerance per order (default 0.01)")
    settle.add_argument(
        "--strict",
        action="store_true",
        help="hold settlements with any order not matching M3's invoices (amount mismatches, orders "
        "not settled, and refunds or missing invoices even when the two options below post them)",
    )
    settle.add_argument(
        "--refunds-without-credit",
        metavar="hold|returns",
        help="a refund M3 has no credit note for: hold the settlement until M3 has it, or post the refund "
        "to sales returns with the VAT reversal (default: [settlement] refunds_without_credit in "
        "config.toml, else hold)",
    )
    settle.add_argument(
        "--missing-invoices",
        metavar="hold|suspense",
        help="an order M3 has no invoice for: hold the settlement until M3 has it, or post the order's "
        "sales to a suspense account (default: [settlement] missing_invoices in config.toml, else hold)",
    )
    settle.add_argument(
        "--not-settled-after",
        metavar="DAYS",
        type=_days,
        help="list an M3 invoice no settlement has paid this many days after its date as an exception "
        "(default: [settlement] not_settled_after_days in config.toml, else 30)",
    )
    settle.add_argument(
        "--first-open-period",
        action="store_true",
        help="post a voucher whose accounting period is closed in M3 in the first open period (default: hold)",
    )
    home_option(settle)
    settle.set_defaults(handler=_settle)

    orders = commands.add_parser(
        "orders", help="create M3 customer orders for the Amazon orders updated since the last run"
    )
    orders.add_argument(
        "--since", metavar="ISO", help="read orders updated after this moment (default: the last run's)"
    )
    orders.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    orders.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(orders)
    orders.set_defaults(handler=_orders)

    reverse = commands.add_parser(
        "reverse", help="reverse a settlement's vouchers in M3 so that it can be posted again (as a new version)"
    )
    reverse.add_argument("settlement_id", metavar="SETTLEMENT_ID", help="Amazon's settlement id")
    reverse.add_argument("--date", metavar="YYYY-MM-DD", help="accounting date of the reversal (default today, UTC)")
    reverse.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    reverse.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(reverse)
    reverse.set_defaults(handler=_reverse)

    report = commands.add_parser(
        "report",
        help="write the settlement workbook for the settlements deposited in a date range (reads HOME only)",
    )
    report.add_argument("--from", dest="first", required=True, metavar="DATE", help="first deposit date (YYYY-MM-DD)")
    report.add_argument("--to", dest="last", required=True, metavar="DATE", help="last deposit date, included")
    report.add_argument(
        "--report", metavar="PATH", help="workbook path (default HOME/reports/period-<from>-to-<to>.xlsx)"
    )
    report.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(report)
    report.set_defaults(handler=_report)

    shipments = commands.add_parser(
        "shipments", help="confirm to Amazon the packages M3 delivered with a tracking number, each once"
    )
    shipments.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    shipments.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(shipments)
    shipments.set_defaults(handler=_shipments)

    refunds = commands.add_parser(
        "refunds", help="credit in M3 (a return order) each refund of an order order sync created, once"
    )
    refunds.add_argument(
        "--file",
        dest="files",
        nargs="+",
        action="extend",
        metavar="PATH",
        help="settlement files whose Refund rows to credit (default: the reports Amazon created since the last run)",
    )
    refunds.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    refunds.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(refunds)
    refunds.set_defaults(handler=_refunds)

    catalog = commands.add_parser(
        "catalog", help="patch Amazon's listing attributes where M3's item master changed (catalog.yaml's mapping)"
    )
    catalog.add_argument(
        "--full", action="store_true", help="send every mapped attribute, changed or not (a full resync)"
    )
    catalog.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    catalog.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(catalog)
    catalog.set_defaults(handler=_catalog)

    inventory = commands.add_parser(
        "inventory", help="publish M3's available-to-sell quantities and prices to Amazon listings (changes only)"
    )
    inventory.add_argument("--full", action="store_true", help="send every listing's quantity and price")
    inventory.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    inventory.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    home_option(inventory)
    inventory.set_defaults(handler=_inventory)
    letters = commands.add_parser("deadletters", help="list, show, replay or discard what a flow could not process")
    actions = letters.add_subparsers(dest="deadletters_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the open dead letters (reads HOME only)")
    listing.add_argument("--all", action="store_true", help="also the replayed and discarded ones")
    listing.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    show = actions.add_parser("show", help="one letter with its payload (reads HOME only)")
    show.add_argument("letter_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    replay = actions.add_parser("replay", help="run the flow's code for the letter's entity again")
    replay.add_argument("letter_id", type=int, nargs="?", metavar="ID")
    replay.add_argument("--all", action="store_true", help="every open letter")
    replay.add_argument("--sandbox", action="store_true", help="use the embedded emulators under HOME/sandbox")
    replay.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    discard_parser = actions.add_parser("discard", help="close a letter without replaying it")
    discard_parser.add_argument("letter_id", type=int, metavar="ID")
    discard_parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    for action in (listing, show, replay, discard_parser):
        home_option(action)
        action.set_defaults(handler=_deadletters)
    add_ops_command(commands)
    from flows.state_command import add_state_command  # `m3sync state migrate --to URL`

    add_state_command(commands)
    return parser


# Defaults for Prefect when the user has not set them (set before Prefect is imported): a
# loaded laptop needs more than 20 s to start the ephemeral server (Prefect's default), and
# offline machines log telemetry errors.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def _days(text: str) -> int:
    """A whole number of days, at least 1 (argparse: a bad value is one line and exit 2)."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, at least 1, got {text!r}")
    return days


def _prefect_files_in_home(args: argparse.Namespace) -> None:
    """Prefect's files under HOME/prefect (unless PREFECT_HOME is set), before Prefect is imported;
    for the commands that run it (demo, sandbox, settle), which make the home anyway."""
    from connectors.home import resolve_home
    from flows.prefect_server import keep_prefect_home_in

    keep_prefect_home_in(resolve_home(args.home), create=True)


def _advance_days(text: str) -> int:
    """``14d``, ``2w`` or ``14``: whole days, at least 1."""
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in ("d", "w") else (text, "d")
    try:
        return _days(str(int(number) * (7 if unit == "w" else 1)))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"must be days (14d, 14) or weeks (2w), at least 1 day, got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if args.command in ("demo", "sandbox"):  # settle: once its arguments are checked
        _prefect_files_in_home(args)
    from connectors.redact import install_redaction

    install_redaction()
    try:
        code = int(args.handler(args))
    except Exception as exc:  # noqa: BLE001 - one line and a documented exit code, never a traceback
        code = _failure(exc)
    # The process ends next: the interpreter's final collections need not walk pandas', Prefect's
    # and scikit-learn's objects one by one (~1 s on 2 cores); memory goes back to the OS at exit.
    gc.freeze()
    return code


class _WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, but without its traceback: the terminal gets one
    line per failure, while Prefect's API handler still sends the whole traceback to the UI."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def concise_console_logs() -> None:
    """Give Prefect's console handlers the traceback-free formatter (after Prefect set them up)."""
    import prefect  # noqa: F401 - sets up Prefect's logging
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(l for l in logging.Logger.manager.loggerDict.values() if isinstance(l, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter))


def _fail(message: str, code: int) -> int:
    from connectors.redact import redact_text

    print(f"m3sync: {redact_text(' '.join(message.split()))}", file=sys.stderr)
    return code


def _known_failure(exc: BaseException) -> int | None:
    """Exit code for failures we explain in one line (no traceback), else None."""
    from flows.failures import known_failure

    return known_failure(exc)


def _failure(exc: BaseException, flow_run_id: Any = None) -> int:
    """One line on stderr and the exit code: a known failure as it is, anything else as exit 5."""
    code = _known_failure(exc)
    if code is not None:
        return _fail(str(exc), code)
    first = (str(exc).strip().splitlines() or ["(no message)"])[0]
    prefect_down = _prefect_unreachable(exc)
    if prefect_down:
        return _fail(prefect_down, EXIT_UNREACHABLE)
    where = (
        f"the traceback is in the log of flow run {flow_run_id} (prefect flow-run logs {flow_run_id})"
        if flow_run_id
        else "please report it with the command that was run"
    )
    return _fail(f"unexpected error in m3sync: {type(exc).__name__}: {first}; {where}", EXIT_FAILED)


def _prefect_unreachable(exc: BaseException) -> str:
    """The one line for Prefect's API being out of reach (a configured server that is down, or
    the temporary server not starting in time on a busy machine), else "". Prefect raises plain
    RuntimeErrors for both, so they are told by their wording."""
    text = str(exc)
    if not isinstance(exc, RuntimeError):
        return ""
    if text.startswith("Failed to reach API at"):
        url = text.removeprefix("Failed to reach API at").strip()
        return (
            f"Prefect's API at {url} does not answer: start that server, or unset PREFECT_API_URL "
            "to let m3sync start a temporary one"
        )
    if "ephemeral Prefect API server" in text:
        timeout = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
        return (
            f"Prefect's temporary server did not start within {timeout} s (a busy machine?): set "
            "PREFECT_API_URL to a running Prefect server, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        )
    return ""


def problem_lines(document: dict[str, Any]) -> list[str]:
    """One stderr line per reason of each invalid, held or failed entry (``file:line:column: message``
    for input errors), a note per reason of a submitted one (exit 0: the next run confirms it),
    and one for a workbook that could not be written."""
    lines = []
    for entry in document["settlements"]:
        if entry["status"] not in ("invalid", "held", "failed", "submitted"):
            continue
        where = (
            entry["source"]
            if entry["settlement_id"] is None
            else f"{entry['source']}: settlement {entry['settlement_id']}"
        )
        for reason in entry["reasons"]:
            text = " ".join(str(reason).split())
            # A file's input errors already start with "file:line:column:".
            lines.append(
                text
                if entry["status"] == "invalid" and entry["settlement_id"] is None
                else f"{where}: {entry['status']}: {text}"
            )
    if document.get("report_error"):
        lines.append(f"m3sync: {document['report_error']}")
    return lines


def _settle(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    if not args.files and not args.from_amazon:
        return _fail("settle needs FILE arguments or --from-amazon", EXIT_INVALID)
    if args.files and args.from_amazon:
        return _fail("give FILE arguments or --from-amazon, not both", EXIT_INVALID)
    try:
        if Decimal(args.tolerance) < 0:
            raise InvalidOperation
    except InvalidOperation:
        return _fail(f"--tolerance {args.tolerance!r} is not a non-negative amount", EXIT_INVALID)
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        return _fail(f"{missing[0]}: no such file", EXIT_INVALID)

    from flows.prefect_server import start_ephemeral_server

    _prefect_files_in_home(args)
    server = start_ephemeral_server()  # first: it boots in its own process while the rest imports
    from flows.connections import checked_settings, invoice_policy, load_gl_mapping, load_tax_profiles
    from flows.reports import report_target

    # Everything that can be checked is, before Prefect starts and anything is posted (a
    # failure here is one line from main(); the server is stopped at exit).
    settings = checked_settings(args.home, sandbox=args.sandbox, need_m3=not args.dry_run, need_amazon=args.from_amazon)
    invoice_policy(settings, args.refunds_without_credit, args.missing_invoices)
    report_target(settings.home, args.report, settings, load_block=False)  # a block is loaded by the flow
    load_gl_mapping(args.mapping, settings.home)
    load_tax_profiles(settings.home)
    try:
        from flows.arrow_memory import use_jemalloc_for_arrow

        use_jemalloc_for_arrow()
        from flows.contract import run_document, run_exit_code
        from flows.settlement import settlement_reconciliation

        concise_console_logs()
        import sklearn.ensemble  # noqa: F401 - the flow fits the anomaly model: imported while the server boots

        # What is imported now lives until exit: no garbage collection needs to walk it again (~0.5 s).
        gc.freeze()
    finally:
        server.wait()
    with server.in_use():
        state = settlement_reconciliation(
            files=[os.path.abspath(f) for f in args.files],
            from_amazon=args.from_amazon,
            sandbox=args.sandbox,
            dry_run=args.dry_run,
            report=args.report,
            home=args.home,
            mapping=args.mapping,
            tolerance=args.tolerance,
            strict=args.strict,
            first_open_period=args.first_open_period,
            refunds_without_credit=args.refunds_without_credit,
            missing_invoices=args.missing_invoices,
            not_settled_after_days=args.not_settled_after,
            return_state=True,
        )
    try:
        document = run_document(state)  # Completed, or Failed because of its settlements
    except Exception as exc:  # noqa: BLE001 - known failures become one line and an exit code
        return _failure(exc, state.state_details.flow_run_id)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        from flows.demo import summary_lines

        for line in summary_lines(document):
            print(line)
    sys.stdout.flush()
    for line in problem_lines(document):
        print(line, file=sys.stderr)
    return run_exit_code(state)


def _sync_command(
    args: argparse.Namespace,
    *,
    check: Callable[[Path], object],
    run: Callable[[], Any],
    summary: Callable[[dict[str, Any]], str],
    problems: Callable[[dict[str, Any]], list[str]] | None = None,
    need_amazon: bool = True,
) -> int:
    """A sync command's whole life: Prefect's temporary server boots while the settings and
    ``check`` (the command's own files: one line and exit 2 before anything runs) are read; the
    flow (``run``) runs in it; its document is printed (``--json``) or ``summary``; then each of
    ``problems`` on stderr and the run's exit code, or, without ``problems``, the failed run's
    one-line message and its exit code."""
    from flows.prefect_server import start_ephemeral_server

    _prefect_files_in_home(args)
    server = start_ephemeral_server()
    try:
        from flows.connections import checked_settings
        from flows.contract import run_document, run_exit_code

        settings = checked_settings(args.home, sandbox=args.sandbox, need_m3=True, need_amazon=need_amazon)
        check(settings.home)
        concise_console_logs()
    finally:
        server.wait()
    with server.in_use():
        state = run()
    try:
        document = run_document(state)
    except Exception as exc:  # noqa: BLE001 - known failures become one line and an exit code
        return _failure(exc, state.state_details.flow_run_id)
    print(json.dumps(document, indent=2) if args.json else summary(document))
    sys.stdout.flush()
    code = run_exit_code(state)
    if problems is not None:
        for line in problems(document):
            print(line, file=sys.stderr)
        return code
    return code if code == EXIT_OK else _fail(state.message or "", code)


def _orders(args: argparse.Namespace) -> int:
    """``m3sync orders``: exit 0 when every order is done, 3 when one was dead-lettered."""

    # The flows are imported once the temporary Prefect server is booting (in _sync_command).
    def check(home: Path) -> None:
        from flows.orders import parse_since

        parse_since(args.since)  # a bad moment is one line before anything runs
        _routing_checked(home, args.sandbox)

    def run() -> Any:
        from flows.orders import order_sync

        return order_sync(since=args.since, sandbox=args.sandbox, home=args.home, return_state=True)

    return _sync_command(args, check=check, run=run, summary=_counts_summary)


def _routing_checked(home: Path, sandbox: bool) -> None:
    """``order_routing.yaml`` read once before anything runs: a bad one is one line and exit 2."""
    from connectors.settings import ConfigurationError
    from sync.routing import RoutingSettingsError, load_routing

    try:
        load_routing(home, sandbox=sandbox)
    except RoutingSettingsError as exc:
        raise ConfigurationError(str(exc)) from None


def _counts_summary(document: dict[str, Any]) -> str:
    counts = document["counts"]
    return ", ".join(f"{count} {outcome.replace('_', ' ')}" for outcome, count in counts.items())


def _refunds(args: argparse.Namespace) -> int:
    """``m3sync refunds``: exit 0 when every refund is done, 3 when one was dead-lettered, 2 bad
    configuration or an unreadable file, 4 M3 or Amazon out of reach."""
    from_amazon = not args.files

    def run() -> Any:
        from flows.refunds import refund_credit

        return refund_credit(
            files=args.files, from_amazon=from_amazon, sandbox=args.sandbox, home=args.home, return_state=True
        )

    return _sync_command(
        args,
        check=lambda home: _routing_checked(home, args.sandbox),
        run=run,
        summary=_counts_summary,
        need_amazon=from_amazon,
    )


def _shipments(args: argparse.Namespace) -> int:
    """``m3sync shipments``: the shipment-sync flow; exit 0, 3 when an order was dead-lettered,
    2 bad configuration, 4 M3 or Amazon out of reach."""

    def check(home: Path) -> None:
        from flows.shipments import check_mappings

        check_mappings(home, sandbox=args.sandbox)

    def run() -> Any:
        from flows.shipments import shipment_sync

        return shipment_sync(sandbox=args.sandbox, home=args.home, return_state=True)

    def summary(document: dict[str, Any]) -> str:
        from flows.shipments import shipment_summary

        return shipment_summary(document)

    return _sync_command(
        args,
        check=check,
        run=run,
        summary=summary,
        problems=lambda document: [
            f"order {letter['order']}: dead letter {letter['dead_letter']}: {letter['error']}"
            for letter in document["dead_lettered"]
        ],
    )


def _catalog(args: argparse.Namespace) -> int:
    """``m3sync catalog``: the catalog-sync flow; exit 0, 3 when a listing was held or rejected,
    2 bad configuration (config.toml, catalog.yaml, order_routing.yaml), 4 M3 or Amazon out of reach."""

    def check(home: Path) -> None:
        from flows.catalog_steps import load_settings_of

        load_settings_of(home, sandbox=args.sandbox)

    def run() -> Any:
        from flows.catalog import catalog_sync

        return catalog_sync(full=args.full, sandbox=args.sandbox, home=args.home, return_state=True)

    def summary(document: dict[str, Any]) -> str:
        from flows.catalog_steps import OUTCOMES

        return ", ".join(f"{document['catalog'][outcome]} {outcome}" for outcome in OUTCOMES)

    return _sync_command(args, check=check, run=run, summary=summary)


def _inventory(args: argparse.Namespace) -> int:
    """``m3sync inventory``: the inventory-sync flow; exit 0, 3 when a listing was held, rejected
    (dead-lettered) or is an exception, 2 bad configuration, 4 M3 or Amazon out of reach."""

    def check(home: Path) -> None:
        from flows.inventory import check_settings

        check_settings(home, sandbox=args.sandbox)

    def run() -> Any:
        from flows.inventory import inventory_sync

        return inventory_sync(full=args.full, sandbox=args.sandbox, home=args.home, return_state=True)

    def summary(document: dict[str, Any]) -> str:
        from flows.inventory_steps import inventory_summary

        return inventory_summary(document)

    def problems(document: dict[str, Any]) -> list[str]:
        body = document["inventory"]
        return [
            *(
                f"{entry['sku']} ({entry['marketplace']}): {entry['outcome']}: {entry['reason']}"
                for entry in body["items"]
                if entry["outcome"] != "sent"
            ),
            *(f"{entry['sku']} ({entry['marketplace']}): {entry['reason']}" for entry in body["exceptions"]),
        ]

    return _sync_command(args, check=check, run=run, summary=summary, problems=problems)


def _deadletters(args: argparse.Namespace) -> int:
    """``m3sync deadletters list|show ID|replay ID|--all|discard ID`` (flows/dead_letters.py)."""
    from flows.dead_letters import deadletters_command

    return deadletters_command(args)


def _reverse(args: argparse.Namespace) -> int:
    from datetime import date

    on = None
    if args.date is not None:
        try:
            on = date.fromisoformat(args.date)
        except ValueError:
            return _fail(f"--date {args.date!r} is not a date (YYYY-MM-DD)", EXIT_INVALID)
    from flows.connections import checked_settings, open_connections
    from flows.reversal import reverse_settlement

    checked_settings(args.home, sandbox=args.sandbox, need_m3=True, need_amazon=False)
    with open_connections(args.home, sandbox=args.sandbox, need_m3=True) as connections:
        outcome = reverse_settlement(connections, args.settlement_id, on)
    if args.json:
        print(json.dumps(outcome.document(), indent=2))
    else:
        for voucher in outcome.vouchers:
            print(
                f"{voucher.key}  reverses {voucher.reverses} ({voucher.original_m3_ref}): "
                f"{voucher.m3_ref or voucher.batch}"
            )
        if outcome.status == "reversed":
            print(
                f"settlement {outcome.settlement_id} version {outcome.version} reversed; "
                f"settle posts version {outcome.next_version}"
            )
    sys.stdout.flush()
    for reason in outcome.reasons:
        print(
            f"m3sync: settlement {outcome.settlement_id}: {outcome.status}: {' '.join(reason.split())}", file=sys.stderr
        )
    return outcome.exit_code


def _report(args: argparse.Namespace) -> int:
    from flows.period_report import ReportInputError, parse_period, period_report
    from reconciliation.settled import SettledRecordError

    try:
        first, last = parse_period(args.first, args.last)
        summary = period_report(args.home, first, last, args.report)
    except (ReportInputError, SettledRecordError) as exc:
        return _fail(str(exc), EXIT_INVALID)
    if args.json:
        print(json.dumps(summary.document(), indent=2))
    else:
        for line in summary.summary_lines():
            print(line)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from flows.prefect_server import start_ephemeral_server

    server = start_ephemeral_server()  # boots while the demo's modules import
    try:
        from flows.arrow_memory import use_jemalloc_for_arrow

        use_jemalloc_for_arrow()
        from flows.demo import run_demo

        concise_console_logs()
    finally:
        server.wait()
    with server.in_use():
        return run_demo(args.home, args.seed, orders=args.orders)


def _sandbox(args: argparse.Namespace) -> int:
    from connectors.settings import resolve_home
    from sandbox.runtime import SandboxClockError, start_sandbox

    if args.advance is not None:
        from flows.prefect_server import start_ephemeral_server

        prefect = start_ephemeral_server()  # order and shipment sync run in it
        try:
            from flows.demo import run_advance

            concise_console_logs()
        finally:
            prefect.wait()
        try:
            with prefect.in_use():
                return run_advance(args.home, args.advance)
        except SandboxClockError as exc:
            return _fail(str(exc), EXIT_INVALID)
    home = resolve_home(args.home)
    try:
        env = start_sandbox(home, seed=args.seed, m3_port=args.m3_port, spapi_port=args.spapi_port)
    except OSError as exc:
        return _fail(f"cannot start the sandbox: {exc}", EXIT_INVALID)
    print(f"M3 MI REST   {env.m3.base_url}/m3api-rest/v2/execute   (ION API: {env.m3.base_url}/SANDBOX_TST/M3)")
    for region, server in env.spapi.items():
        print(f"SP-API {region.upper()}    {server.base_url}")
    print(f".ionapi      {env.ionapi_path}")
    print(f"SP-API creds {env.spapi_credentials_path}")
    print(f"world        seed {env.seed}{' (seeded now)' if env.seeded_now else ''}; Ctrl-C stops", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    env.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
