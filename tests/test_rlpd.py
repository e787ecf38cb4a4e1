"""RLPD: the random-pair target over a LayerNorm ensemble, the ensemble-mean actor, RLPD's
temperature loss, the G×B batch split into G slices (G critic steps, one actor and one
temperature step), symmetric sampling in every slice, and a CI-sized learning check.

    y     = r + γ (1 − d) [min_{i∈M} Q̄_i(s′, a′) − α log π(a′|s′)],  |M| = num_min_qs, fresh each step
    L_Q   = mean_{i,b} (Q_i(s, a) − y)²
    L_π   = mean[α log π(ã|s) − mean_i Q_i(s, ã)]
    L(α)  = α (H − H̄),  H̄ = −|A|/2
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.common.sampler import Sampler
from algorithms.rlpd.rlpd import RLPDSettings
from algorithms.rlpd.rlpd_learner import RLPDUpdates, ensemble_mean, rlpd_critic_loss, rlpd_temperature_loss, slice_order, subset_min
from algorithms.rlpd.rlpd_module import RLPDRLModule
from algorithms.sac.sac_learner import sac_target

TOL = dict(rtol=1e-5, atol=1e-5)


def make_module(n: int = 5) -> RLPDRLModule:
    torch.manual_seed(0)
    return RLPDRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
                        model_config={"hidden": [8, 8], "num_qs": n, "critic_layer_norm": True, "initial_alpha": 1.0})


def batch(seed: int = 1, n: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, 3, generator=g), "next_obs": torch.randn(n, 3, generator=g), "actions": torch.rand(n, 2, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "terminals": (torch.arange(n) % 3 == 0).float(), "truncations": torch.zeros(n)}


def test_module_has_ten_layer_norm_critics_by_default():
    m = RLPDRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)), model_config={})
    assert len(m.critics) == 10 and m.critics.layer_norm and m.log_alpha.item() == 0.0
    assert [type(x).__name__ for x in m.critics.qs[0]][:3] == ["Linear", "LayerNorm", "ReLU"]


def test_subset_min_takes_a_fresh_random_pair():
    q = torch.tensor([[1.0, 5.0], [2.0, 0.0], [-1.0, 3.0], [4.0, 4.0]])
    torch.manual_seed(3)
    got = subset_min(2)(q)
    torch.manual_seed(3)
    pair = torch.randperm(4)[:2].tolist()
    np.testing.assert_allclose(got.numpy(), np.min(q.numpy()[pair], axis=0))
    draws = set()
    for _ in range(50):
        draws.add(tuple(sorted(torch.randperm(4)[:2].tolist())))
    assert len(draws) > 3  # pairs vary from step to step
    np.testing.assert_allclose(ensemble_mean(q).numpy(), [1.5, 3.0])


def test_target_uses_the_subset_minimum_and_the_entropy_backup():
    m, b = make_module(), batch()
    alpha = torch.tensor(0.3)
    torch.manual_seed(5)
    y = sac_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], 0.9, alpha, True, subset_min(2))
    torch.manual_seed(5)
    with torch.no_grad():
        a2, logp = m.actor.sample(b["next_obs"])
        pair = torch.randperm(5)[:2].tolist()
        qs = m.critics_target(b["next_obs"], a2).numpy()
    expected = b["rewards"].numpy() + 0.9 * (1 - b["terminals"].numpy()) * (qs[pair].min(0) - 0.3 * logp.numpy())
    np.testing.assert_allclose(y.numpy(), expected, **TOL)


def test_losses_by_hand():
    q = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([0.0, 1.0])
    assert rlpd_critic_loss(q, y).item() == pytest.approx((1 + 1 + 9 + 4) / 4)
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_pi = torch.tensor([-1.0, 0.0, 0.5])  # H = 1/6
    loss = rlpd_temperature_loss(log_alpha, log_pi, target_entropy=-1.0)
    assert loss.item() == pytest.approx(0.5 * (1 / 6 + 1.0))
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(0.5 * (1 / 6 + 1.0))  # H > H̄: descent lowers α


def test_slice_order_puts_both_sources_in_every_slice():
    assert slice_order(8, 4, 2, torch.device("cpu")).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert sorted(slice_order(12, 6, 3, torch.device("cpu")).tolist()) == list(range(12))


def make_updates(g: int = 3, sampler=None, **settings) -> RLPDUpdates:
    m = make_module()
    cfg = SimpleNamespace(**RLPDSettings(num_qs=5, utd=g, **settings).model_dump(), paradigm="hybrid")
    opts = {k: torch.optim.Adam(net.parameters() if isinstance(net, torch.nn.Module) else net, lr=lr)
            for k, (net, lr) in RLPDUpdates.optimizer_groups(m, cfg).items()}
    return RLPDUpdates(m, cfg, opts, sampler, torch.device("cpu"))


def adam_steps(opt: torch.optim.Optimizer) -> int:
    states = [s for s in opt.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_one_group_is_g_critic_steps_then_one_actor_and_one_temperature_step():
    u = make_updates(g=3, train_batch_size_per_learner=4)
    big = batch(seed=2, n=12)
    target_before = [p.clone() for p in u.m.critics_target.parameters()]
    u.update(big)
    assert adam_steps(u.optimizers["critic"]) == 3
    assert adam_steps(u.optimizers["actor"]) == 1 and adam_steps(u.optimizers["alpha"]) == 1
    # three Polyak steps: θ̄ moved further than one step of τ would take it
    assert any(not torch.equal(a, b) for a, b in zip(target_before, u.m.critics_target.parameters()))


def test_every_slice_is_half_dataset_half_online():
    n_off = 40
    rng = np.random.default_rng(0)
    data = {"obs": rng.normal(size=(n_off, 3)).astype(np.float32), "next_obs": rng.normal(size=(n_off, 3)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n_off, 2)).astype(np.float32), "rewards": np.zeros(n_off, np.float32),
            "terminals": np.zeros(n_off, np.float32), "truncations": np.zeros(n_off, np.float32), "source": np.zeros(n_off, np.float32)}
    s = Sampler("mixed", 3, 2, 100, torch.device("cpu"), 0, dataset=data, extra=("source",), offline_ratio=0.5)
    s.add({k: v[:20] for k, v in data.items() if k != "source"} | {"source": np.ones(20, np.float32)})
    u = make_updates(g=4, sampler=s, train_batch_size_per_learner=8)
    bigs = list(u.batches("update", 8, 8))
    assert len(bigs) == 2 and all(len(b["obs"]) == 32 for b in bigs)
    for big in bigs:
        for sl in torch.chunk(big["source"], 4):
            assert sl.sum().item() == 4  # 4 of 8 rows online in each slice
    with pytest.raises(ValueError):
        list(u.batches("update", 6, 8))


def test_settings():
    s = RLPDSettings()
    assert (s.num_qs, s.num_min_qs, s.utd, s.offline_ratio, s.random_steps, s.critic_layer_norm) == (10, 2, 20, 0.5, 5000, True)
    assert RLPDSettings.default_hybrid_replay == "mixed"
    assert RLPDSettings.problems({"num_min_qs": 11}, "hybrid")


def test_pipeline_yaml_validates():
    from pathlib import Path

    from mprl.spec import load_pipeline

    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / "rlpd_with_data.yaml")
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [("rlpd", "hybrid")]


# ------------------------------------------------------------------------------ learning (real Ray)


def test_rlpd_learns_inverted_pendulum_with_data(ray_local, minari_root, mixed_data):
    """From scratch with the dataset in every batch (no pre-training)."""
    from algorithms.rlpd import RLPDConfig

    algo = (RLPDConfig().environment("InvertedPendulum-v5")
            .training(dataset=mixed_data, dataset_root=str(minari_root), hidden=[64, 64], num_qs=4, utd=4, random_steps=500, learning_starts=500,
                      env_steps_per_iteration=1000, eval_episodes=5, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
            .debugging(seed=0).build_algo())
    results = []
    try:
        while len(results) < 5:
            results.append(algo.train())
            if results[-1]["evaluation_return"] >= 900:
                break
    finally:
        algo.stop()
    returns = [r["evaluation_return"] for r in results]
    print("RLPD returns", returns)
    last = results[-1]
    # learning starts with the fragment (50 steps) that reaches learning_starts = 500: 4 critic updates per env step from step 451
    assert last["critic_updates_lifetime"] == last["num_updates_lifetime"] == 4 * (last["num_env_steps_lifetime"] - 450)
    assert last["actor_updates_lifetime"] == last["num_env_steps_lifetime"] - 450
    assert last["learner_stats"]["offline_fraction"] == pytest.approx(0.5)
    assert max(returns) >= 900, returns
