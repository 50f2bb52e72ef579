"""Business operations on M3, each mapped to the transactions of an API profile.

``cloudsuite`` (the default) uses the standard M3 CloudSuite transactions (OIS100MI batch order
entry, MMS200MI/MMS060MI balances, GLS840MI GL batch); ``brief`` the transaction names of the
product brief (OIS100MI/AddHead, MMS080MI/LstItemBal, GLS200MI/Add), which standard M3 does not
have: only for tenants that expose them through their own mappings. See docs/m3-contract.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from connectors.m3.client import BulkResult, FieldValue, M3Client
from connectors.m3.errors import (
    M3BatchFailed,
    M3Error,
    M3ListTruncated,
    M3OrderIncomplete,
    M3TransactionError,
    M3Unavailable,
    M3WriteInDoubt,
)
from connectors.m3.gl_record import I1Record, encode_i1
from connectors.m3.records import (
    CreatedOrder,
    CreditOrder,
    Customer,
    CustomerInvoice,
    CustomerRequest,
    Delivery,
    DeliveryLine,
    Item,
    ItemSalesPrice,
    JournalEntry,
    M3DataError,
    OrderAddress,
    OrderHead,
    OrderLine,
    OrderLineRequest,
    OrderRequest,
    PostedVoucher,
    PostedVoucherLine,
    StockBalance,
    SubmittedVoucher,
    m3_date,
    m3_decimal,
    m3_int,
    m3_text,
)

# The API profiles are defined once, in the settings layer that reads [m3] profile.
from connectors.settings import DEFAULT_M3_PROFILE, M3_PROFILES, ConfigurationError, M3Profile, M3Settings, env_var

# GLS900MI/LstPeriods STAT of a period closed for posting [ours: the sandbox's choice].
PERIOD_CLOSED = "90"

log = logging.getLogger(__name__)
T = TypeVar("T")

AUTHORISATION_ERROR = "XAU0008"  # M3's "Not authorized for company &1" (field CONO; DIVI for a division)

GL_INTERFACE = "GLUPLOAD"  # GLS840MI interface whose PARM layout is the I1 record
DEFAULT_RETURN_ORDER_TYPE = "RET"  # ORTP of return orders unless the routing names another (sync/routing.py)
RORC_CUSTOMER_ORDER = 3  # MWS411MI reference order category of a customer order
ORDER_DOES_NOT_EXIST = "WOR0303"  # OIS100MI: customer order number &1 does not exist
ADRT_DELIVERY = 1  # OIS100MI/AddBatchAddress address type: delivery address
# Defaults of [m3] voucher_wait_seconds and settle_seconds, defined once in M3Settings:
VOUCHER_WAIT_SECONDS = M3Settings.voucher_wait_seconds  # how long post_voucher polls for a GLS840 batch's voucher
SETTLE_SECONDS = M3Settings.settle_seconds  # how long after an unanswered write M3 may still commit it
POLL_FIRST, POLL_MAX = 0.1, 2.0  # seconds between looks for a voucher: doubling up to the cap


@dataclass(frozen=True)
class OrderWrite:
    """What became of one order of :meth:`M3Operations.create_orders`: exactly one of ``created``
    (M3's numbers), ``refused`` (M3's answer: ``M3TransactionError``, or ``M3OrderIncomplete``
    naming the head or batch order it left) or ``in_doubt`` (the answer never came: M3 may hold
    the order; look it up by its CUOR before writing again)."""

    customer_order_ref: str
    created: CreatedOrder | None = None
    refused: M3Error | None = None
    in_doubt: M3Unavailable | None = None


class M3Operations:
    """Business operations on one M3 company/division through ``profile``'s transactions."""

    def __init__(
        self,
        client: M3Client,
        profile: M3Profile = DEFAULT_M3_PROFILE,
        *,
        cono: int | str | None = None,
        divi: str | None = None,
        voucher_series: str | None = None,
        voucher_search_days: int = 7,
        voucher_wait: float = VOUCHER_WAIT_SECONDS,
        settle_seconds: float = SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if profile not in M3_PROFILES:
            raise ValueError(f"M3 API profile must be one of {', '.join(M3_PROFILES)}, got {profile!r}")
        self.client = client
        self.profile: M3Profile = profile
        self.cono = str(cono) if cono is not None else client.cono
        self.divi = divi if divi is not None else client.divi
        self.voucher_series = voucher_series
        self.voucher_search_days = voucher_search_days
        if voucher_wait < 0 or settle_seconds < 0:
            raise ValueError(
                f"voucher_wait and settle_seconds must be >= 0 seconds, got {voucher_wait!r}, {settle_seconds!r}"
            )
        self.voucher_wait = voucher_wait  # cloudsuite: how long to await the batch job's voucher
        self.settle_seconds = settle_seconds  # brief: how long an unanswered write may still commit
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"M3Operations({self.client!r}, profile={self.profile!r})"

    # -- company and division -----------------------------------------------------------------
    def check_company(self, routed: Mapping[str, str] | None = None) -> tuple[str, str]:
        """Check at start-up that the M3 user may work in the configured company and division,
        and in each division of ``routed`` (where it is configured -> division, e.g.
        ``"[m3.divisions] UK in HOME/config.toml" -> "200"``).

        Reads the user's defaults and authorisations (MNS150MI/GetUserData, LstCmpDivi); where
        MNS150MI is not open to the user, a first read in the company shows the same refusal.
        Returns the (company, division) in force and adopts them where none was configured
        (M3 then works in the user's defaults, and GLS840MI needs the company explicitly);
        raises :class:`ConfigurationError` naming ``cono``/``divi`` when M3 refuses them
        (M3Unavailable/M3AuthError pass through).
        """
        try:
            try:
                user = _first(self.client.execute("MNS150MI", "GetUserData"))
            except M3TransactionError as exc:
                if exc.code == AUTHORISATION_ERROR:
                    raise
                log.info("MNS150MI/GetUserData not available (%s); checking the company with a first read", exc)
                self.client.execute("CRS610MI", "LstByNumber", maxrecs=1)
                return self.cono or "", self.divi or ""  # the user's defaults stay unknown
            cono = _company(self.cono or m3_text(user, "CONO"))
            divi = self.divi or m3_text(user, "DIVI")
            allowed = self.client.execute("MNS150MI", "LstCmpDivi", {"USID": m3_text(user, "USID")}, maxrecs=0)
        except M3TransactionError as exc:
            if exc.code != AUTHORISATION_ERROR:
                raise
            key = "divi" if exc.field == "DIVI" else "cono"
            raise ConfigurationError(_context_problem(key, getattr(self, key), exc.message)) from None
        pairs = {(_company(m3_text(r, "CONO")), m3_text(r, "DIVI")) for r in allowed}
        usid = m3_text(user, "USID")
        if pairs and cono not in {c for c, _ in pairs}:
            raise ConfigurationError(
                _context_problem("cono", cono, f"M3 user {usid} may not use company {cono} (allowed: {_listed(pairs)})")
            )
        if pairs and divi and (cono, divi) not in pairs:
            raise ConfigurationError(
                _context_problem(
                    "divi",
                    divi,
                    f"M3 user {usid} may not use division {divi} of company {cono} (allowed: {_listed(pairs)})",
                )
            )
        for where, routed_divi in (routed or {}).items():
            if pairs and (cono, routed_divi) not in pairs:
                raise ConfigurationError(
                    f"M3 refuses the division {where} = {routed_divi!r}: M3 user {usid} may not use division "
                    f"{routed_divi} of company {cono} (allowed: {_listed(pairs)}); route the marketplace to a "
                    "division the M3 user may use"
                )
        self.cono, self.divi = self.cono or cono or None, self.divi or divi or None
        return cono, divi

    # -- customers ----------------------------------------------------------------------------
    def create_customer(self, customer: CustomerRequest) -> str:
        """CRS610MI/Add from the template customer; returns the new CUNO."""
        record = _first(self.client.execute("CRS610MI", "Add", customer.to_m3()))
        cuno = m3_text(record, "CUNO") or (customer.cuno or "")
        if not cuno:
            raise M3Error("CRS610MI/Add answered OK without a customer number (CUNO)")
        return cuno

    def get_customer(self, cuno: str) -> Customer:
        return Customer.from_m3(self._one("CRS610MI", "GetBasicData", {"CUNO": cuno}))

    def search_customers(self, query: str, *, maxrecs: int = 100) -> list[Customer]:
        """CRS610MI/SearchCustomer; ``query`` is M3's SQRY syntax (``CUNM:Jane*``, ``CSCD:DE``)."""
        return [
            Customer.from_m3(r)
            for r in self.client.execute("CRS610MI", "SearchCustomer", {"SQRY": query}, maxrecs=maxrecs)
        ]

    def customers_by_reference(self, reference: str) -> list[str]:
        """The CUNOs of the customers whose YREF is ``reference`` (CRS610MI/SearchCustomer on YREF);
        ``reference`` is taken literally: a value with blanks or M3's wildcards is refused."""
        if not reference or any(c in reference for c in " *?:"):
            raise ValueError(f"not a literal customer reference: {reference!r}")  # a caller's bug
        return [c.cuno for c in self.search_customers(f"YREF:{reference}", maxrecs=0) if c.cuno]

    # -- orders -------------------------------------------------------------------------------
    def create_order(self, order: OrderRequest) -> CreatedOrder:
        """Create a customer order (a bulk of one, :meth:`create_orders`). Not idempotent by itself:
        callers check :meth:`find_order_by_reference` first (the CUOR is the Amazon order id).
        M3's refusal raises it (``M3TransactionError``, ``M3OrderIncomplete``); a lost answer
        raises the ``M3Unavailable`` (the order is in doubt)."""
        (written,) = self.create_orders([order])
        if written.created is not None:
            return written.created
        raise written.refused or written.in_doubt or M3Error("order creation ended without an answer")

    def create_orders(self, orders: Sequence[OrderRequest]) -> list[OrderWrite]:
        """Create many customer orders in few MI bulk requests; one :class:`OrderWrite` per order, in order.

        Orders go in groups of at most ``bulk_max_transactions`` (one gateway request of heads),
        each group stage by stage, one bulk per stage (docs/m3-contract.md, "Bulk order creation"):
        brief: AddHead, AddLine (all lines), GetHead (the status); cloudsuite: AddBatchHead,
        AddBatchLine, AddBatchAddress, Confirm. Each transaction of a bulk stands alone, so one
        order's refusal leaves the others alone. A stage whose answer never came (timeout, dropped
        connection, 5xx) leaves the group's unfinished orders *in doubt*: M3 may hold them (look
        them up by CUOR before writing again). Not idempotent by itself, as ``create_order``."""
        written: list[OrderWrite | None] = [None] * len(orders)
        group = self.client.bulk_max_transactions
        for first in range(0, len(orders), group):
            indexes = list(range(first, min(first + group, len(orders))))
            try:
                self._create_group([orders[i] for i in indexes], indexes, written)
            except M3Unavailable as exc:
                for i in indexes:
                    if written[i] is None:
                        written[i] = OrderWrite(orders[i].customer_order_ref, in_doubt=exc)
        return [w if w is not None else OrderWrite("", refused=M3Error("no answer")) for w in written]

    def _create_group(self, orders: list[OrderRequest], indexes: list[int], written: list[OrderWrite | None]) -> None:
        """One group through every stage; ``written[i]`` is set as each order's fate is known."""
        brief = self.profile == "brief"

        def refuse(n: int, error: M3Error) -> None:
            written[indexes[n]] = OrderWrite(orders[n].customer_order_ref, refused=error)

        heads = self.client.execute_bulk(
            "OIS100MI", [("AddHead" if brief else "AddBatchHead", order.head_to_m3()) for order in orders]
        )
        ornos: dict[int, str] = {}  # group position -> (batch) order number
        for n, result in enumerate(heads):
            orno = m3_text(result.records[0], "ORNO") if result.records else ""
            if result.error is not None:
                refuse(n, result.error)
            elif not orno:
                refuse(n, M3Error(f"OIS100MI/{result.transaction} answered OK without an order number (ORNO)"))
            else:
                ornos[n] = orno
        line_numbers = self._add_lines_bulk("AddLine" if brief else "AddBatchLine", orders, ornos, refuse)
        if not brief:
            self._add_addresses_bulk(orders, ornos, refuse)
        alive = [n for n in ornos if n in line_numbers]
        if not alive:
            return
        if brief:  # the head's status, read back in one bulk (a read: retried)
            answers = self.client.execute_bulk("OIS100MI", [("GetHead", {"ORNO": ornos[n]}) for n in alive])
            for n, result in zip(alive, answers, strict=True):
                status = m3_text(result.records[0], "STAT") if result.records else ""
                created = CreatedOrder(orno=ornos[n], status=status, line_numbers=line_numbers[n])
                written[indexes[n]] = OrderWrite(orders[n].customer_order_ref, created=created)
            return
        confirms = self.client.execute_bulk("OIS100MI", [("Confirm", {"ORNO": ornos[n]}) for n in alive])
        # Confirm answers OK even when M3's check leaves the order in OIS275 below status 90: those
        # are not created; their messages (LstErrMsgOrder, one bulk) say why.
        rejected = [
            n
            for n, result in zip(alive, confirms, strict=True)
            if result.error is None and m3_text(result.records[0] if result.records else {}, "STAT") not in ("", "90")
        ]
        messages = self.client.execute_bulk("OIS100MI", [("LstErrMsgOrder", {"ORNO": ornos[n]}) for n in rejected])
        for n, answer in zip(rejected, messages, strict=True):
            refuse(n, M3OrderIncomplete(ornos[n], _confirm_errors(answer)))
        for n, result in zip(alive, confirms, strict=True):
            if n in rejected:
                continue
            if result.error is not None:
                refuse(n, M3OrderIncomplete(ornos[n], (result.error,)))
                continue
            record = result.records[0] if result.records else {}
            created = CreatedOrder(
                orno=m3_text(record, "ORNO") or ornos[n],
                status=m3_text(record, "STAT"),
                line_numbers=line_numbers[n],
                batch_orno=ornos[n],
            )
            written[indexes[n]] = OrderWrite(orders[n].customer_order_ref, created=created)

    def _add_lines_bulk(
        self,
        transaction: str,
        orders: list[OrderRequest],
        ornos: dict[int, str],
        refuse: Callable[[int, M3Error], None],
    ) -> dict[int, tuple[int, ...]]:
        """Every line of the headed orders in one bulk (split by the client to the gateway's
        limits); the line numbers of the orders whose lines all went in. An order with a refused
        line is refused as incomplete (its head stays in M3: M3OrderIncomplete names it)."""
        calls = [(n, line) for n in ornos for line in orders[n].lines]
        results = self.client.execute_bulk(
            "OIS100MI", [(transaction, {"ORNO": ornos[n], **line.to_m3()}) for n, line in calls]
        )
        numbers: dict[int, list[int]] = {n: [] for n in ornos}
        errors: dict[int, list[M3TransactionError]] = {}
        for (n, _), result in zip(calls, results, strict=True):
            if result.error is not None:
                errors.setdefault(n, []).append(result.error)
            else:
                numbers[n].append(m3_int(result.records[0], "PONR") if result.records else 0)
        for n, failed in errors.items():
            refuse(n, M3OrderIncomplete(ornos[n], tuple(failed)))
        return {n: tuple(found) for n, found in numbers.items() if n not in errors}

    def _add_addresses_bulk(
        self, orders: list[OrderRequest], ornos: dict[int, str], refuse: Callable[[int, M3Error], None]
    ) -> None:
        """cloudsuite: the delivery addresses of the batch orders still alive, in one bulk. One
        address per type on a batch order: a repeat adds nothing, so the bulk is idempotent."""
        addresses = {n: order.delivery_address for n, order in enumerate(orders) if n in ornos}
        with_address = [(n, address) for n, address in addresses.items() if address is not None]
        calls = [("AddBatchAddress", _address_fields(ornos[n], address)) for n, address in with_address]
        answers = self.client.execute_bulk("OIS100MI", calls, idempotent=True)
        for (n, _), result in zip(with_address, answers, strict=True):
            if result.error is not None:
                refuse(n, M3OrderIncomplete(ornos[n], (result.error,)))
                del ornos[n]

    def add_order_lines(self, orno: str, lines: Sequence[OrderLineRequest]) -> tuple[int, ...]:
        """Add ``lines`` to existing order ``orno`` in one bulk (brief: AddLine; finishing an order
        whose lines an earlier attempt did not all add). M3OrderIncomplete names what M3 refused."""
        if self.profile != "brief":
            raise M3Error("adding lines to an existing order needs the brief profile's OIS100MI/AddLine")
        results = self.client.execute_bulk("OIS100MI", [("AddLine", {"ORNO": orno, **line.to_m3()}) for line in lines])
        errors = tuple(r.error for r in results if r.error is not None)
        if errors:
            raise M3OrderIncomplete(orno, errors)
        return tuple(m3_int(r.records[0], "PONR") if r.records else 0 for r in results)

    def find_order_by_reference(self, cuno: str, cuor: str) -> str | None:
        """The ORNO of the customer's order whose CUOR is ``cuor`` (the Amazon order id), if any."""
        return self.orders_by_reference(cuno).get(cuor)

    def orders_by_reference(
        self, cuno: str, *, return_order_types: Collection[str] = (DEFAULT_RETURN_ORDER_TYPE,)
    ) -> dict[str, str]:
        """CUOR -> ORNO for every order of the customer (one LstHead; the first order wins). Return
        orders (``return_order_types``) carry their Amazon order's CUOR too: they are left out."""
        found: dict[str, str] = {}
        for record in self.client.execute("OIS100MI", "LstHead", {"CUNO": cuno}, maxrecs=0):
            cuor = m3_text(record, "CUOR")
            if cuor and m3_text(record, "ORTP") not in return_order_types:
                found.setdefault(cuor, m3_text(record, "ORNO"))
        return found

    # -- credit (return) orders ---------------------------------------------------------------
    def return_orders_by_reference(self, cuno: str, order_type: str) -> dict[str, list[str]]:
        """CUOR -> ORNOs of the customer's return orders of type ``order_type`` (one LstHead): the
        credits M3 has for each Amazon order (a rerun, or a crash between M3's answer and our record)."""
        found: dict[str, list[str]] = {}
        for record in self.client.execute("OIS100MI", "LstHead", {"CUNO": cuno}, maxrecs=0):
            cuor = m3_text(record, "CUOR")
            if cuor and m3_text(record, "ORTP") == order_type:
                found.setdefault(cuor, []).append(m3_text(record, "ORNO"))
        return found

    def get_credit_order(self, orno: str) -> CreditOrder:
        """A return order with its YREF (the credit key, GetHead) and lines (LstLine)."""
        return CreditOrder(self.get_order(orno), tuple(self.list_order_lines(orno)))

    def create_credit_order(self, order: OrderRequest) -> CreatedOrder:
        """Create a return order (every line ``returned``: negative ORQT) by the profile, as
        :meth:`create_order`: invoicing it in M3 books the credit note. Not idempotent by itself:
        callers look in :meth:`return_orders_by_reference` first (CUOR, order type; then YREF, the credit key)."""
        if not all(line.returned for line in order.lines):
            raise M3DataError(f"credit order {order.customer_order_ref}: every line must be a returned line")
        return self.create_order(order)

    def get_order(self, orno: str) -> OrderHead:
        return OrderHead.from_m3(self._one("OIS100MI", "GetHead", {"ORNO": orno}))

    def list_order_lines(self, orno: str) -> list[OrderLine]:
        return [OrderLine.from_m3(r) for r in self.client.execute("OIS100MI", "LstLine", {"ORNO": orno}, maxrecs=0)]

    def order_progress(self, orno: str) -> tuple[str, str] | None:
        """The order's lowest and highest line status (GetHead ORSL, ORST; "" without lines), or
        None when M3 has no such order (deleted)."""
        try:
            head = self._one("OIS100MI", "GetHead", {"ORNO": orno})
        except M3TransactionError as exc:
            if exc.code == ORDER_DOES_NOT_EXIST:
                return None
            raise
        return m3_text(head, "ORSL"), m3_text(head, "ORST")

    def cancel_order(self, orno: str) -> int:
        """Delete a customer order that is not yet picked: DelLine for each line (one bulk; M3 refuses a
        line on a picking list or delivered and releases the allocation of the others), then DelHead.
        Returns the number of lines deleted; raises M3's first refusal (the lines it accepted are gone,
        the head stays). Rerunnable: what a lost answer deleted is not listed again."""
        lines = self.list_order_lines(orno)
        deletes: list[tuple[str, Mapping[str, FieldValue | None]]] = [
            ("DelLine", {"ORNO": orno, "PONR": line.line_number, "POSX": line.suffix}) for line in lines
        ]
        results = self.client.execute_bulk("OIS100MI", deletes) if deletes else []
        refused = [r.error for r in results if r.error is not None]
        if refused:
            raise refused[0]
        self.client.execute("OIS100MI", "DelHead", {"ORNO": orno})
        return len(lines)

    def lines_of_orders(self, ornos: Sequence[str]) -> dict[str, list[OrderLine]]:
        """Each order's lines, all read in one bulk of LstLine (split to the gateway's limits)."""
        results = self.client.execute_bulk("OIS100MI", [("LstLine", {"ORNO": orno}) for orno in ornos], maxrecs=0)
        found: dict[str, list[OrderLine]] = {}
        for orno, result in zip(ornos, results, strict=True):
            if result.error is not None:
                raise result.error
            found[orno] = [OrderLine.from_m3(r) for r in result.records]
        return found

    # -- items and stock ----------------------------------------------------------------------
    def get_item(self, itno: str) -> Item:
        return Item.from_m3(self._one("MMS200MI", "GetItmBasic", {"ITNO": itno}))

    def read_balances(self, whlo: str, items: list[str] | None = None) -> list[StockBalance]:
        """Stock per item in warehouse ``whlo`` (all items when ``items`` is None)."""
        if self.profile == "brief":
            if items is None:
                records = self.client.execute("MMS080MI", "LstItemBal", {"WHLO": whlo}, maxrecs=0)
            else:
                records = self._bulk_read("MMS080MI", "LstItemBal", [{"WHLO": whlo, "ITNO": i} for i in items])
            return [_balance(whlo, r) for r in records]
        if items is not None:
            records = self._bulk_read("MMS200MI", "GetItmWhsBal", [{"WHLO": whlo, "ITNO": i} for i in items])
            return [_balance(whlo, r) for r in records]
        return _sum_balance_ids(whlo, self.client.execute("MMS060MI", "LstBalID", {"WHLO": whlo}, maxrecs=0))

    def get_items(self, itnos: Iterable[str]) -> dict[str, Item | None]:
        """MMS200MI/GetItmBasic for many items in bulk requests; None for an item M3 refuses (does not know)."""
        wanted = list(dict.fromkeys(itnos))
        results = self.client.execute_bulk("MMS200MI", [("GetItmBasic", {"ITNO": i}) for i in wanted])
        return {itno: _found(result, Item.from_m3) for itno, result in zip(wanted, results, strict=True)}

    def base_prices(self, itnos: Iterable[str], price_list: str, currency: str) -> dict[str, Decimal | None]:
        """Each item's sales price in M3 price list ``price_list`` and ``currency``
        (OIS017MI/GetBasePrice, both profiles), in bulk requests; None where M3 has none (refuses the read)."""
        wanted = list(dict.fromkeys(itnos))
        fields = [("GetBasePrice", {"PRRF": price_list, "CUCD": currency, "ITNO": i}) for i in wanted]
        results = self.client.execute_bulk("OIS017MI", fields)

        def price(record: dict[str, str]) -> Decimal | None:
            return m3_decimal(record, "SAPR") if m3_text(record, "SAPR") else None

        return {itno: _found(result, price) for itno, result in zip(wanted, results, strict=True)}

    def item_sales_prices(self, itnos: Iterable[str]) -> dict[str, ItemSalesPrice | None]:
        """Each item's basic sales price and its currency (MMS200MI/GetItmPrice, both profiles),
        in bulk requests; None for an item M3 refuses (does not know)."""
        wanted = list(dict.fromkeys(itnos))
        results = self.client.execute_bulk("MMS200MI", [("GetItmPrice", {"ITNO": i}) for i in wanted])
        return {itno: _found(result, ItemSalesPrice.from_m3) for itno, result in zip(wanted, results, strict=True)}

    def _bulk_read(self, program: str, transaction: str, inputs: list[dict[str, str]]) -> list[dict[str, str]]:
        if not inputs:
            return []
        records: list[dict[str, str]] = []
        for result in self.client.execute_bulk(program, [(transaction, fields) for fields in inputs]):
            if result.error is not None:
                raise result.error
            records.extend(result.records)
        return records

    # -- invoices -----------------------------------------------------------------------------
    def list_invoices_for_order(self, orno: str) -> list[CustomerInvoice]:
        return [
            CustomerInvoice.from_m3(r)
            for r in self.client.execute("OIS350MI", "LstInvHeadByCo", {"ORNO": orno}, maxrecs=0)
        ]

    def list_invoices(self, from_date: date, to_date: date, *, divi: str | None = None) -> list[CustomerInvoice]:
        """Customer invoices of division ``divi`` (default: the connector's) dated ``from_date``..``to_date``
        inclusive (one call per year)."""
        if from_date > to_date:
            raise ValueError(f"list_invoices: from_date {from_date} is after to_date {to_date}")
        invoices: list[CustomerInvoice] = []
        for year in range(from_date.year, to_date.year + 1):
            invoices += self._invoices_between(
                max(from_date, date(year, 1, 1)), min(to_date, date(year, 12, 31)), divi or self.divi
            )
        # The date range is our addition to LstInvHead: filter again in case M3 ignores it.
        return [inv for inv in invoices if inv.ivdt is None or from_date <= inv.ivdt <= to_date]

    def _invoices_between(self, first: date, last: date, divi: str | None) -> list[CustomerInvoice]:
        """LstInvHead for dates first..last of one year; halves the range while M3's record limit cuts it."""
        fields = {"YEA4": first.year, "DIVI": divi, "FIVD": first, "TIVD": last}
        try:
            return [
                CustomerInvoice.from_m3(r) for r in self.client.execute("OIS350MI", "LstInvHead", fields, maxrecs=0)
            ]
        except M3ListTruncated:
            if first == last:
                raise
        middle = first + (last - first) // 2
        return self._invoices_between(first, middle, divi) + self._invoices_between(
            middle + timedelta(days=1), last, divi
        )

    # -- general ledger -----------------------------------------------------------------------
    def post_voucher(
        self, entry: JournalEntry, *, in_doubt_since: datetime | None = None
    ) -> PostedVoucher | SubmittedVoucher:
        """Post ``entry`` exactly once, or find it posted; see docs/m3-contract.md.

        A voucher whose text starts with the key is looked up first. ``in_doubt_since``: an
        earlier attempt's write was sent then (UTC) and never answered; under ``brief``
        (GLS200MI/Add has no key M3 could refuse) nothing is written before M3 shows the voucher
        or ``settle_seconds`` have passed since then and a last look still finds none. Under
        ``cloudsuite`` the batch's KEY1 comes from the posting key alone, so M3 itself refuses a
        second batch: an existing batch is finished or awaited, never replaced.

        Returns the voucher, or a :class:`SubmittedVoucher` when the GLS840 batch job has not
        booked it within ``voucher_wait``. Raises ``M3WriteInDoubt`` when a write's answer was
        lost and M3 does not show the voucher yet, ``M3BatchFailed`` when the batch job failed.
        Callers in one process posting the same key take turns.
        """
        with _KEY_LOCKS.held((self.client.base_url, self.cono, entry.divi, entry.key)):
            existing = self.find_voucher(entry.key, entry.accounting_date, divi=entry.divi)
            if existing is None and in_doubt_since is not None and self.profile == "brief":
                existing = self._settle(entry, in_doubt_since)
            if existing is not None:
                log.info("voucher %s already in M3 as %s/%s", entry.key, existing.year, existing.vono)
                return _already(existing)
            if self.profile == "brief":
                return self._answered_or_found(entry, lambda: self._post_gls200(entry))
            try:
                return self._answered_or_found(entry, lambda: self._post_gls840(entry))
            except M3WriteInDoubt as doubt:
                # Safe to go on at once: the same KEY1 makes M3 refuse a second batch (finishing
                # or awaiting the one the lost answer belonged to).
                log.warning("voucher %s: %s; resuming batch %s", entry.key, doubt, batch_key(entry.key))
                try:
                    return self._post_gls840(entry)
                except M3Unavailable:
                    raise doubt from None

    def _settle(self, entry: JournalEntry, since: datetime) -> PostedVoucher | None:
        """Wait until M3 shows the voucher of an in-doubt write, or its settle time is over."""
        until = since + timedelta(seconds=self.settle_seconds)
        remaining = (until - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            log.warning(
                "voucher %s: an earlier write is in doubt; waiting up to %.0f s for M3 to show it before writing again",
                entry.key,
                remaining,
            )
        return self._wait_for_voucher(entry, remaining)

    def _wait_for_voucher(self, entry: JournalEntry, seconds: float) -> PostedVoucher | None:
        """Poll GLS200MI for the voucher for up to ``seconds``; a last look at the end."""
        deadline = time.monotonic() + max(seconds, 0.0)
        pause = POLL_FIRST
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.find_voucher(entry.key, entry.accounting_date, divi=entry.divi)
            self._sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX)
            found = self.find_voucher(entry.key, entry.accounting_date, divi=entry.divi)
            if found is not None:
                return found

    def _answered_or_found(
        self, entry: JournalEntry, write: Callable[[], PostedVoucher | SubmittedVoucher]
    ) -> PostedVoucher | SubmittedVoucher:
        """Run ``write``; once anything was sent, a lost answer is a write in doubt: M3 is looked
        at once (it may have committed before the connection dropped), never written to again."""
        since = datetime.now(UTC)
        try:
            return write()
        except M3WriteInDoubt:
            raise
        except M3Unavailable as exc:
            if _refused_before_sending(exc):
                raise
            doubt = M3WriteInDoubt(exc.what, exc.reason, key=entry.key, since=since)
        try:
            found = self.find_voucher(entry.key, entry.accounting_date, divi=entry.divi)
        except M3Unavailable:
            found = None
        if found is not None:
            log.warning(
                "voucher %s: the write's answer was lost but M3 booked it as %s/%s", entry.key, found.year, found.vono
            )
            return _already(found)
        raise doubt

    def _post_gls200(self, entry: JournalEntry) -> PostedVoucher:
        n = len(entry.lines)
        calls = []
        for number, line in enumerate(entry.lines, start=1):
            fields: dict[str, FieldValue | None] = {
                "DIVI": entry.divi,
                "ACDT": entry.accounting_date,
                "VSER": self.voucher_series,
                "VTXT": entry.voucher_text,
                "CUCD": entry.currency,
                "LINE": number,
                "NLIN": n,
                "CUAM": Decimal(line.amount),
                "VTCD": line.vat_code or None,  # [ours] on GLS200MI/Add; omitted when the line has none
                "CRTP": entry.rate_type,
                "ARAT": entry.rate,
            }
            fields.update({f"AIT{i}": dim for i, dim in enumerate(line.dimensions, start=1) if dim})
            calls.append(("Add", fields))
        results = self.client.execute_bulk("GLS200MI", calls)
        for result in results:
            if result.error is not None:
                raise result.error
        last = results[-1].records[0] if results[-1].records else {}
        if not m3_text(last, "VONO"):
            raise M3Error(f"GLS200MI/Add: voucher {entry.key} sent, but M3 returned no voucher number")
        return self.read_voucher(entry.divi, m3_int(last, "YEA4"), m3_text(last, "VONO"))

    def _post_gls840(self, entry: JournalEntry) -> PostedVoucher | SubmittedVoucher:
        """One GLS840MI batch per posting key: head, lines, check, update, then await the
        batch job. Every step tolerates an earlier attempt having done it (head or line exists,
        batch already submitted), so a rerun finishes or awaits the same batch."""
        if not self.cono:
            raise M3DataError("posting through GLS840MI needs the company: pass cono= to M3Operations or M3Client")
        base: dict[str, FieldValue | None] = {"CONO": self.cono, "KEY1": batch_key(entry.key), "DIVI": entry.divi}
        key1 = str(base["KEY1"])
        try:
            self.client.execute("GLS840MI", "AddBatchHead", {**base, "INTN": GL_INTERFACE, "DESC": entry.voucher_text})
        except M3TransactionError as exc:
            if exc.code != "XRE0104":
                raise
            log.info("GLS840MI batch %s exists (an earlier attempt opened it): finishing that batch", key1)
        lines = [
            (
                "AddBatchLine",
                {
                    **base,
                    "LINE": n,
                    "PARM": encode_i1(
                        I1Record(
                            rnno=n,
                            grnr=1,
                            divi=entry.divi,
                            dimensions=line.dimensions,
                            currency=entry.currency,
                            amount=Decimal(line.amount),
                            accounting_date=entry.accounting_date,
                            text=entry.line_text(line),
                            vat_code=line.vat_code,
                            rate_type=entry.rate_type,
                            rate=entry.rate,
                        )
                    ),
                },
            )
            for n, line in enumerate(entry.lines, start=1)
        ]
        try:
            for result in self.client.execute_bulk("GLS840MI", lines):
                if result.error is not None and not _line_exists(result.error):
                    raise result.error
            self.client.execute("GLS840MI", "CtrlBatch", base)
            self.client.execute("GLS840MI", "UpdBatch", base)
        except M3TransactionError as exc:
            if not _batch_submitted(exc):
                raise
            if exc.code == BATCH_FAILED:
                raise M3BatchFailed(key1, exc.code, exc.message) from None
            log.info("GLS840MI batch %s was submitted by an earlier attempt: awaiting its voucher", key1)
            return self._await_batch(entry, base, submitted_now=False)
        return self._await_batch(entry, base, submitted_now=True)

    def _await_batch(
        self, entry: JournalEntry, base: dict[str, FieldValue | None], *, submitted_now: bool
    ) -> PostedVoucher | SubmittedVoucher:
        """The voucher once M3's batch job has booked it (polled for ``voucher_wait`` s);
        else the batch as submitted, or ``M3BatchFailed`` with M3's errors."""
        key1 = str(base["KEY1"])
        found = self._wait_for_voucher(entry, self.voucher_wait)
        if found is not None:
            return found if submitted_now else _already(found)
        try:  # GLS840MI has no read transaction: the check (option 6) tells the batch's state
            self.client.execute("GLS840MI", "CtrlBatch", base, idempotent=True)
        except M3TransactionError as exc:
            if exc.code == BATCH_FAILED:
                raise M3BatchFailed(key1, exc.code, exc.message) from None
            if exc.code == BATCH_QUEUED:
                log.info("voucher %s: batch %s submitted, not booked yet", entry.key, key1)
                return SubmittedVoucher(key=entry.key, divi=entry.divi, batch=key1)
            if exc.code == "XRE0104":  # booked since the last look
                found = self.find_voucher(entry.key, entry.accounting_date, divi=entry.divi)
                if found is not None:
                    return found if submitted_now else _already(found)
                raise M3Error(
                    f"GLS840MI batch {key1} is updated, but no voucher with posting key {entry.key} "
                    f"is dated within {self.voucher_search_days} days of {entry.accounting_date}"
                ) from None
            raise
        raise M3Error(f"GLS840MI batch {key1} is still open after UpdBatch; update it in GLS840")

    def find_voucher(self, key: str, around: date, *, divi: str | None = None) -> PostedVoucher | None:
        """The voucher whose text starts with posting key ``key``, dated within
        ``voucher_search_days`` of ``around``; None if M3 has none."""
        divi = divi or self.divi
        if not divi:
            raise M3DataError("find_voucher needs the division: pass divi= here or to M3Operations")
        window = timedelta(days=self.voucher_search_days)
        records = self.client.execute(
            "GLS200MI", "LstVouchersByDt", {"DIVI": divi, "FDAT": around - window, "TDAT": around + window}, maxrecs=0
        )
        matches = [r for r in records if key_of(m3_text(r, "VTXT")) == key]
        if not matches:
            return None
        if len(matches) > 1:
            log.warning("posting key %s matches %d vouchers in M3; using the first", key, len(matches))
        first = matches[0]
        return self.read_voucher(divi, m3_int(first, "YEA4"), m3_text(first, "VONO"))

    def closed_periods(self, first: date, last: date, *, divi: str | None = None) -> frozenset[str]:
        """The accounting periods (``YYYYMM``) from ``first``'s month to ``last``'s that M3 has
        closed for posting (GLS900MI/LstPeriods [ours], docs/m3-contract.md; both profiles)."""
        divi = divi or self.divi
        if not divi:
            raise M3DataError("closed_periods needs the division: pass divi= here or to M3Operations")
        records = self.client.execute(
            "GLS900MI",
            "LstPeriods",
            {"DIVI": divi, "FPER": f"{first:%Y%m}", "TPER": f"{last:%Y%m}"},
            maxrecs=0,
        )
        return frozenset(m3_text(r, "PERI") for r in records if m3_text(r, "STAT") == PERIOD_CLOSED)

    def read_voucher(self, divi: str, year: int, vono: str) -> PostedVoucher:
        """GLS200MI/GetVoucherHead and LstVoucherLines."""
        ids: dict[str, FieldValue | None] = {"DIVI": divi, "YEA4": year, "VONO": vono}
        head = self._one("GLS200MI", "GetVoucherHead", ids)
        lines = self.client.execute("GLS200MI", "LstVoucherLines", ids, maxrecs=0)
        text = m3_text(head, "VTXT")
        return PostedVoucher(
            key=key_of(text),
            divi=m3_text(head, "DIVI") or divi,
            year=m3_int(head, "YEA4") or year,
            vono=m3_text(head, "VONO") or vono,
            series=m3_text(head, "VSER"),
            accounting_date=m3_date(head, "ACDT"),
            text=text,
            currency=m3_text(head, "CUCD"),
            debit=m3_decimal(head, "DSUM"),
            credit=abs(m3_decimal(head, "CSUM")),
            journal_no=m3_text(head, "JRNO"),
            lines=tuple(PostedVoucherLine.from_m3(r) for r in lines),
        )

    # -- deliveries ---------------------------------------------------------------------------
    def delivery_tracking(self, orno: str) -> list[Delivery]:
        """Deliveries of an order with their tracking numbers (MWS411MI → MWS410MI ETRN)."""
        lines = self.client.execute("MWS411MI", "LstDelLnByOrd", {"RORC": RORC_CUSTOMER_ORDER, "RIDN": orno}, maxrecs=0)
        by_delivery: dict[str, list[DeliveryLine]] = {}
        for r in lines:
            by_delivery.setdefault(m3_text(r, "DLIX"), []).append(
                DeliveryLine(line=m3_int(r, "RIDL"), itno=m3_text(r, "ITNO"), quantity=m3_decimal(r, "TRQT"))
            )
        deliveries = []
        for dlix, delivery_lines in by_delivery.items():
            head = self._one("MWS410MI", "GetHead", {"DLIX": dlix})
            deliveries.append(
                Delivery(
                    dlix=dlix,
                    orno=m3_text(head, "RIDN") or orno,
                    warehouse=m3_text(head, "WHLO"),
                    tracking=m3_text(head, "ETRN"),
                    carrier=m3_text(head, "FWNO"),
                    bill_of_lading=m3_text(head, "NBOL"),
                    status=m3_text(head, "PGRS"),
                    departure_date=m3_date(head, "DSDT"),
                    lines=tuple(delivery_lines),
                )
            )
        return deliveries

    # -- helpers ------------------------------------------------------------------------------
    def _one(self, program: str, transaction: str, fields: dict[str, FieldValue | None]) -> dict[str, str]:
        records = self.client.execute(program, transaction, fields)
        if not records:
            raise M3Error(f"{program}/{transaction} answered OK without a record")
        return records[0]


def _confirm_errors(answer: BulkResult) -> tuple[M3TransactionError, ...]:
    """A rejected batch order's messages (LEVL, MDTA, MSID, TX60) as M3's refusals of its Confirm."""
    if answer.error is not None:
        return (answer.error,)
    return tuple(
        M3TransactionError(
            "OIS100MI",
            "Confirm",
            "ServerReturnedNOK",
            m3_text(r, "MSID"),
            None,
            f"{m3_text(r, 'TX60')} ({m3_text(r, 'MDTA')})" if m3_text(r, "MDTA") else m3_text(r, "TX60"),
        )
        for r in answer.records
    ) or (
        M3TransactionError(
            "OIS100MI", "Confirm", "ServerReturnedNOK", None, None, "left below status 90 without a message"
        ),
    )


def key_of(voucher_text: str) -> str:
    """The posting key of a voucher text: everything before the first space."""
    return voucher_text.strip().split(" ", 1)[0] if voucher_text.strip() else ""


def batch_key(posting_key: str) -> str:
    """GLS840MI KEY1 (A30) of a posting key: the key itself when it fits, else a stable
    shortening with a hash so keys never share a batch. The same key always gives the same
    KEY1 (no attempt counter): an existing batch is the earlier attempt's, never abandoned."""
    if len(posting_key) <= 30:
        return posting_key
    digest = hashlib.sha1(posting_key.encode()).hexdigest()[:8]
    return f"{posting_key[: 30 - 9]}~{digest}"


BATCH_QUEUED = "XBA0002"  # GLS840MI: batch submitted for update, the job has not run yet [sandbox's code]
BATCH_FAILED = "XBA0003"  # GLS840MI: the update job ended with errors [sandbox's code]


def _refused_before_sending(exc: M3Unavailable) -> bool:
    """Nothing reached M3: the connection was refused, or the gateway throttled the request.
    Everything else (timeout, dropped answer, 5xx) may have run in M3."""
    return exc.status == 429 or "ConnectError" in exc.reason


def _line_exists(error: M3TransactionError) -> bool:
    """AddBatchLine's "line already exists": an earlier attempt added it."""
    return error.code == "XRE0104" and error.field == "LINE"


def _batch_submitted(error: M3TransactionError) -> bool:
    """The batch is past changing: submitted, updated, or its update job failed."""
    return error.code in (BATCH_QUEUED, BATCH_FAILED) or (error.code == "XRE0104" and error.field == "KEY1")


class _KeyLocks:
    """One lock per posting key, alive while someone holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[object, tuple[threading.Lock, int]] = {}

    @contextmanager
    def held(self, key: object) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


_KEY_LOCKS = _KeyLocks()


def held_key_lock(m3: M3Operations, divi: str, key: str) -> contextlib.AbstractContextManager[None]:
    """The per-posting-key lock ``post_voucher`` takes; other writers keyed the same way share it."""
    return _KEY_LOCKS.held((m3.client.base_url, m3.cono, divi, key))


refused_before_sending = _refused_before_sending  # for the customer ledger's writes (connectors/m3/ledger.py)


def _context_problem(key: str, value: str | None, reason: str) -> str:
    what = "company" if key == "cono" else "division"
    return (
        f"M3 refuses the configured {what} ([m3] {key} = {value!r}): {reason}; set [m3] {key} in "
        f"HOME/config.toml or {env_var('m3', key)} to a {what} the M3 user may use"
    )


def _company(cono: str) -> str:
    return str(int(cono)) if cono.isdigit() else cono  # CONO is N3: 0100 is company 100


def _listed(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"{c}/{d}" if d else c for c, d in sorted(pairs))


def _address_fields(orno: str, address: OrderAddress) -> dict[str, FieldValue | None]:
    """OIS100MI/AddBatchAddress's input for the batch order's delivery address."""
    return {
        "ORNO": orno,
        "ADRT": ADRT_DELIVERY,
        "CUNM": address.name,
        "CUA1": address.address1,
        "CUA2": address.address2,
        "CUA3": address.address3,
        "PONO": address.postal_code,
        "TOWN": address.town,
        "CSCD": address.country,
        "ECAR": address.state,
        "PHNO": address.phone,
    }


NOK = "ServerReturnedNOK"  # M3's business refusal (no such item, no price), not a malformed call


def _found(result: BulkResult, read: Callable[[dict[str, str]], T]) -> T | None:
    """The record a bulk read found, read by ``read``; None when M3 refused it as a business
    matter (WIT0103 no such item, no price in the list, ...): one item's answer, not the run's."""
    if result.error is not None:
        if result.error.error_type == NOK:
            return None
        raise result.error
    return read(result.records[0]) if result.records else None


def _first(records: list[dict[str, str]]) -> dict[str, str]:
    """The first record of an answer, or an empty one (callers then report the missing field)."""
    return records[0] if records else {}


def _already(voucher: PostedVoucher) -> PostedVoucher:
    return replace(voucher, already_posted=True)


def _balance(whlo: str, r: dict[str, str]) -> StockBalance:
    return StockBalance(
        whlo=m3_text(r, "WHLO") or whlo,
        itno=m3_text(r, "ITNO"),
        on_hand=m3_decimal(r, "STQT"),
        allocated=m3_decimal(r, "ALQT"),
        allocatable=m3_decimal(r, "AVAL"),
    )


APPROVED_STATUS = "2"  # MMS060 balance-ID status 2 = approved (1 = under inspection, 3 = rejected)


def _sum_balance_ids(whlo: str, records: Iterable[dict[str, str]]) -> list[StockBalance]:
    """Sum MMS060MI/LstBalID locations/lots per item: approved stock is on hand; allocatable is
    approved on hand less allocated."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for r in records:
        itno = m3_text(r, "ITNO")
        on_hand, allocated = totals.get(itno, (Decimal(0), Decimal(0)))
        approved = m3_text(r, "STAS") in ("", APPROVED_STATUS)
        totals[itno] = (on_hand + (m3_decimal(r, "STQT") if approved else 0), allocated + m3_decimal(r, "ALQT"))
    return [
        StockBalance(
            whlo=whlo, itno=itno, on_hand=on_hand, allocated=allocated, allocatable=max(on_hand - allocated, Decimal(0))
        )
        for itno, (on_hand, allocated) in totals.items()
    ]
