"""Parameter transfer across algorithms: roles, the compatibility checker, the loader, TD3+BC → SAC.

Module-level tests build real modules (ours and RLlib's SAC/CQL/IQL/PPO/BC) with Hopper's
spaces and check the transferred functions numerically; the algorithm-level tests run
TD3+BC → SAC through `mprl.runner.run_pipeline` on a real local Ray with Tune.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mprl.catalogue import algorithm_names, get_algorithm
from mprl.errors import TransferError
from mprl.evaluation import deterministic_actions
from mprl.transfer import TransferOptions, apply, check, format_report, snapshot_from_module
from mprl.transfer.snapshots import module_from_config

warnings.filterwarnings("ignore", category=DeprecationWarning)
logging.getLogger("ray.rllib").setLevel(logging.ERROR)

ENV = "Hopper-v5"
N_STATES = 1000
RLLIB = ("rllib_ppo", "rllib_bc", "rllib_cql", "rllib_iql", "rllib_sac")  # RLlib's own modules, beside ours
RELU = {"fcnet_activation": "relu", "fcnet_hiddens": [256, 256]}


def rllib_config(name: str, model_config: dict | None = RELU):
    from ray.rllib.algorithms.bc import BCConfig
    from ray.rllib.algorithms.cql import CQLConfig
    from ray.rllib.algorithms.iql import IQLConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.algorithms.sac import SACConfig

    cls = {"rllib_ppo": PPOConfig, "rllib_bc": BCConfig, "rllib_cql": CQLConfig, "rllib_iql": IQLConfig, "rllib_sac": SACConfig}[name]
    cfg = cls().environment(ENV)
    if model_config is not None:
        cfg.rl_module(model_config=model_config)
    return cfg


def config_for(name: str, **settings):
    cfg = get_algorithm(name).new_config() if name not in RLLIB else rllib_config(name)
    if name not in RLLIB:  # one actor shape for the whole matrix (CQL and AWAC default to 3×256, PPO to tanh)
        settings = {"hidden": [256, 256], **({"activation": "relu"} if "activation" in cfg.settings.model_fields else {}), **settings}
    for k, v in settings.items():
        setattr(cfg, k, v)
    return cfg


def build(name: str, seed: int = 0, env: str = ENV, cfg=None, **settings):
    """A module as its learner builds it (targets made), with random weights and, for our
    modules, non-trivial normaliser statistics so that folding is exercised."""
    cfg = cfg or config_for(name, **settings)
    torch.manual_seed(seed)
    module = module_from_config(cfg, env)
    if hasattr(module, "normalizer"):
        g = torch.Generator().manual_seed(seed + 100)
        obs_dim = module.normalizer.mean.numel()
        module.normalizer.set_stats(torch.randn(obs_dim, generator=g), torch.rand(obs_dim, generator=g) + 0.5)
    return cfg, module


def snap(cfg, module, name):
    return snapshot_from_module(module, normalize_actions=cfg.normalize_actions, algorithm=name, env=ENV)


def states(n: int = N_STATES, seed: int = 0, dim: int = 11) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * 2


def actions_env(n: int = N_STATES, seed: int = 1, dim: int = 3) -> torch.Tensor:
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def policy(cfg, module, obs):
    with torch.no_grad():
        return deterministic_actions(module, obs, normalize_actions=cfg.normalize_actions, clip_actions=cfg.clip_actions)


def q_values(cfg, module, role: str, index: int, obs, act_env):
    """Q(s, a) of one critic, with a in environment units (converted as the module expects)."""
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        if hasattr(module, "normalizer"):
            attr = "critics" + role[1:]
            return getattr(module, attr).qs[index](torch.cat([module.normalizer(obs), act_env], -1)).squeeze(-1)
        low = torch.as_tensor(module.action_space.low)
        high = torch.as_tensor(module.action_space.high)
        a = (act_env - (high + low) / 2) / ((high - low) / 2) if cfg.normalize_actions else act_env
        prefix = "target_" if role.endswith("_target") else ""
        enc, head = ("qf_encoder", "qf") if index == 0 else ("qf_twin_encoder", "qf_twin")
        return module._qf_forward_train_helper({Columns.OBS: obs, Columns.ACTIONS: a}, getattr(module, prefix + enc), getattr(module, prefix + head))


def v_values(module, obs):
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.models.base import ENCODER_OUT

    with torch.no_grad():
        if hasattr(module, "vf_encoder"):
            return module.vf(module.vf_encoder({Columns.OBS: obs})[ENCODER_OUT]).squeeze(-1)
        if hasattr(module, "declared_roles"):  # ours: V(normalise(s)) under the role `v`
            attr = next(r.attr for r in module.declared_roles() if r.role == "v")
            return getattr(module, attr)(module.normalizer(obs))
        return module.compute_values({Columns.OBS: obs})


# ----------------------------------------------------------------------------- module level

MATRIX = [*algorithm_names(), *RLLIB]


@pytest.fixture(scope="module")
def sources():
    return {name: build(name, seed=1) for name in MATRIX}


@pytest.mark.parametrize("target_name", MATRIX)
def test_transfer_matrix(sources, target_name):
    """Every source into `target_name`: a plan for every parameter, and what it says holds numerically."""
    obs, act = states(), actions_env()
    for source_name, (s_cfg, source) in sources.items():
        t_cfg, target = build(target_name, seed=2)
        report = check(snap(s_cfg, source, source_name), snap(t_cfg, target, target_name))
        assert report.possible, (source_name, target_name, report.problems)
        keys = [e.target for e in report.entries]
        assert sorted(keys) == sorted(target.state_dict()), (source_name, target_name)
        apply(report, snap(s_cfg, source, source_name), target)
        pair = f"{source_name} → {target_name}"
        roles = {r.role: r for r in report.roles}
        # Both have a ReLU actor of the same shape: it is always carried.
        assert report.policy in ("exact", "approximate"), (pair, report.policy, roles.get("actor"))
        if report.policy == "exact":
            diff = np.abs(policy(s_cfg, source, obs) - policy(t_cfg, target, obs)).max()
            assert diff < 1e-5, (pair, diff)
        for r in report.roles:
            if r.role.startswith("q") and r.status in ("exact", "adapted"):
                role, index = r.role.split("[")[0], int(r.role.split("[")[1][:-1])
                s_role, s_index = r.source.split("[")[0], int(r.source.split("[")[1][:-1])
                q_s = q_values(s_cfg, source, s_role, s_index, obs, act)
                q_t = q_values(t_cfg, target, role, index, obs, act)
                assert torch.allclose(q_s, q_t, atol=1e-4, rtol=1e-4), (pair, r.role, (q_s - q_t).abs().max())
            if r.role == "v" and r.status in ("exact", "adapted"):
                assert torch.allclose(v_values(source, obs), v_values(target, obs), atol=1e-5), pair
            if r.role.startswith("q") and r.status == "initialised":
                assert any(why in r.detail for why in ("architecture differs", "missing role", "no matching", "online network", "LayerNorm differs")), (pair, r)


def test_td3_family_transfers_are_exact_and_complete(sources):
    """TD3+BC → TD3 and TD3+BC → SAC carry actor and both critics; TD3+BC → TD3 copies everything."""
    s_cfg, source = sources["td3_bc"]
    t_cfg, target = build("td3", seed=3)
    report = check(snap(s_cfg, source, "td3_bc"), snap(t_cfg, target, "td3")).to_dict()
    assert not report["skipped"] and not report["left_initialised"] and not report["adapted"]
    assert report["policy"] == "exact"
    t_cfg, target = build("sac", seed=3)
    report = check(snap(s_cfg, source, "td3_bc"), snap(t_cfg, target, "sac")).to_dict()
    assert {r["role"]: r["status"] for r in report["roles"]} == {
        "normalizer": "exact", "actor": "adapted", "q[0]": "exact", "q[1]": "exact", "q_target[0]": "exact", "q_target[1]": "exact",
    }
    assert report["policy"] == "exact"
    assert report["left_initialised"] == ["log_alpha"]  # SAC's temperature starts at its initial_alpha
    assert all(s.startswith("actor_target") for s in report["skipped"])  # SAC has no actor target


def test_td3_to_sac_gaussian_mean_is_td3_pre_tanh_action(sources):
    """SAC's Gaussian mean after TD3(+BC) → SAC equals TD3's pre-tanh output, normaliser folded in;
    SAC's deterministic action tanh(mean) then equals TD3's action."""
    s_cfg, source = sources["td3_bc"]
    assert not torch.allclose(source.normalizer.std, torch.ones(11))  # a real fold
    t_cfg, target = build("sac", seed=4)
    report = check(snap(s_cfg, source, "td3_bc"), snap(t_cfg, target, "sac"))
    apply(report, snap(s_cfg, source, "td3_bc"), target)
    obs = states(seed=5)
    with torch.no_grad():
        pre_tanh = source.actor.net(source.normalizer(obs))
        mean, log_std = target.actor.dist_params(target.normalizer(obs))
    assert (mean - pre_tanh).abs().max() < 1e-5
    np.testing.assert_allclose(policy(t_cfg, target, obs), policy(s_cfg, source, obs), atol=1e-6)
    heads = [e for e in report.entries if e.target.startswith("actor.net.4")]
    assert len(heads) == 2 and all(e.adapter == "gaussian_mean_rows" for e in heads)
    assert log_std.std() > 0  # fresh log-std rows, not zeros


def test_log_std_init_option(sources):
    s_cfg, source = sources["td3"]
    t_cfg, target = build("sac", seed=4)
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "sac"), TransferOptions(log_std_init=-1.0))
    apply(report, snap(s_cfg, source, "td3"), target)
    with torch.no_grad():
        _, log_std = target.actor.dist_params(target.normalizer(states(10)))
    assert torch.allclose(log_std, torch.full((10, 3), -1.0))


def test_sac_to_td3_round_trip_is_exact():
    """SAC → TD3+BC → SAC: the policy survives both ways (mean rows ↔ deterministic head; both
    have an observation normaliser, so its statistics are copied and first layers verbatim)."""
    s_cfg, sac = build("sac", seed=6)
    m_cfg, td3bc = build("td3_bc", seed=7)
    r1 = check(snap(s_cfg, sac, "sac"), snap(m_cfg, td3bc, "td3_bc"))
    assert {e.action for e in r1.entries if e.target == "actor.net.0.weight"} == {"copied"}
    assert {e.adapter for e in r1.entries if e.target == "actor.net.4.weight"} == {"mean_rows"}
    apply(r1, snap(s_cfg, sac, "sac"), td3bc)
    b_cfg, back = build("sac", seed=8)
    apply(check(snap(m_cfg, td3bc, "td3_bc"), snap(b_cfg, back, "sac")), snap(m_cfg, td3bc, "td3_bc"), back)
    obs = states(seed=9)
    a0, a1, a2 = policy(s_cfg, sac, obs), policy(m_cfg, td3bc, obs), policy(b_cfg, back, obs)
    assert np.abs(a0 - a1).max() < 1e-5 and np.abs(a0 - a2).max() < 1e-5


def test_rllib_multistream_critics_are_left_initialised_with_reason(sources):
    """RLlib's default SAC Q network (obs/action streams + fusion) has no layer-wise counterpart in an MLP critic."""
    s_cfg, source = sources["td3"]
    t_cfg, target = build("rllib_sac", seed=2)
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "rllib_sac"))
    roles = {r.role: r for r in report.roles}
    assert report.policy == "exact"
    assert roles["q[0]"].status == "initialised" and "architecture differs" in roles["q[0]"].detail
    assert any(e.target.startswith("qf_encoder.base_encoders") and e.action == "initialised" for e in report.entries)


def test_activation_mismatch_is_reported_and_optional():
    """RLlib's defaults use tanh; our actor uses ReLU: not copied unless asked, then 'approximate'."""
    s_cfg, source = build("td3", seed=1)
    t_cfg = rllib_config("rllib_bc", model_config=None)  # RLlib's default: tanh
    _, target = build("rllib_bc", cfg=t_cfg)
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "rllib_bc"))
    assert report.policy == "not transferred"
    assert "activation differs" in next(r for r in report.roles if r.role == "actor").detail
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "rllib_bc"), TransferOptions(allow_activation_mismatch=True))
    assert report.policy == "approximate" and not report.names("initialised")


def test_gaussian_actor_into_deterministic_and_value_functions():
    """RLlib's PPO (Gaussian + V) → RLlib's IQL: mean/log-std rows copied, V carried; PPO → TD3: mean rows only."""
    p_cfg, ppo = build("rllib_ppo", seed=1)
    i_cfg, iql = build("rllib_iql", seed=2)
    report = check(snap(p_cfg, ppo, "rllib_ppo"), snap(i_cfg, iql, "rllib_iql"))
    roles = {r.role: r.status for r in report.roles}
    assert roles["actor"] == "exact" and roles["v"] == "exact" and roles["q[0]"] == "initialised"
    t_cfg, td3 = build("td3", seed=3)
    report = check(snap(p_cfg, ppo, "rllib_ppo"), snap(t_cfg, td3, "td3"))
    head = next(e for e in report.entries if e.target == "actor.net.4.weight")
    assert head.adapter == "mean_rows" and head.args["rows"] == [0, 3]
    assert report.policy == "approximate"  # PPO's deterministic action clips the mean; TD3's squashes it


# ----------------------------------------------------------------------------- partial, ensembles, targets


def test_partial_transfer_across_depth_and_width():
    s_cfg, source = build("td3", seed=1, hidden=[64, 64])
    # Deeper: the two first layers carry over, the rest (and so the head) is fresh.
    t_cfg, target = build("td3", seed=2, hidden=[64, 64, 64])
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "td3"))
    actor = {e.target: e for e in report.entries if e.role == "actor"}
    assert actor["actor.net.0.weight"].action == "copied" and actor["actor.net.2.weight"].action == "copied"
    assert actor["actor.net.4.weight"].action == "initialised" and "depth differs" in actor["actor.net.4.weight"].detail
    assert actor["actor.net.6.weight"].action == "initialised"
    assert report.policy == "partial" and next(r for r in report.roles if r.role == "actor").status == "partial"
    apply(report, snap(s_cfg, source, "td3"), target)
    assert torch.equal(target.actor.net[2].weight, source.actor.net[2].weight)
    # Narrower second layer: the first layer carries over, then widths differ.
    t_cfg, target = build("td3", seed=2, hidden=[64, 32])
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "td3"))
    actor = {e.target: e for e in report.entries if e.role == "actor"}
    assert actor["actor.net.0.weight"].action == "copied"
    assert actor["actor.net.2.weight"].action == "initialised" and "width differs" in actor["actor.net.2.weight"].detail
    # Different width from the start: nothing of the networks, only the normaliser.
    t_cfg, target = build("td3", seed=2, hidden=[128, 128])
    report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "td3"))
    assert report.policy == "not transferred"
    assert set(report.names("copied")) >= {"normalizer.mean", "normalizer.std"}
    assert all(e.action in ("initialised", "kept", "copied") for e in report.entries)
    assert any("critics.qs.0.0.weight" == s.source for s in report.skipped)
    assert "width differs" in format_report(report)


def _five_critics(module):
    from algorithms.common.networks import CriticEnsemble

    module.critics = CriticEnsemble(11, 3, [256, 256], n=5)
    module.critics_target = copy.deepcopy(module.critics).requires_grad_(False)
    return module


def test_two_critics_cycle_into_a_five_critic_ensemble(sources):
    s_cfg, source = sources["td3_bc"]
    t_cfg, target = build("td3", seed=2)
    target = _five_critics(target)
    report = check(snap(s_cfg, source, "td3_bc"), snap(t_cfg, target, "td3"))
    by_role = {r.role: r for r in report.roles}
    assert by_role["q[4]"].source == "q[0]" and by_role["q[3]"].source == "q[1]"
    assert next(e for e in report.entries if e.target == "critics.qs.2.0.weight").adapter == "ensemble_cycle"
    apply(report, snap(s_cfg, source, "td3_bc"), target)
    obs, act = states(), actions_env()
    for i in range(5):
        assert torch.allclose(q_values(t_cfg, target, "q", i, obs, act), q_values(s_cfg, source, "q", i % 2, obs, act), atol=1e-6)
    # And back: five into two keeps members 0 and 1 and says why the others are unused.
    back = check(snap(t_cfg, target, "td3"), snap(s_cfg, build("td3_bc", seed=5)[1], "td3_bc"))
    reasons = {s.source: s.reason for s in back.skipped}
    assert "ensemble has 2 member(s)" in reasons["critics.qs.4.0.weight"]


def test_targets_copied_or_resynced(sources):
    s_cfg, source = sources["td3"]
    source = copy.deepcopy(source)
    with torch.no_grad():
        for p in source.critics_target.parameters():
            p.add_(0.5)  # target copies that lag the online critics
    obs, act = states(), actions_env()
    for mode in ("copy", "sync"):
        t_cfg, target = build("sac", seed=2)
        report = check(snap(s_cfg, source, "td3"), snap(t_cfg, target, "sac"), TransferOptions(targets=mode))
        apply(report, snap(s_cfg, source, "td3"), target)
        q_target = q_values(t_cfg, target, "q_target", 0, obs, act)
        expected = "q_target" if mode == "copy" else "q"
        assert torch.allclose(q_target, q_values(s_cfg, source, expected, 0, obs, act), atol=1e-4), mode
        if mode == "sync":
            assert report.names("synced") and {r.status for r in report.roles if r.role.startswith("q_target")} == {"synced"}


def test_impossible_transfer_fails_before_touching_weights(sources):
    s_cfg, source = sources["td3_bc"]
    t_cfg, target = build("sac", env="Walker2d-v5")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = check(snap(s_cfg, source, "td3_bc"), snapshot_from_module(target, algorithm="sac", env="Walker2d-v5"))
    assert not report.possible and "observation spaces differ" in report.problems[0]
    with pytest.raises(TransferError) as err:
        apply(report, snap(s_cfg, source, "td3_bc"), target)
    assert err.value.report["possible"] is False and "observation spaces differ" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_bare_state_dict_is_described_as_the_target_module(sources):
    """warm_start(state) without checkpoint metadata: roles of the target's class, exact for TD3 ↔ TD3+BC."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from mprl.transfer import Snapshot, transfer_into_learner

    s_cfg, source = sources["td3_bc"]
    t_cfg, target = build("td3", seed=2)
    learner = SimpleNamespace(module={DEFAULT_MODULE_ID: target}, config=t_cfg)
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    report = transfer_into_learner(learner, Snapshot(None, state), TransferOptions())
    assert report["possible"] and not report["left_initialised"] and not report["skipped"]
    np.testing.assert_array_equal(policy(t_cfg, target, states()), policy(s_cfg, source, states()))


# ----------------------------------------------------------------------------- algorithms, pipeline, CLI


def small_pipeline(storage: Path) -> dict:
    evaluation = {"episodes": 3, "seed": 123}
    return {
        "name": "td3bc-to-sac",
        "storage_path": str(storage),
        "videos": {"selected": False},
        "phases": [
            {
                "name": "offline", "algorithm": "td3_bc", "env": ENV,
                "dataset": {"id": "mprl/hopper/random-v0", "build": {"quality": "random", "size": 4000}},
                "budget": {"updates": 300}, "evaluation": {"interval": 300, **evaluation}, "tune": {"seeds": [0]},
            },
            {
                "name": "online", "algorithm": "sac", "env": ENV, "init_from": "offline",
                "budget": {"env_steps": 100}, "evaluation": {"interval": 100, **evaluation}, "tune": {"seeds": [0]},
            },
        ],
    }


@pytest.fixture(scope="module")
def pipeline_run(ray_local, minari_root, tmp_path_factory):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    spec = parse_pipeline(small_pipeline(tmp_path_factory.mktemp("runs")), source="td3bc-to-sac")
    lines: list[str] = []
    return spec, run_pipeline(spec, write=lines.append), lines


def test_pipeline_td3bc_to_sac_starts_from_the_transferred_skill(pipeline_run):
    """SAC, warm-started from TD3+BC: its first evaluation (same seeds) is the source's."""
    spec, result, lines = pipeline_run
    off, on = result.phases
    assert (on.algorithm, on.paradigm, on.env_steps) == ("sac", "online", 100)
    assert on.updates == 100  # a warm start has no random warm-up: one update per env step from the first
    assert on.initial_return == pytest.approx(off.evaluation_return, rel=1e-3)
    report = json.loads((Path(result.run_dir) / "online" / "transfer_report.json").read_text())
    assert report["possible"] and report["policy"] == "exact" and report["left_initialised"] == ["log_alpha"]
    assert any(l.startswith("[online] transfer:") for l in lines)


def test_sac_counts_updates_honestly_and_warm_starts(pipeline_run):
    """Built directly: env steps meet the budget exactly; updates equal the critic, actor and temperature optimisers' steps."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from algorithms.sac import SACConfig

    _, result, _ = pipeline_run
    off = result.phases[0]
    cfg = SACConfig().environment(ENV).training(
        budget_env_steps=60, env_steps_per_iteration=40, eval_episodes=3, eval_seed=123,
        train_batch_size_per_learner=64, init_checkpoint=off.checkpoint,
    )
    algo = cfg.build_algo()
    try:
        assert algo.transfer_report["policy"] == "exact"
        assert algo.initial_eval["evaluation_return"] == pytest.approx(off.evaluation_return, rel=1e-3)
        rows = [algo.train() for _ in range(3)]
        assert [r["num_env_steps_lifetime"] for r in rows] == [40, 60, 60] and rows[1]["budget_done"]
        learner = algo.learner_group._learner
        steps = {name: int(next(iter(learner.get_optimizer(DEFAULT_MODULE_ID, name).state.values()))["step"]) for name in ("critic", "actor", "alpha")}
        assert rows[-1]["num_updates_lifetime"] == steps["critic"] == steps["actor"] == steps["alpha"] == 60
    finally:
        algo.stop()


def test_phase_algorithm_raises_before_training_on_impossible_transfer(pipeline_run, ray_local):
    from algorithms.td3 import TD3Config

    _, result, _ = pipeline_run
    cfg = TD3Config().environment("Walker2d-v5").training(init_checkpoint=result.phases[0].checkpoint, eval_episodes=1)
    with pytest.raises(Exception) as err:  # RLlib wraps setup errors; ours is the cause
        cfg.build_algo()
    chain, e = [], err.value
    while e is not None:
        chain.append(e)
        e = e.__cause__ or e.__context__
    assert any(isinstance(x, TransferError) for x in chain), chain


def test_runner_stops_an_impossible_phase_before_tune(pipeline_run, tmp_path):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    _, result, _ = pipeline_run
    data = {
        "name": "to-walker", "storage_path": str(tmp_path),
        "phases": [{"name": "online", "algorithm": "sac", "env": "Walker2d-v5", "init_from": {"checkpoint": result.phases[0].checkpoint},
                    "budget": {"env_steps": 100}, "evaluation": {"interval": 100, "episodes": 1}}],
    }
    with pytest.raises(TransferError, match="observation spaces differ"):
        run_pipeline(parse_pipeline(data, source="to-walker"), write=lambda _: None)
    run_dir = next(tmp_path.glob("to-walker-*"))
    report = json.loads((run_dir / "online" / "transfer_report.json").read_text())
    assert report["possible"] is False
    assert not list((run_dir / "online").glob("SAC_*")), "no trial may start"


def test_cli_transfer_check(pipeline_run, capsys):
    from mprl.cli import main

    _, result, _ = pipeline_run
    ckpt = result.phases[0].checkpoint
    assert main(["transfer", "check", ckpt, "--to", "sac", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "exact" and report["source"]["env"] == ENV
    assert main(["transfer", "check", ckpt, "--to", "sac", "--config", "transfer_targets=sync"]) == 0
    out = capsys.readouterr().out
    assert "synced" in out and "policy: exact" in out
    assert main(["transfer", "check", ckpt, "--to", "td3", "--env", "Walker2d-v5"]) == 2
    captured = capsys.readouterr()
    assert "TRANSFER IMPOSSIBLE" in captured.out and "observation spaces differ" in captured.err


def test_optimizer_state_only_when_asked_and_exact(pipeline_run):
    from algorithms.sac import SACConfig
    from algorithms.td3 import TD3Config

    _, result, _ = pipeline_run
    ckpt = result.phases[0].checkpoint
    cases = [
        (TD3Config().environment(ENV).training(init_checkpoint=ckpt, eval_episodes=0, transfer_optimizer=True), "carried"),
        (TD3Config().environment(ENV).training(init_checkpoint=ckpt, eval_episodes=0), "not carried (not asked)"),
        (SACConfig().environment(ENV).training(init_checkpoint=ckpt, eval_episodes=0, transfer_optimizer=True), "not carried: the source and target modules differ"),
    ]
    for cfg, expected in cases:
        algo = cfg.build_algo()
        try:
            assert algo.transfer_report["optimizer"].startswith(expected), algo.transfer_report["optimizer"]
            if expected == "carried":
                learner = algo.learner_group._learner
                opt = learner.get_optimizer("default_policy", "critic")
                assert int(next(iter(opt.state.values()))["step"]) > 0  # Adam's step count came along
        finally:
            algo.stop()
