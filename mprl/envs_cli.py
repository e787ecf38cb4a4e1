"""`mprl envs`: the named deployment contexts and what each changes; `mprl envs ID` describes any id."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_envs(args: argparse.Namespace) -> int:
    from mprl.envs import env_context, named_variants, registered_env_id

    if args.env:
        ctx = env_context(registered_env_id(args.env))  # unknown ids: MprlError with a did-you-mean
        print(json.dumps(ctx, indent=2) if args.json else _lines(ctx))
        return 0
    rows = named_variants()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for ctx in rows:
        print(_lines(ctx) + "\n")
    print("A phase's `env:` takes any of these ids, any Gymnasium id, or a mapping "
          "{id, dynamics: {body_mass, friction, actuator_gain, joint_damping, gravity}, observation_noise, action_delay}.")
    return 0


def _lines(ctx: dict[str, Any]) -> str:
    out = [ctx["env"], f"  {ctx['description']}"]
    if ctx.get("stands_for"):
        out.append(f"  stands for: {ctx['stands_for']}")
    if ctx.get("changes"):
        out.append(f"  changes: {json.dumps(ctx['changes'])}")
    return "\n".join(out)


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("envs", help="list the named deployment contexts (environment variants), or describe one environment id")
    p.add_argument("env", nargs="?", help="an environment id (plain, named variant or self-describing variant id)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_envs)
