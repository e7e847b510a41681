"""Extraction of published contacts from realistic Russian and English pages, with traps."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from monitor.charset import decode_page, encoding_of
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


# --- the kinds of fault real pages show (issue 13) ------------------------------------


def found(html: str, region: str = "RU") -> tuple[set[tuple[str, str | None]], set[str]]:
    contacts = extract_contacts(html, region, html=True)
    return {(p.e164, p.extension) for p in contacts.phones}, {e.address for e in contacts.emails}


def test_br_separates_lines_when_contacts_follow_each_other():
    """One phone and two e-mails, never "info@lesnoy-dom.rusales"."""
    html = "<p>Тел.: +7 (495) 123-45-67<br>E-mail: info@lesnoy-dom.ru<br>sales@lesnoy-dom.ru</p>"
    assert found(html) == (
        {("+74951234567", None)},
        {"info@lesnoy-dom.ru", "sales@lesnoy-dom.ru"},
    )


@pytest.mark.parametrize(
    "separator", ["<br>", "<br/>", "<hr>", "</li><li>", "</td><td>", "<div>", "</p><p>", "<h3>"]
)
def test_number_ends_at_line_break_when_a_word_follows(separator: str):
    """A deprecated number followed by a break and a word is still the number."""
    html = f"<ul><li><table><tr><td><p>8 (800) 234-70-00{separator}Звоните</p></td></tr></table>"
    assert found(html)[0] == {("+78002347000", None)}


@pytest.mark.parametrize(
    "space", ["\u2009", "\u202f", "\u2007", "\u00a0", "\u2002", "\u3000", "&thinsp;", "&nbsp;"]
)
def test_unicode_spaces_separate_groups_when_number_is_typeset(space: str):
    """Thin, narrow no-break, figure and other Unicode spaces are spaces in a number."""
    html = f"<p>Горячая линия: 8{space}800{space}234{space}70{space}00</p>"
    assert found(html)[0] == {("+78002347000", None)}


@pytest.mark.parametrize("dash", ["\u2011", "\u2010", "\u2013", "\u2212", "&ndash;", "&#8209;"])
def test_unicode_dashes_separate_groups_when_number_is_typeset(dash: str):
    """Non-breaking hyphen, en dash and minus are hyphens in a number."""
    assert found(f"<p>+7 (495) 215{dash}24{dash}08</p>")[0] == {("+74952152408", None)}


@pytest.mark.parametrize("invisible", ["&shy;", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
def test_invisible_characters_ignored_when_inside_a_phone_or_an_email(invisible: str):
    """Soft hyphen, zero-width space/joiner and word joiner show nothing and split nothing."""
    html = f"<p>8 800 555{invisible}-89-82, sup{invisible}port@lesnoy-dom.ru</p>"
    assert found(html) == ({("+78005558982", None)}, {"support@lesnoy-dom.ru"})


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("Блокировка карты: 8-800-555-89-82", "RU", "+78005558982"),
        ("Открыть счёт — 8 800 100-20-30", "RU", "+78001002030"),
        ("Phone #: (212) 555-0123", "US", "+12125550123"),
        ("Tel. No.: +44 20 7946 0321", "RU", "+442079460321"),
        ("Order desk No. +7 495 215-24-08", "RU", "+74952152408"),
        ("8 (495) 232-10-00 г. Москва", "RU", "+74952321000"),
        ("Линия для Android: 495 215-24-08", "RU", "+74952152408"),
        ("Отдел заказов: 495 215-24-08", "RU", "+74952152408"),
        ("Телефон для заказа: 495 215-24-08", "RU", "+74952152408"),
    ],
)
def test_label_keeps_number_and_country_when_written_before_it(
    text: str, region: str, expected: str
):
    """Labels (even ones naming cards or accounts) and towns never hide a phone."""
    assert found(f"<p>{text}</p>", region)[0] == {(expected, None)}


@pytest.mark.parametrize(
    "written",
    [
        "+7 958 400-00-05, доб. 76077",
        "+7 958 400-00-05 (доб. 76077)",
        "+7 958 400-00-05 доб.76077",
        "+7 958 400-00-05 добавочный 76077",
        "+7 958 400-00-05 вн. 76077",
        "+7 958 400-00-05 доп. 76077",
        "+7 958 400-00-05 ext. 76077",
        "+7 958 400-00-05 x76077",
        "+7 958 400-00-05 #76077",
        "+7 958 400-00-05, ДОБ. 76077",
    ],
)
def test_extension_found_when_written_after_the_number(written: str):
    """Every way pages write an extension gives the extension."""
    assert found(f"<p>{written}</p>")[0] == {("+79584000005", "76077")}


@pytest.mark.parametrize(
    "href",
    [
        "tel:+79584000005;ext=76077",
        "tel:+79584000005p76077",
        "tel:+79584000005w76077",
        "tel:+79584000005,76077",
        "tel:+79584000005;postd=pp76077",
        "tel:+7-958-400-00-05;phone-context=+7;ext=76077",
    ],
)
def test_extension_found_when_tel_link_dials_it(href: str):
    """tel: links with ;ext=, ;postd=, p/w pauses or a comma give the extension."""
    assert found(f'<a href="{href}">Позвонить</a>')[0] == {("+79584000005", "76077")}


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Пишите: info@почта.рф</p>", "info@почта.рф"),
        ('<a href="mailto:info@xn--80a1acny.xn--p1ai">написать</a>', "info@почта.рф"),
        ("<p>Contact o'brien@harbour-legal.co.uk</p>", "o'brien@harbour-legal.co.uk"),
        ("<p>'quoted@lesnoy-dom.ru'</p>", "quoted@lesnoy-dom.ru"),
        ("<p>first.last+tag@lesnoy-dom.ru.</p>", "first.last+tag@lesnoy-dom.ru"),
        ("<p>support [at] lesnoy-dom [dot] ru</p>", "support@lesnoy-dom.ru"),
        ("<p>hr(собака)lesnoy-dom.ru</p>", "hr@lesnoy-dom.ru"),
        ("<p>press {at} lesnoy-dom (dot) com</p>", "press@lesnoy-dom.com"),
        (
            '<p><span class="__cf_email__" data-cfemail="42313732322d3036022e27312c2d3b6f262d2f6c'
            '3037">[email&#160;protected]</span></p>',
            "support@lesnoy-dom.ru",
        ),
        (
            '<a href="/cdn-cgi/l/email-protection#42313732322d3036022e27312c2d3b6f262d2f6c3037">'
            "[email&#160;protected]</a>",
            "support@lesnoy-dom.ru",
        ),
    ],
)
def test_email_read_when_written_as_people_write_it(html: str, expected: str):
    """IDN, apostrophes, quotes, obfuscation and Cloudflare's protection are read."""
    assert found(html)[1] == {expected}


def test_every_address_read_when_mailto_lists_several():
    """mailto: with several addresses, cc= and ?subject= gives each address, no subject."""
    html = (
        '<a href="mailto:a@lesnoy-dom.ru,b@lesnoy-dom.ru?cc=c@lesnoy-dom.ru&subject=Hi%20there">'
        "write</a>"
    )
    assert found(html)[1] == {"a@lesnoy-dom.ru", "b@lesnoy-dom.ru", "c@lesnoy-dom.ru"}


@pytest.mark.parametrize(
    "text",
    [
        "logo@2x.png",
        "icon@3x.webp",
        "sprite@1.5x.jpg",
        "bg@2x.svg?v=3",
        "user@localhost",
        "name@printer.lan",
        "a@b.c",
        "me@example.com",
        "you@mail.example.org",
        "info@shop.test",
        "noreply@site.example",
        "x@y.invalid",
        "admin@router.local",
    ],
)
def test_not_an_email_when_domain_is_an_asset_unknown_or_reserved(text: str):
    """A domain must end in a public suffix and not be reserved (RFC 2606, RFC 6761)."""
    assert found(f"<p>{text}</p><img src='/img/{text}'>")[1] == set()


@pytest.mark.parametrize(
    "mask",
    [
        "+7 (999) 999-99-99",
        "+7 (___) ___-__-__",
        "8 (XXX) XXX-XX-XX",
        "+7 (900) 000-00-00",
        "+7 (999) 123-45-67",
        "8 800 XXX-XX-XX",
        "+7 (495) 000-00-00",
    ],
)
def test_input_mask_not_a_phone_when_shown_as_a_form_hint(mask: str):
    """Masks and form hints are never published numbers."""
    html = f'<label>Телефон <input name="phone" placeholder="{mask}"></label><small>{mask}</small>'
    assert found(html)[0] == set()


JSON_LD_CASES = {
    "CDATA wrapper": """// <![CDATA[
{"@context": "https://schema.org", "@type": "Organization", "telephone": "+7 495 215-24-08"}
// ]]>""",
    "comment wrapper": '<!-- {"@type": "Organization", "telephone": "+7 495 215-24-08"} -->',
    "trailing comma": '{"@type": "Organization", "telephone": "+7 495 215-24-08",}',
    "several objects": '{"@type": "WebSite"} {"@type": "Store", "telephone": "+74952152408"}',
    "@graph": '{"@graph": [{"@type": "WebPage"}, {"contactPoint": {"telephone": "84952152408"}}]}',
    "list": '[{"@type": "Store", "telephone": ["+7 495 215-24-08"]}]',
}


@pytest.mark.parametrize("block", JSON_LD_CASES.values(), ids=JSON_LD_CASES.keys())
def test_json_ld_telephone_read_when_block_is_written_as_sites_write_it(block: str):
    """CDATA and comment wrappers, trailing commas, several objects, @graph all count."""
    html = f'<script type="application/ld+json">{block}</script><p>Нет</p>'
    assert found(html)[0] == {("+74952152408", None)}


def test_malformed_json_ld_block_loses_only_itself_when_another_is_fine():
    """A broken block yields nothing; the good one next to it still counts."""
    html = (
        '<script type="application/ld+json">{"telephone": "+7 800 234-70-00", oops}</script>'
        '<script type="application/ld+json">{"email": "mailto:b2b@lesnoy-dom.ru",'
        ' "telephone": "+7 495 215-24-08 доб. 12"}</script>'
    )
    assert found(html) == ({("+74952152408", "12")}, {"b2b@lesnoy-dom.ru"})


def test_microdata_and_hcard_read_when_values_are_in_attributes():
    """itemprop telephone/email (content or href) and hCard tel/email count."""
    html = """<div itemscope itemtype="https://schema.org/Organization">
      <meta itemprop="telephone" content="+7 495 215-24-08">
      <a itemprop="email" href="mailto:office@lesnoy-dom.ru">Написать</a></div>
      <div class="vcard"><span class="tel"><span class="type">work</span>
      <span class="value">8 800 555-89-82</span></span>
      <span class="email">sales@lesnoy-dom.ru</span></div>"""
    assert found(html) == (
        {("+74952152408", None), ("+78005558982", None)},
        {"office@lesnoy-dom.ru", "sales@lesnoy-dom.ru"},
    )


HIDING = {
    "hidden attribute": "<div hidden>{}</div>",
    "display:none": '<div style="color: red; display:none">{}</div>',
    "DISPLAY: NONE": '<p style="DISPLAY: NONE !important">{}</p>',
    "visibility:hidden": '<span style="visibility: hidden">{}</span>',
    "template": "<template><p>{}</p></template>",
    "noscript": "<noscript><div>{}</div></noscript>",
    "nested": '<div hidden><div style="display:none">{}</div></div>',
}


@pytest.mark.parametrize("wrapper", HIDING.values(), ids=HIDING.keys())
def test_hidden_content_listed_apart_when_page_hides_it(wrapper: str):
    """Hidden text is not published, and is listed apart with visible: false."""
    inner = '8 (800) 234-70-00, old@lesnoy-dom.ru <a href="tel:+74952152408">x</a>'
    contacts = extract_contacts("<p>Звоните в чат</p>" + wrapper.format(inner), "RU", html=True)
    assert (contacts.phones, contacts.emails) == ((), ())
    data = contacts.to_json()["hidden"]
    assert {(p["e164"], p["visible"]) for p in data["phones"]} == {
        ("+78002347000", False),
        ("+74952152408", False),
    }
    assert data["emails"] == [
        {"address": "old@lesnoy-dom.ru", "raw": "old@lesnoy-dom.ru", "visible": False}
    ]


def test_hidden_copy_not_listed_when_same_contact_is_also_shown():
    """A contact shown and also hidden elsewhere is simply published."""
    contacts = extract_contacts(
        "<p>8 800 555-89-82</p><div hidden>8 800 555-89-82</div>", "RU", html=True
    )
    assert [p.e164 for p in contacts.phones] == ["+78005558982"]
    assert contacts.hidden_phones == ()


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE89 3704 0044 0532 0130 00",
        "IBAN: RU02 0445 2560 0407 0281 0412 3456 7890",
        "Трек-номер: 8000 1234 5678 9",
        "Tracking number 1Z 999 AA1 0123 4567 84",
        "Карта 4276 3800 1234 5678",
        "Card: 5536 9137 1234 5678",
        "ОГРН 1027739244741",
        "БИК 044525068",
        "к/с 30101 810 4 0000 0000225",
        "Р/с 40702 810 3 3800 0012345",
        "СНИЛС 112-233-445 95",
        "ISBN 978-5-389-07435-4",
        "Version 10.0.19045.3693",
        "v2.14.3 (build 2024-11-05)",
        "Координаты: 55.755826, 37.617300",
        "GPS 55°45′20″ N 37°37′03″ E, 55.7558 37.6173",
        "Цена: 8 990 000 руб.",
        "Price $1,299.00 / 8 800.50 €",
        "119021, г. Москва, ул. Льва Толстого, 16",
        "Договор № 45-2024/117 от 12.03.2024",
        "Период 01.01.2024 – 31.12.2024",
        "Рейс SU 1402, 12:40–15:05",
        "ИНН/КПП 7704217370/770401001",
    ],
)
def test_not_a_phone_when_text_is_an_identifier_amount_or_place(text: str):
    """IBANs, tracking and card numbers, tax ids, versions, coordinates are not phones."""
    assert extract_contacts(f"<p>{text}</p>", "RU", html=True).phones == ()


ENCODED_PAGE = "<p>Тел.: 8\u00a0800\u00a0555–89–82, почта: info@почта.рф</p>"


def contacts_of_bytes(body: bytes, content_type: str | None = None) -> tuple[set, set]:
    text = decode_page(body, content_type)
    return found(text)


@pytest.mark.parametrize(
    ("label", "codec"),
    [("iso-8859-1", "cp1252"), ("latin1", "cp1252"), ("x-cp1251", "cp1251"), ("gb2312", "gbk")],
)
def test_whatwg_label_decides_the_decoder_when_meta_names_an_alias(label: str, codec: str):
    """WHATWG labels: iso-8859-1 is windows-1252, x-cp1251 windows-1251, gb2312 GBK."""
    assert encoding_of(f'<meta charset="{label}">'.encode()) == (codec, 0)


def test_windows_1252_dashes_read_when_page_says_iso_8859_1():
    """Byte 0x96 is an en dash in windows-1252 (a C1 control in ISO-8859-1): a separator."""
    body = b'<meta charset="iso-8859-1"><p>Call +7 495 215\x9624\x9608</p>'
    assert contacts_of_bytes(body)[0] == {("+74952152408", None)}


def test_meta_charset_obeyed_when_it_follows_a_long_style():
    """A <meta charset> after 5 KB of CSS in the head still decides the page's text."""
    style = "<style>" + ".a{color:red}\n" * 400 + "</style>"
    body = f'<html><head>{style}<meta charset="x-cp1251"></head><body>{ENCODED_PAGE}'
    assert contacts_of_bytes(body.encode("cp1251")) == (
        {("+78005558982", None)},
        {"info@почта.рф"},
    )


def test_bom_wins_when_meta_contradicts_it():
    """A UTF-8 BOM beats a <meta> saying windows-1251."""
    body = b"\xef\xbb\xbf" + f'<meta charset="windows-1251">{ENCODED_PAGE}'.encode()
    assert contacts_of_bytes(body)[1] == {"info@почта.рф"}


def test_header_wins_when_meta_contradicts_it():
    """The Content-Type header's charset beats the page's own <meta>."""
    body = f'<meta charset="utf-8">{ENCODED_PAGE}'.encode("cp1251")
    assert contacts_of_bytes(body, "text/html; charset=windows-1251")[1] == {"info@почта.рф"}


def test_http_equiv_read_when_page_declares_charset_the_old_way():
    """<meta http-equiv="Content-Type" content="…; charset=koi8-r"> is a declaration."""
    body = (
        '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
        + ENCODED_PAGE.replace("–", "-")
    ).encode("koi8-r")
    assert contacts_of_bytes(body)[1] == {"info@почта.рф"}


def test_meta_in_a_comment_ignored_when_a_real_one_follows():
    """A commented-out <meta charset> is not a declaration."""
    body = ('<!-- <meta charset="koi8-r"> --><meta charset="windows-1251">' + ENCODED_PAGE).encode(
        "cp1251"
    )
    assert contacts_of_bytes(body)[1] == {"info@почта.рф"}


def test_link_extension_published_when_link_text_shows_the_bare_number():
    """<a href="tel:…p105">+7 499 322-18-77</a> publishes the extension line, not the bare one."""
    html = '<p><a href="tel:+74993221877p105">+7 499 322-18-77</a></p>'
    assert found(html)[0] == {("+74993221877", "105")}


def test_bare_number_kept_when_also_shown_outside_the_link():
    """The same number shown again in text is the main line as well."""
    html = '<p><a href="tel:+74993221877p105">+7 499 322-18-77</a>; приёмная +7 499 322-18-77</p>'
    assert found(html)[0] == {("+74993221877", "105"), ("+74993221877", None)}


@pytest.mark.parametrize(
    "text", ["Last modified 2024-03-07 14:22", "Updated 2024/03/07 1422", "Дата: 07.03.2024 1422"]
)
def test_not_a_phone_when_a_date_starts_the_digits(text: str):
    """ISO and dotted dates followed by a time are not phones in any region."""
    assert found(f"<p>{text}</p>", "US")[0] == set()


def test_extract_lists_hidden_contacts_apart_when_page_hides_some(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`extract --format json` keeps phones/emails as published and adds `hidden`."""
    path = tmp_path / "page.html"
    path.write_text(
        "<p>8 800 555-89-82</p><div style='display:none'>8 (800) 234-70-00, old@ozon-torg.ru</div>",
        encoding="utf-8",
    )
    assert main(["extract", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["e164"] for p in data["phones"]] == ["+78005558982"]
    assert data["emails"] == []
    assert data["hidden"] == {
        "phones": [
            {
                "e164": "+78002347000",
                "extension": None,
                "raw": "8 (800) 234-70-00",
                "number_type": "toll_free",
                "visible": False,
            }
        ],
        "emails": [{"address": "old@ozon-torg.ru", "raw": "old@ozon-torg.ru", "visible": False}],
    }


def test_extract_table_marks_hidden_contacts_when_page_hides_some(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The table names hidden contacts as such."""
    path = tmp_path / "page.html"
    path.write_text("<p>8 800 555-89-82</p><template>8 (800) 234-70-00</template>")
    assert main(["extract", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hidden phone" in out
    assert "+78002347000" in out


@pytest.mark.parametrize(
    "html",
    [
        "<p><span>8 (800) 234-70-00</span><span>Звоните</span></p>",
        "<p><b>Тел.</b><span>8 (800) 234-70-00</span></p>",
        "<p>Горячая линия8 (800) 234-70-00</p>",
    ],
)
def test_number_read_when_inline_words_touch_it(html: str):
    """Cyrillic words glued to a number by inline markup do not hide it."""
    assert found(html)[0] == {("+78002347000", None)}


def test_email_ends_where_its_suffix_script_ends_when_a_word_follows():
    """ "info@lesnoy-dom.ruПишите" from adjacent spans is info@lesnoy-dom.ru."""
    assert found("<p><span>info@lesnoy-dom.ru</span><span>Пишите</span></p>")[1] == {
        "info@lesnoy-dom.ru"
    }


@pytest.mark.parametrize("text", ["AB12345678CD", "SN8800555898x", "KX-88005558982Z"])
def test_not_a_phone_when_latin_code_surrounds_the_digits(text: str):
    """Digits inside a Latin product or serial code are not a phone."""
    assert found(f"<p>{text}</p>")[0] == set()


def test_windows_1251_assumed_when_page_declares_nothing_and_is_not_utf8():
    """An undeclared windows-1251 page reads as a browser set up for Russian reads it."""
    body = ENCODED_PAGE.encode("cp1251")
    assert encoding_of(body) == ("cp1251", 0)
    assert contacts_of_bytes(body)[1] == {"info@почта.рф"}


def test_utf8_assumed_when_page_declares_nothing_and_is_utf8():
    """Undeclared UTF-8 stays UTF-8."""
    assert encoding_of(ENCODED_PAGE.encode()) == ("utf-8", 0)


@pytest.mark.parametrize("vanity", ["8 800 555-55-55", "+7 (495) 777-77-77", "8 800 200-00-00"])
def test_vanity_number_kept_when_its_digits_repeat(vanity: str):
    """Real vanity numbers are not input masks."""
    assert len(found(f"<p>Звоните: {vanity}</p>")[0]) == 1


def test_structured_tel_and_mailto_values_read_when_written_as_uris():
    """JSON-LD and h-card values may be tel:/mailto: URIs, with an extension."""
    html = (
        '<script type="application/ld+json">{"telephone": "tel:+7-495-215-24-08;ext=12",'
        ' "email": ["mailto:Sales@Lesnoy-Dom.ru"]}</script>'
        '<div class="h-card"><a class="p-tel" href="tel:+78005558982">позвонить</a></div>'
    )
    assert found(html) == (
        {("+74952152408", "12"), ("+78005558982", None)},
        {"sales@lesnoy-dom.ru"},
    )


def hidden_found(html: str) -> set[str]:
    contacts = extract_contacts(html, "RU", html=True)
    return {p.e164 for p in contacts.hidden_phones} | {e.address for e in contacts.hidden_emails}


def test_svg_text_published_when_a_header_svg_draws_the_number():
    """SVG <text> is drawn on the page: its number is published."""
    html = (
        '<header><svg viewBox="0 0 200 20"><text x="0" y="15">8 800 555 35 28</text></svg></header>'
    )
    assert found(html)[0] == {("+78005553528", None)}


def test_svg_tspans_read_as_one_number_when_a_text_splits_it():
    """<tspan> runs inside one <text> are one line of text."""
    html = "<svg><text><tspan>+7 (495)</tspan> <tspan>765-43-11</tspan></text></svg>"
    assert found(html)[0] == {("+74957654311", None)}


def test_svg_texts_are_separate_lines_when_an_svg_draws_several():
    """Each <text> is placed on its own: two numbers, never one run of digits."""
    html = "<svg><text>8 800 555 35 28</text><text>+7 495 765-43-11</text></svg>"
    assert found(html)[0] == {("+78005553528", None), ("+74957654311", None)}


def test_svg_tooltip_not_published_when_number_is_only_in_svg_title_or_desc():
    """An SVG <title> is a hover tooltip and <desc> a description: neither is drawn."""
    html = "<svg><title>8 800 555 35 28</title><desc>+7 495 765-43-11</desc><path d='M0'/></svg>"
    assert found(html) == (set(), set())


def test_svg_style_and_script_not_read_when_an_svg_carries_them():
    """Stylesheets and scripts inside an SVG are not text."""
    html = (
        "<svg><style>/* 8 800 555 35 28 */</style><script>var t='+7 495 765-43-11'</script></svg>"
    )
    assert found(html) == (set(), set())


def test_svg_text_listed_apart_when_the_svg_is_inside_a_hidden_block():
    """An SVG in a hidden block or with display:none (a sprite) is not published."""
    for html in (
        "<div hidden><svg><text>8 800 555 35 28</text></svg></div>",
        '<svg style="display: none"><symbol id="t"><text>8 800 555 35 28</text></symbol></svg>',
    ):
        assert found(html)[0] == set()
        assert hidden_found(html) == {"+78005553528"}


def test_selected_option_published_when_a_select_is_closed():
    """A closed <select> shows its selected option."""
    html = (
        "<select><option>Офис</option><option selected>Москва: +7 (495) 765-43-11</option></select>"
    )
    assert found(html)[0] == {("+74957654311", None)}


def test_every_option_published_when_a_select_lists_offices():
    """The visitor opens the select to read the other options: they count as published,
    each on its own line."""
    html = (
        "<select name=city><option>Москва: +7 (495) 765-43-11</option>"
        "<option>Санкт-Петербург: +7 (812) 765-43-12</option></select>"
    )
    assert found(html)[0] == {("+74957654311", None), ("+78127654312", None)}


def test_option_label_published_when_an_option_has_a_label_attribute():
    """An option's non-empty label is what the list shows, instead of its text."""
    html = '<select><option label="Москва: +7 (495) 765-43-11">msk</option></select>'
    assert found(html)[0] == {("+74957654311", None)}


def test_option_listed_apart_when_the_option_is_hidden():
    """A hidden option is never shown in the list."""
    html = "<select><option>Офис</option><option hidden>+7 (495) 765-43-11</option></select>"
    assert found(html)[0] == set()
    assert hidden_found(html) == {"+74957654311"}


def test_datalist_not_published_when_it_suggests_values():
    """A <datalist> holds suggestions for an input, not page text."""
    html = '<input list="p"><datalist id="p"><option>+7 (495) 765-43-11</option></datalist>'
    assert found(html)[0] == set()


def test_input_value_published_when_a_readonly_text_input_shows_it():
    """A text input shows its value; a missing or unknown type is a text input."""
    for html in (
        '<input value="+7 (495) 765-43-10" readonly>',
        '<input type="tel" value="+7 (495) 765-43-10" readonly>',
        '<label>Телефон:<input type="strange" value="+7 (495) 765-43-10"></label>',
    ):
        assert found(html)[0] == {("+74957654310", None)}, html


def test_input_value_published_when_an_email_input_shows_an_address():
    """An e-mail input shows its value, and a submit button its label."""
    html = '<input type=email value="help@lesnoy-dom.ru"><input type=submit value="b2b@acme.ru">'
    assert found(html)[1] == {"help@lesnoy-dom.ru", "b2b@acme.ru"}


def test_hidden_input_listed_apart_when_its_type_is_hidden():
    """`type=hidden` inputs are never shown, alone or inside a hidden block."""
    for html in (
        '<form><input type="hidden" name="tel" value="+7 (495) 765-43-10"></form>',
        '<div hidden><input type="HIDDEN" value="+7 (495) 765-43-10"></div>',
        '<div hidden><input value="+7 (495) 765-43-10"></div>',
    ):
        assert found(html)[0] == set(), html
        assert hidden_found(html) == {"+74957654310"}, html


def test_input_value_not_published_when_the_input_masks_or_does_not_draw_it():
    """Passwords show dots; checkboxes, radios and files do not draw their value."""
    for kind in ("password", "checkbox", "radio", "file"):
        html = f'<input type="{kind}" value="+7 (495) 765-43-10">'
        assert found(html)[0] == set(), kind


def test_placeholder_not_published_when_it_shows_a_number_or_a_mask():
    """A placeholder is a format hint, whatever it looks like; a mask as a value is no number."""
    for html in (
        '<input type="tel" placeholder="+7 (495) 765-43-10">',
        '<input type="tel" placeholder="+7 (___) ___-__-__" value="">',
        '<input type="tel" value="+7 (___) ___-__-__">',
        '<input type="tel" value="+7 (999) 999-99-99">',
    ):
        assert found(html)[0] == set(), html


def test_textarea_text_published_when_a_readonly_textarea_shows_it():
    """A textarea shows its text."""
    html = "<textarea readonly>Звоните: +7 (495) 765-43-10\nhelp@lesnoy-dom.ru</textarea>"
    assert found(html) == ({("+74957654310", None)}, {"help@lesnoy-dom.ru"})


def test_image_alt_published_when_an_image_draws_the_number():
    """alt is the text equivalent of an image: what a screen reader reads and a broken image
    shows."""
    html = '<p>Горячая линия: <img src="phone.png" alt="8 800 555 35 28"></p>'
    assert found(html)[0] == {("+78005553528", None)}


def test_image_alt_listed_apart_when_the_image_is_hidden():
    """A hidden image, or one in a hidden block, shows nothing."""
    for html in (
        '<img hidden alt="8 800 555 35 28">',
        '<div style="display:none"><img alt="8 800 555 35 28"></div>',
    ):
        assert found(html)[0] == set(), html
        assert hidden_found(html) == {"+78005553528"}, html


def test_script_text_not_read_when_next_to_form_controls_and_svg():
    """Scripts stay unread when the page around them has inputs, selects and SVG."""
    html = (
        "<form><input value='ok'><select><option>a</option></select>"
        "<script>var phone = '+7 (495) 765-43-10';</script><svg><text>x</text></svg></form>"
    )
    assert found(html) == (set(), set())
    assert hidden_found(html) == set()


def test_iframe_srcdoc_published_when_its_document_shows_contacts():
    """An <iframe srcdoc> shows its document: text, tel: and mailto: links are published."""
    inner = "<p>Звоните: +7 (495) 765-43-10</p><a href='mailto:help@lesnoy-dom.ru'>пишите</a>"
    html = f'<p>Контакты<iframe style="border: none" srcdoc="{inner}"></iframe>в городе</p>'
    assert found(html) == ({("+74957654310", None)}, {"help@lesnoy-dom.ru"})


def test_iframe_srcdoc_read_like_a_page_when_it_has_scripts_and_hidden_parts():
    """Inside srcdoc, head, scripts and hidden blocks are what they are on the page."""
    inner = (
        "<head><title>8 800 555 35 28</title></head><script>t='+7 812 765-43-12'</script>"
        "<p hidden>+7 (495) 765-43-10</p><svg><text>+7 495 765-43-11</text></svg>"
    )
    html = f'<iframe srcdoc="{inner}"></iframe>'
    assert found(html)[0] == {("+74957654311", None)}
    assert hidden_found(html) == {"+74957654310"}


def test_iframe_srcdoc_listed_apart_when_the_iframe_is_hidden():
    """A hidden iframe, or one in a hidden block, shows nothing of its document."""
    for html in (
        '<iframe hidden srcdoc="<p>+7 (495) 765-43-10</p>"></iframe>',
        '<iframe style="display:none" srcdoc="<p>+7 (495) 765-43-10</p>"></iframe>',
        '<div hidden><iframe srcdoc="<p>+7 (495) 765-43-10</p>"></iframe></div>',
    ):
        assert found(html)[0] == set(), html
        assert hidden_found(html) == {"+74957654310"}, html


def test_iframe_fallback_not_published_when_the_iframe_loads_a_src():
    """Text inside <iframe> is fallback for browsers without frames: never shown."""
    html = '<iframe src="/map">Позвоните: +7 (495) 765-43-10</iframe>'
    assert found(html) == (set(), set())


def test_srcdoc_nesting_bounded_when_iframes_nest_deeper_than_two():
    """A srcdoc inside a srcdoc is read; deeper ones, and more than 100 frames, are not."""
    html = "<p>+7 (495) 765-43-13</p>"
    for level in range(20):
        html = f'<p>+7 (495) 765-43-{level + 14}</p><iframe srcdoc="{escape(html)}"></iframe>'
    assert found(html)[0] == {(f"+749576543{n}", None) for n in (33, 32, 31)}
    many = '<iframe srcdoc="<p>+7 (495) 765-43-10</p>"></iframe>' * 10_000
    assert found(many)[0] == {("+74957654310", None)}


def test_select_and_textarea_listed_apart_when_inside_a_hidden_block():
    """Options and textarea text in a hidden form are not published, but listed apart."""
    html = (
        '<form style="display:none"><select><option label="+7 (495) 765-43-11">x</option>'
        "<option>+7 (812) 765-43-12</option></select><textarea>+7 (343) 765-43-13</textarea></form>"
    )
    assert found(html)[0] == set()
    assert hidden_found(html) == {"+74957654311", "+78127654312", "+73437654313"}


def test_input_value_published_when_its_style_only_mentions_none():
    """`border: none` on an input hides nothing; a styled checkbox is not a hidden block."""
    html = (
        '<input style="border: none" value="+7 (495) 765-43-10"><input type=radio style="x:none">'
    )
    assert found(html)[0] == {("+74957654310", None)}
    assert hidden_found(html) == set()
