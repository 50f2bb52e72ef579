"""Where a run's workbook goes, and getting it there.

``--report PATH`` wins: a local .xlsx, as always. Else ``[reports] location`` in config.toml
(``M3SYNC_REPORTS_LOCATION``), default ``HOME/reports``, takes ``settlements-<UTC time>.xlsx``:

- a folder: a path (relative to HOME) or a ``file:///`` URL; the workbook is written there;
- any fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://…`` in tests; the protocol's
  package, such as s3fs, installed): the workbook is written to a temporary folder and uploaded;
- ``block:<block type>/<name>``, a Prefect filesystem block loaded with ``Block.load``
  (``block:remote-file-system/my-reports``; prefect-aws's ``block:s3-bucket/my-bucket``): the
  same, uploaded with the block's ``write_path``.

A failed upload keeps the workbook under ``HOME/reports`` and is the run's error (``report_error``
in the JSON document), never a lost posting. Everything that can be checked is checked before
anything is posted: the command line checks the location before the flow starts (a block by its
name only: loading one needs Prefect's API), the flow again, with the block loaded, before
reading anything.

When ``--from-amazon`` finds no new settlement report (the normal daily case), no workbook is
written at all (``nothing_new``).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.redact import redact_text, redact_url
from connectors.settings import ConfigurationError, Settings
from reconciliation.exceptions import exceptions
from reconciliation.mapping import GLMapping
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from reconciliation.workbook import WorkbookError, WorkbookInfo, write_workbook

if TYPE_CHECKING:
    from connectors.state import StateStore

REPORTS_FOLDER = "reports"  # under HOME: the default location, and where a workbook whose upload failed is kept
BLOCK_PREFIX = "block:"


def report_path(home: Path, report: str | None, *, now: datetime | None = None) -> Path:
    """The workbook's path, its folder created; raises WorkbookError (one line) when it cannot be written."""
    if report:
        path = Path(report).expanduser().absolute()
    else:
        path = home / REPORTS_FOLDER / workbook_name(now)
    if path.suffix.lower() != ".xlsx":
        raise WorkbookError(f"workbook {path}: must be an .xlsx file")
    if path.is_dir():
        raise WorkbookError(f"workbook {path}: is a folder; give a file name ending in .xlsx")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbookError(f"workbook {path}: cannot create its folder {folder} ({exc.strerror or exc})") from None
    try:
        # The workbook (and any CSV of lines beside it) is written to a new file in the folder
        # and renamed: the folder must take new files, which only trying tells (root ignores modes).
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".m3sync-probe-"):
            pass
    except OSError as exc:
        raise WorkbookError(f"workbook {path}: cannot write in folder {folder} ({exc.strerror or exc})") from None
    return path


def workbook_name(now: datetime | None = None) -> str:
    return f"settlements-{(now or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S')}.xlsx"


@dataclass(frozen=True)
class UrlDestination:
    """An fsspec URL the workbook is uploaded to (``s3://bucket/prefix``)."""

    url: str
    origin: str  # where it was configured, for messages

    def shown(self) -> str:
        return redact_url(self.url)

    def upload(self, local: Path) -> str:
        """Copy ``local`` into the location; the URL it has there (credentials masked)."""
        from fsspec.core import url_to_fs

        filesystem, root = url_to_fs(self.url)
        filesystem.makedirs(root, exist_ok=True)
        filesystem.put_file(str(local), f"{root.rstrip('/')}/{local.name}")
        return f"{self.shown().rstrip('/')}/{local.name}"


@dataclass(frozen=True)
class BlockDestination:
    """A Prefect filesystem block (anything with ``write_path``) the workbook is uploaded to."""

    slug: str  # "<block type>/<name>"
    origin: str
    block: Any = field(default=None, compare=False)  # loaded by the flow (needs Prefect's API)

    def shown(self) -> str:
        return f"Prefect block {self.slug}"

    def upload(self, local: Path) -> str:
        written = str(self.block.write_path(local.name, local.read_bytes()) or local.name)
        if "://" in written:  # RemoteFileSystem: the URL it wrote to
            return redact_url(written)
        bucket = getattr(self.block, "bucket_name", None)
        if bucket:  # prefect-aws's S3Bucket: the object's key in the bucket
            return f"s3://{bucket}/{written.lstrip('/')}"
        if Path(written).is_absolute():  # LocalFileSystem
            return Path(written).as_uri()
        return f"{BLOCK_PREFIX}{self.slug}/{written}"


Destination = UrlDestination | BlockDestination


@dataclass(frozen=True)
class ReportTarget:
    """Where this run's workbook goes: ``path`` on this machine, and when ``destination`` is set,
    the location it is uploaded to (``path`` is then only its name, written in a temporary folder)."""

    path: Path
    destination: Destination | None = None
    keep_folder: Path | None = None  # where a workbook whose upload failed is kept


def report_target(
    home: Path, report: str | None, settings: Settings, *, now: datetime | None = None, load_block: bool = True
) -> ReportTarget:
    """The run's workbook target, checked (module docstring); raises WorkbookError or
    ConfigurationError, one line each. ``load_block=False`` checks a block's name only."""
    location, origin = settings.reports.location, settings.reports.origin
    if report or location is None:
        return ReportTarget(report_path(home, report, now=now))
    name = workbook_name(now)
    folder = _local_folder(location, home)
    if folder is not None:
        return ReportTarget(report_path(home, str(folder / name)))
    keep = home / REPORTS_FOLDER
    if location.startswith(BLOCK_PREFIX):
        slug = location.removeprefix(BLOCK_PREFIX).strip("/")
        block_type, _, block_name = slug.partition("/")
        if not block_type or not block_name or "/" in block_name:
            raise ConfigurationError(
                f"{origin}: {location!r} must name a Prefect block as block:<block type>/<name>, "
                "e.g. block:remote-file-system/my-reports"
            )
        destination: Destination = BlockDestination(slug, origin, _load_block(slug, origin) if load_block else None)
    else:
        destination = UrlDestination(location, origin)
        _check_url(destination)
    return ReportTarget(Path(name), destination, keep)


def _local_folder(location: str, home: Path) -> Path | None:
    """The folder a location names on this machine (a path or file:// URL); None for a remote one."""
    scheme = urllib.parse.urlsplit(location).scheme
    if location.startswith(BLOCK_PREFIX) or (len(scheme) > 1 and scheme != "file"):
        return None  # a one-letter "scheme" is a Windows drive
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(location).path))
    folder = Path(location).expanduser()
    return folder if folder.is_absolute() else home / folder


def _check_url(destination: UrlDestination) -> None:
    """The URL's protocols are known and their packages installed; nothing is connected to yet
    (an FTP or SFTP file system would connect as it is made)."""
    from fsspec import get_filesystem_class
    from fsspec.core import split_protocol

    try:
        for protocol in (split_protocol(destination.url)[0] or "").split("::"):  # "simplecache::s3://…"
            get_filesystem_class(protocol)
    except ImportError as exc:  # fsspec names the package: "Install s3fs to access S3"
        raise ConfigurationError(
            f"{destination.origin}: {destination.shown()} needs a package that is not installed ({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - fsspec raises ValueError and others for a URL it cannot use
        raise ConfigurationError(
            f"{destination.origin}: {destination.shown()} is not a location fsspec can write to "
            f"({type(exc).__name__}: {redact_text(_first_line(exc))}); give a folder, an fsspec URL such as "
            "s3://bucket/prefix, or block:<block type>/<name>"
        ) from None


def _load_block(slug: str, origin: str) -> Any:
    from prefect.blocks.core import Block

    try:
        block = Block.load(slug)
    except Exception as exc:  # noqa: BLE001 - any failure means "create or fix the block"
        raise ConfigurationError(
            f"{origin}: Prefect block {slug!r} could not be loaded ({type(exc).__name__}: "
            f"{redact_text(_first_line(exc))}); create it in the Prefect UI or with `prefect block create`"
        ) from None
    if not callable(getattr(block, "write_path", None)):
        raise ConfigurationError(
            f"{origin}: Prefect block {slug!r} ({type(block).__name__}) cannot write files; use a filesystem "
            "block such as remote-file-system or prefect-aws's s3-bucket"
        )
    return block


@dataclass(frozen=True)
class PublishedWorkbook:
    """Where the run's workbook is. ``path`` (the JSON's ``report``) and ``lines_file`` are local
    paths, or the URLs they were uploaded to; ``link`` is a URL for the link artifact (file://
    for a local file); ``upload_error`` says why an upload failed (the workbook is then kept
    locally, at ``path``)."""

    path: str
    lines_file: str | None
    link: str
    upload_error: str | None = None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def write_report(target: ReportTarget, write: Callable[[Path], WorkbookInfo]) -> PublishedWorkbook:
    """``write`` the workbook for ``target`` and upload it (with its file of lines, when there is one)."""
    if target.destination is None:
        info = write(target.path)
        lines = str(info.lines_file) if info.lines_file is not None else None
        return PublishedWorkbook(str(info.path), lines, info.path.absolute().as_uri())
    with tempfile.TemporaryDirectory(prefix="m3sync-workbook-") as temporary:
        info = write(Path(temporary) / target.path.name)
        files = [info.path, *([info.lines_file] if info.lines_file is not None else [])]
        try:
            # The file of lines first: the workbook never links to a file that is not there.
            urls = [target.destination.upload(f) for f in reversed(files)][::-1]
        except Exception as exc:  # noqa: BLE001 - any upload failure: the workbook is kept, the run says so
            return _kept(files, target, exc)
    return PublishedWorkbook(urls[0], urls[1] if len(urls) > 1 else None, urls[0])


def _kept(files: Sequence[Path], target: ReportTarget, exc: Exception) -> PublishedWorkbook:
    from flows.failures import run_logger

    assert target.keep_folder is not None and target.destination is not None
    target.keep_folder.mkdir(parents=True, exist_ok=True)
    kept = [Path(shutil.move(f, target.keep_folder / f.name)) for f in files]
    problem = (
        f"workbook not uploaded to {target.destination.shown()} ({type(exc).__name__}: "
        f"{redact_text(_first_line(exc))}); it is kept at {kept[0]}"
    )
    run_logger().warning(problem)  # an expected condition: one line, no traceback
    return PublishedWorkbook(
        str(kept[0]), str(kept[1]) if len(kept) > 1 else None, kept[0].absolute().as_uri(), upload_error=problem
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["(no message)"])[0][:300]


@dataclass(frozen=True, eq=False)
class RunReport:
    """What the run's workbook is made of; its Exceptions sheet and the exceptions artifact list
    the same rows (``exceptions``: one source, the same day). Compares by identity."""

    outcomes: Sequence[SettlementOutcome]
    file_errors: Sequence[SettlementFileError]
    mapping: GLMapping
    mapping_file: str
    not_settled_after_days: int
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def write(self, path: Path) -> WorkbookInfo:
        return write_workbook(
            self.outcomes,
            path,
            file_errors=self.file_errors,
            mapping_file=self.mapping_file,
            not_settled_after_days=self.not_settled_after_days,
            mapping=self.mapping,
            generated_at=self.generated_at,
        )

    def exceptions(self) -> pd.DataFrame:
        """The Exceptions sheet's rows (``reconciliation.exceptions.EXCEPTION_COLUMNS``)."""
        return exceptions(
            self.outcomes,
            today=self.generated_at.date(),
            mapping_file=self.mapping_file,
            not_settled_after_days=self.not_settled_after_days,
            file_errors=self.file_errors,
        )


@dataclass(frozen=True)
class NothingNew:
    """A run from Amazon that found no new settlement report: no workbook, one line saying since when."""

    since: datetime

    @property
    def since_text(self) -> str:
        return f"{self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"

    def text(self) -> str:
        return (
            f"nothing new since {self.since_text}: Amazon listed no new settlement report; "
            "nothing was processed and no workbook was written"
        )


def nothing_new(state: StateStore, from_amazon: bool, sources: Any) -> NothingNew | None:
    """``NothingNew`` when a run from Amazon read nothing (no settlement, no unreadable or failed
    report); ``since``: the watermark it listed from. Call before the watermark is moved on."""
    if not from_amazon or sources.settlements or sources.errors or sources.failures:
        return None
    from flows.settlement_steps import RETENTION_DAYS, SETTLEMENT_REPORTS_WATERMARK

    watermark = state.get_watermark(SETTLEMENT_REPORTS_WATERMARK)
    since = datetime.fromisoformat(watermark) if watermark else datetime.now(UTC) - timedelta(days=RETENTION_DAYS - 1)
    return NothingNew(since if since.tzinfo is not None else since.replace(tzinfo=UTC))


def report_keys(workbook: object, quiet: NothingNew | None) -> dict[str, Any]:
    """The JSON document's keys ``settle_document`` does not know: ``nothing_new`` (with
    ``report`` null and ``report_skipped`` saying since when), or an upload's ``report_error``."""
    if quiet is not None:
        return {"nothing_new": True, "report": None, "report_skipped": quiet.text()}
    keys: dict[str, Any] = {"nothing_new": False}
    if isinstance(workbook, PublishedWorkbook) and workbook.upload_error:
        keys["report_error"] = workbook.upload_error
    return keys
