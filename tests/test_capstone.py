"""vaelab.capstone: notebook 06's rules, budget check, training, score and tiers."""

import math
import re
import warnings

import pytest
import torch
from helpers import TinyVAE, mnist_like
from torch import nn

from vaelab import budget, capstone, runtime
from vaelab.capstone import RuleError, check_model, check_plan, grade
from vaelab.decoder_likelihoods import Bernoulli, FixedVarianceGaussian
from vaelab.tooling.bench import StudentConvVAE
from vaelab.training import NOTEBOOK_TRAINING
from vaelab.vae import VAE

TRAIN = mnist_like(3000)
SCORE = (torch.rand(40, 784, generator=torch.Generator().manual_seed(1)) * 255
         < mnist_like(40, seed=2)).float()


@pytest.fixture
def cheap_cost(monkeypatch):
    """plan_cost replaced by a fixed, known measurement (the grade's other steps are real)."""
    def fake(factory, plan, images, **kwargs):
        steps = plan["epochs"] * budget.steps_per_epoch(plan.get("batch_size", 128))
        return budget.PlanCost(steps * 0.001 / 1.0, steps, 0.001, 1.0)

    monkeypatch.setattr(budget, "plan_cost", fake)


# ------------------------------------------------------------------------------ the plan

def test_a_plan_of_train_settings_is_accepted_as_a_dict():
    plan = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "lr_schedule": "cosine"}
    assert check_plan(plan) == plan and check_plan(plan) is not plan


@pytest.mark.parametrize("key", ["seed", "device", "optimizer", "progress", "on_epoch", "epoch"])
def test_a_plan_may_not_set_what_the_grader_owns_or_misspell_a_setting(key):
    with pytest.raises(RuleError, match=rf"\['{key}'\].*grader chooses the seed"):
        check_plan({"epochs": 1, key: 0})


@pytest.mark.parametrize("plan, match", [
    ({}, "epochs must be a whole number >= 1, got None .a plan must say how many epochs"),
    ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": True}, "epochs must be a whole number"),
    ({"epochs": 1, "batch_size": 0}, "batch_size must be a whole number"),
    ({"epochs": 1, "batch_size": 60_001}, "larger than the 60000 training images"),
])
def test_a_plan_with_bad_epochs_or_batch_size_is_refused(plan, match):
    with pytest.raises(RuleError, match=match):
        check_plan(plan)


def test_a_plan_must_be_a_mapping():
    with pytest.raises(RuleError, match="dict of train.. settings.*got list"):
        check_plan([("epochs", 1)])


# ----------------------------------------------------------------------------- the model

def test_a_students_own_model_and_the_package_vae_are_allowed():
    assert isinstance(check_model(TinyVAE, TRAIN), TinyVAE)
    assert isinstance(check_model(VAE, TRAIN), VAE)  # notebook 04's MLP: allowed, lowest tier
    own = check_model(lambda: VAE(encoder=nn.Linear(784, 40), decoder=nn.Linear(20, 784)),
                      TRAIN)
    assert isinstance(own, VAE)


def test_count_parameters_counts_every_weight():
    assert capstone.count_parameters(VAE()) == 652_824  # notebook 04's printed model
    assert capstone.count_parameters(nn.Linear(3, 2)) == 8


def test_the_packages_own_conv_vae_is_refused_even_as_a_base_or_a_part():
    class Mine(StudentConvVAE):
        pass

    class Wrapper(TinyVAE):
        def __init__(self) -> None:
            super().__init__()
            self.helper = StudentConvVAE()

    for factory in (StudentConvVAE, Mine, Wrapper):
        with pytest.raises(RuleError, match=r"vaelab\.tooling\.bench\.StudentConvVAE.*your own"):
            check_model(factory, TRAIN)


def test_a_likelihood_other_than_bernoulli_is_refused():
    def gaussian() -> VAE:
        return VAE(likelihood=FixedVarianceGaussian())

    with pytest.raises(RuleError, match="likelihood must be .*Bernoulli.*got FixedVariance"):
        check_model(gaussian, TRAIN)


def test_a_model_without_the_interface_or_latent_dim_is_refused():
    class NoDecode(nn.Module):
        likelihood = Bernoulli()

        def encode(self, x):
            return x, x

    class NoLatentDim(TinyVAE):
        def __init__(self) -> None:
            super().__init__()
            del self.latent_dim

    with pytest.raises(RuleError, match="lacks decode"):
        check_model(NoDecode, TRAIN)
    with pytest.raises(RuleError, match="needs an attribute latent_dim"):
        check_model(NoLatentDim, TRAIN)


def test_wrong_shapes_are_refused_with_what_was_expected():
    class Square(TinyVAE):
        def decode(self, z):
            return self.dec(z).view(-1, 28, 28)

    class OneOutput(TinyVAE):
        def encode(self, x):
            return self.enc(x)[:, :2], self.enc(x)[:, :1]

    with pytest.raises(RuleError,
                       match=r"logits \(B, 784\) = \(4, 784\).*got \(4, 28, 28\).*flatten"):
        check_model(Square, TRAIN)
    with pytest.raises(RuleError, match=r"encode's logvar must have shape .* got \(4, 1\)"):
        check_model(OneOutput, TRAIN)


def test_a_decoder_that_sees_the_encoders_input_is_refused():
    class Skip(TinyVAE):
        def encode(self, x):
            self.seen = x  # a "skip connection" from the encoder to the decoder
            return super().encode(x)

        def decode(self, z):
            return self.dec(z) + 10 * (2 * self.seen - 1)

    with pytest.raises(RuleError, match="decoder must depend on z alone"):
        check_model(Skip, TRAIN)


def test_layers_made_inside_decode_are_refused_with_where_to_build_them():
    class Fresh(TinyVAE):
        def decode(self, z):
            return nn.Linear(2, 784)(z)  # a new layer, new weights, at every call

    with pytest.raises(RuleError, match="other logits each time for the same z.*in __init__"):
        check_model(Fresh, TRAIN)


def test_weights_loaded_in_the_constructor_are_refused():
    trained = TinyVAE().state_dict()

    def pretrained() -> TinyVAE:
        model = TinyVAE()
        model.load_state_dict(trained)
        with torch.no_grad():  # even with a little noise of each instance's own
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        return model

    with pytest.raises(RuleError, match="same in every new instance.*earn nothing"):
        check_model(pretrained, TRAIN)


def test_constant_or_fixed_initial_vectors_are_fine():
    class FixedBiases(TinyVAE):
        def __init__(self) -> None:
            super().__init__()
            self.out_bias = nn.Parameter(torch.linspace(-3, 3, 784))  # say, a mean image
            self.scale = nn.Parameter(torch.ones(10, 20))  # a constant matrix

    check_model(FixedBiases, TRAIN)


def test_a_model_over_the_size_limit_is_refused(monkeypatch):
    monkeypatch.setattr(capstone, "MAX_PARAMETERS", 1000)
    with pytest.raises(RuleError,
                       match=r"TinyVAE holds 26,004 parameters and buffers, more than the 1,000"):
        check_model(TinyVAE, TRAIN)


def test_a_factory_that_fails_or_builds_no_module_is_refused():
    def broken():
        raise KeyError("hidden")

    with pytest.raises(RuleError, match="building the model failed: KeyError"):
        check_model(broken, TRAIN)
    with pytest.raises(RuleError, match="must build a torch.nn.Module, got int"):
        check_model(lambda: 3, TRAIN)
    with pytest.raises(RuleError, match="submit the model's class.*not an instance"):
        check_model(TinyVAE(), TRAIN)


# --------------------------------------------------------------------------- tiers, score

def test_tier_of_follows_the_thresholds():
    levels = {t.level: t for t in capstone.TIERS}
    assert levels[1].nll_below is None
    assert capstone.tier_of(math.nan) == capstone.tier_of(math.inf) == 0
    assert capstone.tier_of(levels[2].nll_below + 5) == 1
    assert capstone.tier_of(levels[2].nll_below - 1e-6) == 2
    assert capstone.tier_of(levels[3].nll_below - 1e-6) == 3
    thresholds = [t.nll_below for t in capstone.TIERS[1:]]
    assert thresholds == sorted(thresholds, reverse=True)  # each tier asks for more


def test_the_mlp_plan_is_notebook_04s_recipe_for_the_whole_budget():
    assert capstone.MLP_PLAN["epochs"] == capstone.BUDGET
    assert capstone.MLP_PLAN == {k: v for k, v in NOTEBOOK_TRAINING.items() if k != "seed"}
    check_plan(capstone.MLP_PLAN)


# ---------------------------------------------------------------------------------- grade

def test_grade_trains_a_fresh_instance_and_scores_it(cheap_cost):
    built = []

    def factory() -> TinyVAE:
        built.append(TinyVAE())
        return built[-1]

    plan = {"epochs": 2, "batch_size": 100, "lr": 1e-2}
    # One thread count for the three runs: train() follows the load between epochs, and
    # torch's sums split differently over 1 and 2 threads (the last bits of the NLL move).
    with runtime.fixed_threads(1):
        result = grade(factory, plan, TRAIN, SCORE, seed=3)
        assert result.model is built[-1] and len(result.history) == 2
        again = grade(factory, plan, TRAIN, SCORE, seed=3)
        other = grade(factory, plan, TRAIN, SCORE, seed=4)
    assert result.tier >= 1 and result.problem == ""
    assert math.isfinite(result.nll) and math.isfinite(result.neg_elbo)
    assert result.nll <= result.neg_elbo + 0.5  # -L_k lies below the -ELBO (k=1)
    assert result.tier == capstone.tier_of(result.nll)
    assert "tier" in result.report() and "NLL" in result.report()
    assert again.nll == result.nll  # the seed fixes the run
    assert other.nll != result.nll


def test_grade_measures_the_cost_for_real_and_refuses_a_plan_over_budget(monkeypatch):
    monkeypatch.setattr(capstone, "BUDGET", 0.01)
    result = grade(TinyVAE, {"epochs": 5}, TRAIN, SCORE)
    assert result.tier == 0 and result.model is None and result.history == []
    assert result.cost is not None and result.cost.steps == 5 * 469
    assert "over the budget of 0.01" in result.problem and "fewer epochs" in result.problem


def test_grade_gives_tier_0_with_the_reason_and_never_raises(cheap_cost):
    class Exploding(TinyVAE):
        def decode(self, z):
            return torch.exp(100 * self.dec(z))  # overflows to infinite logits

    result = grade(Exploding, {"epochs": 1, "lr": 1.0}, TRAIN, SCORE)
    # caught before training (decode's first output) or by training (the loss), by chance
    assert result.tier == 0 and re.search(r"non-finite|NaN or infinite", result.problem)
    class Ignoring(TinyVAE):
        def decode(self, z):
            return 0 * self.dec(z)  # every pixel 1 with probability 1/2, whatever z is

    result = grade(Ignoring, {"epochs": 1}, TRAIN, SCORE)
    assert result.tier == 0 and result.nll == pytest.approx(784 * math.log(2), rel=1e-4)
    assert "learned nothing" in result.problem
    result = grade(StudentConvVAE, {"epochs": 1}, TRAIN, SCORE)
    assert result.tier == 0 and "StudentConvVAE" in result.problem
    result = grade(TinyVAE, {"epochs": 1, "seed": 3}, TRAIN, SCORE)
    assert result.tier == 0 and "'seed'" in result.problem
    assert "tier 0: " in result.report()


def test_grade_catches_a_models_warnings_as_notes(cheap_cost):
    class Noisy(TinyVAE):
        def decode(self, z):
            warnings.warn("my decoder is experimental", UserWarning, stacklevel=1)
            return super().decode(z)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape to the caller (stderr)
        result = grade(Noisy, {"epochs": 1}, TRAIN, SCORE)
    assert result.tier >= 1
    assert result.notes == ["UserWarning: my decoder is experimental"]


def test_grade_on_a_gpu_when_asked_and_present():
    if not torch.cuda.is_available():
        pytest.skip("no GPU here")
    result = grade(TinyVAE, {"epochs": 1}, TRAIN, SCORE, device="cuda")
    assert result.tier >= 1 and next(result.model.parameters()).device.type == "cpu"


def test_the_pixel_baseline_is_the_nll_of_pixels_on_with_their_training_frequencies():
    train = torch.tensor([[0, 255], [255, 255]], dtype=torch.uint8)  # frequencies 1/2, 1
    images = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    expected = -math.log(0.5) - math.log(1 - 1e-3)  # the frequency 1 is clamped to 1 - 1e-3
    assert capstone.pixel_baseline(train, images) == pytest.approx(expected)
