"""`make reproduce`: the schedule, the shortened smoke run, resuming, refusals and bad options."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from vaelab.tooling import reproduce as rp

# A run of seconds: 100 training images, 1 epoch per stage, k = 4 on 20 test images.
TINY = ["--train-subset", "100", "--epoch-scale", "0.01", "--k", "4", "--test-subset", "20",
        "--device", "cpu", "--threads", "1", "--no-progress"]

RESULT_KEYS = {
    "label", "complete", "nll", "test_neg_elbo", "paper_nll", "paper_source", "difference_nats",
    "k", "test_images", "stages_completed", "stages_total", "epochs_done", "epochs_total",
    "train_seconds", "eval_seconds", "seconds_per_epoch", "seconds_per_full_epoch",
    "projected_full_run_s", "projected_full_eval_s", "per_stage", "config", "choices",
    "device", "versions", "git", "command", "wall_time_this_call_s",
}


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch):
    # The shared read-only MNIST copy, unless the caller already points somewhere.
    if not os.environ.get("VAELAB_DATA_DIR"):
        shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
        monkeypatch.setenv("VAELAB_DATA_DIR", str(shared))
    torch_threads = torch.get_num_threads()
    yield
    torch.set_num_threads(torch_threads)


def _run(tmp_path: Path, *extra: str, run_dir: str = "run") -> tuple[int, dict | None]:
    results = tmp_path / f"{run_dir}.json"
    code = rp.main(["--run-dir", str(tmp_path / run_dir), "--results", str(results), *TINY,
                    *extra])
    return code, (json.loads(results.read_text()) if results.exists() else None)


def test_schedule_is_the_papers_3280_epochs_with_lr_down_to_1e_4():
    epochs = [rp.stage_epochs(i) for i in range(rp.FULL_STAGES)]
    assert epochs == [1, 3, 9, 27, 81, 243, 729, 2187]
    assert sum(epochs) == 3280
    assert rp.stage_lr(0) == pytest.approx(1e-3)
    assert rp.stage_lr(7) == pytest.approx(1e-4)
    assert rp.stage_lr(1) == pytest.approx(1e-3 * 10 ** (-1 / 7))
    # A shortened schedule keeps at least one epoch per stage.
    assert rp.stage_epochs(0, 0.01) == 1 and rp.stage_epochs(4, 0.1) == 8
    with pytest.raises(ValueError, match="stage"):
        rp.stage_epochs(-1)


def test_model_is_784_200_200_50_tanh_with_glorot_init_and_mean_image_bias():
    mean = torch.full((784,), 0.25)
    config = {"latent_dim": 50, "hidden": [200, 200], "input_dim": 784, "activation": "tanh"}
    model = rp.build_model(config, mean)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in linears]
    assert shapes == [(200, 784), (200, 200), (100, 200), (200, 50), (200, 200), (784, 200)]
    assert torch.allclose(model.decoder[-1].bias, torch.logit(mean))
    first = linears[0].weight
    assert first.abs().max() <= math.sqrt(6 / (784 + 200)) + 1e-6
    assert first.abs().max() > 0.9 * math.sqrt(6 / (784 + 200))  # wider than torch's default


@pytest.mark.slow
def test_smoke_run_writes_every_result_key(tmp_path, capsys):
    code, res = _run(tmp_path, "--stages", "1")
    assert code == 0
    assert set(res) >= RESULT_KEYS
    assert res["stages_completed"] == 1 and res["stages_total"] == 8
    assert res["epochs_done"] == 1 and res["epochs_total"] == 3280
    assert not res["complete"] and res["label"].startswith("PARTIAL")
    assert res["paper_nll"] == 86.76
    assert math.isclose(res["difference_nats"], res["nll"] - 86.76)
    # An untrained-ish model: NLL below the -ELBO bound's estimate is not guaranteed with k=4 on
    # 20 images, but both are finite, positive and far above the paper's figure.
    assert 100 < res["nll"] < 600 and 100 < res["test_neg_elbo"] < 600
    assert res["config"]["batch_size"] == 20 and res["config"]["adam_beta1"] == 0.99
    assert res["config"]["adam_eps"] == 1e-4 and res["k"] == 4 and res["test_images"] == 20
    assert res["projected_full_run_s"] > res["seconds_per_full_epoch"] * 3280 > 0
    assert set(res["versions"]) >= {"python", "torch", "numpy", "vaelab"}
    assert set(res["git"]) == {"commit", "dirty", "changed_paths"}
    assert "batch_size" in res["choices"] and "adam_beta1" in res["choices"]
    out = capsys.readouterr().out
    assert "86.76" in out and "difference" in out and "device" in out
    # The checkpoint loads with weights_only=True and no temporary file is left behind.
    state = torch.load(tmp_path / "run" / rp.CHECKPOINT_NAME, weights_only=True)
    assert state["stages_done"] == 1
    assert not list((tmp_path / "run").glob("*.tmp"))


@pytest.mark.slow
def test_resume_continues_after_the_saved_stage_and_matches_an_uninterrupted_run(
    tmp_path, capsys
):
    code, first = _run(tmp_path, "--stages", "1")
    assert code == 0
    capsys.readouterr()
    code, second = _run(tmp_path, "--stages", "2")
    assert code == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "1 of 2 stages already done" in out
    assert "stage 1/2" not in out and "stage 2/2" in out  # stage 0 was not re-run
    assert [s["stage"] for s in second["per_stage"]] == [0, 1]
    assert second["per_stage"][0] == first["per_stage"][0]  # stage 0's record, unchanged
    assert second["epochs_done"] == 2
    # Resuming restores the RNG and optimizer states: the same weights as one straight run.
    code, _ = _run(tmp_path, "--stages", "2", run_dir="straight")
    assert code == 0
    resumed = torch.load(tmp_path / "run" / rp.CHECKPOINT_NAME, weights_only=True)
    straight = torch.load(tmp_path / "straight" / rp.CHECKPOINT_NAME, weights_only=True)
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    # A finished run directory only re-evaluates (nothing trained, same history).
    code, again = _run(tmp_path, "--stages", "2", "--k", "2")
    assert code == 0 and again["per_stage"] == second["per_stage"] and again["k"] == 2


@pytest.mark.slow
def test_refuses_a_checkpoint_from_another_configuration(tmp_path, capsys):
    assert _run(tmp_path, "--stages", "1")[0] == 0
    capsys.readouterr()
    code, _ = _run(tmp_path, "--stages", "2", "--batch-size", "10")
    assert code == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "batch_size" in err and "--run-dir" in err
    # --fresh starts over instead.
    code, res = _run(tmp_path, "--stages", "1", "--batch-size", "10", "--fresh")
    assert code == 0 and res["config"]["batch_size"] == 10


def test_unreadable_or_foreign_checkpoints_are_refused(tmp_path):
    config = {key: 1 for key in rp.TRAINING_KEYS}
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="(?s)unreadable.*--run-dir"):
        rp.load_state(bad, config, torch.device("cpu"))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a checkpoint of this version"):
        rp.load_state(foreign, config, torch.device("cpu"))


def test_only_training_keys_decide_whether_a_checkpoint_resumes():
    saved = {key: 1 for key in rp.TRAINING_KEYS}
    assert rp.training_config(dict(saved, k=10, stages=3)) == saved  # evaluation only
    assert rp.training_config(dict(saved, batch_size=10)) != saved


def test_each_stage_has_its_own_seed():
    seeds = {rp.stage_seed(s, i) for s in range(3) for i in range(8)}
    assert len(seeds) == 24


def test_an_unwritable_run_folder_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("a file where the run folder should be")
    code = rp.main(["--stages", "1", "--run-dir", str(tmp_path / "file" / "run"),
                    "--epoch-scale", "0.1", "--train-subset", "100", "--k", "2",
                    "--test-subset", "5", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "so no folder can be made under it; choose another --run-dir" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--stages", "0"],
        ["--stages", "9"],
        ["--stages", "two"],
        ["--k", "0"],
        ["--epoch-scale", "-1"],
        ["--epoch-scale", "nan"],
        ["--beta1", "1.5"],
        ["--batch-size", "0"],
        ["--test-subset", "10001"],
        ["--seed", "-3"],
        ["--no-such-option"],
    ],
)
def test_bad_options_exit_with_status_2_and_a_message(argv, capsys):
    with pytest.raises(SystemExit) as info:
        rp.main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_bad_combinations_are_refused_with_advice(tmp_path, capsys):
    code, _ = _run(tmp_path, "--stages", "1", "--batch-size", "200")
    assert code == 2 and "--batch-size 200 is larger" in capsys.readouterr().err
    assert _run(tmp_path, "--stages", "2")[0] == 0
    capsys.readouterr()
    code, _ = _run(tmp_path, "--stages", "1")
    assert code == 2 and "already holds 2 finished stages" in capsys.readouterr().err
    # --fresh never deletes the old checkpoint before the new run has saved a stage
    before = (tmp_path / "run" / rp.CHECKPOINT_NAME).read_bytes()
    code, _ = _run(tmp_path, "--stages", "1", "--fresh", "--batch-size", "200")
    assert code == 2 and (tmp_path / "run" / rp.CHECKPOINT_NAME).read_bytes() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_or_a_misspelt_device_is_one_message(tmp_path, capsys):
    for device in ("cuda", "cpux"):
        code = rp.main(["--stages", "1", "--run-dir", str(tmp_path / "run"), "--device", device])
        err = capsys.readouterr().err
        assert code == 2 and "device" in err and "Traceback" not in err


def test_missing_mnist_is_the_loaders_message_without_a_traceback(tmp_path, capsys, monkeypatch):
    from vaelab.mnist import MnistNotFoundError

    def offline(*args, **kwargs):
        raise MnistNotFoundError("MNIST file train-images-idx3-ubyte.gz is not available")

    monkeypatch.setattr(rp, "load_mnist", offline)
    code = rp.main(["--stages", "1", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "is not available" in err and "Traceback" not in err
    assert not (tmp_path / "run" / rp.CHECKPOINT_NAME).exists()
