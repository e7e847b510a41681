"""Which replica probes what: rendezvous (highest-random-weight) hashing of `org/id`, so
changing the number of replicas moves only about 1/COUNT of the channels."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Shard", "owner", "parse_shard", "shard_from", "shard_key"]

_ORDINAL = re.compile(r"-(\d+)$")  # StatefulSet pods are named NAME-0, NAME-1, ...


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= INDEX < COUNT")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        return self.count == 1 or owner(key, self.count) == self.index


def shard_key(org: str, ident: str) -> str:
    """What a channel or source is sharded by: `org/id`, unique in the registry and stable
    across reloads."""
    return f"{org}/{ident}"


def owner(key: str, count: int) -> int:
    """The replica (0..count-1) whose weight for `key` is highest."""
    return max(range(count), key=lambda replica: _weight(key, replica))


def _weight(key: str, replica: int) -> int:
    digest = hashlib.blake2b(f"{key}\0{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def parse_shard(text: str) -> Shard:
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"invalid shard {text!r}: use INDEX/COUNT, e.g. 0/3")
    return Shard(int(index), int(count))


def shard_from(option: str | None, environ: Mapping[str, str] = os.environ) -> Shard:
    """--shard, else $CONTACT_MONITOR_SHARD, else a StatefulSet's pod ordinal (from
    $HOSTNAME) with $CONTACT_MONITOR_SHARDS replicas, else the only shard."""
    text = option or environ.get("CONTACT_MONITOR_SHARD")
    if text:
        return parse_shard(text)
    count = environ.get("CONTACT_MONITOR_SHARDS")
    if count:
        match = _ORDINAL.search(environ.get("HOSTNAME", ""))
        if not match or not count.isdigit():
            raise ValueError(
                "CONTACT_MONITOR_SHARDS needs a StatefulSet pod name "
                "(NAME-ORDINAL) in $HOSTNAME and a number of replicas"
            )
        return Shard(int(match.group(1)), int(count))
    return Shard(0, 1)
