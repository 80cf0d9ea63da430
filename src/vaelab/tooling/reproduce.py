"""`make reproduce`: the IWAE paper's one-stochastic-layer VAE baseline on MNIST, reproduced.

Burda, Grosse and Salakhutdinov (2015), Table 1, report a test negative log-likelihood of
86.76 nats for a VAE with one stochastic layer trained with k = 1 on dynamically binarized
MNIST. This module runs that protocol with the series' own model and loss:

- model: ``vaelab.vae.VAE(latent_dim=50, hidden=(200, 200), activation="tanh")``, i.e. a
  784-200-200-50 encoder and a 50-200-200-784 decoder; q(z|x) Gaussian with
  logvar = 2 ln sigma (the paper's exp-parameterised standard deviation); Bernoulli decoder
  whose output bias starts at the logit of the mean training image;
- loss and loop: ``vaelab.training.train``, the series' one training loop (the negative ELBO
  of ``vaelab.vae.vae_loss``, one z per image, data binarized afresh at every step), with
  this protocol's own Adam and its batch rule (incomplete last batches dropped);
- schedule: stage i = 0..7 trains 3^i epochs at learning rate 1e-3 * 10^(-i/7) (3280 epochs
  in all), one Adam optimizer carried through all stages;
- evaluation: the test set binarized once with a fixed seed
  (``vaelab.mnist.binarized_test_set``), NLL = -mean ln p(x) by importance sampling with
  k = 5000 (``vaelab.evaluation.iw_log_likelihood``), and the test negative ELBO.
  ``--test-subset N`` estimates the NLL on N test images drawn with a fixed seed (for CPU
  runs: k = 5000 costs about 1 s per image on one core); the results then carry the
  standard error over images and the negative ELBO of both the subset and the whole set.

Choices where the paper and its public code (github.com/yburda/iwae) disagree or are silent
(also written into every results JSON under ``choices``):

- batch size 20: the paper and the code (``minibatch_size=20``) agree.
- Adam beta1 = 0.99, beta2 = 0.999, epsilon = 1e-4: the paper's text gives beta1 = 0.9, the
  code's ``optimizers.Adam`` defaults to beta_1 = 0.99 and adds 1e-4 to sqrt(v). The code's
  README says the paper's revised version reports numbers produced by the published code,
  so we take the code's beta1. Known remaining differences from that optimizer: it starts
  the second moment at 1 rather than 0 (a warm-up of a few thousand steps) and adds epsilon
  before the bias correction (both fade within the first epoch of 3280); and its gradient is
  the batch *sum* of the ELBO where ``vae_loss`` takes the batch mean, so its epsilon acts
  like 1e-4 / 20 = 5e-6 here. We keep 1e-4, the figure both sources state; it only damps
  parameters whose gradient RMS is below about 1e-4 (``--eps 5e-6`` gives the code's scale).
- weights: Glorot-uniform with zero biases, as the code's ``nnet.Linear.random`` (PyTorch's
  default init is narrower); then the output bias from the mean training image.
- learning rate exactly 1e-3 * 10^(-i/7) as in the paper (the code rounds the mantissa to
  one decimal, e.g. 7.2e-4 for 7.197e-4).
- training set: all 60000 images, reshuffled every epoch (the code holds out the last 400
  for validation and walks the rest in a fixed order).

A checkpoint (model, optimizer, stages done, history, configuration; the package's one
format, ``vaelab.checkpoints``) is written atomically after every stage to
``<run-dir>/checkpoint.pt``; a later call with the same run folder resumes after the last
finished stage (each stage seeds its own draws, so a resumed run draws what a single run
draws), and refuses a checkpoint written under another configuration. ``--fresh`` starts
over but replaces the old checkpoint only when the new run has saved its first stage.

Usage: ``python -m vaelab.tooling.reproduce --stages 8`` (``make reproduce STAGES=8``);
smoke test: ``--stages 1 --epoch-scale 0.1 --train-subset 200 --k 8 --test-subset 50``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vaelab import runtime
from vaelab.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from vaelab.devices import choose_device
from vaelab.evaluation import evaluate, iw_log_likelihood
from vaelab.files import check_destinations, write_text_atomic
from vaelab.mnist import MnistError, binarized_test_set, load_mnist
from vaelab.training import train
from vaelab.vae import VAE

PAPER_NLL = 86.76
PAPER_SOURCE = "Burda, Grosse, Salakhutdinov 2015 (IWAE), Table 1: VAE, 1 stochastic layer, k=1"
FULL_STAGES = 8
FULL_TRAIN_IMAGES = 60000
FULL_TEST_IMAGES = 10000
FULL_K = 5000
CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1

# Everything that changes the trained weights. A checkpoint resumes only under the same values;
# the number of stages may grow (that is what resuming is for), k and the test subset may
# change freely (they only affect the evaluation).
TRAINING_KEYS = (
    "format_version",
    "input_dim",
    "hidden",
    "latent_dim",
    "activation",
    "batch_size",
    "lr0",
    "lr_decay_per_stage",
    "adam_beta1",
    "adam_beta2",
    "adam_eps",
    "epoch_scale",
    "train_images",
    "seed",
    "init",
    "shuffle",
)

CHOICES = {
    "batch_size": "20: the paper and its code (yburda/iwae, experiments.py minibatch_size=20) "
    "agree",
    "adam_beta1": "0.99: the code's optimizers.Adam default; the paper's text says 0.9, but the "
    "code's README states the revised paper reports numbers produced by the published code",
    "adam_eps": "1e-4: paper and code state it (the code adds it to sqrt(v) before the bias "
    "correction, torch after; the code's gradient is the batch sum, ours the batch mean, so "
    "the code's value acts like 5e-6 here: --eps 5e-6 reproduces that scale)",
    "adam_second_moment_init": "0 (torch); the code starts it at 1, a short warm-up",
    "init": "Glorot-uniform weights, zero biases (code: nnet.Linear.random); decoder output "
    "bias = logit(mean training image) clamped to [1e-3, 1 - 1e-3]",
    "lr": "exactly 1e-3 * 10^(-i/7) as in the paper (the code rounds to 1 decimal)",
    "training_set": "all 60000 training images, reshuffled each epoch (the code holds out 400 "
    "and keeps a fixed order)",
    "test_binarization": "vaelab.mnist.binarized_test_set(seed=0), binarized once",
}


# ----------------------------------------------------------------------------- protocol


def stage_epochs(stage: int, epoch_scale: float = 1.0) -> int:
    """Epochs of stage i: 3^i, times ``epoch_scale`` for a shortened schedule (at least 1)."""
    if stage < 0:
        raise ValueError(f"stage must be >= 0, got {stage}")
    return max(1, round(3**stage * epoch_scale))


def stage_lr(stage: int, lr0: float = 1e-3, decay: float = 10 ** (-1 / 7)) -> float:
    """Learning rate of stage i: lr0 * decay^i, i.e. 1e-3 * 10^(-i/7) by default."""
    if stage < 0:
        raise ValueError(f"stage must be >= 0, got {stage}")
    return lr0 * decay**stage


def make_config(args: argparse.Namespace, train_images: int) -> dict[str, Any]:
    """The run's configuration as a JSON-able dict (training keys plus evaluation keys)."""
    return {
        "format_version": FORMAT_VERSION,
        "input_dim": 784,
        "hidden": [200, 200],
        "latent_dim": 50,
        "activation": "tanh",
        "batch_size": args.batch_size,
        "lr0": 1e-3,
        "lr_decay_per_stage": 10 ** (-1 / 7),
        "adam_beta1": args.beta1,
        "adam_beta2": 0.999,
        "adam_eps": args.eps,
        "epoch_scale": args.epoch_scale,
        "train_images": train_images,
        "seed": args.seed,
        "init": "glorot_uniform+mean_image_output_bias",
        "shuffle": "every_epoch",
        # evaluation only (may differ between resumed calls)
        "stages": args.stages,
        "k": args.k,
        "test_images": args.test_subset or FULL_TEST_IMAGES,
        "test_binarization_seed": 0,
        "test_subset_seed": 0,
        "eval_seed": 1,
    }


def test_subset_indices(n: int | None, seed: int = 0) -> torch.Tensor | slice:
    """Which test images the NLL uses: all (n None) or n drawn at random without replacement.

    Random, not the first n: the MNIST test set's first half is cleaner than its second.
    Sorted, so that the result is the same set whatever the evaluation batching.
    """
    if n is None or n >= FULL_TEST_IMAGES:
        return slice(None)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(FULL_TEST_IMAGES, generator=gen)[:n].sort().values


def build_model(config: dict[str, Any], mean_image: torch.Tensor) -> VAE:
    """The paper's VAE: Glorot-uniform weights, zero biases, output bias = logit(mean image)."""
    model = VAE(
        latent_dim=config["latent_dim"],
        hidden=tuple(config["hidden"]),
        input_dim=config["input_dim"],
        activation=config["activation"],
    )
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    model.init_output_bias(mean_image)
    return model


def make_optimizer(model: nn.Module, config: dict[str, Any], device: torch.device):
    """One Adam for the whole schedule (its moments carry over between stages)."""
    kwargs: dict[str, Any] = {
        "lr": config["lr0"],
        "betas": (config["adam_beta1"], config["adam_beta2"]),
        "eps": config["adam_eps"],
    }
    # The fused kernel does the update of all tensors in one call: fewer small ops per step.
    kwargs["fused"] = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), **kwargs)


# ----------------------------------------------------------------------------- checkpoints


def training_config(config: dict[str, Any]) -> dict[str, Any]:
    """The keys a checkpoint must share to resume (the number of stages, k and the test
    subset only affect how long to train and how to evaluate)."""
    return {key: config[key] for key in TRAINING_KEYS}


def load_state(path: Path, config: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Read a checkpoint (vaelab.checkpoints) written under the same training configuration."""
    try:
        return load_checkpoint(path, training_config(config), device)
    except CheckpointError as err:
        raise ValueError(f"{err}\nresume with the same options, pass another --run-dir, or "
                         "--fresh to start over (the old checkpoint is replaced only when the "
                         "new run has finished its first stage)") from None


def stage_seed(seed: int, stage: int) -> int:
    """Each stage's own seed for train(): a resumed run draws exactly what a single run draws."""
    return seed * 1000 + stage


# ----------------------------------------------------------------------------- provenance


def git_info(cwd: Path | None = None) -> dict[str, Any]:
    """The commit the code runs from and whether the work tree had uncommitted changes."""
    cwd = cwd or Path(__file__).resolve().parent

    def git(*cmd: str) -> str | None:
        try:
            out = subprocess.run(["git", *cmd], cwd=cwd, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    # Untracked files count: the code that ran may be one of them (not in the commit).
    status = git("status", "--porcelain")
    changed = [line[3:] for line in (status or "").splitlines()]
    return {"commit": commit, "dirty": None if status is None else bool(changed),
            "changed_paths": changed[:20]}


def versions() -> dict[str, str]:
    """Library versions that decide the numbers."""
    import vaelab

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "vaelab": vaelab.__version__,
    }


def device_name(device: torch.device) -> str:
    """A readable description of the device, e.g. 'cpu (x86_64, 1 torch threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} torch threads)"


# ----------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train the remaining stages, evaluate, write the results JSON; return the results."""
    wall_start = time.perf_counter()
    if args.threads:
        runtime.set_threads(args.threads)  # kept, also when others share the cores
    device = choose_device(args.device)
    run_dir = Path(args.run_dir)
    ckpt = run_dir / CHECKPOINT_NAME
    results_path = Path(args.results) if args.results else run_dir / "results.json"
    hint = "choose another --run-dir / --results"
    # Before hours of training, not after; the results never replace the checkpoint.
    check_destinations([ckpt], hint=hint)
    check_destinations([results_path], inputs=[ckpt], hint=hint)

    train_u8, _ = load_mnist("train")
    if args.train_subset:
        if args.train_subset > train_u8.shape[0]:
            raise ValueError(f"--train-subset must be at most {train_u8.shape[0]}, "
                             f"got {args.train_subset}")
        train_u8 = train_u8[: args.train_subset]
    if train_u8.shape[0] < args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the training set "
                         f"({train_u8.shape[0]} images): lower it or raise --train-subset")
    config = make_config(args, train_images=int(train_u8.shape[0]))
    mean_image = train_u8.float().mean(dim=0) / 255.0

    torch.manual_seed(args.seed)
    model = build_model(config, mean_image).to(device)
    optimizer = make_optimizer(model, config, device)
    history: list[dict[str, Any]] = []
    train_seconds, start_stage = 0.0, 0
    # --fresh ignores an old checkpoint; it is replaced only once the first new stage is saved.
    if ckpt.exists() and not args.fresh:
        state = load_state(ckpt, config, device)
        if state["stages_done"] > args.stages:
            raise ValueError(
                f"{ckpt} already holds {state['stages_done']} finished stages, more than "
                f"--stages {args.stages}: ask for --stages {state['stages_done']} or more, "
                "or pass another --run-dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        train_seconds, start_stage = float(state["train_seconds"]), int(state["stages_done"])
        print(f"resuming from {ckpt}: {start_stage} of {args.stages} stages already done")

    test_full, _ = binarized_test_set(seed=config["test_binarization_seed"])
    test_x = test_full[test_subset_indices(args.test_subset, config["test_subset_seed"])]

    for stage in range(start_stage, args.stages):
        lr = stage_lr(stage, config["lr0"], config["lr_decay_per_stage"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        epochs = stage_epochs(stage, config["epoch_scale"])
        desc = f"stage {stage + 1}/{args.stages} ({epochs} epochs, lr {lr:.2e})"

        def log_epoch(_model: nn.Module, record: dict, desc: str = desc,
                      epochs: int = epochs) -> None:
            if args.no_progress:  # a plain line per epoch for logs of long runs
                print(f"{desc} epoch {record['epoch']}/{epochs}: loss {record['loss']:.2f}, "
                      f"{record['seconds']:.1f} s", flush=True)

        # The series' one training loop, with the paper's optimizer and its batch rule
        # (incomplete last batches dropped, as in the IWAE code).
        epoch_log = train(model, train_u8, epochs=epochs, batch_size=config["batch_size"],
                          optimizer=optimizer, drop_last=True,
                          seed=stage_seed(config["seed"], stage), device=device,
                          on_epoch=log_epoch, progress=not args.no_progress)
        seconds = sum(e["seconds"] for e in epoch_log)
        train_seconds += seconds
        # the whole test set: cheap at one z per image
        elbo = evaluate(model, test_full, seed=config["eval_seed"])["neg_elbo"]
        history.append({
            "stage": stage, "epochs": epochs, "lr": lr, "seconds": seconds,
            "seconds_per_epoch": seconds / epochs, "train_loss_last_epoch": epoch_log[-1]["loss"],
            "test_neg_elbo": elbo,
        })
        print(f"stage {stage + 1}/{args.stages}: {epochs} epochs at lr {lr:.3e}, "
              f"train loss {epoch_log[-1]['loss']:.2f}, test -ELBO {elbo:.2f}, "
              f"{seconds / epochs:.2f} s/epoch", flush=True)
        save_checkpoint(ckpt, training_config(config), {
            "stages_done": stage + 1, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "history": history,
            "train_seconds": train_seconds,
        })

    results = evaluate_and_report(model, test_x, test_full, config, history, train_seconds,
                                  device, args)
    results["wall_time_this_call_s"] = time.perf_counter() - wall_start
    write_text_atomic(results_path, json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"results written to {results_path}")
    return results


def evaluate_and_report(
    model: VAE,
    test_x: torch.Tensor,
    test_full: torch.Tensor,
    config: dict[str, Any],
    history: list[dict[str, Any]],
    train_seconds: float,
    device: torch.device,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """NLL (importance sampling with k), test -ELBO, timings, projections and provenance.

    test_x: the images the NLL is estimated on (all 10000 or a subset); test_full: all of
    them, for the negative ELBO, so that a subset's offset from the whole set can be judged.
    """
    model.eval()
    elbo_full = evaluate(model, test_full, seed=config["eval_seed"])["neg_elbo"]
    elbo = evaluate(model, test_x, seed=config["eval_seed"])["neg_elbo"]
    start = time.perf_counter()
    log_px = iw_log_likelihood(model, test_x, k=args.k, seed=config["eval_seed"]).double()
    eval_seconds = time.perf_counter() - start
    nll = -float(log_px.mean())
    # Spread of the per-image figures: the uncertainty of a mean over a subset of images.
    nll_se = float(log_px.std() / math.sqrt(len(log_px))) if len(log_px) > 1 else float("nan")

    stages_done = len(history)
    epochs_done = sum(h["epochs"] for h in history)
    full_epochs = sum(stage_epochs(i) for i in range(FULL_STAGES))
    sec_per_epoch = train_seconds / epochs_done if epochs_done else float("nan")
    # Scale to the full protocol: 60000 images per epoch at the same batch size, 3280 epochs,
    # 10000 test images with k = 5000 (evaluation cost grows with images * k).
    sec_per_full_epoch = sec_per_epoch * FULL_TRAIN_IMAGES / config["train_images"]
    eval_full = eval_seconds * (FULL_TEST_IMAGES * FULL_K) / (test_x.shape[0] * args.k)
    complete = (stages_done == FULL_STAGES and config["epoch_scale"] == 1.0
                and config["train_images"] == FULL_TRAIN_IMAGES
                and test_x.shape[0] == FULL_TEST_IMAGES and args.k == FULL_K)
    return {
        "label": "full protocol" if complete else (
            f"PARTIAL: {stages_done} of {FULL_STAGES} stages ({epochs_done} of {full_epochs} "
            f"epochs), {config['train_images']} training images, k={args.k} on "
            f"{test_x.shape[0]} test images; not comparable with the paper's final figure"),
        "complete": complete,
        "nll": nll,
        "nll_standard_error": nll_se,
        "test_neg_elbo": elbo,
        "test_neg_elbo_full_test_set": elbo_full,
        "paper_nll": PAPER_NLL,
        "paper_source": PAPER_SOURCE,
        "difference_nats": nll - PAPER_NLL,
        "k": args.k,
        "test_images": int(test_x.shape[0]),
        "stages_completed": stages_done,
        "stages_total": FULL_STAGES,
        "epochs_done": epochs_done,
        "epochs_total": full_epochs,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "seconds_per_epoch": sec_per_epoch,
        "seconds_per_full_epoch": sec_per_full_epoch,
        "projected_full_run_s": sec_per_full_epoch * full_epochs + eval_full,
        "projected_full_eval_s": eval_full,
        "per_stage": history,
        "config": config,
        "choices": CHOICES,
        "device": device_name(device),
        "versions": versions(),
        "git": git_info(),
        "command": " ".join(["python -m vaelab.tooling.reproduce", *sys.argv[1:]]),
    }


def _hours(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_table(r: dict[str, Any]) -> None:
    """The final table: our NLL, the paper's, the difference, time, device."""
    rows = [
        (f"our NLL (k={r['k']}, {r['test_images']} test images)", f"{r['nll']:.2f}"),
        ("paper NLL (IWAE Table 1, VAE 1 layer, k=1)", f"{r['paper_nll']:.2f}"),
        ("difference (ours - paper)", f"{r['difference_nats']:+.2f}"),
        ("standard error over test images", f"{r['nll_standard_error']:.2f}"),
        ("our test negative ELBO (same images)", f"{r['test_neg_elbo']:.2f}"),
        ("our test negative ELBO (all 10000)", f"{r['test_neg_elbo_full_test_set']:.2f}"),
        ("stages / epochs", f"{r['stages_completed']}/{r['stages_total']} stages, "
                            f"{r['epochs_done']}/{r['epochs_total']} epochs"),
        ("training time (all calls)", _hours(r["train_seconds"])),
        ("wall time (this call)", _hours(r.get("wall_time_this_call_s", float("nan")))),
        ("seconds per full epoch", f"{r['seconds_per_full_epoch']:.2f}"),
        ("projected full run here", _hours(r["projected_full_run_s"])),
        ("device", r["device"]),
    ]
    width = max(len(a) for a, _ in rows)
    print()
    if not r["complete"]:
        print(r["label"])
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


# ----------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _unit_interval(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _stages(text: str) -> int:
    value = _positive_int(text)
    if value > FULL_STAGES:
        raise argparse.ArgumentTypeError(f"the protocol has {FULL_STAGES} stages, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.reproduce",
        description="Reproduce the IWAE paper's VAE baseline (test NLL 86.76 on MNIST).",
    )
    p.add_argument("--stages", type=_stages, default=FULL_STAGES,
                   help="stages i = 0..N-1 of 3^i epochs each (8 = the full 3280 epochs)")
    p.add_argument("--run-dir", default="build/reproduce",
                   help="folder of the checkpoint; a rerun resumes from it")
    p.add_argument("--results", default=None,
                   help="results JSON path (default: RUN_DIR/results.json)")
    p.add_argument("--k", type=_positive_int, default=FULL_K,
                   help="importance samples per test image for the NLL")
    p.add_argument("--test-subset", type=_positive_int, default=None,
                   help="NLL on N test images, drawn with a fixed seed (default: all 10000)")
    p.add_argument("--train-subset", type=_positive_int, default=None,
                   help="train on the first N training images only (smoke tests)")
    p.add_argument("--epoch-scale", type=_positive_float, default=1.0,
                   help="multiply every stage's 3^i epochs by this (at least 1 epoch)")
    p.add_argument("--batch-size", type=_positive_int, default=20)
    p.add_argument("--beta1", type=_unit_interval, default=0.99, help="Adam beta1")
    p.add_argument("--eps", type=_positive_float, default=1e-4, help="Adam epsilon")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: best present)")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    p.add_argument("--fresh", action="store_true", help="ignore and delete a checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a message for bad options or data)."""
    p = parser()
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    if args.test_subset is not None and args.test_subset > FULL_TEST_IMAGES:
        p.error(f"--test-subset must be at most {FULL_TEST_IMAGES}, got {args.test_subset}")
    try:
        run(args)
    except (ValueError, MnistError) as exc:  # user errors: the message, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
