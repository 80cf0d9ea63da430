"""vaelab.files: the one atomic write and the one writable-destination check."""

from __future__ import annotations

import os
import stat

import pytest

from vaelab import files


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "n.ipynb"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["n.ipynb"]


def test_atomic_write_keeps_permissions_and_creates_folders(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text("old")
    path.chmod(0o640)
    files.write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    deep = tmp_path / "a" / "b" / "c.html"
    files.write_text_atomic(deep, "<html>")
    assert deep.read_text() == "<html>"
    assert stat.S_IMODE(deep.stat().st_mode) & 0o600 == 0o600


def test_check_output_dir_and_writable_file_say_what_is_wrong(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert files.check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(files.OutputPathError, match="is a file, not a folder"):
        files.check_output_dir(tmp_path / "afile")
    with pytest.raises(files.OutputPathError, match="so no folder can be made under it"):
        files.check_output_dir(tmp_path / "afile" / "sub")
    with pytest.raises(files.OutputPathError, match="is a folder; it cannot be replaced"):
        files.check_output_file(tmp_path)
    assert not (tmp_path / "new").exists()  # checking writes nothing


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), files.atomic_write(path) as fh:
        fh.write(b"half")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_text_must_be_a_str(tmp_path):
    with pytest.raises(TypeError, match="text must be a str"):
        files.write_text_atomic(tmp_path / "t.txt", None)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_file_is_refused(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    path.chmod(0o444)
    if os.access(path, os.W_OK):
        pytest.skip("root can write read-only files")
    with pytest.raises(files.OutputPathError, match="is read-only"):
        files.check_output_file(path)
