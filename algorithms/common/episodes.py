"""Turn RLlib episode chunks into flat (s, a, r, s', terminal) arrays for the learner."""

from __future__ import annotations

import numpy as np
from ray.rllib.env.single_agent_episode import SingleAgentEpisode


def episodes_to_transitions(episodes: list[SingleAgentEpisode]) -> dict[str, np.ndarray]:
    """Only a true termination stops bootstrapping; a time-limit truncation does not.

    Besides the replay's fields, each row carries `episode_uid` (the RLlib episode id, the same
    across the chunks of one episode) and `episode_end` (1 on the last row of an episode that
    terminated or was truncated in this chunk), so a learner can post-process whole episodes
    (Cal-QL's Monte-Carlo return-to-go of each finished online episode); the replay stores
    only its declared fields and ignores these."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminals", "truncations", "episode_uid", "episode_end")}
    for ep in episodes:
        n = len(ep)
        if n == 0:
            continue
        obs = np.asarray(ep.get_observations(slice(0, n + 1)), dtype=np.float32)
        parts["obs"].append(obs[:-1])
        parts["next_obs"].append(obs[1:])
        parts["actions"].append(np.asarray(ep.get_actions(slice(0, n)), dtype=np.float32))
        parts["rewards"].append(np.asarray(ep.get_rewards(slice(0, n)), dtype=np.float32))
        term = np.zeros(n, dtype=np.float32)
        term[-1] = float(ep.is_terminated)
        parts["terminals"].append(term)
        trunc = np.zeros(n, dtype=np.float32)
        trunc[-1] = float(ep.is_truncated and not ep.is_terminated)
        parts["truncations"].append(trunc)
        parts["episode_uid"].append(np.full(n, ep.id_, dtype=object))
        end = np.zeros(n, dtype=np.float32)
        end[-1] = float(ep.is_done)
        parts["episode_end"].append(end)
    if not parts["rewards"]:
        return {}
    return {k: np.concatenate(v) for k, v in parts.items()}
