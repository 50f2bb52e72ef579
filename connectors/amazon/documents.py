"""Report documents: fetch the presigned URL ourselves and decode the bytes deliberately.

The library's own download decodes a body without charset as ISO-8859-1 (UTF-8 becomes
mojibake) and trusts ``compressionAlgorithm`` blindly; Amazon has been seen omitting the
charset, declaring ``Cp1252``/``utf8``, and announcing GZIP for plain bodies. So: sniff the
gzip magic, then decode by the declared charset, else UTF-8, else cp1252.
"""
from __future__ import annotations

import codecs
import gzip
import zlib
from dataclasses import dataclass, field
from email.message import Message

GZIP_MAGIC = b"\x1f\x8b"

# Charset labels Amazon/S3 sends that Python does not know by that name.
_CHARSET_ALIASES = {"cp1252": "cp1252", "utf8": "utf-8", "windows-31j": "cp932"}


@dataclass(frozen=True)
class DownloadedDocument:
    document_id: str
    raw: bytes = field(repr=False)   # bytes as served (still compressed if ``compressed``)
    text: str = field(repr=False)    # decoded, decompressed content
    charset_used: str               # Python codec name actually used
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


def decompress_if_gzip(raw: bytes) -> tuple[bytes, bool]:
    """Inflate when the body starts with the gzip magic (whatever the metadata claims)."""
    if raw[:2] != GZIP_MAGIC:
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (OSError, EOFError, zlib.error) as exc:
        raise UndecodableDocument(f"body starts with the gzip magic but does not inflate: {exc}") from None


def decode_text(body: bytes, declared_charset: str | None) -> tuple[str, str]:
    """Decode ``body``: declared charset strictly, else UTF-8, else cp1252. Returns (text, codec)."""
    if declared_charset:
        codec = python_codec(declared_charset)
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise UndecodableDocument(
                f"body is not valid {declared_charset} at byte {exc.start}") from None
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:  # cp1252 leaves 5 bytes undefined
        raise UndecodableDocument(f"body is neither UTF-8 nor cp1252 (byte {exc.start})") from None


def decode_document(document_id: str, raw: bytes, content_type: str | None) -> DownloadedDocument:
    body, compressed = decompress_if_gzip(raw)
    text, codec = decode_text(body, header_charset(content_type))
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark is not content
        text = text[1:]
    return DownloadedDocument(document_id=document_id, raw=raw, text=text, charset_used=codec, compressed=compressed)
