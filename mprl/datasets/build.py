"""Building Minari datasets: random, medium, medium-replay and expert (D4RL-style).

How a build works
- `random`: uniform actions (`action_space.sample()`, seeded), `size` transitions.
- `medium` / `medium-replay` / `expert`: a `mprl.benchmarks.plain.PlainTD3` agent trains online for
  `budget` env steps, evaluated every `max(budget // 20, 1000)` steps. `expert` is the best
  evaluated snapshot (not the last: an agent may peak and fall); `medium` the snapshot up to
  the best whose score is closest to a target, by default 1/3 of the best's normalised score
  (D4RL's medium ≈ a third of expert), or `target_score` / `target_return`; `medium-replay`
  every transition the agent saw up to that snapshot. The chosen snapshot's achieved score,
  the target and whether it was reached are printed and stored; `strict` refuses a dataset
  whose target was not reached (see `_td3_quality`).
  `medium`/`expert` record `size` transitions of the snapshot policy with Gaussian noise
  σ = 0.1 × (high − low) / 2, clipped to the action bounds.
- Episodes are written with `minari.create_dataset_from_buffers` (DataCollector needs jax),
  all in one call, with minari's directory-size walk disabled during the write and the size
  computed once afterwards (the walk runs after every episode in arrow/parquet storages).
- The build happens in a hidden staging folder inside the Minari folder
  (`.mprl-build-<pid>-<hex>`, ignored by minari's listing) and is moved into place by a rename
  only when everything succeeded.
- Generation metadata goes into minari's own metadata.json under the key "mprl" (minari 0.5.4's
  `update_metadata` accepts any JSON key), the snapshot policy into `<dataset dir>/policy.pt`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import mprl
from mprl.datasets.ids import (
    DEFAULT_BUDGET,
    QUALITIES,
    datasets_root,
    default_dataset_id,
    minari_root,
    parse_dataset_id,
)
from mprl.datasets.store import METADATA_KEY, POLICY_FILE, save_episode_table
from mprl.envs import make_env, normalized_score, reference_scores
from mprl.errors import MprlError

Progress = Callable[[str], None] | None

EXPLORATION_NOISE = 0.1  # Gaussian σ as a fraction of the half action range
RANDOM_RETURN_EPISODES = 10
FINAL_EVAL_EPISODES = 10
TARGET_TOLERANCE_MIN = 5.0  # normalised points a snapshot may miss its target by …
TARGET_TOLERANCE_FRACTION = 0.25  # … or this fraction of the target, whichever is larger
STAGING_PREFIX = ".mprl-build-"


# ---------------------------------------------------------------- progress


def _fmt_s(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _Reporter:
    """Progress lines with ETA, at most every `every_s` seconds (plus the last)."""

    def __init__(self, progress: Progress, label: str, total: int, every_s: float = 10.0):
        self.progress, self.label, self.total, self.every_s = progress, label, total, every_s
        self.t0 = time.perf_counter()
        self.last = self.t0

    def __call__(self, done: int, extra: str = "", force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        el = now - self.t0
        eta = el / done * (self.total - done) if done else float("nan")
        eta_s = _fmt_s(eta) if done else "?"
        self.progress(f"[{self.label}] {done}/{self.total} steps{extra}  "
                      f"elapsed {_fmt_s(el)}  ETA {eta_s}")


# ---------------------------------------------------------------- episodes


class _Episode:
    __slots__ = ("actions", "obs", "rewards", "terms", "truncs")

    def __init__(self, first_obs):
        self.obs, self.actions, self.rewards, self.terms, self.truncs = [first_obs], [], [], [], []

    def to_buffer(self, seed=None):
        from minari.data_collector.episode_buffer import EpisodeBuffer

        return EpisodeBuffer(
            seed=seed,
            observations=np.asarray(self.obs),
            actions=np.asarray(self.actions),
            rewards=np.asarray(self.rewards, dtype=np.float64),
            terminations=np.asarray(self.terms, dtype=bool),
            truncations=np.asarray(self.truncs, dtype=bool),
        )


def _rollout(env_id: str, size: int, policy: Callable[[np.ndarray], np.ndarray], seed: int,
             report: _Reporter) -> tuple[list, list[float]]:
    """`size` transitions of `policy`; the episode cut by the size limit is marked truncated.

    Returns the episode buffers and the returns of the episodes that ended by themselves."""
    from mprl.episodes import Transition, run_episodes

    env = make_env(env_id)
    low, high = env.action_space.low, env.action_space.high
    buffers: list = []
    returns: list[float] = []  # of the episodes that ended by themselves
    current: list[_Episode] = []  # the episode being recorded
    steps = 0

    def act(obs: np.ndarray) -> np.ndarray:
        if not current:  # the first observation of an episode
            current.append(_Episode(obs))
        return np.clip(np.asarray(policy(obs), dtype=env.action_space.dtype), low, high)

    def record(t: Transition) -> None:
        nonlocal steps
        steps += 1
        ep = current[0]
        ep.obs.append(t.next_obs)
        ep.actions.append(t.action)
        ep.rewards.append(t.reward)
        ep.terms.append(t.terminated)
        ep.truncs.append(t.truncated or (t.last and not t.terminated))  # the size limit cuts the last episode
        if t.terminated or t.truncated or t.last:
            if t.terminated or t.truncated:
                returns.append(float(np.sum(ep.rewards)))
            buffers.append(ep.to_buffer(seed if not buffers else None))
            current.clear()
            mean = f"  mean return {np.mean(returns[-20:]):.1f}" if returns else ""
            report(steps, f", {len(buffers)} episodes{mean}")

    try:
        # Seeded once: later episodes continue the env's RNG, as before.
        run_episodes(env, act, seeds=lambda i: seed if i == 0 else None, steps=size, on_step=record)
    finally:
        env.close()
    return buffers, returns


def _action_space(env_id: str):
    env = make_env(env_id)
    env.close()
    return env.action_space


def random_return(env_id: str, episodes: int = RANDOM_RETURN_EPISODES, seed: int = 0) -> float:
    """Mean return of the uniform random policy over `episodes` seeded episodes."""
    from mprl.evaluation import evaluate_policy

    space = _action_space(env_id)
    space.seed(seed + 7)
    return evaluate_policy(lambda _obs: space.sample(), env_id, episodes, seed=10_000 + seed).mean


class _TransitionLog:
    """Every transition reported by `train_online(on_transition=…)`, in preallocated arrays.

    Observations are stored once: `next_obs` is kept only where an episode ends (or where the
    next transition does not continue from it, which a single sequential env never does)."""

    def __init__(self, obs_shape, act_shape, capacity: int):
        self.n = 0
        self.cap = max(capacity, 1)
        self.obs = np.empty((self.cap, *obs_shape), np.float64)
        self.actions = np.empty((self.cap, *act_shape), np.float64)
        self.rewards = np.empty(self.cap, np.float64)
        self.terms = np.empty(self.cap, bool)
        self.truncs = np.empty(self.cap, bool)
        self.tail: dict[int, np.ndarray] = {}  # index → next_obs where the episode stops
        self.broken: list[int] = []  # indices whose next_obs is not the following obs
        self._last_next = None

    def _grow(self):
        self.cap *= 2
        for k in ("obs", "actions", "rewards", "terms", "truncs"):
            old = getattr(self, k)
            new = np.empty((self.cap, *old.shape[1:]), old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, k, new)

    def __call__(self, t: dict) -> None:
        if self.n == self.cap:
            self._grow()
        i = self.n
        if i and (i - 1) not in self.tail and not np.array_equal(t["obs"], self._last_next):
            self.tail[i - 1] = self._last_next
            self.broken.append(i - 1)
        self.obs[i] = t["obs"]
        self.actions[i] = t["action"]
        self.rewards[i] = t["reward"]
        self.terms[i] = bool(t["terminated"])
        self.truncs[i] = bool(t["truncated"])
        self._last_next = np.array(t["next_obs"], dtype=np.float64)
        if self.terms[i] or self.truncs[i]:
            self.tail[i] = self._last_next
        self.n += 1

    def episodes(self, n: int) -> tuple[list, int]:
        """The first `n` transitions as episode buffers (vectorised per episode), and the number
        of discontinuities (0 for a single sequential env); an episode cut at `n` is marked
        truncated at its last step."""
        from minari.data_collector.episode_buffer import EpisodeBuffer

        n = min(n, self.n)
        ends = sorted(i for i in self.tail if i < n)
        if n and (not ends or ends[-1] != n - 1):
            ends.append(n - 1)
        buffers, start = [], 0
        for end in ends:
            sl = slice(start, end + 1)
            if end in self.tail:
                last = self.tail[end]
            else:  # cut at n: continuous, so next_obs is the following obs
                last = self.obs[end + 1] if end + 1 < self.n else self._last_next
            truncs = self.truncs[sl].copy()
            if not self.terms[end]:
                truncs[-1] = True  # cut by the snapshot or a discontinuity
            buffers.append(EpisodeBuffer(
                observations=np.concatenate([self.obs[sl], np.asarray(last)[None]]),
                actions=self.actions[sl].copy(),
                rewards=self.rewards[sl].copy(),
                terminations=self.terms[sl].copy(),
                truncations=truncs,
            ))
            start = end + 1
        return buffers, sum(1 for i in self.broken if i < n)


# ---------------------------------------------------------------- minari writing


@contextlib.contextmanager
def _no_size_walk():
    """Make `MinariStorage.get_size` free while writing (minari walks the whole dataset folder
    after every episode: quadratic for arrow/parquet). The caller computes the size once."""
    from minari.dataset.minari_storage import MinariStorage

    orig = MinariStorage.get_size
    MinariStorage.get_size = lambda self: 0.0
    try:
        yield
    finally:
        MinariStorage.get_size = orig


def write_minari(dataset_id: str, buffers: list, env_id: str, *, ref_min: float | None,
                 ref_max: float | None, algorithm: str, description: str,
                 data_format: str = "hdf5", num_episodes_average_score: int = RANDOM_RETURN_EPISODES,
                 extra_metadata: dict | None = None, fast: bool = True):
    """Write all episodes in one `create_dataset_from_buffers` call into the current Minari root.

    minari stores ref_min/ref_max only when ref_max is given (else it would run 100 evaluation
    episodes); a ref_min without ref_max is added afterwards through `update_metadata`."""
    import minari

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # author/email/permalink "recommended" warnings
        with _no_size_walk() if fast else contextlib.nullcontext():
            ds = minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env_id, eval_env=env_id, algorithm_name=algorithm,
                author="mprl", description=description, data_format=data_format,
                ref_min_score=ref_min if ref_max is not None else None, ref_max_score=ref_max,
                num_episodes_average_score=num_episodes_average_score,
            )
    update = {"dataset_size": ds.storage.get_size()}
    if ref_max is None and ref_min is not None:
        update["ref_min_score"] = float(ref_min)
    if extra_metadata:
        update.update(extra_metadata)
    ds.storage.update_metadata(update)
    return ds


# ---------------------------------------------------------------- staging / install


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_staging(root: Path) -> None:
    """Remove staging folders of builds whose process is gone (killed with SIGKILL, say)."""
    for p in root.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(p.name[len(STAGING_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _ensure_namespace(dataset_id: str) -> None:
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = parse_dataset_id(dataset_id)[0]
    if namespace is not None and namespace not in list_local_namespaces():
        try:
            create_namespace(namespace)
        except ValueError:  # created meanwhile by another build
            pass


def _install(staged: Path, final: Path, dataset_id: str, overwrite: bool, staging: Path) -> None:
    _ensure_namespace(dataset_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        if not overwrite:
            raise _exists_error(dataset_id, final)
        os.replace(final, staging / "replaced")  # removed with the staging folder
    os.replace(staged, final)


def _exists_error(dataset_id: str, path: Path) -> MprlError:
    return MprlError(
        f"Dataset '{dataset_id}' already exists at {path}. Pass --overwrite "
        "(overwrite=True) to replace it, or --id to build under another id."
    )


# ---------------------------------------------------------------- building


@contextlib.contextmanager
def _torch_threads(n: int):
    """Small-batch TD3 updates are fastest on one thread; with 2 intra-op threads on a busy
    2-core machine, 300 updates took 204 s instead of 3.2 s (OpenMP threads spinning)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _tolerance(target: float) -> float:
    """How far (normalised points) a snapshot may score from its target and still count as on it."""
    return max(TARGET_TOLERANCE_MIN, TARGET_TOLERANCE_FRACTION * abs(target))


def resolve_target(quality: str, env_id: str, target_score: float | None, target_return: float | None) -> tuple[str, float | None]:
    """(kind, value) of a build's target, checked before any training: kind is 'score'
    (normalised), 'return' (raw episode return), 'default' (the quality's own rule) or 'none'."""
    if target_score is not None and target_return is not None:
        raise MprlError("Give --target-score or --target-return, not both.")
    given = target_score if target_score is not None else target_return
    if quality == "random":
        if given is not None:
            raise MprlError("--target-score / --target-return do not apply to random datasets (no agent is trained).")
        return "none", None
    if given is not None and not np.isfinite(given):
        raise MprlError(f"The target must be a finite number (got {given}).")
    if target_return is not None:
        return "return", float(target_return)
    if target_score is not None:
        if quality == "expert" and reference_scores(env_id) is None:
            raise MprlError(
                f"--target-score needs reference scores, and {env_id} has no D4RL ones: its scores are normalised "
                "against the best snapshot itself, so an expert is always 100. Give --target-return R (an episode return) instead.")
        return "score", float(target_score)
    return "default", None


def _td3_quality(env_id: str, quality: str, size: int | None, budget: int, seed: int,
                 refs: tuple[float, float] | None, rand_ret: float, progress: Progress,
                 agent_settings: dict | None = None, target: tuple[str, float | None] = ("default", None),
                 strict: bool = False):
    """Train PlainTD3 online, pick the snapshot, return (buffers, policy_state, meta, ref_max).

    The snapshot rule (stated in the metadata as `snapshot_rule`):
    - the candidates are the evaluated snapshots (every `eval_every` steps), the last one
      being the final agent with its 10-episode evaluation;
    - the best is the candidate with the highest evaluated return (earliest on ties),
      re-evaluated over 10 fresh episodes: its achieved return is the expert reference when
      the env has no D4RL scores (normalised 0 = random policy, 100 = best);
    - expert: the best; its target is D4RL's expert (normalised 100) where D4RL scores exist,
      else only an explicit --target-return; reached when it scores ≥ target − tolerance;
    - medium / medium-replay: the target is 1/3 of the best's normalised score (D4RL's medium
      ≈ a third of expert), or the given one; the chosen snapshot is the candidate up to the
      best whose evaluated score is closest to it (earliest on ties: a policy whose training
      stopped early, as D4RL's), re-evaluated; reached when |achieved − target| ≤ tolerance.
    The tolerance is max(5, 25% of the target) normalised points.
    """
    from mprl.benchmarks.plain import PlainTD3

    env = make_env(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    settings = dict(agent_settings or {})
    utd = int(settings.pop("utd", 1))
    agent = PlainTD3(obs_space, act_space, seed=seed, **settings)
    eval_every = max(budget // 20, 1000)
    log = _TransitionLog(obs_space.shape, act_space.shape, budget)
    snapshots: list[dict] = []
    report = _Reporter(progress, f"{quality}: train TD3", budget, every_s=0)

    def on_eval(step: int, ret: float):
        snapshots.append({"env_step": int(step), "transitions": log.n, "return": float(ret),
                          "state": copy.deepcopy(agent.state_dict())})
        norm = normalized_score(ret, refs=refs)
        report(step, f"  eval return {ret:.1f}" + (f" (normalised {norm:.1f})" if norm is not None else ""),
               force=True)

    with _torch_threads(1):
        agent.train_online(env_id, budget, seed=seed, utd=utd, eval_every=eval_every, on_transition=log,
                           on_eval=on_eval)
        final_ret = float(agent.evaluate(env_id, episodes=FINAL_EVAL_EPISODES, seed=seed + 20_000))
    final = {"env_step": log.n, "transitions": log.n, "return": final_ret, "achieved": final_ret,
             "state": copy.deepcopy(agent.state_dict())}
    say = _say(progress)
    say(f"[{quality}] final agent: return {final_ret:.1f} over {FINAL_EVAL_EPISODES} episodes")

    def achieved(s: dict) -> float:
        """The snapshot's return over FINAL_EVAL_EPISODES fresh episodes (measured once)."""
        if "achieved" not in s:
            agent.load_state_dict(s["state"])
            with _torch_threads(1):
                s["achieved"] = float(agent.evaluate(env_id, episodes=FINAL_EVAL_EPISODES, seed=seed + 30_000))
        return s["achieved"]

    candidates = [s for s in snapshots if s["env_step"] != final["env_step"]] + [final]
    best_i = max(range(len(candidates)), key=lambda i: candidates[i]["return"])  # earliest on ties
    best = candidates[best_i]
    best_ret = achieved(best)
    norm_refs = refs if refs is not None else (rand_ret, best_ret)
    norm = lambda r: normalized_score(r, refs=norm_refs)
    f1 = lambda x: "n/a" if x is None else f"{x:.1f}"
    best_norm = norm(best_ret)
    say(f"[{quality}] best snapshot: env step {best['env_step']:,}, evaluated return {best['return']:.1f}, "
        f"re-evaluated {best_ret:.1f} (normalised {f1(best_norm)})")
    if best_norm is None or best_norm <= 0:
        say(f"[{quality}] warning: the best agent (return {best_ret:.1f}) is no better than "
            f"the random policy ({rand_ret:.1f}); raise --budget for a meaningful dataset")

    kind, value = target
    if kind == "return":
        target_norm, source = norm(value), f"--target-return {value:g}"
    elif kind == "score":
        target_norm, source = value, f"--target-score {value:g}"
    elif quality == "expert":
        target_norm, source = (100.0, "D4RL's expert (normalised 100)") if refs is not None else (None, None)
    else:
        target_norm = best_norm / 3 if best_norm is not None else None
        source = "1/3 of the best snapshot's normalised score"

    if quality == "expert" or target_norm is None:
        snap = best
    else:
        def dist(s: dict) -> float:
            v = norm(s["return"])
            return abs(v - target_norm) if v is not None else float("inf")
        snap = min(candidates[: best_i + 1], key=dist)  # earliest on ties
    snap_ret = achieved(snap)
    snap_norm = norm(snap_ret)

    reached = None
    tol = None
    if target_norm is not None and snap_norm is not None:
        tol = _tolerance(target_norm)
        reached = (snap_norm >= target_norm - tol) if quality == "expert" else abs(snap_norm - target_norm) <= tol
    target_return = None
    if target_norm is not None:
        target_return = norm_refs[0] + target_norm / 100 * (norm_refs[1] - norm_refs[0])
    say(f"[{quality}] chosen snapshot: env step {snap['env_step']:,}, evaluated return {snap['return']:.1f}, "
        f"achieved {snap_ret:.1f} over {FINAL_EVAL_EPISODES} episodes (normalised {f1(snap_norm)}); "
        + (f"target {target_norm:.1f} ({source}, return {target_return:.1f}) ± {tol:.1f}: "
           + ("reached" if reached else "NOT reached") if target_norm is not None else "no target (no D4RL reference scores)"))
    if reached is False:
        if (best_norm or 0) < target_norm - tol:
            why = (f"the best snapshot scored {f1(best_norm)} (normalised) within the budget of {budget:,} env steps, "
                   f"below the target {target_norm:.1f}")
            fix = "Raise --budget, or lower the target"
        else:
            why = (f"the chosen snapshot achieved {f1(snap_norm)} (normalised) against the target {target_norm:.1f} ± {tol:.1f}; "
                   f"snapshots are {eval_every:,} env steps apart")
            fix = "A larger --budget gives more snapshots around the target (evaluations every budget/20 steps)"
        msg = f"{quality} dataset for {env_id}: target not reached: {why}. {fix}"
        if strict:
            raise MprlError(msg + ", or drop --strict to keep the dataset anyway. Nothing was written.")
        say(f"[{quality}] WARNING: {msg}.", warn=True)

    broken = 0
    if quality == "medium-replay":
        buffers, broken = log.episodes(snap["transitions"])
    else:
        agent.load_state_dict(snap["state"])
        rep = _Reporter(progress, f"{quality}: record", size)
        with _torch_threads(1):
            buffers, _ = _rollout(env_id, size, lambda o: agent.act(o, noise=EXPLORATION_NOISE),
                                  seed + 1, rep)
    meta = {
        "budget": int(budget),
        "eval_every": eval_every,
        "evaluations": [[s["env_step"], s["return"]] for s in snapshots],
        "snapshot": {"env_step": snap["env_step"], "return": snap["return"],
                     "normalized_score": norm(snap["return"]), "transitions_seen": snap["transitions"],
                     "achieved_return": snap_ret, "achieved_normalized_score": snap_norm},
        "best": {"env_step": best["env_step"], "return": best["return"], "achieved_return": best_ret,
                 "achieved_normalized_score": best_norm},
        "final": {"env_step": final["env_step"], "return": final_ret, "normalized_score": norm(final_ret)},
        "target": {"normalized_score": target_norm, "return": target_return, "source": source,
                   "tolerance": tol, "reached": reached, "strict": bool(strict)},
        "expert_return": best_ret,
        "snapshot_rule": ("expert: the best evaluated snapshot" if quality == "expert" else
                          "the evaluated snapshot up to the best whose score is closest to the target "
                          "(default 1/3 of the best's normalised score)"),
        "achieved_episodes": FINAL_EVAL_EPISODES,
        "normalised_with": "d4rl" if refs is not None else "measured random return and best snapshot's return",
        "agent": "mprl.benchmarks.plain.PlainTD3",
        "agent_settings": {**(agent_settings or {}), "utd": utd},
    }
    if quality in ("medium", "expert"):
        meta["exploration"] = (f"Gaussian noise sigma = {EXPLORATION_NOISE} x (high - low) / 2 "
                               "added to the snapshot policy's actions, clipped to the bounds")
    else:
        meta["exploration"] = "the training agent's own (TD3 exploration noise, initial random steps)"
        meta["episode_discontinuities"] = broken
    return buffers, snap["state"], meta, best_ret


def _say(progress: Progress) -> Callable[..., None]:
    """A line through `progress`; a warning without one goes to Python's warnings instead."""
    def say(line: str, warn: bool = False) -> None:
        if progress is not None:
            progress(line)
        elif warn:
            warnings.warn(line, UserWarning, stacklevel=3)
    return say


def build_dataset(
    env_id: str,
    quality: str,
    *,
    size: int | None,
    budget: int | None = None,
    seed: int = 0,
    dataset_id: str | None = None,
    overwrite: bool = False,
    progress: Progress = print,
    data_format: str = "hdf5",
    agent: dict | None = None,
    target_score: float | None = None,
    target_return: float | None = None,
    strict: bool = False,
) -> str:
    """Build a Minari dataset in the local Minari folder and return its id.

    `agent`: settings of the data-collecting TD3 agent (PlainTD3 keywords such as `hidden`,
    `lr`, `batch_size`, plus `utd`); defaults are the TD3 paper's.

    `size` transitions for random/medium/expert (ignored for medium-replay, whose size is
    the number of transitions the agent saw up to the medium snapshot). `budget`: env steps of
    online TD3 training for medium/medium-replay/expert (default DEFAULT_BUDGET).

    `target_score` (normalised: D4RL's scale where the env has D4RL scores, else 0 = random,
    100 = the best snapshot) or `target_return` (an episode return) replaces the quality's
    default target; `strict` raises MprlError, writing nothing, when the target is not reached.
    """
    import torch

    t_start = time.perf_counter()
    if quality not in QUALITIES:
        raise MprlError(f"Unknown dataset quality '{quality}'. Choose one of: {', '.join(QUALITIES)}.")
    env = make_env(env_id)  # unknown env → MprlError before any work
    env.close()
    if quality != "medium-replay":
        if size is None or int(size) < 1:
            raise MprlError(f"--size must be a positive number of transitions for '{quality}' (got {size}).")
        size = int(size)
    elif size is not None and progress:
        progress("[medium-replay] --size does not apply: the dataset holds every transition the "
                 "agent saw up to the medium snapshot.")
    if quality != "random":
        budget = DEFAULT_BUDGET if budget is None else int(budget)
        if budget < 1:
            raise MprlError(f"--budget must be a positive number of env steps (got {budget}).")
    target = resolve_target(quality, env_id, target_score, target_return)
    if data_format not in ("hdf5", "arrow", "parquet"):
        raise MprlError(f"Unknown data format '{data_format}': hdf5, arrow or parquet.")
    dataset_id = dataset_id or default_dataset_id(env_id, quality)
    parse_dataset_id(dataset_id)

    from minari.storage.datasets_root_dir import get_dataset_path

    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    final = Path(get_dataset_path(dataset_id))
    if final.exists() and not overwrite:
        raise _exists_error(dataset_id, final)
    _clean_stale_staging(root)

    staging = root / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        refs = reference_scores(env_id)
        rand_ret = random_return(env_id, RANDOM_RETURN_EPISODES, seed)
        if progress:
            progress(f"[{quality}] random policy return {rand_ret:.1f} over {RANDOM_RETURN_EPISODES} episodes"
                     + (f"; D4RL refs {refs[0]} / {refs[1]}" if refs else "; no D4RL refs for this env"))
        meta: dict = {}
        policy_state = None
        if quality == "random":
            space = _action_space(env_id)
            space.seed(seed)
            buffers, _ = _rollout(env_id, size, lambda _o: space.sample(), seed,
                                  _Reporter(progress, "random: record", size))
            ref_max = None
            meta["exploration"] = "uniform random actions (action_space.sample(), seeded)"
        else:
            buffers, policy_state, meta, ref_max = _td3_quality(
                env_id, quality, size, budget, seed, refs, rand_ret, progress, agent, target, strict)

        if refs is not None:
            ref_min, ref_max, ref_source = refs[0], refs[1], "d4rl"
        else:
            ref_min, ref_source = rand_ret, "measured"
        n_steps = int(sum(len(b.rewards) for b in buffers))
        meta.update({
            "mprl_version": mprl.__version__,
            "quality": quality,
            "env_id": env_id,
            "seed": int(seed),
            "size": size if quality != "medium-replay" else None,
            "transitions": n_steps,
            "episodes": len(buffers),
            "random_return": rand_ret,
            "random_return_episodes": RANDOM_RETURN_EPISODES,
            "ref_source": ref_source,
            "policy_checkpoint": POLICY_FILE if policy_state is not None else None,
            "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })
        meta.setdefault("budget", None)
        meta.setdefault("expert_return", None)

        t_write = time.perf_counter()
        with minari_root(staging):
            write_minari(
                dataset_id, buffers, env_id, ref_min=ref_min, ref_max=ref_max,
                algorithm="uniform random" if quality == "random" else "mprl.benchmarks.plain.PlainTD3",
                description=f"mprl {quality} dataset for {env_id} ({n_steps} transitions, seed {seed}).",
                data_format=data_format,
            )
        staged = staging / dataset_id
        if policy_state is not None:
            torch.save(policy_state, staged / POLICY_FILE)
        meta["write_time_s"] = round(time.perf_counter() - t_write, 3)
        meta["build_time_s"] = round(time.perf_counter() - t_start, 3)
        _set_metadata(staged, {METADATA_KEY: meta})
        with minari_root(staging):
            import minari

            save_episode_table(minari.load_dataset(dataset_id), _table_from_buffers(buffers))
        _install(staged, final, dataset_id, overwrite, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if progress:
        progress(f"Built {dataset_id}: {n_steps} transitions in {len(buffers)} episodes "
                 f"({_fmt_s(time.perf_counter() - t_start)}) at {final}")
    return dataset_id


def _table_from_buffers(buffers: list) -> dict[str, np.ndarray]:
    """The transitions cache (see `store.episode_table`) straight from the episode buffers."""
    f32 = lambda key: np.concatenate([np.asarray(getattr(b, key)).reshape(len(getattr(b, key)), -1)
                                      for b in buffers]).astype(np.float32)
    return {
        "observations": f32("observations"),
        "actions": f32("actions"),
        "rewards": f32("rewards").reshape(-1),
        "terminations": f32("terminations").reshape(-1),
        "truncations": f32("truncations").reshape(-1),
        "lengths": np.asarray([len(b.rewards) for b in buffers], dtype=np.int64),
    }


def _set_metadata(dataset_path: Path, update: dict) -> None:
    from minari.dataset.minari_storage import MinariStorage

    MinariStorage.read(dataset_path / "data").update_metadata(update)
