"""Environments: construction with readable errors, env families and D4RL reference scores."""

from __future__ import annotations

import difflib
import re

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
    """`gymnasium.make` with a readable `MprlError` (and a did-you-mean) for unknown ids."""
    if ":" not in env_id and env_id not in gym.registry:
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
    if env_id not in gym.registry:
        raise _unknown_env(env_id)
    return env_id
