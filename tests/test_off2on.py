"""Off2On (Lee et al. 2022): the ensemble losses and balanced replay's density ratio by hand, the
ensemble warm start (`init_from: {phase, top_k, as: ensemble}`) checked member by member, and a
CI-sized pipeline on a real local Ray: offline CQL on 2 seeds → Off2On from both checkpoints."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.common.online_pretraining import density_ratio_loss
from algorithms.common.sampler import Sampler
from algorithms.off2on.off2on import Off2OnSettings
from algorithms.off2on.off2on_learner import (
    Off2OnUpdates,
    balanced_priorities,
    ensemble_critic_loss,
    ensemble_targets,
    member_min,
    pessimistic_mean,
)
from algorithms.off2on.off2on_module import Off2OnRLModule, mixture_moments
from algorithms.sac.sac_learner import sac_actor_loss

YAML = Path(__file__).parents[1] / "tune_configs" / "off2on_hopper.yaml"


def make_module(k: int = 2, hidden=(8, 8)) -> Off2OnRLModule:
    torch.manual_seed(0)
    return Off2OnRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
                          model_config={"hidden": list(hidden), "ensemble_size": k, "initial_alpha": 1.0})


# ------------------------------------------------------------------------------ the math by hand


def test_pessimistic_ensemble_mean_and_actor_loss_by_hand():
    # [2K = 4, B = 2]: (Q1_0, Q2_0, Q1_1, Q2_1)
    q = torch.tensor([[1.0, 5.0], [2.0, 4.0], [-1.0, 0.0], [3.0, 2.0]])
    # member mins: k=0 → [1, 4], k=1 → [−1, 0]; their mean → [0, 2]
    assert torch.equal(member_min(q), torch.tensor([[1.0, 4.0], [-1.0, 0.0]]))
    assert torch.equal(pessimistic_mean(q), torch.tensor([0.0, 2.0]))

    class FixedActor(torch.nn.Module):
        def sample(self, obs):
            return torch.zeros(2, 2), torch.tensor([-1.0, 0.5])

    class FixedCritics(torch.nn.Module):
        def forward(self, obs, a):
            return q

    # L_π = E[α log π − mean_k min(Q1_k, Q2_k)] = mean(0.2·(−1) − 0, 0.2·0.5 − 2) = (−0.2 − 1.9) / 2
    loss, _ = sac_actor_loss(FixedActor(), FixedCritics(), torch.zeros(2, 3), 0.2, pessimistic_mean)
    assert loss.item() == pytest.approx((-0.2 - 1.9) / 2)


def test_ensemble_targets_and_critic_loss_by_hand():
    class FixedActor(torch.nn.Module):
        def sample(self, obs):
            return torch.zeros(2, 2), torch.tensor([1.0, -2.0])

    class FixedCritics(torch.nn.Module):
        def forward(self, obs, a):
            return torch.tensor([[1.0, 5.0], [2.0, 4.0], [-1.0, 0.0], [3.0, 2.0]])

    r, d = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    y = ensemble_targets(FixedActor(), FixedCritics(), torch.zeros(2, 3), r, d, 0.5, 0.1)
    # y_k = r + γ(1 − d)(min_k − α log π): row 0: 1 + 0.5(1 − 0.1) = 1.45 (k=0), 1 + 0.5(−1 − 0.1) = 0.45 (k=1); row 1: terminal → 0
    torch.testing.assert_close(y, torch.tensor([[1.45, 0.0], [0.45, 0.0]]))
    q = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    # Σ_k Σ_j (Q_jk − y_k)², mean over rows
    row0 = (1 - 1.45) ** 2 + (2 - 1.45) ** 2 + (0 - 0.45) ** 2 + (1 - 0.45) ** 2
    row1 = 1.0 + 0.0 + 1.0 + 1.0
    assert ensemble_critic_loss(q, y).item() == pytest.approx((row0 + row1) / 2)


def test_density_ratio_loss_and_priorities_by_hand():
    w_off, w_on = torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.5])
    # E_off[−log(2/(w+1))] − E_on[log(2w/(w+1))] = (0 + log 2)/2 − (0 + log(1/1.5))/2
    expected = math.log(2) / 2 + math.log(1.5) / 2
    assert density_ratio_loss(w_off, w_on).item() == pytest.approx(expected, abs=1e-6)
    # p = clamp(w^(1/T) / mean_off(w^(1/T)), 1e-3, 1e3), T = 5: w_off^(1/5) = [1, 1] → mean 1
    w = torch.tensor([1.0, 32.0, 1e-20, 1e20])
    p = balanced_priorities(w, torch.tensor([1.0, 1.0]), 5.0)
    torch.testing.assert_close(p, torch.tensor([1.0, 2.0, 1e-3, 1e3]))
    # normalised by the offline batch: w_off = 32 everywhere → w = 32 gets priority 1
    assert balanced_priorities(torch.tensor([32.0]), torch.tensor([32.0, 32.0]), 5.0).item() == pytest.approx(1.0)


def test_ensemble_policy_is_the_mixtures_gaussian():
    mus = torch.tensor([[[0.0]], [[2.0]]])  # K = 2, B = 1, |A| = 1
    log_stds = torch.zeros(2, 1, 1)  # σ_k = 1
    mu, log_std = mixture_moments(mus, log_stds)
    # μ = 1, σ² = mean(1 + 0, 1 + 4) − 1 = 2
    assert mu.item() == pytest.approx(1.0)
    assert (2 * log_std).exp().item() == pytest.approx(2.0)
    m = make_module(k=3)
    obs = torch.randn(5, 3)
    member_mus = torch.stack([a.dist_params(obs)[0] for a in m.actor.members])
    torch.testing.assert_close(m.actor.dist_params(obs)[0], member_mus.mean(0))
    torch.testing.assert_close(m.act(obs), torch.tanh(member_mus.mean(0)))  # action bounds ±1


def test_one_update_trains_every_network_and_refreshes_the_replayed_priorities():
    m = make_module(k=2)
    rng = np.random.default_rng(0)
    n = 40
    data = {"obs": rng.normal(size=(n, 3)).astype(np.float32), "next_obs": rng.normal(size=(n, 3)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32), "rewards": rng.normal(size=n).astype(np.float32),
            "terminals": np.zeros(n, np.float32), "truncations": np.zeros(n, np.float32)}
    s = Sampler("balanced", 3, 2, 100, torch.device("cpu"), 0, dataset=data, balanced_temperature=5.0)
    s.add({k: v[:20] for k, v in data.items()})
    cfg = Off2OnSettings(hidden=[8, 8], ensemble_size=2, train_batch_size_per_learner=8)
    opts = {name: torch.optim.Adam(net.parameters() if isinstance(net, torch.nn.Module) else net, lr=lr)
            for name, (net, lr) in Off2OnUpdates.optimizer_groups(m, cfg).items()}
    u = Off2OnUpdates(m, cfg, opts, s, torch.device("cpu"))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p_before = s.balanced.priorities.clone()
    out = u.run(3)
    assert {"critic_loss", "actor_loss", "alpha_loss", "density_ratio_loss", "w_offline", "w_online", "priority_mean"} <= set(out)
    for prefix in ("actor.members.0.", "actor.members.1.", "critics.qs.3.", "critics_target.qs.0.", "density_ratio.", "log_alpha"):
        assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items() if k.startswith(prefix)), prefix
    changed = s.balanced.priorities != p_before
    assert changed.any() and (s.balanced.priorities[:60] >= 1e-3).all() and (s.balanced.priorities[:60] <= 1e3).all()


# ------------------------------------------------------------------------------ the ensemble warm start


def test_each_member_is_loaded_from_its_own_checkpoint_and_bad_members_are_refused():
    from algorithms.cql.cql_module import CQLRLModule
    from mprl.transfer.checker import TransferOptions
    from mprl.transfer.loader import apply, check_members
    from mprl.transfer.snapshots import snapshot_from_module

    m = make_module(k=2)
    spaces = dict(observation_space=m.observation_space, action_space=m.action_space)

    def cql(seed: int, layers: int = 2) -> CQLRLModule:
        torch.manual_seed(seed)
        module = CQLRLModule(**spaces, model_config={"hidden": [8, 8], "q_n_hidden_layers": layers})
        module.normalizer.set_stats(np.full(3, 0.5), np.full(3, 2.0))
        return module

    sources = [snapshot_from_module(cql(1)), snapshot_from_module(cql(2))]
    report, reports = check_members(sources, m, TransferOptions(), ["/a", "/b"], ["ck-a", "ck-b"])
    assert report["possible"], report["problems"]
    assert [(x["member"], x["checkpoint_id"]) for x in report["members"]] == [(0, "ck-a"), (1, "ck-b")]
    assert "member 0 ← ck-a" in report["policy"] and "member 1 ← ck-b" in report["policy"]
    for k, (r, src) in enumerate(zip(reports, sources)):
        apply(r, src, m.member(k))
    state = m.state_dict()
    for k, src in enumerate(sources):
        np.testing.assert_array_equal(state[f"actor.members.{k}.net.0.weight"].numpy(), src.state["actor.net.0.weight"])
        for j in range(2):
            np.testing.assert_array_equal(state[f"critics.qs.{2 * k + j}.2.weight"].numpy(), src.state[f"critics.qs.{j}.2.weight"])
            np.testing.assert_array_equal(state[f"critics_target.qs.{2 * k + j}.0.bias"].numpy(), src.state[f"critics_target.qs.{j}.0.bias"])
    np.testing.assert_array_equal(state["normalizer.mean"].numpy(), np.full(3, 0.5, np.float32))

    # incompatible members: another architecture, another dataset's normaliser, a wrong count, not an ensemble
    deep = check_members([snapshot_from_module(cql(1, layers=3)), sources[1]], m, TransferOptions())[0]
    assert not deep["possible"] and "left initialised" in deep["problems"][0]
    other = cql(3)
    other.normalizer.set_stats(np.zeros(3), np.ones(3))
    assert "normaliser differs" in check_members([sources[0], snapshot_from_module(other)], m, TransferOptions())[0]["problems"][0]
    assert "3 checkpoints for an ensemble of 2" in check_members([*sources, sources[0]], m, TransferOptions())[0]["problems"][0]
    assert "not an ensemble" in check_members(sources, cql(4), TransferOptions())[0]["problems"][0]


def test_spec_refuses_bad_ensemble_input():
    from mprl.errors import SpecError
    from mprl.spec import load_pipeline, parse_pipeline

    spec = load_pipeline(YAML)
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [("cql", "offline"), ("off2on", "hybrid")]
    init = spec.phase("finetune").init_from
    assert (init.phase, init.top_k, init.ensemble) == ("offline", 5, True)
    data = spec.to_dict()
    assert parse_pipeline(data, source="x").to_dict() == data  # round trip

    def problem(change) -> str:
        d = copy.deepcopy(data)
        change(d)
        with pytest.raises(SpecError) as e:
            parse_pipeline(d, source="x")
        return str(e.value)

    assert "sac is not an ensemble algorithm" in problem(lambda d: d["phases"][1].update(algorithm="sac", config={}))
    assert "ensemble_size: 5 members" in problem(lambda d: d["phases"][1]["init_from"].update(top_k=3))
    assert "needs 5 trials of 'offline', which runs 2" in problem(lambda d: d["phases"][0]["tune"].update(seeds=[0, 1]))
    assert "top_k: 5, as: ensemble" in problem(lambda d: d["phases"][1].update(init_from="offline"))
    assert "add `as: ensemble`" in problem(lambda d: d["phases"][1].update(init_from={"phase": "offline", "top_k": 5}))
    assert "the only value is `as: ensemble`" in problem(lambda d: d["phases"][1].update(init_from={"phase": "offline", "top_k": 5, "as": "mean"}))


def test_settings():
    s = Off2OnSettings()
    assert (s.ensemble_size, s.balanced_temperature, s.actor_lr, s.critic_lr, s.density_ratio_lr, s.train_batch_size_per_learner) == (5, 5.0, 3e-4, 3e-4, 3e-4, 256)
    assert Off2OnSettings.default_hybrid_replay == "balanced"


# ------------------------------------------------------------------------------ a pipeline (real Ray)


def test_pipeline_cql_two_seeds_then_off2on_ensemble(ray_local, minari_root, mixed_data, tmp_path, capsys):
    """Offline CQL on 2 seeds → Off2On from {phase: offline, top_k: 2, as: ensemble}: member k holds
    checkpoint k's weights exactly, the transfer record names both checkpoints, and the lineage has
    both as parents of the fine-tuning node (store, `mprl lineage show`, the web page's graph)."""
    from algorithms.common.checkpoints import read_module_state
    from mprl.lineage import LineageStore
    from mprl.pipeline.driver import run_pipeline
    from mprl.pipeline.phases import phase_config, reference_scores_for
    from mprl.spec import parse_pipeline

    small = {"hidden": [32, 32]}
    spec = parse_pipeline({
        "name": "off2on-ci", "storage_path": str(tmp_path),
        "phases": [
            {"name": "offline", "algorithm": "cql", "paradigm": "offline", "env": "InvertedPendulum-v5", "dataset": mixed_data,
             "budget": {"updates": 100}, "evaluation": {"interval": 100, "episodes": 1},
             "config": {**small, "q_n_hidden_layers": 2, "cql_n_actions": 2}, "tune": {"seeds": [0, 1]}},
            {"name": "finetune", "algorithm": "off2on", "paradigm": "hybrid", "env": "InvertedPendulum-v5", "dataset": mixed_data,
             "init_from": {"phase": "offline", "top_k": 2, "as": "ensemble"},
             "budget": {"env_steps": 100}, "evaluation": {"interval": 100, "episodes": 1},
             "config": {**small, "ensemble_size": 2, "train_batch_size_per_learner": 64, "rollout_fragment_length": 50}},
        ],
    }, source="off2on-ci")
    lines: list[str] = []
    t0 = time.perf_counter()
    result = run_pipeline(spec, write=lines.append)
    print(f"pipeline {time.perf_counter() - t0:.1f} s")
    _, fine = result.phases
    assert (fine.algorithm, fine.paradigm, fine.env_steps, fine.updates) == ("off2on", "hybrid", 100, 100)
    with LineageStore(result.run_dir, readonly=True) as store:
        offline_ckpts = store.checkpoints("offline")
        transfer = next(t for t in store.transfers() if t["node_id"] == "finetune")
    report = json.loads(transfer["report_json"])
    members = report["members"]
    trial_of = {c["checkpoint_id"]: c["trial_id"] for c in offline_ckpts}
    ids = [m["checkpoint_id"] for m in members]
    assert len(ids) == 2 and all(i in trial_of for i in ids) and trial_of[ids[0]] != trial_of[ids[1]]  # two trials (seeds)
    assert all(i in transfer["summary"] for i in ids)  # the one-line record names both
    assert report["possible"] and all(m["summary"]["initialised"] == 0 for m in members)
    assert any(f"member 1 ← {ids[1]}" in line for line in lines)

    # Every member's checkpoint is a parent edge of the node, labelled with its member index.
    from mprl.cli import main
    from mprl.serve.catalog import lineage_graph

    with LineageStore(result.run_dir, readonly=True) as store:
        parents = store.parents("finetune")
        node = store.node("finetune")
        graph = lineage_graph(store)  # what GET /api/v1/runs/{run}/lineage answers, and the page draws
    assert [(p["member"], p["checkpoint_id"], p["label"]) for p in parents] == [(k, i, f"ensemble member {k}") for k, i in enumerate(ids)]
    assert node["parent_checkpoint_id"] == ids[0]
    assert [(e["from"], e["member"], e["label"]) for e in graph["edges"] if e["to"] == "finetune" and e["kind"] == "initialises"] == \
        [(i, k, f"ensemble member {k}") for k, i in enumerate(ids)]
    capsys.readouterr()
    assert main(["lineage", "show", str(result.run_dir)]) == 0
    shown = capsys.readouterr().out
    print(shown)
    assert f"from {ids[0]} (ensemble member 0), {ids[1]} (ensemble member 1)" in shown
    assert f"↳ finetune (phase finetune) · ensemble member 1 ← this checkpoint · shown in full under {ids[0]}" in shown
    assert all(f"◆ {i}" in shown for i in ids)  # both members' checkpoints drawn

    # Build the fine-tuning phase exactly as its trial does: member k's weights are checkpoint k's.
    phase = spec.phase("finetune")
    paths = [m["checkpoint"] for m in members]
    cfg = phase_config(phase, paths[0], reference_scores_for(phase))
    cfg.init_checkpoints = paths
    t0 = time.perf_counter()
    algo = cfg.build_algo()
    print(f"build {time.perf_counter() - t0:.1f} s")
    try:
        state = algo.learner_group._learner.module["default_policy"].state_dict()
        assert algo.transfer_report["possible"] and [m["member"] for m in algo.transfer_report["members"]] == [0, 1]
        sources = [read_module_state(p) for p in paths]
        for k, src in enumerate(sources):
            for key, value in src.items():
                if key.startswith("actor."):
                    mine = "actor.members.{}.{}".format(k, key.removeprefix("actor."))
                elif key.startswith("critics.qs."):  # the targets are re-synced from them (transfer_targets: sync, as O)
                    j, _, tail = key.removeprefix("critics.qs.").partition(".")
                    mine = f"critics.qs.{2 * k + int(j)}.{tail}"
                    np.testing.assert_array_equal(state["critics_target" + mine.removeprefix("critics")].cpu().numpy(), np.asarray(value), err_msg=mine)
                else:
                    continue
                np.testing.assert_array_equal(state[mine].cpu().numpy(), np.asarray(value), err_msg=mine)
        a0, a1 = (np.asarray(s["actor.net.0.weight"]) for s in sources)
        assert not np.array_equal(a0, a1)  # two different seeds, two different members
    finally:
        algo.stop()


def test_off2on_fine_tuning_keeps_the_cql_ensembles_skill(ray_local, minari_root, mixed_data, tmp_path):
    """A learning check: 2 CQL seeds on data whose cloning fails (BC: 63) → the Off2On ensemble of
    both, fine-tuned online for 500 env steps (1 update per step) with its own defaults (balanced
    replay, α₀ 1, lr 3e-4). Measured (4 runs, CQL seeds 0+1 three times and 1+2 once): every member 1000 after
    500 offline updates; the ensemble starts at 1000 and is at 1000 after 500 env steps (also after
    1000 in the two runs that went on; the dip of longer fine-tuning is in the README). With the actor
    loss's sign flipped (the policy descends the pessimistic ensemble mean) it is at 2.0 after 500 steps.
    The threshold 200 sits far above BC (63) and a collapsed policy (2–11), and far below 1000."""
    from algorithms.cql import CQLConfig
    from algorithms.off2on import Off2OnConfig

    env, small = "InvertedPendulum-v5", {"hidden": [64, 64]}
    paths = []
    for seed in (0, 1):
        algo = (CQLConfig().environment(env)
                .training(dataset=mixed_data, dataset_root=str(minari_root), updates_per_iteration=500, eval_episodes=5, train_batch_size_per_learner=128,
                          q_n_hidden_layers=2, cql_n_actions=4, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, **small)
                .debugging(seed=seed).build_algo())
        try:
            offline = algo.train()["evaluation_return"]
            paths.append(algo.save_to_path(str(tmp_path / f"cql{seed}")))
        finally:
            algo.stop()
        print(f"CQL seed {seed}: {offline}")
    cfg = (Off2OnConfig().environment(env)
           .training(dataset=mixed_data, dataset_root=str(minari_root), paradigm="hybrid", init_checkpoint=paths[0], ensemble_size=2,
                     env_steps_per_iteration=500, budget_env_steps=500, eval_episodes=5, **small)
           .debugging(seed=0))
    cfg.init_checkpoints = paths
    algo = cfg.build_algo()
    try:
        start = algo.initial_eval["evaluation_return"]
        result = algo.train()
    finally:
        algo.stop()
    print("Off2On start", start, "after 500 env steps", result["evaluation_return"])
    assert [m["member"] for m in algo.transfer_report["members"]] == [0, 1]
    assert result["num_env_steps_lifetime"] == 500 and result["num_updates_lifetime"] == 500
    assert start >= 900, start  # the ensemble of two CQL policies balances the pole
    assert result["evaluation_return"] > 200, (start, result["evaluation_return"])
