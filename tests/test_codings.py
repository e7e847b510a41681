"""Body decoding under a cap (monitor.probers.codings): refused past it, or cut to it."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from monitor.model import ProbeFailure
from monitor.probers.codings import BodyDecoder

TEXT = ("<p>Горячая линия 8 800 555-89-82</p>\n" * 3000).encode()
CODED = {
    "identity": TEXT,
    "gzip": gzip.compress(TEXT),
    "deflate": zlib.compress(TEXT),
    "br": brotli.compress(TEXT),
    "zstd": zstandard.ZstdCompressor().compress(TEXT),
}
CAP = 10_000


def decode(coding: str, truncate: bool) -> tuple[bytes, BodyDecoder]:
    decoder = BodyDecoder(coding, CAP, truncate=truncate)
    body = CODED[coding]
    out = bytearray()
    for i in range(0, len(body), 1024):  # as the network hands it over
        out += decoder.feed(body[i : i + 1024])
        if decoder.truncated:
            break
    return bytes(out), decoder


@pytest.mark.parametrize("coding", list(CODED))
def test_first_cap_bytes_given_when_truncating_a_longer_body(coding: str):
    """With `truncate`, the decoded body is exactly its first `cap` bytes, and says so."""
    out, decoder = decode(coding, truncate=True)
    assert out == TEXT[:CAP]
    assert (decoder.truncated, decoder.decoded) == (True, CAP)


@pytest.mark.parametrize("coding", list(CODED))
def test_too_large_when_body_passes_the_cap_without_truncating(coding: str):
    """Without `truncate`, passing the cap is `too_large`, as before."""
    with pytest.raises(ProbeFailure) as raised:
        decode(coding, truncate=False)
    assert raised.value.reason == "too_large"


def test_whole_body_given_when_it_fits_the_cap():
    decoder = BodyDecoder("gzip", len(TEXT), truncate=True)
    assert decoder.feed(CODED["gzip"]) == TEXT
    assert not decoder.truncated
