"""RLPD's updates (Ball et al. 2023; P `rlpd/agents/sac/sac_learner.py`, `train_finetuning.py`).

**What one update is.** One `update` of the base's counters is one critic gradient step. After
a fragment of k env steps the base asks for k·G updates (G = `utd`); they come as k groups,
each one G×B batch drawn at once (B = train_batch_size_per_learner) and split into G
consecutive slices of B rows: G critic steps (each followed by its Polyak step), then one
actor step and one temperature step on the last slice. So per env step: G critic updates,
1 actor update, 1 temperature update; results report both counts (`critic_updates_lifetime`
= num_updates_lifetime, `actor_updates_lifetime`).

With `replay: mixed` each slice holds offline_ratio·B dataset rows and the rest online rows
(P interleaves the two halves, `combine`, so every slice is 50/50).

With a′ ~ π(·|s′), ã ~ π(·|s), M a fresh random subset of `num_min_qs` of the N target critics:
    y      = r + γ (1 − d) [ min_{i∈M} Q̄_i(s′, a′) − α log π(a′|s′) ]
    L_Q    = mean_{i, batch} (Q_i(s, a) − y)²                     (P: ((qs − y)²).mean())
    L_π    = E[ α log π(ã|s) − mean_i Q_i(s, ã) ]
    L(α)   = α · (H − H̄),  H = −E log π(ã|s),  H̄ = −|A|/2           (P `update_temperature`)
The target and actor reuse SAC's `sac_target` / `sac_actor_loss` with RLPD's reductions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.targets import SoftUpdater
from algorithms.sac.sac_learner import sac_actor_loss, sac_target


def subset_min(num_min_qs: int):
    """min over a fresh random subset of `num_min_qs` ensemble members (P `subsample_ensemble`)."""

    def reduce(q: torch.Tensor) -> torch.Tensor:
        n = q.shape[0]
        idx = torch.randperm(n, device=q.device)[:num_min_qs] if num_min_qs < n else torch.arange(n, device=q.device)
        return q[idx].min(dim=0).values

    return reduce


def ensemble_mean(q: torch.Tensor) -> torch.Tensor:
    return q.mean(dim=0)


def rlpd_critic_loss(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean over members and rows of (Q_i(s, a) − y)² for [N, B] values."""
    return ((q - y.unsqueeze(0)) ** 2).mean()


def rlpd_temperature_loss(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """L(α) = α · (H − H̄) with H = −mean log π held fixed: α falls while the entropy is above H̄."""
    return log_alpha.exp() * (-log_pi.detach().mean() - target_entropy)


def slice_order(n_rows: int, n_first: int, g: int, device: torch.device) -> torch.Tensor:
    """A permutation of [first rows (dataset) ; the rest (online)] so that each of g consecutive
    slices holds an equal share of both (P's `combine` for ratio 0.5, for any ratio)."""
    first = torch.tensor_split(torch.arange(n_first, device=device), g)
    rest = torch.tensor_split(torch.arange(n_first, n_rows, device=device), g)
    return torch.cat([torch.cat([a, b]) for a, b in zip(first, rest)])


class RLPDUpdates(Updates):
    REPLAY_FIELDS = ("source",)  # to report each slice's dataset fraction
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
        return {"critic": (module.critics, config.critic_lr), "actor": (module.actor, config.actor_lr), "alpha": ([module.log_alpha], config.alpha_lr)}

    def setup(self) -> None:
        c, m = self.config, self.m
        self.g = c.utd
        self.target_entropy = -m.act_dim / 2.0 if c.target_entropy is None else float(c.target_entropy)
        self.soft_update = SoftUpdater([(m.critics_target, m.critics)], c.tau)
        self.reduce_target = subset_min(c.num_min_qs)
        self._order: dict[tuple[int, int], torch.Tensor] = {}

    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        """num_updates / G groups, each one G×B batch (sliced in `update`)."""
        g = self.g
        if num_updates % g:
            raise ValueError(f"RLPD runs whole groups of utd={g} critic updates; got {num_updates}")
        s = self.sampler
        rows = g * batch_size
        for big in s.batches(num_updates // g, rows):
            if s.mode == "mixed":  # [dataset rows ; online rows] → slices of both
                n_first = int(round(rows * s.offline_ratio))
                key = (rows, n_first)
                if key not in self._order:
                    self._order[key] = slice_order(rows, n_first, g, big["obs"].device)
                big = {k: v[self._order[key]] for k, v in big.items()}
            yield big

    def update(self, big: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One group: G critic steps on the G slices, then the actor and α on the last slice."""
        m, c = self.m, self.config
        b_all = self.normalised(big)
        slices = [{k: v for k, v in zip(b_all, t)} for t in zip(*(torch.chunk(v, self.g) for v in b_all.values()))]
        alpha = m.log_alpha.exp().detach()
        critic_losses = []
        for b in slices:
            y = sac_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], c.gamma, alpha, c.backup_entropy, self.reduce_target)
            q = m.critics(b["obs"], b["actions"])
            loss_q = rlpd_critic_loss(q, y)
            self.step("critic", loss_q)
            self.soft_update()
            critic_losses.append(loss_q.detach())
        b = slices[-1]
        m.critics.requires_grad_(False)
        loss_pi, log_pi = sac_actor_loss(m.actor, m.critics, b["obs"], alpha, ensemble_mean)
        self.step("actor", loss_pi)
        m.critics.requires_grad_(True)
        metrics = {"critic_loss": torch.stack(critic_losses).mean(), "actor_loss": loss_pi.detach(), "q_mean": q.detach().mean(),
                   "entropy": -log_pi.detach().mean(), "alpha": alpha}
        if c.learn_alpha:
            loss_alpha = rlpd_temperature_loss(m.log_alpha, log_pi, self.target_entropy)
            self.step("alpha", loss_alpha)
            metrics["alpha_loss"] = loss_alpha.detach()
        if "source" in b:
            metrics["offline_fraction"] = 1.0 - b["source"].mean()
        return metrics
