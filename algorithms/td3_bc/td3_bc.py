"""TD3+BC (Fujimoto & Gu 2021): offline TD3 with a normalised behaviour-cloning term.

π = argmax_π E_(s,a)~D [ λ Q(s, π(s)) − (π(s) − a)² ],  λ = α / mean|Q(s, π(s))|,  α = 2.5;
states are normalised with the dataset's mean and standard deviation.
"""

from __future__ import annotations

from algorithms.td3.td3 import TD3, TD3Config


class TD3BCConfig(TD3Config):
    extra_settings = (*TD3Config.extra_settings, "alpha")

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or TD3BC)
        self.alpha = 2.5
        self.normalize_obs = True
        self.updates_per_iteration = 5000

    def get_default_learner_class(self) -> type:
        from algorithms.td3_bc.td3_bc_learner import TD3BCLearner

        return TD3BCLearner

    def validate(self) -> None:
        super().validate()
        if not self.dataset:
            self._value_error("TD3+BC is offline: set `dataset` to a Minari dataset id (see `mprl datasets list`).")
        if self.checkpoint_replay:
            self._value_error("TD3+BC is offline: its data is the dataset, reloaded from disk; `checkpoint_replay` is for online phases.")


class TD3BC(TD3):
    """No environment interaction: each iteration is `updates_per_iteration` learner updates."""

    keeps_replay = False

    @classmethod
    def get_default_config(cls) -> TD3BCConfig:
        return TD3BCConfig()

    def training_step(self) -> None:
        c = self.config
        n = self.remaining(c.budget_updates, self.num_updates, c.updates_per_iteration)
        if n:
            self.log_losses([self.call_learner("run_updates", n)])
            self.num_updates += n

