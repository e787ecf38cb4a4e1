"""The data-owning learner every mprl algorithm stands on.

An algorithm writes its math as an `Updates` subclass (d3rlpy's "Impl"): which optimiser
trains which network, and `update(batch) → metrics` (critic, value, actor, temperature steps
in its paper's order). Everything else is here, once:
- the dataset and/or online replay live on the learner's device (`Sampler`, with the fields
  the algorithm asks for: return-to-go, source, episode ids);
- `run(n)` runs n updates on minibatches it samples itself and reduces metrics once, so
  RLlib's per-call cost is paid once per n updates, not per update;
- the same `Updates` object runs inside RLlib (`DataLearner`) and in a plain PyTorch loop
  (mprl's benchmarks), so the two measure the same math.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from torch import nn

from algorithms.common.replay import EpisodeReturnsToGo, episode_ids, return_to_go
from algorithms.common.sampler import Sampler
from algorithms.common.schedules import decayed
from algorithms.common.settings import replay_mode


class Updates:
    """One algorithm's gradient updates on minibatches: networks, optimisers, losses."""

    #: replay fields beyond the core ones (see algorithms.common.replay.EXTRA_FIELDS)
    REPLAY_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, module: nn.Module, config: Any, optimizers: dict[str, torch.optim.Optimizer], sampler: Sampler, device: torch.device) -> None:
        self.m, self.config, self.optimizers, self.sampler, self.device = module, config, optimizers, sampler, device
        self.num_updates = 0
        #: the phase's env steps when the current updates run (the algorithm passes them), for online decays
        self.env_steps = 0
        #: the frozen warm-start actor μ0 of `regularize_to_init` (set by `on_warm_start`)
        self.init_actor: nn.Module | None = None
        self.batch: Any = None  # the minibatch of the running update (regularize_to_init reads its states)
        self._init_reg: list[torch.Tensor] = []
        # `reset`: the module's weights as built from the trial's seed, before any warm start.
        self.fresh_state = {k: v.detach().clone() for k, v in module.state_dict().items()} if getattr(config, "reset", None) else None
        self.setup()

    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
        """name → (network or parameters, learning rate) of each Adam optimiser."""
        raise NotImplementedError

    @classmethod
    def prepare_dataset(cls, arrays: dict[str, np.ndarray], config: Any, module: nn.Module) -> dict[str, np.ndarray]:
        """The dataset's flat arrays before the sampler and the normaliser's statistics see them:
        a hook for algorithms that filter or transform their data (10%-BC keeps the best
        episodes; IQL's reward normalisation). Default: unchanged."""
        return arrays

    def prepare_transitions(self, transitions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Online transitions before they enter the replay: an algorithm that transforms its
        dataset's rewards applies the same transform here. Default: unchanged."""
        return transitions

    @classmethod
    def returns_to_go(cls, rewards: np.ndarray, episode: np.ndarray, config: Any) -> np.ndarray:
        """The `rtg` field's rule, for dataset episodes (load_dataset_arrays) and each finished
        online episode (DataLearner.add_transitions): the discounted Monte-Carlo return-to-go,
        with the sparse-failure rule when `config.sparse_failure_reward` is set."""
        return return_to_go(rewards, episode, config.gamma, getattr(config, "sparse_failure_reward", None))

    def setup(self) -> None:
        """Build what the updates keep (soft updaters, schedules, temperatures)."""

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient update; returns detached scalar tensors (no host sync here)."""
        raise NotImplementedError

    # -- helpers the losses use -------------------------------------------------------------
    def step(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad → backward → step of one optimiser: each network's gradient from its own loss.

        Every algorithm's actor loss passes here (optimiser "actor"), so `regularize_to_init`
        adds its term here, once, for all of them."""
        if name == "actor" and self.init_actor is not None and (w := self.init_reg_weight()) > 0:
            reg = self.init_reg_term()
            loss = loss + w * reg
            self._init_reg.append(reg.detach())
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # -- interventions of warm-started phases (README "The regime test: trust π0 or the data?") --
    def init_reg_weight(self) -> float:
        """regularize_to_init, decayed linearly to 0 over regularize_to_init_steps env steps (None: constant)."""
        c = self.config
        return decayed(float(getattr(c, "regularize_to_init", 0.0)), self.env_steps, getattr(c, "regularize_to_init_steps", None))

    def init_reg_term(self) -> torch.Tensor:
        """E_s ‖μ(s) − μ0(s)‖² in [-1, 1] action units over the running minibatch's states; μ is the
        actor's deterministic (mean) action, μ0 the frozen warm-start actor's."""
        batch = self.batch
        if not isinstance(batch, dict) or "obs" not in batch:
            raise RuntimeError("regularize_to_init needs the states of the actor's minibatch; this update step has none")
        obs_n = self.m.normalizer(batch["obs"])
        actor = self.m.actor
        with torch.no_grad():
            mu0 = self.init_actor.to_unit(self.init_actor(obs_n))
        return (actor.to_unit(actor(obs_n)) - mu0).pow(2).sum(-1).mean()

    def on_warm_start(self) -> dict[str, Any]:
        """After the warm start's weights are in: freeze μ0 for `regularize_to_init`, then `reset`
        the networks asked for. Returns what it did, for the results."""
        c, m = self.config, self.m
        out: dict[str, Any] = {}
        if getattr(c, "regularize_to_init", 0.0) > 0:
            actor = getattr(m, "actor", None)
            if not (isinstance(actor, nn.Module) and hasattr(actor, "to_unit")):
                raise ValueError("regularize_to_init pulls the actor's deterministic (mean) action towards π0's, and this module's actor "
                                 "has no such head; remove regularize_to_init")
            self.init_actor = copy.deepcopy(actor).requires_grad_(False)
        if getattr(c, "reset", None):
            out["reset"] = self.reset_networks(list(c.reset))
        return out

    def reset_groups(self, which: list[str]) -> list[str]:
        """Module attributes that `reset: which` re-initialises: `actor` → the actor (and its
        target); `critics` → every other declared network (Q ensembles, V) and their targets."""
        roles = self.m.declared_roles() if hasattr(self.m, "declared_roles") else []
        attrs = []
        for r in roles:
            base = r.role.removesuffix("_target")
            if ("actor" in which and base == "actor") or ("critics" in which and base != "actor"):
                attrs.append(r.attr)
        return attrs

    def reset_networks(self, which: list[str]) -> list[str]:
        """Load the networks' seeded initial weights back and forget their optimisers' state."""
        if self.fresh_state is None:
            raise RuntimeError("reset needs the module's initial weights, kept only when `reset` is set when the learner is built")
        attrs = self.reset_groups(which)
        params: set[int] = set()
        with torch.no_grad():
            for attr in attrs:
                net = self.m.get_submodule(attr)
                prefix = f"{attr}."
                net.load_state_dict({k[len(prefix):]: v for k, v in self.fresh_state.items() if k.startswith(prefix)})
                params |= {id(p) for p in net.parameters()}
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) in params:
                        opt.state.pop(p, None)
        return attrs

    def normalised(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        norm = self.m.normalizer
        return {**batch, "obs": norm(batch["obs"]), "next_obs": norm(batch["next_obs"])}

    # -- the loop -----------------------------------------------------------------------------
    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        """Minibatches for `num_updates` calls of the method `step` (default: the sampler's)."""
        return self.sampler.batches(num_updates, batch_size)

    def run(self, num_updates: int, step: str = "update", **params: Any) -> dict[str, float]:
        """`num_updates` calls of `step` (a method name) with metrics reduced once at the end."""
        if num_updates <= 0 or not self.sampler.can_sample():
            return {}
        fn = getattr(self, step)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for batch in self.batches(step, num_updates, self.config.train_batch_size_per_learner):
            self.batch = batch
            metrics = fn(batch, **params)
            if self._init_reg:
                metrics = {**metrics, "init_reg": torch.stack(self._init_reg).mean()}
                self._init_reg.clear()
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                counts[k] = counts.get(k, 0) + 1
        self.batch = None
        if not sums:
            return {}
        values = torch.stack([sums[k] / counts[k] for k in sums]).tolist()  # one host sync
        out = dict(zip(sums, values))
        if self.init_actor is not None:
            out["init_reg_weight"] = self.init_reg_weight()
        return out


def load_dataset_arrays(config: Any, fields: tuple[str, ...], rtg_rule: Callable[..., np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The phase's dataset as flat arrays, with the extra fields an algorithm asked for
    (`rtg_rule(rewards, episode_ids, config)`: the algorithm's `Updates.returns_to_go`)."""
    from algorithms.common.checkpoints import use_dataset_root
    from mprl.datasets import load_transitions

    use_dataset_root(config)
    arrays = dict(load_transitions(config.dataset))
    arrays["truncations"] = arrays.pop("timeouts")
    n = len(arrays["rewards"])
    if "episode_id" in fields or "rtg" in fields:
        arrays["episode_id"] = episode_ids(arrays["terminals"], arrays["truncations"])
    if "rtg" in fields:
        rule = rtg_rule or Updates.returns_to_go
        arrays["rtg"] = rule(arrays["rewards"], arrays["episode_id"], config)
    if "source" in fields:
        arrays["source"] = np.zeros(n, dtype=np.float32)
    return arrays


def build_sampler(config: Any, obs_dim: int, act_dim: int, fields: tuple[str, ...], device: torch.device, normalizer: nn.Module | None,
                  prepare: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
                  rtg_rule: Callable[..., np.ndarray] | None = None) -> Sampler:
    """The sampler of a phase's paradigm: offline → dataset, online → replay, hybrid → the
    algorithm's `replay` mode over both. `prepare` (the algorithm's `Updates.prepare_dataset`)
    filters or transforms the dataset first. With `normalize_obs`, the (prepared) dataset's state
    mean and std (+ ε = 1e-3, as in TD3+BC's code) become the normaliser's; a warm start
    overrides them."""
    paradigm = config.paradigm
    seed = config.seed or 0
    if paradigm == "online" or not config.dataset:
        return Sampler("online", obs_dim, act_dim, config.buffer_size, device, seed, extra=fields)
    arrays = load_dataset_arrays(config, fields, rtg_rule)
    if prepare is not None:
        arrays = prepare(arrays)
    if config.normalize_obs and normalizer is not None:
        normalizer.set_stats(arrays["obs"].mean(0), arrays["obs"].std(0) + 1e-3)
    mode, ratio = ("offline", config.offline_ratio) if paradigm == "offline" else replay_mode(config)
    return Sampler(mode, obs_dim, act_dim, config.buffer_size, device, seed, dataset=arrays, extra=fields,
                   offline_ratio=ratio, balanced_temperature=getattr(config, "balanced_temperature", 5.0))


class DataLearner(TorchLearner):
    """RLlib's TorchLearner around an algorithm's `Updates` (config.updates_class)."""

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id]
        for name, (net, lr) in self.config.updates_class.optimizer_groups(module, config).items():
            params = self.get_parameters(net) if isinstance(net, nn.Module) else list(net)
            self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=torch.optim.Adam(params, lr=lr), params=params)

    def build(self) -> None:
        # Seeded before RLlib builds the module: its initial weights follow the trial's seed,
        # not whatever the process drew before (several algorithms built in one process).
        torch.manual_seed(self.config.seed or 0)
        super().build()
        cfg = self.config
        module = self.module[DEFAULT_MODULE_ID]
        cls = cfg.updates_class
        obs_dim, act_dim = int(np.prod(module.observation_space.shape)), int(np.prod(module.action_space.shape))
        sampler = build_sampler(cfg, obs_dim, act_dim, cls.REPLAY_FIELDS, self.device, module.normalizer,
                                prepare=lambda arrays: cls.prepare_dataset(arrays, cfg, module), rtg_rule=cls.returns_to_go)
        optimizers = {name: self.get_optimizer(DEFAULT_MODULE_ID, name) for name in cls.optimizer_groups(module, cfg)}
        self.updates = cls(module, cfg, optimizers, sampler, self.device)
        # Online rows get their episode's return-to-go when the episode ends (Cal-QL's V^μ).
        self.online_rtg = (EpisodeReturnsToGo(sampler.online, lambda r, ep: cls.returns_to_go(r, ep, cfg))
                           if "rtg" in cls.REPLAY_FIELDS and sampler.online is not None else None)

    def compute_loss_for_module(self, *, module_id: str, config: Any = None, batch: dict, fwd_out: dict) -> torch.Tensor:
        raise NotImplementedError("mprl learners train through run_updates(); RLlib's update() path is not used.")

    # -- called by the algorithm (one Ray call per fragment or iteration) --------------------
    def run_updates(self, num_updates: int, step: str = "update", env_steps: int | None = None, **params: Any) -> dict[str, float]:
        """`env_steps`: the phase's env steps so far, for the decays of online regularisers."""
        if env_steps is not None:
            self.updates.env_steps = env_steps
        return self.updates.run(num_updates, step, **params)

    def on_warm_start(self) -> dict[str, Any]:
        return self.updates.on_warm_start()

    def add_transitions(self, transitions: dict[str, np.ndarray]) -> None:
        if "source" in self.updates.REPLAY_FIELDS:
            transitions = {**transitions, "source": np.ones(len(transitions.get("rewards", ())), dtype=np.float32)}
        idx = self.updates.sampler.add(self.updates.prepare_transitions(transitions))
        if self.online_rtg is not None:
            self.online_rtg.add(transitions, idx)

    def replay_size(self) -> int:
        return self.updates.sampler.online_size()

    def replay_state(self) -> dict[str, Any]:
        """The online replay (and balanced priorities), for algorithm checkpoints (`checkpoint_replay`)."""
        return self.updates.sampler.get_state()

    def load_replay_state(self, state: dict[str, Any]) -> None:
        self.updates.sampler.set_state(state)
