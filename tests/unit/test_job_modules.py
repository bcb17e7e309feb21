"""A job's ``module:function`` loaded from its jobs directory's file, not from ``sys.path``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from stepburst.records import JOB_MODULES_PREFIX, TransformLoadError, import_job_function

pytestmark = pytest.mark.unit

MODULE = """
from __future__ import annotations

import msgspec

LABEL = {label!r}


class Row(msgspec.Struct):
    name: str
    count: int


def label(item: str, params: dict[str, str]) -> str:
    return LABEL


def decode(text: bytes) -> Row:
    return msgspec.json.decode(text, type=Row)
"""


@pytest.fixture(autouse=True)
def _forget_job_modules() -> Iterator[None]:
    yield
    for name in [name for name in sys.modules if name.startswith(JOB_MODULES_PREFIX)]:
        del sys.modules[name]
    sys.modules.pop("probe_module", None)


def jobs_dir(tmp_path: Path, label: str) -> Path:
    directory = tmp_path / label
    directory.mkdir()
    (directory / "probe_module.py").write_text(MODULE.format(label=label), encoding="utf-8")
    return directory


def test_two_jobs_dirs_with_a_module_of_the_same_name_each_give_their_own(tmp_path: Path) -> None:
    first = import_job_function("probe_module:label", jobs_dir(tmp_path, "first"))
    second = import_job_function("probe_module:label", jobs_dir(tmp_path, "second"))

    assert first("x", {}) == "first"
    assert second("x", {}) == "second"
    assert first.__module__ != second.__module__
    assert "probe_module" not in sys.modules  # nothing answers a plain import by that name
    # Loaded once per directory, as an import would be.
    assert import_job_function("probe_module:label", tmp_path / "first") is first


def test_a_module_loaded_by_file_resolves_its_type_hints(tmp_path: Path) -> None:
    decode = import_job_function("probe_module:decode", jobs_dir(tmp_path, "typed"))

    row = decode(json.dumps({"name": "a", "count": 2}).encode())
    assert (row.name, row.count) == ("a", 2)
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"name": "a", "count": "two"}')


def test_a_jobs_dir_on_the_path_is_imported_by_name_as_where_the_job_code_is_packaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jobs layer in /opt/python on Lambda, /app/jobs in the worker image.
    directory = jobs_dir(tmp_path, "layer")
    monkeypatch.syspath_prepend(str(directory))

    function = import_job_function("probe_module:label", directory)

    assert function.__module__ == "probe_module"
    assert sys.modules["probe_module"].label is function


def test_a_package_of_the_jobs_dir_and_its_submodule(tmp_path: Path) -> None:
    package = tmp_path / "jobs" / "probe_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "steps.py").write_text("def step(item, params):\n    return item * 2\n")

    step = import_job_function("probe_package.steps:step", tmp_path / "jobs")

    assert step("ab", {}) == "abab"


def test_a_module_that_is_no_file_of_the_jobs_dir_is_imported_by_name(tmp_path: Path) -> None:
    assert import_job_function("json:dumps", tmp_path) is json.dumps


def test_a_missing_function_is_named_with_the_jobs_reference(tmp_path: Path) -> None:
    with pytest.raises(TransformLoadError) as raised:
        import_job_function("probe_module:nothing", jobs_dir(tmp_path, "missing"))

    assert str(raised.value) == (
        "probe_module:nothing: module 'probe_module' has no function 'nothing'"
    )


def test_a_module_that_fails_to_import_is_named_and_not_left_half_loaded(tmp_path: Path) -> None:
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "broken_module.py").write_text("raise RuntimeError('no config')\n")

    with pytest.raises(TransformLoadError) as raised:
        import_job_function("broken_module:run", directory)

    assert str(raised.value) == (
        "broken_module:run: module 'broken_module' failed to import: RuntimeError: no config"
    )
    assert not [name for name in sys.modules if name.startswith(JOB_MODULES_PREFIX)]
