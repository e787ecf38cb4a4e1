"""SPOT's RL module: TD3's deterministic actor and twin critics (with their targets) plus the
VAE behaviour model π_β(a|s) that the density penalty reads.

The VAE is not a transfer role (no other algorithm has one): the checker copies it by name
and shape from another SPOT checkpoint, so a fine-tuning phase started from a SPOT offline
phase keeps the pre-trained behaviour model, and `vae_updates` (a buffer) says how many VAE
updates it has had, so that phase skips the VAE stage.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble, mlp


class BehaviourVAE(nn.Module):
    """Conditional VAE over actions in [-1, 1] units (S `vae.py`, CORL `finetune/spot.py`):
    encoder (s, a) → h → h → (μ, log σ) of z (|z| = 2|A|, log σ clamped to [−4, 15]),
    decoder (s, z) → h → h → tanh."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 750, latent_dim: int | None = None) -> None:
        super().__init__()
        self.latent_dim = latent_dim or 2 * act_dim
        self.encoder = mlp(obs_dim + act_dim, 2 * self.latent_dim, [hidden, hidden])
        self.decoder = mlp(obs_dim + self.latent_dim, act_dim, [hidden, hidden])

    def encode(self, obs: torch.Tensor, a_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(torch.cat([obs, a_unit], -1))
        mean, log_std = out[..., : self.latent_dim], out[..., self.latent_dim :]
        return mean, log_std.clamp(-4.0, 15.0).exp()

    def decode(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(torch.cat([obs, z], -1)))

    def elbo_loss(self, obs: torch.Tensor, a_unit: torch.Tensor, beta: float) -> torch.Tensor:
        """−ELBO up to a positive scale and a constant, per sample ([B]), with one z sample:
        mean_j (â_j − a_j)² + β · mean_k KL(q(z_k|s, a) ‖ N(0, 1)) (CORL's `elbo_loss`)."""
        mean, std = self.encode(obs, a_unit)
        z = mean + std * torch.randn_like(std)
        recon = ((self.decode(obs, z) - a_unit) ** 2).mean(-1)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean(-1)
        return recon + beta * kl


def uniform_head_init_(seq: nn.Sequential, init_w: float | None) -> None:
    """CORL's `weights_init`: the output layer's weight and bias ~ U(−init_w, init_w)."""
    if init_w is not None:
        head = [m for m in seq if isinstance(m, nn.Linear)][-1]
        nn.init.uniform_(head.weight, -init_w, init_w)
        nn.init.uniform_(head.bias, -init_w, init_w)


class SPOTRLModule(MPRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("actor", "critics")
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256], "exploration_noise": 0.1, "vae_hidden": 750, "vae_latent_dim": None,
                            "actor_init_w": 1e-3, "critic_init_w": 3e-3}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "deterministic")
        uniform_head_init_(self.actor.net, cfg["actor_init_w"])
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        for q in self.critics.qs:
            uniform_head_init_(q, cfg["critic_init_w"])
        self.vae = BehaviourVAE(self.obs_dim, self.act_dim, int(cfg["vae_hidden"]), cfg["vae_latent_dim"])
        self.register_buffer("vae_updates", torch.zeros(()))
