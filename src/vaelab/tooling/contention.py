"""Thread policies on a shared machine: notebook 04's step alone, beside busy loops, 3 at once.

    python -m vaelab.tooling.contention [--rounds 3] [--images 12800] [--epochs 3]
                                        [--policies today vaelab fixed passive one-thread spin=N]
                                        [--out FILE.json]

A policy is a set of environment variables read when torch loads (``vaelab.runtime``), so
every measurement starts fresh processes: each trains notebook 04's model
(``training.NOTEBOOK_MODEL``, batch 128, the plain step of ``training.train``) on the first
``images`` training images for ``epochs`` epochs, after a warm-up, and reports its mean epoch
time. The processes of one measurement start their epochs together. Three settings:

- alone: one process;
- beside 2 busy loops: one process while two Python loops burn a core each;
- 3 copies: three processes at once (a small JupyterHub node, a grading server).

Policies: ``today`` (2 threads, libgomp's default spin: what seed_everything forced before
``vaelab.runtime``), ``vaelab`` (the package's policy on this machine), ``fixed`` (the same
without ``share_cores``: its thread count set explicitly), ``passive``
(``OMP_WAIT_POLICY=PASSIVE``), ``one-thread``, and ``spin=N`` (``fixed`` with
``GOMP_SPINCOUNT=N``: what ``runtime.SPIN_COUNT`` trades, quiet speed against a fast return of
the cores). Rounds are interleaved (every policy and setting once per round, in turn) and each
cell reports the median round, so a machine whose speed drifts treats all policies alike. Three
processes fairly sharing two cores each get 2/3 of a core: at best 1.5 times one thread's epoch
alone (``one-thread``).

``make bench`` reports ``contended_slowdown`` (3 copies over alone) for today and for vaelab
(``slowdowns``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from vaelab.files import OutputPathError, check_destinations, write_text_atomic
from vaelab.runtime import MARK, SWITCH, USER_CHOICE, thread_policy

POLICIES = {
    "today": {SWITCH: "off", "OMP_NUM_THREADS": "2"},
    "vaelab": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one-thread": {"OMP_NUM_THREADS": "1"},
}
SETTINGS = {"alone": (1, 0), "beside 2 busy loops": (1, 2), "3 copies": (3, 0)}  # copies, loops
BUSY_LOOP = [sys.executable, "-c", "while True: pass"]


def policy_env(policy: str) -> dict[str, str]:
    """The variables of a policy by name (see the module docstring); ValueError if unknown."""
    if policy.startswith("spin="):
        count = policy.removeprefix("spin=")
        if not count.isdigit():
            raise ValueError(f"spin=N needs a whole number of iterations, got {policy!r}")
        return policy_env("fixed") | {"GOMP_SPINCOUNT": count}
    if policy == "fixed":
        return {"OMP_NUM_THREADS": thread_policy()["OMP_NUM_THREADS"]}
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: choose from {', '.join(POLICIES)}, "
                         "fixed or spin=N")
    return POLICIES[policy]


def _child_env(policy: str) -> dict[str, str]:
    """This process's environment without any thread setting, plus the policy's."""
    names = {SWITCH, MARK, *(name for choice in USER_CHOICE.values() for name in choice)}
    env = {k: v for k, v in os.environ.items() if k not in names}
    return env | policy_env(policy)


def epoch_seconds(policy: str, copies: int = 1, busy_loops: int = 0, images: int = 12_800,
                  epochs: int = 3) -> list[float]:
    """Mean epoch seconds of each of ``copies`` processes trained at once under ``policy``,
    while ``busy_loops`` busy loops run."""
    command = [sys.executable, "-m", "vaelab.tooling.contention", "--worker",
               "--images", str(images), "--epochs", str(epochs)]
    env = _child_env(policy)
    workers = [subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for _ in range(copies)]
    loops = []
    try:
        for w in workers:  # each has loaded torch and the data and warmed up
            if w.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker under policy {policy!r} failed to start")
        loops = [subprocess.Popen(BUSY_LOOP) for _ in range(busy_loops)]
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        return [json.loads(w.stdout.readline())["mean_epoch_seconds"] for w in workers]
    finally:
        for p in loops + workers:
            p.kill()
            p.wait()


def _worker(images: int, epochs: int) -> None:
    """Train and report (run by epoch_seconds in a fresh process)."""
    import torch

    from vaelab.mnist import load_mnist
    from vaelab.training import NOTEBOOK_MODEL, NOTEBOOK_TRAINING, init_model, train

    data = load_mnist("train")[0][:images]
    settings = {k: NOTEBOOK_TRAINING[k] for k in ("batch_size", "lr", "lr_schedule")}
    model = init_model(NOTEBOOK_MODEL, seed=0)
    train(model, data[:2048], epochs=1, progress=False, **settings)  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()
    history = train(model, data, epochs=epochs, progress=False, **settings)
    seconds = [h["seconds"] for h in history]
    print(json.dumps({"mean_epoch_seconds": sum(seconds) / len(seconds),
                      "threads": torch.get_num_threads()}), flush=True)


def compare(policies: list[str], rounds: int = 3, images: int = 12_800, epochs: int = 3,
            settings: dict[str, tuple[int, int]] = SETTINGS, log=print) -> dict:
    """{policy: {setting: [mean epoch seconds per round, each the mean over the copies]}}."""
    for policy in policies:
        policy_env(policy)  # unknown names fail before any measuring
    measured: dict = {p: {s: [] for s in settings} for p in policies}
    for r in range(1, rounds + 1):
        for setting, (copies, loops) in settings.items():
            for policy in policies:
                per_copy = epoch_seconds(policy, copies, loops, images, epochs)
                measured[policy][setting].append(statistics.mean(per_copy))
                log(f"round {r}/{rounds}  {setting:<20} {policy:<12} "
                    + "  ".join(f"{s:.2f}" for s in per_copy) + " s")
    return measured


def slowdowns(policies: tuple[str, ...] = ("today", "vaelab"), rounds: int = 1,
              images: int = 12_800, epochs: int = 3, log=print) -> dict:
    """For each policy (rounds interleaved): its epoch alone and as one of 3 copies at once
    (median rounds), and contended_slowdown = the second over the first."""
    settings = {k: SETTINGS[k] for k in ("alone", "3 copies")}
    result = {}
    for policy, runs in compare(list(policies), rounds, images, epochs, settings, log).items():
        alone, shared = (statistics.median(runs[k]) for k in settings)
        result[policy] = {"alone_epoch_seconds": alone, "shared_epoch_seconds": shared,
                          "contended_slowdown": shared / alone, "rounds": runs}
    return result


def table(measured: dict) -> str:
    """Median epoch seconds per policy and setting, and each over the policy's time alone."""
    settings = list(next(iter(measured.values())))
    lines = [f"{'policy':<14}" + "".join(f"{s:>24}" for s in settings)]
    for policy, runs in measured.items():
        alone = statistics.median(runs[settings[0]])
        cells = [f"{statistics.median(runs[s]):.2f} s ({statistics.median(runs[s]) / alone:.1f}x)"
                 for s in settings]
        lines.append(f"{policy:<14}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=["today", "vaelab", "fixed", "passive",
                                                          "one-thread"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=12_800, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    parser.add_argument("--out", type=Path, default=None, help="also write the rounds as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rounds", "images", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.worker:
        _worker(args.images, args.epochs)
        return 0
    try:
        for policy in args.policies:
            policy_env(policy)
    except ValueError as err:
        parser.error(str(err))
    try:  # before minutes of measuring
        check_destinations([args.out] if args.out else [], hint="choose another --out file")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    measured = compare(args.policies, args.rounds, args.images, args.epochs,
                       log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table(measured))
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
