"""The package as a student installs it: the built wheel, what it holds, that building and
installing leave the checkout alone, that it runs on the lowest versions pyproject.toml
declares, and that installing it beside other releases of its dependencies changes none.

torch is the one floor not installed here: torch 2.4 (the declared floor, the first with
fused Adam on the CPU) exists on PyPI only as a CUDA build of several GB. The lowest-versions
environment takes LOWEST_CPU_TORCH, the CPU build requirements.txt pins; the floor itself and
a CUDA build were run by hand (see the README's "Colab, JupyterHub, VS Code").

Cost on CI's 2 cores: the wheel builds in seconds; the lowest-versions environment downloads
about 130 MB from PyPI (less with pip's cache), installs torch from the local file and runs
notebooks 01-03 and one training epoch of 04: a few minutes (test_lowest_versions...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import nbformat
import pytest
from helpers import solution_lines
from nbformat.v4 import new_code_cell
from packaging.requirements import Requirement
from packaging.version import Version

from vaelab.tooling.setup_cell import setup_cell

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LOWEST_CPU_TORCH = "2.13.0"
# A student's environment, not this machine's: no pip configuration file (this machine's
# caps torch at the releases it carries on disk), no index unless a test needs one.
CLEAN_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": None,
             "PIP_CONSTRAINT": None}


def _run(cmd: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    command = " ".join(map(str, cmd))
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _env(**extra: str | None) -> dict[str, str]:
    """This process's environment without its vaelab checkout on the path; ``extra`` set
    (a None value removes the variable)."""
    env = {**os.environ, "PYTHONPATH": None, **extra}
    return {k: v for k, v in env.items() if v is not None}


def _build_leftovers() -> dict[str, float]:
    """setuptools' working folders in the checkout (what a build may leave), with mtimes."""
    found = [*ROOT.glob("src/*.egg-info"), *ROOT.glob("build/lib*"), *ROOT.glob("build/bdist.*")]
    return {str(p.relative_to(ROOT)): p.stat().st_mtime for p in found}


def _venv(path: Path, with_pip: bool = False) -> Path:
    _run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)])
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    before = _build_leftovers()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
         env=_env())
    assert _build_leftovers() == before, "building the wheel wrote into the checkout"
    (built,) = out.glob("vaelab-*.whl")
    return built


def _requires(wheel: Path, extra: str | None = None) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(zf.read(meta).decode())
    reqs = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    env = {"extra": extra or ""}
    return [r for r in reqs if (r.marker is None and extra is None)
            or (r.marker is not None and extra is not None and r.marker.evaluate(env))]


def test_wheel_ships_the_student_notebooks_and_no_master_or_solution(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        notebooks = {n: zf.read(n).decode() for n in names if n.endswith(".ipynb")}
    assert sorted(notebooks) == [f"vaelab/student_notebooks/{m.name}" for m in MASTERS]
    for master in MASTERS:
        text = notebooks[f"vaelab/student_notebooks/{master.name}"]
        shipped = ROOT / "src" / "vaelab" / "student_notebooks" / master.name
        assert text == shipped.read_text(encoding="utf-8")
        leaked = sorted(line for line in solution_lines(master) if line in text)
        assert not leaked and "### BEGIN SOLUTION" not in text, (master.name, leaked)
    assert not any(n.startswith(("notebooks/", "tests/")) for n in names)
    # The tooling is in the wheel, its dependencies are an extra a student does not install.
    assert "vaelab/tooling/student.py" in names
    assert {r.name for r in _requires(wheel)} == {
        "numpy", "scipy", "matplotlib", "pillow", "torch", "ipywidgets", "tqdm"}
    assert {r.name for r in _requires(wheel, "tooling")} >= {"nbformat", "nbclient", "nbconvert"}


def test_editable_install_writes_nothing_into_the_checkout(tmp_path):
    python = _venv(tmp_path / "venv")
    before = _build_leftovers()
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "-e", str(ROOT)], env=_env())
    assert _build_leftovers() == before, "pip install -e wrote into the checkout"
    where = _run([str(python), "-c", "import vaelab; print(vaelab.__file__)"], cwd=tmp_path,
                 env=_env())
    assert Path(where.stdout.strip()) == ROOT / "src" / "vaelab" / "__init__.py"


def _stub(site: Path, name: str, version: str) -> None:
    """An installed distribution as pip sees one (metadata only: pip is run with --dry-run)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def _dry_run(wheel: Path, tmp_path: Path, installed: dict[str, str]) -> subprocess.CompletedProcess:
    python = _venv(tmp_path / "venv")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib]).stdout.strip())
    for name, version in installed.items():
        _stub(site, name, version)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run",
           "--report", str(report), "--no-index", str(wheel)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(**CLEAN_PIP))
    done.report = json.loads(report.read_text()) if report.exists() else None
    return done


# Installed releases of each dependency: the newest torch on PyPI when this was written (newer
# than any pin here) with today's pins, and a hosted notebook service's stack (torch 2.5.1 CUDA,
# NumPy 1.26, ipywidgets 7.7). No index is given: pip may install vaelab and nothing else.
ENVIRONMENTS = {
    "newer torch": {"torch": "2.15.0", "numpy": "2.4.6", "scipy": "1.17.1",
                    "matplotlib": "3.11.2", "pillow": "13.0.0", "ipywidgets": "8.1.9",
                    "tqdm": "4.70.1"},
    "hosted service": {"torch": "2.5.1+cu124", "numpy": "1.26.4", "scipy": "1.13.1",
                       "matplotlib": "3.10.0", "pillow": "11.0.0", "ipywidgets": "7.7.1",
                       "tqdm": "4.66.5"},
}


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_installing_beside_other_releases_changes_no_installed_package(wheel, tmp_path, name):
    installed = ENVIRONMENTS[name]
    assert {r.name for r in _requires(wheel)} <= set(installed), "a dependency is not stubbed"
    done = _dry_run(wheel, tmp_path, installed)
    assert done.returncode == 0, done.stderr
    assert [item["metadata"]["name"] for item in done.report["install"]] == ["vaelab"]


def test_a_torch_below_the_floor_would_be_replaced(wheel, tmp_path):
    # The same check fails where a dependency is outside the range: the test can tell.
    done = _dry_run(wheel, tmp_path, {**ENVIRONMENTS["newer torch"], "torch": "2.3.1"})
    assert done.returncode != 0 and "torch>=2.4" in done.stderr.replace(" ", "")


def _floors(reqs: list[Requirement]) -> dict[str, str]:
    floors = {}
    for req in reqs:
        (spec,) = [s for s in req.specifier if s.operator == ">="]
        floors[req.name] = spec.version
    return floors


def _one_epoch_of_04(tmp_path: Path) -> Path:
    """Notebook 04 up to its training cell, trained for one epoch, with a check of the loss."""
    nb = nbformat.read(ROOT / "notebooks" / "04_mnist_vae.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and "train_or_load(" in c.source)
    nb.cells = [*nb.cells[:at],
                new_code_cell("training.NOTEBOOK_TRAINING = {**training.NOTEBOOK_TRAINING, "
                              "'epochs': 1}"),
                nb.cells[at],
                new_code_cell("import math\nassert len(history) == 1 and not reused\n"
                              "assert math.isfinite(history[0]['loss']), history")]
    path = tmp_path / "04_mnist_vae_one_epoch.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_lowest_versions_run_the_notebooks(wheel, tmp_path):
    core, tooling = _floors(_requires(wheel)), _floors(_requires(wheel, "tooling"))
    lowest = {**core, **tooling, "torch": LOWEST_CPU_TORCH}
    python = _venv(tmp_path / "lowest", with_pip=True)
    # Everything the wheel needs, at the lowest versions (binary wheels, as a student gets).
    _run([str(python), "-m", "pip", "install", "-q", "--prefer-binary",
          *[f"{name}=={version}" for name, version in lowest.items()]], timeout=1200, env=_env())
    versions = json.loads(_run([str(python), "-c", (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{n: m.version(n) for n in {sorted(lowest)!r}}}))")]).stdout)
    assert {n: Version(Version(v).base_version) for n, v in versions.items()} == {
        n: Version(v) for n, v in lowest.items()}, versions
    freeze = [str(python), "-m", "pip", "freeze", "--all"]
    before = set(_run(freeze).stdout.splitlines())

    # The setup cell installs vaelab (missing here) from a wheel, as on a hub, and is then
    # silent; pip adds vaelab and changes nothing else.
    cell = setup_cell(str(wheel))
    first = _run([str(python), "-c", cell], cwd=tmp_path, env=_env(**CLEAN_PIP))
    after = set(_run(freeze).stdout.splitlines())
    assert before <= after and [a.split(" @ ")[0] for a in after - before] == ["vaelab"], (
        sorted(after ^ before))
    again = _run([str(python), "-c", cell], cwd=tmp_path, env=_env())
    assert (again.stdout, again.stderr) == ("", ""), first

    out = tmp_path / "run"
    run = _run([str(python), "-m", "vaelab.tooling.execute", "--out", str(out),
                *[str(m) for m in MASTERS[:3]], str(_one_epoch_of_04(tmp_path))],
               timeout=1500, cwd=tmp_path,
               env=_env(TQDM_DISABLE="1", VAELAB_TRAIN_FRESH="1",
                        VAELAB_CHECKPOINT_DIR=str(tmp_path / "checkpoints")))
    ran = [line for line in run.stdout.splitlines() if re.match(r"(ok|FAIL)\s", line)]
    assert len(ran) == 4 and all(line.startswith("ok") for line in ran), run.stdout
