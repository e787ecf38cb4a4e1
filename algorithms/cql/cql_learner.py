"""CQL's updates, in CORL's order (algorithms/offline/cql.py, ContinuousCQL.train): the
actor, temperature and critic losses are all computed with this update's parameters, then
α, the actor and the critics (with α′ in the Lagrange variant) step, then the targets move.
The SAC pieces are SAC's own (algorithms.sac.sac_learner); this file adds the conservative
term, the Lagrange multiplier and the max-target backup.

Actions are in environment units outside the actor; densities (log π, the uniform 0.5^|A|)
are in [-1, 1] units, as the actor's `sample()` reports them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.networks import CriticEnsemble, GaussianActor
from algorithms.common.schedules import decayed
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import td_loss
from algorithms.sac.sac_learner import default_target_entropy, min_q, sac_actor_loss, sac_target, temperature_loss


def repeat_states(obs: torch.Tensor, n: int) -> torch.Tensor:
    """[B, d] → [B, n, d] (CORL's extend_and_repeat)."""
    return obs.unsqueeze(1).expand(-1, n, -1)


@torch.no_grad()
def max_backup_target(actor: GaussianActor, critics_target: CriticEnsemble, next_obs: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                      gamma: float, alpha: torch.Tensor, backup_entropy: bool, n_actions: int) -> torch.Tensor:
    """CQL's max-target backup: y = r + γ (1 − d) max_k min_j Q̄_j(s′, a′_k) over N actions a′_k ~ π(·|s′)
    (− α log π of the chosen action with backup_entropy)."""
    next_rep = repeat_states(next_obs, n_actions)
    next_a, next_log_pi = actor.sample(next_rep)  # [B, N, |A|], [B, N]
    q_next, k = min_q(critics_target(next_rep, next_a)).max(dim=-1)
    if backup_entropy:
        q_next = q_next - alpha * next_log_pi.gather(-1, k.unsqueeze(-1)).squeeze(-1)
    return rewards + gamma * (1.0 - terminals) * q_next


def bellman_target(actor: GaussianActor, critics_target: CriticEnsemble, next_obs: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                   gamma: float, alpha: torch.Tensor, backup_entropy: bool, max_backup_actions: int = 0) -> torch.Tensor:
    """SAC's target y = r + γ (1 − d) min_j Q̄_j(s′, a′), or the max backup over `max_backup_actions` actions."""
    if max_backup_actions:
        return max_backup_target(actor, critics_target, next_obs, rewards, terminals, gamma, alpha, backup_entropy, max_backup_actions)
    return sac_target(actor, critics_target, next_obs, rewards, terminals, gamma, alpha, backup_entropy)


# -- the conservative term -------------------------------------------------------------------


def cql_logsumexp(q_rand: torch.Tensor, q_pi: torch.Tensor, log_pi: torch.Tensor, q_pi_next: torch.Tensor, log_pi_next: torch.Tensor,
                  act_dim: int, temp: float, q_data: torch.Tensor | None = None) -> torch.Tensor:
    """T · logsumexp over the 3N candidates of each state, [n, B, N] inputs → [n, B].

    Importance-weighted (CORL's cql_importance_sample): [Q(s, a_unif) − log 0.5^|A|],
    [Q(s, a_π(s′)) − log π], [Q(s, a_π(s)) − log π]. With `q_data` ([n, B]) the plain
    variant instead: logsumexp over Q(s, a_unif), Q(s, a_data), Q(s, a_π(s′)), Q(s, a_π(s)).
    """
    if q_data is None:
        log_uniform = act_dim * math.log(0.5)
        cat = torch.cat([q_rand - log_uniform, q_pi_next - log_pi_next.unsqueeze(0), q_pi - log_pi.unsqueeze(0)], dim=-1)
    else:
        cat = torch.cat([q_rand, q_data.unsqueeze(-1), q_pi_next, q_pi], dim=-1)
    return torch.logsumexp(cat / temp, dim=-1) * temp


def cql_diff(lse: torch.Tensor, q_data: torch.Tensor, clip_min: float, clip_max: float) -> torch.Tensor:
    """E[clip(logsumexp − Q_i(s, a_data), clip_min, clip_max)] per critic i: [n, B] → [n]."""
    return (lse - q_data).clamp(clip_min, clip_max).mean(dim=-1)


@torch.no_grad()
def cql_actions(actor: GaussianActor, obs: torch.Tensor, next_obs: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """N uniform actions over the action box, N of π(·|s) and N of π(·|s′) per state (no gradient to the actor), with log π."""
    obs_rep = repeat_states(obs, n)
    u = torch.rand(*obs_rep.shape[:-1], actor.act_dim, device=obs.device) * 2.0 - 1.0
    a_pi, log_pi = actor.sample(obs_rep)
    a_next, log_pi_next = actor.sample(repeat_states(next_obs, n))
    return {"obs": obs_rep, "rand": actor.to_env(u), "pi": a_pi, "log_pi": log_pi, "pi_next": a_next, "log_pi_next": log_pi_next}


def lagrange_multiplier(log_alpha_prime: torch.Tensor) -> torch.Tensor:
    """α′ = clamp(exp(log α′), 0, 1e6)."""
    return log_alpha_prime.exp().clamp(0.0, 1e6)


class CQLUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
        groups: dict[str, tuple[nn.Module | list[nn.Parameter], float]] = {
            "actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr)}
        if config.learn_alpha:
            groups["alpha"] = ([module.log_alpha], config.alpha_lr)
        if config.cql_lagrange:
            groups["alpha_prime"] = ([module.log_alpha_prime], config.cql_lagrange_lr)
        return groups

    def setup(self) -> None:
        c = self.config
        self.soft_update = SoftUpdater([(self.m.critics_target, self.m.critics)], c.tau)
        self.target_entropy = default_target_entropy(self.m.act_dim) if c.target_entropy is None else float(c.target_entropy)
        self.cql_alpha = self.current_cql_alpha()

    def current_cql_alpha(self) -> float:
        """α_cql offline; online cql_alpha_online, decayed over env steps with cql_alpha_cool."""
        c = self.config
        if c.paradigm == "offline":
            return c.cql_alpha
        if not getattr(c, "cql_alpha_cool", False):
            return c.cql_alpha_online
        horizon = c.cql_alpha_cool_steps or getattr(c, "budget_env_steps", None) or 1_000_000
        return decayed(c.cql_alpha_online, self.env_steps, horizon, c.cql_alpha_end)

    def run(self, num_updates: int, step: str = "update", **params: Any) -> dict[str, float]:
        self.cql_alpha = self.current_cql_alpha()
        out = super().run(num_updates, step, **params)
        if out and self.config.paradigm != "offline":
            out["cql_alpha"] = self.cql_alpha
        return out

    def policy_action_q(self, q_pi: torch.Tensor, q_pi_next: torch.Tensor, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The policy-action Q-values that enter the logsumexp, and metrics: as they are (Cal-QL bounds them)."""
        return q_pi, q_pi_next, {}

    def critic_loss(self, b: dict[str, torch.Tensor], alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """Σ_i [MSE(Q_i(s, a), y) + α_cql · diff_i] (Lagrange: α′ · α_cql · (diff_i − gap)); and α′'s loss."""
        c, m = self.config, self.m
        s, a = b["obs"], b["actions"]
        y = bellman_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], c.gamma, alpha,
                           c.backup_entropy, c.cql_n_actions if c.cql_max_target_backup else 0)
        q_data = m.critics(s, a)  # [n, B]
        bellman = td_loss(q_data, y)

        cand = cql_actions(m.actor, s, b["next_obs"], c.cql_n_actions)
        q_rand, q_pi, q_pi_next = (m.critics(cand["obs"], cand[k]) for k in ("rand", "pi", "pi_next"))
        q_pi, q_pi_next, metrics = self.policy_action_q(q_pi, q_pi_next, b)
        lse = cql_logsumexp(q_rand, q_pi, cand["log_pi"], q_pi_next, cand["log_pi_next"], m.act_dim, c.cql_temp,
                            None if c.cql_importance_sample else q_data)
        diff = cql_diff(lse, q_data, c.cql_clip_diff_min, c.cql_clip_diff_max)  # [n]

        metrics.update(q_data=q_data.mean().detach(), q_target=y.mean(), q_rand=q_rand.mean().detach(),
                       cql_diff=diff.mean().detach(), bellman_loss=bellman.detach())
        loss_prime = None
        if c.cql_lagrange:
            alpha_prime = lagrange_multiplier(m.log_alpha_prime)
            gap = diff - c.cql_target_action_gap
            conservative = alpha_prime.detach() * self.cql_alpha * gap
            loss_prime = -0.5 * (alpha_prime * self.cql_alpha * gap.detach()).sum()  # gradient ascent on α′
            metrics["alpha_prime"] = alpha_prime.detach()
        else:
            conservative = self.cql_alpha * diff
        return bellman + conservative.sum(), loss_prime, metrics

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c, m = self.config, self.m
        b = self.normalised(batch)
        b["rewards"] = c.reward_scale * b["rewards"] + c.reward_bias
        s = b["obs"]
        alpha = m.log_alpha.detach().exp()

        m.critics.requires_grad_(False)  # the actor's loss needs no critic gradients
        if self.num_updates < c.bc_steps:
            _, log_pi = m.actor.sample(s)
            loss_pi = (alpha * log_pi - m.actor.log_prob(s, b["actions"])).mean()
        else:
            loss_pi, log_pi = sac_actor_loss(m.actor, m.critics, s, alpha)
        m.critics.requires_grad_(True)
        loss_q, loss_prime, metrics = self.critic_loss(b, alpha)

        if c.learn_alpha:
            loss_alpha = temperature_loss(m.log_alpha, log_pi, self.target_entropy)
            self.step("alpha", loss_alpha)
            metrics["alpha_loss"] = loss_alpha.detach()
        self.step("actor", loss_pi)
        if loss_prime is not None:
            self.step("alpha_prime", loss_prime)
        self.step("critic", loss_q)
        self.soft_update()
        self.num_updates += 1
        return {**metrics, "critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "alpha": alpha, "entropy": -log_pi.detach().mean()}
