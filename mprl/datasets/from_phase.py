"""A phase's own experience as a Minari dataset (`dataset: {from: PHASE}`): offline RL as a
subroutine of online RL (Su, Luo, Zhang 2025, arXiv 2512.00383).

The transitions are the ones the phase really collected: the online replay stored in its
selected checkpoint (`algorithm_state.pkl` → `replay.rows`, written because the scheduler turns
`checkpoint_replay` on for every phase that a later one takes a dataset from). Nothing is
re-collected. The replay is a ring of flat rows in the order they arrived; an episode is cut
into chunks (one per rollout fragment) and, with several env runners, chunks of different
episodes interleave. Episodes are rebuilt by chaining: a chunk that did not end continues with
the next later chunk whose first observation is its last `next_obs`. Terminations and
truncations stay apart; the episode the pause cut short (neither terminated nor truncated) is
written as truncated: the pause is a time limit, not a failure, so a learner keeps
bootstrapping through it. Return-to-go is not a Minari field: every mprl learner that needs it
recomputes it from the episode boundaries (`algorithms.common.learner.load_dataset_arrays`), so
right boundaries are right return-to-go.

Selections (`take`): everything, the last N transitions (whole episodes, cut at the start of
the window), or the top fraction of episodes by return. `held_out` keeps a seeded fraction of
the episodes out of every selection, in a dataset of its own: offline validation (fitted Q
evaluation) of the candidates scores them on episodes none of them trained on.
"""

from __future__ import annotations

import datetime as _dt
import math
import pickle
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mprl.errors import CheckpointError, MprlError

STATE_FILE = "algorithm_state.pkl"


def replay_rows(checkpoint: str | Path) -> dict[str, np.ndarray]:
    """The online replay rows (oldest first) stored in an algorithm checkpoint."""
    from mprl.storage import local_checkpoint

    root = local_checkpoint(checkpoint)
    path = Path(root) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"'{checkpoint}' is not an RLlib algorithm checkpoint: it has no {STATE_FILE}. Name a phase of this pipeline.")
    with open(path, "rb") as f:
        state = pickle.load(f)
    rows = (state.get("replay") or {}).get("rows") if isinstance(state, dict) else None
    if not rows or not len(rows.get("rewards", ())):
        raise MprlError(f"Checkpoint '{checkpoint}' holds no replay: its phase ran without `checkpoint_replay` "
                        "(the scheduler turns it on for every phase named by a later `dataset: {from: ...}`), or kept no data.")
    return {k: np.asarray(v) for k, v in rows.items()}


def split_episodes(rows: dict[str, np.ndarray], atol: float = 0.0) -> list[np.ndarray]:
    """Row indices of each episode, in the order the episodes started.

    Chunks are maximal runs of consecutive rows that continue each other (next_obs[i] = obs[i+1])
    and have not ended; an unfinished chunk is joined to the first later unclaimed chunk that
    starts where it stopped."""
    obs, nxt = rows["obs"], rows["next_obs"]
    ends = (rows["terminals"] > 0) | (rows["truncations"] > 0)
    n = len(ends)
    same = np.all(np.abs(nxt[:-1] - obs[1:]) <= atol, axis=1) if n > 1 else np.zeros(0, dtype=bool)
    cut = np.flatnonzero(ends[:-1] | ~same) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, n]
    by_first: dict[bytes, list[int]] = {}
    for c, s in enumerate(starts):
        by_first.setdefault(obs[s].tobytes(), []).append(c)
    claimed = np.zeros(len(starts), dtype=bool)
    episodes = []
    for c in range(len(starts)):
        if claimed[c]:
            continue
        claimed[c] = True
        parts = [np.arange(starts[c], stops[c])]
        cur = c
        while not ends[stops[cur] - 1]:
            nxt_c = next((k for k in by_first.get(nxt[stops[cur] - 1].tobytes(), []) if k > cur and not claimed[k]), None)
            if nxt_c is None:  # the episode the pause (or the end of the replay) cut short
                break
            claimed[nxt_c] = True
            parts.append(np.arange(starts[nxt_c], stops[nxt_c]))
            cur = nxt_c
        episodes.append(np.concatenate(parts))
    return episodes


def take_label(take: Any) -> str:
    """'all', 'last5000', 'top25' — the selection's part of the dataset id."""
    if take is None or take.rule == "all":
        return "all"
    if take.rule == "last":
        return f"last{take.n}"
    return f"top{round(take.fraction * 100)}"


def select_episodes(episodes: list[np.ndarray], rewards: np.ndarray, take: Any) -> list[np.ndarray]:
    """The episodes `take` keeps: all; the last N transitions (the first kept episode loses its
    earlier rows); or the ⌈fraction · episodes⌉ of highest return (ties by recency)."""
    if take is None or take.rule == "all":
        return list(episodes)
    if take.rule == "last":
        order = sorted(episodes, key=lambda e: e[-1])  # by when each episode's last row arrived
        kept, left = [], take.n
        for ep in reversed(order):
            if left <= 0:
                break
            kept.append(ep[-left:] if len(ep) > left else ep)
            left -= len(kept[-1])
        return sorted(kept, key=lambda e: e[0])
    returns = np.array([rewards[e].sum() for e in episodes])
    k = max(1, math.ceil(take.fraction * len(episodes)))
    best = sorted(range(len(episodes)), key=lambda i: (returns[i], i), reverse=True)[:k]
    return [episodes[i] for i in sorted(best)]


def held_out_split(n_episodes: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out episodes: ⌈fraction · n⌉ (at least 1 when fraction > 0,
    at most n − 1), drawn with `seed`."""
    mask = np.zeros(n_episodes, dtype=bool)
    if fraction <= 0 or n_episodes < 2:
        return mask
    k = min(n_episodes - 1, max(1, math.ceil(fraction * n_episodes)))
    mask[np.random.default_rng(seed).permutation(n_episodes)[:k]] = True
    return mask


def _buffers(rows: dict[str, np.ndarray], episodes: Sequence[np.ndarray]) -> list:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    out = []
    for ep in episodes:
        trunc = rows["truncations"][ep] > 0
        term = rows["terminals"][ep] > 0
        if not (term[-1] or trunc[-1]):
            trunc = trunc.copy()
            trunc[-1] = True  # cut short by the pause (or a `last N` window): a time limit
        out.append(EpisodeBuffer(
            observations=np.concatenate([rows["obs"][ep], rows["next_obs"][ep[-1:]]]).astype(np.float32),
            actions=rows["actions"][ep].astype(np.float32),
            rewards=rows["rewards"][ep].astype(np.float64),
            terminations=term,
            truncations=trunc,
        ))
    return out


def write_dataset(dataset_id: str, env_id: str, rows: dict[str, np.ndarray], episodes: Sequence[np.ndarray], metadata: dict[str, Any]) -> dict[str, Any]:
    """Write `episodes` (row indices into `rows`) as a Minari dataset into the local Minari
    folder, through a staging folder renamed into place only when complete."""
    from minari.storage.datasets_root_dir import get_dataset_path

    from mprl.datasets.build import (
        STAGING_PREFIX,
        _install,
        _table_from_buffers,
        write_minari,
    )
    from mprl.datasets.ids import datasets_root, minari_root
    from mprl.datasets.store import METADATA_KEY, save_episode_table
    from mprl.envs import reference_scores

    if not episodes:
        raise MprlError(f"Dataset '{dataset_id}' would hold no episodes; take more of the phase's data.")
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    final = Path(get_dataset_path(dataset_id))
    staging = root / f"{STAGING_PREFIX}{__import__('os').getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    buffers = _buffers(rows, episodes)
    refs = reference_scores(env_id)
    n = int(sum(len(e) for e in episodes))
    meta = {**metadata, "quality": "from-phase", "env_id": env_id, "transitions": n, "episodes": len(episodes),
            "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        with minari_root(staging):
            write_minari(dataset_id, buffers, env_id, ref_min=refs[0] if refs else None, ref_max=refs[1] if refs else None,
                         algorithm=f"mprl phase {metadata.get('from')}", extra_metadata={METADATA_KEY: meta},
                         description=f"The experience of phase(s) {metadata.get('from')} of run {metadata.get('run_id')} "
                                     f"({metadata.get('take')}; {n} transitions, {len(episodes)} episodes).")
            import minari

            save_episode_table(minari.load_dataset(dataset_id), _table_from_buffers(buffers))
        _install(staging / dataset_id, final, dataset_id, False, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def build_from_phases(
    dataset_id: str,
    sources: Sequence[tuple[str, str]],
    env_id: str,
    take: Any,
    held_out: float,
    seed: int,
    run_id: str,
    held_out_id: str | None = None,
    write: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build (once) the dataset `dataset_id` from the replays of `sources` [(phase node, checkpoint)],
    and, with `held_out` > 0, the held-out episodes as `held_out_id`. Returns its mprl metadata."""
    from mprl.datasets.store import DatasetNotFound, mprl_metadata, open_dataset

    try:
        open_dataset(dataset_id)
        meta = mprl_metadata(dataset_id) or {}
        if write:
            write(f"dataset {dataset_id} exists (built from {meta.get('from')}); kept")
        return meta
    except DatasetNotFound:
        pass
    parts = [replay_rows(path) for _, path in sources]
    keys = set.intersection(*(set(p) for p in parts))
    rows = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    episodes, offset = [], 0
    for p in parts:  # episodes never cross from one source's replay to the next
        episodes += [e + offset for e in split_episodes(p)]
        offset += len(p["rewards"])
    mask = held_out_split(len(episodes), held_out, seed)
    train = [e for e, h in zip(episodes, mask) if not h]
    chosen = select_episodes(train, rows["rewards"], take)
    source = {
        "from": ", ".join(node for node, _ in sources), "sources": [{"node": node, "checkpoint": path} for node, path in sources],
        "run_id": run_id, "take": take_label(take), "held_out": held_out, "held_out_seed": seed,
        "replay_transitions": len(rows["rewards"]), "replay_episodes": len(episodes),
        "held_out_dataset": held_out_id if mask.any() else None,
    }
    meta = write_dataset(dataset_id, env_id, rows, chosen, source)
    if write:
        write(f"dataset {dataset_id}: {meta['transitions']:,} transitions in {meta['episodes']} episodes "
              f"from the replay of {source['from']} ({source['take']}; {len(rows['rewards']):,} transitions, {len(episodes)} episodes collected)")
    if mask.any() and held_out_id:
        try:
            open_dataset(held_out_id)
        except DatasetNotFound:
            held = [e for e, h in zip(episodes, mask) if h]
            write_dataset(held_out_id, env_id, rows, held, {**source, "take": f"held out ({held_out:.0%})", "held_out_dataset": None})
            if write:
                write(f"dataset {held_out_id}: {len(held)} held-out episodes for offline validation")
    return meta
