"""OPT: the meta-objective's gradient, κ schedules, balanced replay, stage isolation."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.func import functional_call

from algorithms.common.networks import CriticEnsemble, DeterministicActor, ObsNormalizer
from algorithms.common.replay import BalancedReplay, TensorReplay
from algorithms.common.schedules import LinearSchedule
from algorithms.common.td3_core import td_loss
from algorithms.opt.opt_learner import OPTUpdates, density_ratio_loss, meta_objective
from algorithms.opt.opt_module import DensityRatio

ALPHA = 0.3  # large inner step, so the second-order term is far from negligible


def tiny_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    critics = CriticEnsemble(obs_dim=2, act_dim=1, hidden=[4], n=2).double()
    batch = lambda: {"obs": torch.randn(8, 2, generator=g, dtype=torch.float64), "actions": torch.randn(8, 1, generator=g, dtype=torch.float64)}  # noqa: E731
    b_off, b_on = batch(), batch()
    y_off, y_on = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    return critics, b_off, b_on, y_off, y_on


def explicit_objective(critics, flat: torch.Tensor, b_off, b_on, y_off, y_on) -> float:
    """F(ψ) = L_off(ψ) + L_on(ψ − α ∇L_off(ψ)), evaluated from a flat parameter vector."""
    names = [n for n, _ in critics.named_parameters()]
    shapes = [p.shape for _, p in critics.named_parameters()]
    psi, i = {}, 0
    for n, s in zip(names, shapes):
        k = int(np.prod(s))
        psi[n] = flat[i : i + k].view(s).clone().requires_grad_(True)
        i += k
    l_off = td_loss(functional_call(critics, psi, (b_off["obs"], b_off["actions"])), y_off)
    grads = torch.autograd.grad(l_off, list(psi.values()))
    adapted = {n: p.detach() - ALPHA * g for (n, p), g in zip(psi.items(), grads)}
    l_on = td_loss(functional_call(critics, adapted, (b_on["obs"], b_on["actions"])), y_on)
    return (l_off + l_on).item()


def test_meta_gradient_equals_finite_differences():
    critics, b_off, b_on, y_off, y_on = tiny_problem()
    loss = meta_objective(critics, b_off, b_on, y_off, y_on, ALPHA)
    grad = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(critics.parameters()))])

    flat = torch.cat([p.detach().flatten() for p in critics.parameters()])
    assert loss.item() == pytest.approx(explicit_objective(critics, flat, b_off, b_on, y_off, y_on), rel=1e-12)
    eps, fd = 1e-6, torch.zeros_like(flat)
    for j in range(len(flat)):
        e = torch.zeros_like(flat)
        e[j] = eps
        fd[j] = (explicit_objective(critics, flat + e, b_off, b_on, y_off, y_on) - explicit_objective(critics, flat - e, b_off, b_on, y_off, y_on)) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-7)

    # The first-order approximation is a different gradient: the test can tell them apart.
    loss_fo = meta_objective(critics, b_off, b_on, y_off, y_on, ALPHA, first_order=True)
    grad_fo = torch.cat([g.flatten() for g in torch.autograd.grad(loss_fo, list(critics.parameters()))])
    assert (grad_fo - fd).abs().max() > 1e-3


def test_meta_objective_reduces_to_sum_at_zero_inner_step():
    critics, b_off, b_on, y_off, y_on = tiny_problem(1)
    plain = td_loss(critics(b_off["obs"], b_off["actions"]), y_off) + td_loss(critics(b_on["obs"], b_on["actions"]), y_on)
    assert meta_objective(critics, b_off, b_on, y_off, y_on, 0.0).item() == pytest.approx(plain.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("start", "end", "steps", "expected"),
    [
        (0.1, 0.9, 100, {0: 0.1, 50: 0.5, 100: 0.9, 1000: 0.9}),
        (0.3, 0.9, 150_000, {0: 0.3, 75_000: 0.6, 150_000: 0.9}),
        (0.5, 0.5, 0, {0: 0.5, 10: 0.5}),  # fixed κ
        (1.0, 1.0, 10, {0: 1.0, 5: 1.0}),  # MuJoCo random: 1 → 1
        (0.0, 0.0, 10, {0: 0.0, 20: 0.0}),
    ],
)
def test_kappa_schedule(start, end, steps, expected):
    kappa = LinearSchedule(start, end, steps)
    for t, k in expected.items():
        assert kappa(t) == pytest.approx(k)


def replays(n_off: int = 100, capacity: int = 50):
    rng = np.random.default_rng(0)
    arrays = {k: rng.normal(size=(n_off, d)).astype(np.float32) for k, d in (("obs", 3), ("actions", 2), ("next_obs", 3))}
    arrays.update(rewards=np.arange(n_off, dtype=np.float32), terminals=np.zeros(n_off, np.float32))
    return TensorReplay.joined(arrays, capacity)


def online_rows(n: int, start: float):
    return {"obs": np.zeros((n, 3)), "actions": np.zeros((n, 2)), "next_obs": np.zeros((n, 3)), "rewards": np.arange(start, start + n), "terminals": np.zeros(n)}


def test_joined_storage_and_balanced_priorities():
    both, off, on = replays()
    assert (off.size, on.size, both.capacity) == (100, 0, 150)
    balanced = BalancedReplay(both, off, on, temperature=2.0)
    on.add(online_rows(10, 1000))
    balanced.on_added(10)
    assert float(both.data["rewards"][100]) == 1000.0  # B_on rows live after B_off in one storage
    # New online rows enter at the current maximum priority (1 while all are 1).
    assert torch.all(balanced.priorities[100:110] == 1.0) and torch.all(balanced.priorities[110:] == 0.0)

    # Priority = w^(1/T): make offline rows unlikely, online rows likely.
    balanced.update_priorities(torch.arange(100), torch.full((100,), 1e-4))
    balanced.update_priorities(torch.arange(100, 110), torch.full((10,), 4.0))
    assert float(balanced.priorities[105]) == pytest.approx(2.0)
    batches = balanced.sample(num_batches=20, batch_size=64)
    idx = torch.cat([i for _, i in batches])
    rewards = torch.cat([b["rewards"] for b, _ in batches])
    frac_online = float((idx >= 100).float().mean())
    assert frac_online > 0.9  # 10 rows at 2.0 vs 100 rows at 0.01: expected ≈ 0.95
    assert torch.equal(rewards, both.data["rewards"][idx])  # rows gathered from the right index
    assert int(idx.max()) < 110  # never the empty part of the ring

    # The ring wraps: newest rows overwrite the oldest online rows and take max priority.
    on.add(online_rows(45, 2000))
    balanced.on_added(45)
    assert on.size == 50 and float(both.data["rewards"][100]) == 2040.0
    assert float(balanced.priorities[100]) == pytest.approx(2.0)


def test_online_replay_checkpoint_round_trip_keeps_rows_order_and_priorities():
    """`checkpoint_replay`: B_on (wrapped ring included) and its priorities come back as they were."""
    both, off, on = replays()
    balanced = BalancedReplay(both, off, on, temperature=2.0)
    on.add(online_rows(40, 1000))
    balanced.on_added(40)
    on.add(online_rows(25, 2000))  # capacity 50: the ring wraps, the 15 oldest rows are gone
    balanced.on_added(25)
    balanced.update_priorities(torch.arange(100, 150), torch.linspace(1.0, 9.0, 50))
    rows, prio = on.get_state(), balanced.online_priorities()
    assert rows["rewards"].tolist() == [1000.0 + i for i in range(15, 40)] + [2000.0 + i for i in range(25)]  # oldest first
    both2, off2, on2 = replays()
    balanced2 = BalancedReplay(both2, off2, on2, temperature=2.0)
    on2.set_state(rows)
    balanced2.set_online_priorities(prio)
    assert on2.size == 50 and on2.pos == 0
    for k in rows:
        assert np.array_equal(on2.get_state()[k], rows[k])
    assert np.allclose(balanced2.online_priorities(), prio)
    order = on.ordered_rows()  # the same transition keeps the same priority
    assert np.allclose(balanced2.priorities[100:150].numpy(), balanced.priorities[100 + order].numpy())
    on2.add(online_rows(1, 3000))  # and the next row overwrites the oldest one
    assert on2.get_state()["rewards"][0] == 1016.0 and on2.get_state()["rewards"][-1] == 3000.0


def test_checkpoint_replay_is_for_online_phases():
    from algorithms.td3_bc import TD3BCConfig

    cfg = TD3BCConfig().environment("InvertedPendulum-v5")
    cfg.dataset, cfg.checkpoint_replay = "mprl/invertedpendulum/random-v0", True
    with pytest.raises(ValueError, match="`checkpoint_replay` is for online and hybrid phases"):
        cfg.validate()


def test_density_ratio_loss_minimiser_is_the_ratio():
    """Minimising E_off[log((w+1)/2)] − E_on[log(2w/(w+1))] per point gives w = p_on / p_off."""
    p_on, p_off = 0.6, 0.2
    w_raw = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w_raw], lr=0.05)
    for _ in range(3000):
        w = torch.nn.functional.softplus(w_raw)
        loss = p_off * torch.log((w + 1) / 2) - p_on * torch.log(2 * w / (w + 1))
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    assert torch.nn.functional.softplus(w_raw).item() == pytest.approx(3.0, rel=1e-2)
    # density_ratio_loss is that objective estimated on samples of each distribution.
    w_off, w_on = torch.tensor([2.0, 3.0]), torch.tensor([1.0, 4.0])
    expected = np.mean(np.log((np.array([2.0, 3.0]) + 1) / 2)) - np.mean(np.log(2 * np.array([1.0, 4.0]) / (np.array([1.0, 4.0]) + 1)))
    assert float(density_ratio_loss(w_off, w_on)) == pytest.approx(expected, rel=1e-5)


# -- cost-saving paths give the same numbers as the plain computation ----------------------
def fake_learner(use_q_on: bool = True):
    """OPT's update code on small networks, without RLlib around it."""
    torch.manual_seed(0)
    nets = torch.nn.Module()
    nets.normalizer = ObsNormalizer(3)
    nets.normalizer.set_stats(np.array([0.1, -0.2, 0.3]), np.array([1.5, 0.5, 2.0]))
    nets.actor = DeterministicActor(3, np.array([-1.0, -2.0]), np.array([1.0, 0.5]), [16, 16])
    nets.critics, nets.critics_on = CriticEnsemble(3, 2, [16, 16]), CriticEnsemble(3, 2, [16, 16])
    nets.density_ratio = DensityRatio(3, 2, [16, 16])
    learner = object.__new__(OPTUpdates)
    learner.m, learner.config = nets, SimpleNamespace(use_q_on=use_q_on, train_batch_size_per_learner=8)
    learner.optimizers = {"actor": torch.optim.SGD(nets.actor.parameters(), lr=0.0), "density_ratio": torch.optim.SGD(nets.density_ratio.parameters(), lr=0.1)}
    learner.sampler = SimpleNamespace()
    learner.init_actor = None  # no regularize_to_init: Updates.step reads it
    return learner


@pytest.mark.parametrize(("kappa", "use_q_on"), [(1.0, True), (0.0, True), (0.4, True), (0.7, False)])
def test_actor_step_equals_the_full_kappa_blend(kappa, use_q_on):
    """A critic with weight exactly 0 is not evaluated; L_π and ∇L_π are bit-identical to the full blend."""
    learner = fake_learner(use_q_on)
    m, obs_n = learner.m, torch.randn(8, 3)
    loss = learner.actor_step(obs_n, kappa)
    grads = [p.grad.clone() for p in m.actor.parameters()]
    assert all(p.grad is None for q in (m.critics, m.critics_on) for p in q.parameters()) and all(p.requires_grad for p in m.critics.parameters())

    k = kappa if use_q_on else 0.0  # without Q_on-pt the actor follows Q_off-pt alone
    pi = m.actor(obs_n)
    full = -((1 - k) * m.critics.q1(obs_n, pi) + k * m.critics_on.q1(obs_n, pi)).mean()
    expected = torch.autograd.grad(full, list(m.actor.parameters()))
    assert torch.equal(loss, full.detach()) if kappa in (0.0, 1.0) or not use_q_on else torch.allclose(loss, full.detach())
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0) if kappa in (0.0, 1.0) else torch.testing.assert_close(g, e)


def test_density_ratio_step_equals_one_joint_forward():
    """Priorities from a separate no-graph forward (before the step) and the loss on B_off ∪ B_on
    give what one forward over [B_off; B_on; replayed] gave: same w, same gradient, same step."""
    learner = fake_learner()
    both, off, on = replays(n_off=40, capacity=20)
    on.add(online_rows(12, 1000))
    on.data["obs"][:12] = torch.randn(12, 3)
    learner.sampler.offline, learner.sampler.online = off, on
    learner.sampler.balanced = BalancedReplay(both, off, on, temperature=2.0)
    m, bs = learner.m, 8
    batch, idx = learner.sampler.balanced.sample(1, bs)[0]
    batch_n = {"obs": m.normalizer(batch["obs"]), "actions": batch["actions"]}

    # Reference: the joint forward, on a copy of the network, with the same minibatches.
    ref = copy.deepcopy(m.density_ratio)
    state = off.generator.get_state()
    b_off, b_on = off.sample(bs), on.sample(bs)
    off.generator.set_state(state)
    w = ref(torch.cat([m.normalizer(torch.cat([b_off["obs"], b_on["obs"]])), batch_n["obs"]]), torch.cat([b_off["actions"], b_on["actions"], batch_n["actions"]]))
    ref_loss = density_ratio_loss(w[:bs], w[bs : 2 * bs])
    ref_grads = torch.autograd.grad(ref_loss, list(ref.parameters()))
    ref_priorities = w[2 * bs :].detach().clamp(min=1e-6) ** 0.5

    before = [p.detach().clone() for p in m.density_ratio.parameters()]
    loss = learner.update_density_ratio(batch_n, idx)
    torch.testing.assert_close(loss, ref_loss.detach())
    for p, p0, g in zip(m.density_ratio.parameters(), before, ref_grads):
        torch.testing.assert_close(p.grad, g)
        torch.testing.assert_close(p.detach(), p0 - 0.1 * g)  # SGD lr 0.1
    torch.testing.assert_close(learner.sampler.balanced.priorities[idx], ref_priorities)


def test_evaluation_is_reused_only_while_the_policy_is_bit_identical():
    from algorithms.common.phase_algorithm import PhaseAlgorithmMixin

    learner = fake_learner()
    calls = []
    algo = SimpleNamespace(env_runner=SimpleNamespace(module=learner.m))
    learner.m.act = lambda obs: obs  # our modules act with actor(normalizer(s))
    algo.evaluate_policy = lambda: calls.append(1) or {"evaluation_return": float(len(calls))}
    evaluate = lambda: PhaseAlgorithmMixin.evaluate_current_policy(algo)
    assert evaluate() == {"evaluation_return": 1.0} and not algo.eval_reused
    with torch.no_grad():  # the critics change (OPT's pre-training): the policy does not
        next(learner.m.critics_on.parameters()).add_(1.0)
    assert evaluate() == {"evaluation_return": 1.0} and algo.eval_reused and len(calls) == 1
    with torch.no_grad():  # the actor changes by one ulp: evaluated again
        w = next(learner.m.actor.parameters())
        w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(1e9))
    assert evaluate() == {"evaluation_return": 2.0} and not algo.eval_reused
    with torch.no_grad():  # so does a new normaliser
        learner.m.normalizer.mean.add_(0.1)
    assert evaluate() == {"evaluation_return": 3.0} and len(calls) == 3


# -- on a real local Ray, from a real TD3+BC checkpoint ---------------------------------
SMALL_TASK = {"hidden": [64, 64], "actor_lr": 1e-3, "critic_lr": 1e-3}


@pytest.fixture(scope="module")
def pendulum_td3bc(ray_local, minari_root, tmp_path_factory):
    """A weak offline policy: TD3+BC on a random InvertedPendulum dataset (return ≈ 40)."""
    from algorithms.td3_bc import TD3BCConfig
    from mprl.datasets import build_dataset

    dataset = build_dataset("InvertedPendulum-v5", "random", size=5000, seed=0, progress=None, overwrite=True)
    algo = TD3BCConfig().environment("InvertedPendulum-v5").training(dataset=dataset, dataset_root=str(minari_root), updates_per_iteration=1000, eval_episodes=10, **SMALL_TASK).build_algo()
    result = algo.train()
    path = algo.save_to_path(str(tmp_path_factory.mktemp("td3bc") / "checkpoint"))
    algo.stop()
    return dataset, path, result["evaluation_return"]


def opt_config(dataset: str, checkpoint: str, minari_root, **settings):
    from algorithms.opt import OPTConfig

    base = {"dataset": dataset, "dataset_root": str(minari_root), "init_checkpoint": checkpoint, "eval_episodes": 10, **SMALL_TASK}
    return OPTConfig().environment("InvertedPendulum-v5").training(**{**base, **settings})


def module_state(algo) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in algo.learner_group._learner.module["default_policy"].state_dict().items()}


@pytest.mark.parametrize("use_q_on", [True, False])
def test_online_pretraining_changes_only_the_pretrained_critic(pendulum_td3bc, minari_root, use_q_on):
    dataset, checkpoint, _ = pendulum_td3bc
    algo = opt_config(dataset, checkpoint, minari_root, n_tau=300, n_pretrain=40, pretrain_updates_per_iteration=40, env_steps_per_iteration=300, eval_episodes=0, use_q_on=use_q_on).build_algo()
    try:
        before = module_state(algo)
        algo.train()  # stage 1: collect N_τ with the frozen π_off — no weight changes at all
        assert algo.stage() == "pretrain" and algo.num_updates == 0
        assert all(torch.equal(before[k], v) for k, v in module_state(algo).items())
        result = algo.train()  # stage 2: N_pretrain meta-adaptation updates
        assert result["pretrain_updates"] == 40 and algo.stage() == "finetune"
        after = module_state(algo)
    finally:
        algo.stop()
    trained = ("critics_on.", "critics_on_target.") if use_q_on else ("critics.", "critics_target.")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(trained) for k in changed), sorted(changed)
    assert any(k.startswith(trained[0]) for k in changed) and any(k.startswith(trained[1]) for k in changed)


def test_opt_fine_tunes_a_td3_bc_checkpoint_and_improves_on_it(pendulum_td3bc, minari_root):
    dataset, checkpoint, offline_return = pendulum_td3bc
    algo = opt_config(
        dataset, checkpoint, minari_root, n_tau=1000, n_pretrain=1000, pretrain_updates_per_iteration=1000,
        env_steps_per_iteration=1000, kappa_start=0.1, kappa_end=0.9, kappa_steps=5000, utd=4,
    ).build_algo()
    rows = []
    try:
        initial_return = algo.initial_eval["evaluation_return"]
        assert initial_return == pytest.approx(offline_return)  # starts from π_off
        while algo.num_env_steps < 7000:
            r = algo.train()
            rows.append((r["opt_stage"], r["num_env_steps_lifetime"], r["kappa"], r["evaluation_return"], r["evaluation_reused"]))
            if r["opt_stage"] == 2 and r["evaluation_return"] >= 950:
                break
    finally:
        algo.stop()
    assert offline_return < 200, "the offline policy should be weak for this test to mean anything"
    assert rows[-1][3] >= 950, rows
    assert [s for s, *_ in rows][:2] == [1, 2]  # collect → pretrain → fine-tune, one row per boundary
    # π_off is frozen through collect and pre-train: its initial evaluation is reused, not re-run.
    assert [r[4] for r in rows[:3]] == [True, True, False] and rows[0][3] == rows[1][3] == initial_return
    assert rows[-1][2] > 0.1  # κ moved along its schedule
