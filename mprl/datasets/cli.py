"""`mprl datasets build | list | info`: argparse glue (mprl/cli.py calls `add_subparser`)."""

from __future__ import annotations

import argparse
import json

from mprl.datasets.ids import DEFAULT_BUDGET, QUALITIES, datasets_root


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "datasets", help="build, list and inspect Minari datasets",
        description=f"Minari datasets in the local Minari folder (MINARI_DATASETS_PATH, now {datasets_root()}).",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="datasets_command", metavar="{build,list,info}")

    b = sub.add_parser(
        "build", help="build a random / medium / medium-replay / expert dataset",
        description="Record a D4RL-style dataset with Minari. medium, medium-replay and expert "
                    "train a TD3 agent online first (--budget env steps).",
    )
    b.add_argument("env_id", metavar="ENV_ID", help="Gymnasium env id, e.g. Hopper-v5")
    b.add_argument("--quality", required=True, choices=QUALITIES)
    b.add_argument("--size", type=int, default=None,
                   help="transitions to record (required except for medium-replay, whose size is "
                        "every transition the agent saw up to the medium snapshot)")
    b.add_argument("--budget", type=int, default=None,
                   help=f"env steps of online training (not for random; default {DEFAULT_BUDGET})")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--id", dest="dataset_id", default=None,
                   help="dataset id (default mprl/<env family>/<quality>-v0)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset with this id")
    b.add_argument("--format", dest="data_format", default="hdf5", choices=("hdf5", "arrow", "parquet"))
    b.add_argument("--agent-hidden", default=None, metavar="H,H",
                   help="hidden sizes of the data-collecting TD3 agent (default 256,256)")
    b.add_argument("--agent-lr", type=float, default=None, help="its learning rate (default 3e-4)")
    b.add_argument("--agent-utd", type=int, default=None, help="its updates per env step (default 1)")
    b.add_argument("--target-score", type=float, default=None, metavar="S",
                   help="the chosen snapshot's target normalised score (D4RL's scale where the env has D4RL "
                        "scores, else 0 = random, 100 = the best snapshot); default: medium 1/3 of the best "
                        "snapshot's, expert D4RL's expert (100)")
    b.add_argument("--target-return", type=float, default=None, metavar="R",
                   help="the target as an episode return instead")
    b.add_argument("--strict", action="store_true",
                   help="refuse (write nothing) when the chosen snapshot misses its target within the budget")
    b.set_defaults(func=_cmd_build)

    ls = sub.add_parser("list", help="list the local Minari datasets")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_cmd_list)

    i = sub.add_parser("info", help="size, env, reference scores, returns and build metadata of a dataset")
    i.add_argument("dataset_id", metavar="ID")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_cmd_info)


def _cmd_build(args) -> int:
    from mprl.datasets.build import build_dataset
    from mprl.errors import MprlError

    if args.quality != "medium-replay" and args.size is None:
        raise MprlError(f"--size N is required for --quality {args.quality} (the number of transitions).")
    if args.quality == "random" and args.budget is not None:
        print("note: --budget does not apply to random datasets (no agent is trained).")
    agent: dict = {}
    if args.agent_hidden:
        try:
            agent["hidden"] = [int(h) for h in args.agent_hidden.split(",")]
        except ValueError:
            raise MprlError(f"--agent-hidden must be comma-separated integers such as 256,256 (got {args.agent_hidden!r}).") from None
    if args.agent_lr is not None:
        agent["lr"] = args.agent_lr
    if args.agent_utd is not None:
        agent["utd"] = args.agent_utd
    build_dataset(args.env_id, args.quality, size=args.size, budget=args.budget, seed=args.seed,
                  dataset_id=args.dataset_id, overwrite=args.overwrite, progress=print,
                  data_format=args.data_format, agent=agent or None, target_score=args.target_score,
                  target_return=args.target_return, strict=args.strict)
    return 0


def _num(x, fmt="{:.1f}") -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return fmt.format(x)


def format_table(rows: list[list[str]], header: list[str], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    def line(r):
        return "  ".join(str(v).rjust(w) if c in right else str(v).ljust(w)
                         for c, (v, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _target_text(t: dict) -> str:
    if t.get("normalized_score") is None:
        return "none (no D4RL reference scores)"
    state = {True: "reached", False: "NOT reached", None: "-"}[t.get("reached")]
    return (f"normalised {t['normalized_score']:.1f} ± {_num(t.get('tolerance'))} (return {_num(t.get('return'))}; "
            f"{t.get('source')}): {state}")


def _cmd_list(args) -> int:
    from mprl.datasets.store import list_datasets

    rows = list_datasets()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"No datasets in {datasets_root()}. Build one with: "
              "mprl datasets build Hopper-v5 --quality random --size 100000")
        return 0
    table = [[r["id"], r["env_id"] or "-", (f"from {r['source']}" if r.get("source") else r["quality"]) or "-", _num(r["steps"]), _num(r["episodes"]),
              _num(r["ref_min_score"]), _num(r["ref_max_score"]), _score_text(r), _num(r["size_mb"])] for r in rows]
    print(format_table(table, ["ID", "ENV", "QUALITY", "STEPS", "EPISODES", "REF MIN", "REF MAX", "SCORE / TARGET", "MB"],
                       right={3, 4, 5, 6, 8}))
    print(f"\n{len(rows)} dataset(s) in {datasets_root()}")
    return 0


def _score_text(r: dict) -> str:
    """`36.1 / 12.0 ok`: the behaviour snapshot's achieved normalised score against its target."""
    if r.get("snapshot_score") is None:
        return "-"
    if r.get("target_score") is None:
        return f"{r['snapshot_score']:.1f}"
    return f"{r['snapshot_score']:.1f} / {r['target_score']:.1f} {'ok' if r.get('target_reached') else 'MISSED'}"


def _cmd_info(args) -> int:
    from mprl.datasets.store import dataset_info

    info = dataset_info(args.dataset_id)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    m = info.get("mprl") or {}
    lines = [
        ("id", info["id"]),
        ("path", info["path"]),
        ("env", info["env_id"] or "-"),
        ("transitions", _num(info["steps"])),
        ("episodes", _num(info["episodes"])),
        ("obs / action shape", f"{tuple(info['observation_shape'])} / {tuple(info['action_shape'])}"),
        ("format / size", f"{info['data_format']} / {_num(info['size_mb'])} MB"),
        ("reference scores", "-" if not info["reference_scores"] else
         f"random {info['reference_scores'][0]:.1f}, expert {info['reference_scores'][1]:.1f}"),
        ("mean episode return", f"{_num(info['mean_return'])} ± {_num(info['std_return'])}"),
        ("normalised score", _num(info["normalized_score"])),
    ]
    if m:
        lines += [
            ("quality", m.get("quality")),
            ("seed", m.get("seed")),
            ("requested size", _num(m.get("size"))),
            ("training budget", _num(m.get("budget"))),
            ("random policy return", _num(m.get("random_return"))),
            ("expert (best) return", _num(m.get("expert_return"))),
        ]
        snap = m.get("snapshot")
        if snap:
            lines.append(("snapshot", (f"env step {snap['env_step']:,}, evaluated return {snap['return']:.1f}, "
                                      f"normalised {_num(snap.get('normalized_score'))}")))
            if "achieved_return" in snap:
                lines.append(("achieved score", (f"return {snap['achieved_return']:.1f} over {m.get('achieved_episodes')} "
                                                f"episodes, normalised {_num(snap.get('achieved_normalized_score'))}")))
        best = m.get("best")
        if best:
            lines.append(("best snapshot", (f"env step {best['env_step']:,}, achieved return {best['achieved_return']:.1f}, "
                                           f"normalised {_num(best.get('achieved_normalized_score'))}")))
        if m.get("target"):
            lines.append(("target", _target_text(m["target"])))
        lines += [
            ("behaviour", m.get("exploration")),
            ("policy checkpoint", info.get("policy_checkpoint") or "-"),
            ("built", f"{m.get('built_at')} by mprl {m.get('mprl_version')} in {_num(m.get('build_time_s'))} s"),
        ]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k.ljust(width)}  {v}")
    return 0
