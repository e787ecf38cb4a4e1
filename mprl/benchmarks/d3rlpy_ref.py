"""d3rlpy's implementation of an mprl algorithm, with the same data, batch, widths and settings.

d3rlpy is the library a user would otherwise pick; `mprl bench learner` and `mprl bench
algorithms` run it beside ours. It is an optional dependency: d3rlpy 2.8 pins
`gymnasium==1.0.0`, which mprl's gymnasium 1.2 conflicts with, so it installs without its
dependency resolution (INSTALL below; its other dependencies are the `bench` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

INSTALL = 'pip install -c constraints.txt -e ".[bench]" && pip install --no-deps d3rlpy==2.8.1'
#: mprl algorithm → d3rlpy config class name
D3RLPY_NAMES = {"td3": "TD3Config", "td3_bc": "TD3PlusBCConfig", "sac": "SACConfig", "bc": "BCConfig",
                "iql": "IQLConfig", "awac": "AWACConfig", "cql": "CQLConfig", "cal_ql": "CalQLConfig"}


def available() -> bool:
    try:
        import d3rlpy  # noqa: F401
    except Exception:  # noqa: BLE001  ImportError, or a broken install (its gym import)
        return False
    quiet()
    return True


def quiet() -> None:
    """d3rlpy logs every fit's parameters and epochs to stdout (structlog): errors only, so
    `--json` output stays one object."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def missing_line() -> str:
    return f"d3rlpy is not installed: the d3rlpy columns are skipped (install it with `{INSTALL}`)"


def _hidden(c: Any, attr: str = "hidden") -> list[int]:
    return [int(h) for h in getattr(c, attr)]


def _encoder(hidden: list[int]) -> Any:
    from d3rlpy.models import VectorEncoderFactory

    return VectorEncoderFactory(hidden_units=list(hidden))


def make(name: str, c: Any, *, dataset_obs: np.ndarray | None = None, budget: int | None = None) -> Any | None:
    """d3rlpy's algorithm `name` configured like our config `c` (None: d3rlpy has none).

    `dataset_obs`: the states our normaliser's statistics come from, when `normalize_obs` is on
    (d3rlpy's StandardObservationScaler: (s − mean) / (std + 1e-3), the same as ours).
    `budget`: the offline update budget, for IQL's cosine actor schedule.
    """
    if name not in D3RLPY_NAMES:
        return None
    import d3rlpy
    from d3rlpy.optimizers import AdamFactory, CosineAnnealingLRFactory
    from d3rlpy.preprocessing import StandardObservationScaler

    common: dict[str, Any] = {"batch_size": int(c.train_batch_size_per_learner), "gamma": float(c.gamma)}
    if getattr(c, "normalize_obs", False) and dataset_obs is not None:
        common["observation_scaler"] = StandardObservationScaler(mean=dataset_obs.mean(0), std=dataset_obs.std(0))
    enc = _encoder(_hidden(c))
    cls = getattr(d3rlpy.algos, D3RLPY_NAMES[name])
    if name in ("td3", "td3_bc"):
        kw = {"actor_learning_rate": c.actor_lr, "critic_learning_rate": c.critic_lr, "tau": c.tau,
              "target_smoothing_sigma": c.policy_noise, "target_smoothing_clip": c.noise_clip, "update_actor_interval": c.policy_delay,
              "actor_encoder_factory": enc, "critic_encoder_factory": enc}
        if name == "td3_bc":
            kw["alpha"] = c.alpha
    elif name == "sac":
        kw = {"actor_learning_rate": c.actor_lr, "critic_learning_rate": c.critic_lr, "temp_learning_rate": c.alpha_lr if c.learn_alpha else 0.0,
              "initial_temperature": c.initial_alpha, "tau": c.tau, "actor_encoder_factory": enc, "critic_encoder_factory": enc}
    elif name == "bc":
        kw = {"learning_rate": c.actor_lr, "policy_type": "deterministic" if c.head == "deterministic" else "stochastic", "encoder_factory": enc}
    elif name == "iql":
        cosine = c.actor_lr_schedule == "cosine" or (c.actor_lr_schedule == "auto" and c.paradigm == "offline" and budget)
        actor_optim = AdamFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=int(budget))) if cosine else AdamFactory()
        kw = {"actor_learning_rate": c.actor_lr, "critic_learning_rate": c.critic_lr, "tau": c.tau, "expectile": c.expectile,
              "weight_temp": c.beta, "max_weight": c.max_weight, "actor_optim_factory": actor_optim,
              "actor_encoder_factory": enc, "critic_encoder_factory": enc, "value_encoder_factory": enc}
    elif name == "awac":
        kw = {"actor_learning_rate": c.actor_lr, "critic_learning_rate": c.critic_lr, "tau": c.tau, "lam": c.awac_lambda, "n_action_samples": 1,
              "actor_encoder_factory": enc, "critic_encoder_factory": enc}
    else:  # cql, cal_ql: critics of q_n_hidden_layers × width; α′ fixed at 1 unless the Lagrange variant learns it.
        # d3rlpy's CalQL takes the discounted return-to-go of each sampled transition from its
        # episode's remaining rewards (its BasicTransitionPicker), as ours stores per transition.
        critic = _encoder([_hidden(c)[0]] * int(c.q_n_hidden_layers))
        kw = {"actor_learning_rate": c.actor_lr, "critic_learning_rate": c.critic_lr, "temp_learning_rate": c.alpha_lr if c.learn_alpha else 0.0,
              "alpha_learning_rate": c.cql_lagrange_lr if c.cql_lagrange else 0.0, "initial_alpha": 1.0,
              "alpha_threshold": c.cql_target_action_gap if c.cql_lagrange else 0.0,
              "conservative_weight": c.cql_alpha if c.paradigm == "offline" else c.cql_alpha_online,
              "n_action_samples": c.cql_n_actions, "tau": c.tau, "max_q_backup": c.cql_max_target_backup,
              "actor_encoder_factory": enc, "critic_encoder_factory": critic}
    return cls(**common, **kw).create(device=False)


def mdp_dataset(arrays: dict[str, np.ndarray]) -> Any:
    """Our flat dataset arrays as a d3rlpy MDPDataset (episodes split at terminals/truncations)."""
    from d3rlpy.dataset import MDPDataset

    timeouts = np.asarray(arrays["truncations"], dtype=np.float32).copy()
    terminals = np.asarray(arrays["terminals"], dtype=np.float32)
    if not (terminals[-1] or timeouts[-1]):
        timeouts[-1] = 1.0  # the last episode ends with the dataset
    return MDPDataset(observations=np.asarray(arrays["obs"], dtype=np.float32), actions=np.asarray(arrays["actions"], dtype=np.float32),
                      rewards=np.asarray(arrays["rewards"], dtype=np.float32), terminals=terminals, timeouts=timeouts)


def fit(algo: Any, dataset: Any, n_steps: int) -> None:
    """d3rlpy's own offline loop, without logging, progress bar, evaluators or saving."""
    from d3rlpy.logging import NoopAdapterFactory

    algo.fit(dataset, n_steps=n_steps, n_steps_per_epoch=n_steps, logger_adapter=NoopAdapterFactory(), show_progress=False,
             save_interval=10**9, evaluators=None, with_timestamp=False)


class Online:
    """d3rlpy's own online loop (`fit_online`) on one env and buffer kept across calls: updates
    after every `fragment` env steps, `fragment × utd` of them, the schedule of ours."""

    def __init__(self, name: str, algo: Any, env_id: str, c: Any, fragment: int, utd: int, seed: int = 0) -> None:
        import gymnasium as gym
        from d3rlpy.algos import NormalNoise
        from d3rlpy.dataset import create_fifo_replay_buffer

        self.algo, self.fragment, self.utd = algo, fragment, utd
        self.env = gym.make(env_id)
        self.env.reset(seed=seed)
        self.buffer = create_fifo_replay_buffer(limit=int(c.buffer_size), env=self.env)
        # deterministic actors explore with Gaussian noise (d3rlpy's actions are in [-1, 1] units)
        self.explorer = NormalNoise(std=float(c.exploration_noise)) if name in ("td3",) else None

    def run(self, env_steps: int) -> None:
        from d3rlpy.logging import NoopAdapterFactory

        self.algo.fit_online(self.env, self.buffer, self.explorer, n_steps=env_steps, n_steps_per_epoch=env_steps,
                             update_interval=self.fragment, n_updates=self.fragment * self.utd, update_start_step=0, random_steps=0,
                             logger_adapter=NoopAdapterFactory(), show_progress=False, save_interval=10**9, with_timestamp=False)

    def close(self) -> None:
        self.env.close()
