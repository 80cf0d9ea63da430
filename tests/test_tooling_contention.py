"""vaelab.tooling.contention: policies by name, clean child environments, processes cleaned up."""

from __future__ import annotations

import subprocess

import pytest

from vaelab import runtime
from vaelab.tooling import contention


def test_policies_by_name_and_spin_counts():
    assert contention.policy_env("one-thread") == {"OMP_NUM_THREADS": "1"}
    threads = runtime.thread_policy()["OMP_NUM_THREADS"]
    assert contention.policy_env("fixed") == {"OMP_NUM_THREADS": threads}
    assert contention.policy_env("spin=2500") == {"OMP_NUM_THREADS": threads,
                                                  "GOMP_SPINCOUNT": "2500"}
    assert contention.policy_env("today") == {"VAELAB_THREAD_POLICY": "off",
                                              "OMP_NUM_THREADS": "2"}
    for bad in ("spin=", "spin=-3", "fast"):
        with pytest.raises(ValueError, match="spin=N"):
            contention.policy_env(bad)


def test_a_child_gets_the_policy_and_none_of_this_process_thread_settings(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("VAELAB_THREAD_POLICY", "off")
    monkeypatch.setenv("KEEP_ME", "1")
    env = contention._child_env("vaelab")
    assert env["KEEP_ME"] == "1"
    assert not {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "VAELAB_THREAD_POLICY"} & set(env)
    assert contention._child_env("spin=10")["GOMP_SPINCOUNT"] == "10"


def test_bad_arguments_exit_2_before_measuring(tmp_path, capsys):
    for argv in (["--policies", "fast"], ["--rounds", "0"]):
        with pytest.raises(SystemExit) as exc:
            contention.main(argv)
        assert exc.value.code == 2
    assert contention.main(["--out", str(tmp_path)]) == 2  # a folder, not a file
    err = capsys.readouterr().err
    assert "is a folder" in err and "round 1/" not in err  # nothing was measured


@pytest.mark.slow
def test_copies_and_busy_loops_run_together_and_leave_nothing_behind(monkeypatch):
    started = []
    popen = subprocess.Popen

    def spy(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", spy)
    seconds = contention.epoch_seconds("one-thread", copies=2, busy_loops=1, images=256,
                                       epochs=1)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert len(started) == 3 and all(p.poll() is not None for p in started)
    measured = contention.compare(["one-thread"], rounds=2, images=256, epochs=1,
                                  settings={"alone": (1, 0)}, log=lambda msg: None)
    assert len(measured["one-thread"]["alone"]) == 2
    assert contention.table(measured).splitlines()[1].startswith("one-thread")
