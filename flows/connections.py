"""Wiring: turn a home folder and ``--sandbox`` into connectors, a state store and options.

Flows get everything they talk to from here, so the same flow runs against the embedded
sandbox or a live M3 and seller account with configuration only. Nothing silently falls back
to the sandbox: without ``--sandbox``, a missing setting raises ``ConfigurationError`` naming
what to configure.

Open connections (httpx clients, the state store's engine, the sandbox's servers) cannot be
sent to another process. What travels to a task in a Dask worker is a `ConnectionSpec` (the
home, the sandbox flag, which systems the run needs and a fingerprint of the configuration):
a pickled `Connections` unpickles as its spec, and a task calls `connected`, which opens that
worker process's own connections once, reuses them for every later task, and closes them when
the process exits.
The sandbox's emulators keep running in the flow's process; workers reach them over HTTP
through the files the sandbox wrote under ``HOME/sandbox``. The state store is shared through
its URL, and its claims keep every posting exactly once across processes.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.amazon import SellerAccounts
from connectors.m3 import IonApiCredentials, M3AuthError, M3Client, M3Operations
from connectors.settings import (
    CONFIG_FILE,
    SANDBOX_M3_PROFILE,
    ConfigurationError,
    LedgerSettings,
    Settings,
    check_state_url,
    decode_error_position,
    load_settings,
    resolve_home,
)
from connectors.state import StateStore
from reconciliation.invoice_policy import MISSING_INVOICES, REFUNDS_WITHOUT_CREDIT, InvoicePolicy
from reconciliation.mapping import GLMapping, MappingError, load_mapping
from reconciliation.tax import TaxProfileError, TaxProfiles, configured_tax_profiles

SANDBOX_COMPANY, SANDBOX_DIVISION = "100", "AAA"


@dataclass
class Connections:
    """Open connections for one flow run; ``close()`` revokes tokens and stops sandboxes."""

    home: Path
    sandbox: bool
    state: StateStore
    m3: M3Operations | None = None
    m3_profile: str = SANDBOX_M3_PROFILE
    divi: str = SANDBOX_DIVISION  # the default division: marketplaces [m3.divisions] does not route
    ledger: LedgerSettings = field(default_factory=LedgerSettings)  # divisions, rate type, fixed rates
    amazon: SellerAccounts | None = None  # one connector per SP-API region
    sandbox_env: Any = None  # sandbox.runtime.SandboxEnvironment when sandbox=True
    need_m3: bool = True
    need_amazon: bool = False
    configuration: str = ""  # fingerprint of what they were opened from (configuration_fingerprint)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def spec(self) -> ConnectionSpec:
        """What another process needs to open the same connections."""
        return ConnectionSpec(self.home, self.sandbox, self.need_m3, self.need_amazon, self.configuration)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Task runners that ship tasks to other processes (Dask) pickle their arguments: only the
        # spec travels. It is not connected on unpickling, since a Dask scheduler unpickles tasks
        # too: the task calls ``connected`` where it runs.
        spec = self.spec
        return (ConnectionSpec, (spec.home, spec.sandbox, spec.need_m3, spec.need_amazon, spec.configuration))

    def division_for(self, marketplace_code: str | None) -> str:
        """The M3 division a settlement of this marketplace posts to, and is read from."""
        return self.ledger.division_for(marketplace_code, self.divi)

    def require_m3(self) -> M3Operations:
        if self.m3 is None:
            raise ConfigurationError(
                "M3 is not configured: set [m3] ionapi in HOME/config.toml or M3SYNC_M3_IONAPI, or use --sandbox"
            )
        return self.m3

    def require_amazon(self) -> SellerAccounts:
        if self.amazon is None:
            raise ConfigurationError(
                "Amazon is not configured: set [amazon] refresh_token, lwa_app_id, "
                "lwa_client_secret and seller_id in HOME/config.toml (or M3SYNC_AMAZON_*), "
                "or use --sandbox"
            )
        return self.amazon

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_connections(
    home: str | Path | None,
    *,
    sandbox: bool,
    need_m3: bool = True,
    need_amazon: bool = False,
    seed: int = 0,
    orders: int = 400,
    time_scale: float | None = None,
) -> Connections:
    """Connect to the sandbox under ``home`` or to the configured live systems. ``time_scale``
    (sandbox only) speeds Amazon's usage plans up on both sides and becomes the home's
    (``sandbox.runtime.start_sandbox``)."""
    home_path = resolve_home(str(home) if home is not None else None)
    try:
        home_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"home folder {home_path}: cannot create it ({exc.strerror or exc}); "
            "choose another with --home or M3SYNC_HOME"
        ) from None
    stack = ExitStack()
    try:
        if sandbox:
            connections = _sandbox_connections(home_path, stack, seed=seed, orders=orders, time_scale=time_scale)
        else:
            connections = _live_connections(home_path, stack, need_m3=need_m3, need_amazon=need_amazon)
    except BaseException:
        stack.close()
        raise
    connections._stack = stack
    connections.configuration = configuration_fingerprint(home_path, sandbox=sandbox)
    return connections


@dataclass(frozen=True)
class ConnectionSpec:
    """The picklable description of a run's connections, sent to tasks in other processes.

    ``configuration`` is `configuration_fingerprint` as the flow's process saw it: a worker that
    sees another configuration under ``home`` (another config.toml, other ``M3SYNC_*``
    variables, a sandbox started since) opens nothing and says so, rather than posting to
    another M3. It holds no secret: secrets enter it as "configured", never as values."""

    home: Path
    sandbox: bool
    need_m3: bool = True
    need_amazon: bool = False
    configuration: str = ""

    def connections(self) -> Connections:
        """This process's connections for the spec: opened at the first task, reused by the next
        ones, closed when the process exits (or replaced once the configuration changed)."""
        identity = (self.home, self.sandbox, self.need_m3, self.need_amazon)
        with _WORKER_LOCK:
            cached = _WORKER_CONNECTIONS.get(identity)
            if cached is not None and cached.configuration == self.configuration:
                return cached
            seen_here = configuration_fingerprint(self.home, sandbox=self.sandbox)
            if seen_here != self.configuration:
                raise ConfigurationError(
                    f"this worker process sees another configuration under {self.home} than the flow run "
                    "(config.toml, M3SYNC_* variables or the sandbox's files): give every worker the same "
                    "home and environment"
                )
            if cached is not None:  # the configuration changed since: the old clients are stale
                _WORKER_CONNECTIONS.pop(identity).close()
            stack = ExitStack()
            try:
                if self.sandbox:
                    connections = _sandbox_clients(self.home, stack)
                else:
                    connections = _live_connections(
                        self.home, stack, need_m3=self.need_m3, need_amazon=self.need_amazon
                    )
            except BaseException:
                stack.close()
                raise
            connections._stack = stack
            connections.need_m3, connections.need_amazon = self.need_m3, self.need_amazon
            connections.configuration = self.configuration
            _WORKER_CONNECTIONS[identity] = connections
            return connections


def connected(connections: Connections | ConnectionSpec) -> Connections:
    """The open connections a task uses: the flow's own when it runs in the flow's process, else
    (a pickled `Connections` arrives as its spec) this process's, opened once from the spec."""
    return connections if isinstance(connections, Connections) else connections.connections()


# Connections opened from a spec in this process (a Dask worker), one set per home and need.
_WORKER_CONNECTIONS: dict[tuple[Path, bool, bool, bool], Connections] = {}
_WORKER_LOCK = threading.Lock()


@atexit.register
def _close_worker_connections() -> None:
    with _WORKER_LOCK:
        while _WORKER_CONNECTIONS:
            _WORKER_CONNECTIONS.popitem()[1].close()


def configuration_fingerprint(home: Path, *, sandbox: bool) -> str:
    """A digest of everything the connections under ``home`` are opened from: the settings (as
    their repr shows them, secrets masked: a secret's value never enters the digest) and, for
    the sandbox, when its start last rewrote its .ionapi and credentials files (new ports)."""
    settings = load_settings(home)
    parts = [repr(settings), repr(settings.ledger)]
    if sandbox:
        for name in ("m3.ionapi", "spapi-credentials.json"):
            try:
                parts.append(f"{name}:{(home / 'sandbox' / name).stat().st_mtime_ns}")
            except OSError:
                parts.append(f"{name}:missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _sandbox_connections(
    home: Path, stack: ExitStack, *, seed: int, orders: int, time_scale: float | None
) -> Connections:
    from sandbox.runtime import start_sandbox

    env = start_sandbox(home, seed=seed, orders=orders, time_scale=time_scale)
    stack.callback(env.stop)
    connections = _sandbox_clients(home, stack)
    connections.sandbox_env = env
    return connections


def _sandbox_clients(home: Path, stack: ExitStack) -> Connections:
    """Clients for the sandbox under ``home`` from the files its start wrote (.ionapi, SP-API credentials)."""
    import json

    folder = home / "sandbox"
    settings = load_settings(home)
    profile = settings.m3.profile if settings.m3 is not None else SANDBOX_M3_PROFILE
    client = M3Client.from_ionapi(folder / "m3.ionapi")
    stack.callback(client.close)
    values: dict[str, Any] = json.loads((folder / "spapi-credentials.json").read_text(encoding="utf-8"))
    amazon = SellerAccounts.from_sandbox_file(values)
    stack.callback(amazon.close)
    state = StateStore(settings.state_url)
    stack.callback(state.close)
    ops = M3Operations(client, profile, cono=SANDBOX_COMPANY, divi=SANDBOX_DIVISION)
    if settings.ledger.divisions:  # a division the sandbox M3 does not know fails here too, naming the key
        ops.check_company(settings.ledger.routed())
    return Connections(
        home=home,
        sandbox=True,
        state=state,
        m3=ops,
        m3_profile=profile,
        divi=SANDBOX_DIVISION,
        ledger=settings.ledger,
        amazon=amazon,
        need_amazon=True,
    )


def checked_settings(home: str | Path | None, *, sandbox: bool, need_m3: bool, need_amazon: bool) -> Settings:
    """Load and check the configuration a run needs; raises ConfigurationError saying what to set.

    The command line calls this before starting a flow run, so a missing setting is one line
    on stderr rather than a failed run.
    """
    home_path = resolve_home(str(home) if home is not None else None)
    settings = load_settings(home_path)
    check_state_url(settings.state_url, settings.state_url_origin)
    if sandbox:
        return settings
    if need_m3:
        m3 = settings.require_m3()
        if m3.ionapi is not None:
            check_ionapi(m3.ionapi)
    if need_amazon:
        amazon = settings.require_amazon()
        if not amazon.seller_id:
            raise ConfigurationError(
                "Amazon seller id missing: set [amazon] seller_id in HOME/config.toml or M3SYNC_AMAZON_SELLER_ID"
            )
    return settings


def check_ionapi(path: Path) -> None:
    """Raise ConfigurationError (one line, no key shown) unless ``path`` is a readable .ionapi file."""
    try:
        IonApiCredentials.from_file(path)
    except M3AuthError as exc:  # missing, not JSON, keys missing: the message names the file, never a key
        raise ConfigurationError(str(exc)) from None
    except UnicodeDecodeError as exc:
        line, column = decode_error_position(exc)
        raise ConfigurationError(
            f"{path}:{line}:{column}: not UTF-8 text; the .ionapi file must be UTF-8 JSON"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f".ionapi file {path}: cannot read it ({exc.strerror or exc})") from None


def _live_connections(home: Path, stack: ExitStack, *, need_m3: bool, need_amazon: bool) -> Connections:
    settings = checked_settings(home, sandbox=False, need_m3=need_m3, need_amazon=need_amazon)
    state = StateStore(settings.state_url)
    stack.callback(state.close)
    connections = Connections(
        home=home, sandbox=False, state=state, need_m3=need_m3, need_amazon=need_amazon, ledger=settings.ledger
    )
    if need_m3 or settings.m3 is not None:  # a dry run still reconciles when M3 is configured
        m3 = settings.require_m3()
        if m3.ionapi is not None:
            client = M3Client.from_ionapi(m3.ionapi, cono=m3.cono, divi=m3.divi, timeout=m3.timeout_seconds)
        else:
            client = M3Client.basic(
                str(m3.base_url),
                str(m3.user),
                m3.password.reveal() if m3.password else "",
                cono=m3.cono,
                divi=m3.divi,
                timeout=m3.timeout_seconds,
            )
        stack.callback(client.close)
        connections.m3 = M3Operations(
            client,
            m3.profile,
            cono=m3.cono,
            divi=m3.divi,
            voucher_wait=m3.voucher_wait_seconds,
            settle_seconds=m3.settle_seconds,
        )
        connections.m3_profile = m3.profile
        if m3.divi:
            connections.divi = m3.divi
        if need_m3:  # a company or division the M3 user may not use is a configuration error (exit 2);
            # without cono/divi configured, the M3 user's defaults are used (and GLS840MI gets the company)
            # nor is a division a marketplace is routed to ([m3.divisions])
            connections.divi = connections.m3.check_company(settings.ledger.routed())[1] or connections.divi
    if need_amazon:
        connections.amazon = SellerAccounts.from_settings(settings.require_amazon())
        stack.callback(connections.amazon.close)
    return connections


def load_tax_profiles(home: Path) -> TaxProfiles:
    """The tax profiles: the shipped ones with ``[tax]`` of ``HOME/config.toml`` applied; a bad
    value is a ConfigurationError naming the file and the key."""
    settings = load_settings(home)
    try:
        return configured_tax_profiles(settings.tax, source=str(home / CONFIG_FILE))
    except TaxProfileError as exc:
        raise ConfigurationError(str(exc), path=home / CONFIG_FILE) from None


def load_gl_mapping(name_or_path: str, home: Path) -> GLMapping:
    """The GL mapping preset or file; a file that is not UTF-8 is a MappingError naming line and column."""
    try:
        return load_mapping(name_or_path, home=home)
    except UnicodeDecodeError as exc:
        line, column = decode_error_position(exc)
        raise MappingError(
            str(name_or_path), f"line {line}, column {column}", "not UTF-8 text; save the mapping file as UTF-8"
        ) from None


def invoice_policy(
    settings: Settings, refunds_without_credit: str | None = None, missing_invoices: str | None = None
) -> InvoicePolicy:
    """What settle does with orders M3 has no credit note or invoice for: the command line's
    choice, else ``[settlement]`` in config.toml, else hold. A value that is not a choice is a
    ConfigurationError (exit 2) naming where it was given."""
    chosen = []
    for key, option, given, choices in (
        ("refunds_without_credit", "--refunds-without-credit", refunds_without_credit, REFUNDS_WITHOUT_CREDIT),
        ("missing_invoices", "--missing-invoices", missing_invoices, MISSING_INVOICES),
    ):
        configured = getattr(settings.settlement, key)
        value, origin = (given, option) if given is not None else (configured, settings.settlement.origins.get(key))
        value = (value or "hold").strip()
        if value not in choices:
            raise ConfigurationError(f"{origin}: {value!r} is not one of {', '.join(choices)}")
        chosen.append(value)
    return InvoicePolicy(*chosen)  # type: ignore[arg-type]  # each checked against its Literal's values above
