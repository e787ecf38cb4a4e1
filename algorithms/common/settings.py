"""Typed algorithm settings: what a phase's `config:` may set, with types, ranges and meaning.

Each algorithm declares one pydantic model (a subclass of `OffPolicySettings`) whose defaults
are its paper's / reference code's. The spec validates a phase's `config:` and sweep points
against it before anything starts, `mprl algorithms NAME` prints it, and the algorithm's
RLlib config takes its defaults from it. A setting that the algorithm does not read is not in
its model, so it is refused instead of silently ignored.

Field metadata `json_schema_extra={"paradigms": (...)}` marks a setting that only means
something in some paradigms (exploration online, the replay mix in hybrid phases); a phase of
another paradigm that sets it is refused with a message saying so.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, conint, conlist, field_validator, model_validator

ONLINE = {"paradigms": ("online", "hybrid")}
HYBRID = {"paradigms": ("hybrid",)}
OFFLINE = {"paradigms": ("offline",)}
#: the D-centric replay settings: an online phase has no dataset to replay
REPLAY_OF_D = {"paradigms": ("hybrid",), "fix": "it replays the dataset while fine-tuning, and only a hybrid phase has both: make it "
               "a hybrid phase (`paradigm: hybrid` with `dataset: ID`) or remove it"}

#: `offline_replay` → the sampler mode (`replay`) it stands for
OFFLINE_REPLAY_MODES = {"none": "online", "symmetric": "mixed", "balanced": "balanced"}
#: the interventions that act on the warm-started π0 and its networks (they need `init_from`)
WARM_START_INTERVENTIONS = ("warmup_steps", "regularize_to_init", "reset")
INTERVENTIONS = ("offline_replay", "offline_replay_ratio", *WARM_START_INTERVENTIONS, "regularize_to_init_steps")

Hidden = conlist(conint(ge=1), min_length=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: inherited settings this algorithm does not read (e.g. BC has no target networks, so no
    #: `tau`): a phase that sets one is refused, and `table()` leaves them out
    unused_settings: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def paradigms_of(cls, name: str) -> tuple[str, ...] | None:
        extra = cls.model_fields[name].json_schema_extra
        return tuple(extra["paradigms"]) if isinstance(extra, dict) and "paradigms" in extra else None

    @classmethod
    def problems(cls, values: dict[str, Any], paradigm: str | None = None) -> list[tuple[str, str, Any]]:
        """(setting, message, value) for each setting of `values` this algorithm refuses."""
        out: list[tuple[str, str, Any]] = []
        known = {k: v for k, v in values.items() if k in cls.model_fields}
        for key in values:
            if key not in cls.model_fields:
                out.append((key, "unknown", values[key]))
            elif key in cls.unused_settings and values[key] != cls.model_fields[key].default:
                out.append((key, f"{key!r} is not used by this algorithm: remove it", values[key]))
            elif paradigm is not None and (ps := cls.paradigms_of(key)) and paradigm not in ps:
                fix = (cls.model_fields[key].json_schema_extra or {}).get("fix", "remove it")
                out.append((key, f"{key!r} only applies to {' and '.join(ps)} phases; this phase is {paradigm}: {fix}", values[key]))
        try:
            cls.model_validate(known)
        except ValidationError as exc:
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else "config"
                if key not in cls.model_fields:  # a model-level check (several settings together): its own message
                    out.append((key, err["msg"].removeprefix("Value error, "), None))
                    continue
                where = "".join(f"[{p}]" for p in err["loc"][1:])
                out.append((key, f"{key}{where}: {err['msg'].lower()} (got {err.get('input')!r}); {cls.describe(key)}", values.get(key)))
        return out

    @classmethod
    def describe(cls, name: str) -> str:
        f = cls.model_fields[name]
        return f"{f.description or name}, default {f.default!r}"

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        """(setting, message) for settings that make the phase pointless, e.g. no gradient update at all."""
        return []

    @classmethod
    def table(cls) -> list[tuple[str, str, str, str]]:
        """(name, type, default, meaning) of every setting, for `mprl algorithms NAME` and the README."""
        rows = []
        for name, f in cls.model_fields.items():
            if name in cls.unused_settings:
                continue
            ann = _type_name(f.annotation)
            ps = cls.paradigms_of(name)
            meaning = (f.description or "") + (f" ({'/'.join(ps)} only)" if ps else "")
            rows.append((name, ann, repr(f.default), meaning))
        return rows


def _type_name(annotation: Any) -> str:
    """`float`, `int ≥ 1 list`, `shared|mixed|...`, `float or null` — for people, not for pydantic."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is Literal:
        return "|".join(map(str, get_args(annotation)))
    if origin is Union or (origin is not None and type(None) in get_args(annotation)):
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin in (list, tuple) or getattr(annotation, "__origin__", None) is list:
        return "list of int" if args and _type_name(args[0]).startswith("int") else "list"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


class OffPolicySettings(Settings):
    """Settings every mprl off-policy algorithm honours (its learner, sampler and loop read them)."""

    #: the sampler mode of a hybrid phase when `replay` is not written, and the modes it can use
    #: (balanced replay needs a density-ratio network that the algorithm trains)
    default_hybrid_replay: ClassVar[str] = "shared"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("shared", "mixed", "online")

    gamma: float = Field(0.99, gt=0.0, le=1.0, description="discount factor γ")
    tau: float = Field(0.005, gt=0.0, le=1.0, description="Polyak rate of the target networks")
    train_batch_size_per_learner: int = Field(256, ge=1, description="minibatch size of one gradient update")
    hidden: Hidden = Field([256, 256], description="hidden layer widths of every network")
    normalize_obs: bool = Field(False, description="normalise states with the dataset's mean and std (+1e-3)")
    buffer_size: int = Field(1_000_000, ge=1, description="capacity of the online replay (rows)", json_schema_extra=ONLINE)
    utd: int = Field(1, ge=1, description="gradient updates per environment step (update-to-data ratio)", json_schema_extra=ONLINE)
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh (not warm-started) phase", json_schema_extra=ONLINE)
    learning_starts: int = Field(0, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)
    rollout_fragment_length: int = Field(50, ge=1, description="env steps per fragment; each fragment of k steps is followed by k·utd updates", json_schema_extra=ONLINE)
    num_env_runners: int = Field(0, ge=0, description="remote env runners that step environments (0: in the trial's process)", json_schema_extra=ONLINE)
    checkpoint_replay: bool = Field(False, description="store the online replay in every checkpoint, so a retried or resumed trial keeps its data", json_schema_extra=ONLINE)
    replay: Optional[Literal["shared", "mixed", "balanced", "online"]] = Field(
        None, description="hybrid phases: shared (dataset then online rows, uniform), mixed (offline_ratio of each batch from the dataset), balanced (density-ratio priorities), online (online rows only); default per algorithm",
        json_schema_extra=HYBRID)
    offline_ratio: float = Field(0.5, ge=0.0, le=1.0, description="fraction of each batch drawn from the dataset with replay: mixed", json_schema_extra=HYBRID)
    torch_num_threads: int = Field(1, ge=1, description="torch intra-op threads of the learner process")
    transfer_targets: Literal["copy", "sync"] = Field("copy", description="warm start: copy the source's target networks, or re-sync them from the transferred online networks")
    transfer_optimizer: bool = Field(False, description="warm start: carry the source's optimiser state")
    transfer_log_std_init: Optional[float] = Field(None, description="warm start of a Gaussian head from a deterministic actor: constant log-std (None: fresh init)")
    transfer_allow_activation_mismatch: bool = Field(False, description="warm start: copy layers whose activations differ (function not preserved)")
    # Set by the runner from `evaluation.interval:` (one training iteration = one evaluation interval).
    env_steps_per_iteration: int = Field(1000, ge=1, description="env steps per training iteration (set by evaluation.interval)", json_schema_extra=ONLINE)
    updates_per_iteration: int = Field(1000, ge=1, description="gradient updates per training iteration of an offline phase (set by evaluation.interval)", json_schema_extra=OFFLINE)

    # -- the interventions of offline-to-online fine-tuning (Li, Ni, Sun & Bacon; README "The regime test")
    offline_replay: Literal["none", "symmetric", "balanced"] | None = Field(
        None, description="D-centric replay of the dataset while fine-tuning: none (online rows only), symmetric (offline_replay_ratio "
        "of each batch from the dataset, RLPD's 50/50), balanced (density-ratio priorities); null: the algorithm's `replay`",
        json_schema_extra=REPLAY_OF_D)
    offline_replay_ratio: float = Field(0.5, gt=0.0, lt=1.0, description="fraction of each batch from the dataset with offline_replay: symmetric",
                                        json_schema_extra=REPLAY_OF_D)
    warmup_steps: int = Field(0, ge=0, description="π0-centric warm-up (WSRL): the first N env steps of a warm-started phase are collected by "
                              "the frozen π0 (its own actions) into the online replay, with no update; they count in the budget", json_schema_extra=ONLINE)
    regularize_to_init: float = Field(0.0, ge=0.0, description="π0-centric: weight w of w·E‖μ(s) − μ0(s)‖² (unit actions) added to the actor loss, "
                                      "μ0 the frozen warm-start actor", json_schema_extra=ONLINE)
    regularize_to_init_steps: int | None = Field(None, ge=1, description="env steps over which regularize_to_init decays linearly to 0 (null: constant)",
                                                    json_schema_extra=ONLINE)
    reset: conlist(Literal["actor", "critics"], max_length=2) = Field(
        [], description="D-centric: after the warm start, re-initialise these networks (targets and optimiser state too) with the trial's "
        "seed: actor, critics (every value network)", json_schema_extra=ONLINE)

    @field_validator("replay")
    @classmethod
    def _replay_supported(cls, replay: Optional[str]) -> Optional[str]:
        if replay is not None and replay not in cls.hybrid_replays:
            raise ValueError(f"replay {replay!r} is not available for this algorithm; use one of {', '.join(cls.hybrid_replays)}")
        return replay

    @field_validator("offline_replay")
    @classmethod
    def _offline_replay_supported(cls, value: str | None) -> str | None:
        if value is not None and OFFLINE_REPLAY_MODES[value] not in cls.hybrid_replays:
            raise ValueError(f"offline_replay {value!r} needs a density-ratio network that this algorithm does not train; "
                             f"the algorithms with balanced replay are: {', '.join(balanced_replay_algorithms())}; or use none or symmetric")
        return value

    @field_validator("reset")
    @classmethod
    def _reset_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"reset lists a network twice ({value}); write [actor], [critics] or [actor, critics]")
        return value

    @model_validator(mode="after")
    def _interventions_agree(self) -> OffPolicySettings:
        """`offline_replay` is the regime vocabulary for `replay` / `offline_ratio`: both may be written only if they agree."""
        if self.offline_replay is not None:
            mode = OFFLINE_REPLAY_MODES[self.offline_replay]
            if self.replay is not None and self.replay != mode:
                raise ValueError(f"replay: {self.replay} and offline_replay: {self.offline_replay} disagree (offline_replay {self.offline_replay} "
                                 f"is replay {mode}); write only one of them")
            default_ratio = type(self).model_fields["offline_ratio"].default
            if (mode == "mixed" and self.offline_ratio != default_ratio and self.offline_ratio != self.offline_replay_ratio):
                raise ValueError(f"offline_ratio {self.offline_ratio} and offline_replay_ratio {self.offline_replay_ratio} disagree; "
                                 "with offline_replay: symmetric write only offline_replay_ratio")
        if self.regularize_to_init_steps is not None and self.regularize_to_init == 0:
            raise ValueError(f"regularize_to_init_steps={self.regularize_to_init_steps} decays regularize_to_init, which is 0 (off); "
                             "set regularize_to_init > 0 or remove regularize_to_init_steps")
        if self.warmup_steps and "actor" in self.reset:
            raise ValueError("warmup_steps collects with the warm-started π0, but reset: [actor] replaces it before the first step; "
                             "drop one of them (reset: [critics] keeps π0)")
        return self

    def intervention_problems(self, paradigm: str, warm_start: bool) -> list[tuple[str, str]]:
        """The π0-centric interventions and `reset` act on the warm-started networks: refused without a warm start."""
        if paradigm == "offline" or warm_start:
            return []
        on = [k for k in WARM_START_INTERVENTIONS if getattr(self, k)]
        return [(k, (f"{k!r} acts on the warm-started networks (π0 and its critics), but this phase starts from fresh ones: add `init_from:` "
                     "(the phase or checkpoint to fine-tune) or remove it")) for k in on]

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = self.intervention_problems(paradigm, warm_start)
        if paradigm != "offline" and not warm_start and self.learning_starts >= budget:
            out.append(("learning_starts", f"learning_starts={self.learning_starts} is not below the budget of {budget:,} env steps: "
                        "the phase would make no gradient update; lower learning_starts or raise the budget"))
        if paradigm != "offline" and warm_start and self.warmup_steps >= budget:
            out.append(("warmup_steps", (f"warmup_steps={self.warmup_steps:,} is not below the budget of {budget:,} env steps: "
                                         "the phase would make no gradient update; lower warmup_steps or raise the budget")))
        return out

    def hybrid_replay(self) -> str:
        return replay_mode(self)[0]


def intervention_values(config: Any) -> dict[str, Any]:
    """The interventions `config` turns on (non-default values of the settings above)."""
    fields = OffPolicySettings.model_fields
    return {k: getattr(config, k) for k in INTERVENTIONS if getattr(config, k, fields[k].default) != fields[k].default}


def replay_mode(config: Any) -> tuple[str, float]:
    """(sampler mode, dataset fraction) of a hybrid phase: `offline_replay` if set (none → online,
    symmetric → mixed at offline_replay_ratio, balanced), else `replay` / `offline_ratio`, else the
    algorithm's default. `config`: a settings model or an algorithm config."""
    settings = config if isinstance(config, OffPolicySettings) else config.settings
    chosen = getattr(config, "offline_replay", None)
    if chosen is not None:
        mode = OFFLINE_REPLAY_MODES[chosen]
        return mode, (config.offline_replay_ratio if mode == "mixed" else config.offline_ratio)
    return getattr(config, "replay", None) or settings.default_hybrid_replay, config.offline_ratio


def balanced_replay_algorithms() -> list[str]:
    """The registered algorithms whose hybrid phases can use balanced replay (they train a density-ratio network)."""
    from algorithms.registry import discover

    out = []
    for name, info in discover().items():
        try:
            settings = getattr(info.config_class(), "settings", None)
        except (ImportError, AttributeError):  # a broken package is reported where it is used
            continue
        if isinstance(settings, type) and issubclass(settings, OffPolicySettings) and "balanced" in settings.hybrid_replays:
            out.append(name)
    return out
