"""seed_everything: NumPy integers are seeds, bools are not thread counts, a thread count set
before it stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.seeding import seed_everything


def test_numpy_integer_seed_and_threads_are_accepted_and_repeat_draws():
    threads = torch.get_num_threads()
    try:
        a = seed_everything(np.int64(5), threads=np.int64(1)).random()  # random.seed refused it
        assert torch.get_num_threads() == 1
        b = seed_everything(5, threads=1).random()
    finally:
        torch.set_num_threads(threads)
    assert a == b


def test_a_thread_count_set_before_stays():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        seed_everything(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"seed": 2**64}, "seed must be below 2"),  # was torch's "Overflow when unpacking"
        ({"threads": True}, "threads must be an integer >= 1"),  # was torch's RuntimeError
        ({"threads": 0}, "threads must be an integer >= 1"),
    ],
)
def test_bad_seed_or_threads_is_a_clear_error(kwargs, match):
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match=match):
        seed_everything(**kwargs)
    assert torch.get_num_threads() == threads
