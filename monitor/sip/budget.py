"""The daily budget of test calls: a test call costs the line's owner (an agent's time, a
toll-free minute), so each channel may be called at most `max_calls_per_day` times in any
24 hours. Calls are written to the history database before they are made, so a restart
(or a `check` beside the daemon) cannot spend the budget twice."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["CallBudget"]

WINDOW_SECONDS = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sip_calls (
    channel TEXT NOT NULL,   -- "org/channel", or the E.164 number when no org is known
    at REAL NOT NULL         -- epoch seconds the call was started
);
CREATE INDEX IF NOT EXISTS sip_calls_channel ON sip_calls (channel, at);
"""


class CallBudget:
    """A rolling 24-hour count of test calls per channel, in SQLite (`path`, or memory)."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = path
        self._lock = threading.Lock()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def spend(self, channel: str, limit: int, now: float | None = None) -> tuple[bool, int]:
        """Records one call if fewer than `limit` were made in the last 24 h: (allowed, calls
        made in the window before this one). Atomic across processes sharing the file."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (made,) = self._db.execute(
                    "SELECT count(*) FROM sip_calls WHERE channel = ? AND at > ?",
                    (channel, now - WINDOW_SECONDS),
                ).fetchone()
                allowed = made < limit
                if allowed:
                    self._db.execute("INSERT INTO sip_calls VALUES (?, ?)", (channel, now))
                self._db.execute("DELETE FROM sip_calls WHERE at <= ?", (now - WINDOW_SECONDS,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return allowed, made

    def close(self) -> None:
        with self._lock:
            self._db.close()
