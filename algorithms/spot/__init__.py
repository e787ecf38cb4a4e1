"""SPOT (Wu et al. 2022): TD3 with a VAE density penalty on the actor (support constraint)."""

from algorithms.registry import lazy_exports, register

register(
    "spot", paradigms=("offline", "hybrid"), config="algorithms.spot.spot:SPOTConfig",
    summary="SPOT: a VAE behaviour model pre-trained first, then TD3 with λ·ELBO(s, π(s)) in the actor loss; λ decays online.",
    paper="Wu, Wu, Qiu, Wang & Long 2022, Supported Policy Optimization for Offline Reinforcement Learning",
    default_paradigm="offline",
)
__getattr__ = lazy_exports(__name__, {"SPOT": "spot", "SPOTConfig": "spot", "SPOTSettings": "spot", "SPOTRLModule": "spot_module", "SPOTUpdates": "spot_learner"})
