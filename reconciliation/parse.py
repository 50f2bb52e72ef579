"""Settlement flat files (V2, legacy V1) -> ``Settlement`` records, errors collected as data.

Pipeline per file: decode bytes -> check the header line -> read every field as a string
with pyarrow (fast, no type guessing: identifiers such as order-item-code stay exact) ->
split off the summary rows -> per settlement convert amounts (string arithmetic into
integer minor units), dates (format detected per file) and quantities, all vectorised.
V1's one-column-per-kind rows are melted into the V2 long shape (``LINE_COLUMNS``).

Nothing here raises for bad input: every problem becomes a ``SettlementFileError`` naming
file, line and column, and a file with any error yields no settlement.

Decisions on shapes real files have (docs/settlement-vocabulary.md §2) and on fuzzed input:

- lines end with LF or CR LF; a lone CR is an error where it stands, never a line break;
- a short row is padded when every missing field is an optional trailing column (Amazon's
  23-field ``Liquidations`` rows under the 24-column header); missing a required column or
  having more fields than the header is an error naming the line and the column;
- a line longer than ``MAX_LINE_BYTES`` is an error naming it;
- dates: see ``DATE_FORMATS`` and ``ZONE_OFFSETS_HOURS`` (JST times are converted to UTC);
- amounts: digits with one decimal separator, the file's; a thousands separator is refused
  (Amazon never writes one) with its own message;
- a settlement whose Σ|amount| does not fit in int64 is refused, so every int64 sum after
  this stage is exact (see ``INT64_MAX``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from reconciliation.audit import sha256_hex
from reconciliation.decode import NotTextError, to_utf8
from reconciliation.marketplaces import main_marketplace_name
from reconciliation.model import INT64_MAX, LINE_COLUMNS, Settlement, currency_decimals, int64_sum_is_exact

# --- column sets -----------------------------------------------------------------------

SUMMARY_COLUMNS = (
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
)
_SHARED_COLUMNS = SUMMARY_COLUMNS + (
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "fulfillment-id",
    "posted-date",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
)
# The official V2 page lists 23 columns (no promotion-id); every real file has 24.
V2_REQUIRED = _SHARED_COLUMNS + ("amount-type", "amount-description", "amount", "posted-date-time")
V2_OPTIONAL = ("promotion-id",)
# V1 without promotions has 33 columns: the three promotion-* columns are absent.
V1_REQUIRED = _SHARED_COLUMNS + (
    "shipment-fee-type",
    "shipment-fee-amount",
    "order-fee-type",
    "order-fee-amount",
    "price-type",
    "price-amount",
    "item-related-fee-type",
    "item-related-fee-amount",
    "misc-fee-amount",
    "other-fee-amount",
    "other-fee-reason-description",
    "direct-payment-type",
    "direct-payment-amount",
    "other-amount",
)
V1_OPTIONAL = ("promotion-id", "promotion-type", "promotion-amount")


@dataclass(frozen=True)
class V1AmountColumn:
    """How one V1 amount column becomes V2-shaped lines."""

    amount_column: str
    amount_type: str
    description_column: str | None  # where amount_description comes from, if any
    default_description: str  # used when description_column is absent or empty


# Decided mapping (V2 has no exact equivalent for some kinds; names follow the V1 column).
V1_AMOUNT_COLUMNS: tuple[V1AmountColumn, ...] = (
    V1AmountColumn("shipment-fee-amount", "ShipmentFees", "shipment-fee-type", "ShipmentFee"),
    V1AmountColumn("order-fee-amount", "OrderFees", "order-fee-type", "OrderFee"),
    V1AmountColumn("price-amount", "ItemPrice", "price-type", "Principal"),
    V1AmountColumn("item-related-fee-amount", "ItemFees", "item-related-fee-type", "ItemFee"),
    V1AmountColumn("misc-fee-amount", "MiscFees", None, "MiscFee"),
    V1AmountColumn("other-fee-amount", "OtherFees", "other-fee-reason-description", "OtherFee"),
    V1AmountColumn("promotion-amount", "Promotion", "promotion-type", "Promotion"),
    V1AmountColumn("direct-payment-amount", "DirectPayment", "direct-payment-type", "DirectPayment"),
    # V1 puts reserve moves, card charges, "Payable to Amazon" here; V2 calls these
    # other-transaction/other-transaction/<what it is>, and "what it is" is V1's transaction-type.
    V1AmountColumn("other-amount", "other-transaction", "transaction-type", "other-transaction"),
)


@dataclass(frozen=True)
class DateFormat:
    """A date or date-time layout (docs/settlement-vocabulary.md §2)."""

    strptime: str  # pyarrow/strptime format; a zoned one gets " <zone word>" appended as a literal
    label: str
    day_at: int  # where the two-digit day starts, to catch pyarrow's day roll-over (02-30 -> 03-01)
    zoned: bool  # followed by a time-zone word: "2024-10-09 14:28:38 UTC", "2024/10/09 14:28:38 JST"


# Tried in order on a column's first non-empty value; the whole column must then have that layout.
DATE_FORMATS: tuple[DateFormat, ...] = (
    DateFormat("%Y-%m-%d %H:%M:%S", "YYYY-MM-DD HH:MM:SS <zone>", 8, True),
    DateFormat("%d.%m.%Y %H:%M:%S", "DD.MM.YYYY HH:MM:SS <zone>", 0, True),
    DateFormat("%Y/%m/%d %H:%M:%S", "YYYY/MM/DD HH:MM:SS <zone>", 8, True),  # Japan
    DateFormat("%Y-%m-%dT%H:%M:%S%z", "ISO 8601 with offset", 8, False),
    DateFormat("%Y-%m-%d", "YYYY-MM-DD", 8, False),
    DateFormat("%d.%m.%Y", "DD.MM.YYYY", 0, False),
    DateFormat("%Y/%m/%d", "YYYY/MM/DD", 8, False),
    DateFormat("%m/%d/%y", "MM/DD/YY", 3, False),
)
# Time-zone words a date-time may end with, as hours east of UTC. Times are converted to UTC
# (JST 2024/10/09 14:28:38 = 05:28:38 UTC), so every later stage compares like with like; a
# date without time (posted-date) is that calendar day at 00:00 UTC whatever the marketplace,
# as for every other marketplace. Only unambiguous fixed-offset words; another word is an error.
ZONE_OFFSETS_HOURS: dict[str, int] = {"UTC": 0, "GMT": 0, "JST": 9, "CET": 1, "CEST": 2, "PST": -8, "PDT": -7}
_ZONE_WORD = re.compile(r"(.*\d)\s+([A-Za-z]{2,5})")

DECIMAL_COMMA_TOTAL = r"^-?\d+,\d{1,2}$"  # a total like this makes the whole file decimal-comma
AMOUNT_PATTERN_DOT = r"^-?\d{1,12}(?:\.\d{1,6})?$"
AMOUNT_PATTERN_COMMA = r"^-?\d{1,12}(?:,\d{1,6})?$"
# Digit grouping ("1,234.56", "1.234,56", "1'234.56"): Amazon's files never have it,
# and "1,234" alone is ambiguous (1234 or 1.234). Such amounts are refused with their own message,
# in decimal-dot and decimal-comma files alike, rather than guessed.
GROUPED_AMOUNT = r"^-?\d{1,3}(?:[.,' ]\d{3})+(?:[.,]\d{1,6})?$"
SETTLEMENT_ID_PATTERN = r"^\d+$"
QUANTITY_PATTERN = r"^\d{1,9}$"
MAX_ERRORS_PER_PROBLEM = 20  # then one "... and N more" error, so a broken 1M-row file stays readable
# Longest line read: also pyarrow's block size, so a longer row is our located error, not ArrowInvalid.
# Real rows are a few hundred bytes; a promotion-id of a megabyte is a broken file.
MAX_LINE_BYTES = 1 << 20


def amount_pattern(decimal_comma: bool) -> str:
    return AMOUNT_PATTERN_COMMA if decimal_comma else AMOUNT_PATTERN_DOT


# --- results ---------------------------------------------------------------------------


# What raising and unpickling set on any exception (tblib's pickling, which Dask installs, sets them
# with setattr after unpickling): a frozen record must still take them.
_E = TypeVar("_E", bound=BaseException)
_EXCEPTION_STATE = frozenset({"__cause__", "__context__", "__traceback__", "__suppress_context__", "__notes__"})


def _takes_exception_state(cls: type[_E]) -> type[_E]:
    frozen_setattr = cls.__setattr__

    def __setattr__(self: BaseException, name: str, value: object) -> None:
        if name in _EXCEPTION_STATE:
            BaseException.__setattr__(self, name, value)
        else:
            frozen_setattr(self, name, value)

    cls.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]  # only the exception's own state
    return cls


@_takes_exception_state
@dataclass(frozen=True)
class SettlementFileError(Exception):
    """One problem in a settlement file; data first, but can be raised.

    ``line`` is 1-based (header = 1); ``column`` is the 1-based position of the column in
    the header and ``column_name`` its header name. Either may be None for file-level problems.
    """

    source: str
    line: int | None
    column: int | None
    message: str
    column_name: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, str(self))  # so tracebacks and loggers show the located message

    def __reduce__(self) -> tuple[type, tuple[str, int | None, int | None, str, str | None]]:
        # Prefect/Dask pickle results; the default exception pickling would set attributes on a frozen object.
        return (type(self), (self.source, self.line, self.column, self.message, self.column_name))

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ParseResult:
    settlements: list[Settlement] = field(default_factory=list)
    errors: list[SettlementFileError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Fatal(Exception):
    """Internal: stop parsing this file; the errors are returned as data."""

    def __init__(self, errors: list[SettlementFileError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


@dataclass(frozen=True)
class _Header:
    names: tuple[str, ...]
    format: str  # "v1" | "v2"

    def position(self, name: str) -> int | None:
        return self.names.index(name) + 1 if name in self.names else None


@dataclass
class _ErrorSink:
    """Collects errors, capping each kind of problem so huge broken files stay readable."""

    source: str
    errors: list[SettlementFileError] = field(default_factory=list)

    def add(
        self, line: int | None, message: str, header: _Header | None = None, column_name: str | None = None
    ) -> None:
        column = header.position(column_name) if header is not None and column_name else None
        self.errors.append(SettlementFileError(self.source, line, column, message, column_name))

    def add_rows(
        self, lines: np.ndarray, values: Sequence[str], describe: str, header: _Header, column_name: str
    ) -> None:
        """One error per bad row (capped); ``describe`` is formatted with the value."""
        for line, value in zip(lines[:MAX_ERRORS_PER_PROBLEM], values[:MAX_ERRORS_PER_PROBLEM]):
            self.add(int(line), describe.format(value=value), header, column_name)
        if len(lines) > MAX_ERRORS_PER_PROBLEM:
            self.add(
                None,
                f"{column_name}: and {len(lines) - MAX_ERRORS_PER_PROBLEM} more rows with the same problem",
                header,
                column_name,
            )


# --- public API ------------------------------------------------------------------------


def read_settlement_file(path: Path) -> ParseResult:
    """Parse one file; the file is only read, never moved or altered."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ParseResult([], [SettlementFileError(path.name, None, None, f"cannot read file: {exc.strerror}")])
    return parse_settlement_bytes(data, path.name, None)


def parse_settlement_bytes(data: bytes, source: str, charset: str | None = None) -> ParseResult:
    """Parse a settlement document (V2 or V1 flat file) given as bytes; each settlement carries
    the SHA-256 of ``data`` (its audit record's ``source_sha256``)."""
    sink = _ErrorSink(source)
    try:
        settlements = _parse(data, charset, sink)
    except _Fatal as fatal:
        return ParseResult([], fatal.errors)
    if sink.errors:
        return ParseResult([], sink.errors)
    digest = sha256_hex(data)
    return ParseResult([replace(s, source_sha256=digest) for s in settlements], [])


# --- stages ----------------------------------------------------------------------------


def _parse(data: bytes, charset: str | None, sink: _ErrorSink) -> list[Settlement]:
    try:
        utf8, _codec = to_utf8(data, charset)
    except NotTextError as exc:
        raise _Fatal([SettlementFileError(sink.source, None, None, exc.reason)]) from None
    if re.fullmatch(rb"\s*", utf8[:4096]) and re.fullmatch(rb"\s*", utf8):  # (no copy of a big file)
        raise _Fatal([SettlementFileError(sink.source, None, None, "file is empty")])
    _check_carriage_returns(utf8, sink)
    header, body_start = _read_header(utf8, sink)
    table, line_numbers = _read_rows(utf8, body_start, header, sink)
    if table.num_rows == 0:
        raise _Fatal([SettlementFileError(sink.source, 1, None, "file has a header but no rows")])
    return _build_settlements(table, line_numbers, header, sink)


def _check_carriage_returns(utf8: bytes, sink: _ErrorSink) -> None:
    """A CR that is not part of CR LF is an error, never a line break.

    Amazon ends lines with LF (or CR LF after a Windows round trip). pyarrow would split a row
    at a lone CR, and the halves would have the wrong number of fields; reading on would shift
    line numbers. One memchr on the normal path (LF files), two counts for CR LF files;
    positions only when the counts differ.
    """
    if b"\r" not in utf8 or utf8.count(b"\r") == utf8.count(b"\r\n"):
        return
    found = 0
    for match in re.finditer(rb"\r(?!\n)", utf8):
        found += 1
        if found > MAX_ERRORS_PER_PROBLEM:
            continue
        at = match.start()
        line_start = utf8.rfind(b"\n", 0, at) + 1
        line = utf8.count(b"\n", 0, line_start) + 1
        column = utf8.count(b"\t", line_start, at) + 1
        sink.errors.append(
            SettlementFileError(
                sink.source,
                line,
                column,
                "carriage return (CR) inside a line: Amazon's files end lines with LF or "
                "CR LF, a lone CR is not a line break (was the file edited?)",
            )
        )
    if found > MAX_ERRORS_PER_PROBLEM:
        sink.add(None, f"and {found - MAX_ERRORS_PER_PROBLEM} more lone carriage returns")
    raise _Fatal(sink.errors)


def _line_too_long(sink: _ErrorSink, line: int, length: int) -> SettlementFileError:
    return SettlementFileError(
        sink.source,
        line,
        None,
        f"line {line} is longer than {MAX_LINE_BYTES} bytes ({length} bytes; a settlement row has a few hundred)",
    )


def _read_header(utf8: bytes, sink: _ErrorSink) -> tuple[_Header, int]:
    """The header and the offset where the rows start (len(utf8) when there are none)."""
    end = utf8.find(b"\n")
    end = end if end >= 0 else len(utf8)
    if end > MAX_LINE_BYTES:
        raise _Fatal([_line_too_long(sink, 1, end)])
    first_line = utf8[:end].rstrip(b"\r").decode("utf-8")
    if "\t" not in first_line:
        for delimiter, name in ((",", "comma"), (";", "semicolon"), ("|", "pipe")):
            if first_line.count(delimiter) >= 3:
                raise _Fatal(
                    [
                        SettlementFileError(
                            sink.source,
                            1,
                            None,
                            f"header is {name}-separated ({delimiter!r}); settlement files are tab-separated",
                        )
                    ]
                )
    names = tuple(name.strip() for name in first_line.split("\t"))
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise _Fatal(
            [
                SettlementFileError(sink.source, 1, None, f"duplicate column {d!r} in header")
                for d in duplicates[:MAX_ERRORS_PER_PROBLEM]
            ]
        )
    file_format = "v1" if "price-type" in names and "amount-type" not in names else "v2"
    required = V1_REQUIRED if file_format == "v1" else V2_REQUIRED
    missing = [name for name in required if name not in names]
    if missing:
        raise _Fatal(
            [
                SettlementFileError(
                    sink.source, 1, None, f"missing required column {name!r} ({file_format.upper()} header)"
                )
                for name in missing
            ]
        )
    return _Header(names, file_format), min(end + 1, len(utf8))


def _read_csv(body: pa.Buffer, header: _Header) -> tuple[pa.Table, int]:
    """(all fields as strings, number of rows whose field count differs from the header's)."""
    bad_rows = 0

    def on_invalid_row(_row: object) -> str:
        nonlocal bad_rows
        bad_rows += 1
        return "skip"  # located and explained by _fix_row_shapes

    column_names = [f"c{i}" for i in range(len(header.names))]  # header names may be odd; positions are not
    table = pacsv.read_csv(
        pa.BufferReader(body),  # zero-copy
        read_options=pacsv.ReadOptions(column_names=column_names, block_size=MAX_LINE_BYTES),
        # Amazon does not quote fields; promotion-id free text may contain quotes.
        parse_options=pacsv.ParseOptions(
            delimiter="\t", quote_char=False, ignore_empty_lines=True, invalid_row_handler=on_invalid_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in column_names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.rename_columns(list(header.names)), bad_rows


def _read_rows(utf8: bytes, body_start: int, header: _Header, sink: _ErrorSink) -> tuple[pa.Table, np.ndarray]:
    """All fields as strings; returns the table and the source line number of each row."""
    if re.fullmatch(rb"\s*", utf8[body_start : body_start + 4096]) and re.fullmatch(rb"\s*", utf8[body_start:]):
        raise _Fatal([SettlementFileError(sink.source, 1, None, "file has a header but no rows")])
    body = pa.py_buffer(utf8).slice(body_start)  # the header is ours: pyarrow sees rows only
    try:
        table, bad_rows = _read_csv(body, header)
    except pa.ArrowInvalid as exc:
        # A row longer than a block: say which one. Anything else pyarrow refuses is still one line.
        too_long = _long_lines(utf8)
        raise _Fatal(
            [_line_too_long(sink, line, length) for line, length in too_long[:MAX_ERRORS_PER_PROBLEM]]
            or [SettlementFileError(sink.source, None, None, f"cannot be read as a tab-separated file: {exc}")]
        ) from None
    # pyarrow may read a line of up to two blocks; such a line has a field of more than MAX/columns bytes.
    if _longest_field(table) > MAX_LINE_BYTES // (2 * len(header.names)):
        too_long = _long_lines(utf8)
        if too_long:
            raise _Fatal([_line_too_long(sink, line, length) for line, length in too_long[:MAX_ERRORS_PER_PROBLEM]])
    if bad_rows:
        utf8 = _fix_row_shapes(utf8, header, sink)  # pads short rows, or raises _Fatal naming them
        table, bad_rows = _read_csv(pa.py_buffer(utf8).slice(body_start), header)
        if bad_rows:  # cannot happen: every row now has the header's field count
            raise _Fatal([SettlementFileError(sink.source, None, None, "rows with the wrong number of fields")])
    content_end = len(utf8)
    while content_end and utf8[content_end - 1] in b"\r\n":  # blank last lines (real V1 files) shift nothing
        content_end -= 1
    if utf8.count(b"\n", 0, content_end) != table.num_rows:
        # More physical lines than header + rows: the reader skipped blank lines. Map rows back
        # to their physical line numbers (rare path).
        lines = utf8.split(b"\n")
        line_numbers = np.array(
            [i + 1 for i, line in enumerate(lines) if i > 0 and line not in (b"", b"\r")], dtype=np.int64
        )
    else:
        line_numbers = np.arange(2, table.num_rows + 2, dtype=np.int64)
    return table, line_numbers


def _longest_field(table: pa.Table) -> int:
    """Bytes of the longest field (lengths come from the offsets: no pass over the text)."""
    return max((pc.max(pc.binary_length(column)).as_py() or 0 for column in table.columns), default=0)


def _long_lines(utf8: bytes) -> list[tuple[int, int]]:
    """(line number, length) of every line longer than MAX_LINE_BYTES (error path only)."""
    found, start, number = [], 0, 1
    while start <= len(utf8):
        end = utf8.find(b"\n", start)
        end = len(utf8) if end < 0 else end
        if end - start > MAX_LINE_BYTES:
            found.append((number, end - start))
        start, number = end + 1, number + 1
    return found


def _fix_row_shapes(utf8: bytes, header: _Header, sink: _ErrorSink) -> bytes:
    """Pad short rows whose missing fields are all optional columns; every other wrong shape is an error.

    Amazon omits trailing empty fields on some rows (real US 2024 ``Liquidations`` rows have 23
    fields under the 24-column header; promotion-id is the missing one). A row that lacks a
    required column, or has more fields than the header, is an error naming its line and the
    column where it goes wrong. Rare path: one Python pass over the lines.
    """
    expected = len(header.names)
    required = set(V1_REQUIRED if header.format == "v1" else V2_REQUIRED)
    # A row needs at least every field up to the last required column; later ones may be missing.
    min_fields = max(i for i, name in enumerate(header.names, start=1) if name in required)
    lines = utf8.split(b"\n")
    bad: list[SettlementFileError] = []
    for index, line in enumerate(lines[1:], start=1):
        if line in (b"", b"\r"):
            continue
        fields = line.count(b"\t") + 1
        if fields == expected:
            continue
        number = index + 1
        if fields > expected:
            bad.append(
                SettlementFileError(
                    sink.source,
                    number,
                    expected + 1,
                    f"row has extra fields: {fields} fields but the header has {expected} "
                    f"(the first extra field is column {expected + 1})",
                )
            )
        elif fields < min_fields:
            missing = next(name for name in header.names[fields:] if name in required)
            bad.append(
                SettlementFileError(
                    sink.source,
                    number,
                    header.position(missing),
                    f"truncated row: {fields} fields but the header has {expected} "
                    f"(required column {missing!r} is missing)",
                    missing,
                )
            )
        else:
            end = len(line) - 1 if line.endswith(b"\r") else len(line)
            lines[index] = line[:end] + b"\t" * (expected - fields) + line[end:]
    if bad:
        more = len(bad) - MAX_ERRORS_PER_PROBLEM
        raise _Fatal(
            bad[:MAX_ERRORS_PER_PROBLEM]
            + (
                [SettlementFileError(sink.source, None, None, f"and {more} more rows with the wrong number of fields")]
                if more > 0
                else []
            )
        )
    return b"\n".join(lines)


@dataclass(frozen=True)
class _Summary:
    settlement_id: str
    line: int
    start: pd.Timestamp
    end: pd.Timestamp
    deposit_date: pd.Timestamp
    total_minor: int
    currency: str


def _build_settlements(
    table: pa.Table, line_numbers: np.ndarray, header: _Header, sink: _ErrorSink
) -> list[Settlement]:
    settlement_ids = _Distinct.of(table.column("settlement-id"))
    bad_ids = settlement_ids.rows(~_matches(settlement_ids.values, SETTLEMENT_ID_PATTERN))
    sink.add_rows(
        line_numbers[bad_ids],
        settlement_ids.texts(bad_ids),
        "settlement-id {value!r} is not a number",
        header,
        "settlement-id",
    )
    if sink.errors:
        raise _Fatal(sink.errors)
    table = table.set_column(
        table.schema.get_field_index("settlement-id"), "settlement-id", settlement_ids.expand(settlement_ids.values)
    )

    is_summary = pc.not_equal(pc.utf8_trim_whitespace(table.column("settlement-start-date")), "")
    is_summary_np = is_summary.to_numpy(zero_copy_only=False)
    summary_rows = table.filter(is_summary)
    summary_lines = line_numbers[is_summary_np]
    if summary_rows.num_rows == 0:
        raise _Fatal(
            [
                SettlementFileError(
                    sink.source, 2, None, "no summary row (a row with settlement-start-date, total-amount, currency)"
                )
            ]
        )
    totals = [t.strip() for t in summary_rows.column("total-amount").to_pylist()]
    decimal_comma = any(pd.Series(totals, dtype=str).str.match(DECIMAL_COMMA_TOTAL))
    summaries = _read_summaries(summary_rows, summary_lines, header, decimal_comma, sink)

    rows = _transaction_rows(table, is_summary, is_summary_np)
    row_lines = line_numbers[~is_summary_np]
    row_ids = rows.column("settlement-id")
    orphan = np.flatnonzero(~pc.is_in(row_ids, value_set=pa.array(list(summaries))).to_numpy(zero_copy_only=False))
    sink.add_rows(
        row_lines[orphan],
        _take(row_ids, orphan),
        "settlement-id {value!r} has no summary row in this file",
        header,
        "settlement-id",
    )
    _check_transaction_rows(rows, row_lines, header, sink)

    settlements = []
    for summary in summaries.values():
        mask = pc.equal(row_ids, summary.settlement_id) if len(summaries) > 1 else None
        own_rows = rows.filter(mask) if mask is not None else rows
        own_lines = row_lines[mask.to_numpy(zero_copy_only=False)] if mask is not None else row_lines
        _check_row_currency(own_rows, own_lines, summary, header, sink)
        lines = (_v1_lines if header.format == "v1" else _v2_lines)(
            own_rows, own_lines, summary, header, decimal_comma, sink
        )
        if lines is None or not _summable(lines, summary, header, sink):
            continue
        settlements.append(
            Settlement(
                settlement_id=summary.settlement_id,
                source=sink.source,
                format=header.format,
                currency=summary.currency,
                start=summary.start,
                end=summary.end,
                deposit_date=summary.deposit_date,
                total_minor=summary.total_minor,
                marketplace=main_marketplace_name(lines["marketplace_name"]),
                lines=lines,
            )
        )
    return settlements


# Rows about a customer order: they name the order and the day; item rows name the SKU.
ORDER_TRANSACTION_TYPES = frozenset({"ORDER", "REFUND"})
# A SKU written like one of DATE_FORMATS (zero-padded, as Amazon writes dates) is a date: the
# columns were shifted or swapped under the header. Version-like SKUs ("1.2.30") do not match.
DATE_LIKE = r"^\s*(\d{4}[-/]\d{2}[-/]\d{2}|\d{2}\.\d{2}\.\d{4}|\d{2}/\d{2}/\d{2})([ T]\d{2}:\d{2}.*)?\s*$"


def normalised_key(value: str) -> str:
    """Upper case, every run of other characters removed: 'Order', 'ORDER', 'order ' -> 'ORDER'."""
    return re.sub(r"[^0-9A-Z]+", "", value.upper())


def _check_transaction_rows(rows: pa.Table, lines: np.ndarray, header: _Header, sink: _ErrorSink) -> None:
    """Field rules the column types alone do not catch (all vectorised; rows located only on failure).

    - ``Order``/``Refund`` rows have an order-id (MCF orders too: ``S01-…``) and a posted-date;
      those about an item (order-item-code given) have a sku. Order-level rows without an item
      (no order-item-code) may lack the sku. Other transaction types (fees, reserves,
      transfers, liquidations) may be account-level and have none of them.
    - posted-date, when given, is a real date even where posted-date-time is used instead (V2).
    - a sku is not a date: the sign of columns swapped under an unchanged header.
    """
    if rows.num_rows == 0:
        return
    if header.format == "v2":  # V1 parses posted-date on every row anyway
        _check_dates(rows.column("posted-date"), lines, header, "posted-date", sink)
    types = pc.unique(rows.column("transaction-type")).to_pylist()
    order_types = [t for t in types if normalised_key(t) in ORDER_TRANSACTION_TYPES]
    if order_types:
        is_order = _is_in(rows.column("transaction-type"), order_types)
        has_item = ~_blank(rows.column("order-item-code"))
        for column_name, applies, rule in (
            ("order-id", is_order, "an Order or Refund row"),
            ("posted-date", is_order, "an Order or Refund row"),
            ("sku", is_order & has_item, "an Order or Refund row with an order-item-code"),
        ):
            bad = np.flatnonzero(applies & _blank(rows.column(column_name)))
            sink.add_rows(lines[bad], [""] * len(bad), f"{column_name} is empty on {rule}", header, column_name)
    skus = pc.unique(rows.column("sku"))
    date_like = pc.filter(skus, pc.match_substring_regex(skus, DATE_LIKE))
    if len(date_like):
        bad = np.flatnonzero(_is_in(rows.column("sku"), date_like.to_pylist()))
        sink.add_rows(
            lines[bad],
            _take(rows.column("sku"), bad),
            "sku {value!r} is a date: are columns swapped or shifted under the header?",
            header,
            "sku",
        )


def _check_row_currency(
    rows: pa.Table, lines: np.ndarray, summary: _Summary, header: _Header, sink: _ErrorSink
) -> None:
    """Transaction rows leave currency empty; where one is given it is the settlement's (summary row's)."""
    currencies = [
        c for c in pc.unique(rows.column("currency")).to_pylist() if c.strip().upper() not in ("", summary.currency)
    ]
    if currencies:
        bad = np.flatnonzero(_is_in(rows.column("currency"), currencies))
        sink.add_rows(
            lines[bad],
            _take(rows.column("currency"), bad),
            f"currency {{value!r}} differs from the settlement's currency {summary.currency} "
            f"(summary row, line {summary.line})",
            header,
            "currency",
        )


# Downstream code sums amount_minor in int64 (groupby per category, voucher, order). Those sums
# are exact when Σ|amount| fits in int64: no partial sum can exceed it. Python-int sums
# (exact_sum) guard the gates anyway; a settlement beyond this is refused here, with a
# located error, so no later int64 sum can wrap (issue #8: 184,468 lines of 999,999,999,999.99
# wrapped to 31.81). Real settlements are below 10**12 minor units by far.


def _summable(lines: pd.DataFrame, summary: _Summary, header: _Header, sink: _ErrorSink) -> bool:
    amounts = lines["amount_minor"].to_numpy()
    if int64_sum_is_exact(amounts):  # the usual case: no need to add anything up
        return True
    running = np.cumsum(np.abs(amounts.astype(object)))  # rare path: exact, Python ints
    if running[-1] <= INT64_MAX:
        return True
    first_over = int(np.argmax(running > INT64_MAX))
    sink.add(
        int(lines["line_no"].iloc[first_over]),
        f"settlement {summary.settlement_id}: the absolute amounts add up to more than {INT64_MAX} minor "
        f"units by this line; no real settlement is that large, and its sums could not be kept exact",
        header,
        "amount" if header.format == "v2" else None,
    )
    return False


def _transaction_rows(table: pa.Table, is_summary: pa.ChunkedArray, is_summary_np: np.ndarray) -> pa.Table:
    """The table without its summary rows. Usually the summary is the first data row: a
    zero-copy slice then, where filtering copies every column (~0.7 s per million rows)."""
    leading = int(np.argmin(is_summary_np)) if not is_summary_np.all() else len(is_summary_np)
    if not is_summary_np[leading:].any():
        return table.slice(leading)
    return table.filter(pc.invert(is_summary))


def _read_summaries(
    summary_rows: pa.Table, lines: np.ndarray, header: _Header, decimal_comma: bool, sink: _ErrorSink
) -> dict[str, _Summary]:
    dates = {
        name: _to_utc(summary_rows.column(name), lines, header, name, sink)
        for name in ("settlement-start-date", "settlement-end-date", "deposit-date")
    }
    summaries: dict[str, _Summary] = {}
    for i, record in enumerate(summary_rows.select(list(SUMMARY_COLUMNS)).to_pylist()):
        line = int(lines[i])
        settlement_id, currency = record["settlement-id"], record["currency"].strip().upper()
        if settlement_id in summaries:
            sink.add(
                line,
                f"second summary row for settlement-id {settlement_id!r} "
                f"(first on line {summaries[settlement_id].line})",
                header,
                "settlement-id",
            )
            continue
        if not (len(currency) == 3 and currency.isalpha()):
            sink.add(line, f"currency {record['currency']!r} is not a 3-letter currency code", header, "currency")
            continue
        total, total_errors = _amounts_to_minor(
            pa.chunked_array([[record["total-amount"]]]),
            lines[i : i + 1],
            currency,
            decimal_comma,
            header,
            "total-amount",
            sink,
        )
        if total_errors or any(d is None for d in dates.values()):
            continue
        start, end, deposit = (
            pd.Timestamp(dates[name][i]).tz_localize("UTC")  # type: ignore[index]  # None: skipped above
            for name in ("settlement-start-date", "settlement-end-date", "deposit-date")
        )
        summaries[settlement_id] = _Summary(settlement_id, line, start, end, deposit, int(total[0]), currency)
    if sink.errors:
        raise _Fatal(sink.errors)
    return summaries


def _v2_lines(
    rows: pa.Table, lines: np.ndarray, summary: _Summary, header: _Header, decimal_comma: bool, sink: _ErrorSink
) -> pd.DataFrame | None:
    amounts, amount_errors = _amounts_to_minor(
        rows.column("amount"), lines, summary.currency, decimal_comma, header, "amount", sink
    )
    posted = _posted_dates(rows, lines, header, "posted-date-time", sink)
    quantity = _quantities(rows, lines, header, sink)
    if amount_errors or posted is None or quantity is None:
        return None
    return _assemble(
        rows,
        lines,
        summary.settlement_id,
        rows.column("amount-type"),
        rows.column("amount-description"),
        amounts,
        posted,
        quantity,
    )


def _v1_lines(
    rows: pa.Table, lines: np.ndarray, summary: _Summary, header: _Header, decimal_comma: bool, sink: _ErrorSink
) -> pd.DataFrame | None:
    """Melt V1's one-column-per-kind rows into one line per non-empty amount cell."""
    posted = _posted_dates(rows, lines, header, None, sink)
    quantity = _quantities(rows, lines, header, sink)
    pieces: list[pd.DataFrame] = []
    failed = posted is None or quantity is None
    for order, spec in enumerate(V1_AMOUNT_COLUMNS):
        if spec.amount_column not in header.names:
            continue  # 33-column V1 file: no promotion-* columns
        raw = rows.column(spec.amount_column)
        present = pc.not_equal(pc.utf8_trim_whitespace(raw), "")
        present_np = present.to_numpy(zero_copy_only=False)
        if not present_np.any():
            continue
        subset, subset_lines = rows.filter(present), lines[present_np]
        amounts, errors = _amounts_to_minor(
            subset.column(spec.amount_column),
            subset_lines,
            summary.currency,
            decimal_comma,
            header,
            spec.amount_column,
            sink,
        )
        if errors or failed:
            failed = True
            continue
        assert posted is not None and quantity is not None  # else `failed`
        description = (
            pc.utf8_trim_whitespace(subset.column(spec.description_column))
            if spec.description_column
            else pa.chunked_array([pa.nulls(subset.num_rows, pa.string())])
        )
        description = pc.if_else(pc.equal(pc.coalesce(description, ""), ""), spec.default_description, description)
        piece = _assemble(
            subset,
            subset_lines,
            summary.settlement_id,
            pa.chunked_array([pa.array([spec.amount_type] * subset.num_rows, pa.string())]),
            description,
            amounts,
            posted[present_np],
            quantity[present_np],
        )
        piece["_order"] = order
        pieces.append(piece)
    if failed:
        return None
    assert posted is not None and quantity is not None  # else `failed`
    if not pieces:
        return _assemble(
            rows.slice(0, 0),
            lines[:0],
            summary.settlement_id,
            pa.chunked_array([[]], pa.string()),
            pa.chunked_array([[]], pa.string()),
            np.zeros(0, np.int64),
            posted[:0],
            quantity[:0],
        )
    melted = pd.concat(pieces, ignore_index=True)
    melted = melted.sort_values(["line_no", "_order"], kind="stable").drop(columns="_order")
    return melted.reset_index(drop=True)


# --- vectorised conversions -------------------------------------------------------------


@dataclass(frozen=True)
class _Distinct:
    """A text column as its distinct values, whitespace-trimmed, and each row's index into them.

    Settlement columns repeat: a million rows have a few hundred amounts, a handful of
    quantities and one posted-date-time per order for its 5-10 rows. Checks and conversions
    run once per distinct value and are spread back to the rows with one take (a million-row
    regex or strptime costs 0.03-0.1 s, a hash pass ~0.01-0.03 s); rows are located only for
    the error messages. The columns come from the CSV reader without nulls.
    """

    values: pa.Array  # distinct values, trimmed (two spellings may trim to the same text)
    of_row: np.ndarray  # per row, its index into ``values``

    @staticmethod
    def of(column: pa.ChunkedArray) -> _Distinct:
        encoded = pc.dictionary_encode(column.combine_chunks())
        return _Distinct(pc.utf8_trim_whitespace(encoded.dictionary), encoded.indices.to_numpy(zero_copy_only=False))

    def rows(self, flagged: np.ndarray) -> np.ndarray:
        """Positions of the rows whose value is ``flagged`` (one bool per distinct value)."""
        return np.flatnonzero(flagged[self.of_row])

    def texts(self, rows: np.ndarray) -> list[str]:
        """The trimmed text of the first ``MAX_ERRORS_PER_PROBLEM`` ``rows`` (for error messages)."""
        texts: list[str] = self.values.take(
            pa.array(self.of_row[rows[:MAX_ERRORS_PER_PROBLEM]], pa.int64())
        ).to_pylist()
        return texts

    def expand(self, per_value: pa.Array | np.ndarray) -> pa.Array | np.ndarray:
        """One entry per row from one entry per distinct value."""
        if isinstance(per_value, np.ndarray):
            return per_value[self.of_row]
        return per_value.take(pa.array(self.of_row))


def _matches(values: pa.ChunkedArray, pattern: str) -> np.ndarray:
    return np.asarray(pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False), dtype=bool)


def _is_in(values: pa.ChunkedArray, value_set: Sequence[str]) -> np.ndarray:
    return np.asarray(
        pc.is_in(values, value_set=pa.array(value_set, pa.string())).to_numpy(zero_copy_only=False), dtype=bool
    )


def _blank(values: pa.ChunkedArray) -> np.ndarray:
    """Empty or whitespace only (utf8_is_space stops at the first other character: cheap)."""
    empty = pc.or_(pc.equal(pc.binary_length(values), 0), pc.utf8_is_space(values))
    return np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)


def _take(values: pa.ChunkedArray, indices: np.ndarray) -> list[str]:
    texts: list[str] = values.take(pa.array(indices[:MAX_ERRORS_PER_PROBLEM], pa.int64())).to_pylist()
    return texts


def _amounts_to_minor(
    raw: pa.ChunkedArray,
    lines: np.ndarray,
    currency: str,
    decimal_comma: bool,
    header: _Header,
    column_name: str,
    sink: _ErrorSink,
) -> tuple[np.ndarray, bool]:
    """Decimal strings -> int64 minor units by string arithmetic (exact; no float ever), once per
    distinct value."""
    decimals = currency_decimals(currency)
    distinct = _Distinct.of(raw)
    values = distinct.values
    well_formed = _matches(values, amount_pattern(decimal_comma))
    errors_before = len(sink.errors)
    bad = distinct.rows(~well_formed)
    if len(bad):
        style = "decimal comma, e.g. 1234,56" if decimal_comma else "decimal dot, e.g. 1234.56"
        grouped = _matches(values, GROUPED_AMOUNT)[distinct.of_row[bad]]
        sink.add_rows(
            lines[bad[~grouped]],
            distinct.texts(bad[~grouped]),
            f"{column_name} {{value!r}} is not a number (this file uses {style})",
            header,
            column_name,
        )
        sink.add_rows(
            lines[bad[grouped]],
            distinct.texts(bad[grouped]),
            f"{column_name} {{value!r}} has a thousands separator: Amazon never groups digits, so the "
            f"file was edited and is not read (this file uses {style})",
            header,
            column_name,
        )
    safe = pc.if_else(pa.array(well_formed), values, "0")
    # "-12.3" -> digits -123 with 1 fraction digit -> -123 * 10**(decimals - 1). int64 is exact:
    # the patterns allow at most 12 + 6 digits.
    separator = "," if decimal_comma else "."
    digits = pc.cast(pc.replace_substring(safe, separator, ""), pa.int64()).to_numpy()
    separator_at = pc.find_substring(safe, separator).to_numpy()
    length = pc.utf8_length(safe).to_numpy()
    frac_len = np.where(separator_at >= 0, length - separator_at - 1, 0)
    shift = decimals - frac_len
    up = np.power(10, np.clip(shift, 0, None), dtype=np.int64)
    down = np.power(10, np.clip(-shift, 0, None), dtype=np.int64)
    too_precise = distinct.rows(digits % down != 0)
    if len(too_precise):
        sink.add_rows(
            lines[too_precise],
            distinct.texts(too_precise),
            f"{column_name} {{value!r}} has more than {decimals} decimals for {currency}",
            header,
            column_name,
        )
    minor = np.where(shift >= 0, digits * up, digits // down)  # exact where divisible (checked above)
    return distinct.expand(minor.astype(np.int64)), len(sink.errors) > errors_before


def _strptime_exact(
    values: pa.ChunkedArray | pa.Array, date_format: DateFormat, zone: str = ""
) -> tuple[pa.ChunkedArray | pa.Array, np.ndarray]:
    """Parse with pyarrow (C++, ~0.1 s per million, pandas needs seconds when values are distinct).

    Returns (timestamps without tz, in the zone written / UTC for %z, mask of invalid rows).
    pyarrow's strptime rolls impossible days over (2024-02-30 -> 03-01), so the day written in
    the text is compared with the parsed day of the local (pre-offset) time.
    """
    fmt = f"{date_format.strptime} {zone}" if date_format.zoned else date_format.strptime
    parsed = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
    if "%z" in fmt:
        local_fmt = fmt.replace("%z", "")
        local = pc.strptime(pc.utf8_slice_codeunits(values, 0, 19), format=local_fmt, unit="us", error_is_null=True)
        parsed = pc.cast(parsed, pa.timestamp("us"))  # UTC instants, tz dropped
    else:
        local = parsed
    day_at = date_format.day_at
    day_text = pc.utf8_slice_codeunits(values, day_at, day_at + 2)
    day_text = pc.if_else(pc.match_substring_regex(day_text, r"^\d\d$"), day_text, "0")
    rolled_over = pc.not_equal(pc.day(local), pc.cast(day_text, pa.int64()))
    invalid = pc.or_kleene(pc.is_null(parsed), pc.fill_null(rolled_over, True))
    return parsed, invalid.to_numpy(zero_copy_only=False).astype(bool)


@dataclass(frozen=True)
class _DetectedFormat:
    date_format: DateFormat
    zone: str  # the zone word as written ("" when none)

    @property
    def label(self) -> str:
        return self.date_format.label.replace("<zone>", self.zone)

    @property
    def utc_offset(self) -> np.timedelta64:
        return np.timedelta64(ZONE_OFFSETS_HOURS.get(self.zone.upper(), 0), "h")


def _detect_format(sample: str) -> _DetectedFormat | str:
    """The layout of ``sample``, or why none fits."""
    sample_array = pa.chunked_array([[sample]])
    zoned = _ZONE_WORD.fullmatch(sample)
    if zoned and zoned[2].upper() not in ZONE_OFFSETS_HOURS:
        return (
            f"has the time zone {zoned[2]!r}, not one we convert "
            f"({', '.join(ZONE_OFFSETS_HOURS)}: the offset from UTC must be unambiguous)"
        )
    for date_format in DATE_FORMATS:
        if date_format.zoned != bool(zoned):
            continue
        zone = zoned[2] if zoned else ""
        if not _strptime_exact(sample_array, date_format, zone)[1][0]:
            return _DetectedFormat(date_format, zone)
    return f"is not a date in a known format ({', '.join(f.label for f in DATE_FORMATS)})"


def _to_utc(
    raw: pa.ChunkedArray | _Distinct, lines: np.ndarray, header: _Header, column_name: str, sink: _ErrorSink
) -> np.ndarray | None:
    """Parse a date column with the format its first value has; datetime64[us] (UTC) or None on errors."""
    distinct = raw if isinstance(raw, _Distinct) else _Distinct.of(raw)
    if len(distinct.of_row) == 0:  # a settlement with no transaction rows
        return np.zeros(0, dtype="datetime64[us]")
    values = distinct.values
    missing = distinct.rows(pc.equal(values, "").to_numpy(zero_copy_only=False))
    if len(missing):
        sink.add_rows(lines[missing], [""] * len(missing), f"{column_name} is empty", header, column_name)
        return None
    first = values[int(distinct.of_row[0])].as_py()
    detected = _detect_format(first)
    if isinstance(detected, str):
        sink.add(int(lines[0]), f"{column_name} {first!r} {detected}", header, column_name)
        return None
    parsed, invalid = _strptime_exact(values, detected.date_format, detected.zone)
    bad = distinct.rows(invalid)
    if len(bad):
        sink.add_rows(
            lines[bad],
            distinct.texts(bad),
            f"{column_name} {{value!r}} is not a valid date in this file's format ({detected.label})",
            header,
            column_name,
        )
        return None
    utc = distinct.expand(parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]"))
    return utc - detected.utc_offset if detected.utc_offset else utc


def _check_dates(raw: pa.ChunkedArray, lines: np.ndarray, header: _Header, column_name: str, sink: _ErrorSink) -> None:
    """Every non-empty value of a date column that is not otherwise used (posted-date in V2) is a real date.

    Checked on the distinct values (a settlement spans ~14 days: a handful), so a million rows
    cost one hash pass; rows are located only when a value is bad.
    """
    distinct = pc.unique(pc.utf8_trim_whitespace(pc.unique(raw)))
    distinct = pc.filter(distinct, pc.not_equal(distinct, ""))
    if len(distinct) == 0:
        return
    detected: _DetectedFormat | str = ""
    for sample in distinct[:MAX_ERRORS_PER_PROBLEM].to_pylist():  # the first value that is a date sets the layout
        detected = _detect_format(sample)
        if not isinstance(detected, str):
            break
    if isinstance(detected, str):
        bad_values = distinct.to_pylist()
        describe = f"{column_name} {{value!r}} is not a date in a known format"
    else:
        invalid = _strptime_exact(pa.chunked_array([distinct]), detected.date_format, detected.zone)[1]
        bad_values = [v for v, bad in zip(distinct.to_pylist(), invalid) if bad]
        describe = f"{column_name} {{value!r}} is not a valid date in this file's format ({detected.label})"
    if bad_values:
        values = pc.utf8_trim_whitespace(raw)
        rows = np.flatnonzero(_is_in(values, bad_values))
        sink.add_rows(lines[rows], _take(values, rows), describe, header, column_name)


def _posted_dates(
    rows: pa.Table, lines: np.ndarray, header: _Header, time_column: str | None, sink: _ErrorSink
) -> np.ndarray | None:
    """posted-date-time where given (V2), else posted-date at 00:00 UTC (V1 has only posted-date)."""
    times = _Distinct.of(rows.column(time_column)) if time_column is not None else None
    if times is not None:
        has_time = times.expand(pc.not_equal(times.values, "").to_numpy(zero_copy_only=False))
    else:
        has_time = np.zeros(rows.num_rows, dtype=bool)
    result = np.full(rows.num_rows, np.datetime64("NaT"), dtype="datetime64[us]")
    if time_column is not None and times is not None and has_time.all():  # the usual V2 case: no filtering copies
        return _to_utc(times, lines, header, time_column, sink)
    if time_column is not None and has_time.any():
        timed = _to_utc(rows.filter(pa.array(has_time)).column(time_column), lines[has_time], header, time_column, sink)
        if timed is None:
            return None
        result[has_time] = timed
    if not has_time.all():
        dated = _to_utc(
            rows.filter(pa.array(~has_time)).column("posted-date"), lines[~has_time], header, "posted-date", sink
        )
        if dated is None:
            return None
        result[~has_time] = dated
    return result


def _quantities(rows: pa.Table, lines: np.ndarray, header: _Header, sink: _ErrorSink) -> pd.arrays.IntegerArray | None:
    distinct = _Distinct.of(rows.column("quantity-purchased"))
    empty = pc.equal(distinct.values, "").to_numpy(zero_copy_only=False)
    ok = _matches(distinct.values, QUANTITY_PATTERN) | empty
    bad = distinct.rows(~ok)
    if len(bad):
        sink.add_rows(
            lines[bad],
            distinct.texts(bad),
            "quantity-purchased {value!r} is not a whole number",
            header,
            "quantity-purchased",
        )
        return None
    numbers = pc.cast(pc.if_else(pa.array(empty), "0", distinct.values), pa.int64()).to_numpy()
    # Refund rows have no quantity: keep it missing, not 0.
    quantities: pd.arrays.IntegerArray = pd.arrays.IntegerArray(distinct.expand(numbers), distinct.expand(empty))
    return quantities


def _assemble(
    rows: pa.Table,
    lines: np.ndarray,
    settlement_id: str,
    amount_type: pa.ChunkedArray,
    amount_description: pa.ChunkedArray,
    amounts: np.ndarray,
    posted: np.ndarray,
    quantity: pd.api.extensions.ExtensionArray,
) -> pd.DataFrame:
    def same_text(value: str) -> pa.Array:  # a take, not a list of a million str (~0.05 s)
        return pa.array([value], pa.string()).take(pa.array(np.zeros(rows.num_rows, dtype=np.int32)))

    def text(name: str) -> pd.Series:
        return as_str(rows.column(name) if name in rows.column_names else same_text(""))

    def as_str(values: pa.ChunkedArray | pa.Array) -> pd.Series:
        return pd.Series(values.to_pandas(), dtype=str).reset_index(drop=True)

    frame = pd.DataFrame(
        {
            "settlement_id": as_str(same_text(settlement_id)),
            "line_no": pd.Series(lines, dtype="int64"),
            "transaction_type": text("transaction-type"),
            "order_id": text("order-id"),
            "merchant_order_id": text("merchant-order-id"),
            "adjustment_id": text("adjustment-id"),
            "shipment_id": text("shipment-id"),
            "marketplace_name": text("marketplace-name"),
            "amount_type": as_str(amount_type),
            "amount_description": as_str(amount_description),
            "amount_minor": pd.Series(amounts, dtype="int64"),
            "fulfillment_id": text("fulfillment-id"),
            "posted_date": pd.Series(posted, dtype="datetime64[us]").dt.tz_localize("UTC"),
            "order_item_code": text("order-item-code"),
            "merchant_order_item_id": text("merchant-order-item-id"),
            "merchant_adjustment_item_id": text("merchant-adjustment-item-id"),
            "sku": text("sku"),
            "quantity": pd.Series(quantity, dtype="Int64"),
            "promotion_id": text("promotion-id"),
        }
    )
    return frame[list(LINE_COLUMNS)]


# --- dedupe ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateSettlement:
    """A second copy of a settlement-id; ``conflict`` is set when its content differs."""

    settlement_id: str
    source: str  # where the skipped copy came from
    kept_source: str  # where the copy we keep came from
    conflict: SettlementFileError | None


def _same_content(a: Settlement, b: Settlement) -> bool:
    header_a = (a.format, a.currency, a.start, a.end, a.deposit_date, a.total_minor)
    header_b = (b.format, b.currency, b.start, b.end, b.deposit_date, b.total_minor)
    if header_a != header_b or len(a.lines) != len(b.lines):
        return False
    # Line numbers may differ (another file holding several settlements); content may not.
    lines_a = a.lines.drop(columns="line_no").reset_index(drop=True)
    lines_b = b.lines.drop(columns="line_no").reset_index(drop=True)
    return bool(lines_a.equals(lines_b))


def dedupe_settlements(
    results: Iterable[ParseResult | Settlement],
) -> tuple[list[Settlement], list[DuplicateSettlement]]:
    """Keep the first copy of each settlement-id; report the others (and differing content as an error)."""
    unique: dict[str, Settlement] = {}
    duplicates: list[DuplicateSettlement] = []
    for item in results:
        for settlement in item.settlements if isinstance(item, ParseResult) else [item]:
            kept = unique.get(settlement.settlement_id)
            if kept is None:
                unique[settlement.settlement_id] = settlement
                continue
            conflict = None
            if not _same_content(kept, settlement):
                conflict = SettlementFileError(
                    settlement.source,
                    None,
                    None,
                    f"settlement {settlement.settlement_id} also arrived from {kept.source} with different "
                    f"content (total {kept.total_minor} vs {settlement.total_minor} minor units, "
                    f"{kept.line_count} vs {settlement.line_count} lines)",
                )
            duplicates.append(DuplicateSettlement(settlement.settlement_id, settlement.source, kept.source, conflict))
    return list(unique.values()), duplicates
