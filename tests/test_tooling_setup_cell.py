"""Every notebook's first code cell is the setup cell, from the one install source."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vaelab.tooling import setup_cell as sc

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _first_code(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_setup_cell_from_pyproject(path):
    expected = sc.setup_cell(sc.course_source(ROOT / "pyproject.toml"))
    assert _first_code(nbformat.read(path, as_version=4)).source == expected, (
        f"{path.name}: the first code cell is not the setup cell of pyproject.toml's "
        "[tool.vaelab] install; run `make setup-cells` (edit the template in "
        "src/vaelab/tooling/setup_cell.py, not the notebooks)")


def test_setup_cell_is_silent_where_vaelab_is_installed(tmp_path):
    code = _first_code(nbformat.read(NOTEBOOKS[0], as_version=4)).source
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PIP_NO_INDEX": "1"}
    done = subprocess.run([sys.executable, "-c", code + "\nprint(type(rng).__name__)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("Generator\n", "")


def test_setup_cell_installs_from_the_source_only_where_vaelab_is_missing(tmp_path):
    # python -S with this environment's site-packages on the path but its .pth files not
    # run: torch and NumPy import, vaelab (an editable install) does not. "pip" is a stand-in
    # that records its arguments and "installs" vaelab into the user site-packages (as pip
    # does where it cannot write to the environment), which the cell then adds to the path.
    user_base, fake = tmp_path / "user", tmp_path / "fake"
    (fake / "pip").mkdir(parents=True)
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text(
        "import pathlib, site, sys\n"
        "pathlib.Path(sys.argv[0]).parent.with_name('args').write_text(' '.join(sys.argv[1:]))\n"
        "user = pathlib.Path(site.getusersitepackages()); user.mkdir(parents=True)\n"
        f"(user / 'vaelab.pth').write_text({str(ROOT / 'src')!r})\n")
    code = sc.setup_cell("vaelab @ https://example.org/vaelab.whl")
    prelude = f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
    env = {**os.environ, "PYTHONPATH": str(fake), "PYTHONUSERBASE": str(user_base)}
    done = subprocess.run([sys.executable, "-S", "-c", prelude + code + "\nprint(rng)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (fake / "args").read_text() == "install -q vaelab @ https://example.org/vaelab.whl"
    assert "Generator" in done.stdout


def test_template_takes_one_requirement_on_one_line():
    cell = sc.setup_cell("vaelab @ git+https://example.org/course/vaelab@v1")
    assert '"vaelab @ git+https://example.org/course/vaelab@v1"' in cell
    compile(cell, "<setup cell>", "exec")
    for bad in ["", "  ", "a\nb", None]:
        with pytest.raises(sc.SetupCellError, match="one pip requirement"):
            sc.setup_cell(bad)


def test_course_source_reads_pyproject_and_says_what_is_missing(tmp_path):
    good = tmp_path / "pyproject.toml"
    good.write_text('[tool.vaelab]\ninstall = "vaelab @ git+https://example.org/c/vaelab"\n')
    assert sc.course_source(good) == "vaelab @ git+https://example.org/c/vaelab"
    empty = tmp_path / "empty.toml"
    empty.write_text("[project]\nname = 'x'\n")
    with pytest.raises(sc.SetupCellError, match=r"no \[tool.vaelab\] install"):
        sc.course_source(empty)
    with pytest.raises(sc.SetupCellError, match="cannot read it"):
        sc.course_source(tmp_path / "missing.toml")


def test_with_setup_cell_replaces_a_seeding_cell_and_inserts_before_other_code():
    seeding = new_notebook(cells=[new_markdown_cell("# T"),
                                  new_code_cell("from vaelab.seeding import seed_everything\n"
                                                "rng = seed_everything(0)", execution_count=1),
                                  new_code_cell("x = 1")])
    out = sc.with_setup_cell(seeding, "vaelab")
    assert len(out.cells) == 3 and out.cells[1].execution_count == 1
    assert out.cells[1].source == sc.setup_cell("vaelab")
    other = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell("x = 1")])
    out = sc.with_setup_cell(other, "vaelab")
    assert [c.source for c in out.cells[1:]] == [sc.setup_cell("vaelab"), "x = 1"]


def test_command_rewrites_only_what_changed_and_refuses_a_bad_config(tmp_path, capsys):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.vaelab]\ninstall = "vaelab @ git+https://example.org/c/v"\n')
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("rng = seed_everything(0)")]), path)
    assert sc.main(["--pyproject", str(pyproject), str(path)]) == 0
    assert "example.org/c/v" in path.read_text()
    assert sc.main(["--pyproject", str(pyproject), str(path)]) == 0
    assert "up to date" in capsys.readouterr().out
    before = path.read_bytes()
    pyproject.write_text("[tool.vaelab]\n")
    assert sc.main(["--pyproject", str(pyproject), str(path)]) == 2
    assert "nothing written" in capsys.readouterr().err and path.read_bytes() == before
