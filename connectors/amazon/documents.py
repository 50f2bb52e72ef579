"""Report documents: fetch the presigned URL ourselves and decode the bytes deliberately.

The library's own download decodes a body without charset as ISO-8859-1 (UTF-8 becomes
mojibake) and trusts ``compressionAlgorithm`` blindly; Amazon has been seen omitting the
charset, declaring ``Cp1252``/``utf8``, and announcing GZIP for plain bodies. So: sniff the
gzip magic, then decode by the declared charset, else UTF-8, else cp1252.

Documents are bounded and come from where Amazon keeps them: ``DocumentLimits`` caps the
bytes downloaded and the bytes a gzip body may inflate to (decompression streams, so a gzip
bomb stops at the cap instead of filling memory), and ``check_document_url`` accepts only
https URLs on Amazon's S3 hosts (``*.amazonaws.com``), plus the SP-API host itself when that
is the local sandbox (plain http on 127.0.0.1/localhost).
"""

from __future__ import annotations

import codecs
import zlib
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urlsplit

GZIP_MAGIC = b"\x1f\x8b"
GIB = 1 << 30
# Presigned report URLs point at S3 (tortuga-prod-na.s3-external-1.amazonaws.com,
# tortuga-prod-eu.s3-eu-west-1.amazonaws.com, ...; sp-api.md §2).
AMAZON_DOCUMENT_HOST_SUFFIXES = (".amazonaws.com",)
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DocumentLimits:
    """Most bytes a report document may download as, and inflate to (the largest real
    settlement files are tens of MB; 2 GiB leaves room while bounding memory and disk)."""

    max_download_bytes: int = 2 * GIB
    max_decompressed_bytes: int = 2 * GIB

    def __post_init__(self) -> None:
        if self.max_download_bytes < 1 or self.max_decompressed_bytes < 1:
            raise ValueError("document limits must be positive byte counts")


class DocumentRefused(ValueError):
    """A document URL or body we will not take (wrong host, not https, too large)."""


# Charset labels Amazon/S3 sends that Python does not know by that name.
_CHARSET_ALIASES = {"cp1252": "cp1252", "utf8": "utf-8", "windows-31j": "cp932"}


@dataclass(frozen=True)
class DownloadedDocument:
    document_id: str
    raw: bytes = field(repr=False)  # bytes as served (still compressed if ``compressed``)
    text: str = field(repr=False)  # decoded, decompressed content
    charset_used: str  # Python codec name actually used
    compressed: bool


class UndecodableDocument(ValueError):
    """The body is neither valid in its declared charset nor gzip as announced."""


def header_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header, or None."""
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return str(charset).strip() if charset else None


def python_codec(label: str) -> str:
    """Map a declared charset label to a Python codec name; unknown labels are an error."""
    alias = _CHARSET_ALIASES.get(label.strip().lower())
    if alias:
        return alias
    try:
        return codecs.lookup(label).name
    except LookupError:
        raise UndecodableDocument(f"unknown charset {label!r} in Content-Type") from None


def is_local_sandbox(endpoint: str) -> bool:
    """An SP-API endpoint that is the local emulator (http on the loopback), never Amazon."""
    parts = urlsplit(endpoint)
    return parts.scheme == "http" and (parts.hostname or "") in _LOCAL_HOSTS


def check_document_url(url: str, endpoint: str) -> None:
    """Refuse a document URL that is not https on Amazon's S3 hosts; against the local sandbox,
    its own host is allowed too. The message names scheme and host, never the presigned query."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    sandbox = urlsplit(endpoint)
    if is_local_sandbox(endpoint) and parts.scheme == sandbox.scheme and parts.netloc == sandbox.netloc:
        return
    if parts.scheme != "https":
        raise DocumentRefused(
            f"document URL is {parts.scheme or 'no'}:// on {host or '(no host)'}; "
            "report documents are fetched over https only"
        )
    if not host.endswith(AMAZON_DOCUMENT_HOST_SUFFIXES):
        raise DocumentRefused(
            f"document URL host {host or '(none)'} is not one of Amazon's document hosts "
            f"(*{', *'.join(AMAZON_DOCUMENT_HOST_SUFFIXES)})"
        )


def inflate_bounded(raw: bytes, limit: int) -> bytes:
    """Inflate a gzip body (every member) chunk by chunk, refusing to produce more than ``limit`` bytes."""
    out = bytearray()
    data = raw
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = data
        while pending:
            try:
                piece = inflater.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise UndecodableDocument(f"body starts with the gzip magic but does not inflate: {exc}") from None
            out += piece
            if len(out) > limit:
                raise DocumentRefused(
                    f"document inflates to more than {limit} bytes (the configured max_decompressed_bytes); refused"
                )
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise UndecodableDocument("body starts with the gzip magic but the gzip stream is truncated")
        data = inflater.unused_data  # a further gzip member, or trailing bytes
        if data and data[:2] != GZIP_MAGIC:
            break
    return bytes(out)


def decompress_if_gzip(raw: bytes, limit: int = DocumentLimits().max_decompressed_bytes) -> tuple[bytes, bool]:
    """Inflate (bounded by ``limit``) when the body starts with the gzip magic, whatever the metadata claims."""
    if raw[:2] != GZIP_MAGIC:
        return raw, False
    return inflate_bounded(raw, limit), True


def decode_text(body: bytes, declared_charset: str | None) -> tuple[str, str]:
    """Decode ``body``: declared charset strictly, else UTF-8, else cp1252. Returns (text, codec)."""
    if declared_charset:
        codec = python_codec(declared_charset)
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise UndecodableDocument(f"body is not valid {declared_charset} at byte {exc.start}") from None
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:  # cp1252 leaves 5 bytes undefined
        raise UndecodableDocument(f"body is neither UTF-8 nor cp1252 (byte {exc.start})") from None


def decode_document(
    document_id: str, raw: bytes, content_type: str | None, limits: DocumentLimits = DocumentLimits()
) -> DownloadedDocument:
    body, compressed = decompress_if_gzip(raw, limits.max_decompressed_bytes)
    text, codec = decode_text(body, header_charset(content_type))
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark is not content
        text = text[1:]
    return DownloadedDocument(document_id=document_id, raw=raw, text=text, charset_used=codec, compressed=compressed)
