"""Small InvertedPendulum-v5 Minari datasets from a scripted controller, in seconds.

A linear controller a = K·s (K = [1, 10, 1, 1], found by hand) balances the pole for the full
1000 steps; building an expert dataset with mprl's TD3 instead costs minutes on 2 cores. The
datasets are real Minari datasets written by mprl's own writer, read back by the learners as
any other.
"""

from __future__ import annotations

import numpy as np

ENV = "InvertedPendulum-v5"
K = np.array([1.0, 10.0, 1.0, 1.0])


def controller_dataset(dataset_id: str, *, steps: int, p_bad: float = 0.0, noise: float = 0.0, seed: int = 0) -> str:
    """`steps` transitions of the controller; at each step, with probability `p_bad` the action is
    the controller's opposite −K·s (the dataset then holds good and bad actions in the same states),
    plus Gaussian noise of σ `noise`. Returns the dataset id (written once per Minari folder)."""
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from mprl.datasets import open_dataset
    from mprl.datasets.build import write_minari

    try:
        open_dataset(dataset_id)
        return dataset_id
    except Exception:  # noqa: BLE001 - not built yet
        pass
    env = gym.make(ENV)
    rng = np.random.default_rng(seed)
    buffers, n, episode = [], 0, 0
    while n < steps:
        obs, _ = env.reset(seed=seed + episode)
        o, a, r, te, tr = [obs], [], [], [], []
        while True:
            act = K @ obs * (-1.0 if rng.random() < p_bad else 1.0) + noise * rng.normal()
            act = np.clip(np.array([act], dtype=np.float32), -3.0, 3.0)
            obs, rew, term, trunc, _ = env.step(act)
            n += 1
            o.append(obs), a.append(act), r.append(rew), te.append(term), tr.append(trunc or (n == steps and not term))
            if term or tr[-1]:
                break
        buffers.append(EpisodeBuffer(observations=np.asarray(o), actions=np.asarray(a), rewards=np.asarray(r, dtype=np.float64),
                                     terminations=np.asarray(te), truncations=np.asarray(tr)))
        episode += 1
    env.close()
    write_minari(dataset_id, buffers, ENV, ref_min=None, ref_max=None, algorithm="scripted linear controller",
                 description=f"InvertedPendulum controller data, p_bad={p_bad}, noise={noise}")
    minari.load_dataset(dataset_id)
    return dataset_id
