"""Any registry file gives a valid registry or precise errors: never a traceback."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli import main
from monitor.loader import RegistryInvalid, load_registry

SHIPPED = yaml.safe_load((Path(__file__).parent.parent / "config" / "channels.yaml").read_text())
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def loads_or_explains(path: Path) -> None:
    """The property: a Registry, or RegistryInvalid whose every issue reads as one line."""
    try:
        load_registry(path)
        return
    except RegistryInvalid as invalid:
        issues = invalid.issues
    assert issues
    for issue in issues:
        line = str(issue)
        assert line.startswith(str(path))
        assert "\n" not in line


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text_is_loaded_or_explained_when_given_as_registry(tmp_path: Path, text: str):
    """Arbitrary text (YAML or not)."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    loads_or_explains(path)


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes_are_loaded_or_explained_when_given_as_registry(tmp_path: Path, data: bytes):
    """Arbitrary bytes, binary garbage included."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    loads_or_explains(path)


@FUZZ
@given(doc=values)
def test_any_structure_is_loaded_or_explained_when_dumped_as_yaml(tmp_path: Path, doc: Any):
    """Arbitrary nested mappings, lists and scalars."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    loads_or_explains(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


SHIPPED_PATHS = _paths(SHIPPED)


@FUZZ
@given(where=st.sampled_from(SHIPPED_PATHS), value=values)
def test_shipped_registry_with_one_value_replaced_is_loaded_or_explained(
    tmp_path: Path, where: tuple[Any, ...], value: Any
):
    """The real registry with any one value replaced by anything."""
    doc = copy.deepcopy(SHIPPED)
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    loads_or_explains(path)


def test_50_mb_file_rejected_when_far_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A 50 MB registry is refused by size, before any parsing."""
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"version: 1\n" + b"# padding\n" * 5_000_000)
    assert main(["validate", "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"{path}: file is larger than 5 MiB"
