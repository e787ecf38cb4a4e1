"""Deployment contexts (mprl.envs): every dynamics change reaches the MuJoCo model and the
simulation, observation noise and action delay act as written, ids are canonical and
self-describing, the spec validates and records variants, `mprl envs` lists them. Real
MuJoCo, no mocks, no Ray."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mprl.envs import (
    NAMED_VARIANTS,
    ActionDelay,
    canonical_variant,
    describe_env,
    env_context,
    env_family,
    env_slug,
    make_env,
    parse_variant_id,
    registered_env_id,
    variant_id,
    variant_problems,
)
from mprl.evaluation import evaluate_policy

REAL = {"id": "Hopper-v5", "dynamics": {"body_mass": {"torso": 1.3}, "friction": 0.8, "actuator_gain": 0.9},
        "observation_noise": 0.01, "action_delay": 1}


def _model(env_id: str):
    return make_env(env_id).unwrapped.model


def _vid(**raw) -> str:
    return variant_id(canonical_variant({"id": "Hopper-v5", **raw}))


def test_masses_and_inertia_read_back_from_the_model():
    base, heavy = _model("Hopper-v5"), _model(_vid(dynamics={"body_mass": {"torso": 1.3, "foot": 0.5}}))
    names = [base.body(i).name for i in range(base.nbody)]
    for i, name in enumerate(names):
        scale = {"torso": 1.3, "foot": 0.5}.get(name, 1.0)
        assert heavy.body_mass[i] == pytest.approx(base.body_mass[i] * scale)
        np.testing.assert_allclose(heavy.body_inertia[i], base.body_inertia[i] * scale)
    all_heavy = _model("mprl/Hopper-heavy-v0")
    np.testing.assert_allclose(all_heavy.body_mass, base.body_mass * 1.5)
    assert all_heavy.body_subtreemass[0] == pytest.approx(base.body_subtreemass[0] * 1.5)  # derived constants follow


def test_friction_gain_damping_and_gravity_reach_the_model():
    base = _model("Hopper-v5")
    m = _model(_vid(dynamics={"friction": {"floor": 0.5}, "actuator_gain": {"thigh_joint": 0.7}, "joint_damping": 2.0, "gravity": 0.5}))
    assert m.geom_friction[0, 0] == pytest.approx(base.geom_friction[0, 0] * 0.5)  # the floor
    np.testing.assert_allclose(m.geom_friction[1:, 0], base.geom_friction[1:, 0])
    np.testing.assert_allclose(m.actuator_gainprm[:, 0], base.actuator_gainprm[:, 0] * [0.7, 1.0, 1.0])  # Hopper's actuators are unnamed: by joint
    np.testing.assert_allclose(m.dof_damping, base.dof_damping * 2.0)
    np.testing.assert_allclose(m.opt.gravity, base.opt.gravity * 0.5)


def _rollout(env: gym.Env, actions: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    obs, _ = env.reset(seed=seed)
    out, ret = [obs], 0.0
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        ret += r
        if term or trunc:
            break
    return np.array(out), ret


@pytest.mark.parametrize("dynamics", [{"body_mass": {"torso": 1.3}}, {"friction": 0.3}, {"actuator_gain": 0.5}, {"joint_damping": 3.0}, {"gravity": 0.8}],
                         ids=lambda d: next(iter(d)))
def test_each_dynamics_change_changes_the_simulation(dynamics):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 3))
    a, _ = _rollout(make_env("Hopper-v5"), actions)
    b, _ = _rollout(make_env(_vid(dynamics=dynamics)), actions)
    n = min(len(a), len(b))
    assert not np.allclose(a[:n], b[:n], atol=1e-6)
    np.testing.assert_array_equal(a[0], b[0])  # same reset state: the change is in the dynamics


def test_observation_noise_is_seeded_and_of_the_given_size():
    actions = np.zeros((50, 3))
    clean, _ = _rollout(make_env("Hopper-v5"), actions, seed=3)
    env = make_env(_vid(observation_noise=0.05))
    n1, _ = _rollout(env, actions, seed=3)
    n2, _ = _rollout(env, actions, seed=3)
    np.testing.assert_array_equal(n1, n2)  # reproducible with the reset seed (deterministic evaluation)
    noise = (n1 - clean[: len(n1)]).ravel()  # zero actions: the state does not depend on the noise
    assert 0.04 < noise.std() < 0.06 and abs(noise.mean()) < 0.01


def test_action_delay_applies_the_action_chosen_k_steps_earlier():
    env = make_env(_vid(action_delay=2))
    delay = env
    while not isinstance(delay, ActionDelay):
        delay = delay.env
    applied = []
    inner_step = delay.env.step
    delay.env.step = lambda a: (applied.append(np.array(a)), inner_step(a))[1]
    env.reset(seed=0)
    chosen = [np.full(3, v) for v in (0.1, 0.2, 0.3, 0.4)]
    for a in chosen:
        env.step(a)
    np.testing.assert_array_equal(np.array(applied), [np.zeros(3), np.zeros(3), chosen[0], chosen[1]])


def test_returns_differ_in_the_real_context():
    """The same fixed policy scores differently in simulation and in the named 'real' Hopper."""
    def policy(obs):
        return np.clip(np.array([0.5 * np.sin(obs[1] * 5), -0.3, 0.2 * obs[0]]), -1, 1)

    sim = evaluate_policy(policy, "Hopper-v5", episodes=3, seed=0)
    real = evaluate_policy(policy, "mprl/Hopper-real-v0", episodes=3, seed=0)
    again = evaluate_policy(policy, "mprl/Hopper-real-v0", episodes=3, seed=0)
    assert real.returns == again.returns  # deterministic with seeds, noise included
    assert abs(sim.mean - real.mean) > 1.0


def test_ids_are_canonical_and_self_describing():
    vid = _vid(action_delay=1, dynamics={"friction": 0.8, "body_mass": {"torso": 1.30}})
    assert vid == "mprl/Hopper-v5--body_mass.torso-1.3--friction-0.8--action_delay-1-v0"
    assert vid == _vid(dynamics={"body_mass": {"torso": 1.3}, "friction": 0.8}, action_delay=1, observation_noise=0)  # defaults dropped
    assert parse_variant_id(vid) == canonical_variant({"id": "Hopper-v5", "dynamics": {"body_mass": {"torso": 1.3}, "friction": 0.8}, "action_delay": 1})
    assert variant_id(canonical_variant(REAL)) == "mprl/Hopper-real-v0"  # a named variant's changes get its name
    assert variant_id(canonical_variant({"id": "Hopper-v5", "dynamics": {"friction": 1.0}})) == "Hopper-v5"  # no change, no variant
    # a named variant as the base: its changes, then these
    assert canonical_variant({"id": "mprl/Hopper-real-v0", "action_delay": 3})["action_delay"] == 3
    assert env_family(vid) == env_family("mprl/Hopper-real-v0") == "hopper"  # D4RL reference scores of the base
    assert env_slug("mprl/Hopper-real-v0") == "hopper-real" and env_slug(vid).startswith("hopper-ctx")
    assert registered_env_id(vid) == vid and gym.spec(vid).max_episode_steps == 1000
    assert describe_env("mprl/Hopper-real-v0") == ("Hopper-v5 with actuator gain ×0.9, torso mass ×1.3, friction ×0.8, "
                                                    "observation noise σ 0.01, action delay 1 step")
    ctx = env_context("mprl/Hopper-real-v0")
    assert ctx["variant"] and ctx["base"] == "Hopper-v5" and ctx["stands_for"]
    assert not env_context("Hopper-v5")["variant"]


def test_a_fresh_process_makes_a_variant_from_its_id_alone():
    import subprocess
    import sys

    vid = _vid(dynamics={"body_mass": {"torso": 2.0}})
    code = f"from mprl.envs import make_env; print(make_env({vid!r}).unwrapped.model.body_mass[1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert float(out) == pytest.approx(_model("Hopper-v5").body_mass[1] * 2.0)


def test_variant_problems_name_the_field_and_the_fix():
    problems = {".".join(map(str, loc)): msg for loc, msg, _ in variant_problems(
        {"id": "Hopper-v5", "dynamics": {"body_mass": {"torsoo": 1.2}, "frict": 0.5, "gravity": -1}, "action_delay": 1.5, "noise": 0.1})}
    assert "did you mean 'torso'" in problems["dynamics.body_mass.torsoo"]
    assert "did you mean 'friction'" in problems["dynamics.frict"]
    assert "> 0" in problems["dynamics.gravity"]
    assert "integer" in problems["action_delay"]
    assert "observation_noise" in problems["noise"]
    assert "not one" in variant_problems({"id": "Pendulum-v1", "dynamics": {"body_mass": 2.0}})[0][1]  # dynamics need MuJoCo
    assert variant_problems({"id": "Pendulum-v1", "observation_noise": 0.1, "action_delay": 2}) == []  # noise and delay do not


def test_spec_accepts_and_records_variants():
    from mprl.errors import SpecError
    from mprl.spec import parse_pipeline

    data = {"name": "s2r", "phases": [
        {"name": "sim", "algorithm": "td3", "env": "Hopper-v5", "budget": {"env_steps": 1000}, "config": {"learning_starts": 100, "random_steps": 100}},
        {"name": "real", "algorithm": "sac", "init_from": "sim", "budget": {"env_steps": 500},
         "env": {"id": "Hopper-v5", "dynamics": {"body_mass": {"torso": 1.3}}, "action_delay": 1}},
        {"name": "named", "algorithm": "ppo", "env": "mprl/Hopper-real-v0", "budget": {"env_steps": 500}}]}
    spec = parse_pipeline(data)
    assert [p.env for p in spec.phases] == ["Hopper-v5", "mprl/Hopper-v5--body_mass.torso-1.3--action_delay-1-v0", "mprl/Hopper-real-v0"]
    assert spec.phases[1].env_context["changes"] == {"dynamics": {"body_mass": {"torso": 1.3}}, "action_delay": 1}
    assert parse_pipeline(spec.to_dict()).phases[1].env == spec.phases[1].env  # pipeline.json round trip (resume)
    data["phases"][1]["env"] = {"id": "Hopper-v5", "dynamics": {"body_mass": {"torsoo": 1.3}}}
    with pytest.raises(SpecError) as e:
        parse_pipeline(data)
    assert "phases[1].env.dynamics.body_mass.torsoo: Hopper-v5 has no body named 'torsoo'; did you mean 'torso'?" in str(e.value)


def test_mprl_envs_lists_named_variants(capsys):
    from mprl.cli import main

    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in NAMED_VARIANTS:
        assert env_id in out
    assert "torso mass ×1.3" in out
    assert main(["envs", "mprl/Hopper-v5--friction-0.5-v0"]) == 0
    assert "friction ×0.5" in capsys.readouterr().out


def test_dataset_built_on_a_variant_records_its_context(minari_root):
    import minari

    from mprl.datasets import build_dataset, default_dataset_id

    ds_id = build_dataset("mprl/Hopper-real-v0", "random", size=300, seed=0, progress=None, overwrite=True)
    assert ds_id == default_dataset_id("mprl/Hopper-real-v0", "random") == "mprl/hopper-real/random-v0"
    ds = minari.load_dataset(ds_id)
    assert ds.env_spec.id == "mprl/Hopper-real-v0" and ds.env_spec.kwargs["variant"]["action_delay"] == 1
    env = ds.recover_environment()
    assert env.unwrapped.model.body_mass[1] == pytest.approx(_model("Hopper-v5").body_mass[1] * 1.3)
