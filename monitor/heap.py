"""Keeps Python's full garbage collections short once the registry is loaded.

A 10,000-channel daemon holds a few hundred thousand long-lived objects (the registry's
models, the state, the cached exposition text); every full (generation 2) collection walks
them all, about 70-100 ms during which no probe starts and no scrape is answered (bench/,
issue 14: the slowest `/metrics` scrapes). `gc.freeze()` moves what exists into a permanent
generation the collector no longer walks; only what probes create afterwards is.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> None:
    """Collects what the last registry left behind, then freezes what remains.

    Called after the daemon starts and after each reload: objects frozen earlier are unfrozen
    first, so a reference cycle the previous registry left is still collected (a frozen
    cycle would never be). Costs one full collection, as long as one of those it saves."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
