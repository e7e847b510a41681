"""Content codings of an HTTP body (RFC 9110 §8.4), decoded under a cap.

httpx decodes a whole network chunk at once, so 64 KiB of a gzip or brotli bomb could
become gigabytes before anyone counts them. Here every coding is fed in small pieces and
asked for no more output than the cap leaves, so that a hostile server can never make a
probe hold more than its cap of decoded bytes. The decompressors are the ones httpx's
extras bring (zlib, brotli, zstandard).
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

from monitor.model import ProbeFailure

__all__ = ["BodyDecoder"]

# zstd produces at most 128 KiB per block, and a block can be 4 bytes: 64 input bytes a
# call keep one call's output near 2 MiB whatever the stream says.
_ZSTD_PIECE = 64


class _Coding(Protocol):
    def feed(self, data: bytes, limit: int) -> bytes: ...


class _Identity:
    def feed(self, data: bytes, limit: int) -> bytes:
        return data


class _Zlib:
    """gzip, or deflate with or without its zlib header (servers send both, RFC 9110 §8.4.1.2)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        self._first = True

    def feed(self, data: bytes, limit: int) -> bytes:
        try:
            out = self._obj.decompress(data, limit)
        except zlib.error:
            if self._gzip or not self._first:
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            out = self._obj.decompress(data, limit)
        self._first = False
        if self._obj.unconsumed_tail:
            raise _OverCap(out)
        return out


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes, limit: int) -> bytes:
        out = self._obj.process(data, output_buffer_limit=limit)
        if not self._obj.can_accept_more_data():
            raise _OverCap(out)
        return out


class _Zstd:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        for i in range(0, len(data), _ZSTD_PIECE):
            out += self._obj.decompress(data[i : i + _ZSTD_PIECE])
            if len(out) > limit:
                raise _OverCap(bytes(out))
        return bytes(out)


class _OverCap(Exception):  # noqa: N818 - a signal, not an error
    """The coding would produce more than its limit; `partial` is what it produced."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__()
        self.partial = partial


_CODINGS = {
    "gzip": lambda: _Zlib(gzip=True),
    "x-gzip": lambda: _Zlib(gzip=True),
    "deflate": lambda: _Zlib(gzip=False),
    "br": _Brotli,
    "zstd": _Zstd,
}
_CORRUPT = (zlib.error, brotli.error, zstandard.ZstdError)


class BodyDecoder:
    """Decodes a body sent with `Content-Encoding: <codings>` (applied in order, so
    undone last first; `identity` is none) into at most `cap` bytes.

    Raises `ProbeFailure`: `bad_encoding` for a coding we cannot undo or a corrupt body,
    `too_large` when the decoded body would pass the cap, unless `truncate`: then the body's
    first `cap` bytes are given and `truncated` is set.
    """

    def __init__(self, content_encoding: str, cap: int, truncate: bool = False) -> None:
        names = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        names = [n for n in names if n != "identity"]
        unknown = [n for n in names if n not in _CODINGS]
        if unknown:
            raise ProbeFailure("bad_encoding", f"unsupported content-encoding {unknown[0]!r}")
        self._chain: list[_Coding] = [_CODINGS[n]() for n in reversed(names)] or [_Identity()]
        self.cap = cap
        self.truncate = truncate
        self.truncated = False  # the cap was reached and the rest of the body left out
        self.decoded = 0  # bytes of decoded body so far

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes `data` (the next raw piece of the body) yields."""
        room = self.cap - self.decoded  # what the body may still add
        coding = self._chain[0]
        try:
            for coding in self._chain:
                data = coding.feed(data, room + 1)
        except _OverCap as over:
            if not self.truncate:
                self._over(self.cap + 1)
            # Only the outermost coding's output is body text; an inner one's is not.
            data = over.partial if coding is self._chain[-1] else b""
            self.truncated = True
        except _CORRUPT as exc:
            raise ProbeFailure("bad_encoding", f"corrupt compressed body: {exc}") from None
        if len(data) > room:
            if not self.truncate:
                self._over(self.decoded + len(data))
            self.truncated = True
            data = data[:room]
        self.decoded += len(data)
        return data

    def _over(self, read: int) -> None:
        read = min(read, self.cap + 1)
        raise ProbeFailure("too_large", f"body larger than {self.cap} bytes", body_bytes_read=read)
