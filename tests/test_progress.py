"""progress_bar: off when the caller says so, and under TQDM_DISABLE whatever the caller says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vaelab.progress import progress_bar


def test_enabled_bar_is_on_without_the_environment_switch():
    # tqdm reads TQDM_DISABLE when it is imported (make test sets it), hence a fresh interpreter.
    code = "from vaelab.progress import progress_bar; print(progress_bar(range(3)).disable)"
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_caller_can_turn_the_bar_off(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with progress_bar(range(3), enabled=False) as bar:
        assert bar.disable
        assert list(bar) == [0, 1, 2]


def test_tqdm_disable_turns_off_the_notebook_bar_too(monkeypatch):
    # tqdm.notebook ignores TQDM_DISABLE by itself; the helper must not.
    from tqdm.notebook import tqdm as notebook_tqdm

    import vaelab.progress

    monkeypatch.setattr(vaelab.progress, "tqdm", notebook_tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress_bar(range(3), enabled=True) as bar:
        assert bar.disable


def test_tqdm_disable_wins_over_an_enabled_bar():
    # make test / make outputs set TQDM_DISABLE=1 so no bar lands in stored notebook outputs.
    # tqdm reads the variable when it is imported, hence a fresh interpreter.
    code = "from vaelab.progress import progress_bar; print(progress_bar(range(3)).disable)"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_enabled_must_be_a_bool():
    # "no" is truthy: the bar was shown.
    with pytest.raises(TypeError, match="progress must be True or False, got 'no'"):
        progress_bar(range(3), enabled="no")
