"""vaelab.tooling.bench: the flop formula, and a --quick run writes every key with a table."""

import json

import pytest
import torch

from vaelab.tooling import bench

KEYS = {
    "test_nll", "test_neg_elbo", "train_seconds", "epoch_seconds", "reference_epoch_seconds",
    "speedup_vs_reference", "gemm_gflops", "train_gflops", "gemm_fraction", "machine", "targets",
    "reference_lean_epoch_seconds", "speedup_vs_lean_reference", "rounds_measured",
    "gemm_products_us", "conv_epoch_seconds", "source_lines", "contention",
    "contended_slowdown", "contended_slowdown_today", "quiet_epoch_vs_today",
}


def test_flops_per_image_from_the_shapes():
    # forward 2 * 651200, weight gradients the same, input gradients without the first layer
    per_layer = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
    assert bench.gemm_flops_per_image() == 2 * (3 * per_layer - 784 * 400)
    assert bench.gemm_flops_per_image([(3, 2)]) == 2 * (3 * 6 - 6)
    assert 1.9e11 < 60000 * bench.gemm_flops_per_image() < 2.0e11


def test_gemm_rates_time_every_product_of_the_step():
    rates = bench.gemm_rates(seconds=0.05)
    times = rates["products_us"]
    assert len(times) == 11 and all(t > 0 for t in times.values())  # 4 + 4 + 3 products
    flops = 128 * bench.gemm_flops_per_image()
    assert rates["gflops"] == pytest.approx(flops / sum(times.values()) / 1e3)


def test_torchvision_style_items_are_totensor_images_of_the_pixels():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 784), dtype=torch.uint8, generator=gen)
    labels = torch.tensor([3, 1, 4, 1, 5])
    tv, lean = bench.TorchvisionMNIST(images, labels), bench.PerItemMNIST(images, labels)
    assert len(tv) == len(lean) == 5
    for i in range(5):
        (img, label), (row, label2) = tv[i], lean[i]
        assert img.shape == (1, 28, 28) and img.dtype == torch.float32
        assert label == label2 == int(labels[i]) and isinstance(label, int)
        assert torch.equal(img.reshape(-1), row)
        assert torch.equal(img.reshape(-1), images[i].float() / 255)


def test_rounds_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match="rounds"):
        bench.run_bench(quick=True, rounds=0)
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--rounds", "0", "--out", str(tmp_path / "b.json")])
    assert not (tmp_path / "b.json").exists()


@pytest.mark.slow
def test_quick_run_writes_json_with_all_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--rounds", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    assert set(result["targets"]) == set(bench.TARGETS)
    for row in result["targets"].values():
        assert isinstance(row["pass"], bool)
    assert set(result["machine"]) >= {"cpu", "threads", "torch", "device"}
    assert result["epoch_seconds"] > 0 and result["speedup_vs_reference"] > 0
    assert result["conv_epoch_seconds"] > 0
    shared = result["contention"]
    assert result["contended_slowdown"] == pytest.approx(
        shared["vaelab"]["shared_epoch_seconds"] / shared["vaelab"]["alone_epoch_seconds"])
    assert result["quiet_epoch_vs_today"] == pytest.approx(
        shared["vaelab"]["alone_epoch_seconds"] / shared["today"]["alone_epoch_seconds"])
    assert result["source_lines"] == bench.source_lines() > 1000
    # every round is kept, and each reported timing is the best of its rounds
    rounds = result["rounds_measured"]
    assert all(len(v) == 2 for v in rounds.values())
    assert result["epoch_seconds"] == min(rounds["epoch_seconds"])
    assert result["gemm_gflops"] == max(rounds["gemm_gflops"])
    assert result["speedup_vs_reference"] == pytest.approx(
        result["reference_epoch_seconds"] / result["epoch_seconds"])
    printed = capsys.readouterr().out
    assert "speedup_vs_reference" in printed and ("PASS" in printed or "MISS" in printed)
    assert "QUICK RUN" in printed


@pytest.mark.parametrize("side", [28, 4])
def test_the_student_style_conv_vae_has_the_interface(side):
    model = bench.StudentConvVAE(latent_dim=3, side=side)
    mu, logvar = model.encode(torch.zeros(2, side * side))
    assert mu.shape == logvar.shape == (2, 3) and model.decode(mu).shape == (2, side * side)
