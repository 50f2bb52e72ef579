"""``m3sync state migrate --to URL``: copy the state store (SQLite under HOME, or whatever
``[state] url`` names) into a new, empty database, e.g. PostgreSQL when several workers will
share it. The configuration is not changed: the command prints the line to put in config.toml."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.exit_codes import EXIT_INVALID, EXIT_OK


def add_state_command(commands: Any) -> None:
    """Add ``state`` to the ``m3sync`` parser's subcommands."""
    state = commands.add_parser("state", help="the state store: copy it into another database")
    actions = state.add_subparsers(dest="state_command", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="copy every row of the state store into a new, empty database (stop the flows writing to it first)",
    )
    migrate.add_argument(
        "--to", required=True, metavar="URL", help="target URL, e.g. postgresql+psycopg://user@host/db"
    )
    migrate.add_argument(
        "--home", metavar="DIR", help="state, sandbox and reports (default $M3SYNC_HOME, else ./.m3sync)"
    )
    migrate.set_defaults(handler=migrate_state)


def migrate_state(args: argparse.Namespace) -> int:
    """Copy the home's state store into ``args.to``; one line on stdout, or one on stderr and exit 2."""
    from sqlalchemy.engine import make_url

    from connectors.redact import redact_url
    from connectors.settings import check_state_url, load_settings, resolve_home
    from connectors.state import StateStore, StateStoreError
    from flows.cli import _fail

    settings = load_settings(resolve_home(args.home))
    source_url = settings.state_url
    check_state_url(source_url, settings.state_url_origin)
    check_state_url(args.to, "--to")
    source = make_url(source_url)
    if source.get_backend_name() == "sqlite" and not Path(source.database or "").is_file():
        return _fail(
            f"no state database to copy: {source.database or 'an in-memory SQLite'} is not a file", EXIT_INVALID
        )
    try:
        with StateStore(source_url) as store, StateStore(args.to) as target:
            copied = store.copy_to(target)
    except StateStoreError as exc:
        return _fail(str(exc), EXIT_INVALID)
    rows = ", ".join(f"{count} {table}" for table, count in copied.items())
    shown = redact_url(args.to)
    print(
        f"copied {rows} from {redact_url(source_url)} to {shown}; to use it, set [state] url to that URL "
        f"in {settings.home / 'config.toml'} (or M3SYNC_STATE_URL)"
    )
    return EXIT_OK
