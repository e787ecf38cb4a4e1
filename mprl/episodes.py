"""The one episode loop: evaluation, videos, Serve rollouts and dataset recording all step
environments through `run_episodes`, so seeding, resets and the end-of-episode rule are the
same everywhere.

Episode i is reset with `seeds[i]` (None: continue the env's own RNG); an episode ends on a
termination or a truncation, or when `max_episode_steps` is reached; the loop stops after
`episodes` episodes or `steps` environment steps, whichever is given (a run cut by `steps`
leaves its last episode unfinished: `partial_return`, `partial_length`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Transition:
    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool  # by the env's time limit or `max_episode_steps`
    episode: int  # index of the episode in this run
    last: bool  # the run's final step (cut by `steps`)


@dataclass
class Episodes:
    returns: list[float] = field(default_factory=list)  # finished episodes
    lengths: list[int] = field(default_factory=list)
    partial_return: float = 0.0  # the unfinished last episode, if `steps` cut it
    partial_length: int = 0


def run_episodes(
    env: Any,
    act: Callable[[np.ndarray], np.ndarray],
    *,
    seeds: Sequence[int | None] | Callable[[int], int | None],
    episodes: int | None = None,
    steps: int | None = None,
    max_episode_steps: int | None = None,
    before_step: Callable[[], None] | None = None,
    on_step: Callable[[Transition], None] | None = None,
) -> Episodes:
    """Step `env` with `act` (obs → action) until `episodes` episodes or `steps` steps.

    `seeds` is a sequence (episode i → seeds[i]) or a function of i. `before_step` runs before
    each action (a video grabs its frame there); `on_step` sees every transition."""
    if (episodes is None) == (steps is None):
        raise ValueError("give exactly one of episodes or steps")
    seed_of = seeds if callable(seeds) else (lambda i: seeds[i])
    out = Episodes()
    i, total = 0, 0
    obs, _ = env.reset(seed=seed_of(0))
    ret, length = 0.0, 0
    while (episodes is None or i < episodes) and (steps is None or total < steps):
        if before_step is not None:
            before_step()
        action = act(obs)
        next_obs, r, terminated, truncated, _ = env.step(action)
        ret, length, total = ret + float(r), length + 1, total + 1
        truncated = bool(truncated) or (max_episode_steps is not None and length >= max_episode_steps)
        done = bool(terminated) or truncated
        if on_step is not None:
            on_step(Transition(obs, action, float(r), next_obs, bool(terminated), truncated, i, steps is not None and total >= steps))
        obs = next_obs
        if done:
            out.returns.append(ret)
            out.lengths.append(length)
            i, ret, length = i + 1, 0.0, 0
            if (episodes is None or i < episodes) and (steps is None or total < steps):
                obs, _ = env.reset(seed=seed_of(i))
    out.partial_return, out.partial_length = ret, length
    return out
