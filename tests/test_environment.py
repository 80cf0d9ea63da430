"""The pip route (requirements.txt) and the conda route (environment.yml) stay one environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _requirements(name: str = "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-e"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{name} line {line!r} is not an exact pin (name==version)"
        pins[name.lower()] = version
    return pins


def test_requirements_pin_everything_exactly_and_torch_is_the_cpu_build():
    pins = _requirements()
    for needed in ["numpy", "scipy", "matplotlib", "torch", "ipywidgets", "jupyterlab",
                   "nbclient", "nbval", "pytest", "tqdm", "hypothesis", "ruff"]:
        assert needed in pins, f"{needed} missing from requirements.txt"
    assert pins["torch"] == "2.13.0"
    assert "-e .[tooling]" in (ROOT / "requirements.txt").read_text().splitlines()


def _declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


def test_declared_ranges_have_a_floor_no_ceiling_and_hold_the_pins():
    pins = {**_requirements(), **_requirements("requirements-grading.txt")}
    for group, reqs in _declared().items():
        for req in reqs:
            if req.name == "vaelab":  # an extra that includes another
                continue
            ops = {spec.operator for spec in req.specifier}
            assert ops == {">="}, (
                f"{group}: {req} must be a lower bound only (>=, tested by tests/test_install.py); "
                "an upper bound makes pip replace a student's newer release")
            assert req.name.lower() in pins, f"{group}: {req.name} has no exact pin"
            assert req.specifier.contains(pins[req.name.lower()]), (
                f"{group}: the pin {req.name}=={pins[req.name.lower()]} is outside {req}")


def test_environment_yml_installs_requirements_txt_with_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_sections == [["-r requirements.txt"]], (
        "environment.yml must install the pinned list through pip, not a second copy of it"
    )
    # No conda package may shadow a pinned pip package with another version.
    conda_names = {re.split(r"[=<>]", d)[0].lower() for d in deps if isinstance(d, str)}
    assert conda_names <= {"python", "pip"}, f"conda pins drift from requirements: {conda_names}"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    pins = _requirements()
    for name in ["numpy", "scipy", "matplotlib", "torch", "nbval", "ipywidgets"]:
        assert version(name).split("+")[0] == pins[name], f"{name} installed differs from its pin"


def test_grading_pins_are_exact_and_add_to_the_teaching_environment_without_a_conflict():
    from importlib.metadata import version

    grading, teaching = _requirements("requirements-grading.txt"), _requirements()
    assert grading["nbgrader"] == "0.9.6" and grading["otter-grader"] == "7.0.0"
    assert not set(grading) & set(teaching), "a package pinned in both files"
    for name in ["nbgrader", "otter-grader"]:
        assert version(name) == grading[name], f"{name} installed differs from its pin"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["lab", "lab-masters"])
def test_make_lab_as_root_says_the_one_thing_to_set_and_starts_once_it_is_set(tmp_path, target):
    """Jupyter refuses root without --allow-root; the target says so (before it writes or starts
    anything) and passes LAB_ARGS on. A stand-in venv records what jupyter was given."""
    venv, args, workspace = tmp_path / "venv", tmp_path / "jupyter-args", tmp_path / "ws"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "jupyter").write_text(f'#!/bin/sh\necho "$@" > {args}\n')
    for script in (venv / "bin").iterdir():
        script.chmod(0o755)
    (venv / ".installed").touch()  # newer than the requirements: nothing is installed

    def make(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", "-C", str(ROOT), target, f"VENV={venv}",
                               f"WORKSPACE={workspace}", *extra], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})

    if os.geteuid() == 0:
        refused = make()
        assert refused.returncode != 0
        assert f"make {target} LAB_ARGS=--allow-root" in refused.stderr
        assert not args.exists() and not workspace.exists()
        started = make("LAB_ARGS=--allow-root --port 8899")
    else:
        started = make("LAB_ARGS=--port 8899")
    assert started.returncode == 0, started.stderr
    folder = str(workspace) if target == "lab" else "notebooks"
    assert args.read_text().split() == ["lab", *(["--allow-root"] if os.geteuid() == 0 else []),
                                        "--port", "8899", folder]
