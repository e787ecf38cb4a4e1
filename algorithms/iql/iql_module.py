"""IQL's RL module (CORL finetune/iql.py): actor, twin Q with a target copy, V(s), the
observation normaliser, and the reward scale its critics were trained with."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble, ValueNetwork


class IQLRLModule(MPRLModule):
    """`actor: gaussian` is CORL's GaussianPolicy: mean tanh(MLP(s)), state-independent log σ
    (init 0, clamped to [−20, 2]); `actor: deterministic` is its DeterministicPolicy. Both are
    tanh of the same layers for the deterministic action, so IQL ↔ TD3-family actors transfer
    exactly. Only the critics have a target copy (Polyak on Q only).

    `reward_scale` is the factor `normalize_reward` multiplied the dataset's rewards by
    (1000 / (max − min episode return)); it is a buffer so that it travels with checkpoints
    and warm starts, and an online phase without a dataset scales its rewards the same way.
    """

    ROLES = (Role("actor", "actor"), Role("critics", "q"), Role("value", "v"))
    TARGETS = ("critics",)
    DEFAULT_MODEL_CONFIG: ClassVar[dict[str, Any]] = {"hidden": [256, 256], "actor": "gaussian", "exploration_noise": 0.03}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, cfg["actor"], squash="tanh_mean", state_dependent_std=False)
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        self.value = ValueNetwork(self.obs_dim, cfg["hidden"])
        self.register_buffer("reward_scale", torch.ones(()))
