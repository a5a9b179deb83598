"""Decode the (possibly truncated) first text part with mail-parser (pure).

We only ever hold the first ``TEXT_LIMIT`` encoded bytes of one part, never the
whole message, so the part is re-wrapped in a minimal MIME entity with its own
Content-Type and Content-Transfer-Encoding and handed to mail-parser, which owns
the charset and transfer-encoding quirks.
"""

from __future__ import annotations

import binascii
import re
import unicodedata

from ..errors import MessageParseError
from .features import TextPart

_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._:+-]{1,40}$")
_QP_TAIL = re.compile(rb"=[0-9A-Fa-f]?$")


def _trim_truncated(data: bytes, encoding: str, truncated: bool) -> bytes:
    """Drop a partial base64 quantum or quoted-printable escape cut by the byte limit."""
    if not truncated:
        return data
    if encoding == "base64":
        # Keep whole lines only; the last one may be cut mid-quantum.
        cut = data.rfind(b"\n")
        return data[: cut + 1] if cut > 0 else data[: len(data) - len(data) % 4]
    if encoding == "quoted-printable":
        return _QP_TAIL.sub(b"", data)
    return data


# Parts that need no transfer decoding, in charsets Python decodes exactly: the common
# case, handled without building a MIME entity. Everything else goes to mail-parser.
_PLAIN_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_DIRECT_CHARSETS = {
    "us-ascii": "ascii",
    "ascii": "ascii",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "latin-1",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
}


def _transfer_decoded(part: TextPart, data: bytes, codec: str, truncated: bool) -> str | None:
    """A base64 or quoted-printable part decoded as mail-parser decodes it (the same
    binascii steps as the standard library's ``get_payload(decode=True)``, a strict
    charset decode, NFC), without building and parsing a MIME entity; None when only
    mail-parser's recovery rules can say what the text is."""
    data = _trim_truncated(data, part.encoding, truncated)
    try:
        raw = binascii.a2b_base64(data) if part.encoding == "base64" else binascii.a2b_qp(data)
    except binascii.Error:
        return None
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        if codec != "utf-8":
            return None  # mail-parser retries in utf-8
        text = raw.decode("utf-8", "replace")  # what its retry comes to for utf-8
    return unicodedata.normalize("NFC", text)


def decode_text_part(part: TextPart, data: bytes, *, truncated: bool) -> tuple[str, str]:
    """Return ``(subtype, text)`` of the part; raises MessageParseError on failure."""
    codec = _DIRECT_CHARSETS.get(part.charset.lower())
    direct: str | None = None
    if codec is not None and part.encoding in _PLAIN_ENCODINGS:
        direct = data.decode(codec, "replace")
    elif codec is not None and part.encoding in ("base64", "quoted-printable"):
        direct = _transfer_decoded(part, data, codec, truncated)
    if direct is not None:
        text = direct.replace("\r\n", "\n")
        return part.subtype, text.rstrip("\ufffd") if truncated else text
    return part.subtype, with_mailparser(part, data, truncated=truncated)


def with_mailparser(part: TextPart, data: bytes, *, truncated: bool) -> str:
    """The part's text as mail-parser reads it, re-wrapped in a minimal MIME entity."""
    charset = part.charset if _SAFE_TOKEN.match(part.charset) else "utf-8"
    encoding = part.encoding if _SAFE_TOKEN.match(part.encoding) else "8bit"
    data = _trim_truncated(data, encoding, truncated)
    entity = (
        f'MIME-Version: 1.0\r\nContent-Type: text/{part.subtype}; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode("ascii") + data
    import mailparser  # imported on first use: a no-op rescan never needs it

    try:
        parsed = mailparser.parse_from_bytes(entity)
        chunks = parsed.text_plain if part.subtype == "plain" else parsed.text_html
    except Exception as exc:  # mail-parser raises many kinds; one message, one skip
        raise MessageParseError(f"text part {part.section} could not be decoded: {exc!r}") from exc
    text = "\n".join(chunks)
    if truncated:
        # A multi-byte character cut by the byte limit decodes to U+FFFD: drop it.
        text = text.rstrip("\ufffd")
    return text
