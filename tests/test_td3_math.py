"""TD3 / TD3+BC math checked against values computed by hand in this file.

Every expected value below is written out from the paper formulas with explicit numpy (or, for
gradients, a hand-written torch expression) — never by calling the helper under test:

    y      = r + γ (1 − d) min_i Q'_i(s', clip(π'(s') + clip(σ ε, −c, c) · scale, low, high))
    L_Q    = Σ_i mean((Q_i(s, a) − y)²)
    L_TD3  = −mean Q_1(s, π(s))
    L_BC   = −(α / mean|Q_1(s, π(s))|) · mean Q_1(s, π(s)) + mean((π(s) − a)²)   (λ a constant)
    θ'     ← τ θ + (1 − τ) θ'

No Ray cluster is needed: the episode tests only build `SingleAgentEpisode` objects locally.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from algorithms.common.episodes import episodes_to_transitions
from algorithms.common.networks import DeterministicActor, ObsNormalizer
from algorithms.common.replay import TensorReplay
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import (
    TD3Hparams,
    TD3Updater,
    build_td3_networks,
    critic_loss,
    policy_action,
    td3_actor_loss,
    td3_bc_actor_loss,
    td3_target,
)

OBS_DIM = 2
ACT_DIM = 2
HIDDEN = [3]
# Asymmetric action box: scale = (high − low)/2 = [2, 1], bias = (high + low)/2 = [−1, 1].
LOW = np.array([-3.0, 0.0])
HIGH = np.array([1.0, 2.0])
SCALE = (HIGH - LOW) / 2
BIAS = (HIGH + LOW) / 2

TOL = dict(rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Hand-written helpers (independent of the code under test)
# --------------------------------------------------------------------------------------------


def rand_layers(rng: np.random.Generator, in_dim: int, out_dim: int, out_bias=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights for a [in_dim → 3 → out_dim] ReLU MLP, as (W, b) with W of shape [out, in]."""
    w1 = rng.uniform(-1.0, 1.0, size=(HIDDEN[0], in_dim))
    b1 = rng.uniform(-0.5, 0.5, size=HIDDEN[0])
    w2 = rng.uniform(-1.0, 1.0, size=(out_dim, HIDDEN[0]))
    b2 = rng.uniform(-0.5, 0.5, size=out_dim) if out_bias is None else np.asarray(out_bias, dtype=float)
    # Round to float32-representable values so numpy float64 and torch float32 start identical.
    return [(w.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)) for w, b in ((w1, b1), (w2, b2))]


def load_layers(seq: nn.Sequential, layers) -> None:
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    assert len(linears) == len(layers)
    with torch.no_grad():
        for lin, (w, b) in zip(linears, layers):
            lin.weight.copy_(torch.tensor(w, dtype=torch.float32))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float32))


def np_mlp(x: np.ndarray, layers) -> np.ndarray:
    (w1, b1), (w2, b2) = layers
    h = np.maximum(x @ w1.T + b1, 0.0)
    return h @ w2.T + b2


def np_actor(s: np.ndarray, layers) -> np.ndarray:
    return BIAS + SCALE * np.tanh(np_mlp(s, layers))


def np_q(s: np.ndarray, a: np.ndarray, layers) -> np.ndarray:
    return np_mlp(np.concatenate([s, a], axis=1), layers)[:, 0]


def make_nets(seed: int = 0, actor_target_bias=None):
    """TD3 networks with every weight set to a known value; returns (nets, weights-by-role)."""
    torch.manual_seed(seed)
    owner = nn.Module()
    build_td3_networks(owner, OBS_DIM, LOW, HIGH, HIDDEN)
    rng = np.random.default_rng(seed)
    w = {
        "actor": rand_layers(rng, OBS_DIM, ACT_DIM),
        "actor_target": rand_layers(rng, OBS_DIM, ACT_DIM, out_bias=actor_target_bias),
        "q1": rand_layers(rng, OBS_DIM + ACT_DIM, 1),
        "q2": rand_layers(rng, OBS_DIM + ACT_DIM, 1),
        "q1_target": rand_layers(rng, OBS_DIM + ACT_DIM, 1),
        "q2_target": rand_layers(rng, OBS_DIM + ACT_DIM, 1),
    }
    load_layers(owner.actor.net, w["actor"])
    load_layers(owner.actor_target.net, w["actor_target"])
    load_layers(owner.critics.qs[0], w["q1"])
    load_layers(owner.critics.qs[1], w["q2"])
    load_layers(owner.critics_target.qs[0], w["q1_target"])
    load_layers(owner.critics_target.qs[1], w["q2_target"])
    return owner, w


def t32(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float32)


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------
# 1. Target: clipped double-Q with target policy smoothing
# --------------------------------------------------------------------------------------------


def test_td3_target_matches_hand_computation_with_both_clips_active():
    # Actor target pre-tanh bias +2.5 on dim 0 (action near high), −2.5 on dim 1 (near low),
    # so the smoothing noise pushes many actions outside the box and the bound clip triggers.
    nets, w = make_nets(seed=1, actor_target_bias=[2.5, -2.5])
    hp = TD3Hparams(gamma=0.9, policy_noise=0.6, noise_clip=0.5)  # |σε| > c whenever |ε| > 0.833
    rng = np.random.default_rng(11)
    B = 64
    s2 = rng.normal(size=(B, OBS_DIM)).astype(np.float32).astype(np.float64)
    r = rng.normal(size=B).astype(np.float32).astype(np.float64)
    d = (np.arange(B) % 4 == 0).astype(np.float64)

    torch.manual_seed(123)
    eps = torch.randn(B, ACT_DIM).double().numpy()  # the ε td3_target will draw
    torch.manual_seed(123)
    y = td3_target(nets, t32(s2), t32(r), t32(d), hp).double().numpy()

    # By hand.
    pre = BIAS + SCALE * np.tanh(np_mlp(s2, w["actor_target"]))
    raw_noise = hp.policy_noise * eps
    noise = np.clip(raw_noise, -hp.noise_clip, hp.noise_clip) * SCALE
    unclipped = pre + noise
    a2 = np.clip(unclipped, LOW, HIGH)
    q1 = np_q(s2, a2, w["q1_target"])
    q2 = np_q(s2, a2, w["q2_target"])
    expected = r + hp.gamma * (1.0 - d) * np.minimum(q1, q2)

    # The chosen values really exercise every branch.
    noise_clipped = np.abs(raw_noise) > hp.noise_clip
    assert 0 < noise_clipped.sum() < noise_clipped.size
    assert (unclipped[:, 0] > HIGH[0]).any() and (unclipped[:, 0] <= HIGH[0]).any()
    assert (unclipped[:, 1] < LOW[1]).any() and (unclipped[:, 1] >= LOW[1]).any()
    live = d == 0
    assert (q1[live] < q2[live]).any() and (q2[live] < q1[live]).any()  # min picks each critic somewhere

    assert y.shape == (B,)
    np.testing.assert_allclose(y, expected, **TOL)

    # Sanity: ignoring either clip gives a different (wrong) target, so the checks above bite.
    no_noise_clip = np.clip(pre + raw_noise * SCALE, LOW, HIGH)
    wrong = r + hp.gamma * (1 - d) * np.minimum(np_q(s2, no_noise_clip, w["q1_target"]), np_q(s2, no_noise_clip, w["q2_target"]))
    assert not np.allclose(y, wrong, atol=1e-4)
    wrong2 = r + hp.gamma * (1 - d) * np.minimum(np_q(s2, unclipped, w["q1_target"]), np_q(s2, unclipped, w["q2_target"]))
    assert not np.allclose(y, wrong2, atol=1e-4)


def test_td3_target_terminal_removes_bootstrap():
    nets, _ = make_nets(seed=2)
    hp = TD3Hparams(gamma=0.99)
    B = 8
    rng = np.random.default_rng(3)
    s2 = t32(rng.normal(size=(B, OBS_DIM)))
    r = t32(rng.normal(size=B))
    d = t32([1, 0, 1, 0, 1, 1, 0, 0])
    torch.manual_seed(0)
    y = td3_target(nets, s2, r, d, hp)
    term = d == 1
    np.testing.assert_array_equal(y[term].numpy(), r[term].numpy())

    # Changing the target critics moves only the non-terminal rows.
    with torch.no_grad():
        for p in nets.critics_target.parameters():
            p.add_(1.0)
    torch.manual_seed(0)
    y2 = td3_target(nets, s2, r, d, hp)
    np.testing.assert_array_equal(y2[term].numpy(), r[term].numpy())
    assert (y2[~term] != y[~term]).all()


# --------------------------------------------------------------------------------------------
# 2. Critic loss
# --------------------------------------------------------------------------------------------


def test_critic_loss_is_sum_over_critics_of_mse():
    nets, w = make_nets(seed=4)
    rng = np.random.default_rng(5)
    B = 10
    s = rng.normal(size=(B, OBS_DIM)).astype(np.float32).astype(np.float64)
    a = rng.uniform(LOW, HIGH, size=(B, ACT_DIM)).astype(np.float32).astype(np.float64)
    y = rng.normal(size=B).astype(np.float32).astype(np.float64)
    loss = critic_loss(nets, t32(s), t32(a), t32(y)).item()
    expected = np.mean((np_q(s, a, w["q1"]) - y) ** 2) + np.mean((np_q(s, a, w["q2"]) - y) ** 2)
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-6)


# --------------------------------------------------------------------------------------------
# 3. Actor losses
# --------------------------------------------------------------------------------------------


def _actor_batch(seed: int = 6, B: int = 12):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(B, OBS_DIM)).astype(np.float32).astype(np.float64)
    a = rng.uniform(LOW, HIGH, size=(B, ACT_DIM)).astype(np.float32).astype(np.float64)
    return s, a


def test_td3_actor_loss_value():
    nets, w = make_nets(seed=7)
    s, _ = _actor_batch()
    loss = td3_actor_loss(nets, t32(s)).item()
    expected = -np.mean(np_q(s, np_actor(s, w["actor"]), w["q1"]))
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_td3_bc_actor_loss_value():
    nets, w = make_nets(seed=8)
    s, a = _actor_batch()
    alpha = 2.5
    loss = td3_bc_actor_loss(nets, t32(s), t32(a), alpha).item()
    pi = np_actor(s, w["actor"])
    q = np_q(s, pi, w["q1"])
    lam = alpha / np.mean(np.abs(q))
    expected = -lam * np.mean(q) + np.mean((pi - a) ** 2)
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-6)


def _hand_actor_q(nets, w, s_t):
    """π and Q1(s, π(s)) written out in torch; actor weights are the live params, critic weights constants."""
    lin1, lin2 = [m for m in nets.actor.net if isinstance(m, nn.Linear)]
    pi = t32(BIAS) + t32(SCALE) * torch.tanh(torch.relu(s_t @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias)
    (cw1, cb1), (cw2, cb2) = w["q1"]
    x = torch.cat([s_t, pi], dim=1)
    q = (torch.relu(x @ t32(cw1).T + t32(cb1)) @ t32(cw2).T + t32(cb2))[:, 0]
    return pi, q


def test_td3_bc_lambda_is_detached_in_gradient():
    nets, w = make_nets(seed=9)
    s, a = _actor_batch(seed=10)
    s_t, a_t = t32(s), t32(a)
    alpha = 2.5
    params = list(nets.actor.parameters())

    got = torch.autograd.grad(td3_bc_actor_loss(nets, s_t, a_t, alpha), params)

    pi, q = _hand_actor_q(nets, w, s_t)
    lam = alpha / q.detach().abs().mean().item()  # a python float: no gradient through λ
    hand = -lam * q.mean() + ((pi - a_t) ** 2).mean()
    expected = torch.autograd.grad(hand, params)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)

    # The check is sensitive: letting gradient flow through λ gives a different gradient.
    pi, q = _hand_actor_q(nets, w, s_t)
    undetached = -(alpha / q.abs().mean()) * q.mean() + ((pi - a_t) ** 2).mean()
    wrong = torch.autograd.grad(undetached, params)
    assert any(not torch.allclose(g, x, atol=1e-4) for g, x in zip(got, wrong))


def test_td3_actor_loss_gradient_matches_hand_written():
    nets, w = make_nets(seed=12)
    s, _ = _actor_batch(seed=13)
    params = list(nets.actor.parameters())
    got = torch.autograd.grad(td3_actor_loss(nets, t32(s)), params)
    _, q = _hand_actor_q(nets, w, t32(s))
    expected = torch.autograd.grad(-q.mean(), params)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# 4. Normaliser and actor action scaling
# --------------------------------------------------------------------------------------------


def test_obs_normalizer():
    norm = ObsNormalizer(OBS_DIM)
    s = np.array([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(norm(t32(s)).numpy(), s, **TOL)  # identity by default
    mean, std = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    norm.set_stats(mean, std)
    np.testing.assert_allclose(norm(t32(s)).numpy(), (s - mean) / std, **TOL)
    np.testing.assert_allclose(norm(t32(s)).numpy(), [[0.0, 1.0], [-8.0, 0.625], [-2.0, 0.5]], **TOL)
    sd = norm.state_dict()
    np.testing.assert_allclose(sd["mean"].numpy(), mean)
    np.testing.assert_allclose(sd["std"].numpy(), std)
    assert list(norm.parameters()) == []


def test_deterministic_actor_scaling_on_asymmetric_box():
    actor = DeterministicActor(OBS_DIM, LOW, HIGH, HIDDEN)
    np.testing.assert_allclose(actor.action_scale.numpy(), [2.0, 1.0])
    np.testing.assert_allclose(actor.action_bias.numpy(), [-1.0, 1.0])
    layers = rand_layers(np.random.default_rng(14), OBS_DIM, ACT_DIM)
    load_layers(actor.net, layers)
    s = np.random.default_rng(15).normal(size=(20, OBS_DIM)).astype(np.float32).astype(np.float64)
    out = actor(t32(s)).detach().numpy()
    np.testing.assert_allclose(out, np.array([-1.0, 1.0]) + np.array([2.0, 1.0]) * np.tanh(np_mlp(s, layers)), **TOL)
    assert (out >= LOW).all() and (out <= HIGH).all()

    # Saturated pre-activations map onto the box's corners.
    with torch.no_grad():
        lin2 = actor.net[-1]
        lin2.weight.zero_()
        lin2.bias.copy_(t32([50.0, -50.0]))
    np.testing.assert_allclose(actor(t32(s)).detach().numpy(), np.tile([HIGH[0], LOW[1]], (20, 1)), **TOL)
    with torch.no_grad():
        actor.net[-1].bias.copy_(t32([-50.0, 50.0]))
    np.testing.assert_allclose(actor(t32(s)).detach().numpy(), np.tile([LOW[0], HIGH[1]], (20, 1)), **TOL)
    with torch.no_grad():
        actor.net[-1].bias.zero_()
    np.testing.assert_allclose(actor(t32(s)).detach().numpy(), np.tile(BIAS, (20, 1)), **TOL)


def test_policy_action_normalises_then_acts():
    nets, w = make_nets(seed=16)
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    nets.normalizer.set_stats(mean, std)
    s = np.random.default_rng(17).normal(size=(6, OBS_DIM))
    got = policy_action(nets, t32(s)).detach().numpy()
    np.testing.assert_allclose(got, np_actor((s.astype(np.float32) - mean) / std, w["actor"]), **TOL)


# --------------------------------------------------------------------------------------------
# 5. TD3Updater: delayed actor, Polyak targets, critics isolated from the actor loss
# --------------------------------------------------------------------------------------------


def _batch(seed: int, B: int = 16) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "obs": t32(rng.normal(size=(B, OBS_DIM))),
        "actions": t32(rng.uniform(LOW, HIGH, size=(B, ACT_DIM))),
        "rewards": t32(rng.normal(size=B)),
        "next_obs": t32(rng.normal(size=(B, OBS_DIM))),
        "terminals": t32((rng.uniform(size=B) < 0.2).astype(np.float32)),
    }


def _updater(nets, lr=0.05, **hp):
    actor_opt = torch.optim.SGD(nets.actor.parameters(), lr=lr)
    critic_opt = torch.optim.SGD(nets.critics.parameters(), lr=lr)
    return TD3Updater(nets, actor_opt, critic_opt, TD3Hparams(**hp))


def test_updater_delay_and_polyak_targets():
    nets, _ = make_nets(seed=18)
    nets.normalizer.set_stats(np.array([0.2, -0.3]), np.array([1.5, 0.7]))
    lr, tau = 0.05, 0.3
    up = _updater(nets, lr=lr, tau=tau, policy_delay=2, gamma=0.9)
    online = [nets.actor, nets.critics]
    targets = [nets.actor_target, nets.critics_target]

    for step in range(1, 7):
        batch = _batch(100 + step)
        actor0, critic0 = snapshot(nets.actor), snapshot(nets.critics)
        targ0 = [snapshot(t) for t in targets]
        before = copy.deepcopy(nets)

        # Reference critic gradient on the same batch and the same smoothing noise, written out.
        torch.manual_seed(1000 + step)
        y_ref = td3_target(before, before.normalizer(batch["next_obs"]), batch["rewards"], batch["terminals"], up.hp)
        x = torch.cat([before.normalizer(batch["obs"]), batch["actions"]], dim=1)
        l_ref = sum(((q(x)[:, 0] - y_ref) ** 2).mean() for q in before.critics.qs)
        g_ref = torch.autograd.grad(l_ref, list(before.critics.parameters()))

        torch.manual_seed(1000 + step)
        loss_q, loss_pi = up.update(batch)
        assert loss_q.item() == pytest.approx(l_ref.item(), rel=1e-5)

        # Critics move every update, by exactly one SGD step on the critic loss.
        assert not same(critic0, snapshot(nets.critics))
        for p, p0, g in zip(nets.critics.parameters(), critic0, g_ref):
            torch.testing.assert_close(p.detach(), p0 - lr * g, rtol=1e-5, atol=1e-6)
        # ... and their .grad holds the critic-loss gradient only: the actor loss added nothing.
        for p, g in zip(nets.critics.parameters(), g_ref):
            assert p.grad is None or torch.allclose(p.grad, g, rtol=1e-5, atol=1e-7)
        assert all(p.requires_grad for p in nets.critics.parameters())
        assert all(p.requires_grad for p in nets.actor.parameters())
        assert not any(p.requires_grad for t in targets for p in t.parameters())

        if step % 2 == 1:
            assert loss_pi is None
            assert same(actor0, snapshot(nets.actor)), f"actor changed on update {step}"
            for t, t0 in zip(targets, targ0):
                assert same(t0, snapshot(t)), f"targets changed on update {step}"
            continue

        assert loss_pi is not None
        assert not same(actor0, snapshot(nets.actor)), f"actor did not change on update {step}"
        # The actor step is one SGD step on −mean Q1_new(s, π(s)) with the *updated* critics.
        ref_actor = before.actor
        s_n = before.normalizer(batch["obs"])
        q1_new = nets.critics.q1(s_n, ref_actor(s_n))  # critics do not change during the actor step
        l_pi = -q1_new.mean()
        assert loss_pi.item() == pytest.approx(l_pi.item(), rel=1e-5)
        g_pi = torch.autograd.grad(l_pi, list(ref_actor.parameters()))
        for p, p0, g in zip(nets.actor.parameters(), actor0, g_pi):
            torch.testing.assert_close(p.detach(), p0 - lr * g, rtol=1e-5, atol=1e-6)
        # Targets: θ' = τ θ + (1 − τ) θ'_old, with θ the freshly updated online nets.
        for t, t0, o in zip(targets, targ0, online):
            for pt, pt0, po in zip(t.parameters(), t0, o.parameters()):
                torch.testing.assert_close(pt.detach(), tau * po.detach() + (1 - tau) * pt0, rtol=1e-5, atol=1e-6)
            assert not same(t0, snapshot(t))


def test_updater_actor_loss_would_reach_critics_if_not_frozen():
    """Makes the isolation check above meaningful: the actor loss does depend on critic params."""
    nets, _ = make_nets(seed=19)
    s = t32(np.random.default_rng(20).normal(size=(8, OBS_DIM)))
    grads = torch.autograd.grad(td3_actor_loss(nets, s), list(nets.critics.qs[0].parameters()))
    assert any(g.abs().sum() > 0 for g in grads)


def test_updater_uses_bc_loss_when_alpha_set():
    nets, w = make_nets(seed=21)
    up = _updater(nets, alpha=2.5)
    s, a = _actor_batch(seed=22)
    got = up.actor_loss(t32(s), t32(a)).item()
    pi = np_actor(s, w["actor"])
    q = np_q(s, pi, w["q1"])
    assert got == pytest.approx(-(2.5 / np.abs(q).mean()) * q.mean() + np.mean((pi - a) ** 2), rel=1e-5)
    up_td3 = _updater(nets)
    assert up_td3.actor_loss(t32(s), t32(a)).item() == pytest.approx(-q.mean(), rel=1e-5)


# --------------------------------------------------------------------------------------------
# 6. SoftUpdater and TensorReplay
# --------------------------------------------------------------------------------------------


def test_soft_updater_formula_and_hard_sync():
    torch.manual_seed(0)
    src_a, tgt_a = nn.Linear(3, 2), nn.Linear(3, 2)
    src_b, tgt_b = nn.Linear(2, 1), nn.Linear(2, 1)
    tau = 0.25
    upd = SoftUpdater([(tgt_a, src_a), (tgt_b, src_b)], tau)
    t0 = snapshot(tgt_a) + snapshot(tgt_b)
    s0 = snapshot(src_a) + snapshot(src_b)
    upd()
    t1 = snapshot(tgt_a) + snapshot(tgt_b)
    for a, b, c in zip(t1, t0, s0):
        np.testing.assert_allclose(a.numpy(), tau * c.numpy() + (1 - tau) * b.numpy(), rtol=1e-6, atol=1e-7)
    assert same(s0, snapshot(src_a) + snapshot(src_b))  # sources untouched
    upd()
    t2 = snapshot(tgt_a) + snapshot(tgt_b)
    for a, b, c in zip(t2, t0, s0):
        # two steps: θ' = (1 − τ)² θ'_0 + (1 − (1 − τ)²) θ
        np.testing.assert_allclose(a.numpy(), (1 - tau) ** 2 * b.numpy() + (1 - (1 - tau) ** 2) * c.numpy(), rtol=1e-6, atol=1e-6)
    upd.hard_sync()
    assert same(snapshot(tgt_a) + snapshot(tgt_b), s0)


def _rows(start: int, n: int) -> dict[str, np.ndarray]:
    k = np.arange(start, start + n, dtype=np.float64)
    return {
        "obs": np.stack([k, 10 * k], 1),
        "actions": (100 + k)[:, None],
        "rewards": k,
        "next_obs": np.stack([k + 1, 10 * (k + 1)], 1),
        "terminals": (k % 2 == 0).astype(np.float64),
    }


@pytest.mark.parametrize("chunks", [[7], [3, 4], [5, 2], [1, 1, 1, 1, 1, 1, 1]])
def test_tensor_replay_wraparound(chunks):
    buf = TensorReplay(5, obs_dim=2, act_dim=1, seed=0)
    start = 0
    for n in chunks:
        buf.add(_rows(start, n))
        start += n
    assert len(buf) == 5 and buf.size == 5 and buf.pos == 7 % 5
    # Slots 0, 1 hold rows 5, 6 (the oldest two, 0 and 1, were overwritten); slots 2..4 rows 2..4.
    stored = np.array([5, 6, 2, 3, 4], dtype=np.float64)
    np.testing.assert_array_equal(buf.data["rewards"].numpy(), stored)
    np.testing.assert_array_equal(buf.data["obs"].numpy(), np.stack([stored, 10 * stored], 1))
    np.testing.assert_array_equal(buf.data["actions"].numpy()[:, 0], 100 + stored)
    np.testing.assert_array_equal(buf.data["next_obs"].numpy(), np.stack([stored + 1, 10 * (stored + 1)], 1))
    np.testing.assert_array_equal(buf.data["terminals"].numpy(), (stored % 2 == 0).astype(np.float32))

    batch = buf.sample(64)
    r = batch["rewards"].numpy()
    assert set(r.tolist()) <= {2.0, 3.0, 4.0, 5.0, 6.0}
    # Rows stay aligned across keys.
    np.testing.assert_array_equal(batch["obs"].numpy(), np.stack([r, 10 * r], 1))
    np.testing.assert_array_equal(batch["next_obs"].numpy()[:, 0], r + 1)
    np.testing.assert_array_equal(batch["actions"].numpy()[:, 0], 100 + r)


def test_tensor_replay_partial_fill_and_from_arrays():
    buf = TensorReplay(5, obs_dim=2, act_dim=1)
    buf.add(_rows(0, 3))
    assert len(buf) == 3 and buf.pos == 3
    assert set(buf.sample(100)["rewards"].numpy().tolist()) <= {0.0, 1.0, 2.0}  # never the empty slots

    arrays = _rows(10, 6)
    ds = TensorReplay.from_arrays(arrays, seed=3)
    assert ds.capacity == 6 and len(ds) == 6 and ds.pos == 0
    for k, v in arrays.items():
        np.testing.assert_array_equal(ds.data[k].numpy(), v.astype(np.float32))
    assert ds.data["rewards"].dtype == torch.float32
    # Same seed → same sample indices.
    again = TensorReplay.from_arrays(arrays, seed=3)
    np.testing.assert_array_equal(ds.sample(8)["rewards"].numpy(), again.sample(8)["rewards"].numpy())


# --------------------------------------------------------------------------------------------
# 7. Episodes → transitions
# --------------------------------------------------------------------------------------------


def _episode(n_steps: int, *, terminated=False, truncated=False, start: int = 0):
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    ep = SingleAgentEpisode()
    ep.add_env_reset(np.array([start, -start], dtype=np.float32))
    _extend(ep, n_steps, start, terminated=terminated, truncated=truncated)
    return ep


def _extend(ep, n_steps: int, start: int, *, terminated=False, truncated=False):
    """obs_t = [t, −t]; action_t = [t + 0.5]; reward_t = 10 t (t counted from `start`)."""
    for i in range(n_steps):
        t = start + i
        last = i == n_steps - 1
        ep.add_env_step(
            np.array([t + 1, -(t + 1)], dtype=np.float32),
            np.array([t + 0.5], dtype=np.float32),
            10.0 * t,
            terminated=terminated and last,
            truncated=truncated and last,
        )


def _expected(start: int, n: int, terminated: bool) -> dict[str, np.ndarray]:
    t = np.arange(start, start + n, dtype=np.float32)
    term = np.zeros(n, dtype=np.float32)
    term[-1] = float(terminated)
    return {
        "obs": np.stack([t, -t], 1),
        "next_obs": np.stack([t + 1, -(t + 1)], 1),
        "actions": (t + 0.5)[:, None],
        "rewards": 10 * t,
        "terminals": term,
    }


def _check(got, exp):
    # truncations / episode_uid / episode_end (whole-episode post-processing) are checked in tests/test_cal_ql.py
    assert set(got) == set(exp) | {"truncations", "episode_uid", "episode_end"}
    for k in exp:
        assert got[k].dtype == np.float32, k
        np.testing.assert_array_equal(got[k], exp[k], err_msg=k)


def test_episodes_terminated_and_truncated():
    term_ep = _episode(4, terminated=True)
    trunc_ep = _episode(3, truncated=True, start=20)
    assert term_ep.is_terminated and trunc_ep.is_truncated and not trunc_ep.is_terminated

    _check(episodes_to_transitions([term_ep]), _expected(0, 4, True))
    _check(episodes_to_transitions([trunc_ep]), _expected(20, 3, False))  # truncation: still bootstrap

    both = episodes_to_transitions([term_ep, trunc_ep])
    e1, e2 = _expected(0, 4, True), _expected(20, 3, False)
    _check(both, {k: np.concatenate([e1[k], e2[k]]) for k in e1})
    np.testing.assert_array_equal(both["terminals"], [0, 0, 0, 1, 0, 0, 0])

    # numpy-ised episodes give the same arrays.
    _check(episodes_to_transitions([_episode(4, terminated=True).to_numpy()]), _expected(0, 4, True))


def test_episodes_single_step_and_empty():
    _check(episodes_to_transitions([_episode(1, terminated=True, start=5)]), _expected(5, 1, True))
    _check(episodes_to_transitions([_episode(1, truncated=True, start=5)]), _expected(5, 1, False))
    assert episodes_to_transitions([]) == {}
    assert episodes_to_transitions([_episode(0)]) == {}
    _check(episodes_to_transitions([_episode(0), _episode(2, terminated=True)]), _expected(0, 2, True))


@pytest.mark.parametrize("lookback", [0, 2])
def test_episodes_cut_chunks_continue_the_episode(lookback):
    first = _episode(3)  # ongoing, not done
    assert hasattr(first, "cut")
    second = first.cut(len_lookback_buffer=lookback)
    assert len(second) == 0
    _extend(second, 2, start=3, terminated=True)
    assert second.is_terminated and not first.is_done

    _check(episodes_to_transitions([first]), _expected(0, 3, False))
    # The continuation starts from the last observation of the first chunk, not the lookback.
    _check(episodes_to_transitions([second]), _expected(3, 2, True))
    both = episodes_to_transitions([first, second])
    _check(both, _expected(0, 5, True))
    np.testing.assert_array_equal(both["next_obs"][:-1], both["obs"][1:])  # contiguous chain

    # A truncated continuation still never sets a terminal.
    other = _episode(2)
    cont = other.cut(len_lookback_buffer=lookback)
    _extend(cont, 3, start=2, truncated=True)
    _check(episodes_to_transitions([cont]), _expected(2, 3, False))
