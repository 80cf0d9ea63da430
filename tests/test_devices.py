"""vaelab.devices: one device choice, with errors that say what to pass."""

import pytest
import torch

from vaelab.devices import choose_device


def test_default_is_the_gpu_when_present_else_the_cpu():
    assert choose_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["cpux", "gpu", 3.5])
def test_misspelt_devices_are_refused(bad):
    with pytest.raises(ValueError, match="device must be"):
        choose_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(ValueError, match="no GPU"):
        choose_device("cuda")
