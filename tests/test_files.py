"""vaelab.files: the one atomic write and the one writable-destination check."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from vaelab import files
from vaelab.tooling import assign, bench, execute, reproduce, student


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


def test_check_destinations_refuses_a_commands_own_input_however_it_is_spelt(tmp_path):
    source = tmp_path / "nb" / "01.ipynb"
    source.parent.mkdir()
    source.write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "nb")
    for spelling in (source, tmp_path / "nb" / ".." / "nb" / "01.ipynb",
                     tmp_path / "link" / "01.ipynb"):
        with pytest.raises(files.OutputPathError, match=r"would overwrite the input .*01\.ipynb"
                                                        r".*; choose another output folder"):
            files.check_destinations([tmp_path / "out" / "a.html", spelling], [source])
    assert files.check_destinations([tmp_path / "out" / "01.ipynb"], [source]) == [
        tmp_path / "out" / "01.ipynb"]
    with pytest.raises(files.OutputPathError, match="is a folder"):
        files.check_destinations([tmp_path / "nb"], hint="choose another file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "nb"]  # nothing made



# ------------------------------------------ every command checks where it writes, before work

def notebook(path: Path) -> Path:
    """A notebook that leaves the file 'ran' beside itself when executed: proof of work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell("open('ran', 'w').close()")]), path)
    return path


REPRODUCE_SMOKE = ["--stages", "1", "--epoch-scale", "0.1", "--train-subset", "100", "--k", "2",
                   "--test-subset", "5", "--no-progress"]
# Commands that write into a folder OUT: (module, argv for OUT and a notebook).
FOLDER_COMMANDS = {
    "execute --out": (execute, lambda out, nb: ["--out", str(out), str(nb)]),
    "student --out": (student, lambda out, nb: ["--out", str(out), str(nb)]),
    "student --workspace": (student, lambda out, nb: ["--workspace", str(out), str(nb)]),
    "assign --out": (assign, lambda out, nb: ["--out", str(out), str(nb)]),
}
# Commands that write one results file (MNIST is unreachable: work would fail otherwise).
FILE_COMMANDS = {
    "bench --out": (bench, lambda out, tmp: ["--quick", "--out", str(out)]),
    "reproduce --results": (reproduce, lambda out, tmp: [
        *REPRODUCE_SMOKE, "--run-dir", str(tmp / "run"), "--results", str(out)]),
}


def refused(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert all(w in err for w in words), err
    return err


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path / "no-mnist"))


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_every_command_refuses_an_output_folder_that_is_a_file(tmp_path, capsys, command):
    module, argv = FOLDER_COMMANDS[command]
    nb = notebook(tmp_path / "src" / "01_x.ipynb")
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile", "afile is a file"),
                       (tmp_path / "afile" / "sub", "so no folder can be made under it")):
        refused(capsys, module.main(argv(out, nb)), words)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["01_x.ipynb", "afile", "src"]


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_every_command_refuses_a_results_file_that_is_a_folder(tmp_path, capsys, no_mnist,
                                                                command):
    module, argv = FILE_COMMANDS[command]
    (tmp_path / "results.json").mkdir()
    refused(capsys, module.main(argv(tmp_path / "results.json", tmp_path)),
            "results.json is a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize(("command", "where"), [
    ("execute --out", "."), ("student --out", "student"), ("student --out", "instructor"),
    ("assign --out", "student"), ("assign --out", "instructor"), ("assign --out", "otter/01_x"),
    ("assign --out", "nbgrader/source/01_x")])
def test_no_command_writes_over_its_own_inputs(tmp_path, capsys, command, where):
    module, argv = FOLDER_COMMANDS[command]
    nb = notebook(tmp_path / "out" / where / "01_x.ipynb")
    before = nb.read_bytes()
    refused(capsys, module.main(argv(tmp_path / "out", nb)), "would overwrite the input")
    assert nb.read_bytes() == before and not (nb.parent / "ran").exists()
    assert [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] == ["01_x.ipynb"]


def test_reproduce_results_never_replace_its_checkpoint(tmp_path, capsys, no_mnist):
    ckpt = tmp_path / "run" / reproduce.CHECKPOINT_NAME
    argv = [*REPRODUCE_SMOKE, "--run-dir", str(tmp_path / "run"), "--results", str(ckpt)]
    refused(capsys, reproduce.main(argv), "would overwrite the input")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [*FOLDER_COMMANDS, *FILE_COMMANDS])
def test_every_command_refuses_a_read_only_destination_before_work(tmp_path, unprivileged,
                                                                   command):
    module, argv = {**FOLDER_COMMANDS, **FILE_COMMANDS}[command]
    nb = notebook(tmp_path / "src" / "01_x.ipynb")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    args = argv(tmp_path / "ro" / "out", nb if command in FOLDER_COMMANDS else tmp_path)
    run = subprocess.run([*unprivileged, sys.executable, "-m", module.__name__, *args],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "VAELAB_DATA_DIR": str(tmp_path / "no-mnist")})
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert "not writable" in run.stderr, run.stderr
    assert list((tmp_path / "ro").iterdir()) == [] and not (tmp_path / "src" / "ran").exists()
