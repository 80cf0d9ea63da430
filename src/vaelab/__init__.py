"""vaelab: shared helpers for the notebooks that go from maximum likelihood to a VAE.

Import from the module that holds a concept, for example
``from vaelab.mle import gaussian_log_likelihood``. Layers, bottom to top:
data and maths (no plotting, no widgets), models and training, presentation
(``vaelab.plots``, ``vaelab.widgets``, ``vaelab.display``), teaching
(``vaelab.exercises``) and tooling (``vaelab.tooling``). Importing the package first
sets the CPU thread policy (``vaelab.runtime``) before anything loads torch.
"""

from vaelab.runtime import apply_thread_policy

apply_thread_policy()

__version__ = "0.1.0"
