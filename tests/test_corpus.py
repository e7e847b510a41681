"""The corpus: realistic pages, each with the contacts a careful reader would list.

Every page under `testdata/pages/` has a `NAME.truth.json`: the region its numbers are read
in, the Content-Type header it is served with (if any), the kinds of fault it shows
(issue 13), and its phones (E.164 + extension) and e-mails. The whole corpus is scored
for precision and recall; `python tests/test_corpus.py` prints the figures per page.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.charset import decode_page
from monitor.extract import extract_contacts

PAGES = Path(__file__).parent / "testdata" / "pages"
KINDS = {
    "lines",
    "labels",
    "extensions",
    "emails",
    "placeholders",
    "structured",
    "encoding",
    "hidden",
    "traps",
}
THRESHOLD = 0.98


@dataclass
class Score:
    """True positives, false positives and false negatives over the corpus."""

    found: int = 0
    invented: int = 0
    missed: int = 0

    @property
    def precision(self) -> float:
        return self.found / ((self.found + self.invented) or 1)

    @property
    def recall(self) -> float:
        return self.found / ((self.found + self.missed) or 1)

    def add(self, got: set, want: set) -> None:
        self.found += len(got & want)
        self.invented += len(got - want)
        self.missed += len(want - got)


def truths() -> dict[str, dict]:
    return {
        path.name.removesuffix(".truth.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(PAGES.glob("*.truth.json"))
    }


def page_contacts(name: str, truth: dict) -> tuple[set, set]:
    text = decode_page((PAGES / f"{name}.html").read_bytes(), truth.get("content_type"))
    contacts = extract_contacts(text, truth["region"], html=True)
    return (
        {(p.e164, p.extension) for p in contacts.phones},
        {e.address for e in contacts.emails},
    )


def score() -> tuple[Score, Score, dict[str, tuple[set, set, set, set]]]:
    """(phones, e-mails, per page (phones invented, missed, e-mails invented, missed))."""
    phones, emails, pages = Score(), Score(), {}
    for name, truth in truths().items():
        got_phones, got_emails = page_contacts(name, truth)
        want_phones = {(p["e164"], p["extension"]) for p in truth["phones"]}
        want_emails = set(truth["emails"])
        phones.add(got_phones, want_phones)
        emails.add(got_emails, want_emails)
        pages[name] = (
            got_phones - want_phones,
            want_phones - got_phones,
            got_emails - want_emails,
            want_emails - got_emails,
        )
    return phones, emails, pages


def test_corpus_has_forty_pages_when_counted():
    """At least 40 pages, each with its truth file, in Russian and in other languages."""
    found = truths()
    assert len(found) >= 40
    assert all((PAGES / f"{name}.html").is_file() for name in found)
    regions = {truth["region"] for truth in found.values()}
    assert "RU" in regions
    assert len(regions) >= 4


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_appears_on_two_pages_when_corpus_is_read(kind: str):
    """Each kind of fault of issue 13 is mixed into at least two pages."""
    pages = [name for name, truth in truths().items() if kind in truth["kinds"]]
    assert len(pages) >= 2, pages


def test_truth_files_name_only_known_kinds_when_read():
    """A typo in a truth file's kinds would hide a kind from the count above."""
    for name, truth in truths().items():
        assert set(truth["kinds"]) <= KINDS, name


def test_phones_scored_above_threshold_when_whole_corpus_is_extracted():
    """Precision and recall of phones (E.164 + extension) over the corpus are at least 0.98."""
    phones, _, pages = score()
    misses = {name: (p[0], p[1]) for name, p in pages.items() if p[0] or p[1]}
    assert phones.precision >= THRESHOLD, misses
    assert phones.recall >= THRESHOLD, misses


def test_emails_scored_above_threshold_when_whole_corpus_is_extracted():
    """Precision and recall of e-mails over the corpus are at least 0.98."""
    _, emails, pages = score()
    misses = {name: (p[2], p[3]) for name, p in pages.items() if p[2] or p[3]}
    assert emails.precision >= THRESHOLD, misses
    assert emails.recall >= THRESHOLD, misses


def main() -> None:
    phones, emails, pages = score()
    print(f"{len(pages)} pages")
    for label, result in (("phones", phones), ("e-mails", emails)):
        print(
            f"{label}: precision {result.precision:.3f} recall {result.recall:.3f} "
            f"({result.found} found, {result.invented} invented, {result.missed} missed)"
        )
    for name, (p_extra, p_missed, e_extra, e_missed) in pages.items():
        if p_extra or p_missed or e_extra or e_missed:
            invented, missed = p_extra | e_extra or "-", p_missed | e_missed or "-"
            print(f"  {name}: invented {invented}, missed {missed}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    main()
