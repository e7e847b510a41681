"""Extraction of published contacts from realistic Russian and English pages, with traps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.extract import extract_contacts

PAGES = Path(__file__).parent / "testdata" / "pages"


def contacts_of(name: str) -> dict:
    text = (PAGES / name).read_text(encoding="utf-8")
    return extract_contacts(text, "RU", html=True, base_url="https://bank.test/").to_json()


def phones_of(name: str) -> set[tuple[str, str | None]]:
    return {(p["e164"], p["extension"]) for p in contacts_of(name)["phones"]}


def test_every_published_phone_found_when_page_is_russian():
    """Text, tel: links and JSON-LD phones are found, with the доб. extension."""
    assert phones_of("ozon-bank-ru.html") == {
        ("+78005558982", None),
        ("+74952152408", None),
        ("+78002347000", None),
        ("+79584000005", "76077"),
    }


def test_identifiers_are_not_phones_when_page_lists_tax_and_bank_details():
    """ИНН, ОГРН, БИК, accounts, order and card numbers, dates, prices are not phones."""
    found = {e164 for e164, _ in phones_of("ozon-bank-ru.html")}
    assert not found & {"+77704217370", "+71027739244741", "+7044525068", "+712345678"}
    assert all(e164.startswith(("+7800", "+7495", "+7958")) for e164 in found)


def test_hidden_text_is_not_published_when_in_scripts_comments_templates():
    """Numbers and addresses in scripts, styles, comments, templates and <title> are not read."""
    data = contacts_of("ozon-bank-ru.html")
    raws = " ".join(p["raw"] for p in data["phones"])
    for hidden in ("000-00-01", "000-00-02", "000-00-03", "000-00-04", "000-00-05"):
        assert hidden not in raws
    assert "hidden@ozon.ru" not in {e["address"] for e in data["emails"]}


def test_emails_lower_cased_once_when_shown_in_text_and_mailto():
    """Each address appears once, lower-cased, with its raw form; mailto queries are dropped."""
    data = contacts_of("ozon-bank-ru.html")
    assert data["emails"] == [
        {"address": "zaprosozonbank@ozon.ru", "raw": "ZaprosOzonBank@ozon.ru"},
        {"address": "b2b@ozon.ru", "raw": "b2b@ozon.ru"},
    ]


def test_visible_wording_kept_as_evidence_when_number_is_also_a_link():
    """The raw text of a phone is the visible one, not the tel: target."""
    raw = {p["e164"]: p["raw"] for p in contacts_of("ozon-bank-ru.html")["phones"]}
    assert raw["+78005558982"] == "8 800 555-89-82"
    assert raw["+78002347000"] == "8 (800) 234-70-00"


def test_number_types_reported_when_extracted():
    """Toll-free, fixed-line and mobile numbers are told apart."""
    types = {p["e164"]: p["number_type"] for p in contacts_of("ozon-bank-ru.html")["phones"]}
    assert types == {
        "+78005558982": "toll_free",
        "+74952152408": "fixed_line",
        "+78002347000": "toll_free",
        "+79584000005": "mobile",
    }


def test_english_page_contacts_found_when_written_in_international_style():
    """ext. extensions, tel: with ;ext=, spaced international numbers."""
    assert phones_of("support-en.html") == {("+78005558991", "12"), ("+74952152994", None)}


def test_order_invoice_and_versions_ignored_when_page_is_english():
    """Order #, invoice, tax ID, ZIP, dates, prices and version numbers are not phones."""
    found = {e164 for e164, _ in phones_of("support-en.html")}
    assert found == {"+78005558991", "+74952152994"}


def test_digits_in_separate_blocks_do_not_merge_when_extracted():
    """'8', '800', '555' … in separate list items are not one number."""
    html = "<ul><li>8</li><li>800</li><li>555</li><li>89</li><li>82</li></ul>"
    assert extract_contacts(html, "RU", html=True).phones == ()


def test_inline_markup_joins_when_number_is_split_by_tags():
    """A number broken by <b> or <span> inside one paragraph is still one number."""
    html = "<p>Звоните <b>8 (800)</b> <span>234-70-00</span></p>"
    (phone,) = extract_contacts(html, "RU", html=True).phones
    assert (phone.e164, phone.raw) == ("+78002347000", "8 (800) 234-70-00")


@pytest.mark.parametrize(
    "text",
    [
        "Дата: 25.11.2025",
        "Часы: 09:00–18:00",
        "Цена 1 500 000 ₽",
        "Индекс 123112",
        "ИНН 7704217370",
        "Заказ № 9584000005",
        "Карта 2200 7001 2345 6789",
        "since 2023-01-01",
        "order #9584000005",
        "Total: 8 800 руб.",
    ],
)
def test_not_a_phone_when_text_is_a_trap(text: str):
    """Dates, times, prices, postal codes, tax ids, order and card numbers are not phones."""
    assert extract_contacts(text, "RU", html=False).phones == ()


def test_plain_text_contacts_found_when_source_is_not_html():
    """A text file is read as it is, without an HTML parser."""
    text = "Поддержка: 8 800 555-89-91 или business@finance.ozon.ru\n<not a tag>"
    data = extract_contacts(text, "RU", html=False).to_json()
    assert [p["e164"] for p in data["phones"]] == ["+78005558991"]
    assert [e["address"] for e in data["emails"]] == ["business@finance.ozon.ru"]


def test_links_normalised_when_page_has_anchors():
    """Anchors become absolute, normalised URLs for presence checks; tel/mailto are not links."""
    html = (
        '<a href="/my/messenger/">chat</a><a href="HTTPS://VK.com/ozon#wall">vk</a>'
        '<a href="tel:+78005558982">x</a>'
    )
    links = extract_contacts(html, "RU", html=True, base_url="https://www.ozon.ru/help").links
    assert links == {"https://www.ozon.ru/my/messenger", "https://vk.com/ozon"}


def test_extract_prints_contract_json_when_given_a_file(capsys: pytest.CaptureFixture[str]):
    """`extract FILE --format json` prints phones and e-mails per the contract, exit 0."""
    assert main(["extract", str(PAGES / "ozon-bank-ru.html"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"phones", "emails"} <= set(data)
    assert {
        "e164": "+79584000005",
        "extension": "76077",
        "raw": "+7 958 400-00-05 доб. 76077",
        "number_type": "mobile",
    } in data["phones"]


def test_extract_fails_clearly_when_file_is_missing(capsys: pytest.CaptureFixture[str]):
    """A missing file is one line on stderr and exit 2, no traceback."""
    assert main(["extract", "/nonexistent.html"]) == 2
    assert capsys.readouterr().err.strip() == (
        "contact-monitor: cannot read /nonexistent.html: No such file or directory"
    )


def test_windows_1251_page_decoded_when_meta_declares_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A page in windows-1251 that says so in <meta> is read correctly."""
    page = tmp_path / "cp1251.html"
    page.write_bytes(
        '<html><head><meta charset="windows-1251"></head><body>'
        "<p>Звоните: 8 800 555-89-82 доб. 12</p></body></html>".encode("cp1251")
    )
    assert main(["extract", str(page), "--format", "json"]) == 0
    (phone,) = json.loads(capsys.readouterr().out)["phones"]
    assert phone["raw"] == "8 800 555-89-82 доб. 12"
