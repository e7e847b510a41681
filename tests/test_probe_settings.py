"""One rule for every request's headers and proxy (`monitor.probers._settings`): the HTTP
fetch, rendered pages and WebSocket probes all take it from there."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import dns.asyncresolver

from monitor.config import Defaults, Source, WebChannel
from monitor.probers import ProbeContext
from monitor.probers._settings import proxy_for, request_headers

DEFAULT_PROXY = "http://proxy.internal:3128"


def context(tmp_path: Path, **http: Any) -> ProbeContext:
    defaults = Defaults.model_validate({"http": http})
    resolver = dns.asyncresolver.Resolver(configure=False)
    return ProbeContext(defaults, ssl.create_default_context(), resolver)


def site(**fields: Any) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "site", "kind": "web", "url": "https://acme.test/", **fields}
    )


def test_channel_headers_replace_defaults_when_names_differ_only_in_case(tmp_path: Path):
    """A channel's `user-agent` replaces the default `User-Agent`; other defaults stay."""
    ctx = context(tmp_path, headers={"User-Agent": "ours/1", "Accept-Language": "ru"})
    headers = request_headers(site(headers={"user-agent": "theirs/2"}), ctx)
    assert headers == {"Accept-Language": "ru", "user-agent": "theirs/2"}


def test_default_headers_sent_when_target_has_none_of_its_own(tmp_path: Path):
    """A source has no `headers`: it sends `defaults.http.headers`."""
    ctx = context(tmp_path, headers={"User-Agent": "ours/1"})
    source = Source.model_validate({"id": "contacts", "url": "https://acme.test/contacts"})
    assert request_headers(source, ctx) == {"User-Agent": "ours/1"}


def test_channel_proxy_used_when_channel_and_defaults_both_name_one(tmp_path: Path):
    """A channel's own `proxy` wins over `defaults.http.proxy`."""
    ctx = context(tmp_path, proxy=DEFAULT_PROXY)
    assert proxy_for(site(proxy="http://127.0.0.1:8888"), ctx) == "http://127.0.0.1:8888"


def test_default_proxy_used_when_channel_names_none(tmp_path: Path):
    assert proxy_for(site(), context(tmp_path, proxy=DEFAULT_PROXY)) == DEFAULT_PROXY


def test_no_proxy_when_neither_channel_nor_defaults_name_one(tmp_path: Path):
    """None: the environment's HTTP(S)_PROXY / NO_PROXY apply."""
    assert proxy_for(site(), context(tmp_path)) is None
