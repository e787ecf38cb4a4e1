"""RLPD (Ball et al. 2023): SAC with a LayerNorm critic ensemble, symmetric sampling and UTD 20, no pre-training."""

from algorithms.registry import lazy_exports, register

register(
    "rlpd", paradigms=("hybrid",), config="algorithms.rlpd.rlpd:RLPDConfig",
    summary="RLPD: SAC with 10 LayerNorm critics (target: min of a fresh random pair), 50/50 dataset/online batches, UTD 20 from one large batch; no pre-training.",
    paper="Ball, Smith, Kostrikov & Levine 2023, Efficient Online Reinforcement Learning with Offline Data (ICML)",
)
__getattr__ = lazy_exports(__name__, {"RLPD": "rlpd", "RLPDConfig": "rlpd", "RLPDSettings": "rlpd", "RLPDRLModule": "rlpd_module", "RLPDUpdates": "rlpd_learner"})
