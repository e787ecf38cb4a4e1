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
from algorithms.cql.cql_learner import CQLUpdates


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

    def policy_action_q(self, q_pi: torch.Tensor, q_pi_next: torch.Tensor, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Q_i(s, a_π(s)) ← max(·, V^μ(s)) and Q_i(s, a_π(s′)) ← max(·, V^μ(s)), with the bound-hit rates."""
        if not self.config.calibration:
            return q_pi, q_pi_next, {}
        v_mu = b["rtg"]
        q_pi, rate_pi = calibrate(q_pi, v_mu)
        q_pi_next, rate_next = calibrate(q_pi_next, v_mu)
        finite = torch.isfinite(v_mu)
        # the mean over rows with a bound (0 if none), without a host sync (no `if finite.any()`, no mask gather)
        v_mu_mean = torch.where(finite, v_mu, torch.zeros_like(v_mu)).sum() / finite.sum().clamp(min=1)
        metrics = {"bound_rate_pi": rate_pi, "bound_rate_pi_next": rate_next, "bound_rate": (rate_pi + rate_next) / 2,
                   "v_mu": v_mu_mean}
        return q_pi, q_pi_next, metrics
