"""CQL's RL module: SAC's (tanh-Gaussian actor with state-dependent log σ, twin critics, their
targets, the temperature log α) plus the Lagrange multiplier log α′, with CORL's depth and init.

CORL's actor computes log σ = m·y + b with learnt scalars m (init 1) and b (init −1); that is
the same function class as a plain head whose log-std rows start with bias −1, which is what
this module builds, so its actor has SAC's exact shape and transfers into SAC exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from algorithms.common.module import build_actor
from algorithms.common.networks import CriticEnsemble
from algorithms.sac.sac_module import SACRLModule

LOG_STD_OFFSET = -1.0  # CORL's TanhGaussianPolicy log_std_offset


def orthogonal_init_(seq: nn.Sequential) -> None:
    """CORL's init_module_weights(orthogonal_init=True): hidden layers orthogonal with gain √2, the output gain 1e-2, biases 0."""
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    for lin in linears:
        nn.init.orthogonal_(lin.weight, gain=math.sqrt(2.0) if lin is not linears[-1] else 1e-2)
        nn.init.zeros_(lin.bias)


class CQLRLModule(SACRLModule):
    """SAC's roles (actor, critics → q, critics_target), so CQL checkpoints transfer into SAC exactly."""

    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256, 256], "initial_alpha": 1.0, "q_n_hidden_layers": 3, "orthogonal_init": True}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "gaussian", squash="tanh_sample", state_dependent_std=True)
        out = self.actor.net[-1]  # CORL: Xavier-uniform output layer with gain 1e-2, bias 0 (log-std rows: the offset)
        nn.init.xavier_uniform_(out.weight, gain=1e-2)
        with torch.no_grad():
            out.bias.zero_()
            out.bias[self.act_dim:] = LOG_STD_OFFSET
        hidden = [cfg["hidden"][-1]] * int(cfg["q_n_hidden_layers"])
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, hidden, n=2)
        for q in self.critics.qs:
            if cfg["orthogonal_init"]:
                orthogonal_init_(q)
            else:
                nn.init.xavier_uniform_(q[-1].weight, gain=1e-2)
                nn.init.zeros_(q[-1].bias)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(float(cfg["initial_alpha"]))))  # CORL: log α = 0
        self.log_alpha_prime = nn.Parameter(torch.ones(()))  # α′ = e at the start (CORL Scalar(1.0))
