"""The daemon's one headless Chromium, for `render: browser` pages.

Playwright for Python drives Debian's `chromium` (`executable_path`; Playwright's own
browser builds are never downloaded). The browser starts at the first rendered check and
is shared: every check gets a fresh context (no cookies, cache or storage carried over), at
most `defaults.browser.concurrency` pages are open at once, and each check is bounded by its
timeout. The browser is replaced when it dies (a crash fails only the checks that were on
it) or when its processes grow past `defaults.browser.max_memory_mb` (then it is retired
once its pages are done; past twice the cap it is killed at once). Memory is the sum of the
processes' PSS (proportional set size): the pages Chromium's processes share count once,
where a sum of RSS would count the shared libraries in every process (about 2.5 times
too much).

A page whose own host is public may not make the browser fetch loopback, private or
link-local addresses, and no page but one served from link-local may make it fetch a
link-local address (cloud metadata); the same rule, `redirect_private`, applies to the HTTP
prober's redirects: such requests are aborted and listed in the result's
`blocked_requests`; a main document redirected there fails with `redirect_private`.

A failed check keeps a PNG screenshot of what the page showed (`ScreenshotStore`, newest
`defaults.browser.screenshots` kept) that the API and the status page link to.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import structlog

from monitor.config import BrowserConfig, Defaults
from monitor.model import ProbeFailure, ProbeResult

__all__ = [
    "CHROMIUM_ARGS",
    "BrowserPool",
    "Rendered",
    "ScreenshotStore",
    "screenshot_dir",
    "tree_memory_bytes",
]

log = structlog.get_logger("monitor.browser")

# As Chromium runs on this kind of machine: as root, without a GPU, no background chatter.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # A page that allocates without end crashes its own renderer, not the machine.
    "--js-flags=--max-old-space-size=256",
)
LAUNCH_TIMEOUT_SECONDS = 30.0  # not counted in a check's time: the daemon's own cost
NETWORK_IDLE_SECONDS = 3.0  # after `load`, the most a check waits for late requests
CLOSE_TIMEOUT_SECONDS = 5.0
SCREENSHOT_TIMEOUT_SECONDS = 5.0
WATCH_SECONDS = 1.0  # how often the browser's memory is read while it has pages
KILL_FACTOR = 2  # times `max_memory_mb` at which the browser is killed mid-check
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT_URL = "/api/v1/screenshots/"

# Chromium's net error names, as Playwright reports them, to the probers' reasons.
_NET_REASONS = {
    "ERR_NAME_NOT_RESOLVED": "dns_nxdomain",
    "ERR_NAME_RESOLUTION_FAILED": "dns_error",
    "ERR_CONNECTION_REFUSED": "connect_refused",
    "ERR_CONNECTION_RESET": "connect_reset",
    "ERR_CONNECTION_CLOSED": "connect_reset",
    "ERR_EMPTY_RESPONSE": "http_protocol",
    "ERR_CONNECTION_TIMED_OUT": "timeout",
    "ERR_TIMED_OUT": "timeout",
    "ERR_ADDRESS_UNREACHABLE": "connect_unreachable",
    "ERR_INTERNET_DISCONNECTED": "connect_unreachable",
    "ERR_CERT_AUTHORITY_INVALID": "tls_untrusted",
    "ERR_CERT_DATE_INVALID": "tls_expired",
    "ERR_CERT_COMMON_NAME_INVALID": "tls_hostname_mismatch",
    "ERR_SSL_PROTOCOL_ERROR": "tls_error",
    "ERR_TOO_MANY_REDIRECTS": "too_many_redirects",
    "ERR_UNSAFE_REDIRECT": "redirect_scheme",
    "ERR_INVALID_RESPONSE": "http_protocol",
    "ERR_INVALID_HTTP_RESPONSE": "http_protocol",
    "ERR_RESPONSE_HEADERS_TOO_BIG": "http_protocol",
    "ERR_UNSAFE_PORT": "unsafe_port",  # Chromium refuses ports such as 25 or 6000
    "ERR_BLOCKED_BY_CLIENT": "redirect_private",
}
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")


def _log(level: str, event: str, **fields: Any) -> None:
    """A structlog event, in the daemon only: unconfigured, structlog would print to stdout,
    where `check --format json` writes its answer. A failing log stream never fails a check."""
    if structlog.is_configured():
        with contextlib.suppress(Exception):
            getattr(log, level)(event, **fields)


def screenshot_dir(defaults: Defaults, base_dir: Path) -> Path:
    """Where failed checks' screenshots go: `defaults.browser.screenshot_dir` (relative to the
    registry's folder), else a `screenshots` folder beside the history file."""
    if defaults.browser.screenshot_dir:
        return base_dir / defaults.browser.screenshot_dir
    return (base_dir / defaults.history.path).parent / "screenshots"


class ScreenshotStore:
    """PNG files in one folder, the newest `keep` kept; names are opaque and safe to serve."""

    NAME = re.compile(r"^[0-9]{19}-[0-9a-f]{12}\.png$")

    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, png: bytes, url: str) -> str | None:
        """Store `png`, drop the oldest beyond `keep`; the file's name, or None if not kept."""
        if self.keep <= 0:
            return None
        name = f"{time.time_ns():019d}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.png"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / name).write_bytes(png)
            kept = sorted(p for p in self.directory.iterdir() if self.NAME.match(p.name))
            for old in kept[: max(0, len(kept) - self.keep)]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a full or read-only disk costs the evidence, not the check
            _log("warning", "screenshot_not_saved", error=str(exc), directory=str(self.directory))
            return None
        return name

    def path_of(self, name: str) -> Path | None:
        """The file for a name this store gave out, or None (unknown, pruned, or not a name)."""
        if not self.NAME.match(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None


@dataclass(frozen=True)
class Rendered:
    """A page as the browser shows it once loaded."""

    url: str  # the main document's final URL
    status: int  # the main document's HTTP status
    headers: dict[str, str]  # the main document's response headers (lower-case names)
    html: str  # the rendered DOM, serialised (page.content())
    text: str  # what a visitor reads: document.body.innerText
    redirects: int  # redirects the main document followed
    elapsed: float  # seconds from the start of navigation to the rendered document
    cert_not_after: float | None = None  # epoch seconds, HTTPS only
    tls_version: str | None = None
    blocked: tuple[str, ...] = ()  # requests refused: private addresses from a public page


Judge = Callable[[Rendered], ProbeResult]


@dataclass(frozen=True)
class _CheckOptions:
    budget: float  # seconds for the whole check
    headers: dict[str, str]
    proxy: str | None
    guard: bool  # refuse private addresses from a public page
    max_bytes: int | None  # of the rendered document (UTF-16 code units, as the DOM counts)


@dataclass
class _Trace:
    """What happened to one page while it loaded."""

    blocked: list[str] = field(default_factory=list)
    main_blocked: str | None = None
    crashed: bool = False
    hung: bool = False  # the page's renderer did not answer (a script that never yields)


@dataclass
class _Opened:
    """The context and page one check opened, for closing and photographing."""

    context: Any = None
    page: Any = None


@dataclass(eq=False)
class _Instance:
    """One launched browser, its process and how many pages it has open."""

    browser: Any  # playwright.async_api.Browser
    process: psutil.Process | None
    pages: int = 0
    dead: bool = False
    retired: bool = False
    unresponsive: bool = False  # missed a check's deadline outright: killed, not closed
    killed_for: str | None = None

    def memory_bytes(self) -> int | None:
        """PSS of the browser and all its children, summed, in bytes (RSS where the system
        has no PSS). Reads /proc/PID/smaps_rollup: some milliseconds a process, so call it
        in a thread."""
        if self.process is None:
            return None
        return tree_memory_bytes(self.process)


class _Slots:
    """At most `limit` holders at once; the limit may change while some are held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.held < self.limit)
            self.held += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self.held -= 1
            self._changed.notify_all()

    def resize(self, limit: int) -> None:
        # Waiters look again at every release; one is due, since they wait only while
        # `held` reaches the old limit.
        self.limit = limit


class BrowserPool:
    """The shared Chromium: `check()` renders a page and judges it; `close()` ends it all.

    Nothing starts until the first check. Create it inside the event loop it will run on.
    """

    def __init__(
        self, config: BrowserConfig, screenshots: Path, extra_args: Sequence[str] = ()
    ) -> None:
        self.config = config
        self.screenshots = ScreenshotStore(screenshots, config.screenshots)
        self.extra_args = tuple(extra_args)
        self.launches = 0  # browsers started so far (a restart counts)
        self.last_memory_bytes: int | None = None  # the browser's latest reading (summed PSS)
        self._slots: _Slots | None = None
        self._playwright: Any = None
        self._current: _Instance | None = None
        self._launching = asyncio.Lock()
        self._watcher: asyncio.Task | None = None
        self._closed = False

    def configure(self, config: BrowserConfig, screenshots: Path) -> None:
        """Apply a reloaded registry's settings; the running browser stays."""
        self.config = config
        self.screenshots.directory = screenshots
        self.screenshots.keep = config.screenshots
        if self._slots is not None:
            self._slots.resize(config.concurrency)

    # --- one check ----------------------------------------------------------------------

    async def check(
        self,
        url: str,
        judge: Judge,
        *,
        budget: float,
        headers: dict[str, str] | None = None,
        proxy: str | None = None,
        guard: bool = True,
        max_bytes: int | None = None,
    ) -> ProbeResult:
        """Load `url` in a fresh context, wait for `load` (and network idle, briefly), and
        return `judge(rendered)`, all within `budget` seconds. Never raises. A failure
        carries a screenshot when the page got that far; `duration_seconds` counts the
        check only, not waiting for a free page or for the browser to start. `guard`: refuse
        private addresses (see the module's doc). `max_bytes`: a larger rendered document
        fails with `too_large` before it is copied out of the browser."""
        if self._slots is None:
            self._slots = _Slots(self.config.concurrency)
        async with self._slots:
            try:
                instance = await self._ready()
            except Exception as exc:  # noqa: BLE001 - the check fails with the reason
                return ProbeResult(False, "browser_unavailable", f"Chromium did not start: {exc}")
            options = _CheckOptions(budget, headers or {}, proxy, guard, max_bytes)
            return await self._check_on(instance, url, judge, options)

    async def _check_on(
        self, instance: _Instance, url: str, judge: Judge, options: _CheckOptions
    ) -> ProbeResult:
        started = time.perf_counter()
        trace = _Trace()
        opened = _Opened()
        instance.pages += 1
        try:
            result = await self._render_and_judge(instance, url, judge, options, trace, opened)
            duration = round(time.perf_counter() - started, 6)
            details = dict(result.details)
            if trace.blocked:
                details["blocked_requests"] = trace.blocked[:20]
            page = opened.page
            if not result.success and page is not None and not instance.dead and not trace.hung:
                shot = await self._screenshot(page, url)
                if shot:
                    details["screenshot"] = SCREENSHOT_URL + shot
            return ProbeResult(
                result.success,
                result.reason,
                result.message,
                duration,
                details,
                contacts=result.contacts,
            )
        finally:
            if opened.context is not None and not instance.unresponsive:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                        await asyncio.shield(opened.context.close())
            instance.pages -= 1
            await self._after_check(instance)

    async def _render_and_judge(
        self,
        instance: _Instance,
        url: str,
        judge: Judge,
        options: _CheckOptions,
        trace: _Trace,
        opened: _Opened,
    ) -> ProbeResult:
        started = time.perf_counter()
        try:
            # Playwright's own timeouts end a slow page; this one ends a hung browser.
            async with asyncio.timeout(options.budget + 2.0):
                opened.context = await instance.browser.new_context(
                    **_context_options(options.headers, options.proxy)
                )
                page = opened.page = await opened.context.new_page()
                page.on("crash", lambda _page: setattr(trace, "crashed", True))
                await _install_guard(page, url, trace, options.guard)
                deadline = started + options.budget
                rendered = await _load(page, url, deadline, trace, options.max_bytes)
            return judge(rendered)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a result
            await self._settle(exc, instance, trace, opened.page, options.budget)
            return self._failure(exc, instance, trace, options.budget)

    async def _settle(
        self, exc: Exception, instance: _Instance, trace: _Trace, page: Any, budget: float
    ) -> None:
        """Find out what failed: the browser (dead, or frozen), the page's renderer, or the
        page itself. Playwright may report the error before the browser's disconnection."""
        if type(exc) is TimeoutError and not instance.retired:
            # Our own deadline, not Playwright's: the browser did not answer in time at all.
            # Its pages finish; the next check gets a new browser.
            _log("warning", "browser_unresponsive", budget=budget)
            instance.retired = instance.unresponsive = True
        if "has been closed" in str(exc) and not instance.dead and instance.process is not None:
            instance.dead = not _alive(instance.process)
        if page is not None and not instance.dead and not trace.crashed:
            trace.crashed, trace.hung = await _page_state(page)

    def _failure(
        self, exc: BaseException, instance: _Instance, trace: _Trace, timeout: float
    ) -> ProbeResult:
        if isinstance(exc, ProbeFailure):
            return ProbeResult(False, exc.reason, exc.message, details=exc.details)
        if instance.dead:
            if instance.killed_for:
                return ProbeResult(False, "browser_memory", instance.killed_for)
            return ProbeResult(False, "browser_crashed", "the browser died during the check")
        if trace.crashed or "crashed" in str(exc):  # the event may come after the error
            return ProbeResult(False, "page_crashed", "the page's renderer crashed")
        if trace.main_blocked:
            return ProbeResult(
                False,
                "redirect_private",
                f"redirect into a private or local address: {trace.main_blocked[:200]}",
            )
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
            return ProbeResult(False, "timeout", f"the page did not load within {timeout:g}s")
        found = _NET_ERROR.search(message)
        if found:
            reason = _NET_REASONS.get(found.group(1), "browser_error")
            return ProbeResult(False, reason, f"browser: {found.group(1)}")
        return ProbeResult(False, "browser_error", message[:300])

    async def _screenshot(self, page: Any, url: str) -> str | None:
        if self.screenshots.keep <= 0:
            return None
        try:
            async with asyncio.timeout(SCREENSHOT_TIMEOUT_SECONDS):
                png = await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_SECONDS * 1000)
        except Exception:  # noqa: BLE001 - a page too broken to photograph has no evidence
            return None
        return await asyncio.to_thread(self.screenshots.save, png, url)

    # --- the browser's life -------------------------------------------------------------

    async def _ready(self) -> _Instance:
        async with self._launching:
            if self._closed:
                raise RuntimeError("the browser pool is closed")
            current = self._current
            if current is None or current.dead or current.retired:
                async with asyncio.timeout(LAUNCH_TIMEOUT_SECONDS):
                    current = self._current = await self._launch()
            return current

    async def _launch(self) -> _Instance:
        from playwright.async_api import async_playwright  # heavy: only when first needed

        if self._playwright is None:
            self._playwright = await async_playwright().start()
        marker = f"--contact-monitor-browser={uuid.uuid4().hex}"
        browser = await self._playwright.chromium.launch(
            executable_path=chromium_path(),
            args=[*CHROMIUM_ARGS, marker, *self.extra_args],
            headless=True,
            timeout=LAUNCH_TIMEOUT_SECONDS * 1000,
            handle_sigint=False,  # the daemon owns its signals and closes the browser itself
            handle_sigterm=False,
            handle_sighup=False,
        )
        instance = _Instance(browser, _find_process(marker))
        browser.on("disconnected", lambda _browser: self._lost(instance))
        self.launches += 1
        _log(
            "info",
            "browser_started",
            version=browser.version,
            pid=instance.process.pid if instance.process else None,
            launches=self.launches,
        )
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_memory())
        return instance

    def _lost(self, instance: _Instance) -> None:
        unexpected = not instance.dead and not instance.retired and not self._closed
        instance.dead = True
        if self._current is instance:
            self._current = None
        if unexpected:
            _log("warning", "browser_died", pages=instance.pages, killed_for=instance.killed_for)

    async def _after_check(self, instance: _Instance) -> None:
        used = await asyncio.to_thread(instance.memory_bytes)
        self.last_memory_bytes = used
        limit = self.config.max_memory_mb
        if used is not None and used > limit * 2**20 and not instance.retired:
            _log("info", "browser_retired", memory_mb=used // 2**20, limit_mb=limit)
            instance.retired = True
        if (instance.retired or instance is not self._current) and instance.pages == 0:
            await _close_browser(instance)

    async def _watch_memory(self) -> None:
        """Kill a browser whose tree passes twice the cap while pages are open: a hostile page
        must not take the machine's memory. Its checks fail with `browser_memory`."""
        while not self._closed:
            await asyncio.sleep(WATCH_SECONDS)
            instance = self._current
            if instance is None or instance.pages == 0:
                continue
            used = await asyncio.to_thread(instance.memory_bytes)
            self.last_memory_bytes = used
            if used is not None and used > KILL_FACTOR * self.config.max_memory_mb * 2**20:
                instance.killed_for = (
                    f"browser used {used // 2**20} MB, {KILL_FACTOR} times the limit"
                )
                _log("warning", "browser_killed", memory_mb=used // 2**20)
                self.kill(instance)

    def kill(self, instance: _Instance | None = None) -> None:
        """SIGKILL the browser (the current one by default): what a crash looks like."""
        instance = instance or self._current
        if instance is not None and instance.process is not None:
            with contextlib.suppress(psutil.Error):
                instance.process.kill()

    @property
    def running(self) -> bool:
        """Whether a browser is up now (none before the first rendered check)."""
        return self._current is not None and not self._current.dead

    @property
    def pages_open(self) -> int:
        return self._current.pages if self._current else 0

    def browser_process(self) -> psutil.Process | None:
        """The running browser's main process, if any (for the benchmark and tests)."""
        return self._current.process if self._current else None

    async def close(self) -> None:
        """Close the browser and Playwright's driver; the pool cannot be used afterwards."""
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._current is not None:
            await _close_browser(self._current)
            self._current = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None


def chromium_path() -> str:
    """Debian's chromium (the package installs /usr/bin/chromium)."""
    return shutil.which("chromium") or "/usr/bin/chromium"


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a killed browser stays one until the driver reaps it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree_memory_bytes(process: psutil.Process) -> int:
    """Summed PSS (else RSS) of `process` and its descendants, in bytes; 0 once it is gone."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for proc in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
    return total


def _find_process(marker: str) -> psutil.Process | None:
    """The browser's main process: the one of our descendants launched with `marker`."""
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmdline = proc.cmdline()
                if marker in cmdline and not any(a.startswith("--type=") for a in cmdline):
                    return proc
    return None


async def _close_browser(instance: _Instance) -> None:
    instance.retired = True
    if instance.unresponsive and instance.process is not None:
        with contextlib.suppress(psutil.Error):
            instance.process.kill()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await instance.browser.close()
    except Exception:  # noqa: BLE001 - a browser that will not close is killed
        if instance.process is not None:
            with contextlib.suppress(psutil.Error):
                instance.process.kill()


async def _page_state(page: Any) -> tuple[bool, bool]:
    """(crashed, hung) for a page whose check failed. A renderer killed before the
    navigation committed shows as an aborted navigation (ERR_ABORTED), not as a crash
    event; a renderer busy in a script that never yields cannot be photographed."""
    try:
        async with asyncio.timeout(1.0):
            await page.evaluate("1")
    except TimeoutError:
        return False, True
    except Exception as exc:  # noqa: BLE001 - only the kind of failure matters
        return "crashed" in str(exc), False
    return False, False


def _context_options(headers: dict[str, str], proxy: str | None) -> dict[str, Any]:
    extra = {k: v for k, v in headers.items() if k.lower() != "user-agent"}
    agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
    options: dict[str, Any] = {
        "viewport": VIEWPORT,
        "service_workers": "block",  # a worker's requests would pass by the guard
        "extra_http_headers": extra,
        "accept_downloads": False,
    }
    if agent:
        options["user_agent"] = agent
    if proxy:
        options["proxy"] = {"server": proxy}
    return options


async def _install_guard(page: Any, url: str, trace: _Trace, refuse_private: bool) -> None:
    """Abort the page's requests that would turn the browser against our own network: to
    link-local addresses (cloud metadata, 169.254.169.254) unless the page's own host is
    link-local, and, with `refuse_private` and a page whose own host is public, to loopback,
    private and reserved ones too.

    Chromium's Fetch domain (CDP) pauses every request, redirect hops included (Playwright's
    `route` does not see a redirect's next hop); WebSockets go through `route_web_socket`.
    """
    from monitor.probers.http import is_internal_host, is_link_local_host

    page_host = urlsplit(url).hostname
    if await is_link_local_host(page_host):
        return  # a page served from link-local: its neighbours are fair game
    inside = not refuse_private or await is_internal_host(page_host)
    judge = is_link_local_host if inside else is_internal_host
    verdicts: dict[str, bool] = {}

    async def internal(target: str) -> bool:
        host = urlsplit(target).hostname or ""
        if host not in verdicts:
            verdicts[host] = await judge(host)
        return verdicts[host]

    session = await page.context.new_cdp_session(page)
    pending: set[asyncio.Task] = set()

    async def decide(event: dict[str, Any]) -> None:
        request_id, target = event["requestId"], event["request"]["url"]
        with contextlib.suppress(Exception):  # the page may close while we decide
            if target.startswith(("http:", "https:")) and await internal(target):
                trace.blocked.append(target[:300])
                if event.get("resourceType") == "Document":
                    trace.main_blocked = target
                await session.send(
                    "Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"}
                )
            else:
                await session.send("Fetch.continueRequest", {"requestId": request_id})

    def on_paused(event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(decide(event))
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def on_websocket(ws: Any) -> None:
        if await internal(ws.url):
            trace.blocked.append(ws.url[:300])
            await ws.close(code=1008, reason="blocked by contact-monitor")
        else:
            ws.connect_to_server()

    session.on("Fetch.requestPaused", on_paused)
    await session.send(
        "Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}
    )
    await page.route_web_socket(re.compile(".*"), on_websocket)


async def _load(
    page: Any, url: str, deadline: float, trace: _Trace, max_bytes: int | None
) -> Rendered:
    started = time.perf_counter()
    budget = max(0.1, deadline - started)
    response = await page.goto(url, wait_until="load", timeout=budget * 1000)
    if response is None:
        raise ProbeFailure("http_protocol", "the browser got no document for the URL")
    idle = min(NETWORK_IDLE_SECONDS, deadline - time.perf_counter())
    if idle > 0.05:
        with contextlib.suppress(Exception):  # a page that keeps polling is still rendered
            await page.wait_for_load_state("networkidle", timeout=idle * 1000)
    if max_bytes is not None:
        size = await page.evaluate("() => document.documentElement.outerHTML.length")
        if size > max_bytes:
            raise ProbeFailure("too_large", f"rendered document larger than {max_bytes} bytes")
    html = await page.content()
    text = await page.evaluate("() => document.body ? document.body.innerText : ''")
    elapsed = time.perf_counter() - started
    redirects, request = 0, response.request
    while request.redirected_from is not None:
        redirects, request = redirects + 1, request.redirected_from
    security = await response.security_details() or {}
    return Rendered(
        url=page.url,
        status=response.status,
        headers={k.lower(): v for k, v in response.headers.items()},
        html=html,
        text=text or "",
        redirects=redirects,
        elapsed=elapsed,
        cert_not_after=security.get("validTo"),
        tls_version=security.get("protocol"),
        blocked=tuple(trace.blocked),
    )
