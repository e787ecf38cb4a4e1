"""SPOT: the VAE's ELBO loss, the density-penalised actor loss, the λ decay and the update
order against values computed by hand, and a CI-sized learning check.

    ELBO_loss(s, a) = mean_j (D(s, z)_j − a_j)² + β · mean_k −½ (1 + log σ_k² − μ_k² − σ_k²),
                      z = μ + σ ε, (μ, log σ) = E(s, a), log σ clamped to [−4, 15]
    L_VAE           = mean_batch ELBO_loss(s, a)
    L_π             = −mean Q_1(s, π(s)) / mean|Q_1(s, π(s))| + λ · mean ELBO_loss(s, π(s))
    λ_t             = λ · max(λ_end, 1 − t/T)
"""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.spot.spot import SPOTSettings
from algorithms.spot.spot_learner import SPOTUpdates, cooled_lambda, spot_actor_loss, vae_loss
from algorithms.spot.spot_module import SPOTRLModule

TOL = dict(rtol=1e-5, atol=1e-5)
LOW, HIGH = np.array([-2.0, -1.0]), np.array([2.0, 3.0])  # scale [2, 2], bias [0, 1]


def np_mlp(x: np.ndarray, seq: torch.nn.Sequential) -> np.ndarray:
    lins = [m for m in seq if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(lins):
        x = x @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
        if i < len(lins) - 1:
            x = np.maximum(x, 0.0)
    return x


def np_elbo(vae, s: np.ndarray, a: np.ndarray, eps: np.ndarray, beta: float) -> np.ndarray:
    out = np_mlp(np.concatenate([s, a], -1), vae.encoder)
    k = vae.latent_dim
    mean, log_std = out[:, :k], np.clip(out[:, k:], -4.0, 15.0)
    std = np.exp(log_std)
    z = mean + std * eps
    recon = (np.tanh(np_mlp(np.concatenate([s, z], -1), vae.decoder)) - a) ** 2
    kl = -0.5 * (1 + np.log(std**2) - mean**2 - std**2)
    return recon.mean(-1) + beta * kl.mean(-1)


def make_module() -> SPOTRLModule:
    torch.manual_seed(0)
    return SPOTRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(LOW.astype(np.float32), HIGH.astype(np.float32)),
                        model_config={"hidden": [8, 8], "vae_hidden": 6, "vae_latent_dim": None, "actor_init_w": None, "critic_init_w": None})


def batch(seed: int = 1, n: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    acts = torch.rand(n, 2, generator=g) * torch.tensor([4.0, 4.0]) + torch.tensor([-2.0, -1.0])
    return {"obs": torch.randn(n, 3, generator=g), "next_obs": torch.randn(n, 3, generator=g), "actions": acts,
            "rewards": torch.randn(n, generator=g), "terminals": (torch.arange(n) % 2 == 0).float(), "truncations": torch.zeros(n)}


def test_vae_loss_is_the_mean_elbo_loss_in_unit_actions():
    m, b = make_module(), batch()
    assert m.vae.latent_dim == 4  # 2·|A|
    s = b["obs"].double().numpy()
    a_unit = (b["actions"].double().numpy() - np.array([0.0, 1.0])) / 2.0
    torch.manual_seed(5)
    eps = torch.randn(5, 4).double().numpy()
    torch.manual_seed(5)
    got = vae_loss(m.vae, b["obs"], m.actor.to_unit(b["actions"]), beta=0.5)
    np.testing.assert_allclose(got.item(), np_elbo(m.vae, s, a_unit, eps, 0.5).mean(), **TOL)


@pytest.mark.parametrize("lambd", [0.0, 0.3])
def test_actor_loss_normalises_q_and_adds_the_density_penalty(lambd):
    m, b = make_module(), batch(seed=2)
    s = b["obs"]
    with torch.no_grad():
        pi = m.actor(s).double().numpy()
    q1 = np_mlp(np.concatenate([s.double().numpy(), pi], -1), m.critics.qs[0])[:, 0]
    pi_unit = (pi - np.array([0.0, 1.0])) / 2.0
    torch.manual_seed(9)
    eps = torch.randn(5, 4).double().numpy()
    expected = -q1.mean() / np.abs(q1).mean() + lambd * np_elbo(m.vae, s.double().numpy(), pi_unit, eps, 0.5).mean()
    torch.manual_seed(9)
    loss, neg_log_beta = spot_actor_loss(m.actor, m.critics, m.vae, s, beta=0.5, lambd=lambd)
    np.testing.assert_allclose(loss.item(), expected, **TOL)
    np.testing.assert_allclose(neg_log_beta.detach().numpy(), np_elbo(m.vae, s.double().numpy(), pi_unit, eps, 0.5), **TOL)
    # The penalty pulls π towards the VAE's support: its gradient reaches the actor.
    m.actor.zero_grad()
    torch.manual_seed(9)
    spot_actor_loss(m.actor, m.critics, m.vae, s, beta=0.5, lambd=lambd)[0].backward()
    assert m.actor.net[0].weight.grad.abs().sum() > 0


def test_lambda_decays_linearly_to_its_floor():
    assert cooled_lambda(0.1, 0.2, 0, 1000) == pytest.approx(0.1)
    assert cooled_lambda(0.1, 0.2, 500, 1000) == pytest.approx(0.05)
    assert cooled_lambda(0.1, 0.2, 900, 1000) == pytest.approx(0.02)  # 1 − 0.9 < λ_end
    assert cooled_lambda(0.1, 0.2, 5000, 1000) == pytest.approx(0.02)


def make_updates(**settings) -> SPOTUpdates:
    m = make_module()
    cfg = SimpleNamespace(**SPOTSettings(**settings).model_dump(), paradigm="offline")
    opts = {k: torch.optim.Adam(net.parameters(), lr=lr) for k, (net, lr) in SPOTUpdates.optimizer_groups(m, cfg).items()}
    return SPOTUpdates(m, cfg, opts, None, torch.device("cpu"))


def test_stages_change_only_their_networks_and_the_actor_is_delayed():
    u = make_updates(policy_delay=2)
    m = u.m
    snap = lambda: {k: v.clone() for k, v in m.state_dict().items()}  # noqa: E731
    before = snap()
    out = u.vae_update(batch())
    after = snap()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if k.startswith("vae.")} | {"vae_updates"} and m.vae_updates.item() == 1
    assert set(out) == {"vae_loss"}

    out = u.update(batch(), lambd=0.5)  # critic only
    after2 = snap()
    changed = {k for k in after if not torch.equal(after[k], after2[k])}
    assert changed and all(k.startswith("critics.") for k in changed), changed
    out = u.update(batch(seed=3), lambd=0.5)  # critic, actor, targets; VAE frozen
    after3 = snap()
    changed = {k.split(".")[0] for k in after2 if not torch.equal(after2[k], after3[k])}
    assert changed == {"critics", "actor", "actor_target", "critics_target"}
    assert {"critic_loss", "actor_loss", "neg_log_beta"} <= set(out)


def test_settings_refuse_a_phase_that_only_trains_the_vae():
    s = SPOTSettings(vae_iterations=10_000)
    assert s.phase_problems("offline", "updates", 10_000, warm_start=False)
    assert not s.phase_problems("offline", "updates", 10_001, warm_start=False)
    assert not s.phase_problems("offline", "updates", 100, warm_start=True)  # a SPOT source brings its VAE
    assert any("only applies to online" in msg for _, msg, _ in SPOTSettings.problems({"lambd_end": 0.5}, "offline"))


# ------------------------------------------------------------------------------ learning (real Ray)


def spot_config(dataset: str, root: str, **extra):
    from algorithms.spot import SPOTConfig

    return (SPOTConfig().environment("InvertedPendulum-v5")
            .training(dataset=dataset, dataset_root=root, hidden=[64, 64], vae_hidden=64, vae_iterations=500, updates_per_iteration=1000,
                      actor_lr=1e-3, critic_lr=1e-3, eval_episodes=5, **extra))


def test_spot_offline_then_hybrid(ray_local, minari_root, mixed_data, tmp_path):
    """Offline: the VAE stage (500 updates, counted), then TD3 with the density penalty picks
    the good actions of data whose cloning fails (BC: 63; measured here: 1000 after 3000
    TD3 updates). Hybrid: a warm start from that checkpoint keeps the trained VAE (no VAE
    stage) and λ decays over `lambd_cool_steps`."""
    algo = spot_config(mixed_data, str(minari_root)).build_algo()
    try:
        results = [algo.train()]
        while len(results) < 5 and results[-1]["evaluation_return"] < 900:
            results.append(algo.train())
        path = algo.save(str(tmp_path / "offline")).checkpoint.path
    finally:
        algo.stop()
    returns = [r["evaluation_return"] for r in results]
    print("SPOT offline returns", returns)
    assert results[0]["spot_stage"] == 0 and results[0]["vae_updates"] == 500 and results[0]["num_updates_lifetime"] == 500
    assert "vae_loss" in results[0]["learner_stats"] and "actor_loss" not in results[0]["learner_stats"]
    assert all(r["spot_stage"] == 1 for r in results[1:]) and results[-1]["num_updates_lifetime"] == 500 + 1000 * (len(results) - 1)
    assert max(returns[1:]) >= 900, returns

    algo = spot_config(mixed_data, str(minari_root), paradigm="hybrid", init_checkpoint=path, budget_env_steps=1000,
                       env_steps_per_iteration=1000, lambd_cool_steps=2000).build_algo()
    try:
        start = algo.evaluate_policy()["evaluation_return"]
        hybrid = algo.train()
    finally:
        algo.stop()
    print("SPOT hybrid start", start, "after 1000 env steps", hybrid["evaluation_return"])
    # Evaluation is deterministic with fixed episode seeds: the warm start is the offline
    # policy exactly. The fine-tuning dip after it varies (measured 122–1000 in CI), so only a
    # collapse to BC's level (63) fails.
    assert start == returns[-1]
    assert hybrid["spot_stage"] == 1 and hybrid["vae_updates"] == 500  # the VAE came with the checkpoint
    assert hybrid["lambd"] == pytest.approx(0.1 * 0.5)  # after 1000 of T = 2000 steps
    assert hybrid["num_env_steps_lifetime"] == 1000 and hybrid["num_updates_lifetime"] == 1000 and hybrid["replay_size"] == 1000
    assert hybrid["evaluation_return"] > 63


def test_pipeline_yaml_validates():
    from pathlib import Path

    from mprl.spec import load_pipeline

    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / "spot_offline_to_online.yaml")
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [("spot", "offline"), ("spot", "hybrid")]
