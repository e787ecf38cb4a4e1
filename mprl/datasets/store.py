"""Reading Minari datasets (mprl-built or official): flat transitions, metadata, listings."""

from __future__ import annotations

import contextlib
import difflib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from mprl.datasets.ids import (
    DEFAULT_BUDGET,
    build_command,
    datasets_root,
    parse_dataset_id,
)
from mprl.envs import normalized_score, reference_scores
from mprl.errors import DatasetNotFound, MprlError

METADATA_KEY = "mprl"  # our generation metadata lives under this key of minari's metadata.json
POLICY_FILE = "policy.pt"


# ---------------------------------------------------------------- opening


def local_dataset_ids() -> list[str]:
    import minari

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(minari.list_local_datasets())


def _not_found(dataset_id: str) -> DatasetNotFound:
    root = datasets_root()
    cmd = build_command(dataset_id)
    if cmd is not None:
        msg = (
            f"Dataset '{dataset_id}' is not in the local Minari folder ({root}). "
            f"Build it with:\n  {cmd}"
        )
        if "--quality random" not in cmd:
            msg += (
                f"\n(it first trains a TD3 agent online for --budget N env steps, default "
                f"{DEFAULT_BUDGET}"
                + ("" if "medium-replay" in cmd else "; --size is the number of transitions recorded")
                + ")"
            )
    else:
        msg = (
            f"Dataset '{dataset_id}' is not in MINARI_DATASETS_PATH ({root}). "
            f"With internet access download it with `minari download {dataset_id}` "
            f"(or `minari.download_dataset('{dataset_id}')`), or point MINARI_DATASETS_PATH "
            "at the folder that holds it. mprl builds its own datasets with "
            "`mprl datasets build ENV_ID --quality {random,medium,medium-replay,expert} --size N` "
            "(ids 'mprl/<env family>/<quality>-v0')."
        )
    close = []
    if cmd is None or "ENV_ID" in cmd:  # a typo is likelier than a dataset still to build
        try:
            close = difflib.get_close_matches(dataset_id, local_dataset_ids(), n=3)
        except Exception:  # noqa: BLE001 -- listing is only a hint
            close = []
    if close:
        msg += f"\nDid you mean {', '.join(repr(c) for c in close)}?"
    return DatasetNotFound(msg)


def open_dataset(dataset_id: str):
    """`minari.load_dataset(dataset_id)` with mprl's errors."""
    import minari

    parse_dataset_id(dataset_id)  # malformed ids → MprlError
    data_path = datasets_root() / dataset_id / "data"
    if not data_path.exists():
        raise _not_found(dataset_id)
    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError:
        raise _not_found(dataset_id) from None
    except (ValueError, KeyError, OSError) as e:
        raise MprlError(f"Dataset '{dataset_id}' at {data_path} cannot be read: {e}") from e


def dataset_dir(dataset_id: str) -> Path:
    return datasets_root() / dataset_id


# ---------------------------------------------------------------- episode arrays


def _flat(values: Any, space: gym.Space) -> np.ndarray:
    """Space values of one episode (array / dict / tuple) → (T, d) array."""
    if isinstance(space, gym.spaces.Dict):
        parts = [_flat(values[k], s) for k, s in space.spaces.items()]
        return np.concatenate(parts, axis=1)
    if isinstance(space, gym.spaces.Tuple):
        parts = [_flat(values[i], s) for i, s in enumerate(space.spaces)]
        return np.concatenate(parts, axis=1)
    arr = np.asarray(values)
    return arr.reshape(len(arr), -1)


def _h5_read(node, space: gym.Space):
    if isinstance(space, gym.spaces.Dict):
        return {k: _h5_read(node[k], s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(_h5_read(node[f"_index_{i}"], s) for i, s in enumerate(space.spaces))
    return node[()]


def _has_images(space: gym.Space) -> bool:
    from minari.dataset.minari_storage import is_image_space

    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        subs = space.spaces.values() if isinstance(space, gym.spaces.Dict) else space.spaces
        return any(_has_images(s) for s in subs)
    return is_image_space(space)


def _iter_episodes(ds, fields: tuple[str, ...]) -> Iterator[dict]:
    """Yield per-episode dicts holding only `fields` (observations, actions, rewards,
    terminations, truncations). HDF5 datasets are read straight with h5py, skipping `infos`
    (the bulk of official datasets' read time); other formats go through minari."""
    storage = ds.storage
    fast = storage.FORMAT == "hdf5" and not (
        storage.jpeg_encoding and (_has_images(ds.observation_space) or _has_images(ds.action_space))
    )
    if fast:
        import h5py

        spaces = {"observations": ds.observation_space, "actions": ds.action_space}
        with h5py.File(storage.data_path / "main_data.hdf5", "r") as f:
            for idx in ds.episode_indices:
                g = f[f"episode_{idx}"]
                yield {k: (_h5_read(g[k], spaces[k]) if k in spaces else g[k][()]) for k in fields}
    else:
        for ep in ds.iterate_episodes():
            yield {k: getattr(ep, k) for k in fields}


CACHE_FILE = "mprl_transitions.npz"
_CACHE_VERSION = 1


def _cache_key(ds) -> str:
    """Changes whenever minari writes to the dataset (every write rewrites metadata.json)."""
    import json

    data_path = Path(ds.storage.data_path)
    parts = [_CACHE_VERSION, int(ds.storage.total_steps), int(ds.storage.total_episodes),
             [int(i) for i in ds.episode_indices[:1]], len(ds.episode_indices)]
    for name in ("metadata.json", "main_data.hdf5"):
        p = data_path / name
        if p.exists():
            st = p.stat()
            parts.append([name, st.st_size, st.st_mtime_ns])
    return json.dumps(parts)


def _read_episode_table(ds) -> dict[str, np.ndarray]:
    obs_space, act_space = ds.observation_space, ds.action_space
    cols: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards",
                                             "terminations", "truncations", "lengths")}
    for ep in _iter_episodes(ds, ("observations", "actions", "rewards", "terminations", "truncations")):
        t = len(ep["rewards"])
        if t == 0:
            continue
        o = _flat(ep["observations"], obs_space)
        if len(o) < t + 1:
            raise MprlError(f"Dataset '{ds.id}' has an episode with {len(o)} observations for {t} steps.")
        cols["observations"].append(o[: t + 1])
        cols["actions"].append(_flat(ep["actions"], act_space))
        cols["rewards"].append(np.asarray(ep["rewards"]).reshape(-1))
        cols["terminations"].append(np.asarray(ep["terminations"]).reshape(-1))
        cols["truncations"].append(np.asarray(ep["truncations"]).reshape(-1))
        cols["lengths"].append(t)
    if not cols["lengths"]:
        raise MprlError(f"Dataset '{ds.id}' holds no transitions.")
    table = {k: np.concatenate(v).astype(np.float32, copy=False)
             for k, v in cols.items() if k != "lengths"}
    table["lengths"] = np.asarray(cols["lengths"], dtype=np.int64)
    return table


def episode_table(dataset_id: str, *, cache: bool = True, ds=None) -> dict[str, np.ndarray]:
    """All episodes concatenated: observations (N + E rows: each episode's T + 1 observations),
    actions, rewards, terminations, truncations (N rows, float32) and lengths (E).

    Reading thousands of small HDF5 episode groups costs ~1 ms per episode (HDF5 object opens),
    so the table is cached in `<dataset dir>/mprl_transitions.npz`, keyed by minari's files'
    sizes and mtimes (a stale or unreadable cache is rebuilt; a read-only folder is skipped).
    """
    ds = ds if ds is not None else open_dataset(dataset_id)
    key = _cache_key(ds)
    path = Path(ds.storage.data_path).parent / CACHE_FILE
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {k: z[k] for k in z.files if k != "key"}
        except (OSError, ValueError, KeyError):
            pass
    table = _read_episode_table(ds)
    if cache:
        save_episode_table(ds, table)
    return table


def save_episode_table(ds, table: dict[str, np.ndarray]) -> None:
    """Write the transitions cache of `ds` (atomically; silently skipped when not writable)."""
    path = Path(ds.storage.data_path).parent / CACHE_FILE
    tmp = path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, key=np.asarray(_cache_key(ds)), **table)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def load_transitions(dataset_id: str, *, cache: bool = True) -> dict[str, np.ndarray]:
    """Flat float32 transitions over all episodes of a Minari dataset (`minari.load_dataset`).

    Keys: obs, actions, rewards, next_obs, terminals (= terminations), timeouts (= truncations);
    terminals/timeouts are 0/1 floats kept apart. Dict/Tuple spaces are flattened by
    concatenation in the space's key order.
    """
    t = episode_table(dataset_id, cache=cache)
    lengths = t["lengths"]
    # row of step i of episode e in `observations` = global step index + e
    idx = np.arange(int(lengths.sum())) + np.repeat(np.arange(len(lengths)), lengths)
    return {
        "obs": t["observations"][idx],
        "actions": t["actions"],
        "rewards": t["rewards"],
        "next_obs": t["observations"][idx + 1],
        "terminals": t["terminations"],
        "timeouts": t["truncations"],
    }


def _returns(table: dict) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(table["lengths"])[:-1]])
    return np.add.reduceat(table["rewards"].astype(np.float64), starts)


def episode_returns(dataset_id: str) -> np.ndarray:
    """Undiscounted return of every (non-empty) episode."""
    return _returns(episode_table(dataset_id))


# ---------------------------------------------------------------- metadata


def _raw_metadata(ds) -> dict:
    from minari.dataset.minari_storage import MinariStorage

    return MinariStorage.read_raw_metadata(ds.storage.data_path)


def dataset_env_id(dataset_id: str) -> str | None:
    """The Gymnasium id of the env the dataset was recorded in (None if minari has no spec)."""
    ds = open_dataset(dataset_id)
    return ds.env_spec.id if ds.env_spec is not None else None


def dataset_reference_scores(dataset_id: str) -> tuple[float, float] | None:
    """(random, expert) reference returns: the dataset's ref_min/max_score when it has both,
    else D4RL's for the env family, else None."""
    ds = open_dataset(dataset_id)
    return _refs(_raw_metadata(ds), ds.env_spec.id if ds.env_spec is not None else None)


def resolve_reference_scores(env_id: str, dataset_id: str | None = None) -> tuple[float, float] | None:
    """The (random, expert) returns a phase normalises with: its dataset's, else D4RL's."""
    if dataset_id:
        return dataset_reference_scores(dataset_id)
    return reference_scores(env_id)


def _refs(meta: dict, env_id: str | None) -> tuple[float, float] | None:
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    if lo is not None and hi is not None:
        return float(lo), float(hi)
    return reference_scores(env_id) if env_id else None


def mprl_metadata(dataset_id: str) -> dict | None:
    """The generation metadata mprl stored when it built the dataset (None for others)."""
    return _raw_metadata(open_dataset(dataset_id)).get(METADATA_KEY)


def dataset_info(dataset_id: str) -> dict:
    """Size, episodes, env, refs, mean episode return and normalised score, mprl metadata."""
    ds = open_dataset(dataset_id)
    meta = _raw_metadata(ds)
    env_id = ds.env_spec.id if ds.env_spec is not None else None
    refs = _refs(meta, env_id)
    returns = _returns(episode_table(dataset_id, ds=ds))
    mean_ret = float(returns.mean()) if len(returns) else None
    mp = meta.get(METADATA_KEY)
    policy = None
    if mp and mp.get("policy_checkpoint"):
        policy = str(dataset_dir(dataset_id) / mp["policy_checkpoint"])
    return {
        "id": dataset_id,
        "path": str(dataset_dir(dataset_id)),
        "env_id": env_id,
        "steps": int(ds.total_steps),
        "episodes": int(ds.total_episodes),
        "observation_shape": list(getattr(ds.observation_space, "shape", None) or []),
        "action_shape": list(getattr(ds.action_space, "shape", None) or []),
        "data_format": meta.get("data_format"),
        "size_mb": meta.get("dataset_size"),
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
        "reference_scores": list(refs) if refs else None,
        "mean_return": mean_ret,
        "std_return": float(returns.std()) if len(returns) else None,
        "normalized_score": normalized_score(mean_ret, refs=refs) if mean_ret is not None else None,
        "minari_version": meta.get("minari_version"),
        "policy_checkpoint": policy,
        "mprl": mp,
    }


def list_datasets() -> list[dict]:
    """One row per local Minari dataset (cheap: metadata only, no data read)."""
    import minari

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = minari.list_local_datasets()
    rows = []
    for did, meta in local.items():
        env_id = None
        spec = meta.get("env_spec")
        if isinstance(spec, str):
            try:
                import json

                env_id = json.loads(spec).get("id")
            except ValueError:
                env_id = None
        mp = meta.get(METADATA_KEY) or {}
        rows.append({
            "id": did,
            "env_id": env_id,
            "quality": mp.get("quality"),
            "steps": meta.get("total_steps"),
            "episodes": meta.get("total_episodes"),
            "ref_min_score": meta.get("ref_min_score"),
            "ref_max_score": meta.get("ref_max_score"),
            "size_mb": meta.get("dataset_size"),
            "built_by_mprl": bool(mp),
            # the behaviour snapshot's achieved normalised score, its target and whether it was reached
            "snapshot_score": (mp.get("snapshot") or {}).get("achieved_normalized_score"),
            "target_score": (mp.get("target") or {}).get("normalized_score"),
            "target_reached": (mp.get("target") or {}).get("reached"),
            # a run's own experience (`dataset: {from: PHASE}`): which run, phase(s) and selection
            "source": f"{mp.get('run_id')}: {mp.get('from')} ({mp.get('take')})" if mp.get("quality") == "from-phase" else None,
        })
    return rows
