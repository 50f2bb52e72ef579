"""Mask secrets and buyer personal data before anything is logged or stored.

`redact` walks strings, mappings and sequences and returns a masked copy (it never mutates
its argument). Two rules apply:

* by key: values under keys that look secret (token, password, client_secret, sask, ...) or
  that hold buyer personal data (BuyerEmail, Name, AddressLine1, Phone, PostalCode, and M3's
  customer address fields CUNM, CUA1-4, PONO, PHNO, MAIL ...) become ``'***'`` whatever
  their type;
* inline, in every string: LWA tokens (``Atza|...``, ``Atzr|...``), ``Bearer ...`` and
  ``Basic ...`` credentials, e-mail addresses and ``key=value`` / ``"key": "value"`` pairs
  whose key looks secret.

`RedactingFilter` applies the same to log records and `install_redaction` attaches it to the
handlers of the loggers this project writes through, so a stray ``log.info(response.json())``
cannot leak a token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Compared after lower-casing and dropping everything but letters and digits, so
# "X-Amz-Access-Token", "x_amz_access_token" and "XAmzAccessToken" are one key.
_SECRET_KEYS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "sask",
        "saak",
        "cs",
        "refreshtoken",
        "accesstoken",
        "idtoken",
        "authorization",
        "proxyauthorization",
        "xamzaccesstoken",
        "xamzsecuritytoken",
        "clientsecret",
        "lwaclientsecret",
        "apikey",
        "xapikey",
        "cookie",
        "setcookie",
        "privatekey",
        "secretkey",
        "secretaccesskey",
        "awssecretaccesskey",
        "sessiontoken",
        "credentials",
    }
)
# Key fragments that make any key secret ("m3_password", "lwa_client_secret_v2" ...).
_SECRET_FRAGMENTS = ("token", "secret", "password", "passwd")
# Keys that contain a fragment but hold no secret: pagination cursors and token metadata.
_NOT_SECRET = frozenset({"nexttoken", "tokentype", "tokenurl", "expiresin", "continuationtoken"})

_PERSONAL_KEYS = frozenset(
    {
        # SP-API Orders / address objects
        "name",
        "buyername",
        "buyeremail",
        "email",
        "emailaddress",
        "phone",
        "phonenumber",
        "addressline1",
        "addressline2",
        "addressline3",
        "postalcode",
        "recipientname",
        "shippingaddress",
        "billingaddress",
        "buyerinfo",
        "buyercounty",
        "buyertaxinfo",
        "buyer",
        "street",
        "streetaddress",
        # M3 customer and order-address fields (CRS610MI, OIS100MI/AddBatchAddress)
        "cunm",
        "cua1",
        "cua2",
        "cua3",
        "cua4",
        "pono",
        "phno",
        "phn2",
        "tfno",
        "mail",
        "emal",
    }
)
_PERSONAL_PREFIXES = ("buyer",)
# Spelled as they appear on the wire, for the inline patterns below.
_PERSONAL_FIELD_NAMES = (
    r"CUNM|CUA[1-4]|PONO|PHNO|PHN2|TFNO|MAIL|EMAL|Name|BuyerName|BuyerEmail|Email|"
    r"AddressLine[1-3]|Phone|PostalCode|RecipientName"
)

_INLINE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # LWA access / refresh tokens: "Atza|IwEB..." and "Atzr|IwEB...".
    (re.compile(r"\b(Atz[ar])\|[^\s\"'&,;]+"), r"\1|" + MASK),
    # Authorization schemes as headers spell them; 8+ characters so prose ("Basic mode")
    # is left alone.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/|=]{8,}"), r"\1 " + MASK),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), MASK),
    # Passwords inside URLs: postgresql://user:password@host/db.
    (re.compile(r"(?P<key>\b[a-z][a-z0-9+.\-]*://[^:/@\s]+:)(?P<value>[^@/\s]+)(?=@)"), r"\g<key>" + MASK),
    # key=value (form bodies, query strings) and "key": "value" (JSON / reprs in text).
    (
        re.compile(
            r"(?i)(?P<key>[\"']?\b[a-z0-9_\-]*(?:token|secret|password|passwd|sask|saak|authorization)"
            r"[a-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\"'&\s,;}\]]+)"
        ),
        r"\g<key>" + MASK,
    ),
    # Buyer data in M3 query strings (MI REST passes fields as ?CUNM=Jane+Doe&CUA1=...) and in
    # JSON text ("Name": "Jane Doe"), as httpx and error bodies would log them.
    (re.compile(r"(?P<key>[?&;](?:" + _PERSONAL_FIELD_NAMES + r")=)(?P<value>[^&;#\s\"']*)"), r"\g<key>" + MASK),
    (re.compile(r'(?P<key>"(?:' + _PERSONAL_FIELD_NAMES + r')"\s*:\s*")(?P<value>(?:[^"\\]|\\.)*)'), r"\g<key>" + MASK),
)


def _normalise(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def is_secret_key(key: str) -> bool:
    """True when a mapping key's value must never be shown (credentials of any kind)."""
    k = _normalise(key)
    if k in _NOT_SECRET:
        return False
    return k in _SECRET_KEYS or any(fragment in k for fragment in _SECRET_FRAGMENTS)


def is_personal_key(key: str) -> bool:
    """True when a mapping key holds buyer personal data (name, address, phone, e-mail)."""
    k = _normalise(key)
    return k in _PERSONAL_KEYS or k.startswith(_PERSONAL_PREFIXES)


_URL_USERINFO = re.compile(r"^(?P<scheme>\s*[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>.*)@", re.DOTALL)


def redact_url(url: str) -> str:
    """``url`` with its whole userinfo masked (``ftp://***@host``): for URLs shown in messages,
    where a user name may be an account and a password may hold any character."""
    return _URL_USERINFO.sub(r"\g<scheme>" + MASK + "@", url, count=1)


def redact_text(text: str) -> str:
    """Mask tokens, credentials and e-mail addresses inside free text."""
    for pattern, replacement in _INLINE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _is_m3_name_value_pair(mapping: Mapping[Any, Any]) -> bool:
    # M3 MI v1 records are lists of {"Name": "CUNO", "Value": "..."}: there "Name" names a
    # field, it is not a person's name. The value is masked when the field is personal.
    return "Name" in mapping and "Value" in mapping and len(mapping) <= 2


def _redact_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    if _is_m3_name_value_pair(mapping):
        field = mapping["Name"]
        masked = isinstance(field, str) and (is_secret_key(field) or is_personal_key(field))
        return {"Name": field, "Value": MASK if masked else redact(mapping["Value"])}
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        if isinstance(key, str) and value is not None and (is_secret_key(key) or is_personal_key(key)):
            out[key] = MASK
        else:
            out[key] = redact(value)
    return out


def redact(value: Any) -> Any:
    """A copy of ``value`` with secrets and buyer personal data masked as ``'***'``.

    Strings, mappings (returned as dicts), lists and tuples are walked; other values (numbers,
    ``None``, ``Decimal``, dates) are returned unchanged. ``None`` under a secret key stays
    ``None`` so "not set" remains visible.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _redact_mapping(value)
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's message, arguments and traceback.

    The message is rendered first (``msg % args``) and the result masked, so secrets inside
    arbitrary objects' ``str()`` (exceptions, requests) are caught too. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, (Mapping, list, tuple)) and not record.args:
                record.msg = redact(record.msg)
            elif isinstance(record.args, Mapping):
                record.args = redact(record.args)
            elif record.args:
                record.args = tuple(redact(arg) for arg in record.args)
            record.msg = redact_text(record.getMessage())
            record.args = None
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            record.msg = redact_text(str(record.msg))
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def _attach(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())


# Loggers Prefect writes run logs through (and ships to its API); they may not exist yet when
# redaction is installed, and logger filters survive Prefect's later `dictConfig`.
_KNOWN_CHILDREN = {"prefect": ("prefect.flow_runs", "prefect.task_runs", "prefect.extra", "prefect.workers")}


def install_redaction(logger_names: Iterable[str] = ("", "prefect", "httpx", "sp_api")) -> None:
    """Attach a `RedactingFilter` to the named loggers, their existing descendants, and all
    their handlers. Idempotent: running it again adds nothing.

    Handler filters catch records propagated from child loggers (logger filters do not), so
    both are covered. Handlers added later (Prefect configures its logging when ``prefect.flow``
    is first imported) are not covered until this runs again, so call it after importing
    Prefect's flow API; Prefect's run loggers keep their logger-level filter regardless.
    """
    names = list(logger_names)
    for name in names:
        for child in _KNOWN_CHILDREN.get(name, ()):
            logging.getLogger(child)
    existing = list(logging.root.manager.loggerDict)
    for name in names:
        loggers = [logging.getLogger(name)]
        if name:  # the root logger's own handlers already see every propagated record
            loggers += [
                logging.getLogger(other)
                for other in existing
                if other.startswith(f"{name}.") and isinstance(logging.root.manager.loggerDict[other], logging.Logger)
            ]
        for logger in loggers:
            _attach(logger)
            for handler in logger.handlers:
                _attach(handler)
