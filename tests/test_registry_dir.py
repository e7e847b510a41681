"""A registry in several files: `--config DIR` reads every `*.yaml` in it as one registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import HttpServer, page

from monitor.cli import main
from monitor.loader import RegistryInvalid, load_registry, registry_stamp

BANK = """\
# The bank's contacts.
organizations:
  - id: ozon-bank
    channels:
      - {id: bank-hotline, kind: phone, phone: "8 800 555-89-82"}
"""
MARKETPLACE = """\
version: 1
defaults:
  region: RU
organizations:
  - id: ozon
    channels:
      - {id: marketplace-hotline, kind: phone, phone: "+7 (495) 232-10-00"}
"""


def registry_dir(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_files_merged_in_name_order_when_config_is_a_directory(tmp_path: Path):
    """Organisations of every file in name order; defaults from the one file that has them."""
    folder = registry_dir(tmp_path, **{"10-marketplace": MARKETPLACE, "20-bank": BANK})
    (folder / "notes.txt").write_text("not a registry file")
    registry = load_registry(folder)
    assert [org.id for org in registry.organizations] == ["ozon", "ozon-bank"]
    assert registry.defaults.region == "RU"


def test_yml_files_read_too_when_a_maintainer_names_them_so(tmp_path: Path):
    """`bank.yml` beside `marketplace.yaml` is part of the registry, never silently left out."""
    folder = registry_dir(tmp_path, marketplace=MARKETPLACE)
    (folder / "bank.yml").write_text(BANK)
    registry = load_registry(folder)
    assert [org.id for org in registry.organizations] == ["ozon-bank", "ozon"]
    before = registry_stamp(folder)
    (folder / "bank.yml").write_text(BANK.replace("555-89-82", "555-89-83"))
    assert registry_stamp(folder) != before


def test_errors_of_two_files_reported_together_when_both_are_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Each error names its own file and line, in one run."""
    folder = registry_dir(
        tmp_path,
        a=MARKETPLACE.replace('"+7 (495) 232-10-00"', '"+7 (495) 232"'),
        b=BANK.replace("kind: phone", "kind: fax"),
    )
    assert main(["validate", "--config", str(folder)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{folder}/a.yaml:7: organizations[ozon].channels[marketplace-hotline].phone: "
        "'+7 (495) 232' is not a valid number for region RU",
        f"{folder}/b.yaml:5: organizations[ozon-bank].channels[bank-hotline].kind: "
        "unknown kind 'fax': use one of 'phone', 'email', 'web', 'chat', 'social', 'tcp'",
    ]


def test_error_names_both_files_when_an_organization_is_in_two(tmp_path: Path):
    """The same organisation id in two files is an error on the second, naming the first."""
    folder = registry_dir(tmp_path, a=MARKETPLACE, b=BANK.replace("ozon-bank", "ozon"))
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(folder)
    assert [str(i) for i in raised.value.issues] == [
        f"{folder}/b.yaml:3: organizations[ozon].id: duplicate id 'ozon': also in {folder}/a.yaml"
    ]


def test_error_when_two_files_have_defaults(tmp_path: Path):
    """`defaults` belong in one file only."""
    folder = registry_dir(tmp_path, a=MARKETPLACE, b="defaults: {timeout: 5s}\n" + BANK)
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(folder)
    assert [str(i) for i in raised.value.issues] == [
        f"{folder}/b.yaml:1: defaults: defaults are already in {folder}/a.yaml"
    ]


def test_error_when_no_file_gives_the_version(tmp_path: Path):
    """Some file must say `version: 1`."""
    folder = registry_dir(tmp_path, b=BANK)
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(folder)
    assert [str(i) for i in raised.value.issues] == [f"{folder}: no file says version: 1"]


def test_error_when_directory_has_no_registry_files(tmp_path: Path):
    """An empty directory is not an empty registry."""
    folder = registry_dir(tmp_path)
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(folder)
    assert [str(i) for i in raised.value.issues] == [
        f"{folder}: no *.yaml or *.yml files in directory"
    ]


def test_stamp_changes_when_a_file_is_added_changed_or_removed(tmp_path: Path):
    """The reload watch sees every kind of change to the directory."""
    folder = registry_dir(tmp_path, a=MARKETPLACE)
    stamps = [registry_stamp(folder)]
    (folder / "b.yaml").write_text(BANK)
    stamps.append(registry_stamp(folder))
    (folder / "b.yaml").write_text(BANK + "# more\n")
    stamps.append(registry_stamp(folder))
    (folder / "b.yaml").unlink()
    stamps.append(registry_stamp(folder))
    assert len(set(stamps[:3])) == 3
    assert stamps[3] == stamps[0]


def test_daemon_reloads_when_a_file_is_added_to_the_directory(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """A new file's channels are probed; a broken new file keeps the last good registry."""
    http_server.routes["/"] = page("ok")
    site = {"id": "a", "kind": "web", "url": http_server.url("/")}
    base = {
        "version": 1,
        "defaults": {"interval": "1s", "timeout": "1s"},
        "organizations": [{"id": "acme", "channels": [site]}],
    }
    folder = registry_dir(tmp_path, a=yaml.safe_dump(base))
    daemon = start_daemon(folder)
    wait_for(lambda: daemon.value("contact_probe_success", channel="a") == 1, "a probed")

    other = {"organizations": [{"id": "other", "channels": [{**site, "id": "b"}]}]}
    (folder / "b.yaml").write_text(yaml.safe_dump(other))
    wait_for(lambda: daemon.value("contact_probe_success", channel="b") == 1, "b added")

    (folder / "c.yaml").write_text("organizations: [{id: acme}]\n")  # acme is in a.yaml
    wait_for(lambda: daemon.value("contact_config_last_reload_successful") == 0, "reload fails")
    assert "duplicate id 'acme'" in daemon.logs()
    assert daemon.value("contact_channel_info", channel="b") == 1


SHIPPED = yaml.safe_load((Path(__file__).parent.parent / "config" / "channels.yaml").read_text())
anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(["version", "defaults", "organizations", "extra"]), value=anything)
def test_any_split_is_loaded_or_explained_when_a_file_holds_anything(
    tmp_path: Path, key: str, value: Any
):
    """The shipped registry split in two files, and a third holding any one key: a registry,
    or errors that each name a file of the directory, one line each."""
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    head = {"version": 1, "defaults": SHIPPED["defaults"]}
    (folder / "a.yaml").write_text(yaml.safe_dump(head))
    (folder / "b.yaml").write_text(yaml.safe_dump({"organizations": SHIPPED["organizations"]}))
    (folder / "c.yaml").write_text(yaml.safe_dump({key: value}, allow_unicode=True))
    try:
        load_registry(folder)
        return
    except RegistryInvalid as invalid:
        issues = invalid.issues
    assert issues
    for issue in issues:
        assert str(issue).startswith(str(folder))
        assert "\n" not in str(issue)
