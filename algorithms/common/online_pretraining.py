"""OPT's backbone-independent parts (Shin et al., ICML 2025): stages, κ, the meta-adaptation objective.

OPT adds to an offline-pretrained agent a new value function (Q_on-pt; for IQL also V_on-pt),
and runs one hybrid phase in three stages on its environment-step axis:
  1. collect  — N_τ (`n_tau`) transitions with the frozen offline policy π_off into B_on, no updates;
  2. pretrain — N_pretrain (`n_pretrain`) updates of the new value function ψ on
                L_pretrain(ψ) = L_off(ψ) + L_on(ψ − α ∇_ψ L_off(ψ))   (meta-adaptation);
  3. finetune — the backbone's own updates, `utd` per env step, with policy improvement on the
                κ-blend of the offline and online value functions, κ linear over `kappa_steps`.
The backbone (TD3 in `algorithms/opt`, SPOT in `algorithms/opt_spot`, IQL in
`algorithms/opt_iql`) supplies its value loss L(ψ; batch) and its blended actor loss; this
module supplies the settings, the stage machine (`OnlinePretrainingMixin`), the objective
(`meta_adaptation`, `pretrain_loss`), the blend (`kappa_blend`) and balanced replay's density
ratio step (`BalancedReplayUpdates`), so the three read the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torch.func import functional_call

from algorithms.common.networks import mlp
from algorithms.common.schedules import LinearSchedule
from algorithms.common.settings import HYBRID, OffPolicySettings

STAGES = ("collect", "pretrain", "finetune")

#: L(ψ; batch): a value loss as a function of the parameters ψ (name → tensor) and a normalised minibatch
ValueLoss = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]


class OnlinePretrainingSettings(OffPolicySettings):
    """OPT's own settings, the paper's MuJoCo values (N_τ 25k, N_pretrain 50k, κ 0.3 → 0.9 over 150k, balanced replay)."""

    default_hybrid_replay: ClassVar[str] = "balanced"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("balanced", "mixed", "online")

    n_tau: int = Field(25_000, ge=0, description="N_τ: env steps collected by the frozen offline policy before pre-training")
    n_pretrain: int = Field(50_000, ge=0, description="N_pretrain: gradient updates of Q_on-pt's online pre-training")
    kappa_start: float = Field(0.3, ge=0.0, le=1.0, description="κ at the start of fine-tuning (weight of Q_on-pt in the actor loss)")
    kappa_end: float = Field(0.9, ge=0.0, le=1.0, description="κ after kappa_steps fine-tuning env steps")
    kappa_steps: int = Field(150_000, ge=0, description="fine-tuning env steps over which κ moves linearly (0: κ_end throughout)")
    # α of the inner step ψ − α∇L_off(ψ). Not in our notes of the paper: set to the critics'
    # learning rate; sweep it if it matters for your task.
    meta_lr: float = Field(3e-4, gt=0.0, description="α of the meta-adaptation inner step ψ − α∇L_off(ψ)")
    meta_first_order: bool = Field(False, description="drop the second-order term of the meta-gradient")
    pretrain_objective: Literal["meta", "off_on_sum", "on_only", "none"] = Field("meta", description="meta (the paper's), or the ablations off_on_sum, on_only, none (random Q_on-pt)")
    balanced_temperature: float = Field(5.0, gt=0.0, description="T of balanced replay's priorities w^(1/T)")
    pretrain_updates_per_iteration: int = Field(5000, ge=1, description="pre-training updates per training iteration", json_schema_extra=HYBRID)

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = super().phase_problems(paradigm, budget_unit, budget, warm_start)
        if self.n_tau >= budget:
            out.append(("n_tau", f"n_tau={self.n_tau:,} is not below the budget of {budget:,} env steps (which includes N_τ): "
                        "the phase would never fine-tune; lower n_tau or raise the budget"))
        return out


# -- the objective ---------------------------------------------------------------------------
def meta_adaptation(params: dict[str, nn.Parameter], value_loss: ValueLoss, b_off: dict, b_on: dict, alpha: float, first_order: bool = False) -> torch.Tensor:
    """L_off(ψ) + L_on(ψ − α ∇_ψ L_off(ψ)) for the parameters ψ = `params` of the new value function.

    The inner step is differentiated through (second order) unless `first_order`."""
    l_off = value_loss(params, b_off)
    # First order: ∇L_off is a constant of the outer step, but L_off's graph is still needed.
    grads = torch.autograd.grad(l_off, list(params.values()), create_graph=not first_order, retain_graph=True)
    adapted = {name: p - alpha * g for (name, p), g in zip(params.items(), grads)}
    return l_off + value_loss(adapted, b_on)


def pretrain_loss(objective: str, params: dict[str, nn.Parameter], value_loss: ValueLoss, b_off: dict, b_on: dict, alpha: float, first_order: bool = False) -> torch.Tensor:
    """The `pretrain_objective`: `meta` (the paper's), `off_on_sum` (no meta term), `on_only` (B_on only)."""
    if objective == "meta":
        return meta_adaptation(params, value_loss, b_off, b_on, alpha, first_order)
    if objective == "off_on_sum":
        return value_loss(params, b_off) + value_loss(params, b_on)
    if objective == "on_only":
        return value_loss(params, b_on)
    raise ValueError(f"pretrain_objective {objective!r} makes no pre-training update")


def functional(net: nn.Module, params: dict[str, torch.Tensor], prefix: str, *args: Any) -> torch.Tensor:
    """`net(*args)` with the parameters `params[prefix + name]` (a slice of a joint ψ)."""
    return functional_call(net, {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}, args)


def kappa_blend(kappa: float, off: Callable[[], torch.Tensor], on: Callable[[], torch.Tensor]) -> torch.Tensor:
    """(1 − κ) · off() + κ · on(): the paper's blend of the offline and the online value function.

    A side whose weight is exactly 0 (κ = 1, as on MuJoCo random; κ = 0) is not evaluated: its
    term would add exactly 0 to the value and to its gradient."""
    if kappa >= 1:
        return on()
    if kappa <= 0:
        return off()
    return (1 - kappa) * off() + kappa * on()


# -- balanced replay ------------------------------------------------------------------------
def density_ratio_loss(w_off: torch.Tensor, w_on: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon variational loss whose minimiser is w = d_on / d_off (Lee et al. 2022):
    E_off[f*(f'(w))] − E_on[f'(w)], f'(w) = log(2w / (w + 1)), f*(f'(w)) = log((w + 1) / 2)."""
    return torch.log((w_off + 1) / 2).mean() - torch.log(2 * w_on / (w_on + 1) + 1e-8).mean()


class DensityRatio(nn.Module):
    """w(s, a) ≥ 0, trained so that w ≈ d_on(s, a) / d_off(s, a) (Lee et al. 2022)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden)

    def forward(self, obs_n: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.net(torch.cat([obs_n, act], dim=-1))).squeeze(-1)


class BalancedReplayUpdates:
    """Mix into an `Updates`: OPT's pre-training minibatches and balanced replay's density-ratio step."""

    def pretrain_batches(self, num_updates: int, batch_size: int) -> Iterator[tuple[dict, dict]]:
        s = self.sampler  # pre-training: one B_off and one B_on minibatch per update
        return ((s.offline.sample(batch_size), s.online.sample(batch_size)) for _ in range(num_updates))

    def update_density_ratio(self, batch_n: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """One step of w on uniform B_off / B_on minibatches; refresh the replayed rows' priorities."""
        m, bs = self.m, self.config.train_batch_size_per_learner
        s = self.sampler
        b_off, b_on = s.offline.sample(bs), s.online.sample(bs)
        # The replayed rows' priorities come from w before this step (as in Lee et al.'s code),
        # in a forward without a graph: in the loss's forward they would cost a backward too.
        with torch.no_grad():
            w_replayed = m.density_ratio(batch_n["obs"], batch_n["actions"])
        # One forward over [B_off batch; B_on batch].
        w = m.density_ratio(m.normalizer(torch.cat([b_off["obs"], b_on["obs"]])), torch.cat([b_off["actions"], b_on["actions"]]))
        loss = density_ratio_loss(w[:bs], w[bs:])
        self.step("density_ratio", loss)
        s.balanced.update_priorities(idx, w_replayed)
        return loss.detach()


# -- the stage machine ----------------------------------------------------------------------
class OnlinePretrainingMixin:
    """Mix in before an `OffPolicyAlgorithm`: OPT's collect → pretrain → finetune stages.

    An iteration ends at a stage boundary, so each stage starts on a fresh result row; results
    carry `opt_stage` (0, 1, 2), `kappa`, `pretrain_updates` and the env step / update at which
    each stage began. The learner's step names are `pretrain` and `update(batch, kappa=…)`."""

    def setup(self, config: Any) -> None:
        super().setup(config)
        c = self.config
        self.kappa = LinearSchedule(c.kappa_start, c.kappa_end, c.kappa_steps)
        self.pretrain_done = 0
        self.stage_starts: dict[str, dict[str, int]] = {"collect": {"env_steps": 0, "updates": 0}}

    def n_pretrain(self) -> int:
        """The pre-training updates this phase makes (0 with `pretrain_objective: none`)."""
        c = self.config
        return 0 if c.pretrain_objective == "none" else c.n_pretrain

    def stage(self) -> str:
        if self.num_env_steps < self.config.n_tau:
            return "collect"
        return "pretrain" if self.pretrain_done < self.n_pretrain() else "finetune"

    def current_kappa(self) -> float:
        start = self.stage_starts.get("finetune", {}).get("env_steps", self.num_env_steps)
        return self.kappa(self.num_env_steps - start) if getattr(self.config, "use_q_on", True) else 0.0

    def mark_stage(self) -> None:
        s = self.stage()
        self.stage_starts.setdefault(s, {"env_steps": self.num_env_steps, "updates": self.num_updates})

    def training_step(self) -> None:
        c = self.config
        self.mark_stage()
        start_stage = self.stage()
        if start_stage == "pretrain":
            n = min(c.pretrain_updates_per_iteration, self.n_pretrain() - self.pretrain_done)
            self.log_losses([self.call_learner("run_updates", n, "pretrain")])
            self.pretrain_done += n
            self.num_updates += n
            return
        target = self.remaining(c.budget_env_steps, self.num_env_steps, c.env_steps_per_iteration)
        collected, losses = 0, []
        while collected < target and self.stage() == start_stage:
            k_max = min(c.rollout_fragment_length, target - collected)
            if start_stage == "collect":  # frozen π_off, no updates
                k_max = min(k_max, c.n_tau - self.num_env_steps)
            k = self.collect_and_store(k_max)
            collected += k
            if start_stage == "finetune":
                losses.append(self.fragment_updates(k, "update", kappa=self.current_kappa()))
        self.log_losses(losses)

    def step(self) -> dict[str, Any]:
        results = super().step()
        self.mark_stage()
        stage = self.stage()
        results["opt_stage"] = STAGES.index(stage) if stage in STAGES else -1
        results["kappa"] = self.current_kappa()
        results["pretrain_updates"] = self.pretrain_done
        for name, at in self.stage_starts.items():
            results[f"{name}_start_env_steps"] = at["env_steps"]
            results[f"{name}_start_updates"] = at["updates"]
        return results

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["opt"] = {"pretrain_done": self.pretrain_done, "stage_starts": self.stage_starts}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "opt" in state:
            self.pretrain_done = state["opt"]["pretrain_done"]
            self.stage_starts = state["opt"]["stage_starts"]
