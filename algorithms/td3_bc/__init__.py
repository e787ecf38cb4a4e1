"""TD3+BC (Fujimoto & Gu 2021): offline TD3 with a normalised behaviour-cloning term."""

from algorithms.registry import lazy_exports, register

register(
    "td3_bc", paradigms=("offline", "hybrid"), config="algorithms.td3_bc.td3_bc:TD3BCConfig", default_paradigm="offline",
    summary="TD3+BC: TD3 with a normalised behaviour-cloning term in the actor loss (α = 2.5); fine-tuning keeps it, or decays it (bc_cool).",
    paper="Fujimoto & Gu 2021, A Minimalist Approach to Offline Reinforcement Learning",
)
__getattr__ = lazy_exports(__name__, {"TD3BC": "td3_bc", "TD3BCConfig": "td3_bc", "TD3BCUpdates": "td3_bc"})
