"""TD3 learner: the replay buffer (or offline dataset) lives here; one call runs many updates.

Each `run_updates(n)` samples its own minibatches on the learner's device and reduces metrics
once at the end, so RLlib's per-call cost is paid once per n updates, not per update.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from algorithms.common.replay import TensorReplay
from algorithms.common.td3_core import TD3Hparams, TD3Updater


class TD3Learner(TorchLearner):
    def build(self) -> None:
        super().build()
        cfg = self.config
        self._rl_module = self.module[DEFAULT_MODULE_ID]
        self.updater = TD3Updater(
            self._rl_module,
            self.get_optimizer(DEFAULT_MODULE_ID, "actor"),
            self.get_optimizer(DEFAULT_MODULE_ID, "critic"),
            self.hparams(),
        )
        torch.manual_seed(cfg.seed or 0)
        self.data = self.build_data()

    def hparams(self) -> TD3Hparams:
        c = self.config
        return TD3Hparams(gamma=c.gamma, tau=c.tau, policy_noise=c.policy_noise, noise_clip=c.noise_clip, policy_delay=c.policy_delay)

    def build_data(self) -> TensorReplay:
        obs_dim = int(np.prod(self._rl_module.observation_space.shape))
        act_dim = int(np.prod(self._rl_module.action_space.shape))
        return TensorReplay(self.config.buffer_size, obs_dim, act_dim, self.device, seed=self.config.seed or 0)

    def load_dataset(self) -> dict[str, np.ndarray]:
        """The phase's offline dataset as flat arrays. With `normalize_obs`, its state mean and
        std (+ ε = 1e-3, as in TD3+BC's code) become the normaliser's; a warm start overrides them."""
        from algorithms.common.checkpoints import use_dataset_root
        from mprl.datasets import load_transitions

        use_dataset_root(self.config)
        arrays = load_transitions(self.config.dataset)
        if self.config.normalize_obs:
            self._rl_module.normalizer.set_stats(arrays["obs"].mean(0), arrays["obs"].std(0) + 1e-3)
        return arrays

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id]
        for name, net, lr in (("actor", module.actor, config.actor_lr), ("critic", module.critics, config.critic_lr)):
            params = self.get_parameters(net)
            self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=torch.optim.Adam(params, lr=lr), params=params)

    def compute_loss_for_module(self, *, module_id: str, config: Any = None, batch: dict, fwd_out: dict) -> torch.Tensor:
        raise NotImplementedError("TD3 learners train through run_updates(); RLlib's update() path is not used.")

    def add_transitions(self, transitions: dict[str, np.ndarray]) -> None:
        self.data.add(transitions)

    def replay_size(self) -> int:
        return len(self.data)

    def replay_state(self) -> dict[str, Any]:
        """The online replay buffer, for algorithm checkpoints (`checkpoint_replay`)."""
        return {"rows": self.data.get_state()}

    def load_replay_state(self, state: dict[str, Any]) -> None:
        self.data.set_state(state["rows"])

    def run_updates(self, num_updates: int) -> dict[str, float]:
        """Run `num_updates` gradient updates on minibatches sampled from `self.data`."""
        if num_updates <= 0 or len(self.data) == 0:
            return {}
        bs = self.config.train_batch_size_per_learner
        q_sum = torch.zeros((), device=self.device)
        pi_sum = torch.zeros((), device=self.device)
        n_pi = 0
        for _ in range(num_updates):
            loss_q, loss_pi = self.updater.update(self.data.sample(bs))
            q_sum += loss_q
            if loss_pi is not None:
                pi_sum += loss_pi
                n_pi += 1
        out = {"critic_loss": q_sum.item() / num_updates}
        if n_pi:
            out["actor_loss"] = pi_sum.item() / n_pi
        return out
