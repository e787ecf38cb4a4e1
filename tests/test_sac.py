"""SAC: its losses against values computed by hand, the update order, transfers to and from
TD3, a SAC → TD3 pipeline and a learning check, on a real local Ray.

Expected values are written out from the paper's formulas in numpy (float64), never by calling
the function under test:

    u = μ(s) + σ(s) ε,  a = bias + scale · tanh(u),  log π(a|s) = Σ log N(u; μ, σ²) − Σ log(1 − tanh² u)
    y      = r + γ (1 − d) [min_j Q̄_j(s′, a′) − α log π(a′|s′)]      (without backup_entropy: no α term)
    J_π    = mean(α log π(ã|s) − min_j Q_j(s, ã))
    J(α)   = −mean(log α · (log π(ã|s) + H̄)),  H̄ = −|A|
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from algorithms.common.networks import GaussianActor
from algorithms.sac.sac_learner import SACUpdates, default_target_entropy, sac_actor_loss, sac_target, temperature_loss

OBS_DIM, ACT_DIM, HIDDEN = 2, 2, [3]
LOW, HIGH = np.array([-3.0, 0.0]), np.array([1.0, 2.0])  # scale [2, 1], bias [-1, 1]
SCALE, BIAS = (HIGH - LOW) / 2, (HIGH + LOW) / 2
TOL = dict(rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Hand-written helpers (independent of the code under test)
# --------------------------------------------------------------------------------------------


def f32(x: np.ndarray) -> np.ndarray:
    """Round to float32-representable values so numpy float64 and torch float32 start identical."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def rand_layers(rng: np.random.Generator, in_dim: int, out_dim: int, out_bias=None) -> list[tuple[np.ndarray, np.ndarray]]:
    w1, b1 = rng.uniform(-1, 1, (HIDDEN[0], in_dim)), rng.uniform(-0.5, 0.5, HIDDEN[0])
    w2 = rng.uniform(-1, 1, (out_dim, HIDDEN[0]))
    b2 = rng.uniform(-0.5, 0.5, out_dim) if out_bias is None else np.asarray(out_bias, dtype=float)
    return [(f32(w1), f32(b1)), (f32(w2), f32(b2))]


def load_layers(seq: nn.Sequential, layers) -> None:
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, layers, strict=True):
            lin.weight.copy_(torch.tensor(w, dtype=torch.float32))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float32))


def np_mlp(x: np.ndarray, layers) -> np.ndarray:
    (w1, b1), (w2, b2) = layers
    return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2


def np_q(s: np.ndarray, a: np.ndarray, layers) -> np.ndarray:
    return np_mlp(np.concatenate([s, a], axis=1), layers)[:, 0]


def np_sample(s: np.ndarray, layers, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(action in env units, log π in [-1, 1] units) of the tanh-Gaussian, written out."""
    out = np_mlp(s, layers)
    mu, log_std = out[:, :ACT_DIM], np.clip(out[:, ACT_DIM:], -20.0, 2.0)
    std = np.exp(log_std)
    u = mu + std * eps
    log_normal = -0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    logp = log_normal.sum(1) - np.log(1.0 - np.tanh(u) ** 2).sum(1)
    return BIAS + SCALE * np.tanh(u), logp


def t32(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float32)


def make_module(seed: int = 0, initial_alpha: float = 0.5):
    """A tiny SAC module (2-d states, asymmetric 2-d action box) with every weight known."""
    from gymnasium.spaces import Box

    from algorithms.sac.sac_module import SACRLModule

    torch.manual_seed(seed)
    m = SACRLModule(observation_space=Box(-np.inf, np.inf, (OBS_DIM,), np.float32), action_space=Box(LOW.astype(np.float32), HIGH.astype(np.float32)),
                    model_config={"hidden": HIDDEN, "initial_alpha": initial_alpha})
    rng = np.random.default_rng(seed)
    # log-std biases in [-1, 0.3]: moderate σ, so tanh does not saturate and log(1 − tanh²) is exact in float32
    w = {"actor": rand_layers(rng, OBS_DIM, 2 * ACT_DIM, out_bias=f32(np.r_[rng.uniform(-0.5, 0.5, ACT_DIM), rng.uniform(-1.0, 0.3, ACT_DIM)]))}
    for name in ("q1", "q2", "q1_target", "q2_target"):
        w[name] = rand_layers(rng, OBS_DIM + ACT_DIM, 1)
    load_layers(m.actor.net, w["actor"])
    load_layers(m.critics.qs[0], w["q1"])
    load_layers(m.critics.qs[1], w["q2"])
    load_layers(m.critics_target.qs[0], w["q1_target"])
    load_layers(m.critics_target.qs[1], w["q2_target"])
    return m, w


def batch(seed: int, B: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs": f32(rng.normal(size=(B, OBS_DIM))), "actions": f32(rng.uniform(LOW, HIGH, (B, ACT_DIM))), "rewards": f32(rng.normal(size=B)),
        "next_obs": f32(rng.normal(size=(B, OBS_DIM))), "terminals": (np.arange(B) % 4 == 0).astype(np.float64),
    }


def eps_of(seed: int, B: int) -> np.ndarray:
    """The ε that a reparameterised sample draws right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return torch.randn(B, ACT_DIM).double().numpy()


# --------------------------------------------------------------------------------------------
# 1. The tanh-Gaussian: log-probabilities, deterministic action, bounds
# --------------------------------------------------------------------------------------------


def test_tanh_gaussian_log_prob_matches_the_direct_formula():
    m, w = make_module(seed=1)
    s = batch(2, B=64)["obs"]
    eps = eps_of(5, 64)
    torch.manual_seed(5)
    a, logp = m.actor.sample(t32(s))
    a_hand, logp_hand = np_sample(s, w["actor"], eps)
    np.testing.assert_allclose(a.detach().numpy(), a_hand, **TOL)
    np.testing.assert_allclose(logp.detach().numpy(), logp_hand, rtol=1e-4, atol=1e-4)  # float32 u up to ~10: rtol 1e-4
    # The same density for given actions (environment units): log N(atanh(a)) − Σ log(1 − a²), away from
    # saturation (log_prob clamps |a| to 1 − 1e-6 there, as dataset actions on the bounds need).
    inside = (np.abs((a_hand - BIAS) / SCALE) < 0.99).all(1)
    assert inside.sum() > 32
    np.testing.assert_allclose(m.actor.log_prob(t32(s), t32(a_hand)).detach().numpy()[inside], logp_hand[inside], rtol=1e-4, atol=1e-3)
    # And torch's own change-of-variables distribution agrees (an independent third computation).
    from torch.distributions import Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform

    out = torch.tensor(np_mlp(s, w["actor"]))
    dist = TransformedDistribution(Normal(out[:, :ACT_DIM], out[:, ACT_DIM:].clamp(-20, 2).exp()), [TanhTransform()])
    torch_logp = dist.log_prob(torch.tensor((a_hand - BIAS) / SCALE)).sum(-1).numpy()
    np.testing.assert_allclose(torch_logp[inside], logp_hand[inside], rtol=1e-6, atol=1e-6)
    # The deterministic action is tanh of the mean, in the bounds; samples stay in the box.
    mu = np_mlp(s, w["actor"])[:, :ACT_DIM]
    np.testing.assert_allclose(m.act(t32(s)).detach().numpy(), BIAS + SCALE * np.tanh(mu), **TOL)
    assert (a_hand >= LOW).all() and (a_hand <= HIGH).all()


def test_log_std_is_clamped():
    m, _ = make_module(seed=1)
    with torch.no_grad():
        m.actor.net[-1].weight.zero_()
        m.actor.net[-1].bias.copy_(t32([0.0, 0.0, 30.0, -30.0]))
    _, log_std = m.actor.dist_params(t32(np.zeros((1, OBS_DIM))))
    assert log_std.tolist() == [[2.0, -20.0]]


# --------------------------------------------------------------------------------------------
# 2. The critic target, the actor loss, the temperature loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backup_entropy", [True, False])
def test_sac_target_matches_hand_computation(backup_entropy):
    m, w = make_module(seed=3)
    b = batch(4)
    gamma, alpha = 0.9, 0.37
    eps = eps_of(11, 32)
    torch.manual_seed(11)
    y = sac_target(m.actor, m.critics_target, t32(b["next_obs"]), t32(b["rewards"]), t32(b["terminals"]), gamma, alpha, backup_entropy)

    a2, logp2 = np_sample(b["next_obs"], w["actor"], eps)
    q1, q2 = np_q(b["next_obs"], a2, w["q1_target"]), np_q(b["next_obs"], a2, w["q2_target"])
    soft_v = np.minimum(q1, q2) - (alpha * logp2 if backup_entropy else 0.0)
    expected = b["rewards"] + gamma * (1.0 - b["terminals"]) * soft_v
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-4)

    live = b["terminals"] == 0
    assert (q1[live] < q2[live]).any() and (q2[live] < q1[live]).any()  # the min picks each critic somewhere
    np.testing.assert_array_equal(y.numpy()[~live], t32(b["rewards"]).numpy()[~live])  # no bootstrap past a termination
    other = b["rewards"] + gamma * (1.0 - b["terminals"]) * (np.minimum(q1, q2) - (0.0 if backup_entropy else alpha * logp2))
    assert not np.allclose(y.numpy(), other, atol=1e-3)  # the entropy term is really (not) there
    assert not y.requires_grad


def test_sac_actor_loss_value_and_gradient():
    m, w = make_module(seed=6)
    s = batch(7)["obs"]
    alpha = 0.25
    eps = eps_of(13, 32)
    torch.manual_seed(13)
    loss, log_pi = sac_actor_loss(m.actor, m.critics, t32(s), alpha)
    a, logp = np_sample(s, w["actor"], eps)
    q = np.minimum(np_q(s, a, w["q1"]), np_q(s, a, w["q2"]))
    assert loss.item() == pytest.approx(np.mean(alpha * logp - q), rel=1e-5, abs=1e-5)
    np.testing.assert_allclose(log_pi.detach().numpy(), logp, rtol=1e-5, atol=1e-4)

    # Gradient through the reparameterised sample, against the same loss written out in torch.
    params = list(m.actor.parameters())
    torch.manual_seed(13)
    got = torch.autograd.grad(sac_actor_loss(m.actor, m.critics, t32(s), alpha)[0], params)
    lin1, lin2 = [l for l in m.actor.net if isinstance(l, nn.Linear)]
    out = torch.relu(t32(s) @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias
    mu, log_std = out[:, :ACT_DIM], out[:, ACT_DIM:]
    u = mu + log_std.exp() * t32(eps)
    a_env = t32(BIAS) + t32(SCALE) * torch.tanh(u)
    logp_t = (-0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(1) - torch.log(1 - torch.tanh(u) ** 2).sum(1)
    qs = []
    for name in ("q1", "q2"):
        (cw1, cb1), (cw2, cb2) = w[name]
        qs.append((torch.relu(torch.cat([t32(s), a_env], 1) @ t32(cw1).T + t32(cb1)) @ t32(cw2).T + t32(cb2))[:, 0])
    expected = torch.autograd.grad((alpha * logp_t - torch.minimum(*qs)).mean(), params)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_temperature_loss_value_and_gradient():
    log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
    log_pi = torch.tensor([-1.5, 0.2, -3.0, 0.7], requires_grad=True)
    target_entropy = default_target_entropy(2)
    assert target_entropy == -2.0
    loss = temperature_loss(log_alpha, log_pi, target_entropy)
    lp = np.array([-1.5, 0.2, -3.0, 0.7])
    assert loss.item() == pytest.approx(-np.mean(math.log(0.3) * (lp - 2.0)), rel=1e-6)
    g_alpha, g_pi = torch.autograd.grad(loss, [log_alpha, log_pi], allow_unused=True)
    # dJ/dlog α = −mean(log π + H̄) = −(−0.9 − 2) = 2.9 > 0: the entropy 0.9 is above H̄ = −2, so a step lowers α.
    assert g_alpha.item() == pytest.approx(-np.mean(lp - 2.0), rel=1e-6) and g_alpha.item() == pytest.approx(2.9, rel=1e-6)
    assert g_pi is None  # log π is held fixed


# --------------------------------------------------------------------------------------------
# 3. One update: critic, actor, temperature, targets, in that order
# --------------------------------------------------------------------------------------------


def _config(**kw) -> SimpleNamespace:
    base = dict(gamma=0.9, tau=0.3, critic_lr=0.05, actor_lr=0.05, alpha_lr=0.05, target_entropy=None, learn_alpha=True, backup_entropy=True)
    return SimpleNamespace(**{**base, **kw})


def _updates(m, cfg) -> SACUpdates:
    opts = {name: torch.optim.SGD(net.parameters() if isinstance(net, nn.Module) else net, lr=lr)
            for name, (net, lr) in SACUpdates.optimizer_groups(m, cfg).items()}
    return SACUpdates(m, cfg, opts, sampler=None, device=torch.device("cpu"))


def _grad_step(params: list[torch.Tensor], loss: torch.Tensor, lr: float) -> list[torch.Tensor]:
    return [p.detach() - lr * g for p, g in zip(params, torch.autograd.grad(loss, params), strict=True)]


def test_update_order_critic_actor_temperature_targets():
    m, _ = make_module(seed=8, initial_alpha=0.6)
    m.normalizer.set_stats(np.array([0.2, -0.3]), np.array([1.5, 0.7]))
    cfg = _config()
    up = _updates(m, cfg)
    b = {k: t32(v) for k, v in batch(9).items()}
    ref, orig = copy.deepcopy(m), copy.deepcopy(m)
    torch.manual_seed(21)
    metrics = up.update(b)

    # The reference, step by step, with the same random draws (target a′ first, then ã).
    torch.manual_seed(21)
    obs, nxt = ref.normalizer(b["obs"]), ref.normalizer(b["next_obs"])
    alpha0 = math.exp(ref.log_alpha.item())
    y = sac_target(ref.actor, ref.critics_target, nxt, b["rewards"], b["terminals"], cfg.gamma, alpha0)  # pre-update actor
    critic_loss = sum(((q - y) ** 2).mean() for q in ref.critics(obs, b["actions"]))
    critics_new = _grad_step(list(ref.critics.parameters()), critic_loss, cfg.critic_lr)
    with torch.no_grad():
        for p, v in zip(ref.critics.parameters(), critics_new, strict=True):
            p.copy_(v)
    actor_loss, log_pi = sac_actor_loss(ref.actor, ref.critics, obs, alpha0)  # the updated critics
    actor_new = _grad_step(list(ref.actor.parameters()), actor_loss, cfg.actor_lr)
    log_alpha_new = ref.log_alpha.item() + cfg.alpha_lr * (log_pi.detach().mean().item() - ACT_DIM)  # −lr · dJ/dlog α

    for p, e in zip(m.critics.parameters(), critics_new, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    for p, e in zip(m.actor.parameters(), actor_new, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    assert m.log_alpha.item() == pytest.approx(log_alpha_new, rel=1e-5)
    for t, t0, c in zip(m.critics_target.parameters(), ref.critics_target.parameters(), critics_new, strict=True):
        torch.testing.assert_close(t, (1 - cfg.tau) * t0 + cfg.tau * c, rtol=1e-5, atol=1e-6)  # Polyak on the new critics
    assert metrics["critic_loss"].item() == pytest.approx(critic_loss.item(), rel=1e-5)
    assert metrics["actor_loss"].item() == pytest.approx(actor_loss.item(), rel=1e-5)
    assert metrics["alpha"].item() == pytest.approx(alpha0, rel=1e-6)  # the α the losses used
    assert all(not v.requires_grad for v in metrics.values())
    # Sensitivity: the actor loss on the pre-update critics (same draws) differs, so the order is checked.
    torch.manual_seed(21)
    sac_target(orig.actor, orig.critics_target, nxt, b["rewards"], b["terminals"], cfg.gamma, alpha0)
    stale_loss, _ = sac_actor_loss(orig.actor, orig.critics, obs, alpha0)
    assert not math.isclose(stale_loss.item(), actor_loss.item(), rel_tol=1e-4)


def test_fixed_temperature_and_no_entropy_backup():
    m, _ = make_module(seed=10, initial_alpha=0.2)
    up = _updates(m, _config(learn_alpha=False, backup_entropy=False, target_entropy=-0.5))
    assert up.target_entropy == -0.5
    metrics = up.update({k: t32(v) for k, v in batch(11).items()})
    assert m.log_alpha.item() == pytest.approx(math.log(0.2)) and "alpha_loss" not in metrics


# --------------------------------------------------------------------------------------------
# 4. Settings: the paper's defaults, refused values
# --------------------------------------------------------------------------------------------


def test_settings_defaults_and_refusals():
    from algorithms.sac.sac import SACSettings
    from mprl.catalogue import get_algorithm

    entry = get_algorithm("sac")
    assert entry.paradigms == ("online", "hybrid") and entry.paradigm == "online"
    s = SACSettings()
    assert (s.actor_lr, s.critic_lr, s.alpha_lr, s.tau, s.gamma, s.train_batch_size_per_learner, s.hidden) == (3e-4, 3e-4, 3e-4, 0.005, 0.99, 256, [256, 256])
    assert (s.initial_alpha, s.target_entropy, s.backup_entropy, s.utd, s.random_steps, s.learning_starts) == (1.0, None, True, 1, 5000, 5000)
    assert s.hybrid_replay() == "mixed" and s.offline_ratio == 0.5
    problems = dict((k, m) for k, m, _ in SACSettings.problems({"initial_alpha": -1, "replay": "balanced", "critic_encoder": "concat"}, "hybrid"))
    assert set(problems) == {"initial_alpha", "replay", "critic_encoder"}
    assert "not available" in problems["replay"]
    assert SACSettings.problems({"replay": "shared"}, "online")[0][0] == "replay"  # a hybrid-only setting
    assert SACSettings().phase_problems("online", "env_steps", 4000, warm_start=False)[0][0] == "learning_starts"
    assert not SACSettings().phase_problems("online", "env_steps", 4000, warm_start=True)


def test_spec_refuses_rllib_sac_settings():
    from mprl.errors import SpecError
    from mprl.spec import parse_pipeline

    data = {"name": "x", "phases": [{"name": "on", "algorithm": "sac", "env": "Pendulum-v1", "budget": {"env_steps": 10_000},
                                     "config": {"num_steps_sampled_before_learning_starts": 50}}]}
    with pytest.raises(SpecError, match="learning_starts"):
        parse_pipeline(data, source="x")


# --------------------------------------------------------------------------------------------
# 5. Transfers TD3 ↔ SAC (module level)
# --------------------------------------------------------------------------------------------


def _snap(name: str, module):
    from mprl.transfer import snapshot_from_module

    return snapshot_from_module(module, algorithm=name, env="Hopper-v5")


def _hopper_module(name: str, seed: int):
    from mprl.catalogue import get_algorithm
    from mprl.transfer.snapshots import module_from_config

    torch.manual_seed(seed)
    module = module_from_config(get_algorithm(name).new_config(), "Hopper-v5")
    g = torch.Generator().manual_seed(seed)
    module.normalizer.set_stats(torch.randn(11, generator=g), torch.rand(11, generator=g) + 0.5)
    return module


@pytest.mark.parametrize(("src", "dst"), [("td3", "sac"), ("sac", "td3")])
def test_td3_sac_transfers_are_exact_policies_and_exact_critics(src, dst):
    from mprl.transfer import apply, check

    source, target = _hopper_module(src, 1), _hopper_module(dst, 2)
    report = check(_snap(src, source), _snap(dst, target))
    d = report.to_dict()
    assert report.policy == "exact", report.notes
    roles = {r.role: r.status for r in report.roles}
    assert roles["actor"] == "adapted" and all(roles[f"q[{i}]"] == roles[f"q_target[{i}]"] == "exact" for i in (0, 1))
    adapters = {e.adapter for e in report.entries if e.target.startswith("actor.net.4")}
    assert adapters == {"gaussian_mean_rows" if dst == "sac" else "mean_rows"}
    if dst == "sac":
        assert d["left_initialised"] == ["log_alpha"]  # a fresh temperature; the log-std rows keep their init
    else:
        assert roles["actor_target"] == "synced" and "log_alpha" in d["skipped"]
    apply(report, _snap(src, source), target)
    obs = torch.randn(1000, 11, generator=torch.Generator().manual_seed(3)) * 2
    act = torch.rand(1000, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        assert (source.act(obs) - target.act(obs)).abs().max() < 1e-5
        for a, b in ((source.critics, target.critics), (source.critics_target, target.critics_target)):
            assert torch.equal(a(source.normalizer(obs), act), b(target.normalizer(obs), act))  # copied exactly


def test_sac_to_sac_carries_the_temperature():
    from mprl.transfer import apply, check

    source, target = _hopper_module("sac", 1), _hopper_module("sac", 2)
    with torch.no_grad():
        source.log_alpha.fill_(-2.0)
    report = check(_snap("sac", source), _snap("sac", target))
    assert report.policy == "exact" and not report.to_dict()["left_initialised"]
    apply(report, _snap("sac", source), target)
    assert target.log_alpha.item() == -2.0 and torch.equal(target.actor.net[4].weight, source.actor.net[4].weight)


# --------------------------------------------------------------------------------------------
# 6. On a real local Ray: SAC → TD3 pipeline, TD3 → SAC warm start, hybrid replay, learning
# --------------------------------------------------------------------------------------------

ENV = "Hopper-v5"
EVAL = {"episodes": 3, "seed": 123}


@pytest.fixture(scope="module")
def sac_to_td3(ray_local, tmp_path_factory):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    data = {
        "name": "sac-to-td3", "storage_path": str(tmp_path_factory.mktemp("runs")), "videos": {"selected": False},
        "phases": [
            {"name": "sac", "algorithm": "sac", "env": ENV, "budget": {"env_steps": 300}, "evaluation": {"interval": 300, **EVAL},
             "tune": {"seeds": [0]}, "config": {"random_steps": 200, "learning_starts": 200, "hidden": [64, 64]}},
            {"name": "td3", "algorithm": "td3", "env": ENV, "init_from": "sac", "budget": {"env_steps": 100},
             "evaluation": {"interval": 100, **EVAL}, "tune": {"seeds": [0]}, "config": {"hidden": [64, 64]}},
        ],
    }
    lines: list[str] = []
    return run_pipeline(parse_pipeline(data, source="sac-to-td3"), write=lines.append), lines


def test_pipeline_sac_to_td3(sac_to_td3):
    """SAC (fresh: 200 random steps, then one update per step) → TD3 warm-started from its checkpoint:
    TD3's first evaluation (same seeds) is SAC's last one, and the policy transfer is exact."""
    result, lines = sac_to_td3
    sac, td3 = result.phases
    # Fragments of 50 steps: the one that reaches learning_starts (150 → 200) gets its 50 updates too.
    assert (sac.algorithm, sac.paradigm, sac.env_steps, sac.updates) == ("sac", "online", 300, 150)
    assert (td3.algorithm, td3.paradigm, td3.env_steps, td3.updates) == ("td3", "online", 100, 100)  # warm start: no warm-up
    assert td3.initial_return == pytest.approx(sac.evaluation_return, rel=1e-6)
    report = json.loads((Path(result.run_dir) / "td3" / "transfer_report.json").read_text())
    assert report["possible"] and report["policy"] == "exact"
    assert {r["role"]: r["status"] for r in report["roles"]}["q[0]"] == "exact"


def test_td3_to_sac_warm_start_evaluates_the_source_policy_and_counts_updates(sac_to_td3):
    """SAC from the pipeline's TD3 checkpoint: the evaluation before any update equals TD3's; each
    iteration then makes one critic, actor and temperature step per env step (no warm-up)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from algorithms.sac import SACConfig

    result, _ = sac_to_td3
    td3 = result.phases[1]
    cfg = SACConfig().environment(ENV).training(
        init_checkpoint=td3.checkpoint, budget_env_steps=60, env_steps_per_iteration=40, eval_episodes=EVAL["episodes"],
        eval_seed=EVAL["seed"], hidden=[64, 64], train_batch_size_per_learner=64,
    )
    algo = cfg.build_algo()
    try:
        assert algo.transfer_report["policy"] == "exact"
        assert algo.initial_eval["evaluation_return"] == pytest.approx(td3.evaluation_return, rel=1e-6)
        rows = [algo.train() for _ in range(2)]
        assert [r["num_env_steps_lifetime"] for r in rows] == [40, 60] and rows[-1]["budget_done"]
        learner = algo.learner_group._learner
        steps = {n: int(next(iter(learner.get_optimizer(DEFAULT_MODULE_ID, n).state.values()))["step"]) for n in ("critic", "actor", "alpha")}
        assert rows[-1]["num_updates_lifetime"] == steps["critic"] == steps["actor"] == steps["alpha"] == 60
        assert {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy"} <= set(rows[-1]["learner_stats"])
    finally:
        algo.stop()


def test_hybrid_sac_mixes_the_dataset_into_each_batch(ray_local, minari_root):
    from algorithms.sac import SACConfig
    from mprl.datasets import build_dataset

    dataset = build_dataset(ENV, "random", size=2000, seed=0, dataset_id="mprl/hopper/sac-hybrid-v0", progress=None)
    algo = SACConfig().environment(ENV).training(
        paradigm="hybrid", dataset=dataset, dataset_root=str(minari_root), env_steps_per_iteration=150, random_steps=100,
        learning_starts=100, eval_episodes=1, hidden=[32, 32], train_batch_size_per_learner=32,
    ).build_algo()
    try:
        row = algo.train()
        # fragments of 50: updates after those that end at 100 and 150 steps
        assert (row["num_env_steps_lifetime"], row["num_updates_lifetime"], row["replay_size"]) == (150, 100, 150)
        sampler = algo.learner_group._learner.updates.sampler
        assert sampler.mode == "mixed" and len(sampler.offline) == 2000
    finally:
        algo.stop()


def test_sac_learns_pendulum(ray_local):
    """Pendulum-v1: random ≈ −1,200; SAC reaches ≥ −250 (of about −150 at best) within 6k steps.

    A small-task setting (64×64, lr 1e-3 for actor, critics and α, 1k random steps), as
    test_learning does for TD3: the papers' defaults need more steps than CI can afford."""
    from algorithms.sac import SACConfig

    algo = (
        SACConfig().environment("Pendulum-v1")
        .training(random_steps=1000, learning_starts=1000, env_steps_per_iteration=1000, eval_episodes=10,
                  hidden=[64, 64], actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
        .debugging(seed=1).build_algo()
    )
    returns, t0 = [], time.perf_counter()
    try:
        while algo.num_env_steps < 6000:
            row = algo.train()
            returns.append(row["evaluation_return"])
            if returns[-1] >= -250:
                break
    finally:
        algo.stop()
    assert max(returns) >= -250, f"SAC did not reach −250 within 6k steps: {returns}"
    assert returns[0] < -700, returns  # after 1k random steps it had not yet learned
    assert row["learner_stats"]["alpha"] < 1.0  # the temperature moved towards the entropy target
    print(f"SAC Pendulum-v1 returns {[round(r) for r in returns]} in {time.perf_counter() - t0:.0f} s")
