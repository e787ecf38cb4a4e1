"""SAC's RL module: tanh-Gaussian actor (state-dependent log-std), twin critics, their targets,
the temperature log α and the observation normaliser.

CQL, Cal-QL, RLPD and Off2On build on the same roles (`actor`, `critics` → q, targets), so
their checkpoints transfer into each other and into the TD3 family by role.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble


class SACRLModule(MPRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("critics",)  # SAC (v2) has no actor target: a′ ~ π(s′) from the current actor
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256], "initial_alpha": 1.0, "n_critics": 2}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "gaussian", squash="tanh_sample", state_dependent_std=True)
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=int(cfg["n_critics"]))
        # log α lives in the module so it is checkpointed with the networks (and carried SAC → SAC).
        self.log_alpha = nn.Parameter(torch.tensor(math.log(float(cfg["initial_alpha"]))))
