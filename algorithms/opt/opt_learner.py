"""OPT learner (Shin et al., ICML 2025): online pre-training of Q_on-pt, then fine-tuning.

Notation as in the paper: Q_off-pt = `module.critics` (from the offline phase), Q_on-pt =
`module.critics_on`, B_off = the offline dataset, B_on = the online replay, κ the weight of
Q_on-pt in the actor's objective.

Online pre-training (only Q_on-pt's parameters ψ change):
    L_pretrain(ψ) = L_off(ψ) + L_on(ψ − α ∇_ψ L_off(ψ))
with L_off, L_on TD3 TD losses on minibatches of B_off and B_on; the inner step is
differentiated through (second order) unless `meta_first_order` is set.

Fine-tuning: both critics keep their TD losses; every `policy_delay` updates the actor takes
    L_π = −E_s[(1 − κ) Q_off-pt(s, π(s)) + κ Q_on-pt(s, π(s))].
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from torch.func import functional_call

from algorithms.common.replay import BalancedReplay, TensorReplay
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import smoothed_target_action, td3_target, td_loss
from algorithms.td3.td3_learner import TD3Learner


def meta_objective(critics: torch.nn.Module, b_off: dict, b_on: dict, y_off: torch.Tensor, y_on: torch.Tensor, alpha: float, first_order: bool = False) -> torch.Tensor:
    """L_off(ψ) + L_on(ψ − α ∇L_off(ψ)) for the ensemble `critics` (inputs normalised)."""
    psi = dict(critics.named_parameters())
    l_off = td_loss(functional_call(critics, psi, (b_off["obs"], b_off["actions"])), y_off)
    # First order: ∇L_off is a constant of the outer step, but L_off's graph is still needed.
    grads = torch.autograd.grad(l_off, list(psi.values()), create_graph=not first_order, retain_graph=True)
    psi_adapted = {name: p - alpha * g for (name, p), g in zip(psi.items(), grads)}
    l_on = td_loss(functional_call(critics, psi_adapted, (b_on["obs"], b_on["actions"])), y_on)
    return l_off + l_on


def density_ratio_loss(w_off: torch.Tensor, w_on: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon variational loss whose minimiser is w = d_on / d_off (Lee et al. 2022):
    E_off[f*(f'(w))] − E_on[f'(w)], f'(w) = log(2w / (w + 1)), f*(f'(w)) = log((w + 1) / 2)."""
    return torch.log((w_off + 1) / 2).mean() - torch.log(2 * w_on / (w_on + 1) + 1e-8).mean()


class OPTLearner(TD3Learner):
    def build_data(self) -> TensorReplay:
        """B_on, as a view of one storage shared with B_off (offline rows first), so that a
        balanced minibatch over B_off ∪ B_on is a single index operation."""
        self.both, self.offline, online = TensorReplay.joined(self.load_dataset(), self.config.buffer_size, self.device, seed=self.config.seed or 0)
        return online

    def build(self) -> None:
        super().build()
        m = self._rl_module
        self.balanced = BalancedReplay(self.both, self.offline, self.data, self.config.balanced_temperature) if self.config.replay == "balanced" else None
        self.q_pt = m.critics_on if self.config.use_q_on else m.critics  # the critic pre-training trains
        self.q_pt_target = m.critics_on_target if self.config.use_q_on else m.critics_target
        self.pretrain_target_update = SoftUpdater([(self.q_pt_target, self.q_pt)], self.config.tau)
        self.finetune_target_update = SoftUpdater(
            [(m.actor_target, m.actor), (m.critics_target, m.critics), (m.critics_on_target, m.critics_on)], self.config.tau
        )
        self.num_finetune_updates = 0

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        super().configure_optimizers_for_module(module_id, config)
        module = self._module[module_id]
        for name, net in (("critic_on", module.critics_on), ("density_ratio", module.density_ratio)):
            params = self.get_parameters(net)
            self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=torch.optim.Adam(params, lr=config.critic_lr), params=params)

    def opt(self, name: str) -> torch.optim.Optimizer:
        return self.get_optimizer(DEFAULT_MODULE_ID, name)

    @staticmethod
    def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def add_transitions(self, transitions: dict) -> None:
        super().add_transitions(transitions)
        if self.balanced is not None:
            self.balanced.on_added(len(transitions.get("rewards", ())))

    def replay_state(self) -> dict:
        state = super().replay_state()  # B_on only: B_off is the dataset, reloaded from disk
        if self.balanced is not None:
            state["priorities"] = self.balanced.online_priorities()
        return state

    def load_replay_state(self, state: dict) -> None:
        super().load_replay_state(state)
        if self.balanced is not None and "priorities" in state:
            self.balanced.set_online_priorities(state["priorities"])

    def normalised(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        norm = self._rl_module.normalizer
        return {**batch, "obs": norm(batch["obs"]), "next_obs": norm(batch["next_obs"])}

    def target(self, b: dict[str, torch.Tensor], critics_target: torch.nn.Module, next_a: torch.Tensor | None = None) -> torch.Tensor:
        return td3_target(self._rl_module, b["next_obs"], b["rewards"], b["terminals"], self.updater.hp, critics_target, next_a)

    # -- stage 1: online pre-training -----------------------------------------------------
    def pretrain(self, num_updates: int) -> dict[str, float]:
        c, bs = self.config, self.config.train_batch_size_per_learner
        opt = self.opt("critic_on" if c.use_q_on else "critic")
        total = torch.zeros((), device=self.device)
        for _ in range(num_updates):
            b_off, b_on = self.normalised(self.offline.sample(bs)), self.normalised(self.data.sample(bs))
            y_off, y_on = self.target(b_off, self.q_pt_target), self.target(b_on, self.q_pt_target)
            if c.pretrain_objective == "meta":
                loss = meta_objective(self.q_pt, b_off, b_on, y_off, y_on, c.meta_lr, c.meta_first_order)
            elif c.pretrain_objective == "off_on_sum":  # ablation: no meta-adaptation term
                loss = td_loss(self.q_pt(b_off["obs"], b_off["actions"]), y_off) + td_loss(self.q_pt(b_on["obs"], b_on["actions"]), y_on)
            else:  # "on_only" ablation: B_on alone
                loss = td_loss(self.q_pt(b_on["obs"], b_on["actions"]), y_on)
            self.step(opt, loss)
            self.pretrain_target_update()
            total += loss.detach()
        return {"pretrain_loss": total.item() / max(num_updates, 1)}

    # -- stage 2: online fine-tuning ------------------------------------------------------
    def sample_finetune(self, num_updates: int) -> list[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        """Minibatches for `num_updates` updates, with their B_off ∪ B_on indices if balanced."""
        bs, replay = self.config.train_batch_size_per_learner, self.config.replay
        if replay == "balanced":
            return self.balanced.sample(num_updates, bs)
        if replay == "symmetric":  # RLPD: half offline, half online
            half = bs // 2
            return [({k: torch.cat([o[k], n[k]]) for k in o}, None) for o, n in ((self.offline.sample(half), self.data.sample(bs - half)) for _ in range(num_updates))]
        return [(self.data.sample(bs), None) for _ in range(num_updates)]  # "online"

    def finetune(self, num_updates: int, kappa: float) -> dict[str, float]:
        m, c = self._rl_module, self.config
        sums = {k: torch.zeros((), device=self.device) for k in ("q_off_loss", "q_on_loss", "actor_loss", "density_ratio_loss")}
        n_actor = 0
        for batch, idx in self.sample_finetune(num_updates):
            b = self.normalised(batch)
            # Both critics keep training on TD3 targets (one smoothed target action for both;
            # their parameters are disjoint, so one backward of the sum gives each its own gradient).
            next_a = smoothed_target_action(m, b["next_obs"], self.updater.hp)
            loss_q_off = td_loss(m.critics(b["obs"], b["actions"]), self.target(b, m.critics_target, next_a))
            loss_q = loss_q_off
            if c.use_q_on:
                loss_q_on = td_loss(m.critics_on(b["obs"], b["actions"]), self.target(b, m.critics_on_target, next_a))
                loss_q = loss_q + loss_q_on
                sums["q_on_loss"] += loss_q_on.detach()
            critic_opts = [self.opt("critic"), self.opt("critic_on")] if c.use_q_on else [self.opt("critic")]
            for o in critic_opts:
                o.zero_grad(set_to_none=True)
            loss_q.backward()
            for o in critic_opts:
                o.step()
            sums["q_off_loss"] += loss_q_off.detach()
            if idx is not None:
                sums["density_ratio_loss"] += self.update_density_ratio(b, idx)
            self.num_finetune_updates += 1
            if self.num_finetune_updates % c.policy_delay == 0:
                sums["actor_loss"] += self.actor_step(b["obs"], kappa)
                n_actor += 1
                self.finetune_target_update()
        out = {"q_off_loss": sums["q_off_loss"].item() / num_updates}
        if c.use_q_on:
            out["q_on_loss"] = sums["q_on_loss"].item() / num_updates
        if self.balanced is not None:
            out["density_ratio_loss"] = sums["density_ratio_loss"].item() / num_updates
        if n_actor:
            out["actor_loss"] = sums["actor_loss"].item() / n_actor
        return out

    def actor_step(self, obs_n: torch.Tensor, kappa: float) -> torch.Tensor:
        """L_π = −E[(1 − κ) Q_off-pt(s, π(s)) + κ Q_on-pt(s, π(s))]; critics frozen for it.

        A critic whose weight is exactly 0 (κ = 1, as on MuJoCo random; κ = 0, or no Q_on-pt)
        is not evaluated: its term adds exactly 0 to L_π and to ∇L_π, so nothing changes."""
        m = self._rl_module
        kappa = kappa if self.config.use_q_on else 0.0
        critics = (m.critics, m.critics_on)
        for q in critics:
            q.requires_grad_(False)
        pi = m.actor(obs_n)
        q_off = m.critics.q1(obs_n, pi) if kappa < 1 else torch.zeros((), device=obs_n.device)
        q_on = m.critics_on.q1(obs_n, pi) if kappa > 0 else torch.zeros((), device=obs_n.device)
        loss = -((1 - kappa) * q_off + kappa * q_on).mean()
        self.step(self.opt("actor"), loss)
        for q in critics:
            q.requires_grad_(True)
        return loss.detach()

    def update_density_ratio(self, batch_n: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """One step of w on uniform B_off / B_on minibatches; refresh the replayed rows' priorities."""
        m, bs = self._rl_module, self.config.train_batch_size_per_learner
        b_off, b_on = self.offline.sample(bs), self.data.sample(bs)
        # The replayed rows' priorities come from w before this step (as in Lee et al.'s code),
        # in a forward without a graph: in the loss's forward they would cost a backward too.
        with torch.no_grad():
            w_replayed = m.density_ratio(batch_n["obs"], batch_n["actions"])
        # One forward over [B_off batch; B_on batch].
        w = m.density_ratio(m.normalizer(torch.cat([b_off["obs"], b_on["obs"]])), torch.cat([b_off["actions"], b_on["actions"]]))
        loss = density_ratio_loss(w[:bs], w[bs:])
        self.step(self.opt("density_ratio"), loss)
        self.balanced.update_priorities(idx, w_replayed)
        return loss.detach()
