"""vaelab.tooling.bench: the flop formula, and a --quick run writes every key with a table."""

import json

import pytest

from vaelab.tooling import bench

KEYS = {
    "test_nll", "test_neg_elbo", "train_seconds", "epoch_seconds", "reference_epoch_seconds",
    "speedup_vs_reference", "gemm_gflops", "train_gflops", "gemm_fraction", "machine", "targets",
}


def test_flops_per_image_from_the_shapes():
    # forward 2 * 651200, weight gradients the same, input gradients without the first layer
    per_layer = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
    assert bench.gemm_flops_per_image() == 2 * (3 * per_layer - 784 * 400)
    assert bench.gemm_flops_per_image([(3, 2)]) == 2 * (3 * 6 - 6)
    assert 1.9e11 < 60000 * bench.gemm_flops_per_image() < 2.0e11


def test_gemm_rate_is_positive():
    assert bench.gemm_rate(seconds=0.05) > 0.1


@pytest.mark.slow
def test_quick_run_writes_json_with_all_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    assert set(result["targets"]) == set(bench.TARGETS)
    for row in result["targets"].values():
        assert isinstance(row["pass"], bool)
    assert set(result["machine"]) >= {"cpu", "threads", "torch", "device"}
    assert result["epoch_seconds"] > 0 and result["speedup_vs_reference"] > 0
    printed = capsys.readouterr().out
    assert "speedup_vs_reference" in printed and ("PASS" in printed or "MISS" in printed)
    assert "QUICK RUN" in printed
