"""vaelab.training on small synthetic data: training, evaluation, IW bound, checkpoints, errors."""

import functools
import math

import pytest
import torch

from vaelab import training
from vaelab.training import (
    NonFiniteLossError,
    evaluate,
    iw_log_likelihood,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    train,
    train_or_load,
)
from vaelab.vae import VAE, vae_loss

D = 16


def synthetic_images(n: int = 256, seed: int = 0) -> torch.Tensor:
    """uint8 (n, D): two 'digits' (left half bright, right half bright) with grey noise."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.zeros(2, D)
    proto[0, : D // 2], proto[1, D // 2 :] = 220, 220
    which = torch.randint(0, 2, (n,), generator=gen)
    noise = torch.randint(0, 35, (n, D), generator=gen)
    return (proto[which] + noise).clamp(0, 255).to(torch.uint8)


def binary(n: int = 64, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=gen) * 255 < synthetic_images(n, seed)).float()


def small_model(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(latent_dim=2, hidden=(12,), input_dim=D)


def test_pick_device_is_cpu_without_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected


def test_binarization_is_bernoulli_of_the_intensity():
    gen = torch.Generator().manual_seed(0)
    levels = torch.tensor([[0, 1, 64, 128, 254, 255]], dtype=torch.uint8).repeat(100_000, 1)
    out = torch.empty(levels.shape)
    training._binarize_into(out, levels, gen)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[:, 0].sum() == 0 and out[:, 5].sum() == out.shape[0]
    freq = out.mean(dim=0)
    assert torch.allclose(freq, levels[0].float() / 255, atol=0.005)
    probs = torch.tensor([[0.0, 0.3, 1.0]]).repeat(100_000, 1)
    out = torch.empty(probs.shape)
    training._binarize_into(out, probs, gen)
    assert torch.allclose(out.mean(dim=0), probs[0], atol=0.005)


def test_uniform_levels_are_uniform_on_0_to_254_so_the_comparison_is_bernoulli():
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(0))
    levels = training._uniform_levels(2000, 784, rng)
    assert levels.dtype == torch.uint8 and levels.shape == (2000, 784)
    assert int(levels.max()) == 254 and int(levels.min()) == 0  # never 255: P(r < 255) = 1
    counts = torch.bincount(levels.reshape(-1).long(), minlength=256).double()
    assert counts[255] == 0
    expected = levels.numel() / 255
    # chi-square over the 255 levels: mean 254, sd ~22.5; a 1/256 bias would add ~6000.
    chi2 = float(((counts[:255] - expected) ** 2 / expected).sum())
    assert chi2 < 400
    v = torch.tensor([0, 1, 64, 128, 254, 255], dtype=torch.uint8)
    out = torch.empty(levels.shape[0], v.numel())
    torch.lt(levels[:, : v.numel()], v, out=out)
    assert out[:, 0].sum() == 0 and out[:, 5].sum() == out.shape[0]
    again = training._uniform_levels(2000, 784, np.random.Generator(np.random.PCG64(0)))
    assert torch.equal(levels, again)  # seeded: reproducible


def test_training_lowers_the_loss_and_records_each_epoch():
    model = small_model()
    history = train(model, synthetic_images(), epochs=6, batch_size=32, lr=1e-2, progress=False)
    assert [h["epoch"] for h in history] == list(range(1, 7))
    for h in history:
        assert set(h) >= {"epoch", "loss", "recon", "kl", "seconds", "lr", "batch_size"}
        assert math.isclose(h["loss"], h["recon"] + h["kl"], rel_tol=1e-5)
    assert history[-1]["loss"] < history[0]["loss"] - 1.0
    assert not model.training  # left in evaluation mode


def test_training_is_deterministic_for_a_seed():
    runs = []
    for _ in range(2):
        model = small_model()
        hist = train(model, synthetic_images(), epochs=2, batch_size=50, seed=7, progress=False)
        runs.append((hist[-1]["loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    other = small_model()
    hist = train(other, synthetic_images(), epochs=2, batch_size=50, seed=8, progress=False)
    assert hist[-1]["loss"] != runs[0][0]


def test_batches_drawn_several_at_a_time_are_the_plain_batches_of_a_permutation(monkeypatch):
    # 300 images at batch 8: chunks of 8 * BATCHES_PER_DRAW images, the last batch of 4
    monkeypatch.setattr(training, "BATCHES_PER_DRAW", 16)
    images = synthetic_images(300)
    seen, prepare = [], training.gradient_step
    model = small_model()

    def recording_step(prepared_for):
        step = prepare(prepared_for)

        def record(x, eps, **kwargs):
            seen.append(x.clone())
            assert eps.shape == (x.shape[0], model.latent_dim)
            return step(x, eps, **kwargs)
        return record

    monkeypatch.setattr(training, "gradient_step", recording_step)
    train(model, images, epochs=1, batch_size=8, progress=False)
    assert [x.shape[0] for x in seen] == [8] * 37 + [4]
    # binary draws whose mean follows the grey levels of the 300 images
    x = torch.cat(seen)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert abs(x.mean().item() - (images.float() / 255).mean().item()) < 0.02


def test_schedules_kl_weight_batch_size_and_cosine_lr():
    model = small_model()
    seen = []
    history = train(
        model, synthetic_images(), epochs=3, lr=1e-2, progress=False,
        batch_size=lambda e: 16 * e, kl_weight=lambda e: 0.5 * e, lr_schedule="cosine",
        on_epoch=lambda m, rec: seen.append((rec["epoch"], m.training)),
    )
    assert [h["batch_size"] for h in history] == [16, 32, 48]
    assert seen == [(1, False), (2, False), (3, False)]
    assert history[0]["lr"] < 1e-2 and history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_float_probabilities_are_accepted_and_output_bias_initialised():
    model = small_model()
    probs = synthetic_images().float() / 255
    train(model, probs, epochs=1, progress=False, init_output_bias=True)
    assert model.decoder[-1].bias.abs().sum() > 0


def test_free_bits_keeps_the_kl_up():
    plain, floored = small_model(), small_model()
    data = synthetic_images()
    kw = {"epochs": 4, "batch_size": 32, "lr": 1e-2, "progress": False}
    h0 = train(plain, data, kl_weight=5.0, **kw)
    h1 = train(floored, data, kl_weight=5.0, free_bits=1.0, **kw)
    assert h1[-1]["kl"] > h0[-1]["kl"]


def test_non_finite_loss_stops_with_epoch_and_remedy():
    model = small_model()
    with pytest.raises(NonFiniteLossError, match=r"epoch 1 of 3.*[Ll]ower the learning rate"):
        train(model, synthetic_images(), epochs=3, kl_weight=float("nan"), progress=False)


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (torch.zeros(10, D + 1, dtype=torch.uint8), {}, r"\(N, 16\)"),
        (torch.zeros(10, D, dtype=torch.int64), {}, "uint8"),
        (torch.full((10, D), 1.5), {}, r"\[0, 1\]"),
        (torch.zeros(0, D, dtype=torch.uint8), {}, "N >= 1"),
        (synthetic_images(10), {"epochs": 0}, "epochs"),
        (synthetic_images(10), {"lr": -1.0}, "lr"),
        (synthetic_images(10), {"batch_size": 0}, "batch_size"),
        (synthetic_images(10), {"lr_schedule": "step"}, "lr_schedule"),
        (synthetic_images(10), {"free_bits": -1.0}, "free_bits"),
    ],
)
def test_bad_training_inputs(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(small_model(), images, **{"epochs": 1, "progress": False, **kwargs})


def test_evaluate_matches_a_direct_computation():
    model = small_model()
    x = binary()
    result = evaluate(model, x, batch_size=20, seed=3)
    assert set(result) == {"neg_elbo", "recon", "kl"}
    assert math.isclose(result["neg_elbo"], result["recon"] + result["kl"], rel_tol=1e-6)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = vae_loss(model.decode(mu), x, mu, logvar).kl.mean().item()
    assert math.isclose(result["kl"], kl, rel_tol=1e-5)  # the KL needs no sample
    assert evaluate(model, x, batch_size=20, seed=3) == result
    assert evaluate(model, x, batch_size=20, seed=4) != result


def test_iw_bound_is_above_the_elbo_and_k1_is_the_elbo_in_expectation():
    model = small_model()
    train(model, synthetic_images(), epochs=3, batch_size=32, lr=1e-2, progress=False)
    x = binary(200)
    elbo = -evaluate(model, x).get("neg_elbo")
    # k = 1: log w of one sample is an unbiased ELBO estimate; average many seeds
    k1 = torch.stack([iw_log_likelihood(model, x, k=1, seed=s) for s in range(20)]).mean()
    assert abs(k1.item() - elbo) < 0.5
    iw = iw_log_likelihood(model, x, k=200)
    assert iw.shape == (200,)
    assert iw.mean().item() > elbo
    assert iw.mean().item() > k1.item()
    assert (iw <= 0).all()  # ln p(x) of binary data is <= 0


def test_iw_memory_chunking_does_not_change_the_result():
    model = small_model()
    x = binary(30)
    whole = iw_log_likelihood(model, x, k=50, batch_size=10, max_rows=10_000)
    chunked = iw_log_likelihood(model, x, k=50, batch_size=10, max_rows=7)
    assert torch.allclose(whole, chunked, atol=1e-5)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_iw_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        iw_log_likelihood(small_model(), binary(4), k=k)


def test_evaluation_rejects_uint8_images():
    with pytest.raises(ValueError, match="binarize"):
        evaluate(small_model(), synthetic_images(4))
    with pytest.raises(ValueError, match="binarize"):
        iw_log_likelihood(small_model(), synthetic_images(4), k=2)


CONFIG = {"model": {"latent_dim": 2}, "epochs": 3, "lr": 0.01}


def test_checkpoint_roundtrip(tmp_path):
    model = small_model()
    train(model, synthetic_images(), epochs=1, progress=False)
    path = tmp_path / "sub" / "vae.pt"
    save_checkpoint(model, path, CONFIG)
    loaded = load_checkpoint(path, dict(CONFIG))
    assert not loaded.training
    x = binary(8)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x)[0], model.encode(x)[0])
        assert torch.equal(loaded.decode(torch.ones(1, 2)), model.decode(torch.ones(1, 2)))


def test_checkpoint_is_loaded_with_weights_only(tmp_path, monkeypatch):
    save_checkpoint(small_model(), tmp_path / "a.pt", CONFIG)
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(tmp_path / "a.pt", CONFIG)
    assert seen.get("weights_only") is True


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"config": "{}", "model": {}, "state_dict": {}, "history": [object()]}, path)
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(path, {})


def test_checkpoint_errors(tmp_path):
    path = tmp_path / "vae.pt"
    save_checkpoint(small_model(), path, CONFIG)
    with pytest.raises(ValueError, match="different configuration"):
        load_checkpoint(path, {**CONFIG, "lr": 0.02})
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", CONFIG)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.pt", CONFIG)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(small_model(), path, {"schedule": lambda e: e})


def test_train_or_load_reuses_only_outside_fresh_mode(tmp_path, monkeypatch):
    data = synthetic_images()
    model_cfg = {"latent_dim": 2, "hidden": [12], "input_dim": D}
    train_cfg = {"epochs": 1, "batch_size": 64, "lr": 0.01}
    monkeypatch.delenv("VAELAB_TRAIN_FRESH", raising=False)
    m1, h1, reused1 = train_or_load(model_cfg, train_cfg, data, cache_dir=tmp_path,
                                    progress=False)
    m2, h2, reused2 = train_or_load(model_cfg, train_cfg, data, cache_dir=tmp_path,
                                    progress=False)
    assert (reused1, reused2) == (False, True)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
    _, _, reused3 = train_or_load(model_cfg, {**train_cfg, "lr": 0.02}, data,
                                  cache_dir=tmp_path, progress=False)
    assert reused3 is False  # another configuration trains afresh
    monkeypatch.setenv("VAELAB_TRAIN_FRESH", "1")
    calls = []
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append(1) or [])
    train_or_load(model_cfg, train_cfg, data, cache_dir=tmp_path, progress=False)
    assert calls == [1]


# ---------------------------------------------------------------- notebook 05's additions

def test_recon_weight_zero_trains_the_kl_alone():
    model = small_model()
    decoder_before = [p.clone() for p in model.decoder.parameters()]
    history = train(model, synthetic_images(), epochs=3, lr=1e-2, progress=False,
                    recon_weight=0.0)
    assert history[-1]["kl"] < 0.05 < history[0]["kl"]
    # The decoder gets no gradient at all (Adam leaves parameters without grad alone).
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, model.decoder.parameters(),
                                                 strict=True))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "1"])
def test_recon_weight_must_be_a_finite_non_negative_number(bad):
    with pytest.raises(ValueError, match="recon_weight"):
        train(small_model(), synthetic_images(), epochs=1, progress=False, recon_weight=bad)


def test_log_importance_weights_are_the_draws_behind_iw_log_likelihood():
    model, x = small_model(), binary()
    log_w = training.log_importance_weights(model, x, k=40, batch_size=16, seed=3)
    assert log_w.shape == (x.shape[0], 40)
    expected = iw_log_likelihood(model, x, k=40, batch_size=16, seed=3)
    torch.testing.assert_close(torch.logsumexp(log_w, 1) - math.log(40), expected)


def test_a_proposal_replaces_the_encoder_and_the_encoder_as_proposal_changes_nothing():
    model, x = small_model(), binary(n=20)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    same = iw_log_likelihood(model, x, k=30, seed=1, proposal=(mu, logvar))
    torch.testing.assert_close(same, iw_log_likelihood(model, x, k=30, seed=1))
    # A far-off proposal gives a much lower (but valid) estimate.
    far = iw_log_likelihood(model, x, k=30, seed=1, proposal=(mu + 6.0, logvar - 4.0))
    assert torch.all(far < same)


@pytest.mark.parametrize("proposal, match", [
    ((torch.zeros(20, 2),), "pair"),
    ((torch.zeros(19, 2), torch.zeros(20, 2)), r"mu must be .* \(20, "),
    ((torch.zeros(20, 2), torch.full((20, 2), float("nan"))), "non-finite"),
])
def test_bad_proposals_are_refused(proposal, match):
    model, x = small_model(), binary(n=20)
    d = model.latent_dim
    proposal = tuple(p[:, :1].expand(p.shape[0], d) for p in proposal)
    with pytest.raises(ValueError, match=match):
        iw_log_likelihood(model, x, k=3, proposal=proposal)


def test_iw_bound_curve_is_nested_and_ends_at_iw_log_likelihood():
    model, x = small_model(), binary(40)
    curve = training.iw_bound_curve(model, x, [1, 5, 50], batch_size=20, seed=2)
    assert list(curve) == [1, 5, 50]
    assert curve[1] < curve[5] < curve[50]
    full = iw_log_likelihood(model, x, k=50, batch_size=20, seed=2).mean().item()
    assert math.isclose(curve[50], full, rel_tol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        training.iw_bound_curve(model, x, [])
    with pytest.raises(ValueError, match="k"):
        training.iw_bound_curve(model, x, [0, 3])


def _autograd_step(model):
    """What train's step replaces: autograd on vae_loss, then Adam on every layer at the end."""
    return functools.partial(_autograd_loss_and_gradients, model)


def _autograd_loss_and_gradients(model, x, eps, kl_weight=1.0, recon_weight=1.0, free_bits=0.0,
                                 on_layer_done=None):
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        terms = vae_loss(model.decode(z), x, mu, logvar, kl_weight=kl_weight,
                         free_bits=free_bits, recon_weight=recon_weight)
        terms.loss.backward()
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear):
            on_layer_done(layer)
    return terms.recon.sum().detach(), terms.kl.sum().detach()


@pytest.mark.parametrize("kwargs", [{}, {"kl_weight": 0.5, "free_bits": 0.2}])
def test_training_equals_autograd_training_on_vae_loss(monkeypatch, kwargs):
    images = synthetic_images(200)
    fast_model = small_model()
    fast = train(fast_model, images, epochs=2, batch_size=64, lr=1e-2, progress=False,
                 **kwargs)
    monkeypatch.setattr(training, "gradient_step", _autograd_step)
    slow_model = small_model()
    slow = train(slow_model, images, epochs=2, batch_size=64, lr=1e-2, progress=False,
                 **kwargs)
    for a, b in zip(fast, slow, strict=True):
        assert a["recon"] == pytest.approx(b["recon"], rel=1e-4)
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-4)
    for (name, p), q in zip(fast_model.named_parameters(), slow_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


def test_denormals_are_flushed_to_zero_only_while_training_runs():
    tiny = torch.tensor(torch.finfo(torch.float32).tiny)
    with training.flush_denormals():
        assert (tiny / 4).item() == 0.0
    assert (tiny / 4).item() > 0.0  # PyTorch's default is back
    seen = []
    train(small_model(), synthetic_images(64), epochs=1, batch_size=32, progress=False,
          on_epoch=lambda model, record: seen.append((tiny / 4).item()))
    assert seen == [0.0] and (tiny / 4).item() > 0.0


def test_init_model_depends_on_the_seed_only_and_leaves_the_global_rng_alone():
    config = {"latent_dim": 2, "hidden": [12], "input_dim": D, "activation": "relu"}
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = training.init_model(config, seed=5)
    assert torch.equal(torch.rand(3), before)  # the global generator did not move
    torch.rand(100)  # whatever ran before does not matter
    b = training.init_model(config, seed=5)
    c = training.init_model(config, seed=6)
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(p, q)
        assert not torch.equal(p, r)
