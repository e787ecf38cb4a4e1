"""Transition stores that live on the learner's device and are sampled without leaving torch.

`TensorReplay` has a declared schema: the core fields every algorithm gets, plus what an
algorithm asks for (`EXTRA_FIELDS`: Monte-Carlo return-to-go, offline/online source, episode
id). Terminations and truncations are kept apart: only a termination stops bootstrapping.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

#: (name, shape) of the fields every replay has; "obs"/"actions" shapes are filled per env.
CORE_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminals", "truncations")
#: fields an algorithm may ask for (`DataLearner.REPLAY_FIELDS`)
EXTRA_FIELDS = {
    "rtg": "discounted Monte-Carlo return-to-go of the transition's episode (Cal-QL's V^μ(s))",
    "source": "0 for dataset rows, 1 for online rows",
    "episode_id": "episode index (dataset episodes first, then online episodes)",
}
KEYS = CORE_FIELDS  # kept for readers of the five-field era


class TensorReplay:
    """Ring buffer of transitions (one tensor per field); also holds a whole offline dataset."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu", seed: int = 0, extra: Iterable[str] = ()) -> None:
        unknown = set(extra) - set(EXTRA_FIELDS)
        if unknown:
            raise ValueError(f"unknown replay fields {sorted(unknown)}; known: {sorted(EXTRA_FIELDS)}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.fields = (*CORE_FIELDS, *sorted(set(extra)))
        shapes = {"obs": (obs_dim,), "actions": (act_dim,), "next_obs": (obs_dim,)}
        self.data = {k: torch.zeros((self.capacity, *shapes.get(k, ())), dtype=torch.float32, device=self.device) for k in self.fields}
        self.size = 0
        self.pos = 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], device: torch.device | str = "cpu", seed: int = 0, extra: Iterable[str] = ()) -> TensorReplay:
        n = len(arrays["rewards"])
        buf = cls(n, arrays["obs"].shape[1], arrays["actions"].shape[1], device, seed, extra)
        buf.add(arrays)
        return buf

    @classmethod
    def joined(cls, arrays: dict[str, np.ndarray], online_capacity: int, device: torch.device | str = "cpu", seed: int = 0, extra: Iterable[str] = ()) -> tuple[TensorReplay, TensorReplay, TensorReplay]:
        """(B_off ∪ B_on, B_off, B_on) sharing one storage: offline rows first, then the online
        ring, so a minibatch over the union is a single index operation."""
        n_off = len(arrays["rewards"])
        both = cls(n_off + online_capacity, arrays["obs"].shape[1], arrays["actions"].shape[1], device, seed, extra)
        both.add(arrays)
        offline, online = both.view(0, n_off), both.view(n_off, online_capacity)
        offline.size = n_off
        return both, offline, online

    def view(self, start: int, length: int) -> TensorReplay:
        """A replay over rows [start, start + length) of this one's storage (shared memory)."""
        v = object.__new__(TensorReplay)
        v.capacity, v.device, v.size, v.pos, v.fields = length, self.device, 0, 0, self.fields
        v.data = {k: t[start : start + length] for k, t in self.data.items()}
        v.generator = self.generator
        return v

    def add(self, arrays: dict[str, np.ndarray]) -> torch.Tensor:
        """Append rows (missing optional fields are 0); returns the rows' indices."""
        n = len(arrays["rewards"])
        if n == 0:
            return torch.zeros(0, dtype=torch.long, device=self.device)
        arrays = dict(arrays)
        if "truncations" not in arrays and "timeouts" in arrays:
            arrays["truncations"] = arrays["timeouts"]
        if n > self.capacity:  # only the newest rows survive; avoids duplicate scatter indices
            arrays = {k: np.asarray(v)[n - self.capacity :] for k, v in arrays.items()}
            self.pos = (self.pos + n - self.capacity) % self.capacity
            n = self.capacity
        idx = (torch.arange(n, device=self.device) + self.pos) % self.capacity  # made on the device: no extra copy
        for k in self.fields:
            if k in arrays:
                self.data[k][idx] = torch.as_tensor(np.asarray(arrays[k], dtype=np.float32), device=self.device)
            elif k not in ("obs", "actions", "rewards", "next_obs"):
                self.data[k][idx] = 0.0
            else:
                raise KeyError(f"transitions lack the field {k!r}")
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return idx

    def rows(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.data.items()}

    def sample_indices(self, n: int) -> torch.Tensor:
        return torch.randint(0, self.size, (n,), device=self.device, generator=self.generator)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        return self.rows(self.sample_indices(batch_size))

    def __len__(self) -> int:
        return self.size

    def ordered_rows(self) -> torch.Tensor:
        """Indices of the filled rows, oldest first (the ring's order)."""
        start = self.pos if self.size == self.capacity else 0
        return (torch.arange(self.size, device=self.device) + start) % self.capacity

    def get_state(self) -> dict[str, np.ndarray]:
        """The filled rows, oldest first, as numpy arrays (for a checkpoint)."""
        rows = self.ordered_rows()
        return {k: v[rows].cpu().numpy() for k, v in self.data.items()}

    def set_state(self, rows: dict[str, np.ndarray]) -> None:
        """Refill from `get_state` rows: the same contents in the same ring order."""
        self.size = self.pos = 0
        self.add(rows)


def episode_ids(terminals: np.ndarray, truncations: np.ndarray) -> np.ndarray:
    """Episode index of each row of a flat dataset whose episodes end in a termination or truncation."""
    ends = (np.asarray(terminals) > 0) | (np.asarray(truncations) > 0)
    ids = np.concatenate([[0], np.cumsum(ends)[:-1]])
    return ids.astype(np.float32)


def return_to_go(rewards: np.ndarray, episode: np.ndarray, gamma: float, sparse_failure_reward: float | None = None) -> np.ndarray:
    """Discounted Monte-Carlo return-to-go G_t = Σ_k γ^k r_{t+k} within each episode.

    With `sparse_failure_reward` set, an episode whose rewards all equal it gets
    r / (1 − γ) at every step (Cal-QL's rule for all-failure trajectories: an infinite
    horizon of failures, not the truncated sum)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(rewards)
    bounds = np.flatnonzero(np.diff(np.asarray(episode))) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(rewards)]):
        r = rewards[start:stop]
        if sparse_failure_reward is not None and np.all(r == sparse_failure_reward):
            out[start:stop] = sparse_failure_reward / (1.0 - gamma)
            continue
        g = 0.0
        for i in range(len(r) - 1, -1, -1):
            g = r[i] + gamma * g
            out[start + i] = g
    return out.astype(np.float32)


class EpisodeReturnsToGo:
    """The `rtg` field of online rows: rows wait (rtg −∞, i.e. no bound) until their episode
    ends, then get the discounted return-to-go of the whole episode, as the dataset's do.

    `returns_to_go(rewards, episode_ids)` computes it (the algorithm's rule, e.g. Cal-QL's
    sparse-failure rule on its scaled rewards). Episodes arrive in chunks (`episode_uid`,
    `episode_end` from episodes_to_transitions); rows are indices into `replay`'s storage.
    """

    PENDING = float("-inf")

    def __init__(self, replay: TensorReplay, returns_to_go) -> None:
        self.replay, self.returns_to_go = replay, returns_to_go
        self.pending: dict[str, tuple[list[torch.Tensor], list[np.ndarray]]] = {}
        self.finished = 0

    def add(self, transitions: dict[str, np.ndarray], idx: torch.Tensor) -> None:
        """Record the rows `idx` just written for `transitions`; fill the episodes that ended."""
        if "episode_uid" not in transitions or len(idx) == 0:
            return
        rtg = self.replay.data["rtg"]
        rtg[idx] = self.PENDING
        uids, ends, rewards = transitions["episode_uid"], np.asarray(transitions["episode_end"]), np.asarray(transitions["rewards"], dtype=np.float32)
        bounds = np.flatnonzero(uids[1:] != uids[:-1]) + 1
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(uids)]):
            rows, rews = self.pending.setdefault(uids[start], ([], []))
            rows.append(idx[start:stop])
            rews.append(rewards[start:stop])
            if ends[stop - 1] > 0:
                self.pending.pop(uids[start])
                r = np.concatenate(rews)
                rtg[torch.cat(rows)] = torch.as_tensor(self.returns_to_go(r, np.zeros(len(r), dtype=np.float32)), device=rtg.device)
                self.finished += 1


class BalancedReplay:
    """Balanced replay (Lee et al. 2022): prioritised sampling over B_off ∪ B_on.

    A sample's priority is w(s, a)^(1/T), w ≈ d_on(s, a) / d_off(s, a) from a density-ratio
    network, so near-on-policy samples (mostly online ones) are replayed more. Priorities are
    refreshed for the samples of each minibatch; new online samples enter at the maximum.
    Indices for many minibatches are drawn at once, so the O(N) draw is paid once per call.
    """

    def __init__(self, both: TensorReplay, offline: TensorReplay, online: TensorReplay, temperature: float = 5.0) -> None:
        """`both` is the storage that `offline` and `online` are views of (TensorReplay.joined)."""
        self.both, self.offline, self.online = both, offline, online
        self.temperature = temperature
        device = offline.device
        self.priorities = torch.ones(offline.size + online.capacity, device=device)
        self.priorities[offline.size :] = 0.0
        self.generator = offline.generator

    def on_added(self, n: int) -> None:
        """Give the n rows just added to B_on (a ring buffer) the current maximum priority."""
        if n == 0:
            return
        base = self.offline.size
        pos = (self.online.pos - torch.arange(1, min(n, self.online.capacity) + 1, device=self.priorities.device)) % self.online.capacity
        self.priorities[base + pos] = self.priorities[: base + self.online.size].max().clamp(min=1.0)

    def sample(self, num_batches: int, batch_size: int) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """`num_batches` prioritised minibatches with their indices, from one draw."""
        p = self.priorities[: self.offline.size + self.online.size]
        # B_on's ring fills from its start, so p's indices are rows of `both` as they are.
        idx = torch.multinomial(p, num_batches * batch_size, replacement=True, generator=self.generator)
        return [(self.both.rows(i), i) for i in idx.view(num_batches, batch_size)]

    def online_priorities(self) -> np.ndarray:
        """B_on's priorities in `online.get_state()` row order."""
        return self.priorities[self.offline.size + self.online.ordered_rows()].cpu().numpy()

    def set_online_priorities(self, values: np.ndarray) -> None:
        """After `online.set_state`, whose rows start at B_on's first row."""
        n = len(values)
        self.priorities[self.offline.size : self.offline.size + n] = torch.as_tensor(values, device=self.priorities.device)

    def update_priorities(self, idx: torch.Tensor, w: torch.Tensor) -> None:
        self.priorities[idx] = w.detach().clamp(min=1e-6) ** (1.0 / self.temperature)

    def set_priorities(self, idx: torch.Tensor, priorities: torch.Tensor) -> None:
        """Priorities the algorithm computed itself (Off2On normalises and clamps w^(1/T))."""
        self.priorities[idx] = priorities.detach()
