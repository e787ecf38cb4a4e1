"""`mprl bench learner`: every registered algorithm's learner through RLlib, beside a plain PyTorch
loop of the same math and beside d3rlpy's implementation of the same algorithm.

Generic over the registry: an algorithm gets its figures without code of its own. Per
algorithm, in this process, one torch thread, on the same data, batch and network sizes:
- offline updates/s (algorithms with an offline paradigm): `algo.train()` of an offline phase
  vs `PlainLearner.update` (the algorithm's own `Updates` in a `for` loop) vs d3rlpy's `fit`;
- online env steps/s at the algorithm's default UTD (algorithms with an online paradigm):
  `algo.train()` of an online phase (no warm-up, updates from the first fragment) vs the same
  fragment loop by hand vs d3rlpy's `fit_online` with the same update schedule;
- hybrid env steps/s at the algorithm's default UTD (algorithms whose only paradigm is hybrid:
  RLPD, Off2On, the OPT family): `algo.train()` of a hybrid phase on the same dataset (its default
  hybrid replay, e.g. balanced replay; no warm-up, fresh weights, and for the OPT family the
  collect and pre-train stages skipped through `bench_settings`, so every timed update is a
  fine-tuning update) vs the same fragment loop by hand making the same `run_updates` calls
  (the per-update params the algorithm passes, e.g. OPT's κ, SPOT's λ, recorded from its side).
Sides alternate, repeat after repeat, so machine load hits them alike; medians are reported.
RLlib/plain is what RLlib's machinery costs (target ≥ 0.9 offline, ≥ 0.8 online and hybrid); ours/d3rlpy
is what a user gains over the library they would otherwise pick (target ≥ 1.0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from mprl.errors import MprlError

OFFLINE_TARGET, ONLINE_TARGET, D3RLPY_TARGET = 0.9, 0.8, 1.0
HYBRID_TARGET = ONLINE_TARGET  # an online-type measurement: env steps with updates after each fragment


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median_rates(work: int, sides: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median work/s of each side; the sides alternate within every repeat."""
    rates: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            rates[name].append(work / _timed(fn))
    return {k: statistics.median(v) for k, v in rates.items()}


def _median_rate(work: int, side_a: Callable[[], None], side_b: Callable[[], None], repeats: int) -> tuple[float, float]:
    r = _median_rates(work, {"a": side_a, "b": side_b}, repeats)
    return r["a"], r["b"]


@contextlib.contextmanager
def _ray() -> Iterator[None]:
    """A local Ray for the block, or the one this process already has (left running)."""
    import ray

    if ray.is_initialized():
        yield
        return
    for attempt in range(3):  # Ray gives its raylet 30 s to register: a loaded machine may need another try
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield
    finally:
        ray.shutdown()


def off_policy_algorithms(names: list[str] | None) -> dict[str, Any]:
    """name → AlgorithmInfo of the algorithms to measure (all registered ones by default)."""
    from algorithms.registry import discover

    registry = discover()
    if names:
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise MprlError(f"unknown algorithm(s) {', '.join(unknown)}; registered: {', '.join(registry)}")
        return {n: registry[n] for n in names}
    return registry


def skip_reason(info: Any) -> str | None:
    """Why an algorithm cannot be measured here (None: it can)."""
    from algorithms.common.algorithm import OffPolicyConfig

    if not issubclass(info.config_class(), OffPolicyConfig):
        return "not on mprl's off-policy base"
    if not {"offline", "online", "hybrid"} & set(info.paradigms):
        return f"{'/'.join(info.paradigms)} only: no offline, online or hybrid phase to time"
    return None


def hybrid_only(info: Any) -> bool:
    """Hybrid is timed only where it is the algorithm's only phase (others have offline/online figures)."""
    return "hybrid" in info.paradigms and not {"offline", "online"} & set(info.paradigms)


def _config(info: Any, env: str, batch_size: int | None, **training: Any) -> Any:
    # An algorithm with a stage before its main updates (SPOT's VAE pre-training) names the
    # settings that skip it (`bench_settings`), so both sides time the same update.
    cls = info.config_class()
    cfg = cls().environment(env).training(**{**getattr(cls.settings, "bench_settings", {}), **training})
    if batch_size:
        cfg.training(train_batch_size_per_learner=batch_size)
    return cfg


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def bench_offline(info: Any, args: argparse.Namespace, dataset: str, spaces: tuple[Any, Any], use_d3rlpy: bool) -> dict[str, Any]:
    from algorithms.common.learner import load_dataset_arrays
    from mprl.benchmarks import d3rlpy_ref
    from mprl.benchmarks.plain import PlainLearner

    n = args.updates
    make = lambda: _config(info, args.env, args.batch_size, paradigm="offline", dataset=dataset, updates_per_iteration=n, eval_episodes=0)
    algo = make().build_algo()
    plain = PlainLearner(make(), *spaces)
    sides: dict[str, Callable[[], None]] = {"rllib": algo.train, "plain": lambda: plain.update(n)}
    warm = min(200, n)
    algo.call_learner("run_updates", warm), plain.update(warm)
    d3 = None
    if use_d3rlpy:
        cfg = make()
        arrays = load_dataset_arrays(cfg, ())
        d3 = d3rlpy_ref.make(info.name, cfg, dataset_obs=arrays["obs"])
        if d3 is not None:
            data = d3rlpy_ref.mdp_dataset(arrays)
            d3rlpy_ref.fit(d3, data, warm)
            sides["d3rlpy"] = lambda: d3rlpy_ref.fit(d3, data, n)
    try:
        rates = _median_rates(n, sides, args.repeats)
    finally:
        algo.stop()
    out = {"updates": n, "updates_per_s_rllib": round(rates["rllib"], 1), "updates_per_s_plain": round(rates["plain"], 1),
           "ratio": _ratio(rates["rllib"], rates["plain"]), "target": OFFLINE_TARGET}
    if "d3rlpy" in rates:
        out |= {"updates_per_s_d3rlpy": round(rates["d3rlpy"], 1), "ratio_d3rlpy": _ratio(rates["rllib"], rates["d3rlpy"]), "target_d3rlpy": D3RLPY_TARGET}
    return out


def bench_online(info: Any, args: argparse.Namespace, spaces: tuple[Any, Any], use_d3rlpy: bool) -> dict[str, Any]:
    from mprl.benchmarks import d3rlpy_ref
    from mprl.benchmarks.plain import PlainLearner

    steps, fragment = args.env_steps, args.fragment
    utd = args.utd or int(info.config_class().settings.model_fields["utd"].default)

    def make() -> Any:
        cfg = _config(info, args.env, args.batch_size, paradigm="online", utd=utd, random_steps=0, learning_starts=0,
                      env_steps_per_iteration=steps, eval_episodes=0)
        return cfg.env_runners(rollout_fragment_length=fragment)

    algo = make().build_algo()
    plain = PlainLearner(make(), *spaces)
    run_plain = lambda: plain.train_online(args.env, steps, utd=utd, fragment=fragment)
    sides: dict[str, Callable[[], None]] = {"rllib": algo.train, "plain": run_plain}
    d3 = None
    if use_d3rlpy:
        cfg = make()
        model = d3rlpy_ref.make(info.name, cfg)
        if model is not None:
            d3 = d3rlpy_ref.Online(info.name, model, args.env, cfg, fragment, utd)
            sides["d3rlpy"] = lambda: d3.run(steps)
    try:
        # warm-up: fills every side's buffer past one batch, so every measured fragment updates
        iterations = -(-(int(make().train_batch_size_per_learner) + fragment) // steps)
        for _ in range(iterations):
            algo.train()
        warm = iterations * steps
        plain.train_online(args.env, warm, utd=utd, fragment=fragment)
        if d3 is not None:
            d3.run(warm)
        rates = _median_rates(steps, sides, args.repeats)
    finally:
        algo.stop()
        plain.close()
        if d3 is not None:
            d3.close()
    out = {"utd": utd, "fragment": fragment, "env_steps": steps, "env_steps_per_s_rllib": round(rates["rllib"], 1),
           "env_steps_per_s_plain": round(rates["plain"], 1), "ratio": _ratio(rates["rllib"], rates["plain"]), "target": ONLINE_TARGET}
    if "d3rlpy" in rates:
        out |= {"env_steps_per_s_d3rlpy": round(rates["d3rlpy"], 1), "ratio_d3rlpy": _ratio(rates["rllib"], rates["d3rlpy"]), "target_d3rlpy": D3RLPY_TARGET}
    return out


def bench_hybrid(info: Any, args: argparse.Namespace, dataset: str, spaces: tuple[Any, Any]) -> dict[str, Any]:
    """Env steps/s of a hybrid phase's fine-tuning: fragments of k env steps, k × utd updates after
    each from the algorithm's default hybrid replay over dataset ∪ online rows. Fresh weights (no
    warm start); stages before fine-tuning (OPT's collect/pre-train, SPOT's VAE) are skipped by
    the algorithm's `bench_settings`."""
    from collections import deque

    from mprl.benchmarks.plain import PlainLearner

    steps, fragment = args.env_steps, args.fragment
    utd = args.utd or int(info.config_class().settings.model_fields["utd"].default)

    def make() -> Any:
        cfg = _config(info, args.env, args.batch_size, paradigm="hybrid", dataset=dataset, utd=utd, random_steps=0, learning_starts=0,
                      env_steps_per_iteration=steps, eval_episodes=0)
        return cfg.env_runners(rollout_fragment_length=fragment)

    algo = make().build_algo()
    plain = PlainLearner(make(), *spaces)
    # The algorithm's fragment updates, as it calls its learner: the plain loop makes the same
    # calls (same count, step, env step and per-update params), so both sides do the same math.
    calls: deque[tuple[int, str, dict[str, Any]]] = deque()
    call_learner = algo.call_learner

    def recording(method: str, *a: Any, **kw: Any) -> Any:
        if method == "run_updates":
            calls.append((a[0], a[1] if len(a) > 1 else kw.get("step", "update"), {k: v for k, v in kw.items() if k != "step"}))
        return call_learner(method, *a, **kw)

    algo.call_learner = recording
    run_plain = lambda: plain.train_online(args.env, steps, utd=utd, fragment=fragment, fragment_calls=calls.popleft)
    try:
        algo.train()  # warm-up: one iteration each (the dataset fills a batch from the first fragment)
        # a staged algorithm (OPT's collect → pretrain → finetune) must fine-tune from env step 0
        stage = algo.stage() if hasattr(algo, "stage") else None
        if stage not in (None, "finetune") or getattr(algo, "stage_starts", {}).get("finetune", {"env_steps": 0})["env_steps"] != 0:
            raise RuntimeError(f"{info.name}: the timed updates would not all be fine-tuning updates (stage {stage!r}); "
                               "skip the stages before it in the algorithm's settings' `bench_settings`")
        run_plain()
        rates = _median_rates(steps, {"rllib": algo.train, "plain": run_plain}, args.repeats)
        if calls:
            raise RuntimeError(f"the plain loop made {len(calls)} fewer fragment updates than the algorithm")
    finally:
        algo.stop()
        plain.close()
    return {"utd": utd, "fragment": fragment, "env_steps": steps, "replay": plain.sampler.mode,
            "env_steps_per_s_rllib": round(rates["rllib"], 1), "env_steps_per_s_plain": round(rates["plain"], 1),
            "ratio": _ratio(rates["rllib"], rates["plain"]), "target": HYBRID_TARGET}


def bench_learner(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import torch

    from mprl.benchmarks import d3rlpy_ref
    from mprl.datasets import build_dataset

    torch.set_num_threads(1)
    say = (lambda s: None) if args.json else print
    algos = off_policy_algorithms(args.algo)
    use_d3rlpy = not args.no_d3rlpy and d3rlpy_ref.available()
    if not args.no_d3rlpy and not use_d3rlpy:
        say(d3rlpy_ref.missing_line())
    results: dict[str, Any] = {}
    from mprl.datasets.ids import minari_root

    with tempfile.TemporaryDirectory() as tmp, minari_root(tmp), _ray():
        dataset = None
        if any("offline" in i.paradigms or hybrid_only(i) for i in algos.values()):
            say(f"building a {args.env} random dataset ({args.dataset_size} transitions) for the offline and hybrid measurements ...")
            dataset = build_dataset(args.env, "random", size=args.dataset_size, seed=0, progress=None)
        env = gym.make(args.env)
        spaces = (env.observation_space, env.action_space)
        env.close()
        for name, info in algos.items():
            reason = skip_reason(info)
            if reason:
                say(f"{name}: skipped: {reason}")
                results[name] = {"skipped": reason}
                continue
            cfg = info.config_class()()
            entry: dict[str, Any] = {"env": args.env, "batch_size": args.batch_size or int(cfg.train_batch_size_per_learner), "hidden": list(cfg.hidden)}
            for paradigm, run in (("offline", lambda info=info: bench_offline(info, args, dataset, spaces, use_d3rlpy)),
                                  ("online", lambda info=info: bench_online(info, args, spaces, use_d3rlpy)),
                                  ("hybrid", lambda info=info: bench_hybrid(info, args, dataset, spaces))):
                if paradigm not in info.paradigms:
                    entry[paradigm] = {"skipped": f"no {paradigm} paradigm"}
                    continue
                if paradigm == "hybrid" and not hybrid_only(info):
                    entry[paradigm] = {"skipped": "timed for hybrid-only algorithms (this one has offline/online figures)"}
                    continue
                say(f"{name}: {paradigm} ...")
                try:
                    entry[paradigm] = run()
                except Exception as e:  # noqa: BLE001  one broken algorithm must not hide the others' figures
                    entry[paradigm] = {"error": f"{type(e).__name__}: {e}"}
                    say(f"{name}: {paradigm} failed: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
            results[name] = entry
    if args.json:
        print(json.dumps(results))
    else:
        print()
        print(table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    """The human table: rates, RLlib/plain and ours/d3rlpy ratios beside their targets."""
    f = lambda v: "—" if v is None else f"{v:.1f}"
    r = lambda v, t: "—" if v is None else f"{v:.2f} {'✓' if v >= t else '✗'} (≥ {t})"
    head = f"{'algorithm':9s} {'measurement':25s} {'mprl (RLlib)':>12s} {'plain':>9s} {'RLlib/plain':>16s} {'d3rlpy':>9s} {'ours/d3rlpy':>16s}"
    lines = [head, "-" * len(head)]
    for name, e in results.items():
        if "skipped" in e:
            lines.append(f"{name:9s} skipped: {e['skipped']}")
            continue
        for paradigm, unit in (("offline", "updates/s"), ("online", "env steps/s"), ("hybrid", "env steps/s")):
            m = e.get(paradigm, {})
            if "skipped" in m:
                continue
            if "error" in m:
                lines.append(f"{name:9s} {paradigm}: error: {m['error']}")
                continue
            what = f"{paradigm} {unit}" + (f" UTD {m['utd']}" if paradigm != "offline" else "")
            key = "updates_per_s" if paradigm == "offline" else "env_steps_per_s"
            lines.append(f"{name:9s} {what:25s} {f(m.get(key + '_rllib')):>12s} {f(m.get(key + '_plain')):>9s} {r(m.get('ratio'), m['target']):>16s} "
                         f"{f(m.get(key + '_d3rlpy')):>9s} {r(m.get('ratio_d3rlpy'), D3RLPY_TARGET):>16s}")
    return "\n".join(lines)


def add_parser(sub: Any, func: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("learner", help="every algorithm's learner through RLlib vs a plain PyTorch loop of the same math vs d3rlpy")
    p.add_argument("--algo", nargs="+", metavar="NAME", help="algorithms to measure (default: every registered one)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by algorithm")
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--updates", type=int, default=1000, help="offline updates per measurement")
    p.add_argument("--env-steps", type=int, default=500, help="online and hybrid env steps per measurement")
    p.add_argument("--utd", type=int, default=None, help="online and hybrid updates per env step (default: each algorithm's default)")
    p.add_argument("--fragment", type=int, default=50, help="env steps per fragment (k·UTD updates after each)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: each algorithm's)")
    p.add_argument("--dataset-size", type=int, default=20_000, help="transitions of the random dataset of the offline and hybrid measurements")
    p.add_argument("--repeats", type=int, default=3, help="alternating measurements per side; the median is reported")
    p.add_argument("--no-d3rlpy", action="store_true", help="skip the d3rlpy columns")
    p.set_defaults(func=func)
