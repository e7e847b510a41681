"""`render: browser`: pages judged as Debian's headless Chromium shows them.

Real Chromium (Playwright, `executable_path`) against real pages on loopback. One browser is
shared by the whole module, as the daemon shares one; each check gets a fresh context.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from servers import HttpServer, RawTcpServer, page, redirect

from monitor import browser as browser_module
from monitor.browser import BrowserPool
from monitor.config import Defaults, Registry, WebChannel
from monitor.drift import find_drift
from monitor.model import ProbeResult
from monitor.probers import ProbeContext, make_probe_context, probe_channel, probe_source
from monitor.probers import http as http_prober

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEPRECATED = "8 (800) 234-70-00"
DEPRECATED_E164 = "+78002347000"

SCRIPT_INSERTED = f"""<!doctype html><html><head><title>Contacts</title></head><body>
<h1>Support</h1><div id="contacts"></div>
<script>
  document.getElementById('contacts').innerHTML =
    'Call us: <a href="tel:+78002347000">{DEPRECATED}</a>';
</script></body></html>"""

STATE_BLOB = f"""<!doctype html><html><head><title>Contacts</title>
<script id="__STATE__" type="application/json">
  {{"support": {{"phone": "{DEPRECATED}", "email": "care@acme.test"}}}}
</script></head><body><div id="app">Loading…</div>
<script>
  const state = JSON.parse(document.getElementById('__STATE__').textContent);
  document.getElementById('app').innerHTML =
    '<p>Phone: ' + state.support.phone + '</p><p>E-mail: ' + state.support.email + '</p>';
</script></body></html>"""

FETCHED_AFTER_LOAD = """<!doctype html><html><body><div id="app">Loading…</div>
<script>
  window.addEventListener('load', () => setTimeout(async () => {
    const answer = await fetch('/api/contacts');
    document.getElementById('app').textContent = 'Hotline ' + (await answer.json()).phone;
  }, 200));
</script></body></html>"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    pool = BrowserPool(Defaults().browser, tmp_path_factory.mktemp("shots"))
    yield pool
    await pool.close()


@pytest.fixture
def browser_ctx(browser: BrowserPool, tmp_path: Path) -> ProbeContext:
    defaults = Defaults.model_validate(
        {"timeout": "5s", "browser": {"screenshot_dir": str(tmp_path / "shots")}}
    )
    return make_probe_context(defaults, tmp_path, browser)


@pytest.fixture
def site() -> Iterator[HttpServer]:
    with HttpServer() as server:
        yield server


def registry_for(source: dict[str, Any]) -> Registry:
    return Registry.model_validate(
        {
            "version": 1,
            "organizations": [
                {
                    "id": "acme",
                    "sources": [source],
                    "channels": [
                        {
                            "id": "old-hotline",
                            "kind": "phone",
                            "phone": DEPRECATED,
                            "status": "deprecated",
                        }
                    ],
                }
            ],
        }
    )


async def scan_and_drift(url: str, ctx: ProbeContext, **source: Any) -> list[Any]:
    registry = registry_for({"id": "contacts", "url": url, **source})
    result = await probe_source(registry.organizations[0].sources[0], ctx)
    assert result.success, result
    return find_drift(registry, {("acme", "contacts"): result})


def report(rows: list[dict[str, Any]], case: str, expected: set[str], result: ProbeResult) -> None:
    """A row of build/hardening.md (area "Browser")."""
    rows.append(
        {
            "area": "Browser",
            "case": case,
            "expected": " or ".join(sorted(expected)),
            "observed": result.reason or "success",
            "seconds": f"{result.duration_seconds:.2f}",
        }
    )


def deprecated_findings(findings: list[Any]) -> list[Any]:
    return [f for f in findings if f.type == "deprecated_published"]


# --- contacts that only rendering shows ---------------------------------------------------


@pytest.mark.parametrize(
    "html", [SCRIPT_INSERTED, STATE_BLOB], ids=["inserted-by-script", "from-json-state-blob"]
)
async def test_drift_flags_deprecated_number_when_only_rendering_shows_it(
    html: str, site: HttpServer, browser_ctx: ProbeContext
):
    """A deprecated number a script puts on the page is found once the page is rendered."""
    site.routes["/contacts"] = page(html)
    findings = await scan_and_drift(site.url("/contacts"), browser_ctx, render="browser")
    flagged = deprecated_findings(findings)
    assert [(f.channel, f.contact) for f in flagged] == [("old-hotline", DEPRECATED_E164)]
    assert "234-70-00" in flagged[0].evidence


@pytest.mark.parametrize(
    "html", [SCRIPT_INSERTED, STATE_BLOB], ids=["inserted-by-script", "from-json-state-blob"]
)
async def test_static_scan_misses_the_number_when_source_is_not_rendered(
    html: str, site: HttpServer, browser_ctx: ProbeContext
):
    """The same page without `render: browser` shows no contact: the reason to turn it on."""
    site.routes["/contacts"] = page(html)
    findings = await scan_and_drift(site.url("/contacts"), browser_ctx)
    assert deprecated_findings(findings) == []
    assert browser_ctx.browser is not None


async def test_rendered_scan_waits_for_contacts_fetched_after_load(
    site: HttpServer, browser_ctx: ProbeContext
):
    """A page that fetches its contacts after `load` is read once the network is idle."""
    site.routes["/contacts"] = page(FETCHED_AFTER_LOAD)
    site.routes["/api/contacts"] = page(
        '{"phone": "8 (800) 234-70-00"}', content_type="application/json"
    )
    findings = await scan_and_drift(site.url("/contacts"), browser_ctx, render="browser")
    assert len(deprecated_findings(findings)) == 1


# --- channels ----------------------------------------------------------------------------


def rendered_channel(url: str, **expect: Any) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "help", "kind": "web", "url": url, "render": "browser", "expect": expect}
    )


async def test_rendered_channel_matches_body_regex_on_rendered_text(
    site: HttpServer, browser_ctx: ProbeContext
):
    """`body_regex` runs on what the page shows, not on the HTML a GET returns."""
    site.routes["/help"] = page(SCRIPT_INSERTED)
    channel = rendered_channel(site.url("/help"), body_regex=r"Call us: 8 \(800\)")
    result = await probe_channel(channel, browser_ctx)
    assert result.success, result
    assert result.details["rendered"] is True
    assert result.details["status_code"] == 200
    static = channel.model_copy(update={"render": None})
    assert (await probe_channel(static, browser_ctx)).reason == "body_mismatch"


async def test_rendered_channel_status_comes_from_main_document(
    site: HttpServer, browser_ctx: ProbeContext
):
    """A 503 main document fails with `http_status`, however the page renders."""
    site.routes["/down"] = page("<p>Maintenance</p>", status=503)
    result = await probe_channel(rendered_channel(site.url("/down")), browser_ctx)
    assert (result.reason, result.details["status_code"]) == ("http_status", 503)


async def test_failed_rendered_check_keeps_a_screenshot(
    site: HttpServer, browser_ctx: ProbeContext, tmp_path: Path
):
    """A failed check links a PNG of what the page showed, kept in the screenshot folder."""
    site.routes["/help"] = page(SCRIPT_INSERTED)
    channel = rendered_channel(site.url("/help"), body_regex="Чат поддержки")
    result = await probe_channel(channel, browser_ctx)
    assert result.reason == "body_mismatch"
    link = result.details["screenshot"]
    assert link.startswith("/api/v1/screenshots/")
    stored = browser_ctx.browser.screenshots.path_of(link.rsplit("/", 1)[1])
    assert stored is not None
    assert stored.parent == tmp_path / "shots"
    assert stored.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_screenshots_are_bounded_when_checks_keep_failing(
    site: HttpServer, browser: BrowserPool, tmp_path: Path
):
    """Only the newest `defaults.browser.screenshots` files are kept."""
    defaults = Defaults.model_validate(
        {"timeout": "5s", "browser": {"screenshots": 2, "screenshot_dir": "few"}}
    )
    ctx = make_probe_context(defaults, tmp_path, browser)
    site.routes["/gone"] = page("<p>gone</p>", status=404)
    for _ in range(4):
        assert (await probe_channel(rendered_channel(site.url("/gone")), ctx)).reason == (
            "http_status"
        )
    assert len(list((tmp_path / "few").glob("*.png"))) == 2


# --- pages that never finish, pages that reach inward -------------------------------------


def tarpit(server: RawTcpServer, conn: socket.socket, asked: threading.Event | None = None) -> None:
    conn.recv(65536)
    if asked is not None:
        asked.set()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hel")
    server.hold(conn, 30)


@pytest.mark.parametrize("where", ["main-document", "image"])
async def test_page_that_never_finishes_loading_ends_at_the_timeout(
    where: str, site: HttpServer, browser_ctx: ProbeContext
):
    """A document or a resource that never arrives ends the check at its timeout."""
    with RawTcpServer(lambda conn: tarpit(stuck, conn)) as stuck:
        url = f"http://127.0.0.1:{stuck.port}/"
        if where == "image":  # same origin: a cross-origin one would be blocked (ORB) at once
            site.routes["/page"] = page('<p>Hi</p><img src="/pixel.png">')
            site.routes["/pixel.png"] = _slow_page(10)
            url = site.url("/page")
        channel = rendered_channel(url).model_copy(update={"timeout": 2.0})
        started = time.monotonic()
        result = await probe_channel(channel, browser_ctx)
    assert result.reason == "timeout", result
    assert 1.5 < time.monotonic() - started < 10


@pytest.fixture
def public_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor is told 127.0.0.2 is public; every other address is judged as usual."""
    judge = http_prober.is_internal_host

    async def public(host: str | None, *context: Any) -> bool:
        return False if host == "127.0.0.2" else await judge(host, *context)

    monkeypatch.setattr(http_prober, "is_internal_host", public)


@pytest.fixture
def link_local_127_0_0_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor is told 127.0.0.3 is link-local (as 169.254.169.254 is), so the rule is
    tried without a packet leaving loopback."""
    judge = http_prober.is_link_local_host

    async def link_local(host: str | None, *context: Any) -> bool:
        return True if host == "127.0.0.3" else await judge(host, *context)

    monkeypatch.setattr(http_prober, "is_link_local_host", link_local)


@pytest.mark.usefixtures("link_local_127_0_0_3")
async def test_local_page_requests_to_link_local_are_blocked(
    site: HttpServer, browser_ctx: ProbeContext
):
    """A page on loopback may load its neighbours, but neither its scripts nor a redirect
    of its main document reach a link-local (cloud metadata) address."""
    with HttpServer({"/latest/meta-data/": page("secret")}, bind="127.0.0.3") as metadata:
        inward = metadata.url("/latest/meta-data/", "127.0.0.3")
        site.routes["/fetching"] = page(f"<p>Local page</p><script>fetch('{inward}')</script>")
        site.routes["/moved"] = redirect(inward)
        fetching = await probe_channel(rendered_channel(site.url("/fetching")), browser_ctx)
        moved = await probe_channel(rendered_channel(site.url("/moved")), browser_ctx)
    assert fetching.success, fetching
    assert fetching.details["blocked_requests"] == [inward]
    assert moved.reason == "redirect_private", moved
    assert metadata.requests == []


@pytest.mark.usefixtures("public_127_0_0_2")
async def test_public_page_requests_to_loopback_are_blocked(
    site: HttpServer, browser_ctx: ProbeContext
):
    """Scripts, images, fetches and WebSockets of a public page never reach loopback."""
    inward = site.url("/secret")
    html = f"""<p>Public page</p><img src="{inward}.png"><script src="{inward}.js"></script>
      <script>fetch('{inward}').catch(() => null);
        try {{ new WebSocket('ws://127.0.0.1:{site.port}/socket'); }} catch (e) {{}}</script>"""
    with HttpServer({"/": page(html)}, bind="127.0.0.2") as public:
        result = await probe_channel(rendered_channel(public.url("/", "127.0.0.2")), browser_ctx)
    assert result.success, result
    assert site.requests == []
    blocked = result.details["blocked_requests"]
    assert {u.split(str(site.port))[1] for u in blocked} >= {"/secret", "/secret.png"}


@pytest.mark.usefixtures("public_127_0_0_2")
async def test_public_page_redirecting_to_loopback_fails_redirect_private(
    site: HttpServer, browser_ctx: ProbeContext
):
    """The main document redirected inward is refused, as the HTTP prober refuses it."""
    site.routes["/admin"] = page("admin")
    with HttpServer({"/": redirect(site.url("/admin"))}, bind="127.0.0.2") as public:
        result = await probe_channel(rendered_channel(public.url("/", "127.0.0.2")), browser_ctx)
    assert result.reason == "redirect_private", result
    assert site.requests == []


async def test_loopback_target_may_load_loopback_resources(
    site: HttpServer, browser_ctx: ProbeContext
):
    """A target that itself lives on loopback is not guarded against its neighbours."""
    site.routes["/"] = page(f'<p>Local</p><img src="{site.url("/pixel.png")}">')
    result = await probe_channel(rendered_channel(site.url("/")), browser_ctx)
    assert result.success, result
    assert "/pixel.png" in site.requests


# --- the browser's own faults ---------------------------------------------------------------


async def _crash_during_check(browser: BrowserPool, ctx: ProbeContext, crash: Any) -> ProbeResult:
    asked = threading.Event()
    with RawTcpServer(lambda conn: tarpit(stuck, conn, asked)) as stuck:
        channel = rendered_channel(f"http://127.0.0.1:{stuck.port}/")
        check = asyncio.create_task(probe_channel(channel.model_copy(update={"timeout": 8.0}), ctx))
        for _ in range(100):  # until the page is loading
            if asked.is_set():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # and its document is committed to a renderer
        crash(browser)
        return await check


def _kids(process: Any) -> list[Any]:
    import psutil

    found = []
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            child.cmdline()
            found.append(child)
        except psutil.Error:
            pass
    return found


def _kill_browser(browser: BrowserPool) -> None:
    browser.kill()


def _kill_renderers(browser: BrowserPool) -> None:
    process = browser.browser_process()
    assert process is not None
    for child in _kids(process):
        if "--type=renderer" in " ".join(child.cmdline()):
            child.kill()


@pytest.mark.parametrize(
    ("crash", "reason"),
    [(_kill_browser, "browser_crashed"), (_kill_renderers, "page_crashed")],
    ids=["browser-process", "renderer"],
)
async def test_crash_mid_check_fails_only_that_check(
    crash: Any, reason: str, site: HttpServer, browser: BrowserPool, browser_ctx: ProbeContext
):
    """A browser or renderer killed mid-check fails that check; the next one succeeds."""
    result = await _crash_during_check(browser, browser_ctx, crash)
    assert result.reason == reason, result
    site.routes["/help"] = page(SCRIPT_INSERTED)
    after = await probe_channel(rendered_channel(site.url("/help")), browser_ctx)
    assert after.success, after


async def test_browser_is_restarted_after_it_died(
    site: HttpServer, browser: BrowserPool, browser_ctx: ProbeContext
):
    """A browser that died between checks is replaced at the next check."""
    site.routes["/help"] = page(SCRIPT_INSERTED)
    assert (await probe_channel(rendered_channel(site.url("/help")), browser_ctx)).success
    launches = browser.launches
    browser.kill()
    await asyncio.sleep(0.5)
    result = await probe_channel(rendered_channel(site.url("/help")), browser_ctx)
    assert result.success, result
    assert browser.launches == launches + 1


async def test_pages_open_at_once_stay_within_concurrency(
    site: HttpServer, browser: BrowserPool, tmp_path: Path
):
    """With `defaults.browser.concurrency: 1`, checks take turns; waiting is not counted."""
    defaults = Defaults.model_validate({"timeout": "5s", "browser": {"concurrency": 1}})
    ctx = make_probe_context(defaults, tmp_path, browser)
    site.routes["/slow"] = _slow_page(0.6)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(probe_channel(rendered_channel(site.url("/slow")), ctx) for _ in range(3))
        )
        took = time.monotonic() - started
    finally:
        make_probe_context(Defaults(), tmp_path, browser)  # back to the default of 2
    assert all(r.success for r in results), results
    assert took >= 1.8  # three 0.6 s pages, one after another
    assert all(r.duration_seconds < took - 0.5 for r in results)


def _slow_page(seconds: float) -> Any:
    def route(handler: Any) -> None:
        time.sleep(seconds)
        page("<p>slow</p>")(handler)

    return route


async def test_one_shot_context_closes_the_browser_it_started(site: HttpServer, tmp_path: Path):
    """`check`/`drift` (one round) leave no Chromium behind."""
    from monitor.probers import probe_context

    site.routes["/help"] = page(SCRIPT_INSERTED)
    async with probe_context(Defaults(), tmp_path) as ctx:
        assert (await probe_channel(rendered_channel(site.url("/help")), ctx)).success
        process = ctx.browser.browser_process()
        assert process is not None
        assert process.is_running()
    process.wait(timeout=10)
    assert not process.is_running()


async def test_browser_is_replaced_when_it_grows_past_its_memory_cap(
    site: HttpServer, browser: BrowserPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Past `max_memory_mb` the browser is retired after its check; the next one starts anew."""
    monkeypatch.setattr(browser_module, "KILL_FACTOR", 1000)  # retired, never killed, here
    site.routes["/help"] = page(SCRIPT_INSERTED)
    small = Defaults.model_validate({"timeout": "5s", "browser": {"max_memory_mb": 64}})
    ctx = make_probe_context(small, tmp_path, browser)
    try:
        assert (await probe_channel(rendered_channel(site.url("/help")), ctx)).success
        launches = browser.launches
        assert browser.browser_process() is None  # retired and closed
        assert (await probe_channel(rendered_channel(site.url("/help")), ctx)).success
        assert browser.launches == launches + 1
    finally:
        make_probe_context(Defaults(), tmp_path, browser)


async def test_page_taking_memory_without_end_fails_that_check_only(
    site: HttpServer, browser: BrowserPool, tmp_path: Path
):
    """A page that allocates on and on is stopped (its renderer runs out of heap, or the
    browser is killed at twice the cap); the next check gets a working browser."""
    site.routes["/hog"] = page(
        "<p>hog</p><script>const keep = []; setInterval(() => "
        "keep.push(new Array(4e6).fill(Math.random())), 10);</script>"
    )
    site.routes["/help"] = page(SCRIPT_INSERTED)
    small = Defaults.model_validate({"timeout": "20s", "browser": {"max_memory_mb": 300}})
    ctx = make_probe_context(small, tmp_path, browser)
    hog = rendered_channel(site.url("/hog"), body_regex="never there")
    try:
        result = await probe_channel(hog.model_copy(update={"timeout": 20.0}), ctx)
        assert result.reason in ("browser_memory", "page_crashed"), result
        assert (await probe_channel(rendered_channel(site.url("/help")), ctx)).success
    finally:
        make_probe_context(Defaults(), tmp_path, browser)


async def test_endless_script_ends_at_the_timeout(site: HttpServer, browser_ctx: ProbeContext):
    """A script that never yields (the page never loads) ends the check at its timeout."""
    site.routes["/spin"] = page("<p>spin</p><script>while (true) {}</script>")
    channel = rendered_channel(site.url("/spin")).model_copy(update={"timeout": 2.0})
    result = await probe_channel(channel, browser_ctx)
    assert result.reason == "timeout", result
    site.routes["/help"] = page(SCRIPT_INSERTED)
    assert (await probe_channel(rendered_channel(site.url("/help")), browser_ctx)).success


HOSTILE_PAGES = {
    # name: (body, headers, reasons accepted)
    "download instead of a page": (
        "a,b\n1,2\n",
        {"Content-Disposition": "attachment; filename=x.csv"},
        {"browser_error"},
    ),
    "endless alert dialogs": (
        "<p>Поддержка</p><script>for (let i = 0; i < 50; i++) alert('hi');</script>",
        {},
        {"success"},
    ),
    "popup windows": (
        "<p>Поддержка</p><script>for (let i = 0; i < 5; i++) window.open('/x');</script>",
        {},
        {"success"},
    ),
    "3 MB rendered document": (
        "<p>Поддержка</p><div hidden id=d></div>"
        "<script>document.getElementById('d').textContent = '9'.repeat(3e6);</script>",
        {},
        {"too_large"},
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_PAGES))
async def test_hostile_page_ends_with_a_reason(
    name: str, site: HttpServer, browser_ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """Odd and hostile pages give a result with a reason, never a hang or a traceback."""
    body, headers, reasons = HOSTILE_PAGES[name]
    site.routes["/p"] = page(body, headers=headers)
    result = await probe_channel(rendered_channel(site.url("/p")), browser_ctx)
    report(hardening_report, f"rendered page: {name}", reasons, result)
    assert (result.reason or "success") in reasons, result
    assert result.duration_seconds < 6


INWARD = {
    "script navigation": "<p>x</p><script>location.href = '{inward}';</script>",
    "meta refresh": '<meta http-equiv="refresh" content="0; url={inward}"><p>x</p>',
    "iframe": '<p>x</p><iframe src="{inward}"></iframe>',
}


@pytest.mark.usefixtures("public_127_0_0_2")
@pytest.mark.parametrize("how", list(INWARD))
async def test_public_page_moving_inward_never_reaches_loopback(
    how: str, site: HttpServer, browser_ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """A public page that navigates, refreshes or frames its way inward is stopped there."""
    inward = site.url("/admin")
    with HttpServer({"/": page(INWARD[how].format(inward=inward))}, bind="127.0.0.2") as public:
        result = await probe_channel(rendered_channel(public.url("/", "127.0.0.2")), browser_ctx)
    assert site.requests == []
    assert inward in result.details.get("blocked_requests", []), result
    observed = {result.reason or "success"}
    report(hardening_report, f"public page, {how} to loopback: blocked", observed, result)


async def test_rendered_https_page_with_untrusted_certificate_fails_tls_untrusted(
    https_server: HttpServer, browser_ctx: ProbeContext
):
    """Chromium checks certificates against its own roots: a private CA's is untrusted."""
    https_server.routes["/"] = page("<p>ok</p>")
    result = await probe_channel(rendered_channel(https_server.url("/")), browser_ctx)
    assert result.reason == "tls_untrusted", result


async def test_frozen_browser_ends_the_check_at_its_timeout_and_is_replaced(
    site: HttpServer, browser: BrowserPool, browser_ctx: ProbeContext
):
    """A browser that stops answering (SIGSTOP) costs one check its deadline, then a new
    browser serves the next check."""
    import psutil

    site.routes["/help"] = page(SCRIPT_INSERTED)
    channel = rendered_channel(site.url("/help"))
    assert (await probe_channel(channel, browser_ctx)).success
    launches, process = browser.launches, browser.browser_process()
    assert process is not None
    process.suspend()
    try:
        started = time.monotonic()
        frozen = await probe_channel(channel.model_copy(update={"timeout": 1.0}), browser_ctx)
        took = time.monotonic() - started
    finally:
        with contextlib.suppress(psutil.Error):
            process.resume()
    assert frozen.reason == "timeout", frozen
    assert took < 8
    assert (await probe_channel(channel, browser_ctx)).success
    assert browser.launches == launches + 1


async def test_missing_chromium_fails_browser_unavailable(
    site: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without a Chromium to start, a rendered check fails with `browser_unavailable`."""
    monkeypatch.setattr(browser_module, "chromium_path", lambda: str(tmp_path / "no-chromium"))
    site.routes["/help"] = page(SCRIPT_INSERTED)
    pool = BrowserPool(Defaults().browser, tmp_path)
    try:
        ctx = make_probe_context(Defaults(), tmp_path, pool)
        result = await probe_channel(rendered_channel(site.url("/help")), ctx)
    finally:
        await pool.close()
    assert result.reason == "browser_unavailable", result
