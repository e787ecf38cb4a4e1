"""Cal-QL (Nakamoto et al. 2023): CQL with policy-action Q-values bounded below by the Monte-Carlo return-to-go."""

from algorithms.registry import lazy_exports, register

register(
    "cal_ql", paradigms=("offline", "hybrid"), config="algorithms.cal_ql.cal_ql:CalQLConfig",
    summary="Cal-QL: CQL whose policy-action Q-values in the conservative term are bounded below by the return-to-go V^μ(s) of the data (online episodes too); 50/50 mixed fine-tuning.",
    paper="Nakamoto, Zhai, Singh, Sobol Mark, Ma, Finn, Kumar & Levine 2023, Cal-QL: Calibrated Offline RL Pre-Training for Efficient Online Fine-Tuning (NeurIPS)",
    default_paradigm="offline",
)
__getattr__ = lazy_exports(__name__, {"CalQL": "cal_ql", "CalQLConfig": "cal_ql", "CalQLSettings": "cal_ql", "CalQLUpdates": "cal_ql_learner"})
