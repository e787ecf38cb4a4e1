"""One sampler for every algorithm: where a minibatch comes from.

Modes (the `replay` setting of hybrid phases; offline and online phases have one each):
  offline   — the dataset only (offline phases);
  online    — the online replay only (online phases; in a hybrid phase the dataset is kept
              for the algorithm's own use, e.g. OPT's pre-training, but not replayed);
  shared    — one buffer: dataset rows first, online rows appended, sampled uniformly
              (CORL's IQL/AWAC/SPOT fine-tuning);
  mixed     — a fixed fraction `offline_ratio` of each batch from the dataset, the rest from
              the online replay (RLPD's and Cal-QL's symmetric sampling at 0.5);
  balanced  — prioritised over dataset ∪ online replay by density-ratio priorities
              (Lee et al. 2022; the algorithm trains the density network and reports w).
Indices for many minibatches are drawn in one call, so sampling costs one kernel per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from algorithms.common.replay import BalancedReplay, TensorReplay

MODES = ("offline", "online", "shared", "mixed", "balanced")
HYBRID_MODES = ("shared", "mixed", "balanced", "online")


class Sampler:
    """Owns the learner's data: `offline` (the dataset, if any) and `online` (the ring replay),
    stored as one tensor per field so any mode is a single gather per minibatch."""

    def __init__(self, mode: str, obs_dim: int, act_dim: int, capacity: int, device: torch.device, seed: int = 0,
                 dataset: dict[str, np.ndarray] | None = None, extra: Iterable[str] = (), offline_ratio: float = 0.5,
                 balanced_temperature: float = 5.0) -> None:
        if mode not in MODES:
            raise ValueError(f"sampler mode must be one of {MODES}, got {mode!r}")
        if mode != "online" and dataset is None:
            raise ValueError(f"sampler mode {mode!r} needs a dataset")
        self.mode, self.offline_ratio = mode, offline_ratio
        self.balanced: BalancedReplay | None = None
        if dataset is None:
            self.online = TensorReplay(capacity, obs_dim, act_dim, device, seed, extra)
            self.offline = self.both = None
        elif mode == "offline":
            self.offline = TensorReplay.from_arrays(dataset, device, seed, extra)
            self.online = self.both = None
        else:
            self.both, self.offline, self.online = TensorReplay.joined(dataset, capacity, device, seed, extra)
            if mode == "balanced":
                self.balanced = BalancedReplay(self.both, self.offline, self.online, balanced_temperature)
        self.generator = (self.online if self.online is not None else self.offline).generator

    # -- data in ----------------------------------------------------------------------------
    def add(self, transitions: dict[str, np.ndarray]) -> torch.Tensor:
        """Online rows in (their indices into `online`); the dataset never changes."""
        if self.online is None:
            raise RuntimeError("an offline sampler takes no online transitions")
        n = len(transitions.get("rewards", ()))
        idx = self.online.add(transitions)
        if self.balanced is not None:
            self.balanced.on_added(n)
        return idx

    def __len__(self) -> int:
        return sum(len(b) for b in (self.offline, self.online) if b is not None)

    def online_size(self) -> int:
        return len(self.online) if self.online is not None else 0

    # -- minibatches out --------------------------------------------------------------------
    def batches(self, num_batches: int, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """`num_batches` minibatches; balanced ones carry their rows' indices under `idx`."""
        if self.mode == "balanced":
            for batch, idx in self.balanced.sample(num_batches, batch_size):
                yield {**batch, "idx": idx}
            return
        if self.mode == "mixed":
            n_off = int(round(batch_size * self.offline_ratio))
            off = self.offline.sample_indices(num_batches * n_off).view(num_batches, n_off)
            on = self.online.sample_indices(num_batches * (batch_size - n_off)).view(num_batches, batch_size - n_off) + len(self.offline)
            for i in range(num_batches):
                yield self.both.rows(torch.cat([off[i], on[i]]))
            return
        if self.mode == "shared":
            store, n = self.both, len(self.offline) + len(self.online)
        else:
            store = self.offline if self.mode == "offline" else self.online
            n = len(store)
        idx = torch.randint(0, n, (num_batches, batch_size), device=store.device, generator=self.generator)
        for i in range(num_batches):
            yield store.rows(idx[i])

    def can_sample(self) -> bool:
        if self.mode == "mixed":
            return len(self.offline) > 0 and len(self.online) > 0
        return len(self) > 0

    # -- checkpoints (`checkpoint_replay`): the online rows; the dataset reloads from disk ---
    def get_state(self) -> dict[str, np.ndarray]:
        state = {"rows": self.online.get_state()} if self.online is not None else {}
        if self.balanced is not None:
            state["priorities"] = self.balanced.online_priorities()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if self.online is not None and "rows" in state:
            self.online.set_state(state["rows"])
        if self.balanced is not None and "priorities" in state:
            self.balanced.set_online_priorities(state["priorities"])
