"""SPOT+OPT (Shin et al., ICML 2025, on SPOT's backbone): online pre-training of Q_on-pt, then κ-blended SPOT fine-tuning."""

from algorithms.registry import lazy_exports, register

register(
    "opt_spot", paradigms=("hybrid",), config="algorithms.opt_spot.opt_spot:OPTSPOTConfig",
    summary="SPOT+OPT: a SPOT checkpoint (actor, critics, VAE) fine-tuned with OPT: online pre-training of a new critic Q_on-pt, then SPOT's density-penalised actor on the κ-blend of Q_off-pt and Q_on-pt.",
    paper="Shin et al. 2025, Online Pre-Training for Offline-to-Online Reinforcement Learning (ICML); backbone: Wu et al. 2022, SPOT",
)
__getattr__ = lazy_exports(__name__, {"OPTSPOT": "opt_spot", "OPTSPOTConfig": "opt_spot", "OPTSPOTSettings": "opt_spot",
                                      "OPTSPOTRLModule": "opt_spot_module", "OPTSPOTUpdates": "opt_spot_learner"})
