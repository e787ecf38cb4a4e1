"""Cal-QL's updates: CQL's (algorithms.cql.cql_learner) with one change in the conservative
term (CORL `finetune/cal_ql.py::_q_loss`, nakamotoo/Cal-QL): before the logsumexp, the
Q-values of the policy's actions are bounded below by the return-to-go of the state,

    Q_i(s, a_π(s))  ← max(Q_i(s, a_π(s)),  V^μ(s))
    Q_i(s, a_π(s′)) ← max(Q_i(s, a_π(s′)), V^μ(s))        (actions drawn at s′, scored at s)

V^μ(s) is the `rtg` replay field: the discounted Monte-Carlo return-to-go of the transition's
episode, on the rewards the critics see (reward_scale·r + reward_bias), with the
sparse-failure rule (an episode whose rewards all equal `sparse_failure_reward` gets
r/(1 − γ)). Dataset rows get it when loaded; an online row gets it when its episode ends (the
original's choice; until then it has no bound). The bound-hit rate — the fraction of those
policy-action Q-values below V^μ(s) — is reported per candidate set (`bound_rate_pi`,
`bound_rate_pi_next`) and together (`bound_rate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from algorithms.common.replay import return_to_go
from algorithms.common.td3_core import td_loss
from algorithms.cql.cql_learner import CQLUpdates, bellman_target, cql_actions, cql_diff, cql_logsumexp, lagrange_multiplier


def calibrate(q: torch.Tensor, v_mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max(Q, V^μ(s)), the fraction of Q below the bound) for [n, B, N] values and [B] bounds."""
    bound = v_mu.view(1, -1, 1).expand_as(q)
    return torch.maximum(q, bound), (q < bound).float().mean()


class CalQLUpdates(CQLUpdates):
    REPLAY_FIELDS = ("rtg",)

    @classmethod
    def returns_to_go(cls, rewards: np.ndarray, episode: np.ndarray, config: Any) -> np.ndarray:
        """V^μ on the critics' rewards (reward_scale·r + bias), the sparse-failure value likewise (CORL)."""
        scaled = config.reward_scale * np.asarray(rewards, dtype=np.float64) + config.reward_bias
        failure = config.sparse_failure_reward
        failure = None if failure is None else config.reward_scale * failure + config.reward_bias
        return return_to_go(scaled, episode, config.gamma, failure)

    def critic_loss(self, b: dict[str, torch.Tensor], alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """CQL's Σ_i [MSE(Q_i(s, a), y) + α_cql · diff_i] with the calibrated policy-action Q-values."""
        c, m = self.config, self.m
        s, a = b["obs"], b["actions"]
        y = bellman_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], c.gamma, alpha,
                           c.backup_entropy, c.cql_n_actions if c.cql_max_target_backup else 0)
        q_data = m.critics(s, a)  # [n, B]
        bellman = td_loss(q_data, y)

        cand = cql_actions(m.actor, s, b["next_obs"], c.cql_n_actions)
        q_rand, q_pi, q_pi_next = (m.critics(cand["obs"], cand[k]) for k in ("rand", "pi", "pi_next"))
        metrics: dict[str, torch.Tensor] = {}
        if c.calibration:
            v_mu = b["rtg"]
            q_pi, rate_pi = calibrate(q_pi, v_mu)
            q_pi_next, rate_next = calibrate(q_pi_next, v_mu)
            metrics.update(bound_rate_pi=rate_pi, bound_rate_pi_next=rate_next, bound_rate=(rate_pi + rate_next) / 2,
                           v_mu=v_mu[torch.isfinite(v_mu)].mean() if torch.isfinite(v_mu).any() else torch.zeros((), device=v_mu.device))
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
            loss_prime = -0.5 * (alpha_prime * self.cql_alpha * gap.detach()).sum()
            metrics["alpha_prime"] = alpha_prime.detach()
        else:
            conservative = self.cql_alpha * diff
        return bellman + conservative.sum(), loss_prime, metrics
