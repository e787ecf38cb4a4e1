"""The `mprl` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mprl.errors import MprlError


def cmd_run(args: argparse.Namespace) -> int:
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import load_pipeline, parse_pipeline

    spec = load_pipeline(args.pipeline)
    if args.storage_path:
        spec = parse_pipeline({**spec.to_dict(), "storage_path": args.storage_path}, source=args.pipeline)
    result = run_pipeline(spec, detach=args.detach)
    if result is None:
        return 0
    print()
    print(result.table())
    print(f"\nrun {result.run_id}: {result.run_dir}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from mprl.pipeline.driver import resume_run

    result = resume_run(args.run, args.storage_path)
    if result is None:  # nothing to resume: said so
        return 0
    print()
    print(result.table())
    print(f"\nrun {result.run_id}: {result.run_dir}")
    return 0


def cmd_algorithms(args: argparse.Namespace) -> int:
    from mprl.catalogue import CATALOGUE, get_algorithm

    if args.name is None:
        rows = [(e.name, ", ".join(e.paradigms), e.description, e.paper) for e in CATALOGUE.values()]
        width = max(len(r[1]) for r in rows)
        for name, paradigms, summary, paper in rows:
            print(f"{name:8s} {paradigms:{width}s}  {summary}\n{'':8s} {'':{width}s}  ({paper})")
        print("\n`mprl algorithms NAME` lists an algorithm's settings (what a phase's `config:` may set).")
        return 0
    entry = get_algorithm(args.name)
    print(f"{entry.name}: {entry.description}\npaper: {entry.paper}\nparadigms: {', '.join(entry.paradigms)} (default {entry.paradigm})\n")
    rows = entry.settings.table()
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'setting':{w[0]}s}  {'type':{w[1]}s}  {'default':{w[2]}s}  meaning")
    for name, kind, default, meaning in rows:
        print(f"{name:{w[0]}s}  {kind:{w[1]}s}  {default:{w[2]}s}  {meaning}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from mprl.benchmarks import algorithms, learner, opt

    return {"learner": learner.bench_learner, "opt": opt.bench_opt, "algorithms": algorithms.bench_algorithms}[args.bench](args)


def cmd_validate(args: argparse.Namespace) -> int:
    """Every check `mprl run` makes before it starts anything, and nothing started."""
    from mprl.pipeline.driver import validate_inputs
    from mprl.spec import load_pipeline, parse_pipeline

    spec = load_pipeline(args.pipeline)
    if args.storage_path:
        spec = parse_pipeline({**spec.to_dict(), "storage_path": args.storage_path}, source=args.pipeline)
    notes: list[str] = []
    validate_inputs(spec, notes.append, build=False)
    for line in notes:
        print(line)
    print(f"{args.pipeline}: valid — {len(spec.phases)} phase(s): "
          + ", ".join(f"{p.name} ({p.algorithm}, {p.paradigm}, {p.budget_value:,} {p.budget_unit})" for p in spec.phases)
          + f"; results under {spec.resolved_storage_path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """The runs under a storage path, or one run's phases, from their lineage files."""
    import time

    from mprl.lineage import find_run, list_runs, open_lineage
    from mprl.storage import is_uri

    when = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"  # noqa: E731
    if args.run is None:
        runs = list_runs(args.storage_path) if is_uri(args.storage_path) or os.path.isdir(args.storage_path) else []
        if not runs:
            print(f"No runs under {args.storage_path}. Start one with `mprl run PIPELINE.yaml` (or pass --storage-path).")
            return 0
        rows = []
        for r in runs:
            with open_lineage(r["run_dir"]) as store:
                nodes, n_ck = store.nodes(), len(store.checkpoints())
            rows.append((r["run_id"], r["status"], " → ".join(f"{n['phase']}:{n['status']}" for n in nodes) or "-", str(n_ck), when(r["updated_at"])))
        head = ("run", "status", "phases", "checkpoints", "updated")
        w = [max(len(x[i]) for x in [head, *rows]) for i in range(5)]
        for row in [head, *rows]:
            print("  ".join(f"{v:{w[i]}s}" for i, v in enumerate(row)).rstrip())
        print("\n`mprl runs RUN` shows a run's phases; `mprl lineage show RUN` its lineage; `mprl resume RUN` continues a stopped one.")
        return 0
    location = find_run(args.run, args.storage_path)
    with open_lineage(location) as store:
        run, nodes = store.run(), store.nodes()
        print(f"run {run['run_id']} ({run['name']}): {run['status']}" + (f" — {run['error']}" if run["error"] else "")
              + f"; created {when(run['created_at'])}, updated {when(run['updated_at'])}; code {run['code_version']}\n{location}")
        for n in nodes:
            cks = store.checkpoints(n["node_id"])
            scored = [c for c in cks if c["evaluation_return"] is not None]
            best = max(scored, key=lambda c: c["evaluation_return"], default=None)
            trials = store.trials(n["node_id"])
            print(f"  {n['node_id']:20s} {n['algorithm']:8s} {n['paradigm']:8s} {n['status']:10s} {len(trials)} trial(s), {len(cks)} checkpoint(s)"
                  + (f", best return {best['evaluation_return']:.1f} ({best['checkpoint_id']})" if best else "")
                  + (f" — {n['error']}" if n["error"] else ""))
    return 0


class _Version(argparse.Action):
    """`mprl --version`: computed only when asked (it runs git for the commit)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=kw.get("help"))  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from mprl.lineage import code_version

        def v(pkg: str) -> str:
            try:
                return version(pkg)
            except PackageNotFoundError:
                return "not installed"

        print(f"mprl {code_version()} (ray {v('ray')}, torch {v('torch')}, gymnasium {v('gymnasium')}, minari {v('minari')})")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    from mprl.benchmarks import serve as bench_serve
    from mprl.benchmarks.scheduler import add_parser as add_bench_scheduler
    from mprl.datasets.cli import add_subparser as add_datasets
    from mprl.envs_cli import add_subparser as add_envs
    from mprl.lineage.cli import add_subparser as add_lineage  # `lineage show|export`, `curves`
    from mprl.serve.cli import add_subparser as add_serve  # `serve`, `video`
    from mprl.transfer.cli import add_subparser as add_transfer

    p = argparse.ArgumentParser(prog="mprl", description="Multi-phase reinforcement learning on Ray.")
    p.add_argument("--version", action=_Version, help="mprl's version and commit, and the Ray, PyTorch and Gymnasium it runs on")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline YAML (embedded local Ray unless RAY_ADDRESS or ray.address is set)")
    run.add_argument("pipeline", help="path to the pipeline YAML, e.g. tune_configs/quickstart.yaml")
    run.add_argument("--storage-path", help="override the spec's storage_path")
    run.add_argument("--detach", action="store_true", help="start the run on a cluster and return; `mprl resume RUN` follows it")
    run.set_defaults(func=cmd_run)

    res = sub.add_parser("resume", help="continue a stopped or failed run (or follow it, if its scheduler is alive)")
    res.add_argument("run", help="a run id (under --storage-path) or a run folder")
    res.add_argument("--storage-path", help="where the run's folder is (default ./mprl_results)")
    res.set_defaults(func=cmd_resume)

    val = sub.add_parser("validate", help="every check `mprl run` makes first (YAML, checkpoints, datasets, spaces), nothing started")
    val.add_argument("pipeline", help="path to the pipeline YAML")
    val.add_argument("--storage-path", help="override the spec's storage_path (where ck-… ids are looked up)")
    val.set_defaults(func=cmd_validate)

    runs = sub.add_parser("runs", help="list the runs under a storage path with their status, or one run's phases")
    runs.add_argument("run", nargs="?", help="a run id (or run folder): its phases, trials, checkpoints and best return")
    runs.add_argument("--storage-path", default="./mprl_results", help="where runs are (default ./mprl_results)")
    runs.set_defaults(func=cmd_runs)

    alg = sub.add_parser("algorithms", help="list the algorithm catalogue, or one algorithm's settings")
    alg.add_argument("name", nargs="?", help="an algorithm: print its settings with types, defaults and meaning")
    alg.set_defaults(func=cmd_algorithms)

    add_datasets(sub)
    add_envs(sub)
    add_transfer(sub)
    add_lineage(sub)
    add_serve(sub)
    from mprl.compare import add_subparser as add_compare  # `compare`: the web page's Compare view

    add_compare(sub)
    from mprl.imports import add_subparser as add_import  # `import`: a pre-trained checkpoint from elsewhere

    add_import(sub)
    from mprl.regime import add_subparser as add_regime  # `regime`: π0 against D (Li, Ni, Sun, Bacon)

    add_regime(sub)

    bench = sub.add_parser("bench", help="performance benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True)
    add_bench_scheduler(bsub)
    bench_serve.add_parser(bsub, bench_serve.bench_serve)
    from mprl.benchmarks import algorithms as bench_algorithms
    from mprl.benchmarks import learner as bench_learner

    bench_learner.add_parser(bsub, cmd_bench)
    bench_algorithms.add_parser(bsub, cmd_bench)
    from mprl.benchmarks import sim2real as bench_sim2real

    bench_sim2real.add_parser(bsub)
    from mprl.benchmarks import regimes as bench_regimes

    bench_regimes.add_parser(bsub)
    from mprl.benchmarks import subroutine as bench_subroutine

    bench_subroutine.add_parser(bsub)
    from mprl.benchmarks import o2o as bench_o2o

    bench_o2o.add_parser(bsub)
    from mprl.benchmarks import fidelity as bench_fidelity

    bench_fidelity.add_parser(bsub)
    bo = bsub.add_parser("opt", help="TD3 fine-tuning vs TD3+OPT from the same TD3+BC checkpoint: scores and wall-clock cost")
    bo.add_argument("--json", action="store_true", help="print one JSON object (keys: methods, opt_cost_ratio, ...)")
    bo.add_argument("--env", default="Hopper-v5")
    bo.add_argument("--quality", default="random", help="dataset quality mprl builds (random needs no training)")
    bo.add_argument("--dataset-size", type=int, default=50_000)
    bo.add_argument("--dataset-budget", type=int, default=None, help="agent training steps for medium/expert datasets")
    bo.add_argument("--offline-updates", type=int, default=5000)
    bo.add_argument("--env-steps", type=int, default=3000, help="online budget per run (N_τ = 1/12 of it, N_pretrain = 2 N_τ)")
    bo.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    bo.add_argument("--kappa-start", type=float, default=1.0, help="κ start (MuJoCo random: 1 → 1)")
    bo.add_argument("--kappa-end", type=float, default=1.0)
    bo.add_argument("--eval-episodes", type=int, default=5)
    bo.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from mprl.quiet import quiet_ray_startup

    os.environ.setdefault("MUJOCO_GL", "egl")
    quiet_ray_startup()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MprlError as e:
        print(f"mprl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mprl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
