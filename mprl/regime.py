"""The three regimes of offline-to-online RL (Li, Ni, Sun & Bacon, arXiv 2510.01460).

Whether fine-tuning should trust the pretrained policy π0 or the dataset D depends on which
is stronger: J(π0), π0's evaluation return, against J(π_D), the mean return of D's episodes
(the paper's proxy for the behaviour policy). The regime decides the intervention family:

    Superior   J(π0) > J(π_D) + δ, significantly   → π0-centric (warm-up, regularise to π0 / keep the offline term)
    Inferior   J(π0) < J(π_D) − δ, significantly   → D-centric  (replay the dataset, optionally reset the networks)
    Comparable neither                              → either; `regime: auto` takes D-centric (see COMPARABLE_FAMILY)

"Significantly" is a one-sided Welch t-test at level α of the difference beyond the margin δ:
t = (m0 − mD − δ) / sqrt(s0²/n0 + sD²/nD) against Student's t with the Welch–Satterthwaite
degrees of freedom. δ = 0.05 in normalised-score units (fractions of expert − random), so in
return units the margin is δ · (expert − random); without reference scores the dataset's own
return range (max − min episode return) stands for expert − random, and the output says so.

The statistics (`estimate`, `welch`, `diagnose`, `resolve_family`) are pure functions of
hand-made returns, so tests pin every boundary; `probe` is the impure wrapper that evaluates a
checkpoint and reads a dataset, used by `mprl regime` and by the scheduler, which diagnoses
every warm-started online or hybrid phase whose data it knows (`regime:` on the phase) and,
with `regime: auto`, applies `family_settings` of `resolve_family`'s family to its trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Regime = Literal["Superior", "Comparable", "Inferior"]
Family = Literal["pi0_centric", "d_centric"]

#: the paper's margin (normalised-score units: a fraction of expert − random) and test level
DEFAULT_MARGIN = 0.05
DEFAULT_ALPHA = 0.05
#: the family each regime recommends; Comparable: either works in the paper, and `auto` replays
#: the data, the more robust choice when π0 and D are equally good (RLPD-style replay costs no
#: extra env steps and guards against the early collapse a warm-started π0 can suffer)
FAMILY_OF: dict[str, Family] = {"Superior": "pi0_centric", "Inferior": "d_centric"}
COMPARABLE_FAMILY: Family = "d_centric"
FAMILY_WORDS = {"pi0_centric": "π0-centric (online warm-up with the frozen π0, regularise to π0 / keep the offline regulariser; no offline replay)",
                "d_centric": "D-centric (replay the dataset, symmetric 50/50 sampling; optionally reset the networks)"}


@dataclass(frozen=True)
class Estimate:
    """A sample mean with its two-sided (1 − α) Student-t confidence interval."""

    mean: float
    std: float  # sample standard deviation (ddof 1; 0 for one value)
    n: int
    low: float
    high: float

    def show(self, unit: str = "") -> str:
        half = (self.high - self.low) / 2
        return f"{self.mean:.1f} ± {half:.1f}{unit} ({int(round((1 - DEFAULT_ALPHA) * 100))}% CI {self.low:.1f} … {self.high:.1f}, n = {self.n})"


@dataclass(frozen=True)
class Welch:
    """One-sided Welch t-tests of m0 − mD against ±margin."""

    diff: float  # m0 − mD
    se: float  # sqrt(s0²/n0 + sD²/nD)
    df: float  # Welch–Satterthwaite
    t_superior: float  # (diff − margin) / se
    t_inferior: float  # (−diff − margin) / se
    p_superior: float  # P(T ≥ t_superior): small → π0 better by more than the margin
    p_inferior: float


@dataclass(frozen=True)
class Diagnosis:
    """The regime of (π0, D), with everything needed to print or record why."""

    regime: Regime
    family: Family
    j_pi0: Estimate
    j_data: Estimate
    test: Welch
    margin: float  # δ, in normalised-score units (a fraction of `scale`)
    margin_return: float  # δ · scale, in return units
    scale: float  # expert − random return, or the dataset's return range
    scale_source: str  # "reference scores" | "dataset return range"
    alpha: float
    normalized: dict[str, float | None] = field(default_factory=dict)  # J(π0), J(π_D) as normalised scores
    extra: dict[str, Any] = field(default_factory=dict)  # where it came from (checkpoint, dataset, env, episodes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for progress output and the lineage."""
        return (f"{self.regime}: J(π0) {self.j_pi0.mean:.1f} vs J(π_D) {self.j_data.mean:.1f} "
                f"(Welch p {min(self.test.p_superior, self.test.p_inferior):.3g}, δ {self.margin:g} = {self.margin_return:.1f} return) → {self.family}")

    def report(self) -> str:
        """The multi-line text `mprl regime` prints."""
        n0 = self.normalized.get("pi0")
        nd = self.normalized.get("data")
        lines = [
            f"J(π0)  = {self.j_pi0.show()}" + (f"  [normalised {n0:.1f}]" if n0 is not None else ""),
            f"J(π_D) = {self.j_data.show()}" + (f"  [normalised {nd:.1f}]" if nd is not None else ""),
            f"test   : one-sided Welch t-tests at α = {self.alpha:g} with margin δ = {self.margin:g} × {self.scale:.1f} ({self.scale_source}) = {self.margin_return:.1f} return",
            f"         J(π0) − J(π_D) = {self.test.diff:.1f} (se {self.test.se:.2f}, df {self.test.df:.1f}); "
            f"π0 better by > δ: t {self.test.t_superior:.2f}, p {self.test.p_superior:.3g}; D better by > δ: t {self.test.t_inferior:.2f}, p {self.test.p_inferior:.3g}",
            f"regime : {self.regime}",
            f"family : {FAMILY_WORDS[self.family]}",
        ]
        return "\n".join(lines)


def _t_ppf(q: float, df: float) -> float:
    from scipy.stats import norm, t

    return float(t.ppf(q, df)) if math.isfinite(df) else float(norm.ppf(q))


def _t_sf(x: float, df: float) -> float:
    from scipy.stats import norm, t

    if math.isnan(x):
        return 1.0
    return float(t.sf(x, df)) if math.isfinite(df) else float(norm.sf(x))


def estimate(values: Sequence[float], alpha: float = DEFAULT_ALPHA) -> Estimate:
    """Mean and Student-t (1 − α) interval; one value gets a zero-width interval."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("no returns to estimate from")
    n = len(xs)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = _t_ppf(1 - alpha / 2, n - 1) * std / math.sqrt(n) if n > 1 else 0.0
    return Estimate(mean, std, n, mean - half, mean + half)


def welch(a: Sequence[float], b: Sequence[float], margin: float) -> Welch:
    """One-sided Welch tests of mean(a) − mean(b) > margin and mean(b) − mean(a) > margin.

    With zero variance in both samples the difference is exact: p is 0 when it exceeds the
    margin and 1 otherwise."""
    ea, eb = estimate(a), estimate(b)
    va, vb = ea.std**2 / ea.n, eb.std**2 / eb.n
    se = math.sqrt(va + vb)
    diff = ea.mean - eb.mean
    if se == 0.0:
        exact = lambda d: (math.inf if d > 0 else -math.inf if d < 0 else 0.0)
        ts, ti = exact(diff - margin), exact(-diff - margin)
        return Welch(diff, 0.0, math.inf, ts, ti, 0.0 if ts > 0 else 1.0, 0.0 if ti > 0 else 1.0)
    num = (va + vb) ** 2
    den = (va**2 / (ea.n - 1) if ea.n > 1 else 0.0) + (vb**2 / (eb.n - 1) if eb.n > 1 else 0.0)
    df = num / den if den > 0 else math.inf
    ts, ti = (diff - margin) / se, (-diff - margin) / se
    return Welch(diff, se, df, ts, ti, _t_sf(ts, df), _t_sf(ti, df))


def diagnose(pi0_returns: Sequence[float], dataset_returns: Sequence[float], *, margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
             refs: tuple[float, float] | None = None, extra: dict[str, Any] | None = None) -> Diagnosis:
    """The regime of π0 (its evaluation returns) against D (its episodes' returns).

    `refs` (random, expert) returns set the scale of the margin; without them the dataset's
    return range does (a dataset of equal returns gets scale 1: the margin is in return units)."""
    if margin < 0 or not 0 < alpha < 1:
        raise ValueError(f"margin must be ≥ 0 and alpha in (0, 1); got margin {margin}, alpha {alpha}")
    if refs is not None and refs[1] != refs[0]:
        scale, source = abs(float(refs[1]) - float(refs[0])), "reference scores"
    else:
        spread = max(dataset_returns) - min(dataset_returns)
        scale, source = (float(spread), "dataset return range") if spread > 0 else (1.0, "return units (no reference scores, equal dataset returns)")
    margin_return = margin * scale
    j0, jd = estimate(pi0_returns, alpha), estimate(dataset_returns, alpha)
    test = welch(pi0_returns, dataset_returns, margin_return)
    if test.p_superior < alpha:
        regime: Regime = "Superior"
    elif test.p_inferior < alpha:
        regime = "Inferior"
    else:
        regime = "Comparable"
    normalized: dict[str, float | None] = {"pi0": None, "data": None}
    if refs is not None and refs[1] != refs[0]:
        lo, hi = float(refs[0]), float(refs[1])
        normalized = {"pi0": 100 * (j0.mean - lo) / (hi - lo), "data": 100 * (jd.mean - lo) / (hi - lo)}
    return Diagnosis(regime, FAMILY_OF.get(regime, COMPARABLE_FAMILY), j0, jd, test, margin, margin_return, scale, source, alpha,
                     normalized, dict(extra or {}))


def resolve_family(regime_setting: str, diagnosis: Diagnosis | dict[str, Any] | None) -> tuple[Family, str]:
    """(family, why) for a phase's `regime:` setting: an explicit family as written; `auto`
    the diagnosis's recommendation."""
    if regime_setting in ("pi0_centric", "d_centric"):
        return regime_setting, f"regime: {regime_setting} written in the phase"  # type: ignore[return-value]
    if regime_setting != "auto":
        raise ValueError(f"regime must be auto, pi0_centric or d_centric, got {regime_setting!r}")
    if diagnosis is None:
        raise ValueError("regime: auto needs the phase's regime diagnosis (a warm start and a dataset)")
    d = diagnosis.to_dict() if isinstance(diagnosis, Diagnosis) else diagnosis
    j0, jd = d["j_pi0"]["mean"], d["j_data"]["mean"]
    why = {"Superior": "π0 is significantly stronger than the data, by more than δ", "Inferior": "the data is significantly stronger than π0, by more than δ",
           "Comparable": f"neither is significantly stronger by more than δ (Comparable: auto takes {COMPARABLE_FAMILY})"}[d["regime"]]
    return d["family"], f"regime: auto → {d['family']}: {d['regime']}, J(π0) {j0:.1f} vs J(π_D) {jd:.1f}, margin δ {d['margin_return']:.1f}; {why}"


#: π0-centric: WSRL's warm-up (Zhou et al. 2024) collects 5,000 env steps with the frozen π0 before
#: any update; mprl takes at most 5% of the phase's env-step budget, so a short phase still trains
WARMUP_STEPS = 5_000
WARMUP_FRACTION = 0.05
#: D-centric: RLPD's symmetric sampling, half of every batch from the dataset
REPLAY_RATIO = 0.5


def family_settings(family: str, env_steps: int, paradigm: str = "hybrid") -> dict[str, Any]:
    """The algorithm settings (algorithms/common/settings.py) that carry a family's interventions
    in a phase of `env_steps` env steps. π0-centric: warm-up with the frozen π0 and no offline
    replay (an online phase replays no dataset anyway: only the warm-up); D-centric: symmetric
    offline replay, which needs a hybrid phase (no reset: a reset is opt-in, `reset:`)."""
    if family == "pi0_centric":
        warmup = {"warmup_steps": min(WARMUP_STEPS, int(WARMUP_FRACTION * env_steps))}
        return {**warmup, "offline_replay": "none"} if paradigm == "hybrid" else warmup
    if family == "d_centric":
        return {"offline_replay": "symmetric", "offline_replay_ratio": REPLAY_RATIO}
    raise ValueError(f"family must be pi0_centric or d_centric, got {family!r}")


#: a setting auto leaves alone when the phase writes one of these (the same choice in other words,
#: or one it would contradict: `reset: [actor]` replaces the π0 a warm-up collects with)
WRITTEN_AS = {"offline_replay": ("offline_replay", "replay"), "offline_replay_ratio": ("offline_replay_ratio", "offline_ratio"),
              "warmup_steps": ("warmup_steps", "reset")}


@dataclass(frozen=True)
class Intervention:
    """What `regime: auto` (or a written family) does to a phase's trials, and why."""

    family: Family
    why: str
    applied: dict[str, Any]  # the family's settings the trials get
    written: dict[str, Any]  # the family's settings the phase writes itself: they win over auto's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        kept = f"; written in the phase, kept: {_settings_text(self.written)}" if self.written else ""
        return f"{self.family}: {_settings_text(self.applied) or 'nothing'}{kept}"


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def intervention(regime_setting: str, diagnosis: Diagnosis | dict[str, Any] | None, env_steps: int, written: Sequence[str] | dict[str, Any],
                 paradigm: str = "hybrid") -> Intervention:
    """The family (`resolve_family`) and its settings for a phase of `env_steps` env steps; a
    setting the phase writes itself (its `config:` or a sweep point: `written`), or says in other
    words (WRITTEN_AS), is not touched: the user's choice wins, and the record lists it."""
    family, why = resolve_family(regime_setting, diagnosis)
    given = written if isinstance(written, dict) else {k: None for k in written}
    applied: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for key, value in family_settings(family, env_steps, paradigm).items():
        mine = [k for k in WRITTEN_AS.get(key, (key,)) if k in given]
        if mine:
            kept.update({k: given[k] for k in mine})
        else:
            applied[key] = value
    return Intervention(family, why, applied, kept)


# ---------------------------------------------------------------- measuring (impure)

def probe(checkpoint: str, dataset_id: str, *, env: str | None = None, episodes: int = 10, seed: int = 10_000,
          margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA, refs: tuple[float, float] | None = None) -> Diagnosis:
    """Evaluate the checkpoint's deterministic policy for `episodes` episodes (episode i seeded
    seed + i, as a phase's evaluation) and diagnose it against the dataset's episodes."""
    from mprl.datasets import resolve_reference_scores
    from mprl.datasets.store import dataset_env_id, episode_returns
    from mprl.errors import MprlError
    from mprl.evaluation import evaluate_policy
    from mprl.serve.policy import load_policy

    if episodes < 2:
        raise MprlError(f"the regime test needs at least 2 evaluation episodes of π0 for a variance; got {episodes}")
    data = [float(r) for r in episode_returns(dataset_id)]
    if len(data) < 2:
        raise MprlError(f"dataset {dataset_id!r} has {len(data)} episode(s); the regime test needs at least 2 for J(π_D)'s variance")
    policy = load_policy(checkpoint)
    env_id = env or policy.env or dataset_env_id(dataset_id)
    if not env_id:
        raise MprlError(f"checkpoint {checkpoint} names no environment: pass --env")
    refs = refs if refs is not None else resolve_reference_scores(env_id, dataset_id)
    played = evaluate_policy(policy.act_one, env_id, episodes, seed)
    return diagnose(played.returns, data, margin=margin, alpha=alpha, refs=refs,
                    extra={"checkpoint": str(checkpoint), "dataset": dataset_id, "env": env_id, "episodes": episodes, "eval_seed": seed,
                           "dataset_episodes": len(data), "env_steps": int(sum(played.lengths)),
                           "pi0_returns": [float(r) for r in played.returns]})



# ---------------------------------------------------------------- `mprl regime`

def cmd_regime(args: Any) -> int:
    import json

    from mprl.errors import MprlError
    from mprl.lineage.store import find_checkpoint

    if args.margin < 0 or not 0 < args.alpha < 1:
        raise MprlError(f"--margin must be ≥ 0 and --alpha in (0, 1); got --margin {args.margin}, --alpha {args.alpha}")
    path, _, _ = find_checkpoint(args.checkpoint, args.storage_path)
    d = probe(path, args.dataset, env=args.env, episodes=args.episodes, seed=args.seed, margin=args.margin, alpha=args.alpha)
    print(json.dumps(d.to_dict(), default=float) if args.json else d.report())
    return 0


def add_subparser(sub: Any) -> None:
    r = sub.add_parser("regime", help="which is stronger, a pretrained policy π0 or a dataset D: the regime (Superior, Comparable, Inferior) "
                                      "and the fine-tuning family it recommends")
    r.add_argument("checkpoint", help="a checkpoint folder, or a lineage id ck-… of a run under --storage-path")
    r.add_argument("--dataset", required=True, help="a Minari dataset id, e.g. mprl/hopper/medium-v0 (J(π_D): its episodes' mean return)")
    r.add_argument("--env", help="environment for π0's evaluation (default: the checkpoint's, else the dataset's)")
    r.add_argument("--episodes", type=int, default=10, help="evaluation episodes of π0 (default 10)")
    r.add_argument("--seed", type=int, default=10_000, help="episode i is seeded seed + i (default 10000, as a phase's evaluation)")
    r.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help=f"δ in normalised-score units (default {DEFAULT_MARGIN})")
    r.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"level of the one-sided Welch t-tests (default {DEFAULT_ALPHA})")
    r.add_argument("--storage-path", default="./mprl_results", help="where runs are, for a ck-… id (default ./mprl_results)")
    r.add_argument("--json", action="store_true", help="print the diagnosis as one JSON object")
    r.set_defaults(func=cmd_regime)
