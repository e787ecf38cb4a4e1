"""The interventions of offline-to-online fine-tuning (Li, Ni, Sun & Bacon), as settings every
off-policy algorithm honours (algorithms/common): each changes what it should, on the real
learner, and each misuse is refused with one message.

    offline_replay     none → online rows only; symmetric → offline_replay_ratio of each batch from D
    warmup_steps       the first N env steps of a warm-started phase: frozen π0's own actions, no update
    regularize_to_init w_t · E‖μ(s) − μ0(s)‖² (unit actions) in the actor loss, w_t = w · max(0, 1 − t/T)
    reset              actor / critics (and targets) back to the trial's seeded initial weights
    bc_cool, cql_alpha_cool   the offline regulariser's weight · max(end, 1 − t/T) over online env steps
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.common.sampler import Sampler
from algorithms.common.schedules import decayed
from algorithms.cql.cql import CQLSettings
from algorithms.sac.sac import SACSettings
from algorithms.td3.td3 import TD3Settings
from algorithms.td3_bc.td3_bc import TD3BCSettings

ENV = "InvertedPendulum-v5"
SMALL = {"hidden": [32, 32], "actor_lr": 1e-3, "critic_lr": 1e-3}


def namespace(settings, **phase) -> SimpleNamespace:
    """A learner config as the RLlib config carries it: the settings plus the phase's attributes."""
    return SimpleNamespace(**settings.model_dump(), **{"paradigm": "hybrid", "init_checkpoint": "ck", "seed": 0, "budget_env_steps": None, **phase})


def online_sampler(n: int = 64, obs_dim: int = 3, act_dim: int = 2) -> Sampler:
    s = Sampler("online", obs_dim, act_dim, 1000, torch.device("cpu"), seed=0)
    g = np.random.default_rng(0)
    s.add({"obs": g.normal(size=(n, obs_dim)).astype(np.float32), "next_obs": g.normal(size=(n, obs_dim)).astype(np.float32),
           "actions": g.uniform(-2, 2, size=(n, act_dim)).astype(np.float32), "rewards": g.normal(size=n).astype(np.float32),
           "terminals": np.zeros(n, np.float32), "truncations": np.zeros(n, np.float32)})
    return s


def tiny_td3(settings: TD3Settings, opt: str = "adam", lr: float = 1e-3):
    from algorithms.td3.td3_learner import TD3Updates
    from algorithms.td3.td3_module import TD3RLModule

    torch.manual_seed(0)
    m = TD3RLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-2.0, 2.0, (2,)), model_config={"hidden": [8, 8]})
    c = namespace(settings)
    make = torch.optim.SGD if opt == "sgd" else torch.optim.Adam
    opts = {k: make(net.parameters(), lr=lr) for k, (net, _) in TD3Updates.optimizer_groups(m, c).items()}
    return TD3Updates(m, c, opts, online_sampler(), torch.device("cpu"))


# ------------------------------------------------------------------ regularize_to_init by hand


def test_regularize_to_init_term_and_its_gradient_by_hand():
    """E‖μ(s) − μ0(s)‖² in unit actions (the box is [−2, 2]: unit = a / 2), and one SGD step of the
    actor on loss + w·term, through the base's Updates.step (TD3's own loss passes there too)."""
    u = tiny_td3(TD3Settings(regularize_to_init=2.0, policy_delay=1), opt="sgd", lr=0.1)
    u.on_warm_start()  # μ0 = the actor now
    u.batch = {"obs": torch.randn(16, 3, generator=torch.Generator().manual_seed(1))}
    assert u.init_reg_term().item() == 0.0  # μ = μ0 right after the warm start
    with torch.no_grad():
        for p in u.m.actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = u.batch["obs"]
    a, a0 = u.m.actor(obs), u.init_actor(obs)
    by_hand = ((a / 2 - a0 / 2) ** 2).sum(-1).mean()
    assert u.init_reg_term().item() == pytest.approx(by_hand.item(), rel=1e-6) and by_hand.item() > 1e-4

    # The actor's step on its loss plus 2·term, and nothing of it on the critics.
    ref = copy.deepcopy(u.m)
    ref_loss = -ref.critics.q1(obs, ref.actor(obs)).mean() + 2.0 * ((ref.actor(obs) / 2 - u.init_actor(obs) / 2) ** 2).sum(-1).mean()
    grads = torch.autograd.grad(ref_loss, list(ref.actor.parameters()))
    expected = [p.detach() - 0.1 * g for p, g in zip(ref.actor.parameters(), grads)]
    u.m.critics.requires_grad_(False)
    u.step("actor", -u.m.critics.q1(obs, u.m.actor(obs)).mean())
    u.m.critics.requires_grad_(True)
    for p, e in zip(u.m.actor.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)

    # TD3's updater steps the actor through the base too: the run reports the term and its weight.
    out = u.run(4)
    assert out["init_reg"] > 0 and out["init_reg_weight"] == 2.0


def test_regularize_to_init_decays_linearly_to_zero_over_env_steps():
    u = tiny_td3(TD3Settings(regularize_to_init=2.0, regularize_to_init_steps=100, policy_delay=1))
    u.on_warm_start()
    weights = []
    for t in (0, 50, 75, 100, 400):
        u.env_steps = t
        weights.append(u.init_reg_weight())
    assert weights == [2.0, 1.0, 0.5, 0.0, 0.0]
    with torch.no_grad():
        for p in u.m.actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    u.env_steps = 100  # weight 0: no term is added (and none reported)
    assert "init_reg" not in u.run(2)
    assert tiny_td3(TD3Settings(regularize_to_init=0.5)).init_reg_weight() == 0.5  # no steps: constant


def test_regularize_to_init_reads_the_mean_action_of_a_gaussian_actor():
    """SAC's actor: μ(s) is its deterministic action tanh(mean); the term enters SAC's actor step."""
    from algorithms.sac.sac_learner import SACUpdates
    from algorithms.sac.sac_module import SACRLModule

    torch.manual_seed(0)
    m = SACRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-2.0, 2.0, (2,)), model_config={"hidden": [8, 8]})
    c = namespace(SACSettings(regularize_to_init=1.0))
    opts = {k: torch.optim.Adam(net.parameters() if isinstance(net, torch.nn.Module) else net, lr=1e-2) for k, (net, _) in SACUpdates.optimizer_groups(m, c).items()}
    u = SACUpdates(m, c, opts, online_sampler(), torch.device("cpu"))
    u.on_warm_start()
    first = u.run(1)
    assert first["init_reg"] == 0.0  # the first actor step starts at μ0
    later = u.run(20)
    u.batch = {"obs": torch.randn(8, 3)}
    mu, _ = m.actor.dist_params(u.batch["obs"])
    mu0, _ = u.init_actor.dist_params(u.batch["obs"])
    assert u.init_reg_term().item() == pytest.approx(((torch.tanh(mu) - torch.tanh(mu0)) ** 2).sum(-1).mean().item(), rel=1e-5)
    assert later["init_reg"] > 0


# ------------------------------------------------------------------ the offline regulariser kept online


def test_offline_regulariser_decays_over_online_env_steps():
    from algorithms.cql.cql_learner import CQLUpdates
    from algorithms.spot.spot_learner import cooled_lambda
    from algorithms.td3_bc.td3_bc import TD3BCUpdates

    bc = SimpleNamespace(env_steps=0, config=namespace(TD3BCSettings(bc_cool=True, bc_end=0.2, bc_cool_steps=100)))
    got = []
    for t in (0, 50, 79, 90, 1000):
        bc.env_steps = t
        got.append(TD3BCUpdates.bc_weight(bc))
    assert got == pytest.approx([1.0, 0.5, 0.21, 0.2, 0.2])
    bc.config.paradigm = "offline"
    assert TD3BCUpdates.bc_weight(bc) == 1.0  # offline: the paper's loss
    budget = SimpleNamespace(env_steps=250, config=namespace(TD3BCSettings(bc_cool=True), budget_env_steps=1000))
    assert TD3BCUpdates.bc_weight(budget) == 0.75  # T defaults to the phase's env-step budget
    assert TD3BCUpdates.bc_weight(SimpleNamespace(env_steps=500, config=namespace(TD3BCSettings()))) == 1.0  # bc_cool off: kept

    cql = SimpleNamespace(env_steps=0, config=namespace(CQLSettings(cql_alpha_online=4.0, cql_alpha_cool=True, cql_alpha_cool_steps=200)))
    got = []
    for t in (0, 50, 200, 300):
        cql.env_steps = t
        got.append(CQLUpdates.current_cql_alpha(cql))
    assert got == [4.0, 3.0, 0.0, 0.0]
    assert CQLUpdates.current_cql_alpha(SimpleNamespace(env_steps=100, config=namespace(CQLSettings(cql_alpha_online=4.0)))) == 4.0
    assert CQLUpdates.current_cql_alpha(SimpleNamespace(env_steps=100, config=namespace(CQLSettings(cql_alpha=7.0), paradigm="offline"))) == 7.0
    # SPOT's λ cooling is the same rule (algorithms.common.schedules.decayed)
    assert cooled_lambda(0.1, 0.2, 50, 100) == pytest.approx(0.05) == decayed(0.1, 50, 100, 0.2)


def test_td3_bc_bc_weight_scales_the_bc_term_in_the_loss():
    from algorithms.common.td3_core import td3_bc_actor_loss
    from algorithms.td3.td3_module import TD3RLModule
    from algorithms.td3_bc.td3_bc import TD3BCUpdates

    torch.manual_seed(0)
    m = TD3RLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Box(-1.0, 1.0, (2,)), model_config={"hidden": [8, 8]})
    obs, act = torch.randn(32, 3), torch.rand(32, 2) * 2 - 1
    pi = m.actor(obs)
    q = m.critics.q1(obs, pi)
    lam = 2.5 / q.abs().mean()
    mse = ((pi - act) ** 2).mean()
    for w in (1.0, 0.5, 0.0):
        assert td3_bc_actor_loss(m, obs, act, 2.5, w).item() == pytest.approx((-lam * q.mean() + w * mse).item(), rel=1e-6)
    c = namespace(TD3BCSettings(bc_cool=True, bc_cool_steps=100, policy_delay=1))
    opts = {k: torch.optim.Adam(net.parameters(), lr=1e-3) for k, (net, _) in TD3BCUpdates.optimizer_groups(m, c).items()}
    u = TD3BCUpdates(m, c, opts, online_sampler(act_dim=2), torch.device("cpu"))
    u.env_steps = 25
    assert u.run(2)["bc_weight"] == 0.75 and u.updater.hp.bc_weight == 0.75


# ------------------------------------------------------------------ refusals


def test_settings_refusals_read_well():
    def msgs(values, paradigm="hybrid", cls=SACSettings):
        return " | ".join(m for _, m, _ in cls.problems(values, paradigm))

    assert "offline_replay 'balanced' needs a density-ratio network that this algorithm does not train; the algorithms with balanced replay are: off2on, opt, opt_iql, opt_spot; or use none or symmetric" in msgs({"offline_replay": "balanced"})
    assert "replay: shared and offline_replay: symmetric disagree (offline_replay symmetric is replay mixed); write only one of them" in msgs({"offline_replay": "symmetric", "replay": "shared"})
    assert msgs({"offline_replay": "symmetric", "replay": "mixed"}) == ""  # the same thing twice is fine
    assert "offline_ratio 0.3 and offline_replay_ratio 0.5 disagree" in msgs({"offline_replay": "symmetric", "offline_ratio": 0.3})
    assert "'offline_replay' only applies to hybrid phases; this phase is online: it replays the dataset while fine-tuning, and only a hybrid phase has both: make it a hybrid phase (`paradigm: hybrid` with `dataset: ID`) or remove it" in msgs({"offline_replay": "none"}, "online")
    for key, value in (("warmup_steps", 100), ("regularize_to_init", 1.0), ("reset", ["critics"]), ("cql_alpha_cool", True)):
        assert f"{key!r} only applies to online and hybrid phases; this phase is offline: remove it" in msgs({key: value}, "offline", CQLSettings)
    assert "regularize_to_init_steps=10 decays regularize_to_init, which is 0 (off)" in msgs({"regularize_to_init_steps": 10})
    assert "reset lists a network twice" in msgs({"reset": ["actor", "actor"]})
    assert "warmup_steps collects with the warm-started π0, but reset: [actor] replaces it" in msgs({"warmup_steps": 10, "reset": ["actor"]})
    fresh = SACSettings(warmup_steps=10, regularize_to_init=1.0, reset=["critics"], offline_replay="symmetric").phase_problems("hybrid", "env_steps", 10_000, False)
    assert [k for k, _ in fresh] == ["warmup_steps", "regularize_to_init", "reset"]  # offline_replay needs no warm start
    assert "'reset' acts on the warm-started networks (π0 and its critics), but this phase starts from fresh ones: add `init_from:`" in dict(fresh)["reset"]
    assert SACSettings(warmup_steps=10_000).phase_problems("online", "env_steps", 10_000, True) == [
        ("warmup_steps", "warmup_steps=10,000 is not below the budget of 10,000 env steps: the phase would make no gradient update; lower warmup_steps or raise the budget")]


def test_spec_refuses_interventions_where_they_mean_nothing():
    from mprl.errors import SpecError
    from mprl.spec import parse_pipeline

    def phases(second_config, init_from=True, paradigm=None):
        second = {"name": "finetune", "algorithm": "td3", "env": "Hopper-v5", "budget": {"env_steps": 20_000}, "config": second_config}
        if init_from:
            second["init_from"] = "pretrain"
        if paradigm:
            second.update(paradigm=paradigm, dataset="mprl/hopper/random-v0")
        first = {"name": "pretrain", "algorithm": "td3_bc", "env": "Hopper-v5", "dataset": "mprl/hopper/random-v0", "budget": {"updates": 5000}}
        return {"name": "regimes", "phases": [first, second]}

    def problems(data):
        with pytest.raises(SpecError) as info:
            parse_pipeline(data, "pipe.yaml")
        return str(info.value)

    assert "phases[1].config.offline_replay: 'offline_replay' only applies to hybrid phases; this phase is online" in problems(phases({"offline_replay": "symmetric"}))
    assert "phases[1].config.warmup_steps: 'warmup_steps' acts on the warm-started networks" in problems(phases({"warmup_steps": 1000, "learning_starts": 0}, init_from=False))
    ok = parse_pipeline(phases({"offline_replay": "symmetric", "offline_replay_ratio": 0.25, "warmup_steps": 1000, "regularize_to_init": 0.1,
                                "regularize_to_init_steps": 5000, "reset": ["critics"]}, paradigm="hybrid"))
    assert ok.phases[1].config["offline_replay"] == "symmetric"
    # TD3+BC keeps its BC term while fine-tuning (a hybrid phase), with a decay
    bc = phases({"bc_cool": True, "bc_cool_steps": 10_000, "warmup_steps": 500}, paradigm="hybrid")
    bc["phases"][1]["algorithm"] = "td3_bc"
    assert parse_pipeline(bc).phases[1].config["bc_cool"] is True


def test_runtime_config_refuses_interventions_without_a_warm_start():
    from algorithms.td3.td3 import TD3Config

    with pytest.raises(ValueError, match="'warmup_steps' acts on the warm-started networks"):
        TD3Config().environment(ENV).training(paradigm="online", warmup_steps=10).validate()
    with pytest.raises(ValueError, match="only apply to warm-started online and hybrid phases; this phase is offline"):
        TD3Config().environment(ENV).training(paradigm="offline", dataset="x", reset=["actor"]).validate()


# ------------------------------------------------------------------ on the real learner (local Ray)


@pytest.fixture(scope="module")
def pi0(ray_local, minari_root, mixed_data, tmp_path_factory):
    """π0: a small TD3+BC checkpoint on the InvertedPendulum mixed data."""
    from algorithms.common.checkpoints import read_module_state
    from algorithms.td3_bc import TD3BCConfig

    algo = TD3BCConfig().environment(ENV).training(dataset=mixed_data, dataset_root=str(minari_root), updates_per_iteration=300, eval_episodes=0, **SMALL).build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path_factory.mktemp("pi0") / "checkpoint"))
    finally:
        algo.stop()
    return SimpleNamespace(path=path, state=read_module_state(path), dataset=mixed_data, root=str(minari_root))


def td3(pi0, seed: int = 0, **settings):
    from algorithms.td3.td3 import TD3Config

    base = {"init_checkpoint": pi0.path, "eval_episodes": 0, "rollout_fragment_length": 50, "env_steps_per_iteration": 100, **SMALL}
    return TD3Config().environment(ENV).debugging(seed=seed).training(**{**base, **settings})


def on_learner(algo, fn):
    return next(iter(algo.learner_group.foreach_learner(fn))).get()


def test_warmup_collects_with_the_frozen_pi0_and_makes_no_update(pi0):
    """warmup_steps 120 with fragments of 50: the first 100 env steps make no update and leave π0 as
    it was; the replay holds π0's own actions (exploration noise 0); the next 100 steps make 80
    updates (the 20 warm-up steps of the fragment that crosses 120 buy none)."""
    algo = td3(pi0, paradigm="online", warmup_steps=120, exploration_noise=0.0, budget_env_steps=200,
               regularize_to_init=0.5, regularize_to_init_steps=400).build_algo()
    try:
        first = algo.train()
        assert (first["num_env_steps_lifetime"], first["num_updates_lifetime"], first["replay_size"]) == (100, 0, 100)
        assert first["warmup_done"] is False and first["warmup_env_steps"] == 100
        actor = on_learner(algo, lambda lr: {k: v.clone() for k, v in lr.module["default_policy"].state_dict().items() if k.startswith("actor.")})
        for k, v in actor.items():
            assert torch.equal(v, torch.as_tensor(pi0.state[k])), k  # frozen
        def pi0_actions(lr):
            rows, module = lr.updates.sampler.online.data, lr.module["default_policy"]
            return rows["actions"][:100].clone(), module.act(rows["obs"][:100]).detach()

        actions, pi = on_learner(algo, pi0_actions)
        torch.testing.assert_close(actions, pi)  # π0's own actions, no random ones
        assert actions.abs().max() > 0

        second = algo.train()
        assert (second["num_env_steps_lifetime"], second["num_updates_lifetime"], second["replay_size"]) == (200, 80, 200)
        assert second["warmup_done"] is True and second["warmup_env_steps"] == 120
        stats = second["learner_stats"]
        # fragments end at 150 and 200 env steps: w = 0.5·(1 − 150/400), 0.5·(1 − 200/400)
        assert stats["init_reg_weight"] == pytest.approx((0.3125 + 0.25) / 2)
        assert stats["init_reg"] >= 0
    finally:
        algo.stop()


@pytest.mark.parametrize("which", [["actor"], ["critics"]])
def test_reset_reinitialises_the_named_networks_from_the_seed(pi0, which):
    """reset: the named networks (and targets) get the weights a fresh phase of the same seed starts
    with; the others keep the checkpoint's; the env runners act with the reset actor."""
    algo = td3(pi0, paradigm="online", reset=which, seed=3, budget_env_steps=100).build_algo()
    fresh = td3(pi0, paradigm="online", init_checkpoint=None, seed=3, budget_env_steps=100, learning_starts=0, random_steps=0).build_algo()
    try:
        state = on_learner(algo, lambda lr: {k: v.clone() for k, v in lr.module["default_policy"].state_dict().items()})
        fresh_state = on_learner(fresh, lambda lr: {k: v.clone() for k, v in lr.module["default_policy"].state_dict().items()})
        runner = {k: v.clone() for k, v in algo.env_runner.module.actor.state_dict().items()}
        prefixes = ("actor.", "actor_target.") if which == ["actor"] else ("critics.", "critics_target.")
        kept = ("critics.", "critics_target.") if which == ["actor"] else ("actor.", "actor_target.")
        reset_keys = [k for k in state if k.startswith(prefixes)]
        kept_keys = [k for k in state if k.startswith(kept)]
        assert reset_keys and kept_keys
        for k in reset_keys:
            assert torch.equal(state[k], fresh_state[k]), k
            if not k.endswith(("action_scale", "action_bias")):  # the action box's buffers are the same in both
                assert not torch.equal(state[k], torch.as_tensor(pi0.state[k])), k
        for k in kept_keys:
            assert torch.equal(state[k], torch.as_tensor(pi0.state[k])), k
        for k, v in runner.items():
            assert torch.equal(v, state[f"actor.{k}"]), k
        result = algo.train()
        assert result[f"reset_{which[0]}"] is True
    finally:
        algo.stop()
        fresh.stop()


@pytest.mark.parametrize(("offline_replay", "ratio", "expected"), [("none", 0.5, 0.0), ("symmetric", 0.25, 0.25)])
def test_offline_replay_sets_the_dataset_fraction_of_each_batch(pi0, offline_replay, ratio, expected):
    """The fraction of sampled rows that are dataset rows, measured over 50 batches of the real
    learner's sampler after 100 online steps, rows told apart by (s, a) (TD3's own default,
    `shared`, would be ≈ 0.995)."""
    algo = td3(pi0, paradigm="hybrid", dataset=pi0.dataset, dataset_root=pi0.root, offline_replay=offline_replay,
               offline_replay_ratio=ratio, budget_env_steps=100).build_algo()
    try:
        algo.train()

        def measure(lr):  # a row is a dataset row if its (s, a) is one (resets may share states with the dataset's)
            s = lr.updates.sampler
            def key(b):
                return torch.cat([b["obs"], b["actions"]], -1).cpu().numpy().tolist()

            dataset = {tuple(r) for r in key(s.offline.data)}
            rows = [tuple(r) for b in s.batches(50, 64) for r in key(b)]
            return s.mode, sum(r in dataset for r in rows) / len(rows)

        mode, fraction = on_learner(algo, measure)
    finally:
        algo.stop()
    assert mode == {"none": "online", "symmetric": "mixed"}[offline_replay]
    assert fraction == expected
