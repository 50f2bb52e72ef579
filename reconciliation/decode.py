"""Bytes of a settlement document -> UTF-8 bytes ready for the CSV reader.

Amazon does not state the encoding reliably (sp-api.md §1.6): S3 sometimes declares
``charset=Cp1252``, sometimes ``utf8``, often nothing. We try the declared charset, else
UTF-8, else cp1252, and hand the reader UTF-8 bytes (unchanged when they already are UTF-8,
so the common case costs one validation pass and no copy).
"""

from __future__ import annotations

import codecs

UTF8_BOM = codecs.BOM_UTF8

# Names S3 and the python client use that Python does not know under that spelling.
_CHARSET_ALIASES = {"windows-31j": "cp932", "utf8": "utf-8", "cp1252": "cp1252"}


class NotTextError(ValueError):
    """The document is not text in any encoding we accept (binary, or undecodable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _codec_name(charset: str) -> str:
    name = charset.strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise NotTextError(f"unknown charset {charset!r}") from exc


def to_utf8(data: bytes, charset: str | None = None) -> tuple[bytes, str]:
    """Return (UTF-8 bytes without BOM, name of the encoding that was used)."""
    if b"\x00" in data:
        # No text encoding we accept puts NUL bytes in a settlement file: it is binary
        # (a gzip body that was not unpacked, a spreadsheet, ...).
        raise NotTextError("not a text file (contains NUL bytes)")
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
        charset = charset or "utf-8"
    if data.isascii():  # real files are ASCII: valid in every candidate encoding, no decode pass needed
        return data, "ascii"
    candidates = [_codec_name(charset)] if charset else ["utf-8", "cp1252"]
    for codec in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return (data if codec == "utf-8" else text.encode("utf-8")), codec
    raise NotTextError(f"not a text file (cannot be decoded as {' or '.join(candidates)})")
