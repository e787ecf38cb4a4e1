"""Cal-QL: the calibrated conservative term, the return-to-go rule (scaled rewards, sparse
failures), the online return-to-go written when an episode ends, against values computed by
hand, and a CI-sized learning check.

    Q_i(s, a_π) ← max(Q_i(s, a_π), V^μ(s)) for the π(s) and π(s′) candidate sets, then CQL's
    LSE_i = log Σ_k exp(c_k) over [Q(s, a_unif) − log 0.5^|A|, Q(s, a_π(s′)) − log π, Q(s, a_π(s)) − log π]
    L_Q   = Σ_i [mean((Q_i(s, a) − y)²) + α_cql · mean(LSE_i − Q_i(s, a_data))]
    V^μ   = Σ_k γ^k (c·r_{t+k} + b) within the episode; all-failure episodes: (c·r_f + b)/(1 − γ)
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.cal_ql.cal_ql import CalQLSettings
from algorithms.cal_ql.cal_ql_learner import CalQLUpdates, calibrate
from algorithms.common.episodes import episodes_to_transitions
from algorithms.common.replay import EpisodeReturnsToGo, TensorReplay
from algorithms.cql.cql_learner import cql_actions
from algorithms.cql.cql_module import CQLRLModule


def t32(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float32)


def test_calibrate_bounds_below_and_counts_the_hits():
    q = t32([[[1.0, -2.0], [0.5, 3.0]]])  # [n=1, B=2, N=2]
    v = t32([0.0, 1.0])
    out, rate = calibrate(q, v)
    np.testing.assert_allclose(out.numpy(), [[[1.0, 0.0], [1.0, 3.0]]])
    assert rate.item() == pytest.approx(2 / 4)


def cfg(**kw):
    return SimpleNamespace(**CalQLSettings(**kw).model_dump(), paradigm=kw.get("paradigm", "offline"))


def test_returns_to_go_on_scaled_rewards_and_the_sparse_failure_rule():
    c = cfg(gamma=0.5, reward_scale=10.0, reward_bias=-5.0, sparse_failure_reward=0.0)
    r = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    ep = np.array([0, 0, 0, 1, 1, 1], dtype=np.float32)
    got = CalQLUpdates.returns_to_go(r, ep, c)
    # episode 0, scaled rewards 5, −5, 5: G = 5 + .5(−5 + .5·5) = 3.75, −5 + .5·5 = −2.5, 5
    # episode 1 is all failures: (10·0 − 5)/(1 − .5) = −10 at every step
    np.testing.assert_allclose(got, [3.75, -2.5, 5.0, -10.0, -10.0, -10.0])
    plain = CalQLUpdates.returns_to_go(r, ep, cfg(gamma=0.5))
    np.testing.assert_allclose(plain, [1.25, 0.5, 1.0, 0.0, 0.0, 0.0])


def make_updates(**settings) -> CalQLUpdates:
    torch.manual_seed(0)
    m = CQLRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
                    model_config={"hidden": [8, 8], "q_n_hidden_layers": 2, "orthogonal_init": True, "initial_alpha": 1.0})
    with torch.no_grad():
        for q in m.critics.qs:
            q[-1].weight.normal_(0.0, 1.0)
        m.critics_target.load_state_dict(m.critics.state_dict())
    c = cfg(**settings)
    opts = {k: torch.optim.Adam(net.parameters() if isinstance(net, torch.nn.Module) else net, lr=lr)
            for k, (net, lr) in CalQLUpdates.optimizer_groups(m, c).items()}
    return CalQLUpdates(m, c, opts, None, torch.device("cpu"))


def batch(v_mu, seed: int = 1) -> dict[str, torch.Tensor]:
    n = len(v_mu)
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, 3, generator=g), "next_obs": torch.randn(n, 3, generator=g), "actions": torch.rand(n, 2, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "terminals": torch.zeros(n), "truncations": torch.zeros(n), "rtg": t32(v_mu)}


@pytest.mark.parametrize("calibration", [True, False])
def test_critic_loss_by_hand_with_the_bound(calibration):
    u = make_updates(cql_alpha=2.0, gamma=0.9, calibration=calibration)
    m = u.m
    b = batch([-100.0, 100.0, 0.0, -math.inf, 0.3, 50.0])  # no bound, always bound, in between, a pending online row
    alpha = m.log_alpha.detach().exp()
    torch.manual_seed(7)
    loss, _, metrics = u.critic_loss(b, alpha)
    torch.manual_seed(7)
    with torch.no_grad():
        a2, _ = m.actor.sample(b["next_obs"])
        cand = cql_actions(m.actor, b["obs"], b["next_obs"], 10)
        q = lambda i, s, a: m.critics.qs[i](torch.cat([s, a], -1)).squeeze(-1).detach().double().numpy()  # noqa: E731
        qt = lambda i, s, a: m.critics_target.qs[i](torch.cat([s, a], -1)).squeeze(-1).detach().double().numpy()  # noqa: E731
    y = b["rewards"].double().numpy() + 0.9 * np.minimum(qt(0, b["next_obs"], a2), qt(1, b["next_obs"], a2))
    v = b["rtg"].double().numpy()
    lp, lpn = cand["log_pi"].double().numpy(), cand["log_pi_next"].double().numpy()
    total, hits, count = 0.0, 0, 0
    for i in range(2):
        qd = q(i, b["obs"], b["actions"])
        qr, qp, qn = (q(i, cand["obs"], cand[k]) for k in ("rand", "pi", "pi_next"))
        diffs = []
        for row in range(6):
            qp_row, qn_row = qp[row], qn[row]
            if calibration:
                hits += int((qp_row < v[row]).sum() + (qn_row < v[row]).sum())
                count += 20
                qp_row, qn_row = np.maximum(qp_row, v[row]), np.maximum(qn_row, v[row])
            cands = [*(qr[row] - 2 * math.log(0.5)), *(qn_row - lpn[row]), *(qp_row - lp[row])]
            diffs.append(math.log(sum(math.exp(c) for c in cands)) - qd[row])
        total += np.mean((qd - y) ** 2) + 2.0 * np.mean(diffs)
    np.testing.assert_allclose(loss.item(), total, rtol=1e-5)
    if calibration:
        assert metrics["bound_rate"].item() == pytest.approx(hits / count)
        assert 0 < hits < count  # some Q-values were lifted, not all
    else:
        assert "bound_rate" not in metrics


def test_episodes_carry_their_id_end_and_truncation():
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    def episode(n, *, terminated=False, truncated=False):
        ep = SingleAgentEpisode(observations=[np.zeros(2, np.float32)])
        for i in range(n):
            ep.add_env_step(np.full(2, i + 1, np.float32), np.zeros(1, np.float32), 1.0,
                            terminated=terminated and i == n - 1, truncated=truncated and i == n - 1)
        return ep

    a, b, c = episode(3, terminated=True), episode(2, truncated=True), episode(2)
    t = episodes_to_transitions([a, b, c])
    assert list(t["episode_uid"]) == [a.id_] * 3 + [b.id_] * 2 + [c.id_] * 2
    np.testing.assert_array_equal(t["episode_end"], [0, 0, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(t["terminals"], [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(t["truncations"], [0, 0, 0, 0, 1, 0, 0])


def test_online_rows_get_their_episodes_return_to_go_when_it_ends():
    replay = TensorReplay(10, 1, 1, "cpu", extra=("rtg",))
    rule = lambda r, ep: CalQLUpdates.returns_to_go(r, ep, cfg(gamma=0.5))  # noqa: E731
    tracker = EpisodeReturnsToGo(replay, rule)

    def rows(uids, rewards, ends):
        n = len(uids)
        return {"obs": np.zeros((n, 1), np.float32), "next_obs": np.zeros((n, 1), np.float32), "actions": np.zeros((n, 1), np.float32),
                "rewards": np.asarray(rewards, np.float32), "terminals": np.zeros(n, np.float32),
                "episode_uid": np.asarray(uids, dtype=object), "episode_end": np.asarray(ends, np.float32)}

    # Fragment 1: episode A ends (rewards 1, 2); episode B starts (reward 4) and goes on.
    t1 = rows(["A", "A", "B"], [1.0, 2.0, 4.0], [0, 1, 0])
    tracker.add(t1, replay.add(t1))
    np.testing.assert_allclose(replay.data["rtg"][:3].numpy(), [1 + 0.5 * 2, 2, -np.inf])
    # Fragment 2: B continues (reward 8) and ends; C starts.
    t2 = rows(["B", "C"], [8.0, 1.0], [1, 0])
    tracker.add(t2, replay.add(t2))
    np.testing.assert_allclose(replay.data["rtg"][:5].numpy(), [2, 2, 4 + 0.5 * 8, 8, -np.inf])
    assert tracker.finished == 2 and set(tracker.pending) == {"C"}


def test_settings_and_pipeline():
    from pathlib import Path

    from mprl.spec import load_pipeline

    s = CalQLSettings()
    assert (s.offline_ratio, s.calibration, s.q_n_hidden_layers, s.cql_alpha) == (0.5, True, 2, 10.0)
    assert CalQLSettings.default_hybrid_replay == "mixed"
    assert CalQLUpdates.REPLAY_FIELDS == ("rtg",)
    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / "cal_ql_offline_to_online.yaml")
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [("cal_ql", "offline"), ("cal_ql", "hybrid")]


# ------------------------------------------------------------------------------ learning (real Ray)


def test_cal_ql_offline_then_hybrid(ray_local, minari_root, mixed_data, tmp_path):
    """Offline Cal-QL on data whose cloning fails (BC: 63), then a hybrid phase whose online
    episodes get their return-to-go when they end (the bound stays on online)."""
    from algorithms.cal_ql import CalQLConfig

    common = dict(dataset=mixed_data, dataset_root=str(minari_root), hidden=[64, 64], actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3,
                  cql_n_actions=4, eval_episodes=5)
    algo = CalQLConfig().environment("InvertedPendulum-v5").training(updates_per_iteration=1000, cql_alpha=5.0, **common).build_algo()
    try:
        results = [algo.train()]
        while len(results) < 3 and results[-1]["evaluation_return"] < 900:
            results.append(algo.train())
        path = algo.save(str(tmp_path / "offline")).checkpoint.path
    finally:
        algo.stop()
    returns = [r["evaluation_return"] for r in results]
    print("Cal-QL offline returns", returns, "bound rate", [r["learner_stats"]["bound_rate"] for r in results])
    assert 0.0 <= results[-1]["learner_stats"]["bound_rate"] <= 1.0
    assert max(returns) >= 900, returns

    algo = (CalQLConfig().environment("InvertedPendulum-v5")
            .training(paradigm="hybrid", init_checkpoint=path, budget_env_steps=1050, env_steps_per_iteration=1050, cql_alpha_online=5.0, **common)
            .build_algo())
    try:
        hybrid = algo.train()
        rtg = algo.learner_group.foreach_learner(lambda lr: lr.updates.sampler.online.data["rtg"][: lr.updates.sampler.online_size()].cpu().numpy())
        rtg = next(iter(rtg)).get()
    finally:
        algo.stop()
    print("Cal-QL hybrid return", hybrid["initial_evaluation_return"], "->", hybrid["evaluation_return"],
          "bound rate", hybrid["learner_stats"]["bound_rate"], "finished episodes", hybrid["finished_online_episodes"])
    # at least one episode ends within 1050 steps (a balancing policy's is truncated at 1000): its rows get their rtg
    assert hybrid["num_env_steps_lifetime"] == 1050 and hybrid["replay_size"] == 1050
    assert hybrid["finished_online_episodes"] >= 1 and np.isfinite(rtg).sum() >= 1
    # rewards of 1 per step: row t of a finished episode of length L has Σ_{k<L−t} γ^k = (1 − γ^(L−t))/(1 − γ); its last row 1
    last = int(np.flatnonzero(np.isclose(rtg, 1.0))[0])
    assert rtg[0] == pytest.approx((1 - 0.99 ** (last + 1)) / (1 - 0.99), rel=1e-5)
