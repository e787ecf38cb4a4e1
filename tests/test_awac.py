"""AWAC: the losses against values computed by hand, and a CI-sized learning check.

    y   = r + γ (1 − d) min_j Q̄_j(s′, clip(a′)),  a′ ~ N(μ(s′), σ²)
    A   = min_j Q_j(s, a) − min_j Q_j(s, ã),       ã ~ π(·|s)
    w   = min(exp(A/λ), 100)                          (a constant for the actor's gradient)
    L_π = −mean(w · log N(a; μ(s), σ²))

The hand computations use σ = e^−20 (the lower log-σ bound), so π's samples are its
clipped mean and every expected value is a closed form of the weights written here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from algorithms.awac.awac_learner import awac_actor_loss, awac_target, awac_weights
from algorithms.common.networks import CriticEnsemble, GaussianActor

TOL = dict(rtol=1e-5, atol=1e-5)


def t32(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float32)


def critics_with(w: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]) -> CriticEnsemble:
    """Twin critics [s, a] → 2 → 1 (ReLU) with weights (W1, b1, w2, b2) per member."""
    critics = CriticEnsemble(1, 1, [2], n=2)
    with torch.no_grad():
        for q, (w1, b1, w2, b2) in zip(critics.qs, w):
            q[0].weight.copy_(t32(w1)), q[0].bias.copy_(t32(b1)), q[2].weight.copy_(t32([w2])), q[2].bias.fill_(b2)
    return critics


def np_q(w, s: np.ndarray, a: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = w
    h = np.maximum(np.stack([s, a], 1) @ np.asarray(w1).T + b1, 0.0)
    return h @ np.asarray(w2) + b2


def actor_with_mean(mu: float, log_std: float = -20.0, low: float = -1.0, high: float = 1.0) -> GaussianActor:
    """AWAC's actor (unbounded mean, free log σ, clamped samples) with μ(s) = mu for every s."""
    actor = GaussianActor(1, np.array([low]), np.array([high]), [2], squash="none", state_dependent_std=False)
    with torch.no_grad():
        for p in actor.net.parameters():
            p.zero_()
        actor.net[-1].bias.fill_(mu)
        actor.log_std.fill_(log_std)
    return actor


W = [
    (np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0.1, 0.2]), np.array([1.5, -0.5]), 0.3),
    (np.array([[0.5, 1.0], [1.0, -2.0]]), np.array([0.0, 0.3]), np.array([1.0, 1.0]), -0.2),
]
S = np.array([0.5, -1.0, 2.0, 0.0])
A = np.array([0.9, -0.8, 1.0, -0.3])


def test_weights_are_exp_advantage_over_lambda_clipped_at_100():
    lam = 0.05
    critics = critics_with(W)
    actor = actor_with_mean(0.2)
    w = awac_weights(actor, critics, t32(S[:, None]), t32(A[:, None]), lam, 100.0)

    q = np.minimum(np_q(W[0], S, A), np_q(W[1], S, A))
    v = np.minimum(np_q(W[0], S, np.full(4, 0.2)), np_q(W[1], S, np.full(4, 0.2)))
    raw = np.exp((q - v) / lam)
    assert (raw > 100).any() and (raw < 100).any()  # the clip is active on some rows only
    np.testing.assert_allclose(w.numpy(), np.minimum(raw, 100.0), rtol=1e-4)
    assert not w.requires_grad  # weights carry no gradient


def test_actor_loss_gradient_treats_weights_as_constants():
    lam = 0.3333
    critics = critics_with(W)
    actor = actor_with_mean(0.2, log_std=-0.5)
    torch.manual_seed(0)
    s, a = t32(S[:, None]), t32(A[:, None])
    w = awac_weights(actor, critics, s, a, lam, 100.0)
    loss = awac_actor_loss(actor, s, a, w)
    loss.backward()

    # By hand: log N(a; μ, σ²) = −(a − μ)²/(2σ²) − log σ − ½ log 2π; μ = output bias, log σ = −0.5.
    sigma = math.exp(-0.5)
    wn = w.numpy().astype(np.float64)
    logp = -((A - 0.2) ** 2) / (2 * sigma**2) - (-0.5) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(loss.item(), -(wn * logp).mean(), **TOL)
    d_mu = -(wn * (A - 0.2) / sigma**2).mean()  # ∂L/∂μ
    d_logstd = -(wn * ((A - 0.2) ** 2 / sigma**2 - 1.0)).mean()  # ∂L/∂log σ
    np.testing.assert_allclose(actor.net[-1].bias.grad.item(), d_mu, rtol=1e-4)
    np.testing.assert_allclose(actor.log_std.grad.item(), d_logstd, rtol=1e-4)
    assert all(p.grad is None for p in critics.parameters())  # nothing reaches the critics


def test_target_uses_the_clamped_policy_sample_and_no_entropy():
    critics_target = critics_with(W)
    actor = actor_with_mean(1.7)  # samples clamp to the upper bound 1.0
    r = np.array([1.0, -0.5, 0.2, 0.0])
    d = np.array([0.0, 1.0, 0.0, 0.0])
    y = awac_target(actor, critics_target, t32(S[:, None]), t32(r), t32(d), 0.9)
    q_next = np.minimum(np_q(W[0], S, np.ones(4)), np_q(W[1], S, np.ones(4)))
    np.testing.assert_allclose(y.numpy(), r + 0.9 * (1 - d) * q_next, **TOL)
    unclamped = np.minimum(np_q(W[0], S, np.full(4, 1.7)), np_q(W[1], S, np.full(4, 1.7)))
    assert not np.allclose(y.numpy(), r + 0.9 * (1 - d) * unclamped, atol=1e-3)


def test_log_prob_and_bounds_in_environment_units():
    # Action box [-3, 1]: scale 2, bias −1; log π is of the [-1, 1]-unit action (a − bias)/scale.
    actor = actor_with_mean(0.25, log_std=0.1, low=-3.0, high=1.0)
    a_env = np.array([-2.0, 0.5])
    u = (a_env + 1.0) / 2.0
    expected = -((u - 0.25) ** 2) / (2 * math.exp(0.2)) - 0.1 - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(actor.log_prob(t32([[0.0], [0.0]]), t32(a_env[:, None])).detach().numpy(), expected, **TOL)
    assert actor(t32([[0.0]])).item() == pytest.approx(-1.0 + 2.0 * 0.25)  # deterministic action: the mean
    actor_hi = actor_with_mean(3.0, low=-3.0, high=1.0)
    assert actor_hi(t32([[0.0]])).item() == pytest.approx(1.0)  # clipped to the bound
    assert actor_hi.sample(t32([[0.0]]))[0].item() == pytest.approx(1.0)


def test_one_update_order_and_targets(ray_local):
    """Critic step, then actor step (on the updated critics), then τ-Polyak of the targets only."""
    from algorithms.awac import AWACConfig

    algo = AWACConfig().environment("Pendulum-v1").training(paradigm="online", hidden=[8], eval_episodes=0,
                                                             env_steps_per_iteration=50, rollout_fragment_length=50).build_algo()
    try:
        learner = algo.learner_group._learner
        m = learner.module["default_policy"]
        before = {k: v.clone() for k, v in m.state_dict().items()}
        algo.train()  # 50 env steps, then 50 updates
        after = m.state_dict()
        assert algo.num_updates == 50
        for k in before:
            if k.startswith(("actor.net", "actor.log_std", "critics.qs")):
                assert not torch.equal(before[k], after[k]), k
        # Targets moved, but far less than the online critics (τ = 0.005 per update).
        k = "critics.qs.0.0.weight"
        moved_online = (after[k] - before[k]).abs().mean()
        moved_target = (after["critics_target." + k[len("critics."):]] - before["critics_target." + k[len("critics."):]]).abs().mean()
        assert 0 < moved_target < moved_online
    finally:
        algo.stop()
