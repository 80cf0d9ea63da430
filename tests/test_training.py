"""vaelab.training: the one loop, for the package's VAE and for any model with the interface."""

import math

import numpy as np
import pytest
import torch
from helpers import ConvVAE, D, binary, small_model, synthetic_images
from torch import nn

from vaelab import evaluation, training
from vaelab.binarization import binarize
from vaelab.decoder_likelihoods import Bernoulli, FixedVarianceGaussian, LearnedVarianceGaussian
from vaelab.schedules import cosine
from vaelab.training import NOTEBOOK_TRAINING, NonFiniteLossError, train, train_or_load
from vaelab.vae import VAE, model_loss


def gaussian_vae(**likelihood_args) -> VAE:
    """A 2-D real-valued VAE with a Gaussian likelihood (notebook 05's kind)."""
    likelihood = (FixedVarianceGaussian(**likelihood_args) if likelihood_args
                  else LearnedVarianceGaussian())
    return VAE(latent_dim=2, hidden=(16,), input_dim=2, activation="tanh", likelihood=likelihood)


def test_training_lowers_the_loss_and_records_each_epoch():
    model = small_model()
    history = train(model, synthetic_images(), epochs=6, batch_size=32, lr=1e-2, progress=False)
    assert [h["epoch"] for h in history] == list(range(1, 7))
    for h in history:
        assert set(h) == {"epoch", "loss", "recon", "kl", "seconds", "lr", "batch_size",
                          "kl_weight"}
        assert math.isclose(h["loss"], h["recon"] + h["kl"], rel_tol=1e-5)
    assert history[-1]["loss"] < history[0]["loss"] - 1.0


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_model_comes_back_in_the_mode_it_came_in(mode):
    model = getattr(small_model(), mode)()
    train(model, synthetic_images(64), epochs=1, progress=False)
    assert model.training == (mode == "train")


def test_training_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    runs = []
    for _ in range(2):
        model = small_model()
        torch.manual_seed(123)
        hist = train(model, synthetic_images(), epochs=2, batch_size=50, seed=7, progress=False)
        after = torch.rand(3)  # what the caller draws next
        runs.append((hist[-1]["loss"], [p.detach().clone() for p in model.parameters()], after))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), runs[0][2])  # training did not move torch's generator
    other = small_model()
    hist = train(other, synthetic_images(), epochs=2, batch_size=50, seed=8, progress=False)
    assert hist[-1]["loss"] != runs[0][0]


def recording(monkeypatch, seen):
    """Make train's loss record its batches (and still train)."""
    real = training.model_loss

    def record(model, x, *args):
        seen.append(x.clone())
        return real(model, x, *args)

    monkeypatch.setattr(training, "model_loss", record)


@pytest.mark.parametrize("drop_last, sizes", [(False, [8] * 37 + [4]), (True, [8] * 37)])
def test_batches_are_the_plain_batches_of_a_permutation_binarized_afresh(monkeypatch, drop_last,
                                                                          sizes):
    images, seen = synthetic_images(300), []
    recording(monkeypatch, seen)
    history = train(small_model(), images, epochs=1, batch_size=8, progress=False,
                    drop_last=drop_last)
    assert [x.shape[0] for x in seen] == sizes
    x = torch.cat(seen)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    # binary draws whose mean follows the grey levels of the images
    assert abs(x.mean().item() - (images.float() / 255).mean().item()) < 0.02
    # the epoch's means are over the images actually seen
    assert history[0]["loss"] > 0


def test_real_valued_data_is_not_binarized(monkeypatch):
    seen = []
    recording(monkeypatch, seen)
    data = torch.randn(40, 2)
    train(gaussian_vae(), data, epochs=1, batch_size=40, progress=False)
    torch.testing.assert_close(torch.sort(seen[0], dim=0).values, torch.sort(data, dim=0).values)


def test_schedules_kl_weight_batch_size_and_cosine_lr():
    model = small_model()
    seen = []
    history = train(
        model, synthetic_images(), epochs=3, lr=1e-2, progress=False,
        batch_size=lambda e: 16 * e, kl_weight=lambda e: 0.5 * e, lr_schedule="cosine",
        on_epoch=lambda m, rec: seen.append((rec["epoch"], m.training)),
    )
    assert [h["batch_size"] for h in history] == [16, 32, 48]
    assert [h["kl_weight"] for h in history] == [0.5, 1.0, 1.5]
    assert seen == [(1, False), (2, False), (3, False)]
    steps = 256 // 16 + 256 // 32 + -(-256 // 48)  # 16 + 8 + 6 optimizer steps
    assert history[-1]["lr"] == pytest.approx(cosine(1e-2, 0.0, steps)(steps - 1))
    assert 0 < history[-1]["lr"] < history[0]["lr"] < 1e-2


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
        train(model, synthetic_images(), epochs=3, lr=1e30, progress=False)


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (torch.zeros(10, D + 1, dtype=torch.uint8), {}, r"\(N, 16\)"),
        (torch.zeros(10, D, dtype=torch.int64), {}, "uint8"),
        (torch.full((10, D), 1.5), {}, r"\[0, 1\]"),
        (torch.full((10, D), float("nan")), {}, "NaN"),
        (torch.zeros(0, D, dtype=torch.uint8), {}, "N >= 1"),
        (synthetic_images(10), {"epochs": 0}, "epochs"),
        (synthetic_images(10), {"lr": -1.0}, "lr"),
        (synthetic_images(10), {"batch_size": 0}, "batch_size"),
        (synthetic_images(10), {"lr_schedule": "step"}, "lr_schedule"),
        (synthetic_images(10), {"lr_final": float("nan")}, "lr_final"),
        (synthetic_images(10), {"lr_final": -1e-3}, "lr_final"),
        (synthetic_images(10), {"kl_weight": -1.0}, "kl_weight"),
        (synthetic_images(10), {"kl_weight": float("inf")}, "kl_weight"),
        (synthetic_images(10), {"kl_weight": lambda e: -1.0}, "kl_weight"),
        (synthetic_images(10), {"free_bits": -1.0}, "free_bits"),
        (synthetic_images(10), {"free_bits": float("nan")}, "free_bits"),
        (synthetic_images(10), {"free_bits": float("inf")}, "free_bits"),
        (synthetic_images(10), {"recon_weight": -1.0}, "recon_weight"),
        (synthetic_images(10), {"recon_weight": "1"}, "recon_weight"),
        (synthetic_images(10), {"seed": -1}, "seed"),
        (synthetic_images(10), {"device": "cpux"}, "device"),
        (synthetic_images(10), {"batch_size": 20, "drop_last": True}, "no batch"),
    ],
)
def test_bad_training_inputs_are_refused_before_any_step(monkeypatch, images, kwargs, match):
    model = small_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        train(model, images, **{"epochs": 1, "progress": False, **kwargs})
    if "kl_weight" not in kwargs or not callable(kwargs["kl_weight"]):
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_an_optimizer_of_another_model_is_refused_before_any_step():
    model, other = small_model(), small_model(1)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"8 of the optimizer's 8 parameters are not this VAE's"
                                         r".*Adam\(model\.parameters\(\)"):
        train(model, synthetic_images(64), epochs=1, progress=False,
              optimizer=torch.optim.Adam(other.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # an optimizer of part of the model (the decoder alone) is the student's choice
    train(model, synthetic_images(64), epochs=1, progress=False,
          optimizer=torch.optim.Adam(model.decoder.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before[:4], model.encoder.parameters(),
                                                  strict=True))


def test_batch_norm_with_a_last_batch_of_one_image_asks_for_drop_last():
    model = small_model()
    model.encoder.insert(1, nn.BatchNorm1d(12))
    with pytest.raises(ValueError, match=r"batch_size 128 leaves a last batch of one image in "
                                         r"epoch 1 \(129 images\).*drop_last=True"):
        train(model, synthetic_images(129), epochs=1, progress=False)
    history = train(model, synthetic_images(129), epochs=1, progress=False, drop_last=True)
    assert history[0]["batch_size"] == 128
    train(small_model(), synthetic_images(129), epochs=1, progress=False)  # no batch norm: fine


def test_numpy_scalars_are_numbers_wherever_train_takes_one():
    history = train(small_model(), synthetic_images(64), epochs=np.int64(2),
                    batch_size=np.int64(32), lr=np.float32(1e-2), lr_schedule="cosine",
                    lr_final=np.float32(1e-4), kl_weight=np.float32(0.5),
                    free_bits=np.float64(0.1), recon_weight=np.float32(1.0), seed=np.int64(3),
                    progress=False)
    assert [h["kl_weight"] for h in history] == [0.5, 0.5]
    with pytest.raises(ValueError, match=r"kl_weight .* got True"):
        train(small_model(), synthetic_images(64), epochs=1, kl_weight=True, progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_says_so():
    with pytest.raises(ValueError, match="no GPU"):
        train(small_model(), synthetic_images(10), epochs=1, device="cuda", progress=False)


def test_something_that_is_not_a_vae_is_refused_with_what_it_lacks():
    with pytest.raises(TypeError, match="encode"):
        train(nn.Linear(D, 4), synthetic_images(10), epochs=1, progress=False)


def test_a_float64_model_trains_in_float64():
    model = small_model().double()
    history = train(model, synthetic_images(), epochs=2, batch_size=32, lr=1e-2, progress=False)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert history[-1]["loss"] < history[0]["loss"]


def test_recon_weight_zero_trains_the_kl_alone():
    model = small_model()
    decoder_before = [p.clone() for p in model.decoder.parameters()]
    history = train(model, synthetic_images(), epochs=3, lr=1e-2, progress=False,
                    recon_weight=0.0)
    assert history[-1]["kl"] < 0.05 < history[0]["kl"]
    # The decoder gets no gradient at all (Adam leaves parameters without grad alone).
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, model.decoder.parameters(),
                                                 strict=True))


def test_denormals_are_flushed_to_zero_only_while_training_runs():
    tiny = torch.tensor(torch.finfo(torch.float32).tiny)
    with training.flush_denormals():
        assert (tiny / 4).item() == 0.0
    assert (tiny / 4).item() > 0.0  # PyTorch's default is back
    seen = []
    train(small_model(), synthetic_images(64), epochs=1, batch_size=32, progress=False,
          on_epoch=lambda model, record: seen.append((tiny / 4).item()))
    assert seen == [0.0] and (tiny / 4).item() > 0.0


# ---------------------------------------------------------------- the model as written

def hand_written_training(model, images, epochs, batch_size, lr, seed):
    """The loop a student would write, drawing the same batches and noise as train()."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shuffle = torch.Generator().manual_seed(seed)
        pixel_noise = torch.Generator().manual_seed(seed + 1)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=shuffle)
            for first in range(0, images.shape[0], batch_size):
                x = binarize(images[order[first : first + batch_size]], pixel_noise)
                loss = model_loss(model, x).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


def with_extra_layers(model: VAE, kind: str) -> VAE:
    """``model`` with a layer put into its default MLPs after each hidden Linear layer's ReLU
    (a LeakyReLU takes the ReLU's place: after a ReLU it would change nothing)."""
    make = {"dropout": lambda: nn.Dropout(0.5), "tanh": nn.Tanh,
            "leaky_relu": lambda: nn.LeakyReLU(0.2)}[kind]
    for name in ("encoder", "decoder"):
        layers = []
        for layer in getattr(model, name):
            if not (kind == "leaky_relu" and isinstance(layer, nn.ReLU)):
                layers.append(layer)
            if isinstance(layer, nn.ReLU):
                layers.append(make())
        setattr(model, name, nn.Sequential(*layers))
    return model


@pytest.mark.parametrize("kind", ["dropout", "tanh", "leaky_relu"])
def test_a_model_with_layers_inserted_trains_exactly_as_a_hand_written_loop(kind):
    images = synthetic_images(200)
    ours, theirs = with_extra_layers(small_model(), kind), with_extra_layers(small_model(), kind)
    train(ours, images, epochs=2, batch_size=32, lr=1e-2, seed=4, progress=False)
    hand_written_training(theirs, images, epochs=2, batch_size=32, lr=1e-2, seed=4)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    untouched = small_model()
    train(untouched, images, epochs=2, batch_size=32, lr=1e-2, seed=4, progress=False)
    assert not torch.allclose(untouched.encoder[0].weight, ours.encoder[0].weight)


def test_dropout_and_batch_norm_train_in_train_mode_and_are_shown_in_eval_mode():
    model = small_model()
    model.encoder = nn.Sequential(model.encoder[0], nn.BatchNorm1d(12), nn.ReLU(),
                                  nn.Dropout(0.5), model.encoder[2])
    seen_modes = []
    real_encode = model.encode

    def encode(x):
        if torch.is_grad_enabled():  # a training step, not the check of the first images
            seen_modes.append(model.encoder[1].training)
        return real_encode(x)

    model.encode = encode
    model.eval()
    history = train(model, synthetic_images(256), epochs=2, batch_size=32, lr=1e-2,
                    progress=False, on_epoch=lambda m, rec: rec.update(
                        shown=(m.encoder[1].training, m.encoder[3].training)))
    assert len(seen_modes) == 16 and all(seen_modes)  # every batch: batch norm in training
    assert [h["shown"] for h in history] == [(False, False)] * 2
    assert not model.training and not model.encoder[1].training  # back as it came: eval
    assert model.encoder[1].num_batches_tracked > 0  # batch norm's statistics were updated


def test_the_notebook_recipe_on_a_model_without_init_output_bias_is_refused_up_front():
    model = ConvVAE()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"^init_output_bias=True needs a model with an "
                                         r"init_output_bias\(mean_image\) method.*StudentConvVAE"):
        train(model, synthetic_images(64), progress=False, **NOTEBOOK_TRAINING)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    recipe = {**NOTEBOOK_TRAINING, "init_output_bias": False, "epochs": 1}
    assert len(train(model, synthetic_images(64), progress=False, **recipe)) == 1


class WiderDecoderVAE(VAE):
    """A subclass that overrides decode with an extra layer: it must train through autograd."""

    def __init__(self) -> None:
        super().__init__(latent_dim=2, hidden=(12,), input_dim=D)
        self.extra = nn.Linear(D, D)

    def decode(self, z):
        return self.extra(torch.relu(super().decode(z)))


def test_a_subclass_that_overrides_decode_trains_all_its_layers_with_the_right_gradients():
    torch.manual_seed(0)
    model = WiderDecoderVAE()
    extra_before = model.extra.weight.clone()
    history = train(model, synthetic_images(), epochs=3, batch_size=32, lr=1e-2, progress=False)
    assert not torch.equal(model.extra.weight, extra_before)  # the extra layer trained
    assert history[-1]["loss"] < history[0]["loss"]


def test_a_gaussian_vae_with_fixed_variance_trains_on_its_own_gaussian_loss():
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(512, 2, generator=gen) * torch.tensor([2.0, 0.5])
    torch.manual_seed(0)
    model = gaussian_vae(logvar=0.0)
    history = train(model, data, epochs=20, batch_size=64, lr=1e-2, progress=False)
    # The recorded loss is the Gaussian negative ELBO (>= ln(2 pi) per point with unit
    # variance: never a Bernoulli loss), and training lowered it.
    assert history[-1]["recon"] > math.log(2 * math.pi) - 1e-6
    assert history[-1]["loss"] < history[0]["loss"]
    scored = [evaluation.evaluate(model, data, seed=s)["neg_elbo"] for s in range(8)]
    assert sum(scored) / len(scored) == pytest.approx(history[-1]["loss"], rel=0.1)


def test_a_students_conv_vae_trains_is_evaluated_and_importance_sampled():
    torch.manual_seed(0)
    model, images, x = ConvVAE(), synthetic_images(512), binary(100)
    before = evaluation.evaluate(model, x)["neg_elbo"]
    history = train(model, images, epochs=8, batch_size=32, lr=1e-2, progress=False)
    after = evaluation.evaluate(model, x)
    assert after["neg_elbo"] < before - 1.0
    curve = evaluation.iw_bound_curve(model, x, [1, 10, 100])
    assert curve[100] > curve[1]
    log_px = evaluation.iw_log_likelihood(model, x, k=50)
    assert log_px.shape == (100,) and bool((log_px <= 0).all())
    assert history[-1]["loss"] < history[0]["loss"]


# ---------------------------------------------------------------- the cached recipe

MODEL_CFG = {"latent_dim": 2, "hidden": [12], "input_dim": D}
TRAIN_CFG = {"epochs": 1, "batch_size": 64, "lr": 0.01}


def test_train_or_load_reuses_only_the_same_configuration_and_data(tmp_path, monkeypatch):
    data = synthetic_images()
    monkeypatch.delenv("VAELAB_TRAIN_FRESH", raising=False)
    m1, h1, reused1 = train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path,
                                    progress=False)
    m2, h2, reused2 = train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path,
                                    progress=False)
    assert (reused1, reused2) == (False, True)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
    _, _, reused3 = train_or_load(MODEL_CFG, {**TRAIN_CFG, "lr": 0.02}, data,
                                  cache_dir=tmp_path, progress=False)
    assert reused3 is False  # another configuration trains afresh
    other = synthetic_images(seed=5)  # as many images, different ones
    _, _, reused4 = train_or_load(MODEL_CFG, TRAIN_CFG, other, cache_dir=tmp_path,
                                  progress=False)
    assert reused4 is False
    monkeypatch.setenv("VAELAB_TRAIN_FRESH", "1")
    calls = []
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append(1) or [])
    train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path, progress=False)
    assert calls == [1]


def test_train_or_load_keeps_the_snapshots_of_on_epoch(tmp_path, monkeypatch):
    monkeypatch.delenv("VAELAB_TRAIN_FRESH", raising=False)
    data, watch = synthetic_images(), binary(3)

    def keep(model, record):
        record["snapshot"] = model.likelihood.mean(model.decode(model.encode(watch)[0]))

    _, h1, _ = train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path, progress=False,
                             on_epoch=keep)
    _, h2, reused = train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path,
                                  progress=False)
    assert reused and torch.equal(h1[0]["snapshot"], h2[0]["snapshot"])


def test_an_unwritable_cache_warns_before_training_and_returns_the_model(tmp_path, monkeypatch):
    monkeypatch.delenv("VAELAB_TRAIN_FRESH", raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot cache checkpoints.*a_file.*not be cached"):
        model, history, reused = train_or_load(MODEL_CFG, TRAIN_CFG, synthetic_images(),
                                               cache_dir=blocker / "sub", progress=False)
    assert not reused and len(history) == 1 and isinstance(model, VAE)


def test_a_changed_architecture_is_not_served_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("VAELAB_TRAIN_FRESH", raising=False)
    data = synthetic_images()
    train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path, progress=False)
    # Same configuration and parameter names, another activation (an edited package).
    monkeypatch.setitem(VAE.__init__.__globals__["ACTIVATIONS"], "relu", nn.Tanh)
    model, _, reused = train_or_load(MODEL_CFG, TRAIN_CFG, data, cache_dir=tmp_path,
                                     progress=False)
    assert not reused and isinstance(model.encoder[1], nn.Tanh)


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


def test_the_likelihood_is_bernoulli_by_default():
    assert isinstance(small_model().likelihood, Bernoulli)
