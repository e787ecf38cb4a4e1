"""OPT: Online Pre-Training for offline-to-online RL (Shin et al., ICML 2025), as an RLlib algorithm.

Stages, on the environment-step axis of one hybrid phase (its budget includes N_τ):
  1. collect  — N_τ transitions with the frozen offline policy π_off into B_on, no updates;
  2. pretrain — N_pretrain updates of Q_on-pt on the meta-adaptation objective (no env steps);
  3. finetune — TD3-style fragments, `utd` updates per step, actor on the κ-blend of critics.
An iteration ends at a stage boundary, so each stage starts on a fresh result row; results
carry `opt_stage` (0, 1, 2), `kappa` and the env step / update at which each stage began.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.schedules import LinearSchedule
from algorithms.common.settings import HYBRID, OffPolicySettings
from algorithms.td3.td3 import TD3Config, TD3Settings

STAGES = ("collect", "pretrain", "finetune")


class OPTSettings(TD3Settings):
    """The paper's MuJoCo settings: N_τ 25k, N_pretrain 50k, UTD 5, κ 0.3 → 0.9 over 150k, balanced replay."""

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
    use_q_on: bool = Field(True, description="False: no Q_on-pt; Q_off-pt is pre-trained and used alone (ablation)")
    balanced_temperature: float = Field(5.0, gt=0.0, description="T of balanced replay's priorities w^(1/T)")
    pretrain_updates_per_iteration: int = Field(5000, ge=1, description="pre-training updates per training iteration", json_schema_extra=HYBRID)
    utd: int = Field(5, ge=1, description="gradient updates per environment step during fine-tuning")
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh phase")
    learning_starts: int = Field(0, ge=0, description="env steps before the first update of a fresh phase")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = super().phase_problems(paradigm, budget_unit, budget, warm_start)
        if self.n_tau >= budget:
            out.append(("n_tau", f"n_tau={self.n_tau:,} is not below the budget of {budget:,} env steps (which includes N_τ): "
                        "the phase would never fine-tune; lower n_tau or raise the budget"))
        if not self.use_q_on and self.pretrain_objective == "none":
            out.append(("pretrain_objective", "use_q_on=False pre-trains Q_off-pt with the objective; pretrain_objective 'none' leaves nothing to do"))
        return out


class OPTConfig(TD3Config):
    settings: ClassVar[type[OffPolicySettings]] = OPTSettings
    module_class = "algorithms.opt.opt_module:OPTRLModule"
    updates_class_path = "algorithms.opt.opt_learner:OPTUpdates"
    default_paradigm = "hybrid"

    @classmethod
    def default_algo_class(cls) -> type:
        return OPT


class OPT(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OPTConfig:
        return OPTConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        c = self.config
        self.kappa = LinearSchedule(c.kappa_start, c.kappa_end, c.kappa_steps)
        self.pretrain_done = 0
        self.stage_starts: dict[str, dict[str, int]] = {"collect": {"env_steps": 0, "updates": 0}}

    def stage(self) -> str:
        c = self.config
        if self.num_env_steps < c.n_tau:
            return "collect"
        n_pretrain = 0 if c.pretrain_objective == "none" else c.n_pretrain
        return "pretrain" if self.pretrain_done < n_pretrain else "finetune"

    def current_kappa(self) -> float:
        start = self.stage_starts.get("finetune", {}).get("env_steps", self.num_env_steps)
        return self.kappa(self.num_env_steps - start) if self.config.use_q_on else 0.0

    def mark_stage(self) -> None:
        s = self.stage()
        self.stage_starts.setdefault(s, {"env_steps": self.num_env_steps, "updates": self.num_updates})

    def training_step(self) -> None:
        c = self.config
        self.mark_stage()
        start_stage = self.stage()
        if start_stage == "pretrain":
            n = min(c.pretrain_updates_per_iteration, c.n_pretrain - self.pretrain_done)
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
        results["opt_stage"] = STAGES.index(self.stage())
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
