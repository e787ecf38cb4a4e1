"""TD3+OPT (Shin et al., ICML 2025): online pre-training of a new critic, then κ-blended fine-tuning."""

from algorithms.registry import lazy_exports, register

register(
    "opt", paradigms=("hybrid",), config="algorithms.opt.opt:OPTConfig",
    summary="TD3+OPT: online pre-training of a new critic Q_on-pt (meta-adaptation), then κ-blended fine-tuning with balanced replay.",
    paper="Shin et al. 2025, Online Pre-Training for Offline-to-Online Reinforcement Learning (ICML)",
)
__getattr__ = lazy_exports(__name__, {"OPT": "opt", "OPTConfig": "opt", "OPTUpdates": "opt_learner", "OPTRLModule": "opt_module"})
