"""Plain PyTorch loops of mprl's algorithms: the same math as the RLlib learners, no Ray in the loop.

- `PlainLearner`: any registered off-policy algorithm, built from its own config the way
  `DataLearner` builds it (module class and model_config from the config's module spec, one
  Adam per `optimizer_groups` entry, the same `Sampler`, the algorithm's `Updates`), driven
  by a plain `for` loop. It is the baseline of `mprl bench learner`: the ratio RLlib/plain
  is what RLlib's machinery costs on top of the math.
- `PlainTD3`: TD3 / TD3+BC on `td3_core`, the agent that builds medium/expert datasets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from algorithms.common.replay import TensorReplay
from algorithms.common.td3_core import (
    TD3Hparams,
    TD3Updater,
    build_td3_networks,
    policy_action,
)
from mprl.evaluation import evaluate_policy


class PlainLearner:
    """An algorithm's module, optimisers, sampler and `Updates`, with no Ray and no RLlib learner.

    `config` is the algorithm's (unbuilt) RLlib config with `.environment(...)` and
    `.training(paradigm=..., ...)` set, exactly what `build_algo()` would get.
    """

    def __init__(self, config: Any, observation_space: gym.spaces.Box, action_space: gym.spaces.Box, device: str = "cpu") -> None:
        from algorithms.common.learner import build_sampler

        self.config = config
        self.device = torch.device(device)
        spec = config.get_default_rl_module_spec()
        spec.observation_space, spec.action_space = observation_space, action_space
        self.module = spec.build().to(self.device)
        cls = config.updates_class
        obs_dim, act_dim = int(np.prod(observation_space.shape)), int(np.prod(action_space.shape))
        torch.manual_seed(config.seed or 0)  # as DataLearner.build
        prepare = {"prepare": lambda arrays: cls.prepare_dataset(arrays, config, self.module)} if hasattr(cls, "prepare_dataset") else {}
        sampler = build_sampler(config, obs_dim, act_dim, cls.REPLAY_FIELDS, self.device, self.module.normalizer, **prepare)
        self.optimizers = {
            name: torch.optim.Adam(list(net.parameters()) if isinstance(net, nn.Module) else list(net), lr=lr)
            for name, (net, lr) in cls.optimizer_groups(self.module, config).items()
        }
        self.updates = cls(self.module, config, self.optimizers, sampler, self.device)
        self.batch_size = int(config.train_batch_size_per_learner)
        self._env: gym.Env | None = None
        self._obs: np.ndarray | None = None
        self.env_steps = 0  # env steps of `train_online` so far (all calls)

    @property
    def sampler(self) -> Any:
        return self.updates.sampler

    def update(self, num_updates: int) -> dict[str, torch.Tensor]:
        """`num_updates` calls of `Updates.update` on freshly sampled minibatches; the last metrics."""
        metrics: dict[str, torch.Tensor] = {}
        if num_updates <= 0 or not self.sampler.can_sample():  # as Updates.run
            return metrics
        for batch in self.updates.batches("update", num_updates, self.batch_size):
            metrics = self.updates.update(batch)
        return metrics

    def run_updates(self, num_updates: int, step: str = "update", env_steps: int | None = None, **params: Any) -> dict[str, float]:
        """`DataLearner.run_updates` without Ray: the algorithm's own `Updates.run` (its `step` with
        the per-update `params` the algorithm passes, e.g. OPT's κ, SPOT's λ, IQL's update count;
        metrics reduced once), `env_steps` set first for online decays."""
        if env_steps is not None:
            self.updates.env_steps = env_steps
        return self.updates.run(num_updates, step, **params)

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        """Online rows into the sampler, as `DataLearner.add_transitions` stores them."""
        if "source" in self.updates.REPLAY_FIELDS:
            transitions = {**transitions, "source": np.ones(len(transitions["rewards"]), dtype=np.float32)}
        prepare = getattr(self.updates, "prepare_transitions", None)
        self.sampler.add(prepare(transitions) if prepare else transitions)

    @torch.no_grad()
    def explore(self, obs: np.ndarray) -> np.ndarray:
        a = self.module.explore(torch.as_tensor(obs, dtype=torch.float32, device=self.device)[None])
        return a[0].cpu().numpy()

    def train_online(self, env_id: str, env_steps: int, *, utd: int, fragment: int, seed: int = 0,
                     fragment_calls: Callable[[], tuple[int, str, dict[str, Any]]] | None = None) -> None:
        """The base's online loop by hand: after each fragment of k env steps (exploring with the
        module's own `explore`), k transitions into the sampler, then exactly k × utd updates.
        The environment and its episode carry over between calls, as an env runner's do.

        `fragment_calls` (hybrid phases): each fragment's updates as the algorithm asked its learner
        for them (num_updates, step, the other arguments of `run_updates`: env_steps and the
        per-update params its `fragment_updates` passes, e.g. OPT's κ, SPOT's λ), made here through
        `run_updates` after a check against this loop's own schedule (k × utd updates at the same
        env step), so both sides make the same updates."""
        if self._env is None:
            self._env = gym.make(env_id)
            self._obs, _ = self._env.reset(seed=seed)
        env, obs = self._env, self._obs
        done = 0
        while done < env_steps:
            k = min(fragment, env_steps - done)
            rows: dict[str, list[Any]] = {"obs": [], "actions": [], "rewards": [], "next_obs": [], "terminals": []}
            for _ in range(k):
                action = self.explore(obs)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                for key, v in zip(rows, (obs, action, reward, next_obs, float(terminated))):
                    rows[key].append(v)
                obs = env.reset()[0] if terminated or truncated else next_obs
            self.add({key: np.asarray(v, dtype=np.float32) for key, v in rows.items()})
            self.env_steps += k
            if fragment_calls is None:
                self.update(k * utd)
            else:
                n, step, kwargs = fragment_calls()
                if n != k * utd or kwargs.get("env_steps", self.env_steps) != self.env_steps:
                    raise RuntimeError(f"the algorithm made {n} updates at env step {kwargs.get('env_steps')}; this loop's fragment "
                                       f"calls for {k * utd} at env step {self.env_steps}: the two sides' schedules differ")
                self.run_updates(n, step, **kwargs)
            done += k
        self._obs = obs

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


class TD3Networks(nn.Module):
    def __init__(self, obs_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int]) -> None:
        super().__init__()
        build_td3_networks(self, obs_dim, low, high, hidden)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return policy_action(self, obs)


class PlainTD3:
    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
        *,
        seed: int = 0,
        alpha: float | None = None,
        hidden: Sequence[int] = (256, 256),
        lr: float = 3e-4,
        batch_size: int = 256,
        buffer_size: int = 1_000_000,
        device: str = "cpu",
        **hparams: Any,
    ) -> None:
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(np.prod(action_space.shape))
        self.device = torch.device(device)
        self.nets = TD3Networks(self.obs_dim, action_space.low, action_space.high, hidden).to(self.device)
        self.actor_opt = torch.optim.Adam(self.nets.actor.parameters(), lr=lr)
        self.critic_opt = torch.optim.Adam(self.nets.critics.parameters(), lr=lr)
        self.updater = TD3Updater(self.nets, self.actor_opt, self.critic_opt, TD3Hparams(alpha=alpha, **hparams))
        self.batch_size = batch_size
        self.replay = TensorReplay(buffer_size, self.obs_dim, self.act_dim, self.device, seed=seed)
        self.low, self.high = action_space.low, action_space.high

    # -- acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: float = 0.0) -> np.ndarray:
        """Action(s) in environment units; `noise` is Gaussian σ as a fraction of the half range."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        a = self.nets.act(o.reshape(-1, self.obs_dim)).cpu().numpy()
        if noise:
            a = a + self.rng.normal(0.0, noise, a.shape) * (self.high - self.low) / 2
            a = np.clip(a, self.low, self.high)
        return a.reshape(np.shape(obs)[:-1] + (self.act_dim,)).astype(np.float32)

    def evaluate(self, env_id: str, episodes: int = 10, seed: int = 0) -> float:
        return evaluate_policy(self.act, env_id, episodes, seed).mean

    # -- learning -------------------------------------------------------------------------
    def update(self, num_updates: int) -> float:
        """`num_updates` gradient updates from the replay; returns the last critic loss."""
        loss = torch.zeros(())
        for _ in range(num_updates):
            loss, _ = self.updater.update(self.replay.sample(self.batch_size))
        return float(loss)

    def train_offline(self, arrays: dict[str, np.ndarray], num_updates: int, normalize_obs: bool = True) -> None:
        self.replay = TensorReplay.from_arrays(arrays, self.device)
        if normalize_obs:
            self.nets.normalizer.set_stats(arrays["obs"].mean(0), arrays["obs"].std(0) + 1e-3)
        self.update(num_updates)

    def train_online(
        self,
        env_id: str,
        env_steps: int,
        *,
        seed: int = 0,
        utd: int = 1,
        fragment: int = 1,
        random_steps: int = 1000,
        exploration_noise: float = 0.1,
        eval_every: int = 5000,
        eval_episodes: int = 5,
        on_transition: Callable[[dict[str, Any]], None] | None = None,
        on_eval: Callable[[int, float], bool | None] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """TD3's loop: uniform actions for `random_steps`, then π + noise; `utd` updates per step.

        Updates run after each fragment of `fragment` steps (fragment × utd of them), the same
        schedule as the RLlib algorithm's.
        """
        env = gym.make(env_id)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        t0, pending = time.perf_counter(), 0
        try:
            for step in range(1, env_steps + 1):
                if step <= random_steps:
                    action = env.action_space.sample().astype(np.float32)
                else:
                    action = self.act(obs, noise=exploration_noise)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                tr = {"obs": obs, "action": action, "reward": float(reward), "next_obs": next_obs, "terminated": bool(terminated), "truncated": bool(truncated)}
                if on_transition:
                    on_transition(tr)
                self.replay.add({"obs": obs[None], "actions": action[None], "rewards": np.array([reward]), "next_obs": next_obs[None], "terminals": np.array([float(terminated)])})
                obs = next_obs
                if terminated or truncated:
                    obs, _ = env.reset()
                pending += 1
                if pending == fragment or step == env_steps:
                    if step >= random_steps:
                        self.update(pending * utd)
                    pending = 0
                if eval_every and (step % eval_every == 0 or step == env_steps):
                    ret = self.evaluate(env_id, eval_episodes, seed=10_000 + step)
                    if progress:
                        rate = step / (time.perf_counter() - t0)
                        progress(f"  step {step}/{env_steps}  return {ret:9.1f}  {rate:6.1f} steps/s  ETA {(env_steps - step) / rate:5.0f}s")
                    if on_eval and on_eval(step, ret):
                        break
        finally:
            env.close()

    def state_dict(self) -> dict[str, Any]:
        return self.nets.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state)
