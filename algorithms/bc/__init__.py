"""BC / x%-BC: behaviour cloning (deterministic squared error or Gaussian log-likelihood),
optionally on the top fraction of the dataset's episodes by return (10%-BC)."""

from algorithms.registry import lazy_exports, register

register(
    "bc", paradigms=("offline",), config="algorithms.bc.bc:BCConfig",
    summary="BC: behaviour cloning, ‖π(s)−a‖² or −log π(a|s); top_fraction 0.1 gives 10%-BC (best episodes by return).",
    paper="Pomerleau 1991 (ALVINN); 10%-BC: Chen et al. 2021, Decision Transformer",
)
__getattr__ = lazy_exports(__name__, {"BC": "bc", "BCConfig": "bc", "BCSettings": "bc", "BCRLModule": "bc_module", "BCUpdates": "bc_learner"})
