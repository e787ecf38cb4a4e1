"""IQL+OPT (Shin et al., ICML 2025, on IQL's backbone): online pre-training of new Q_on-pt and V_on-pt, then AWR on the κ-blended advantage."""

from algorithms.registry import lazy_exports, register

register(
    "opt_iql", paradigms=("hybrid",), config="algorithms.opt_iql.opt_iql:OPTIQLConfig",
    summary="IQL+OPT: an IQL checkpoint fine-tuned with OPT: online pre-training of a new Q_on-pt and V_on-pt (meta-adaptation of IQL's losses), then IQL with the actor on exp(β·A_κ), A_κ the κ-blend of the offline and online advantages.",
    paper="Shin et al. 2025, Online Pre-Training for Offline-to-Online Reinforcement Learning (ICML); backbone: Kostrikov et al. 2022, IQL",
)
__getattr__ = lazy_exports(__name__, {"OPTIQL": "opt_iql", "OPTIQLConfig": "opt_iql", "OPTIQLSettings": "opt_iql",
                                      "OPTIQLRLModule": "opt_iql_module", "OPTIQLUpdates": "opt_iql_learner"})
