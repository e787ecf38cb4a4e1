"""PPO (Schulman et al. 2017) as an mprl phase: RLlib's own PPO with mprl's counters, budgets, evaluation and transfers."""

from algorithms.registry import lazy_exports, register

register(
    "ppo", paradigms=("online",), config="algorithms.ppo.ppo:PPOConfig",
    summary="PPO: clipped surrogate objective, GAE, RLlib's own on-policy loop (env runners scale out with num_env_runners).",
    paper="Schulman, Wolski, Dhariwal, Radford & Klimov 2017, Proximal Policy Optimization Algorithms (arXiv:1707.06347)",
)
__getattr__ = lazy_exports(__name__, {"PPO": "ppo", "PPOConfig": "ppo", "PPOSettings": "ppo"})
