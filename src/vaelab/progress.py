"""Progress bars that obey both the caller and the environment.

`make test` and `make outputs` set ``TQDM_DISABLE=1`` to keep bars (and their timings) out
of the stored notebook outputs. tqdm honours that variable only for arguments the caller
leaves out, and its notebook bar (what ``tqdm.auto`` picks in Jupyter) ignores it, so the
variable is read here, for every kind of bar.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

_TRUE = {"1", "true", "yes", "on"}


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar (notebook-aware); off when ``enabled`` is False or ``TQDM_DISABLE`` is set."""
    if not isinstance(enabled, bool | np.bool_):  # "no" would count as True
        raise TypeError(f"progress must be True or False, got {enabled!r}")
    if not enabled or os.environ.get("TQDM_DISABLE", "").strip().lower() in _TRUE:
        options["disable"] = True
    return tqdm(iterable, **options)
