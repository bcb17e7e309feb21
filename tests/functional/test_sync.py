"""``stepburst sync``: a directory to and from S3, unchanged files skipped, zips on the way."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from stepburst.cli import main
from stepburst.errors import InvalidInputError
from stepburst.syncing import sync_down, sync_up

pytestmark = pytest.mark.functional

BUCKET = "stepburst-sync-bucket"


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _keys(s3: Any, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        entry["Key"][len(prefix) :]: s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        for entry in listed
    }


def test_up_copies_everything_once_then_only_what_changed(s3: Any, tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "deep/b.bin": os.urandom(9_000_000), "deep/c.txt": b"gamma"}
    _tree(tmp_path, files)
    first = sync_up(tmp_path, BUCKET, "up/", threads=4)
    assert sorted(first.copied) == ["up/a.txt", "up/deep/b.bin", "up/deep/c.txt"]
    assert _keys(s3, "up/") == files

    (tmp_path / "deep" / "c.txt").write_bytes(b"GAMMA")  # same size, new content
    (tmp_path / "new.txt").write_bytes(b"new")
    second = sync_up(tmp_path, BUCKET, "up/", threads=4)
    assert sorted(second.copied) == ["up/deep/c.txt", "up/new.txt"]
    assert sorted(second.skipped) == ["up/a.txt", "up/deep/b.bin"]
    assert _keys(s3, "up/")["deep/c.txt"] == b"GAMMA"


def test_zip_each_uploads_one_archive_per_match_and_skips_unchanged(
    s3: Any, tmp_path: Path
) -> None:
    _tree(
        tmp_path,
        {
            "Dam001/Period01/flows.csv": b"1,2,3\n",
            "Dam001/Period01/levels.csv": b"4,5\n",
            "Dam001/Period02/flows.csv": b"6\n",
            "Dam002/Period01/flows.csv": b"7\n",
            "faultfiles/f1.txt": b"fault",
        },
    )
    first = sync_up(tmp_path, BUCKET, "input/", zip_each="Dam*/Period*")
    assert sorted(first.copied) == [
        "input/Dam001/Period01.zip",
        "input/Dam001/Period02.zip",
        "input/Dam002/Period01.zip",
    ]
    stored = _keys(s3, "input/")
    with zipfile.ZipFile(io.BytesIO(stored["Dam001/Period01.zip"])) as archive:
        assert sorted(archive.namelist()) == ["flows.csv", "levels.csv"]
        assert archive.read("levels.csv") == b"4,5\n"
    # Zipped again with the same content: the same bytes, so nothing is uploaded.
    again = sync_up(tmp_path, BUCKET, "input/", zip_each="Dam*/Period*")
    assert again.copied == []
    assert len(again.skipped) == 3
    with pytest.raises(InvalidInputError, match=r"nothing under .* matches 'Lake\*'"):
        sync_up(tmp_path, BUCKET, "input/", zip_each="Lake*")


def test_down_skips_unchanged_and_unzips(s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "source"
    _tree(source, {"Dam001/Period01/out.txt": b"result one", "Dam001/Period02/out.txt": b"two"})
    sync_up(source, BUCKET, "outputs/", zip_each="Dam*/Period*")
    s3.put_object(Bucket=BUCKET, Key="outputs/summary.json", Body=b'{"ok": true}')

    target = tmp_path / "target"
    first = sync_down(BUCKET, "outputs/", target, unzip=True)
    assert len(first.copied) == 3
    assert (target / "Dam001" / "Period01" / "out.txt").read_bytes() == b"result one"
    assert (target / "Dam001" / "Period02" / "out.txt").read_bytes() == b"two"
    assert (target / "summary.json").read_bytes() == b'{"ok": true}'
    second = sync_down(BUCKET, "outputs/", target)
    assert second.copied == []
    assert len(second.skipped) == 3


def test_the_cli_names_what_is_wrong(s3: Any, tmp_path: Path, capsys: Any) -> None:
    assert main(["sync", str(tmp_path), str(tmp_path)]) == 2
    assert "give one local directory and one s3://bucket/prefix" in capsys.readouterr().err
    assert main(["sync", "s3://b/p/", str(tmp_path), "--zip-each", "x*"]) == 2
    assert "--zip-each: zips what goes up" in capsys.readouterr().err
    _tree(tmp_path / "up", {"x.txt": b"x"})
    assert main(["sync", str(tmp_path / "up"), f"s3://{BUCKET}/cli/", "--json"]) == 0
    assert '"copied": 1' in capsys.readouterr().out
