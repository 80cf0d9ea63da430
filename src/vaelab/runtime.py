"""The thread policy: how many CPU threads torch uses and how they wait, set before torch loads.

``import vaelab`` applies it (``vaelab/__init__.py``), so the notebooks' first import and every
``python -m vaelab...`` command get it before anything imports torch. It has to come first:
the OpenMP runtime reads its settings once, when it loads, and it loads with ``import torch``.

Why. torch's CPU wheels for Linux run their threads (and MKL's) on GNU OpenMP, the
``libgomp.so.1`` in ``torch/lib``. After each parallel piece of work its threads spin for
``GOMP_SPINCOUNT`` iterations (300 000 unless set: about 20 ms on the project's 2-core AMD
machines) before they sleep. On cores shared with other programs (a JupyterHub node, a grading
server, a laptop in a video call) the spinning takes the time the threads they wait for need:
three copies of notebook 04's training on two cores each ran about ten times slower than one
alone. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) gives the cores back but makes a quiet
machine 40-90 % slower (every wake-up costs), and no spin count measured was both quick to
give the cores back and long enough to keep the quiet speed. One thread per process is the
fair share when the cores are shared; two threads that spin are fastest when they are not.
So:

- at ``import vaelab``, three environment variables, each only where the user has not set it:
  ``OMP_NUM_THREADS``, the cores this process may use (its affinity mask, capped by a cgroup
  CPU quota; a hub pod that sees 64 cores under a quota of one gets one thread), at most
  ``MAX_THREADS``; ``GOMP_SPINCOUNT=SPIN_COUNT``, a bounded spin (not set if the user set it or
  ``OMP_WAIT_POLICY``); ``MKL_CBWR=AUTO,STRICT``, so MKL's matrix products give the same bits
  whatever the thread count (without it 4 threads split one of the training step's products
  differently from 1 or 2). torch's own sums still split by the thread count, which moves
  the last bits of a loss (about 1e-8 relative); notebook 04's 24 epochs trained on 1 and on
  2 threads print the same losses and test negative ELBO to four decimals;
- ``share_cores()``, which ``training.train`` calls before every epoch: while threads of other
  programs run on this machine's cores, torch uses only the cores left over (at least one);
  when they stop, the policy's count again. It changes only a count the package chose: once
  you set one (``OMP_NUM_THREADS``, ``seed_everything(threads=)``, or ``torch.set_num_threads``
  with another count than the package's) it stays. Under an affinity mask or a quota, others'
  threads are invisible, so the count stays as chosen at import.

``VAELAB_THREAD_POLICY=off`` leaves everything to torch. A child process (a kernel the
executor starts, a worker) inherits the variables, and ``VAELAB_THREAD_POLICY_SET`` names those
the package set, so the child's vaelab chooses them afresh instead of taking them for the
user's. When torch was imported before vaelab, nothing can change any more; one line on
stderr says so and what to do. Compare policies with ``python -m vaelab.tooling.contention``.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path

MAX_THREADS = 4  # the notebooks' models gain little beyond this; their numbers are tested to it
# libgomp's spin iterations before a waiting thread sleeps (its default: 300 000). 10 000 (0.6 ms
# on the project's AMD machines) kept a quiet epoch near the default's; 1 000-3 000 cost 20-45 %.
SPIN_COUNT = 10_000
SWITCH = "VAELAB_THREAD_POLICY"  # "off": the package sets nothing
MARK = "VAELAB_THREAD_POLICY_SET"  # what the package set, "NAME=value;...", for child processes
# Each variable the policy sets, and the variables whose presence means the user chose it.
USER_CHOICE = {
    "OMP_NUM_THREADS": ("OMP_NUM_THREADS", "MKL_NUM_THREADS"),
    "GOMP_SPINCOUNT": ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"),
    "MKL_CBWR": ("MKL_CBWR",),
}
# What share_cores works with: the policy's thread count and the count it set last; None while
# the count is not the package's to change.
_sharing: dict[str, int] | None = None


def _cgroup_v2_limit(folder: Path) -> float | None:
    quota, period = (folder / "cpu.max").read_text().split()
    return None if quota == "max" else int(quota) / int(period)


def _cgroup_v1_limit(folder: Path) -> float | None:
    quota = int((folder / "cpu.cfs_quota_us").read_text())
    return None if quota <= 0 else quota / int((folder / "cpu.cfs_period_us").read_text())


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"),
                     proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup, in cores (1.5 = one and a half), or None.

    cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, the smallest along
    the process's cgroup and its parents (a container sees its own cgroup as the root).
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:  # not Linux
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # the v2 hierarchy
            mount, read = root, _cgroup_v2_limit
        elif "cpu" in controllers.split(","):
            mount = next((root / name for name in (controllers, "cpu", "cpu,cpuacct")
                          if (root / name).is_dir()), None)
            if mount is None:
                continue
            read = _cgroup_v1_limit
        else:
            continue
        folder = mount / path.lstrip("/")
        if not folder.is_dir():  # the host's path, not visible in this container
            folder = mount
        while True:
            try:
                limits.append(read(folder))
            except (OSError, ValueError):
                pass
            if folder == mount:
                break
            folder = folder.parent
    return min((limit for limit in limits if limit is not None), default=None)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def usable_cores() -> int:
    """The cores this process may use: its affinity mask, capped by its cgroup's CPU quota."""
    cores, limit = _affinity(), cgroup_cpu_limit()
    if limit is not None:  # threads beyond the quota get the whole cgroup throttled
        cores = min(cores, max(1, math.floor(limit)))
    return cores


def thread_policy(cores: int | None = None) -> dict[str, str]:
    """The environment variables of the policy for a process that may use ``cores`` cores
    (default: ``usable_cores()``)."""
    threads = min(cores if cores is not None else usable_cores(), MAX_THREADS)
    return {"OMP_NUM_THREADS": str(threads), "GOMP_SPINCOUNT": str(SPIN_COUNT),
            "MKL_CBWR": "AUTO,STRICT"}


def _set_by_the_package(environ: MutableMapping[str, str]) -> dict[str, str]:
    """The variables a parent process's vaelab set (and a child inherits), by name."""
    pairs = (item.split("=", 1) for item in environ.get(MARK, "").split(";") if "=" in item)
    return {name: value for name, value in pairs if environ.get(name) == value}


def apply_thread_policy(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the policy's variables the user has not set, if torch has not loaded yet.

    Returns the variables set. A variable inherited from a parent's vaelab is the package's,
    not the user's: it is chosen afresh. If torch is already loaded with settings the policy
    would have changed, prints one line on stderr saying what to do, and sets nothing.
    """
    global _sharing
    if environ.get(SWITCH, "").lower() == "off":
        return {}
    policy, inherited = thread_policy(), _set_by_the_package(environ)
    users = {name for name in environ if name not in inherited}
    chosen = {name: value for name, value in policy.items() if not users & set(USER_CHOICE[name])}
    if "torch" not in sys.modules:
        environ.update(chosen)
        environ[MARK] = ";".join(f"{name}={value}" for name, value in chosen.items())
        # Others' threads are visible only when every core of the machine is ours to use.
        threads = int(chosen.get("OMP_NUM_THREADS", 1))
        if threads > 1 and usable_cores() == os.cpu_count():
            _sharing = {"policy": threads, "set": threads}
        return chosen
    import torch  # already loaded: its threads are settled, only the message is left

    threads, unset = torch.get_num_threads(), set(chosen) - set(inherited)
    too_many = "OMP_NUM_THREADS" in chosen and threads > int(policy["OMP_NUM_THREADS"])
    if threads > 1 and (too_many or unset & {"GOMP_SPINCOUNT", "MKL_CBWR"}):
        print(f"vaelab: torch was imported before vaelab, so its {threads} threads keep "
              "OpenMP's defaults (slow on a machine shared with other programs): restart the "
              "kernel and import vaelab before torch (or set VAELAB_THREAD_POLICY=off to keep "
              "torch's defaults without this line)", file=sys.stderr)
    return {}


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` as a choice ``share_cores`` leaves alone from now on
    (an argument such as ``seed_everything(threads=2)``, even when 2 is the policy's count)."""
    global _sharing
    import torch

    _sharing = None
    torch.set_num_threads(threads)


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """torch on ``threads`` threads inside the block, whatever the load (``share_cores`` does
    nothing there); afterwards the count, and whether it follows the load, as before.

    For the package's own short measurements (``vaelab.budget`` times steps on one core): a
    plain ``torch.set_num_threads`` would read as the user's choice and stop ``share_cores``
    for the rest of the session.
    """
    global _sharing
    import torch

    saved, before = _sharing, torch.get_num_threads()
    _sharing = None
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        _sharing = saved


def others_running(loadavg: Path = Path("/proc/loadavg"),
                   tasks: Path = Path("/proc/self/task")) -> int | None:
    """Threads of other processes running or ready to run on this machine right now (Linux:
    the kernel's count of runnable threads less this process's), None where unknown."""
    try:
        running = int(loadavg.read_text().split()[3].split("/")[0])
        threads = list(tasks.iterdir())
    except (OSError, ValueError, IndexError):
        return None
    mine = 0
    for thread in threads:
        try:  # "tid (name) state ...": the name may hold spaces and parentheses
            mine += (thread / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):  # the thread has ended
            pass
    return max(0, running - mine)


def share_cores(samples: int = 3) -> int | None:
    """Give torch the cores other programs leave free now: the cores less others' running
    threads (the median of ``samples`` looks 1 ms apart), at least one, at most the policy's
    count. Returns the thread count set, or None where the count is not the package's to
    change (see the module docstring)."""
    global _sharing
    if _sharing is None:
        return None
    import torch

    if torch.get_num_threads() != _sharing["set"]:  # someone chose a count: it stays
        _sharing = None
        return None
    looks = []
    for _ in range(samples):
        looks.append(others_running())
        if looks[-1] is None:  # no /proc to read (macOS, Windows): the count stays
            _sharing = None
            return None
        time.sleep(0.001)
    want = max(1, min(_sharing["policy"], _affinity() - round(statistics.median(looks))))
    if want != _sharing["set"]:
        torch.set_num_threads(want)
        _sharing["set"] = want
    return want
