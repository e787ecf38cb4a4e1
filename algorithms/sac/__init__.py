"""SAC (Haarnoja et al. 2018): tanh-Gaussian actor, twin critics, automatic temperature."""

from algorithms.registry import lazy_exports, register

register(
    "sac", paradigms=("online", "hybrid"), config="algorithms.sac.sac:SACConfig",
    summary="SAC: tanh-Gaussian actor, twin critics, automatic temperature (H̄ = −|A|); hybrid phases mix the dataset into each batch.",
    paper="Haarnoja et al. 2018, Soft Actor-Critic Algorithms and Applications (arXiv:1812.05905)",
)
__getattr__ = lazy_exports(__name__, {"SAC": "sac", "SACConfig": "sac", "SACSettings": "sac", "SACRLModule": "sac_module", "SACUpdates": "sac_learner"})
