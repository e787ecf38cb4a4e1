"""PARS: the subset-minimum target with reward scaling, the infeasible-action penalty, the
actor loss (ensemble minimum offline, subset mean online) against values computed by hand,
and a CI-sized learning check.

    y      = c·r + γ (1 − d) min_{i∈S} Q̄_i(s′, ã′)
    L_Q    = Σ_i mean((Q_i(s, a) − y)²) + α · Σ_i mean((Q_i(s, a_I) − Q_min)²),  |a_I| ∈ [L, 2L]
    L_π    = β · mean((π(s) − a)²) − mean Q̂ / mean|Q̂|
"""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.pars.pars import PARSSettings
from algorithms.pars.pars_learner import PARSUpdates, infeasible_actions, pa_loss, pars_actor_loss, random_subset, subset_min_target
from algorithms.pars.pars_module import PARSRLModule

TOL = dict(rtol=1e-5, atol=1e-5)


def np_q(seq: torch.nn.Sequential, s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A LayerNorm critic by hand: Linear → LayerNorm (ε 1e-5, affine) → ReLU per hidden layer."""
    x = np.concatenate([s, a], -1)
    mods = list(seq)
    i = 0
    while i < len(mods):
        lin = mods[i]
        x = x @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
        if i == len(mods) - 1:
            return x[:, 0]
        ln = mods[i + 1]
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        x = (x - mu) / np.sqrt(var + ln.eps) * ln.weight.detach().double().numpy() + ln.bias.detach().double().numpy()
        x = np.maximum(x, 0.0)
        i += 3


def make_module(n: int = 4) -> PARSRLModule:
    torch.manual_seed(0)
    m = PARSRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
                     model_config={"hidden": [8, 8], "num_critics": n})
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    m.critics_target.load_state_dict(m.critics.state_dict())
    with torch.no_grad():
        for p in m.critics_target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def batch(seed: int = 1, n: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, 3, generator=g), "next_obs": torch.randn(n, 3, generator=g), "actions": torch.rand(n, 2, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "terminals": (torch.arange(n) % 3 == 0).float(), "truncations": torch.zeros(n)}


def test_critics_have_layer_norm_after_every_hidden_layer():
    m = make_module()
    assert len(m.critics) == 4 and m.critics.layer_norm
    kinds = [type(x).__name__ for x in m.critics.qs[0]]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    assert not any(isinstance(x, torch.nn.LayerNorm) for x in m.actor.net)


def test_infeasible_actions_lie_in_the_two_bands():
    torch.manual_seed(0)
    a = infeasible_actions((4000, 3), 100.0, torch.device("cpu"))
    assert (a.abs() >= 100).all() and (a.abs() <= 200).all()
    assert 0.45 < (a > 0).float().mean() < 0.55
    assert random_subset(4, 2, torch.device("cpu")).unique().numel() == 2
    assert random_subset(4, 9, torch.device("cpu")).tolist() == [0, 1, 2, 3]


def test_subset_minimum_target_with_reward_scale():
    m, b = make_module(), batch()
    next_a = torch.rand(6, 2) * 2 - 1
    subset = torch.tensor([0, 2])
    y = subset_min_target(m.critics_target, b["next_obs"], next_a, b["rewards"], b["terminals"], 0.9, 10.0, subset)
    s2, a2 = b["next_obs"].double().numpy(), next_a.double().numpy()
    q1, q3 = (np_q(m.critics_target.qs[i], s2, a2) for i in (0, 2))
    q_all = np.min([np_q(m.critics_target.qs[i], s2, a2) for i in range(4)], axis=0)
    expected = 10.0 * b["rewards"].double().numpy() + 0.9 * (1 - b["terminals"].double().numpy()) * np.minimum(q1, q3)
    np.testing.assert_allclose(y.numpy(), expected, **TOL)
    assert not np.allclose(np.minimum(q1, q3), q_all)  # the subset matters: not the whole ensemble's minimum


def test_pa_loss_and_actor_loss_by_hand():
    q_inf = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    # Σ_i mean_b (Q − Q_min)² with Q_min = −1: critic 0: (4 + 1 + 2.25)/3, critic 1: (16 + 1 + 0)/3
    assert pa_loss(q_inf, -1.0).item() == pytest.approx(7.25 / 3 + 17 / 3)
    q_hat = torch.tensor([2.0, -1.0, 4.0])
    pi, a = torch.tensor([[0.5, 0.0], [1.0, -1.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    bc = np.mean([0.25, 0.0, 0.0, 4.0, 0.25, 0.25])
    assert pars_actor_loss(q_hat, pi, a, beta=0.3).item() == pytest.approx(0.3 * bc - (5 / 3) / (7 / 3))
    assert pars_actor_loss(q_hat, pi, a, beta=0.0).item() == pytest.approx(-(5 / 3) / (7 / 3))


def make_updates(paradigm: str = "offline", **settings) -> PARSUpdates:
    m = make_module()
    cfg = SimpleNamespace(**PARSSettings(num_critics=4, **settings).model_dump(), paradigm=paradigm)
    opts = {k: torch.optim.Adam(net.parameters(), lr=lr) for k, (net, lr) in PARSUpdates.optimizer_groups(m, cfg).items()}
    return PARSUpdates(m, cfg, opts, None, torch.device("cpu"))


def test_critic_loss_is_td_plus_alpha_pa_from_the_same_samples():
    u = make_updates(pa_alpha=0.01, q_min=-5.0, infeasible_L=3.0, reward_scale=5.0, gamma=0.9, target_subset=2)
    m, b = u.m, batch(seed=2)
    torch.manual_seed(4)
    loss, metrics = u.critic_loss(b)
    torch.manual_seed(4)  # redraw the same samples in the same order
    with torch.no_grad():
        from algorithms.common.td3_core import smoothed_target_action

        next_a = smoothed_target_action(m, b["next_obs"], u.hp).double().numpy()
        subset = random_subset(4, 2, torch.device("cpu")).tolist()
        a_inf = infeasible_actions((6, 2), 3.0, torch.device("cpu")).double().numpy()
    s, s2, a = (b[k].double().numpy() for k in ("obs", "next_obs", "actions"))
    q_next = np.min([np_q(m.critics_target.qs[i], s2, next_a) for i in subset], axis=0)
    y = 5.0 * b["rewards"].double().numpy() + 0.9 * (1 - b["terminals"].double().numpy()) * q_next
    td = sum(np.mean((np_q(m.critics.qs[i], s, a) - y) ** 2) for i in range(4))
    pa = sum(np.mean((np_q(m.critics.qs[i], s, a_inf) + 5.0) ** 2) for i in range(4))
    assert np.abs(a_inf).min() >= 3.0
    np.testing.assert_allclose(metrics["td_loss"].item(), td, rtol=1e-5)
    np.testing.assert_allclose(metrics["pa_loss"].item(), pa, rtol=1e-5)
    np.testing.assert_allclose(loss.item(), td + 0.01 * pa, rtol=1e-5)


def test_actor_uses_the_minimum_offline_and_a_subset_mean_online():
    b = batch(seed=3)
    for paradigm in ("offline", "hybrid"):
        u = make_updates(paradigm, actor_subset_online=3)
        m = u.m
        torch.manual_seed(8)
        loss = u.actor_loss(b)
        torch.manual_seed(8)
        with torch.no_grad():
            pi = m.actor(b["obs"]).double().numpy()
        qs = np.stack([np_q(m.critics.qs[i], b["obs"].double().numpy(), pi) for i in range(4)])
        if paradigm == "offline":
            q_hat = qs.min(0)
        else:
            q_hat = qs[random_subset(4, 3, torch.device("cpu")).numpy()].mean(0)
        np.testing.assert_allclose(loss.item(), -q_hat.mean() / np.abs(q_hat).mean(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("paradigm, actor_every", [("offline", 2), ("hybrid", 1)])
def test_actor_delay_per_paradigm(paradigm, actor_every):
    u = make_updates(paradigm)
    outs = [u.update(batch(seed=i)) for i in range(4)]
    assert [("actor_loss" in o) for o in outs] == [(i + 1) % actor_every == 0 for i in range(4)]
    assert {"td_loss", "pa_loss", "q_infeasible", "critic_loss"} <= set(outs[0])


def test_settings_paradigm_values():
    assert make_updates("offline", pa_alpha=0.01, pa_alpha_online=0.1).pa_alpha == 0.01
    assert make_updates("online", pa_alpha=0.01, pa_alpha_online=0.1).pa_alpha == 0.1
    assert PARSSettings.default_hybrid_replay == "mixed" and PARSSettings().utd == 20
    assert any("only applies to offline" in msg for _, msg, _ in PARSSettings.problems({"pa_alpha": 0.1}, "hybrid"))
    assert PARSSettings.problems({"actor_subset_online": 11}, "hybrid")


def test_pipeline_yaml_validates():
    from pathlib import Path

    from mprl.spec import load_pipeline

    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / "pars_offline_to_online.yaml")
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [("pars", "offline"), ("pars", "hybrid")]


# ------------------------------------------------------------------------------ learning (real Ray)


def test_pars_offline_then_hybrid(ray_local, minari_root, mixed_data, tmp_path):
    """Offline PARS (4 LayerNorm critics, c = 10, Q_min = 0 for this task's rewards ≥ 0) picks
    the good actions of data whose cloning fails (BC: 63); the hybrid phase from its
    checkpoint draws half of each batch from the dataset (mixed replay)."""
    from algorithms.pars import PARSConfig

    common = dict(dataset=mixed_data, dataset_root=str(minari_root), hidden=[64, 64], num_critics=4, q_min=0.0,
                  actor_lr=1e-3, critic_lr=1e-3, eval_episodes=5)
    algo = PARSConfig().environment("InvertedPendulum-v5").training(updates_per_iteration=1000, **common).build_algo()
    try:
        results = [algo.train()]
        while len(results) < 3 and results[-1]["evaluation_return"] < 900:
            results.append(algo.train())
        path = algo.save(str(tmp_path / "offline")).checkpoint.path
    finally:
        algo.stop()
    returns = [r["evaluation_return"] for r in results]
    print("PARS offline returns", returns)
    assert max(returns) >= 900, returns
    stats = results[-1]["learner_stats"]
    assert stats["q_infeasible"] < stats["q_data"]  # PA: infeasible actions valued below the data's

    algo = (PARSConfig().environment("InvertedPendulum-v5")
            .training(paradigm="hybrid", init_checkpoint=path, budget_env_steps=200, env_steps_per_iteration=200, utd=2, **common).build_algo())
    try:
        hybrid = algo.train()
    finally:
        algo.stop()
    print("PARS hybrid return", hybrid["initial_evaluation_return"], "->", hybrid["evaluation_return"])
    assert hybrid["num_env_steps_lifetime"] == 200 and hybrid["num_updates_lifetime"] == 400 and hybrid["replay_size"] == 200
    assert hybrid["initial_evaluation_return"] == pytest.approx(returns[-1])  # the offline policy, transferred exactly
