"""History in an embedded SQLite database: incidents (channel down -> up), drift findings
(raised -> cleared), and an hourly roll-up of probe results, with retention.

One writer: events are queued in memory by the event loop and written in one transaction
every few seconds by `flush` (in a worker thread), so a `kill -9` loses at most the last
few seconds and WAL mode keeps the file consistent. Every write is idempotent against what
the file already holds, so a restart never duplicates an open incident or finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.model import Finding

__all__ = [
    "History",
    "HistoryHealth",
    "HistoryLocked",
    "HistoryUnavailable",
    "Incident",
    "LoggedFinding",
    "describe_db_error",
]

# Writes kept for retry while the database cannot be written (a full disk, a deleted
# directory); past this the oldest are dropped, and counted.
MAX_PENDING_WRITES = 50_000

_Op = tuple[str, tuple[Any, ...]]  # a queued write: method suffix and its arguments
_HourKey = tuple[str, str, int]  # (org, channel, hour start in epoch seconds)


SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    org TEXT NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL,
    reason TEXT, message TEXT,
    end_note TEXT
);
CREATE INDEX IF NOT EXISTS incidents_channel ON incidents (org, channel, started_at);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (org, channel) WHERE ended_at IS NULL;
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY,
    org TEXT NOT NULL, source TEXT NOT NULL, type TEXT NOT NULL,
    channel TEXT NOT NULL DEFAULT '', contact TEXT NOT NULL DEFAULT '', evidence TEXT,
    raised_at REAL NOT NULL, cleared_at REAL
);
CREATE INDEX IF NOT EXISTS findings_open ON findings (org, source) WHERE cleared_at IS NULL;
CREATE TABLE IF NOT EXISTS rollup (
    org TEXT NOT NULL, channel TEXT NOT NULL, hour INTEGER NOT NULL,
    ok INTEGER NOT NULL, failed INTEGER NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL,
    PRIMARY KEY (org, channel, hour)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Incident:
    org: str
    channel: str
    kind: str
    started_at: float
    ended_at: float | None  # None while the channel is still down
    reason: str | None
    message: str | None
    # Why it ended when not by a measured recovery: "channel removed", "channel
    # redefined", "monitor stopped" (the time after that was not measured). None: back up.
    end_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "channel": self.channel,
            "kind": self.kind,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": (self.ended_at or time.time()) - self.started_at,
            "reason": self.reason,
            "message": self.message,
            "end_note": self.end_note,
        }


class HistoryUnavailable(Exception):  # noqa: N818 - reads as "history is unavailable"
    """The database cannot be opened or read; the message names the file and the cause."""


class HistoryLocked(HistoryUnavailable):
    """Another daemon holds the database's lock file (as Prometheus locks its data dir)."""


@dataclass
class HistoryHealth:
    """What the status page, the API and `/metrics` say about history."""

    available: bool = True  # False: the daemon runs without history (could not open it)
    error: str | None = None  # the latest failure, with the file and the cause
    failing: bool = False  # the latest write failed; queued writes wait for a retry
    write_errors: int = 0  # failed flushes (contact_history_write_errors_total)
    dropped: int = 0  # queued writes dropped, oldest first, past MAX_PENDING_WRITES
    recreated: int = 0  # times a deleted database file was created anew
    pending: int = 0  # writes waiting for the next flush, as of the latest one


def describe_db_error(path: Path, exc: BaseException) -> str:
    """One line naming the file and the real cause, e.g. `data/h.db: database or disk is
    full (SQLITE_FULL)` or `data/h.db: No such file or directory`."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", None)
        return f"{path}: {exc}" + (f" ({name})" if name else "")
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or exc}"
    return f"{path}: {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class LoggedFinding:
    finding: Finding
    raised_at: float
    cleared_at: float | None


class History:
    """The database and the queue of writes waiting for the next flush."""

    def __init__(self, path: Path, retention_seconds: float, lock: bool = False) -> None:
        """Open (or create) the database at `path`. With `lock`, take `<path>.lock` first:
        `HistoryLocked` if another daemon holds it. `HistoryUnavailable` (file and cause
        in one line) if the file cannot be opened or is not a database."""
        self.path = path
        self.retention_seconds = retention_seconds
        self.health = HistoryHealth()
        self._pending: list[_Op] = []
        self._rollup: dict[_HourKey, list[float]] = {}
        self._lock = threading.Lock()  # one writer at a time, whoever calls flush
        self._flush_order = asyncio.Lock()
        self._read_lock = threading.Lock()
        self._lock_file = self._take_lock() if lock else None
        try:
            self._open()
        except (sqlite3.Error, OSError) as exc:
            self._release_lock()
            raise HistoryUnavailable(describe_db_error(path, exc)) from None

    def _take_lock(self) -> int:
        lock_path = Path(f"{self.path}.lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HistoryUnavailable(describe_db_error(lock_path, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HistoryLocked(
                f"{self.path} is in use by another contact-monitor (pid {holder} holds "
                f"{lock_path}); give each daemon its own --history-db"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the descriptor releases the flock
            self._lock_file = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(incidents)")}
            if "end_note" not in columns:  # a database written before end notes existed
                db.execute("ALTER TABLE incidents ADD COLUMN end_note TEXT")
            # Readers get a connection of their own: WAL lets them read while the writer writes.
            reader = sqlite3.connect(self.path, check_same_thread=False)
        except BaseException:
            db.close()
            raise
        self._db, self._reader = db, reader
        self._inode = os.stat(self.path).st_ino

    def _reopen_if_replaced(self) -> bool:
        """Create the database anew if its file was deleted or replaced (SQLite would
        otherwise write on into the unlinked inode and lose everything). Writer's thread."""
        try:
            if os.stat(self.path).st_ino == self._inode:
                return False
        except FileNotFoundError:
            pass
        # Close first: the last connection of a WAL database removes its -wal and -shm, so
        # the new file does not pick up the old file's log.
        with self._read_lock:
            for connection in (self._reader, self._db):
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._open()
        self.health.recreated += 1
        return True

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self.write_pending()
        self._reader.close()
        self._db.close()
        self._release_lock()

    def _read(self, sql: str, args: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        """Rows of a query; `HistoryUnavailable` (file and cause) if the database fails."""
        try:
            with self._read_lock:
                return self._reader.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(describe_db_error(self.path, exc)) from None

    # --- queued by the event loop -------------------------------------------------------

    def channel_down(
        self, org: str, channel: str, kind: str, at: float, reason: str | None, message: str | None
    ) -> None:
        self._pending.append(("down", (org, channel, kind, at, reason, message)))

    def channel_up(self, org: str, channel: str, at: float) -> None:
        self._pending.append(("up", (org, channel, at)))

    def channel_ended(self, org: str, channel: str, at: float, note: str) -> None:
        """End the channel's open incident (if any) at `at` for a reason other than a
        measured recovery, e.g. "channel removed" or "channel redefined"."""
        self._pending.append(("ended", (org, channel, at, note)))

    def monitor_stopped(self, at: float) -> None:
        """End every open incident at `at` with the note "monitor stopped": what follows a
        clean stop was not measured, so it must not grow as an ongoing outage. A restart
        that finds the channel still down opens a new incident."""
        self._pending.append(("stopped", (at,)))

    def source_scanned(self, org: str, source: str, findings: Iterable[Finding], at: float) -> None:
        self._pending.append(("scan", (org, source, tuple(findings), at)))

    def probe(self, org: str, channel: str, at: float, success: bool, duration: float) -> None:
        key = (org, channel, int(at // 3600 * 3600))
        row = self._rollup.setdefault(key, [0, 0, 0.0, 0.0])
        row[0 if success else 1] += 1
        row[2] += duration
        row[3] = max(row[3], duration)

    # --- written by one writer ----------------------------------------------------------

    async def flush(self) -> bool:
        """Write what is queued, in a worker thread; flushes happen one after another, in
        order, so an incident's end is never written before its start. Never raises: on
        failure the batch goes back to the head of the queue (bounded, oldest dropped) and
        `health` says why; returns whether the write succeeded."""
        async with self._flush_order:
            batch = self._take()
            try:
                await asyncio.to_thread(self._write_checked, *batch)
            except (sqlite3.Error, OSError) as exc:
                self._requeue(*batch)
                self.health.failing = True
                self.health.write_errors += 1
                self.health.error = describe_db_error(self.path, exc)
                return False
            self.health.failing = False
            self.health.pending = len(self._pending)
            return True

    def write_pending(self) -> None:
        self._write_checked(*self._take())

    def _write_checked(self, pending: list[_Op], rollup: dict[_HourKey, list[float]]) -> None:
        with self._lock:
            self._reopen_if_replaced()
        self._write(pending, rollup)

    def _take(self) -> tuple[list[_Op], dict[_HourKey, list[float]]]:
        pending, self._pending = self._pending, []
        rollup, self._rollup = self._rollup, {}
        return pending, rollup

    def _requeue(self, pending: list[_Op], rollup: dict[_HourKey, list[float]]) -> None:
        """Put a failed batch back before what was queued since, keeping the newest
        `MAX_PENDING_WRITES` writes."""
        merged = pending + self._pending
        excess = len(merged) - MAX_PENDING_WRITES
        if excess > 0:
            self.health.dropped += excess
            merged = merged[excess:]
        self._pending = merged
        for key, row in rollup.items():
            mine = self._rollup.setdefault(key, [0, 0, 0.0, 0.0])
            mine[0] += row[0]
            mine[1] += row[1]
            mine[2] += row[2]
            mine[3] = max(mine[3], row[3])
        self.health.pending = len(self._pending)

    def _write(
        self,
        pending: list[_Op],
        rollup: dict[_HourKey, list[float]],
    ) -> None:
        if not pending and not rollup:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for op, args in pending:
                    getattr(self, f"_write_{op}")(*args)
                self._db.executemany(
                    "INSERT INTO rollup VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (org, channel, hour) DO UPDATE SET ok = ok + excluded.ok, "
                    "failed = failed + excluded.failed, "
                    "latency_sum = latency_sum + excluded.latency_sum, "
                    "latency_max = max(latency_max, excluded.latency_max)",
                    [(*key, *row) for key, row in rollup.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL does): the real cause is
                # the error in hand, not "no transaction is active".
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def _write_down(
        self, org: str, channel: str, kind: str, at: float, reason: str | None, message: str | None
    ) -> None:
        open_one = self._db.execute(
            "SELECT 1 FROM incidents WHERE org = ? AND channel = ? AND ended_at IS NULL",
            (org, channel),
        ).fetchone()
        if not open_one:
            self._db.execute(
                "INSERT INTO incidents (org, channel, kind, started_at, reason, message) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (org, channel, kind, at, reason, message),
            )

    def _write_up(self, org: str, channel: str, at: float) -> None:
        self._db.execute(
            "UPDATE incidents SET ended_at = ? WHERE org = ? AND channel = ? AND ended_at IS NULL",
            (at, org, channel),
        )

    def _write_ended(self, org: str, channel: str, at: float, note: str) -> None:
        self._db.execute(
            "UPDATE incidents SET ended_at = ?, end_note = ? "
            "WHERE org = ? AND channel = ? AND ended_at IS NULL",
            (at, note, org, channel),
        )

    def _write_stopped(self, at: float) -> None:
        self._db.execute(
            "UPDATE incidents SET ended_at = ?, end_note = 'monitor stopped' "
            "WHERE ended_at IS NULL",
            (at,),
        )

    def _write_scan(self, org: str, source: str, findings: tuple[Finding, ...], at: float) -> None:
        current = {_finding_key(f): f for f in findings}
        open_rows = self._db.execute(
            "SELECT id, type, channel, contact FROM findings "
            "WHERE org = ? AND source = ? AND cleared_at IS NULL",
            (org, source),
        ).fetchall()
        still_open = set()
        for row_id, kind, channel, contact in open_rows:
            if (kind, channel, contact) in current:
                still_open.add((kind, channel, contact))
            else:
                self._db.execute("UPDATE findings SET cleared_at = ? WHERE id = ?", (at, row_id))
        for key, finding in current.items():
            if key not in still_open:
                self._db.execute(
                    "INSERT INTO findings (org, source, type, channel, contact, evidence, "
                    "raised_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (org, source, finding.type, key[1], key[2], finding.evidence, at),
                )

    def purge(self, now: float | None = None) -> int:
        """Delete what is older than the retention; returns the rows removed."""
        cutoff = (now or time.time()) - self.retention_seconds
        with self._lock:
            self._reopen_if_replaced()
            removed = sum(
                self._db.execute(sql, (cutoff,)).rowcount
                for sql in (
                    "DELETE FROM rollup WHERE hour < ?",
                    "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?",
                    "DELETE FROM findings WHERE cleared_at IS NOT NULL AND cleared_at < ?",
                )
            )
        return removed

    # --- reading ------------------------------------------------------------------------

    def uptime(self, org: str, channel: str, since: float) -> float | None:
        """Share of successful probes since `since` (hour granularity); None without probes."""
        ((ok, failed),) = self._read(
            "SELECT coalesce(sum(ok), 0), coalesce(sum(failed), 0) FROM rollup "
            "WHERE org = ? AND channel = ? AND hour >= ?",
            (org, channel, int(since // 3600 * 3600)),
        )
        return ok / (ok + failed) if ok + failed else None

    def uptime_all(self, since: float) -> dict[tuple[str, str], float]:
        """`uptime` of every channel with probes since `since`, in one query."""
        rows = self._read(
            "SELECT org, channel, sum(ok), sum(failed) FROM rollup WHERE hour >= ? "
            "GROUP BY org, channel",
            (int(since // 3600 * 3600),),
        )
        return {(o, c): ok / (ok + f) for o, c, ok, f in rows if ok + f}

    def daily_uptime(
        self, since: float, utc_offset: float
    ) -> dict[tuple[str, str], dict[int, float]]:
        """Per channel, per local day number (days since the epoch): the share of successes."""
        rows = self._read(
            "SELECT org, channel, CAST((hour + ?) / 86400 AS INTEGER) AS day, sum(ok), "
            "sum(failed) FROM rollup WHERE hour >= ? GROUP BY org, channel, day",
            (utc_offset, int(since // 3600 * 3600)),
        )
        out: dict[tuple[str, str], dict[int, float]] = {}
        for org, channel, day, ok, failed in rows:
            if ok + failed:
                out.setdefault((org, channel), {})[day] = ok / (ok + failed)
        return out

    def incidents(
        self,
        org: str | None = None,
        channel: str | None = None,
        since: float = 0.0,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first: incidents that were still open at or began after `since`."""
        sql = (
            "SELECT org, channel, kind, started_at, ended_at, reason, message, end_note "
            "FROM incidents "
            "WHERE (ended_at IS NULL OR ended_at >= ?)"
        )
        args: list[Any] = [since]
        if org is not None:
            sql, args = sql + " AND org = ?", [*args, org]
        if channel is not None:
            sql, args = sql + " AND channel = ?", [*args, channel]
        rows = self._read(sql + " ORDER BY started_at DESC LIMIT ?", (*args, limit))
        return [Incident(*row) for row in rows]

    def findings_log(self, since: float = 0.0, limit: int = 100) -> list[LoggedFinding]:
        rows = self._read(
            "SELECT org, source, type, channel, contact, evidence, raised_at, cleared_at "
            "FROM findings WHERE cleared_at IS NULL OR cleared_at >= ? "
            "ORDER BY raised_at DESC LIMIT ?",
            (since, limit),
        )
        return [
            LoggedFinding(Finding(t, o, s, c or None, k or None, e), r, cl)
            for o, s, t, c, k, e, r, cl in rows
        ]


def _finding_key(finding: Finding) -> tuple[str, str, str]:
    return finding.type, finding.channel or "", finding.contact or ""
