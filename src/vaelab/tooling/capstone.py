"""`make capstone`: the numbers behind notebook 06's tiers, measured on this machine.

    python -m vaelab.tooling.capstone [--seeds 3] [--out build/capstone.json]

Grades, as the graders do (``vaelab.capstone.grade``: cost, training, score), two
submissions with each of ``--seeds`` seeds: the master notebook's worked model and plan
(exercise 6.1 of ``notebooks/06_your_own_vae.ipynb``, read from the master, since the package
holds no answer), and notebook 04's MLP with ``capstone.MLP_PLAN`` (the whole budget).
For each it prints the cost in MLP epochs, the training time, the NLL and negative ELBO on
the score images, the tier and the seconds the grade took; then, on the seed-0 models, how
much the score moves with the importance samples' seed and with the test binarization's
seed alone (k and the images fixed). Each line that checks a threshold prints PASS or MISS
(the reference in the top tier and the MLP in tier 1 with every seed, each threshold further
from the NLLs on its side than they spread over the seeds); a MISS does not fail the command.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaelab import capstone, evaluation
from vaelab.files import write_text_atomic
from vaelab.mnist import binarized_test_set
from vaelab.tooling.bench import cpu_model
from vaelab.tooling.nbio import read_notebook
from vaelab.tooling.student import find_exercises
from vaelab.training import NOTEBOOK_MODEL
from vaelab.vae import VAE

MASTER = Path(__file__).resolve().parents[3] / "notebooks" / "06_your_own_vae.ipynb"
EXERCISE = "6.1"


def master_submission(path: Path = MASTER) -> tuple[Callable[[], nn.Module], dict]:
    """(MyVAE, PLAN) as the master notebook's exercise cell defines them: the notebook's
    import-only cells run first, then that cell, in a namespace of their own."""
    nb = read_notebook(path)
    exercise = next((e for e in find_exercises(nb, str(path)) if e.id == EXERCISE), None)
    if exercise is None:
        raise ValueError(f"{path}: no Exercise {EXERCISE} (the capstone's model and plan)")
    namespace: dict[str, Any] = {"__name__": "__capstone__"}
    for cell in nb.cells[: exercise.cell_index]:
        if cell.cell_type == "code" and _imports_only(cell.source):
            exec(compile(cell.source, str(path), "exec"), namespace)  # noqa: S102
    exec(compile(nb.cells[exercise.cell_index].source, str(path), "exec"), namespace)  # noqa: S102
    return namespace["MyVAE"], namespace["PLAN"]


def _imports_only(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(n, ast.Import | ast.ImportFrom) for n in body)


def _spread(values: Sequence[float]) -> float:
    return max(values) - min(values)


def measure(seeds: int = 3, path: Path = MASTER, log: Callable[[str], None] = print) -> dict:
    """Everything the module docstring lists, as a dict (also printed through ``log``)."""
    # Notebook 04's MLP as a student would submit it: the class, fresh weights every time.
    mlp = functools.partial(VAE, **NOTEBOOK_MODEL)
    submissions = {"reference": master_submission(path), "mlp": (mlp, capstone.MLP_PLAN)}
    train_images, score_images = capstone.load_data()
    log(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"budget {capstone.BUDGET} MLP epochs, score -L_{capstone.SCORE_SAMPLES} on "
        f"{capstone.SCORE_IMAGES} test images")
    runs: dict[str, list[dict]] = {name: [] for name in submissions}
    models: dict[str, nn.Module] = {}
    for seed in range(seeds):
        for name, (factory, plan) in submissions.items():
            start = time.perf_counter()
            result = capstone.grade(factory, plan, train_images, score_images, seed=seed)
            seconds = time.perf_counter() - start
            if seed == 0:
                models[name] = result.model
            row = {"seed": seed, "tier": result.tier, "problem": result.problem,
                   "cost_mlp_epochs": result.cost and result.cost.mlp_epochs,
                   "mlp_epoch_seconds_one_core": result.cost and result.cost.mlp_epoch_seconds,
                   "train_seconds": result.train_seconds, "nll": result.nll,
                   "neg_elbo": result.neg_elbo, "grade_seconds": seconds,
                   "seconds_per_epoch": result.train_seconds / len(result.history)
                   if result.history else None}
            runs[name].append(row)
            log(f"{name:9s} seed {seed}: grade took {seconds:.0f} s\n"
                + "\n".join(f"    {line}" for line in result.report().splitlines()))
    noise = {}
    for name, model in models.items():
        if model is None:
            continue
        by_sample_seed = [-evaluation.iw_log_likelihood(
            model, score_images, k=capstone.SCORE_SAMPLES, seed=s).double().mean().item()
            for s in range(5)]
        by_binarization = [-evaluation.iw_log_likelihood(
            model, binarized_test_set(seed=s, progress=False)[0][: capstone.SCORE_IMAGES],
            k=capstone.SCORE_SAMPLES, seed=0).double().mean().item() for s in range(5)]
        noise[name] = {"importance_samples": by_sample_seed, "binarization": by_binarization}
        log(f"{name:9s} NLL spread over 5 importance-sampling seeds "
            f"{_spread(by_sample_seed):.2f}, over 5 test binarizations "
            f"{_spread(by_binarization):.2f} nats")
    checks = _threshold_checks(runs, log)
    return {"machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "python": platform.python_version()},
            "budget": capstone.BUDGET, "tolerance": capstone.TOLERANCE,
            "score_images": capstone.SCORE_IMAGES, "score_samples": capstone.SCORE_SAMPLES,
            "tiers": [vars(t) for t in capstone.TIERS], "runs": runs, "noise": noise,
            "checks": checks}


def _threshold_checks(runs: dict[str, list[dict]], log: Callable[[str], None]
                      ) -> dict[str, bool]:
    tiers = {t.level: t.nll_below for t in capstone.TIERS}
    top = max(tiers)
    checks = {
        "reference reaches the top tier with every seed":
            all(r["tier"] == top for r in runs["reference"]),
        "the MLP reaches tier 1 and no higher with every seed":
            all(r["tier"] == 1 for r in runs["mlp"]),
        "the MLP's plan costs the budget (within the tolerance)":
            all(r["cost_mlp_epochs"] is not None
                and r["cost_mlp_epochs"] <= capstone.BUDGET * capstone.TOLERANCE
                for r in runs["mlp"]),
    }
    # The margins: every grade varies with its seed (training, binarization, importance
    # samples), so each threshold should sit further from its side than the seeds spread.
    nll = {name: [r["nll"] for r in rows if r["nll"] is not None] for name, rows in runs.items()}
    if nll["mlp"] and nll["reference"] and tiers.get(2) is not None:
        checks["tier 2's threshold sits below the MLP's lowest NLL by more than its spread"] = (
            min(nll["mlp"]) - tiers[2] > _spread(nll["mlp"]))
        checks["the top threshold sits above the reference's highest NLL by more than its "
               "spread"] = tiers[top] - max(nll["reference"]) > _spread(nll["reference"])
    for text, ok in checks.items():
        log(f"{'PASS' if ok else 'MISS'}  {text}")
    for name, values in nll.items():
        if values:
            log(f"{name:9s} NLL over {len(values)} seeds: mean {statistics.mean(values):.2f}, "
                f"min {min(values):.2f}, max {max(values):.2f}")
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaelab.tooling.capstone",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per submission (default 3)")
    parser.add_argument("--notebook", type=Path, default=MASTER,
                        help="the master notebook holding exercise 6.1")
    parser.add_argument("--out", type=Path, default=Path("build/capstone.json"))
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    result = measure(args.seeds, args.notebook)
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
