"""The RL module every mprl algorithm subclasses: networks that declare their roles.

An algorithm's module builds its networks in `build(cfg)` and lists them in `ROLES`
(attribute → role). The compatibility checker (mprl.transfer) reads that declaration, so a
new algorithm needs no edit there. Target copies are made here, once, for every role listed
in `TARGETS`; the learner keeps them in sync per minibatch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from algorithms.common.networks import DeterministicActor, GaussianActor, ObsNormalizer


@dataclass(frozen=True)
class Role:
    """One network's job. `role` names it for transfers: `actor`, `q` (a critic ensemble;
    `q_on` etc. for a second one), `v` (state value); targets get the `_target` suffix."""

    attr: str
    role: str


class MPRLModule(TorchRLModule, TargetNetworkAPI):
    """Observation normaliser + the algorithm's networks; acts in environment units.

    Deterministic actors explore with Gaussian noise of σ · half-range (TD3); Gaussian actors
    by sampling their distribution (SAC, IQL, AWAC, CQL).
    """

    #: attribute → role of each network, in the order the checker reports them
    ROLES: ClassVar[tuple[Role, ...]] = ()
    #: attributes that get a target copy `<attr>_target`
    TARGETS: ClassVar[tuple[str, ...]] = ()
    #: model_config defaults (the algorithm config passes its settings here)
    DEFAULT_MODEL_CONFIG: ClassVar[dict[str, Any]] = {"hidden": [256, 256], "exploration_noise": 0.1}

    def setup(self) -> None:
        cfg = {**self.DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        self.exploration_noise = float(cfg.get("exploration_noise", 0.0))
        self.obs_dim = int(np.prod(self.observation_space.shape))
        self.act_dim = int(np.prod(self.action_space.shape))
        self.normalizer = ObsNormalizer(self.obs_dim)
        self.build(cfg)
        for attr in self.TARGETS:
            setattr(self, f"{attr}_target", copy.deepcopy(getattr(self, attr)).requires_grad_(False))

    def build(self, cfg: dict[str, Any]) -> None:
        """Attach the networks named in ROLES (`self.obs_dim`, `self.act_dim`, the spaces are set)."""
        raise NotImplementedError

    def declared_roles(self) -> list[Role]:
        """ROLES plus the target copies, for mprl.transfer."""
        out = list(self.ROLES)
        by_attr = {r.attr: r for r in self.ROLES}
        out += [Role(f"{a}_target", f"{by_attr[a].role}_target") for a in self.TARGETS if a in by_attr]
        return out

    # -- acting ---------------------------------------------------------------------------
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action a = π(normalise(s)) in environment units (evaluation, Serve)."""
        return self.actor(self.normalizer(obs.float()))

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        obs_n = self.normalizer(obs.float())
        actor = self.actor
        if isinstance(actor, GaussianActor):
            return actor.sample(obs_n)[0]
        a = actor(obs_n)
        return actor.clip(a + torch.randn_like(a) * self.exploration_noise * actor.action_scale)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            return {Columns.ACTIONS: self.act(batch[Columns.OBS])}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            return {Columns.ACTIONS: self.explore(batch[Columns.OBS])}

    # -- TargetNetworkAPI: targets are made in setup() and kept in sync by the learner ----
    def make_target_networks(self) -> None:
        pass

    def get_target_network_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(getattr(self, a), getattr(self, f"{a}_target")) for a in self.TARGETS]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("mprl learners compute targets in their own update().")


def build_actor(module: MPRLModule, cfg: dict[str, Any], kind: str, **gaussian: Any) -> DeterministicActor | GaussianActor:
    """A deterministic or Gaussian actor on the module's spaces (`cfg['hidden']`)."""
    low, high = module.action_space.low, module.action_space.high
    if kind == "deterministic":
        return DeterministicActor(module.obs_dim, low, high, cfg["hidden"])
    return GaussianActor(module.obs_dim, low, high, cfg["hidden"], **gaussian)
