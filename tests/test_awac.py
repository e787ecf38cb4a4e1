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


# -- transfers AWAC ↔ TD3 (module level) ---------------------------------------------------------


def _module(name: str, seed: int, **settings):
    from mprl.catalogue import get_algorithm
    from mprl.transfer.snapshots import module_from_config

    torch.manual_seed(seed)
    module = module_from_config(get_algorithm(name).new_config().training(**settings), "Hopper-v5")
    g = torch.Generator().manual_seed(seed)
    module.normalizer.set_stats(torch.randn(11, generator=g), torch.rand(11, generator=g) + 0.5)
    return module


@pytest.mark.parametrize(("src", "dst"), [("awac", "td3"), ("td3", "awac")])
def test_awac_td3_transfer_is_approximate_and_says_by_how_much(src, dst):
    """AWAC's deterministic action is clip(μ), TD3's tanh(y): the actor's output layer is carried
    and the report calls the policy approximate with the true bound, max |clip(y) − tanh(y)| =
    1 − tanh 1 ≈ 0.238 of the half range, reached at |y| = 1. Critics (3×256 both) are exact."""
    from mprl.transfer import apply, check, snapshot_from_module

    source, target = _module(src, 1, hidden=[256, 256, 256]), _module(dst, 2, hidden=[256, 256, 256])
    snap = lambda n, m: snapshot_from_module(m, algorithm=n, env="Hopper-v5")  # noqa: E731
    report = check(snap(src, source), snap(dst, target))
    roles = {r.role: r.status for r in report.roles}
    assert report.policy == "approximate"
    assert roles["actor"] == "adapted" and all(roles[f"q[{i}]"] == roles[f"q_target[{i}]"] == "exact" for i in (0, 1))
    assert any("at most 0.24 of the half action range" in n for n in report.notes), report.notes
    if src == "awac":
        assert report.to_dict()["skipped"] == ["actor.log_std"]  # TD3 has no σ
    else:
        assert report.to_dict()["left_initialised"] == ["actor.log_std"]  # AWAC's σ starts fresh (σ = 1)
    apply(report, snap(src, source), target)

    awac = source if src == "awac" else target
    obs = torch.randn(2000, 11, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        y = awac.actor.net(awac.normalizer(obs))
        # Scale the shared output y over [-3, 3] in both modules, so the bound's worst case |y| ≈ 1 is hit.
        for m in (source, target):
            m.actor.net[-1].weight.mul_(3.0 / y.abs().max())
            m.actor.net[-1].bias.mul_(3.0 / y.abs().max())
        gap = (source.act(obs) - target.act(obs)).abs()  # Hopper's bounds are [-1, 1]: half range 1
    assert gap.max() <= 1 - math.tanh(1) + 1e-5 and gap.max() > 0.2  # the bound holds and is tight


# -- learning on a real local Ray ------------------------------------------------------------------


@pytest.fixture(scope="module")
def opposite_actions(minari_root):
    """InvertedPendulum controller data where each action is the controller's K·s or, with
    probability 0.5, its opposite −K·s (+ noise 0.1): the mean action is 0, so cloning the data
    fails; episodes last ~32 steps."""
    from scripted_pendulum import controller_dataset

    return controller_dataset("mprl/invertedpendulum/controller-mix50-v0", steps=10_000, p_bad=0.5, noise=0.1)


def test_awac_learns_from_opposite_actions(ray_local, minari_root, opposite_actions):
    """Measured on this data (64×64, CORL's lr 3e-4 and λ = 1/3, 1000 updates per evaluation, seed
    0): AWAC returned 169 then 1000 (balanced); with λ = 1e6 (weights ≡ 1, i.e. BC: the advantage
    weighting broken) 20 and 20."""
    from algorithms.awac import AWACConfig

    algo = (AWACConfig().environment("InvertedPendulum-v5")
            .training(dataset=opposite_actions, dataset_root=str(minari_root), updates_per_iteration=1000, eval_episodes=5, hidden=[64, 64])
            .debugging(seed=0).build_algo())
    try:
        returns = [algo.train()["evaluation_return"] for _ in range(2)]
    finally:
        algo.stop()
    assert returns[-1] >= 900, returns


def test_settings_defaults_follow_corl_and_fine_tuning_shares_one_buffer():
    from algorithms.awac.awac import AWACSettings

    s = AWACSettings()
    assert (s.awac_lambda, s.exp_adv_max, s.actor_lr, s.critic_lr, s.tau, s.hidden, s.normalize_obs) == (0.3333, 100.0, 3e-4, 3e-4, 0.005, [256] * 3, True)
    assert s.hybrid_replay() == "shared"
    assert any("not available" in m for _, m, _ in AWACSettings.problems({"replay": "balanced"}, "hybrid"))
    assert AWACSettings.problems({"awac_lambda": 0.0}, "offline") and AWACSettings.problems({"random_steps": 10}, "offline")
