"""BC / 10%-BC: the losses against hand computations, the top-fraction filter, and CI-sized
learning checks on a real local Ray.

    deterministic head: L = mean over batch and action dims of (π(s) − a)²     (CORL any_percent_bc)
    Gaussian head:      L = mean over batch of −log N(a_unit; tanh(μ(s)), σ²)   (state-independent σ)
    10%-BC: the best max(1, ⌊0.1·E⌋) episodes by Σ_t γ^t r_t                   (CORL keep_best_trajectories)
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from algorithms.bc.bc_learner import bc_mse_loss, bc_nll_loss, discounted_episode_returns, keep_best_episodes

TOL = dict(rtol=1e-5, atol=1e-6)
LOW, HIGH = np.array([-3.0, 0.0]), np.array([1.0, 2.0])  # scale [2, 1], bias [−1, 1]
OBS = torch.tensor([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.1]])
ACT = torch.tensor([[-2.0, 1.5], [0.5, 0.2], [-1.0, 1.0]])


def _mlp_out(seq: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    h = torch.relu(x @ seq[0].weight.T + seq[0].bias)
    return h @ seq[2].weight.T + seq[2].bias


def test_mse_loss_is_the_squared_error_in_environment_units():
    from algorithms.common.networks import DeterministicActor

    torch.manual_seed(0)
    actor = DeterministicActor(2, LOW, HIGH, [3])
    with torch.no_grad():
        pi = torch.tensor([-1.0, 1.0]) + torch.tensor([2.0, 1.0]) * torch.tanh(_mlp_out(actor.net, OBS))
        expected = ((pi - ACT) ** 2).sum() / ACT.numel()
    torch.testing.assert_close(bc_mse_loss(actor, OBS, ACT), expected, **TOL)


def test_nll_loss_is_the_gaussian_negative_log_likelihood():
    from algorithms.common.networks import GaussianActor

    torch.manual_seed(0)
    actor = GaussianActor(2, LOW, HIGH, [3], squash="tanh_mean", state_dependent_std=False)
    log_std = torch.tensor([-0.5, 0.3])
    with torch.no_grad():
        actor.log_std.copy_(log_std)
        mu = torch.tanh(_mlp_out(actor.net, OBS))
        a = (ACT - torch.tensor([-1.0, 1.0])) / torch.tensor([2.0, 1.0])
        log_density = (-0.5 * ((a - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(bc_nll_loss(actor, OBS, ACT), -log_density.mean(), **TOL)


def _episodes(returns_by_step: list[list[float]]) -> dict[str, np.ndarray]:
    """A flat dataset of the given episodes (rewards per step); each ends by termination, the last by truncation."""
    rewards = np.concatenate([np.asarray(r, np.float32) for r in returns_by_step])
    ends = np.cumsum([len(r) for r in returns_by_step]) - 1
    terminals, truncations = np.zeros(len(rewards), np.float32), np.zeros(len(rewards), np.float32)
    terminals[ends[:-1]] = 1.0
    truncations[ends[-1]] = 1.0
    n = len(rewards)
    return {"obs": np.arange(n, dtype=np.float32)[:, None].repeat(3, 1), "actions": np.zeros((n, 1), np.float32), "rewards": rewards,
            "next_obs": np.zeros((n, 3), np.float32), "terminals": terminals, "truncations": truncations}


# Five episodes; discounted returns at γ = 0.5: 1, 1 + 0.5·4 = 3, 10, 0.5 + 0.25·20 = 5.5, 2 + 0.5·2 + 0.25·2 = 3.5
EPISODES = [[1.0], [1.0, 4.0], [10.0], [0.0, 1.0, 20.0], [2.0, 2.0, 2.0]]


def test_discounted_returns_per_episode():
    data = _episodes(EPISODES)
    from algorithms.common.replay import episode_ids

    got = discounted_episode_returns(data["rewards"], episode_ids(data["terminals"], data["truncations"]), 0.5)
    np.testing.assert_allclose(got, [1.0, 3.0, 10.0, 5.5, 3.5])


@pytest.mark.parametrize(("fraction", "kept"), [(0.4, [2, 3]), (0.6, [2, 3, 4]), (0.1, [2]), (1.0, [0, 1, 2, 3, 4])])
def test_top_fraction_keeps_exactly_the_best_episodes(fraction, kept):
    data = _episodes(EPISODES)
    out = keep_best_episodes(data, fraction, gamma=0.5)
    starts = np.cumsum([0] + [len(e) for e in EPISODES])
    rows = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in kept])
    np.testing.assert_array_equal(out["obs"][:, 0], rows)  # obs[:, 0] is the row index
    for key in ("actions", "rewards", "next_obs", "terminals", "truncations"):
        np.testing.assert_array_equal(out[key], data[key][rows])


def test_top_fraction_ranks_by_discounted_return_not_the_sum():
    # Episode 0 returns 5; episode 1 returns 0 + γ·1 + γ²·20: 0.3 at γ = 0.1 (episode 0 is kept), 21 at γ = 1 (episode 1).
    data = _episodes([[5.0], [0.0, 1.0, 20.0]])
    assert keep_best_episodes(data, 0.5, gamma=0.1)["rewards"].tolist() == [5.0]
    assert keep_best_episodes(data, 0.5, gamma=1.0)["rewards"].tolist() == [0.0, 1.0, 20.0]


def test_settings():
    from algorithms.bc.bc import BCSettings

    assert BCSettings().normalize_obs is True  # CORL any_percent_bc: normalize = True
    assert [k for k, *_ in BCSettings.problems({"tau": 0.01})] == ["tau"]  # BC has no target networks
    assert [k for k, *_ in BCSettings.problems({"top_fraction": 0.0})] == ["top_fraction"]
    assert [k for k, *_ in BCSettings.problems({"utd": 2}, "offline")] == ["utd"]
    assert "tau" not in [row[0] for row in BCSettings.table()]


# ------------------------------------------------------------------------------ learning (real Ray)


@pytest.fixture(scope="module")
def expert_data(minari_root):
    from scripted_pendulum import controller_dataset

    return controller_dataset("mprl/invertedpendulum/controller-expert-v0", steps=5000, noise=0.3)


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_bc_imitates_an_expert_dataset(ray_local, minari_root, expert_data, head):
    """The controller's data (return 1000 with σ 0.3 action noise): BC balances the pole; an
    untrained policy falls within ~10 steps, a loss with the wrong sign never learns."""
    from algorithms.bc import BCConfig

    algo = (BCConfig().environment("InvertedPendulum-v5")
            .training(dataset=expert_data, dataset_root=str(minari_root), head=head, hidden=[64, 64], updates_per_iteration=1000, eval_episodes=5)
            .build_algo())
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    assert results[-1]["num_updates_lifetime"] == 2000
    assert max(r["evaluation_return"] for r in results) >= 950, [r["evaluation_return"] for r in results]


def test_ten_percent_bc_trains_on_the_best_episodes_only(ray_local, minari_root, mixed_data):
    """The filter runs inside the learner before the sampler and the normaliser: the replay holds
    the kept episodes' rows and the normaliser their statistics."""
    from algorithms.bc import BCConfig
    from mprl.datasets import load_transitions

    algo = (BCConfig().environment("InvertedPendulum-v5")
            .training(dataset=mixed_data, dataset_root=str(minari_root), top_fraction=0.1, hidden=[64, 64], updates_per_iteration=500, eval_episodes=1)
            .build_algo())
    try:
        learner = algo.learner_group._learner
        arrays = load_transitions(mixed_data)
        arrays["truncations"] = arrays.pop("timeouts")
        kept = keep_best_episodes(arrays, 0.1, gamma=0.99)
        assert len(learner.updates.sampler) == len(kept["rewards"]) < len(arrays["rewards"]) / 3
        norm = learner.module["default_policy"].normalizer
        np.testing.assert_allclose(norm.mean.numpy(), kept["obs"].mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(norm.std.numpy(), kept["obs"].std(0) + 1e-3, rtol=1e-4, atol=1e-5)
        # The kept episodes last longer than the dataset's average one.
        assert kept["rewards"].sum() / max(1, int((kept["terminals"] + kept["truncations"]).sum())) > 2 * 31
        assert algo.train()["num_updates_lifetime"] == 500
    finally:
        algo.stop()


# ------------------------------------------------------------------------------ transfers (no Ray)


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_bc_to_td3_carries_the_policy_exactly(head):
    from mprl.catalogue import get_algorithm
    from mprl.transfer import apply, check, snapshot_from_module
    from mprl.transfer.snapshots import module_from_config

    def built(name, seed, **settings):
        cfg = get_algorithm(name).new_config()
        for k, v in settings.items():
            setattr(cfg, k, v)
        torch.manual_seed(seed)
        module = module_from_config(cfg, "Hopper-v5")
        module.normalizer.set_stats(torch.randn(11), torch.rand(11) + 0.5)
        return module

    src, tgt = built("bc", 1, head=head), built("td3", 2)
    assert [r.role for r in src.declared_roles()] == ["actor"]  # BC declares no critic
    source = snapshot_from_module(src, algorithm="bc", env="Hopper-v5")
    report = check(source, snapshot_from_module(tgt, algorithm="td3", env="Hopper-v5"))
    apply(report, source, tgt)
    roles = {r.role: r for r in report.roles}
    assert report.policy == "exact"
    assert roles["actor"].status == ("exact" if head == "deterministic" else "adapted")
    assert roles["actor_target"].status == "synced"
    assert roles["q[0]"].status == "initialised" and roles["q[0]"].detail == "missing role: the source has no critic"
    obs = torch.randn(500, 11) * 2
    with torch.no_grad():
        torch.testing.assert_close(tgt.act(obs), src.act(obs), rtol=0, atol=1e-6)
        torch.testing.assert_close(tgt.actor_target(tgt.normalizer(obs)), src.act(obs), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ pipeline (real Ray + Tune)


def test_bc_to_td3_pipeline(ray_local, minari_root, expert_data, tmp_path):
    """BC offline → TD3 online: TD3's evaluation before its first update equals the return of
    BC's selected checkpoint (an exact policy transfer, same evaluation seeds), and the lineage
    records both phases, the parent checkpoint and the transfer."""
    from mprl.lineage import LineageStore
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    evaluation = {"interval": 200, "episodes": 2, "seed": 321}
    spec = parse_pipeline({"name": "bc-td3", "storage_path": str(tmp_path), "videos": {"selected": False}, "phases": [
        {"name": "bc", "algorithm": "bc", "env": "InvertedPendulum-v5", "dataset": {"id": expert_data}, "budget": {"updates": 400},
         "evaluation": evaluation, "config": {"hidden": [64, 64]}, "tune": {"seeds": [0]}},
        {"name": "td3", "algorithm": "td3", "env": "InvertedPendulum-v5", "init_from": "bc", "budget": {"env_steps": 200},
         "evaluation": {**evaluation, "interval": 100}, "config": {"hidden": [64, 64], "utd": 1}, "tune": {"seeds": [0]}},
    ]})
    result = run_pipeline(spec, write=lambda _: None)
    bc, td3 = result.phases
    assert [(p.algorithm, p.paradigm) for p in result.phases] == [("bc", "offline"), ("td3", "online")]
    assert (bc.updates, td3.env_steps) == (400, 200)
    assert td3.initial_return == bc.evaluation_return  # exact: same policy, same episode seeds
    with LineageStore(result.run_dir, readonly=True) as store:
        nodes = {n["node_id"]: n for n in store.nodes()}
        assert list(nodes) == ["bc", "td3"] and all(n["status"] == "succeeded" for n in nodes.values())
        parent = store.checkpoint(nodes["td3"]["parent_checkpoint_id"])
        assert parent["node_id"] == "bc" and parent["selected"] == 1 and parent["checkpoint_id"] == bc.checkpoint_id
        assert parent["evaluation_return"] == bc.evaluation_return
        (transfer,) = store.transfers()
        report = json.loads(transfer["report_json"])
        assert transfer["node_id"] == "td3" and report["policy"] == "exact"
        roles = {r["role"]: r["status"] for r in report["roles"]}
        assert roles["actor"] == "exact" and roles["actor_target"] == "synced" and roles["q[0]"] == "initialised"
