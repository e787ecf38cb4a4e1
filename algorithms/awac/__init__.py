"""AWAC (Nair et al. 2020): advantage-weighted actor-critic, offline, online and offline → online."""

from algorithms.registry import lazy_exports, register

register(
    "awac", paradigms=("offline", "online", "hybrid"), config="algorithms.awac.awac:AWACConfig", default_paradigm="offline",
    summary="AWAC: twin critics on π's own actions, actor by advantage-weighted log-likelihood exp(A/λ) (clip 100); fine-tunes on one shared buffer.",
    paper="Nair, Gupta, Dalal & Levine 2020, AWAC: Accelerating Online Reinforcement Learning with Offline Datasets",
)
__getattr__ = lazy_exports(__name__, {"AWAC": "awac", "AWACConfig": "awac", "AWACSettings": "awac", "AWACRLModule": "awac_module", "AWACUpdates": "awac_learner"})
