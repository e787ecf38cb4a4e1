"""SPOT+OPT and IQL+OPT: the blended losses against hand-computed values, the shared
meta-adaptation on IQL's (Q, V) pair, and an offline → OPT phase on a real local Ray for each.

    SPOT+OPT:  q_κ = (1 − κ) Q_off,1(s, π(s)) + κ Q_on,1(s, π(s)),
               L_π = −mean q_κ / mean|q_κ| + λ · mean ELBO_loss(s, π(s))
    IQL+OPT:   L(ψ) = E|τ − 1(u<0)|·u² + ½ Σ_j E(Q_j(s,a) − r − γ(1−d)V(s′))²,  u = min_j Q̄_j(s,a) − V(s)
               A_κ = (1 − κ)(min Q̄_off − V_off) + κ (min Q̄_on − V_on),  L_π = E[min(exp(β A_κ), 100) · BC]
    both:      L_pretrain(ψ) = L_off(ψ) + L_on(ψ − α ∇L_off(ψ))
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from algorithms.common.online_pretraining import kappa_blend, meta_adaptation
from algorithms.common.schedules import LinearSchedule
from algorithms.opt_iql.opt_iql_learner import blended_advantage, iql_value_loss
from algorithms.opt_spot.opt_spot_learner import opt_spot_actor_loss


# -- SPOT+OPT's actor loss ---------------------------------------------------------------------
class Const(nn.Module):
    """A critic or VAE stub whose outputs are fixed numbers (and that can refuse to be called)."""

    def __init__(self, values, refuse: bool = False) -> None:
        super().__init__()
        self.values, self.refuse = torch.tensor(values), refuse

    def q1(self, obs, act):
        assert not self.refuse, "a critic of weight exactly 0 must not be evaluated"
        return self.values + 0 * act.sum(-1)  # depends on π(s), so the actor gets a gradient path

    def elbo_loss(self, obs, a_unit, beta):
        return self.values + 0 * a_unit.sum(-1)


class UnitActor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, obs):
        return obs[:, :1] * 0 + self.w

    def to_unit(self, a):
        return a


@pytest.mark.parametrize(("kappa", "q_off", "q_on", "expected"), [
    # q_κ = 0.5·[2, 4] + 0.5·[6, 0] = [4, 2]: −3/3 = −1; λ·mean([0.5, 1.5]) = 0.2 → −0.8
    (0.5, [2.0, 4.0], [6.0, 0.0], -0.8),
    # q_κ = 0.75·[2, −6] + 0.25·[6, 2] = [3, −4]: −(−0.5)/3.5 = 1/7; + 0.2
    (0.25, [2.0, -6.0], [6.0, 2.0], 1 / 7 + 0.2),
    # κ = 0 is SPOT's own actor loss on Q_off-pt: −3/3 + 0.2
    (0.0, [2.0, 4.0], None, -0.8),
    # κ = 1 reads Q_on-pt alone: q = [−1, −3]: −(−2)/2 + 0.2
    (1.0, None, [-1.0, -3.0], 1.2),
])
def test_spot_opt_actor_loss_is_the_normalised_kappa_blend_plus_the_density_penalty(kappa, q_off, q_on, expected):
    obs = torch.zeros(2, 3)
    q_off_net = Const(q_off or [0.0, 0.0], refuse=q_off is None)
    q_on_net = Const(q_on or [0.0, 0.0], refuse=q_on is None)
    loss, neg_log_beta = opt_spot_actor_loss(UnitActor(), q_off_net, q_on_net, Const([0.5, 1.5]), obs, beta=0.5, lambd=0.2, kappa=kappa)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert neg_log_beta.tolist() == [0.5, 1.5]


def test_kappa_blend_weights_and_skips_a_zero_weight_side():
    off, on = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 2.0])
    torch.testing.assert_close(kappa_blend(0.25, lambda: off, lambda: on), torch.tensor([1.5, -1.0]))
    never = lambda: pytest.fail("evaluated a side of weight 0")
    assert kappa_blend(1.0, never, lambda: on) is on and kappa_blend(0.0, lambda: off, never) is off


# -- IQL+OPT's losses --------------------------------------------------------------------------
class ScaledQ(nn.Module):
    """Two members: Q_j(s, a) = c_j · (s + a) for scalar s, a."""

    def __init__(self, c) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, obs, act):
        return self.c[:, None] * (obs + act).sum(-1)[None, :]


class LinearV(nn.Module):
    def __init__(self, w: float, b: float) -> None:
        super().__init__()
        self.net = nn.Linear(1, 1).double()
        with torch.no_grad():
            self.net.weight.fill_(w)
            self.net.bias.fill_(b)

    def forward(self, obs):
        return self.net(obs).squeeze(-1)


def iql_batch() -> dict[str, torch.Tensor]:
    t = lambda *v: torch.tensor(v, dtype=torch.float64)
    return {"obs": t([1.0], [2.0]), "actions": t([0.0], [2.0]), "next_obs": t([0.0], [1.0]), "rewards": t(1.0, 0.0), "terminals": t(0.0, 1.0)}


def pair_params(q: nn.Module, v: nn.Module) -> dict[str, torch.Tensor]:
    return {**{f"q.{k}": p for k, p in q.named_parameters()}, **{f"v.{k}": p for k, p in v.named_parameters()}}


def test_iql_value_loss_by_hand():
    # s + a = [1, 4]; Q̄ = min([0.5, 2], [3, 12]) = [0.5, 2]; V(s) = s = [1, 2] → u = [−0.5, 0]
    # L_V = mean(0.3 · 0.25, 0.7 · 0) = 0.0375
    # y = r + γ(1 − d) V(s′) = [1 + 0.5 · 0, 0] = [1, 0]; Q = [[1, 4], [2, 8]] → mean([0, 16, 1, 64]) = 20.25
    q, v, q_bar = ScaledQ([1.0, 2.0]), LinearV(1.0, 0.0), ScaledQ([0.5, 3.0])
    loss = iql_value_loss(q, v, q_bar, pair_params(q, v), iql_batch(), expectile=0.7, gamma=0.5)
    assert loss.item() == pytest.approx(0.0375 + 20.25, rel=1e-7)  # the expectile weights are float32
    # No gradient through the Q target y (IQL's V(s′) without gradient), nor into Q̄.
    loss.backward()
    # ∂L/∂b of V comes from L_V only: mean(2 · |τ − 1(u<0)| · u · (−1)) = mean(2·0.3·0.5, 0) = 0.15
    assert v.net.bias.grad.item() == pytest.approx(0.15, rel=1e-7) and q_bar.c.grad is None


def test_iql_meta_adaptation_on_the_joint_q_v_parameters_equals_the_explicit_two_step_objective():
    q, v, q_bar = ScaledQ([1.0, 2.0]), LinearV(0.5, -0.2), ScaledQ([0.5, 3.0])
    b_off, b_on = iql_batch(), {**iql_batch(), "rewards": torch.tensor([0.0, 2.0], dtype=torch.float64)}
    alpha = 0.1
    loss_of = lambda psi, b: iql_value_loss(q, v, q_bar, psi, b, expectile=0.7, gamma=0.5)
    psi = pair_params(q, v)
    got = meta_adaptation(psi, loss_of, b_off, b_on, alpha)
    # Explicit: one SGD step of size α on L_off over (Q, V) together, then L_on at the result.
    l_off = loss_of(psi, b_off)
    grads = torch.autograd.grad(l_off, list(psi.values()))
    adapted = {k: p.detach() - alpha * g for (k, p), g in zip(psi.items(), grads)}
    assert got.item() == pytest.approx((l_off + loss_of(adapted, b_on)).item(), rel=1e-12)
    # The inner step moves V too (a new Q needs its own V): the adapted V differs from V.
    assert not torch.equal(adapted["v.net.bias"], psi["v.net.bias"].detach())
    # The meta-gradient reaches both networks.
    got.backward()
    assert q.c.grad.abs().sum() > 0 and v.net.weight.grad.abs().sum() > 0


def test_blended_advantage_and_its_awr_weights():
    from algorithms.iql.iql_learner import advantage_weights

    u_off, u_on = torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([3.0, 2.0])
    a = blended_advantage(0.25, u_off, u_on)  # 0.75 · [1, −2] + 0.25 · [3, 2] = [1.5, −1]
    torch.testing.assert_close(a, torch.tensor([1.5, -1.0]))
    assert not a.requires_grad
    w = advantage_weights(a, beta=2.0, max_weight=10.0)  # exp(3) = 20.1 → 10; exp(−2)
    torch.testing.assert_close(w, torch.tensor([10.0, float(torch.exp(torch.tensor(-2.0)))]))
    torch.testing.assert_close(blended_advantage(0.0, u_off, u_on), u_off.detach())  # κ = 0: IQL's own advantage


def test_settings_and_registration():
    from mprl.catalogue import CATALOGUE

    for name in ("opt_spot", "opt_iql"):
        entry = CATALOGUE[name]
        assert entry.paradigms == ("hybrid",)
        s = entry.settings()
        assert (s.n_tau, s.n_pretrain, s.kappa_start, s.kappa_end, s.kappa_steps) == (25_000, 50_000, 0.3, 0.9, 150_000)
        assert entry.settings.default_hybrid_replay == "balanced"
        problems = entry.settings.model_validate({"n_tau": 1000}).phase_problems("hybrid", "env_steps", 1000, True)
        assert [k for k, _ in problems] == ["n_tau"]
    assert CATALOGUE["opt_spot"].settings().lambd == 0.1 and CATALOGUE["opt_iql"].settings().expectile == 0.7


@pytest.mark.parametrize("name", ["spot_opt_hopper", "iql_opt_hopper"])
def test_pipeline_yaml_validates(name):
    from mprl.spec import load_pipeline

    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / f"{name}.yaml")
    backbone = name.split("_")[0]
    assert [(p.algorithm, p.resolved_paradigm) for p in spec.phases] == [(backbone, "offline"), (f"opt_{backbone}", "hybrid")]
    assert spec.phases[1].init_from.phase == "offline"


# -- on a real local Ray: offline phase → OPT phase ----------------------------------------------
SMALL = {"hidden": [64, 64], "actor_lr": 1e-3, "critic_lr": 1e-3}
N_TAU, N_PRETRAIN, KAPPA = 200, 60, (0.2, 1.0, 400)


@pytest.fixture(scope="module")
def pendulum_random(ray_local, minari_root):
    from mprl.datasets import build_dataset

    return build_dataset("InvertedPendulum-v5", "random", size=5000, seed=0, progress=None, overwrite=True)


def module_state(algo) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in algo.learner_group._learner.module["default_policy"].state_dict().items()}


def offline_checkpoint(config, tmp_path, iterations: int):
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            result = algo.train()
        state = module_state(algo)
        path = algo.save_to_path(str(tmp_path / "offline"))
    finally:
        algo.stop()
    return path, result["evaluation_return"], state


def run_opt_phase(config, offline_return: float, offline_state: dict, new_prefixes: tuple[str, ...]):
    """Collect → pretrain → fine-tune; returns the result rows. Asserts what every backbone shares."""
    algo = config.build_algo()
    rows = []
    try:
        assert algo.initial_eval["evaluation_return"] == offline_return  # the warm start is π_off exactly
        start = module_state(algo)
        for k, v in offline_state.items():  # everything the offline phase trained arrives unchanged
            assert torch.equal(start[k], v), k
        assert set(start) - set(offline_state) and all(k.startswith(new_prefixes) for k in set(start) - set(offline_state))
        rows.append(algo.train())  # collect: π_off frozen, no update
        assert all(torch.equal(start[k], v) for k, v in module_state(algo).items())
        rows.append(algo.train())  # online pre-training
        after = module_state(algo)
        changed = {k for k in start if not torch.equal(start[k], after[k])}
        while algo.num_env_steps < N_TAU + 600:
            rows.append(algo.train())
    finally:
        algo.stop()
    pretrained = tuple(p for p in new_prefixes if not p.startswith("density_ratio"))
    assert changed and all(k.startswith(pretrained) for k in changed), sorted(changed)
    assert {k.split(".")[0] for k in changed} == {p.rstrip(".") for p in pretrained}  # each new value network (and Q̄_on) was trained
    assert [r["opt_stage"] for r in rows[:3]] == [1, 2, 2]  # the stage the next iteration runs: one row per boundary
    assert rows[0]["evaluation_reused"] and rows[1]["evaluation_reused"] and rows[1]["evaluation_return"] == offline_return
    assert rows[1]["pretrain_updates"] == N_PRETRAIN and rows[1]["num_updates_lifetime"] == N_PRETRAIN + rows[0]["num_updates_lifetime"]
    assert rows[1]["learner_stats"]["pretrain_loss"] > 0
    kappa = LinearSchedule(*KAPPA)
    for r in rows[2:]:  # κ follows its schedule over the fine-tuning env steps
        assert r["finetune_start_env_steps"] == N_TAU
        assert r["kappa"] == pytest.approx(kappa(r["num_env_steps_lifetime"] - N_TAU))
    assert rows[-1]["kappa"] == 1.0  # past kappa_steps = 400 fine-tuning steps: κ_end
    assert rows[-1]["learner_stats"]["q_on_loss"] > 0 and rows[-1]["replay_size"] == N_TAU + 600
    return rows


def phase_settings(dataset: str, minari_root, checkpoint: str) -> dict:
    return {"dataset": dataset, "dataset_root": str(minari_root), "init_checkpoint": checkpoint, "eval_episodes": 5, "n_tau": N_TAU,
            "n_pretrain": N_PRETRAIN, "pretrain_updates_per_iteration": N_PRETRAIN, "env_steps_per_iteration": 200,
            "kappa_start": KAPPA[0], "kappa_end": KAPPA[1], "kappa_steps": KAPPA[2], "utd": 1, **SMALL}


def test_spot_to_spot_opt_on_ray(pendulum_random, minari_root, tmp_path):
    """SPOT offline (its VAE stage, then TD3 with the density penalty) → SPOT+OPT: the VAE and
    Q_off-pt arrive with the checkpoint (no VAE stage), only Q_on-pt is pre-trained, κ and λ follow their schedules."""
    from algorithms.opt_spot import OPTSPOTConfig
    from algorithms.spot import SPOTConfig

    vae = {"vae_hidden": 64, "vae_iterations": 200}
    offline = SPOTConfig().environment("InvertedPendulum-v5").training(
        dataset=pendulum_random, dataset_root=str(minari_root), paradigm="offline", updates_per_iteration=400, eval_episodes=5, **vae, **SMALL)
    path, offline_return, offline_state = offline_checkpoint(offline, tmp_path, iterations=2)
    config = OPTSPOTConfig().environment("InvertedPendulum-v5").training(
        **phase_settings(pendulum_random, minari_root, path), lambd_cool_steps=1000, **vae)
    rows = run_opt_phase(config, offline_return, offline_state, ("critics_on.", "critics_on_target.", "density_ratio."))
    assert all(r["vae_updates"] == 200 for r in rows) and "vae_start_env_steps" not in rows[-1]
    assert rows[-1]["lambd"] == pytest.approx(0.1 * max(0.2, 1 - rows[-1]["num_env_steps_lifetime"] / 1000))
    assert "neg_log_beta" in rows[-1]["learner_stats"]


def test_iql_to_iql_opt_on_ray(pendulum_random, minari_root, tmp_path):
    """IQL offline → IQL+OPT: Q_off-pt, V_off-pt and π_off arrive; only the new pair (Q_on-pt, its
    target, V_on-pt) is pre-trained; fine-tuning trains both pairs with κ on its schedule."""
    from algorithms.iql import IQLConfig
    from algorithms.opt_iql import OPTIQLConfig

    offline = IQLConfig().environment("InvertedPendulum-v5").training(
        dataset=pendulum_random, dataset_root=str(minari_root), paradigm="offline", updates_per_iteration=500, eval_episodes=5, **SMALL)
    path, offline_return, offline_state = offline_checkpoint(offline, tmp_path, iterations=1)
    config = OPTIQLConfig().environment("InvertedPendulum-v5").training(**phase_settings(pendulum_random, minari_root, path))
    rows = run_opt_phase(config, offline_return, offline_state, ("critics_on.", "critics_on_target.", "value_on.", "density_ratio."))
    stats = rows[-1]["learner_stats"]
    assert stats["v_on_loss"] > 0 and stats["v_off_loss"] > 0 and "actor_loss" in stats


# -- learning checks on a real local Ray: offline on data whose cloning fails → OPT fine-tuning ---
# The 40%-opposite InvertedPendulum controller data (BC: 63; a policy that balances the pole: 1000).
# Each offline phase balances the pole; OPT's three stages then run for a CI budget (N_τ 200,
# N_pretrain 200, then 500 fine-tuning env steps at UTD 1, κ 0.2 → 1 over them; SPOT: 0.3 → 0.9 over 5000), and the fine-tuned
# policy must still be far above BC's 63 (> 200). A sign-flipped actor loss drops it to ≤ 11 within that budget.
LEARN_TAU = 200


def fine_tune(config, steps: int) -> tuple[float, dict]:
    """(the warm start's return, the last result) after N_τ + `steps` env steps."""
    algo = config.build_algo()
    try:
        start = algo.initial_eval["evaluation_return"]
        while algo.num_env_steps < LEARN_TAU + steps:
            result = algo.train()
    finally:
        algo.stop()
    return start, result


def learning_settings(dataset: str, minari_root, checkpoint: str, steps: int) -> dict:
    return {"dataset": dataset, "dataset_root": str(minari_root), "init_checkpoint": checkpoint, "eval_episodes": 5, "n_tau": LEARN_TAU,
            "n_pretrain": 200, "pretrain_updates_per_iteration": 200, "env_steps_per_iteration": steps, "kappa_start": 0.2, "kappa_end": 1.0,
            "kappa_steps": 500, "utd": 1, "budget_env_steps": LEARN_TAU + steps, **SMALL}


def test_iql_opt_fine_tuning_keeps_iqls_skill(ray_local, minari_root, mixed_data, tmp_path):
    """IQL offline (1000 updates: 1000) → IQL+OPT. Measured after 500 fine-tuning env steps (κ 0.2 → 1):
    1000 in 5 runs (also 1000 after 1000 steps in 2 of them); with the blended advantage's sign flipped
    (AWR then weighs the opposite actions up) 11.0, and 4.2 after 1000."""
    from algorithms.iql import IQLConfig
    from algorithms.opt_iql import OPTIQLConfig

    offline = IQLConfig().environment("InvertedPendulum-v5").training(
        dataset=mixed_data, dataset_root=str(minari_root), paradigm="offline", updates_per_iteration=1000, eval_episodes=5, **SMALL)
    path, offline_return, _ = offline_checkpoint(offline, tmp_path, iterations=1)
    start, result = fine_tune(OPTIQLConfig().environment("InvertedPendulum-v5").training(**learning_settings(mixed_data, minari_root, path, 500)), 500)
    print("IQL offline", offline_return, "→ IQL+OPT after 500 fine-tuning env steps", result["evaluation_return"])
    assert start == offline_return >= 900
    assert result["num_env_steps_lifetime"] == LEARN_TAU + 500 and result["num_updates_lifetime"] == 200 + 500
    assert result["kappa"] == 1.0
    assert result["evaluation_return"] > 200, (offline_return, result["evaluation_return"])


def test_spot_opt_fine_tuning_keeps_spots_skill(ray_local, minari_root, mixed_data, tmp_path):
    """SPOT offline (the VAE stage, then TD3 with the density penalty until it balances the pole,
    ≤ 4000 updates; seed 0 measured 24.6 (VAE only), 122.4, 86.6, 1000; seed 1 was still at 46 after 3000) → SPOT+OPT.
    Measured after 500 fine-tuning env steps: 1000 in 4 runs (the seed-0 checkpoint; fine-tuning seeds 0, 1 and unset twice; 861 after 250 with
    seed 1); with the actor loss's sign flipped 4.0 after 250 and 2.0 after 500."""
    from algorithms.opt_spot import OPTSPOTConfig
    from algorithms.spot import SPOTConfig

    vae = {"vae_hidden": 64, "vae_iterations": 500}
    algo = SPOTConfig().environment("InvertedPendulum-v5").training(
        dataset=mixed_data, dataset_root=str(minari_root), paradigm="offline", updates_per_iteration=1000, eval_episodes=5, **vae, **SMALL
    ).debugging(seed=0).build_algo()
    try:
        returns = [algo.train()["evaluation_return"]]  # the VAE stage
        while len(returns) < 5 and returns[-1] < 900:  # as test_spot: up to 4000 TD3 updates
            returns.append(algo.train()["evaluation_return"])
        path = algo.save_to_path(str(tmp_path / "offline"))
    finally:
        algo.stop()
    # SPOT's fine-tuning actor lr (1e-4) and the paper's κ start (0.3): with κ 0.2 → 1 over the 500 steps (Q_on-pt pre-trained
    # on 200 transitions) this policy dipped to 76 by then (actor lr 1e-4) and 48 (lr 1e-3) (measured)
    settings = {**learning_settings(mixed_data, minari_root, path, 500), "actor_lr": 1e-4, "kappa_start": 0.3, "kappa_end": 0.9, "kappa_steps": 5000}
    start, result = fine_tune(OPTSPOTConfig().environment("InvertedPendulum-v5").training(**settings, lambd_cool_steps=1000, **vae), 500)
    print("SPOT offline", returns, "→ SPOT+OPT after 500 fine-tuning env steps", result["evaluation_return"])
    assert start == returns[-1] >= 900, returns
    assert result["num_env_steps_lifetime"] == LEARN_TAU + 500 and result["num_updates_lifetime"] == 200 + 500
    assert result["kappa"] == pytest.approx(0.3 + 0.6 * 500 / 5000)
    assert result["evaluation_return"] > 200, (returns, result["evaluation_return"])
