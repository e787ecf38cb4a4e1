"""Environments: construction with readable errors, env families, D4RL reference scores and
deployment contexts (variants with changed dynamics, observation noise and action delay)."""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from mprl.errors import MprlError

# D4RL reference returns (random policy, expert policy) by environment family
# (Fu et al. 2020, d4rl/infos.py). Normalised score = 100 * (R - random) / (expert - random).
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}

_VERSION_RE = re.compile(r"-v\d+$")


def env_family(env_id: str) -> str:
    """`Hopper-v5` → `hopper`; `ns/InvertedPendulum-v4` → `invertedpendulum`.

    Lower case, with the namespace (anything up to the last `/`), a `module:` prefix and the
    `-vN` version stripped.
    """
    variant = variant_of(env_id)
    if variant is not None:  # a deployment context belongs to its base env's family
        env_id = variant["id"]
    name = env_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    return _VERSION_RE.sub("", name).lower()


def reference_scores(env_id: str) -> tuple[float, float] | None:
    """D4RL (random, expert) reference returns for the env's family, or None if D4RL has none."""
    return REFERENCE_SCORES.get(env_family(env_id))


def normalized_score(
    ret, env_id: str | None = None, refs: tuple[float, float] | None = None
) -> float | None:
    """100 × (R − random) / (expert − random).

    `refs` (random, expert) wins over the D4RL references looked up from `env_id`; returns None
    when neither gives references (or they are degenerate). `ret` may be a number or an array.
    """
    if refs is None and env_id is not None:
        refs = reference_scores(env_id)
    if refs is None or refs[0] is None or refs[1] is None:
        return None
    lo, hi = float(refs[0]), float(refs[1])
    if hi == lo:
        return None
    score = 100.0 * (np.asarray(ret, dtype=np.float64) - lo) / (hi - lo)
    return float(score) if score.ndim == 0 else score


def registered_env_ids() -> list[str]:
    return sorted(gym.registry.keys())


def _unknown_env(env_id: str) -> MprlError:
    ids = registered_env_ids()
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.6)
    if not close:  # match on the family too, so `hopper` or `Hopper-v9` finds `Hopper-v5`
        fam = env_family(env_id)
        close = [i for i in ids if env_family(i) == fam][-3:]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return MprlError(
        f"Unknown environment '{env_id}'.{hint} "
        "Environment ids are Gymnasium ids such as 'Hopper-v5' (see gymnasium.registry)."
    )


def latest_env_id(family: str) -> str | None:
    """The newest registered, un-namespaced env id of a family: `hopper` → `Hopper-v5`."""
    best: tuple[int, str] | None = None
    for env_id in gym.registry:
        if "/" in env_id or env_family(env_id) != family:
            continue
        m = re.search(r"-v(\d+)$", env_id)
        version = int(m.group(1)) if m else -1
        if best is None or version > best[0]:
            best = (version, env_id)
    return best[1] if best else None


def make_env(env_id: str, **kwargs) -> gym.Env:
    """`gymnasium.make` with a readable `MprlError` (and a did-you-mean) for unknown ids; variant
    ids (deployment contexts) are registered on first use."""
    if ":" not in env_id and env_id not in gym.registry and not ensure_registered(env_id):
        raise _unknown_env(env_id)
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise MprlError(f"Environment '{env_id}' needs a package that is not installed: {e}") from e
    except (gym.error.NameNotFound, gym.error.VersionNotFound, gym.error.NamespaceNotFound,
            gym.error.UnregisteredEnv, ModuleNotFoundError) as e:
        raise _unknown_env(env_id) from e


def registered_env_id(env_id: str) -> str:
    """`env_id` if it is a registered Gymnasium id (mprl's variants included), else MprlError.

    For ids that come from outside (HTTP requests): a `module:Name` id would make
    `gymnasium.make` import a module the caller chose, so such ids are refused, never made.
    """
    if ":" in env_id:
        raise MprlError(f"Environment '{env_id}': ids with a 'module:' prefix are not accepted here (they import a module). "
                        "Use a registered id such as 'Hopper-v5'.")
    if env_id not in gym.registry and not ensure_registered(env_id):
        raise _unknown_env(env_id)
    return env_id


# --------------------------------------------------------------------------- deployment contexts
#
# A deployment context (a *variant*) is a Gymnasium environment with changed dynamics,
# observation noise and/or action delay — "the real system" of a sim-to-real pipeline. A
# variant is always named by one string, so it travels through RLlib configs, checkpoints,
# the lineage, Serve and videos like any env id:
# - named variants (`NAMED_VARIANTS`, listed by `mprl envs`) are registered Gymnasium ids
#   such as `mprl/Hopper-real-v0`, registered when this module is imported;
# - any other variant gets a canonical, self-describing id, e.g.
#   `mprl/Hopper-v5--action_delay-1--body_mass.torso-1.3--friction-0.8-v0`, which any process
#   decodes and registers on first use (`ensure_registered`), so no registry has to travel.
# Dynamics are multipliers of the compiled MuJoCo model's values, applied once when the env is
# made (a reset does not recompile the model): `body_mass` (mass and inertia together),
# `friction` (sliding friction of geoms), `actuator_gain` (force per unit of control),
# `joint_damping`, `gravity`. Each is a number (every element) or a mapping of names to numbers
# (bodies; geoms; actuators or the joints they drive; joints).

DYNAMICS: dict[str, str] = {
    "body_mass": "mass and inertia of bodies (all, or {body: ×})",
    "friction": "sliding friction of geoms (all, or {geom: ×})",
    "actuator_gain": "actuator force per unit of control (all, or {actuator or joint: ×})",
    "joint_damping": "joint damping (all, or {joint: ×})",
    "gravity": "gravity (a number)",
}
_ELEMENT = {"body_mass": "body", "friction": "geom", "actuator_gain": "actuator or actuated joint", "joint_damping": "joint"}
VARIANT_FIELDS = ("id", "dynamics", "observation_noise", "action_delay")
VARIANT_NAMESPACE = "mprl"
_SEP = "--"
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")

#: Named deployment contexts ("the real system"): id → (variant, what it stands for).
NAMED_VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "mprl/Hopper-real-v0": ({"id": "Hopper-v5", "dynamics": {"body_mass": {"torso": 1.3}, "friction": 0.8, "actuator_gain": 0.9},
                             "observation_noise": 0.01, "action_delay": 1},
                            "a heavier torso, less grip, weaker motors, noisy sensors, one step of latency"),
    "mprl/Hopper-heavy-v0": ({"id": "Hopper-v5", "dynamics": {"body_mass": 1.5}}, "every body 50% heavier"),
    "mprl/Hopper-slippery-v0": ({"id": "Hopper-v5", "dynamics": {"friction": 0.5}}, "half the friction"),
    "mprl/HalfCheetah-real-v0": ({"id": "HalfCheetah-v5", "dynamics": {"body_mass": {"torso": 1.3}, "friction": 0.8, "actuator_gain": 0.9},
                                  "observation_noise": 0.01, "action_delay": 1},
                                 "a heavier torso, less grip, weaker motors, noisy sensors, one step of latency"),
    "mprl/Walker2d-real-v0": ({"id": "Walker2d-v5", "dynamics": {"body_mass": {"torso": 1.3}, "friction": 0.8, "actuator_gain": 0.9},
                               "observation_noise": 0.01, "action_delay": 1},
                              "a heavier torso, less grip, weaker motors, noisy sensors, one step of latency"),
    "mprl/InvertedPendulum-real-v0": ({"id": "InvertedPendulum-v5", "dynamics": {"body_mass": {"pole": 2.0}, "actuator_gain": 0.7},
                                       "observation_noise": 0.01, "action_delay": 1},
                                      "a pole twice as heavy, weaker motor, noisy sensors, one step of latency"),
}


class VariantError(MprlError):
    """An invalid deployment context; `problems` holds (location, message, value) triples."""

    def __init__(self, problems: list[tuple[tuple, str, Any]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc)) or 'env'}: {msg}" for loc, msg, _ in problems))


def _num(value: Any) -> str:
    """A number as the shortest positional decimal (no exponent, no '-'), for ids."""
    return np.format_float_positional(float(value), trim="-")


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _model_names(env: gym.Env) -> dict[str, list[str]]:
    m = env.unwrapped.model
    joints = [m.joint(i).name for i in range(m.njnt)]
    actuators = [m.actuator(i).name or joints[m.actuator_trnid[i, 0]] for i in range(m.nu)]
    return {"body_mass": [m.body(i).name for i in range(m.nbody)], "friction": [m.geom(i).name for i in range(m.ngeom)],
            "actuator_gain": actuators, "joint_damping": joints}


def _is_mujoco(env: gym.Env) -> bool:
    return hasattr(env.unwrapped, "model") and hasattr(env.unwrapped, "data")


def variant_problems(raw: Any, *, check_names: bool = True) -> list[tuple[tuple, str, Any]]:
    """(location, message, value) for each problem of a variant mapping (empty: valid)."""
    out: list[tuple[tuple, str, Any]] = []
    if not isinstance(raw, Mapping):
        return [((), f"a deployment context is a mapping {{{', '.join(VARIANT_FIELDS)}}}", raw)]
    for key in raw:
        if key not in VARIANT_FIELDS:
            close = difflib.get_close_matches(str(key), VARIANT_FIELDS, n=1)
            out.append(((key,), f"unknown field {key!r}" + (f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(VARIANT_FIELDS)}"), raw[key]))
    base = raw.get("id")
    if not isinstance(base, str) or not base:
        out.append((("id",), "required: the Gymnasium id the context changes, e.g. 'Hopper-v5'", base))
        base = None
    elif variant_of(base) is None and base not in gym.registry:
        out.append((("id",), str(_unknown_env(base)), base))
        base = None
    noise = raw.get("observation_noise", 0.0)
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and math.isfinite(noise) and noise >= 0):
        out.append((("observation_noise",), f"must be a number ≥ 0 (σ of Gaussian noise added to every observation), got {noise!r}", noise))
    delay = raw.get("action_delay", 0)
    if not (isinstance(delay, int) and not isinstance(delay, bool) and 0 <= delay <= 100):
        out.append((("action_delay",), f"must be an integer from 0 to 100 (environment steps between choosing and applying an action), got {delay!r}", delay))
    dyn = raw.get("dynamics") or {}
    if not isinstance(dyn, Mapping):
        out.append((("dynamics",), f"must be a mapping with some of {', '.join(DYNAMICS)}", dyn))
        dyn = {}
    names: dict[str, list[str]] | None = None
    if dyn and base is not None and check_names:
        env = make_env(base)
        try:
            if not _is_mujoco(env):
                out.append((("dynamics",), f"dynamics apply to MuJoCo environments; {base} is not one (observation_noise and action_delay work on any env)", dict(dyn)))
                dyn = {}
            else:
                names = _model_names(env)
        finally:
            env.close()
    for key, value in dyn.items():
        if key not in DYNAMICS:
            close = difflib.get_close_matches(str(key), DYNAMICS, n=1)
            out.append((("dynamics", key), f"unknown dynamics {key!r}" + (f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(DYNAMICS)}"), value))
        elif isinstance(value, Mapping) and key != "gravity":
            if not value:
                out.append((("dynamics", key), "an empty mapping changes nothing: give {name: multiplier, ...} or one number", dict(value)))
            for name, scale in value.items():
                if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                    out.append((("dynamics", key, name), f"names are [A-Za-z0-9_]+, got {name!r}", name))
                elif names is not None and name not in names[key]:
                    known = sorted({n for n in names[key] if n})
                    close = difflib.get_close_matches(name, known, n=1)
                    out.append((("dynamics", key, name), f"{base} has no {_ELEMENT[key]} named {name!r}"
                                + (f"; did you mean {close[0]!r}?" if close else "") + f" (known: {', '.join(known)})", name))
                if not _positive(scale):
                    out.append((("dynamics", key, name), f"a multiplier must be a number > 0, got {scale!r}", scale))
        elif not _positive(value):
            out.append((("dynamics", key), f"must be a multiplier > 0{'' if key == 'gravity' else ' or a mapping {name: multiplier}'}, got {value!r}", value))
    return out


def canonical_variant(raw: Mapping[str, Any], *, check_names: bool = True) -> dict[str, Any]:
    """A variant mapping validated, with defaults and no-op entries removed and named bases expanded."""
    problems = variant_problems(raw, check_names=check_names)
    if problems:
        raise VariantError(problems)
    base = variant_of(raw["id"])  # a named (or ad-hoc) variant as the base: its changes, then these
    out: dict[str, Any] = dict(base) if base else {"id": raw["id"]}
    dyn = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (out.get("dynamics") or {}).items()}
    for key, value in (raw.get("dynamics") or {}).items():
        dyn[key] = {str(n): float(s) for n, s in value.items()} if isinstance(value, Mapping) else float(value)
    dyn = {k: v for k, v in dyn.items() if (v != 1.0 if not isinstance(v, dict) else any(s != 1.0 for s in v.values()))}
    dyn = {k: ({n: s for n, s in sorted(v.items())} if isinstance(v, dict) else v) for k, v in sorted(dyn.items())}
    if dyn:
        out["dynamics"] = dyn
    else:
        out.pop("dynamics", None)
    for key, default in (("observation_noise", 0.0), ("action_delay", 0)):
        value = raw.get(key, out.get(key, default))
        if value != default:
            out[key] = float(value) if key == "observation_noise" else int(value)
        else:
            out.pop(key, None)
    return out


def variant_id(variant: Mapping[str, Any]) -> str:
    """The canonical id of a (canonical) variant: a named variant's id if one has exactly these
    changes, the base id if there are none, else the self-describing id."""
    v = dict(variant)
    if set(v) == {"id"}:
        return v["id"]
    for named, (definition, _) in NAMED_VARIANTS.items():
        if canonical_variant(definition, check_names=False) == v:
            return named
    parts = [v["id"]]
    for key, value in sorted(v.get("dynamics", {}).items()):
        if isinstance(value, dict):
            parts += [f"{key}.{n}-{_num(s)}" for n, s in value.items()]
        else:
            parts.append(f"{key}-{_num(value)}")
    if "observation_noise" in v:
        parts.append(f"observation_noise-{_num(v['observation_noise'])}")
    if "action_delay" in v:
        parts.append(f"action_delay-{v['action_delay']}")
    return f"{VARIANT_NAMESPACE}/{_SEP.join(parts)}-v0"


def parse_variant_id(env_id: str) -> dict[str, Any] | None:
    """The variant a self-describing id names (None if `env_id` is not one)."""
    prefix = VARIANT_NAMESPACE + "/"
    if not (env_id.startswith(prefix) and env_id.endswith("-v0") and _SEP in env_id):
        return None
    base, *items = env_id[len(prefix):-3].split(_SEP)
    raw: dict[str, Any] = {"id": base}
    dyn: dict[str, Any] = {}
    try:
        for item in items:
            key, _, value = item.rpartition("-")
            if key == "observation_noise":
                raw[key] = float(value)
            elif key == "action_delay":
                raw[key] = int(value)
            elif "." in key:
                k, _, name = key.partition(".")
                dyn.setdefault(k, {})[name] = float(value)
            else:
                dyn[key] = float(value)
    except ValueError:
        return None
    if dyn:
        raw["dynamics"] = dyn
    try:
        return canonical_variant(raw, check_names=False)
    except VariantError:
        return None


def variant_of(env_id: str) -> dict[str, Any] | None:
    """The canonical variant an id names (named or self-describing), or None for a plain id."""
    if env_id in NAMED_VARIANTS:
        return canonical_variant(NAMED_VARIANTS[env_id][0], check_names=False)
    return parse_variant_id(env_id)


def _register(env_id: str, variant: dict[str, Any]) -> None:
    base_spec = gym.spec(variant["id"])
    gym.register(id=env_id, entry_point="mprl.envs:make_variant_env", kwargs={"variant": variant},
                 max_episode_steps=base_spec.max_episode_steps, disable_env_checker=True,
                 reward_threshold=base_spec.reward_threshold)


def ensure_registered(env_id: str) -> bool:
    """Register a variant id with Gymnasium in this process if it is one (True), so `gym.make`,
    `gym.spec` and Minari take it; False for other ids."""
    if env_id in gym.registry:
        return variant_of(env_id) is not None
    variant = parse_variant_id(env_id)
    if variant is None or variant["id"] not in gym.registry:
        return False
    _register(env_id, variant)
    return True


def rllib_env(env_id: str) -> str:
    """`env_id`, registered with Tune's env registry if it is a variant, so RLlib's env runners in
    any process of the cluster make it (they would otherwise `gym.make` an id only this process knows)."""
    if ensure_registered(env_id):
        from ray.tune.registry import register_env

        register_env(env_id, _RLlibEnvCreator(env_id))
    return env_id


class _RLlibEnvCreator:
    """Picklable env creator for Tune's registry (RLlib passes its EnvContext: ignored)."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id

    def __call__(self, _config: Any = None) -> gym.Env:
        return make_env(self.env_id)


def describe_env(env_id: str) -> str:
    """A one-line description of an env id: itself for a plain id, its base and changes for a variant."""
    v = variant_of(env_id)
    if v is None:
        return env_id
    parts = []
    for key, value in v.get("dynamics", {}).items():
        word = {"body_mass": "mass", "friction": "friction", "actuator_gain": "actuator gain", "joint_damping": "damping", "gravity": "gravity"}[key]
        if isinstance(value, dict):
            parts += [f"{n} {word} ×{_num(s)}" for n, s in value.items()]
        else:
            parts.append(f"{'every body' + chr(39) + 's mass' if key == 'body_mass' else word} ×{_num(value)}")
    if "observation_noise" in v:
        parts.append(f"observation noise σ {_num(v['observation_noise'])}")
    if "action_delay" in v:
        parts.append(f"action delay {v['action_delay']} step{'s' if v['action_delay'] != 1 else ''}")
    return f"{v['id']} with {', '.join(parts)}"


def env_context(env_id: str) -> dict[str, Any]:
    """What the lineage, curves and `mprl envs` record of an env: id, base, changes, description."""
    v = variant_of(env_id)
    out: dict[str, Any] = {"env": env_id, "base": v["id"] if v else env_id, "variant": v is not None, "description": describe_env(env_id)}
    if v:
        out["changes"] = {k: v[k] for k in ("dynamics", "observation_noise", "action_delay") if k in v}
        if env_id in NAMED_VARIANTS:
            out["stands_for"] = NAMED_VARIANTS[env_id][1]
    return out


def base_env_id(env_id: str) -> str:
    v = variant_of(env_id)
    return v["id"] if v else env_id


def env_slug(env_id: str) -> str:
    """A short, stable name for folders and dataset ids: `hopper`, `hopper-real`, `hopper-ctx1a2b3c4d`."""
    v = variant_of(env_id)
    if v is None:
        return env_family(env_id)
    family = env_family(v["id"])
    if env_id in NAMED_VARIANTS:
        name = env_id.split("/", 1)[1][:-3]  # Hopper-real
        return f"{family}-{name.split('-', 1)[1].lower()}"
    return f"{family}-ctx{hashlib.sha1(env_id.encode()).hexdigest()[:8]}"


# -- applying a variant -----------------------------------------------------------------------


def _indices(names: list[str], spec: Any) -> list[tuple[int, float]]:
    if isinstance(spec, Mapping):
        return [(i, float(spec[n])) for i, n in enumerate(names) if n in spec]
    return [(i, float(spec)) for i in range(len(names))]


def apply_dynamics(env: gym.Env, dynamics: Mapping[str, Any]) -> None:
    """Multiply the compiled MuJoCo model's values of `env` in place (see DYNAMICS)."""
    import mujoco

    m = env.unwrapped.model
    names = _model_names(env)
    for key, spec in dynamics.items():
        if key == "gravity":
            m.opt.gravity[:] = m.opt.gravity * float(spec)
            continue
        for i, s in _indices(names[key], spec):
            if key == "body_mass":
                m.body_mass[i] *= s
                m.body_inertia[i] *= s
            elif key == "friction":
                m.geom_friction[i, 0] *= s
            elif key == "actuator_gain":
                m.actuator_gainprm[i, 0] *= s
                m.actuator_biasprm[i, 1:3] *= s  # position/velocity servos scale with their gain
            elif key == "joint_damping":
                start = m.jnt_dofadr[i]
                width = {0: 6, 1: 3}.get(int(m.jnt_type[i]), 1)  # free, ball, slide/hinge
                m.dof_damping[start:start + width] *= s
    mujoco.mj_setConst(m, env.unwrapped.data)  # derived constants (subtree masses, ...) follow


class ObservationNoise(gym.ObservationWrapper):
    """Adds N(0, σ²) to every observation; the noise is seeded by `reset(seed=...)`, so seeded
    evaluation episodes are reproducible."""

    def __init__(self, env: gym.Env, sigma: float) -> None:
        super().__init__(env)
        self.sigma = float(sigma)
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), 0x6D70726C])
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation)
        return (obs + self._rng.normal(0.0, self.sigma, size=obs.shape)).astype(obs.dtype, copy=False)


class ActionDelay(gym.Wrapper):
    """Applies the action chosen `delay` steps earlier; the first `delay` steps of an episode
    apply the neutral action (zero, clipped to the bounds)."""

    def __init__(self, env: gym.Env, delay: int) -> None:
        super().__init__(env)
        self.delay = int(delay)
        space = env.action_space
        neutral = np.zeros(space.shape, dtype=space.dtype)
        self._neutral = np.clip(neutral, space.low, space.high) if hasattr(space, "low") else space.sample() * 0
        self._queue: deque = deque()

    def reset(self, **kwargs: Any):
        self._queue = deque([self._neutral.copy() for _ in range(self.delay)])
        return super().reset(**kwargs)

    def step(self, action: Any):
        self._queue.append(np.array(action, copy=True))
        return super().step(self._queue.popleft())


def make_variant_env(variant: Mapping[str, Any], **kwargs: Any) -> gym.Env:
    """Gymnasium entry point of every variant: the base env with its dynamics changed in the
    model, then action delay, then observation noise (outermost: the policy sees noisy states)."""
    env = gym.make(variant["id"], **kwargs)
    if variant.get("dynamics"):
        apply_dynamics(env, variant["dynamics"])
    if variant.get("action_delay"):
        env = ActionDelay(env, variant["action_delay"])
    if variant.get("observation_noise"):
        env = ObservationNoise(env, variant["observation_noise"])
    env.unwrapped.mprl_variant = dict(variant)
    return env


def named_variants() -> list[dict[str, Any]]:
    """`mprl envs`: each named variant's id, base, changes and what it stands for."""
    return [env_context(env_id) for env_id in NAMED_VARIANTS]


for _env_id, (_definition, _) in NAMED_VARIANTS.items():
    if _env_id not in gym.registry and _definition["id"] in gym.registry:
        _register(_env_id, canonical_variant(_definition, check_names=False))
