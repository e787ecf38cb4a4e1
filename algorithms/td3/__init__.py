"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor updates."""

from algorithms.registry import lazy_exports, register

register(
    "td3", paradigms=("online", "hybrid"), config="algorithms.td3.td3:TD3Config",
    summary="TD3: twin critics, target smoothing, delayed actor; hybrid phases add the dataset to its replay.",
    paper="Fujimoto, van Hoof & Meger 2018, Addressing Function Approximation Error in Actor-Critic Methods",
)
__getattr__ = lazy_exports(__name__, {"TD3": "td3", "TD3Config": "td3", "TD3Settings": "td3", "TD3RLModule": "td3_module", "TD3Updates": "td3_learner"})
