"""IQL: its losses against values computed by hand, one full update in the paper's order, the
cosine actor schedule, reward normalisation, and a CI-sized learning check.

Expected values are written out from the formulas (CORL finetune/iql.py) with explicit torch
expressions on the networks' own weights, never by calling the function under test:

    u    = min_j Q̄_j(s, a) − V(s)                      L_V = mean(|τ − 1(u<0)| · u²)
    y    = r + γ (1 − d) V(s′)   (V before its step)    L_Q = ½ Σ_j mean((Q_j(s, a) − y)²)
    w    = min(exp(β u), 100)                           L_π = mean(w · −log π(a|s))  |  mean(w · ‖π(s) − a‖²)
    Q̄    ← (1 − ρ) Q̄ + ρ Q after the Q step;  lr_t = lr0 (1 + cos(π t / T)) / 2
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.iql.iql_learner import (
    IQLUpdates,
    advantage_weights,
    awr_actor_loss,
    cosine_lr,
    expectile_loss,
    q_loss,
    reward_scale,
    schedule_length,
)

TOL = dict(rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ the losses


def test_expectile_loss_weights_each_sign():
    """τ = 0.7: positive residuals weigh 0.7, negative ones 0.3."""
    assert expectile_loss(torch.tensor([2.0]), 0.7).item() == pytest.approx(0.7 * 4)
    assert expectile_loss(torch.tensor([-2.0]), 0.7).item() == pytest.approx(0.3 * 4)
    assert expectile_loss(torch.tensor([2.0, -1.0, 0.0]), 0.7).item() == pytest.approx((0.7 * 4 + 0.3 * 1 + 0.0) / 3)
    # τ = 0.5 is half the squared error.
    assert expectile_loss(torch.tensor([3.0, -1.0]), 0.5).item() == pytest.approx(0.5 * (9 + 1) / 2)


def test_advantage_weights_clip_at_100_without_gradient():
    u = torch.tensor([0.0, 1.0, -1.0, 10.0], requires_grad=True)
    w = advantage_weights(u, beta=3.0)
    np.testing.assert_allclose(w.numpy(), [1.0, math.exp(3.0), math.exp(-3.0), 100.0], rtol=1e-6)
    assert not w.requires_grad
    assert advantage_weights(torch.tensor([1.0]), beta=3.0, max_weight=5.0).item() == 5.0


def test_q_loss_is_half_the_sum_of_the_twin_mses():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # [n=2, B=2]
    y = torch.tensor([1.0, 1.0])
    mse1, mse2 = (0.0 + 1.0) / 2, (4.0 + 9.0) / 2
    assert q_loss(q, y).item() == pytest.approx(0.5 * (mse1 + mse2))


def _actor(kind: str, seed: int = 0):
    from algorithms.common.networks import DeterministicActor, GaussianActor

    torch.manual_seed(seed)
    low, high = np.array([-3.0, 0.0]), np.array([1.0, 2.0])  # scale [2, 1], bias [−1, 1]
    if kind == "deterministic":
        return DeterministicActor(2, low, high, [3])
    actor = GaussianActor(2, low, high, [3], squash="tanh_mean", state_dependent_std=False)
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor([-0.5, 0.3]))
    return actor


def _mlp_out(seq: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Linear → ReLU → Linear by hand from the layer weights."""
    h = torch.relu(x @ seq[0].weight.T + seq[0].bias)
    return h @ seq[2].weight.T + seq[2].bias


def test_actor_loss_gaussian_is_weighted_negative_log_likelihood():
    actor = _actor("gaussian")
    obs = torch.tensor([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.1]])
    act = torch.tensor([[-2.0, 1.5], [0.5, 0.2], [-1.0, 1.0]])  # environment units
    w = torch.tensor([1.0, 20.0, 100.0])
    with torch.no_grad():
        mu = torch.tanh(_mlp_out(actor.net, obs))
        a_unit = (act - torch.tensor([-1.0, 1.0])) / torch.tensor([2.0, 1.0])
        log_std = torch.tensor([-0.5, 0.3])
        logp = (-0.5 * ((a_unit - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        expected = (w * -logp).mean()
    torch.testing.assert_close(awr_actor_loss(actor, obs, act, w), expected, **TOL)


def test_actor_loss_deterministic_is_weighted_squared_error_in_unit_actions():
    actor = _actor("deterministic")
    obs = torch.tensor([[0.5, -1.0], [1.0, 2.0]])
    act = torch.tensor([[-2.0, 1.5], [0.5, 0.2]])
    w = torch.tensor([2.0, 100.0])
    with torch.no_grad():
        pi_unit = torch.tanh(_mlp_out(actor.net, obs))
        a_unit = (act - torch.tensor([-1.0, 1.0])) / torch.tensor([2.0, 1.0])
        expected = (w * ((pi_unit - a_unit) ** 2).sum(-1)).mean()
    torch.testing.assert_close(awr_actor_loss(actor, obs, act, w), expected, **TOL)


# ------------------------------------------------------------------------------ one full update


def _config(**over):
    base = dict(gamma=0.9, tau=0.1, expectile=0.7, beta=3.0, max_weight=100.0, actor_lr=1e-2, critic_lr=1e-2, value_lr=1e-2,
                actor_lr_schedule="auto", paradigm="offline", budget_updates=4, budget_env_steps=None, init_checkpoint=None,
                learning_starts=0, utd=1, normalize_reward=False, train_batch_size_per_learner=3)
    return SimpleNamespace(**{**base, **over})


def _module(actor: str = "gaussian"):
    from algorithms.iql.iql_module import IQLRLModule

    torch.manual_seed(3)
    box = gym.spaces.Box(np.array([-3.0, 0.0], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32))
    obs_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    module = IQLRLModule(observation_space=obs_space, action_space=box, model_config={"hidden": [3], "actor": actor})
    with torch.no_grad():  # targets differ from the online critics, as they do after training
        for p in module.critics_target.parameters():
            p.add_(0.1)
    return module


def _updates(module, config):
    from algorithms.common.sampler import Sampler

    opts = {name: torch.optim.SGD(net.parameters(), lr=lr) for name, (net, lr) in IQLUpdates.optimizer_groups(module, config).items()}
    data = {"obs": np.zeros((4, 2), np.float32), "actions": np.zeros((4, 2), np.float32), "rewards": np.zeros(4, np.float32),
            "next_obs": np.zeros((4, 2), np.float32), "terminals": np.zeros(4, np.float32), "truncations": np.zeros(4, np.float32)}
    sampler = Sampler("offline", 2, 2, 10, torch.device("cpu"), dataset=data)
    return IQLUpdates(module, config, opts, sampler, torch.device("cpu"))


BATCH = {
    "obs": torch.tensor([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.1]]),
    "actions": torch.tensor([[-2.0, 1.5], [0.5, 0.2], [-1.0, 1.0]]),
    "rewards": torch.tensor([1.0, -0.5, 2.0]),
    "next_obs": torch.tensor([[0.2, 0.3], [-1.0, 0.5], [0.0, 0.0]]),
    "terminals": torch.tensor([0.0, 1.0, 0.0]),
    "truncations": torch.tensor([0.0, 0.0, 1.0]),
}


@pytest.mark.parametrize("actor", ["gaussian", "deterministic"])
def test_one_update_in_the_papers_order(actor):
    """V step on min Q̄ − V, Q step on y with V(s′) from before the V step, actor on step 1's u,
    Polyak on Q only; every loss equal to the hand computation on the pre-update weights."""
    m = _module(actor)
    up = _updates(m, _config())
    s, a, r, s2, d = (BATCH[k] for k in ("obs", "actions", "rewards", "next_obs", "terminals"))
    with torch.no_grad():
        x = torch.cat([s, a], -1)
        q_bar = torch.stack([_mlp_out(q, x).squeeze(-1) for q in m.critics_target.qs]).min(0).values
        v = _mlp_out(m.value.net, s).squeeze(-1)
        v_next = _mlp_out(m.value.net, s2).squeeze(-1)
        u = q_bar - v
        exp_v = (torch.where(u < 0, 0.3, 0.7) * u**2).mean()
        y = r + 0.9 * (1 - d) * v_next
        q1, q2 = (_mlp_out(q, x).squeeze(-1) for q in m.critics.qs)
        exp_q = 0.5 * (((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean())
        w = torch.clamp(torch.exp(3.0 * u), max=100.0)
        exp_pi = awr_actor_loss(m.actor, s, a, w)  # checked against the hand formula above
        q_target_before = [p.clone() for p in m.critics_target.parameters()]
    out = up.update(dict(BATCH))
    torch.testing.assert_close(out["value_loss"], exp_v, **TOL)
    torch.testing.assert_close(out["critic_loss"], exp_q, **TOL)
    torch.testing.assert_close(out["actor_loss"], exp_pi, **TOL)
    torch.testing.assert_close(out["advantage"], u.mean(), **TOL)
    # Polyak on Q only, from the critics after their step.
    for tgt, old, new in zip(m.critics_target.parameters(), q_target_before, m.critics.parameters()):
        torch.testing.assert_close(tgt, 0.9 * old + 0.1 * new, **TOL)
    assert not hasattr(m, "value_target") and not hasattr(m, "actor_target")


def test_the_actor_step_uses_the_weights_of_u_before_the_value_step():
    """A broken order (u recomputed after V's step) gives another actor loss; ours equals the pre-step one."""
    m = _module()
    up = _updates(m, _config(value_lr=10.0))  # a large V step: u after it is far from u before it
    with torch.no_grad():
        x = torch.cat([BATCH["obs"], BATCH["actions"]], -1)
        q_bar = torch.stack([_mlp_out(q, x).squeeze(-1) for q in m.critics_target.qs]).min(0).values
        u_before = q_bar - m.value(BATCH["obs"])
        exp_pi = awr_actor_loss(m.actor, BATCH["obs"], BATCH["actions"], advantage_weights(u_before, 3.0))
    out = up.update(dict(BATCH))
    torch.testing.assert_close(out["actor_loss"], exp_pi, **TOL)


# ------------------------------------------------------------------------------ the actor's schedule


def test_cosine_lr_values():
    assert cosine_lr(3e-4, 0, 100) == pytest.approx(3e-4)
    assert cosine_lr(3e-4, 50, 100) == pytest.approx(1.5e-4)
    assert cosine_lr(3e-4, 25, 100) == pytest.approx(3e-4 * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine_lr(3e-4, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(3e-4, 150, 100) == pytest.approx(0.0, abs=1e-12)  # held at 0 after T


def test_schedule_length_is_the_phases_update_budget():
    assert schedule_length(_config(budget_updates=1000)) == 1000  # offline, auto → cosine over the budget
    assert schedule_length(_config(budget_updates=None)) is None  # no budget: constant
    assert schedule_length(_config(actor_lr_schedule="constant")) is None
    online = dict(paradigm="online", budget_updates=None, budget_env_steps=5000, utd=2, learning_starts=1000)
    assert schedule_length(_config(**online)) is None  # auto online: constant
    assert schedule_length(_config(**online, actor_lr_schedule="cosine")) == (5000 - 1000) * 2
    assert schedule_length(_config(**online, actor_lr_schedule="cosine", init_checkpoint="/ck")) == 5000 * 2  # warm start: no warm-up
    assert schedule_length(_config(**{**online, "paradigm": "hybrid"})) is None


def test_each_actor_step_uses_the_cosine_lr_of_its_update_index():
    m = _module()
    up = _updates(m, _config(budget_updates=4, actor_lr=0.02))
    lrs = []
    for _ in range(4):
        up.update(dict(BATCH))
        lrs.append(up.optimizers["actor"].param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [0.02 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)], rtol=1e-9)
    # The algorithm passes its (checkpointed) counter, so a restored run continues the schedule.
    up.run(1, updates_done=3)
    assert up.optimizers["actor"].param_groups[0]["lr"] == pytest.approx(0.02 * (1 + math.cos(math.pi * 3 / 4)) / 2)
    assert up.num_updates == 4


# ------------------------------------------------------------------------------ reward normalisation


def test_reward_scale_is_1000_over_the_return_range_and_online_rewards_get_it():
    # Three episodes (ends at rows 1, 3 by termination / truncation; the last by truncation): returns 3, 10, 5.
    rewards = np.array([1.0, 2.0, 4.0, 6.0, 5.0], np.float32)
    terminals = np.array([0, 1, 0, 0, 0], np.float32)
    truncations = np.array([0, 0, 0, 1, 1], np.float32)
    assert reward_scale(rewards, terminals, truncations) == pytest.approx(1000 / (10 - 3))
    with pytest.raises(ValueError, match="normalize_reward"):
        reward_scale(np.ones(2, np.float32), np.array([1, 1], np.float32), np.zeros(2, np.float32))

    m = _module()
    cfg = _config(normalize_reward=True)
    arrays = {"rewards": rewards, "terminals": terminals, "truncations": truncations}
    out = IQLUpdates.prepare_dataset(arrays, cfg, m)
    np.testing.assert_allclose(out["rewards"], rewards * 1000 / 7, rtol=1e-6)
    assert float(m.reward_scale) == pytest.approx(1000 / 7)
    up = _updates(m, cfg)
    online = up.prepare_transitions({"rewards": np.array([7.0], np.float32)})
    np.testing.assert_allclose(online["rewards"], [1000.0], rtol=1e-6)
    # Off: unchanged.
    assert IQLUpdates.prepare_dataset(arrays, _config(), m) is arrays


def test_settings_refuse_what_iql_would_ignore():
    from algorithms.iql.iql import IQLSettings

    assert [k for k, *_ in IQLSettings.problems({"exploration_noise": 0.1})] == ["config"]  # the Gaussian actor samples
    assert IQLSettings.problems({"exploration_noise": 0.1, "actor": "deterministic"}) == []
    assert [k for k, *_ in IQLSettings.problems({"expectile": 1.0, "beta": -1})] == ["expectile", "beta"]
    assert [k for k, *_ in IQLSettings.problems({"exploration_noise": 0.1, "actor": "deterministic"}, "offline")] == ["exploration_noise"]
    s = IQLSettings(normalize_reward=True)
    assert [k for k, _ in s.phase_problems("online", "env_steps", 1000, warm_start=False)] == ["normalize_reward"]
    assert s.phase_problems("online", "env_steps", 1000, warm_start=True) == []
    assert s.phase_problems("hybrid", "env_steps", 1000, warm_start=False) == []
    assert IQLSettings.default_hybrid_replay == "shared"


# ------------------------------------------------------------------------------ learning (real Ray)


def test_iql_offline_picks_the_good_actions_of_a_mixed_dataset(ray_local, minari_root, mixed_data):
    """Cloning this data averages good and opposite actions. Measured on this data (64×64, 1000
    updates per evaluation, 3 episodes): BC returned 89, 735, 28, 63 over 4000 updates, and IQL
    with β = 0 (the advantage weighting broken to a constant) 59, 101, 232, 158. IQL's advantage
    weights keep the good actions: it balanced the pole (1000) at every evaluation."""
    from algorithms.iql import IQLConfig

    algo = (IQLConfig().environment("InvertedPendulum-v5")
            .training(dataset=mixed_data, dataset_root=str(minari_root), hidden=[64, 64], updates_per_iteration=1000,
                      budget_updates=2000, eval_episodes=5)
            .build_algo())
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    returns = [r["evaluation_return"] for r in results]
    assert results[-1]["num_updates_lifetime"] == 2000 and results[-1]["budget_done"]
    assert results[-1]["learner_stats"]["actor_lr"] < 1e-6  # the cosine reached 0 at the budget
    assert max(returns) >= 900, returns


# ------------------------------------------------------------------------------ transfers (no Ray)


def _built(name: str, seed: int, **settings):
    from mprl.catalogue import get_algorithm
    from mprl.transfer.snapshots import module_from_config

    cfg = get_algorithm(name).new_config()
    for k, v in settings.items():
        setattr(cfg, k, v)
    torch.manual_seed(seed)
    module = module_from_config(cfg, "Hopper-v5")
    g = torch.Generator().manual_seed(seed)
    module.normalizer.set_stats(torch.randn(11, generator=g), torch.rand(11, generator=g) + 0.5)
    return module


def _transfer(src_name: str, src, tgt_name: str, tgt):
    from mprl.transfer import apply, check, snapshot_from_module

    source = snapshot_from_module(src, algorithm=src_name, env="Hopper-v5")
    report = check(source, snapshot_from_module(tgt, algorithm=tgt_name, env="Hopper-v5"))
    assert report.possible
    apply(report, source, tgt)
    return report


OBS = torch.randn(500, 11, generator=torch.Generator().manual_seed(7)) * 2
ACTS = torch.rand(500, 3, generator=torch.Generator().manual_seed(8)) * 2 - 1


def _q(module, obs, act):
    with torch.no_grad():
        return module.critics(module.normalizer(obs), act)


@pytest.mark.parametrize("actor", ["gaussian", "deterministic"])
def test_iql_to_td3_carries_policy_and_critics_and_drops_v(actor):
    src, tgt = _built("iql", 1, actor=actor), _built("td3", 2)
    report = _transfer("iql", src, "td3", tgt)
    roles = {r.role: r for r in report.roles}
    assert report.policy == "exact"
    assert roles["actor"].status == ("adapted" if actor == "gaussian" else "exact")  # Gaussian mean rows → deterministic layer
    assert {roles[k].status for k in ("q[0]", "q[1]", "q_target[0]", "q_target[1]")} == {"exact"}
    assert roles["actor_target"].status == "synced"  # IQL has no actor target: TD3's is synced from the carried actor
    with torch.no_grad():
        torch.testing.assert_close(tgt.act(OBS), src.act(OBS), rtol=0, atol=1e-6)
    torch.testing.assert_close(_q(tgt, OBS, ACTS), _q(src, OBS, ACTS))
    skipped = {s.source: s.reason for s in report.skipped}
    assert all(skipped[k].startswith("the target has no state-value function") for k in skipped if k.startswith("value."))
    assert len([k for k in skipped if k.startswith("value.")]) == 6
    if actor == "gaussian":
        assert "actor.log_std" in skipped


@pytest.mark.parametrize("actor", ["gaussian", "deterministic"])
def test_td3_to_iql_carries_policy_and_critics_and_initialises_v(actor):
    src, tgt = _built("td3", 1), _built("iql", 2, actor=actor)
    v_before = {k: v.clone() for k, v in tgt.value.state_dict().items()}
    report = _transfer("td3", src, "iql", tgt)
    roles = {r.role: r for r in report.roles}
    assert report.policy == "exact"
    assert roles["actor"].status == ("adapted" if actor == "gaussian" else "exact")
    assert roles["v"].status == "initialised" and roles["v"].detail.startswith("missing role: the source has no state-value function")
    assert all(torch.equal(v, v_before[k]) for k, v in tgt.value.state_dict().items())  # V left as initialised
    with torch.no_grad():
        torch.testing.assert_close(tgt.act(OBS), src.act(OBS), rtol=0, atol=1e-6)
    torch.testing.assert_close(_q(tgt, OBS, ACTS), _q(src, OBS, ACTS))
    if actor == "gaussian":
        entry = next(e for e in report.entries if e.target == "actor.log_std")
        assert entry.action == "initialised" and "deterministic" in entry.detail


def test_iql_to_iql_carries_everything_including_the_reward_scale():
    src, tgt = _built("iql", 1), _built("iql", 2)
    src.reward_scale.fill_(3.5)
    report = _transfer("iql", src, "iql", tgt).to_dict()
    assert report["policy"] == "exact" and not report["left_initialised"] and not report["skipped"]
    assert "reward_scale" in report["copied"] and float(tgt.reward_scale) == 3.5
    for a, b in zip(src.state_dict().values(), tgt.state_dict().values()):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------ pipeline (real Ray + Tune)


def test_iql_offline_to_hybrid_pipeline(ray_local, minari_root, mixed_data, tmp_path):
    """IQL offline → IQL hybrid fine-tuning on one shared buffer (CORL), rewards normalised in
    both: the fine-tuning phase's evaluation before its first update equals the offline phase's
    selected checkpoint's return, the transfer is exact and carries V and the reward scale, and
    the lineage records both phases."""
    from mprl.lineage import LineageStore
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    evaluation = {"interval": 300, "episodes": 2, "seed": 321}
    common = {"env": "InvertedPendulum-v5", "dataset": {"id": mixed_data}, "tune": {"seeds": [0]}}
    spec = parse_pipeline({"name": "iql-o2o", "storage_path": str(tmp_path), "videos": {"selected": False}, "phases": [
        {"name": "offline", "algorithm": "iql", **common, "budget": {"updates": 600}, "evaluation": evaluation,
         "config": {"hidden": [64, 64], "normalize_reward": True}},
        {"name": "finetune", "algorithm": "iql", "paradigm": "hybrid", **common, "init_from": "offline", "budget": {"env_steps": 200},
         "evaluation": {**evaluation, "interval": 100}, "config": {"hidden": [64, 64], "normalize_reward": True}},
    ]})
    result = run_pipeline(spec, write=lambda _: None)
    off, on = result.phases
    assert [(p.algorithm, p.paradigm) for p in result.phases] == [("iql", "offline"), ("iql", "hybrid")]
    assert (off.updates, on.env_steps, on.updates) == (600, 200, 200)  # utd 1 from the first fragment (warm start)
    assert on.initial_return == off.evaluation_return
    assert on.metrics["replay_size"] == on.checkpoint_at  # the online rows, appended to the dataset's in the shared buffer
    with LineageStore(result.run_dir, readonly=True) as store:
        nodes = {n["node_id"]: n for n in store.nodes()}
        assert list(nodes) == ["offline", "finetune"] and all(n["status"] == "succeeded" for n in nodes.values())
        assert [nodes[n]["paradigm"] for n in nodes] == ["offline", "hybrid"]
        parent = store.checkpoint(nodes["finetune"]["parent_checkpoint_id"])
        assert parent["node_id"] == "offline" and parent["selected"] == 1 and parent["evaluation_return"] == off.evaluation_return
        (transfer,) = store.transfers()
        report = json.loads(transfer["report_json"])
        assert report["policy"] == "exact" and not report["left_initialised"] and not report["skipped"]
        assert "reward_scale" in report["copied"] and any(k.startswith("value.") for k in report["copied"])


def test_online_phase_from_iql_scales_rewards_as_its_checkpoint(ray_local, minari_root, mixed_data, tmp_path):
    """normalize_reward: the offline phase's factor 1000/(max − min episode return) travels with
    its checkpoint; an online phase warm-started from it (no dataset) multiplies each new reward
    by it before the replay."""
    from algorithms.iql import IQLConfig
    from mprl.datasets import episode_returns

    returns = episode_returns(mixed_data)
    scale = 1000.0 / (returns.max() - returns.min())
    small = dict(hidden=[32, 32], normalize_reward=True, eval_episodes=0)
    off = (IQLConfig().environment("InvertedPendulum-v5")
           .training(dataset=mixed_data, dataset_root=str(minari_root), updates_per_iteration=50, budget_updates=50, **small).build_algo())
    try:
        off.train()
        assert float(off.learner_group._learner.module["default_policy"].reward_scale) == pytest.approx(scale, rel=1e-5)
        path = off.save(str(tmp_path / "off")).checkpoint.path
    finally:
        off.stop()
    on = (IQLConfig().environment("InvertedPendulum-v5")
          .training(paradigm="online", init_checkpoint=path, env_steps_per_iteration=50, budget_env_steps=50, **small).build_algo())
    try:
        assert "reward_scale" in on.transfer_report["copied"]
        on.train()
        rows = on.learner_group._learner.updates.sampler.online.get_state()
        assert len(rows["rewards"]) == 50
        # v5's reward: 1 per step, 0 on the step that terminates the episode
        np.testing.assert_allclose(rows["rewards"], scale * (1.0 - rows["terminals"]), rtol=1e-5)
        assert rows["terminals"].sum() < 50
    finally:
        on.stop()
