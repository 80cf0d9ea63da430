"""vaelab.runtime: the cores a process may use, the policy, and that a user's choice survives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import mnist_like, small_model, synthetic_images
from nbformat.v4 import new_code_cell, new_notebook

from vaelab import runtime
from vaelab.runtime import apply_thread_policy, cgroup_cpu_limit, thread_policy, usable_cores
from vaelab.seeding import seed_everything
from vaelab.tooling.execute import make_client
from vaelab.training import train

NOTEBOOKS = sorted(Path(__file__).resolve().parents[1].glob("notebooks/[0-9][0-9]_*.ipynb"))
POLICY_NAMES = {name for choice in runtime.USER_CHOICE.values() for name in choice}


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_quota_is_the_smallest_along_the_path(tmp_path):
    root = _tree(tmp_path / "cg", {"cpu.max": "max 100000\n",
                                   "pod/cpu.max": "150000 100000\n",
                                   "pod/kernel/cpu.max": "max 100000\n"})
    proc = _tree(tmp_path, {"cgroup": "0::/pod/kernel\n"}) / "cgroup"
    assert cgroup_cpu_limit(root, proc) == 1.5


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    root = _tree(tmp_path / "cg", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                   "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
                                   "cpu,cpuacct/job/cpu.cfs_quota_us": "50000\n",
                                   "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"})
    proc = _tree(tmp_path, {"cgroup": "5:memory:/job\n4:cpu,cpuacct:/job\n0::/\n"}) / "cgroup"
    assert cgroup_cpu_limit(root, proc) == 0.5
    (proc).write_text("4:cpu,cpuacct:/\n")
    assert cgroup_cpu_limit(root, proc) is None


def test_a_host_path_the_container_cannot_see_reads_the_container_root(tmp_path):
    root = _tree(tmp_path / "cg", {"cpu.max": "200000 100000\n"})
    proc = _tree(tmp_path, {"cgroup": "0::/kubepods/pod123/abc\n"}) / "cgroup"
    assert cgroup_cpu_limit(root, proc) == 2.0
    assert cgroup_cpu_limit(root, tmp_path / "no-such-file") is None  # not Linux


@pytest.mark.parametrize(("affinity", "quota", "cores"),
                         [(64, 1.0, 1), (64, 0.5, 1), (2, 1.5, 1), (2, None, 2), (8, 3.7, 3)])
def test_usable_cores_is_the_affinity_capped_by_the_quota(monkeypatch, affinity, quota, cores):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda: quota)
    assert usable_cores() == cores


def test_policy_threads_are_the_cores_up_to_max_threads():
    assert thread_policy(1)["OMP_NUM_THREADS"] == "1"
    assert thread_policy(64)["OMP_NUM_THREADS"] == str(runtime.MAX_THREADS)
    assert thread_policy(2) == {"OMP_NUM_THREADS": "2", "GOMP_SPINCOUNT": str(runtime.SPIN_COUNT),
                                "MKL_CBWR": "AUTO,STRICT"}


@pytest.fixture
def fresh(monkeypatch):
    """This process as if torch had not loaded yet; share_cores' state restored afterwards."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(runtime, "_sharing", runtime._sharing)


def test_before_torch_loads_only_what_the_user_left_unset_is_set(fresh):
    env = {"OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "3"}
    assert apply_thread_policy(env) == {"MKL_CBWR": "AUTO,STRICT"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "3", "MKL_CBWR": "AUTO,STRICT",
                   runtime.MARK: "MKL_CBWR=AUTO,STRICT"}
    env = {"VAELAB_THREAD_POLICY": "off"}
    assert apply_thread_policy(env) == {} and env == {"VAELAB_THREAD_POLICY": "off"}


def test_others_running_is_the_runnable_count_less_this_process_running_threads(tmp_path):
    loadavg = _tree(tmp_path, {"loadavg": "2.10 1.50 1.00 5/412 9876\n"}) / "loadavg"
    tasks = _tree(tmp_path / "task", {"1/stat": "1 (python) R 0 1", "2/stat": "2 (a) b) S 0 1",
                                      "3/stat": "3 (omp) R 0 1", "4/stat": "4 () name) R 0 1"})
    assert runtime.others_running(loadavg, tasks) == 2
    assert runtime.others_running(tmp_path / "missing", tasks) is None


@pytest.fixture
def sharing(monkeypatch):
    """share_cores owning the thread count on a 2-core machine; torch's count restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(runtime, "_sharing", {"policy": 2, "set": 2})
    monkeypatch.setattr(runtime, "_affinity", lambda: 2)
    yield torch
    torch.set_num_threads(threads)


def test_share_cores_leaves_the_cores_others_use_and_takes_them_back(sharing, monkeypatch):
    looks = iter([2, 2, 0, 3, 0, 0, 0, 0, 0])  # median of three per call
    monkeypatch.setattr(runtime, "others_running", lambda: next(looks))
    assert runtime.share_cores() == 1 and sharing.get_num_threads() == 1
    assert runtime.share_cores() == 2 and sharing.get_num_threads() == 2  # a blip is ignored
    assert runtime.share_cores() == 2


def test_share_cores_never_changes_a_count_someone_chose(sharing, monkeypatch):
    monkeypatch.setattr(runtime, "others_running", lambda: 5)
    sharing.set_num_threads(2)
    assert runtime.share_cores() == 1
    sharing.set_num_threads(2)  # the user's choice (or seed_everything(threads=2))
    assert runtime.share_cores() is None and sharing.get_num_threads() == 2
    assert runtime._sharing is None


def test_without_proc_to_read_the_count_stays_and_is_not_asked_again(sharing, monkeypatch):
    monkeypatch.setattr(runtime, "others_running", lambda: None)
    assert runtime.share_cores() is None and runtime._sharing is None
    assert sharing.get_num_threads() == 2


def test_a_count_given_as_an_argument_stays_even_when_it_is_the_policys(sharing, monkeypatch):
    monkeypatch.setattr(runtime, "others_running", lambda: 5)
    seed_everything(0, threads=2)
    assert runtime.share_cores() is None and sharing.get_num_threads() == 2


def test_a_fixed_count_inside_a_block_leaves_the_sharing_as_it_was(sharing, monkeypatch):
    monkeypatch.setattr(runtime, "others_running", lambda: 5)
    with pytest.raises(RuntimeError, match="boom"), runtime.fixed_threads(1):
        assert sharing.get_num_threads() == 1
        assert runtime.share_cores() is None  # the block's count is not the load's to change
        raise RuntimeError("boom")
    assert sharing.get_num_threads() == 2 and runtime._sharing == {"policy": 2, "set": 2}
    assert runtime.share_cores() == 1  # still following the load afterwards


def test_the_budget_probe_on_one_core_leaves_the_cores_shared(sharing, monkeypatch):
    # The probe trains on one thread; a plain set_num_threads there once read as the user's
    # choice and switched the sharing off for the rest of the session (notebook 06 then
    # trained about 9x slower as one of three copies on two cores).
    from vaelab import budget

    monkeypatch.setattr(runtime, "others_running", lambda: 0)
    budget.probe(budget.mlp, mnist_like(4 * budget.MLP_BATCH_SIZE), batch_size=64, steps=2,
                 rounds=1, mlp_steps=2)
    assert runtime._sharing is not None and runtime.share_cores() == 2


def test_train_asks_before_every_epoch(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "share_cores", lambda: calls.append(1))
    train(small_model(), synthetic_images(64), epochs=3, progress=False)
    assert len(calls) == 3


def test_a_child_chooses_afresh_what_its_parents_vaelab_set_but_keeps_what_the_user_changed(
        fresh):
    parent: dict[str, str] = {}
    apply_thread_policy(parent)
    child = dict(parent, OMP_NUM_THREADS="1")  # the user changed one of them since
    assert apply_thread_policy(child) == {k: v for k, v in thread_policy().items()
                                          if k != "OMP_NUM_THREADS"}
    assert child["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in child[runtime.MARK]  # a grandchild keeps the user's too


def test_a_kernel_started_by_a_vaelab_process_still_shares_the_cores(fresh):
    if not 1 < usable_cores() == os.cpu_count():
        pytest.skip("share_cores works where every core of the machine is this process's")
    parent: dict[str, str] = {}
    apply_thread_policy(parent)  # as the executor's (or nbval's) process did
    run = _python("import vaelab\nfrom vaelab import runtime\nprint(runtime._sharing)", **parent)
    assert run.stdout.strip() != "None"


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter with this environment minus any thread setting."""
    names = POLICY_NAMES | {runtime.SWITCH, runtime.MARK}
    clean = {k: v for k, v in os.environ.items() if k not in names}
    return subprocess.run([sys.executable, "-c", code], env=clean | env, capture_output=True,
                          text=True, timeout=120, check=True)


REPORT = ("import json, os, torch; print(json.dumps({'threads': torch.get_num_threads(), "
          "'env': {k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'GOMP_SPINCOUNT', "
          "'MKL_CBWR', 'OMP_WAIT_POLICY')}}))")


def test_import_vaelab_sets_the_policy_before_torch_reads_it():
    run = _python(f"import vaelab\n{REPORT}", OMP_DISPLAY_ENV="VERBOSE")
    report = json.loads(run.stdout.splitlines()[-1])
    policy = thread_policy()
    assert report["env"] == {**policy, "OMP_WAIT_POLICY": None}
    assert report["threads"] == int(policy["OMP_NUM_THREADS"])
    # libgomp itself prints what it read when it loaded (at import torch).
    assert f"GOMP_SPINCOUNT = '{runtime.SPIN_COUNT}'" in run.stderr


@pytest.mark.parametrize("env", [{"OMP_NUM_THREADS": "1"}, {"OMP_WAIT_POLICY": "PASSIVE"},
                                 {"GOMP_SPINCOUNT": "0", "MKL_CBWR": "AUTO"},
                                 {"VAELAB_THREAD_POLICY": "off"}])
def test_a_setting_in_the_environment_is_never_changed(env):
    run = _python(f"import vaelab.seeding\nvaelab.seeding.seed_everything(0)\n{REPORT}", **env)
    report = json.loads(run.stdout.splitlines()[-1])
    for name, value in env.items():
        if name in report["env"]:
            assert report["env"][name] == value
    if env.get("OMP_NUM_THREADS") == "1":
        assert report["threads"] == 1
    if "VAELAB_THREAD_POLICY" in env:
        assert set(report["env"].values()) == {None}
    assert run.stderr == ""


def test_beside_two_busy_loops_a_process_keeps_at_most_the_cores_they_leave():
    if usable_cores() != os.cpu_count():
        pytest.skip("an affinity mask or quota hides other processes' threads")
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        run = _python("import vaelab, torch\nfrom vaelab import runtime\n"
                      "print(runtime.share_cores(), torch.get_num_threads())")
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    chosen, threads = run.stdout.split()
    if os.cpu_count() == 1:  # one thread already: nothing to share
        assert chosen == "None"
    else:
        assert int(chosen) == int(threads) <= max(1, os.cpu_count() - 2)


def test_torch_imported_first_gets_one_line_saying_what_to_do():
    run = _python("import torch; torch.set_num_threads(2)\nimport vaelab")
    assert len(run.stderr.splitlines()) == 1
    assert "import vaelab before torch" in run.stderr
    run = _python("import torch; torch.set_num_threads(1)\nimport vaelab")  # nothing to fix
    assert run.stderr == ""


def _first_cells(path: Path) -> list[str]:
    """A notebook's code cells up to the one that calls seed_everything."""
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    end = next(i for i, source in enumerate(cells) if "seed_everything(" in source)
    return cells[: end + 1]


@pytest.mark.slow
@pytest.mark.parametrize(("before", "env"), [("import torch\ntorch.set_num_threads(1)", {}),
                                             ("", {"OMP_NUM_THREADS": "1"})],
                         ids=["set_num_threads", "OMP_NUM_THREADS"])
def test_an_explicit_thread_count_survives_the_notebooks_first_cells(tmp_path, monkeypatch,
                                                                     before, env):
    for name in POLICY_NAMES | {runtime.SWITCH, runtime.MARK}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the kernel inherits it
    cells = [before, *_first_cells(NOTEBOOKS[-1]), "import torch\nprint(torch.get_num_threads())"]
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    make_client(nb, tmp_path, timeout=120).execute()
    assert nb.cells[-1].outputs[0].text.strip() == "1"
    streams = [o for cell in nb.cells[:-1] for o in cell.outputs if o.get("name") == "stderr"]
    assert streams == []


# Notebook 04's model and recipe, shortened, on synthetic images of MNIST's shape (the
# matrix products have the notebook's shapes: one of them MKL splits differently with 4
# threads unless MKL_CBWR asks for the same bits).
NUMBERS = """
import json
from vaelab import evaluation, training  # first: the package's thread policy
import torch
torch.set_num_threads(THREADS)
gen = torch.Generator().manual_seed(0)
digits = torch.randint(0, 2, (10, 784), generator=gen) * 255  # ten prototype images
images = (digits[torch.randint(0, 10, (2048,), generator=gen)]
          * (torch.rand(2048, 784, generator=gen) > 0.1)).to(torch.uint8)
x_test = (images[:512] > 0).float()
model = training.init_model(training.NOTEBOOK_MODEL, seed=0)
config = dict(training.NOTEBOOK_TRAINING, epochs=2)
history = training.train(model, images, progress=False, **config)
print(json.dumps({"threads": torch.get_num_threads(),
                  "losses": [(h["loss"], h["recon"], h["kl"]) for h in history],
                  "test": evaluation.evaluate(model, x_test),
                  "iw": evaluation.iw_bound_curve(model, x_test[:64], [1, 10, 50])}))
"""


@pytest.mark.slow
def test_notebook_training_and_evaluation_numbers_do_not_depend_on_the_thread_count():
    # An explicit count (share_cores leaves it alone); torch caps OMP_NUM_THREADS at the cores.
    runs = [_python(f"THREADS = {t}" + NUMBERS, OMP_NUM_THREADS=str(t)) for t in (1, 2, 4)]
    assert [run.stderr for run in runs] == ["", "", ""]
    runs = [json.loads(run.stdout) for run in runs]
    assert [run.pop("threads") for run in runs] == [1, 2, 4]
    assert runs[0] == runs[1] == runs[2]  # the same bits, not merely close
