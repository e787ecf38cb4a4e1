"""PARS (Kim et al. 2025): TD3+BC with reward scaling, LayerNorm critic ensembles and a penalty on infeasible actions."""

from algorithms.registry import lazy_exports, register

register(
    "pars", paradigms=("offline", "online", "hybrid"), config="algorithms.pars.pars:PARSConfig",
    summary="PARS: TD3+BC with reward scaling and LayerNorm critics (RS-LN), an ensemble with random target subsets, Q pulled to Q_min on infeasible actions (PA); online UTD 20 with mixed replay.",
    paper="Kim et al. 2025, Penalizing Infeasible Actions and Reward Scaling in Reinforcement Learning with Offline Data (ICML)",
    default_paradigm="offline",
)
__getattr__ = lazy_exports(__name__, {"PARS": "pars", "PARSConfig": "pars", "PARSSettings": "pars", "PARSRLModule": "pars_module", "PARSUpdates": "pars_learner"})
