"""The validated choice between phases (`init_from: {best_of: [...], keep: PAUSED, validation}`):
offline RL as a subroutine of online RL (Su, Luo, Zhang 2025, arXiv 2512.00383).

Candidates: every trial's final checkpoint of each `best_of` phase (offline RL on the paused
phase's data, over algorithms, dataset selections and seeds), plus the selected checkpoint of
the `keep` phase, the online policy that was paused. Keeping it is always an option, and it
wins ties: the paper finds that offline RL on the agent's own data helps on some tasks and
hurts on others, and validation is what makes the subroutine safe.

- online: K deterministic episodes per candidate, the same K seeded starts for each (common
  random numbers); the mean return scores. Their env steps are real interaction: they are
  recorded and, with `charge` (default), subtracted from the next phase's env-step budget,
  so a pipeline with the subroutine interacts no more than one without it.
- offline: fitted Q evaluation (Le, Voloshin, Yue 2019) of each candidate's deterministic
  policy π on the held-out episodes of its dataset (`dataset: {from: ..., held_out: f}`),
  which no candidate trained on: Q ← r + γ(1 − d) Q̄(s′, π(s′)) by regression, and the score
  is the mean Q(s₀, π(s₀)) over the held-out episodes' first states. No env step is spent.
- none: the first candidate phase's first trial, unvalidated (the baseline the paper's
  validation is measured against).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mprl.errors import MprlError

FQE_GAMMA = 0.99
FQE_LR = 3e-4
FQE_BATCH = 256
FQE_TAU = 0.005
FQE_HIDDEN = (256, 256)


def candidate_checkpoints(store: Any, init: Any, nodes_of: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The paused policy first (it wins ties), then each candidate phase's trials' final checkpoints."""
    out: list[dict[str, Any]] = []
    if init.keep:
        for node_id in nodes_of[init.keep]:
            selected = store.checkpoints(node_id, selected_only=True)
            if selected:
                c = selected[0]
                out.append({**_row(c), "kind": "paused", "label": f"{init.keep} (paused, {c['selection']})"})
    for name in init.best_of:
        for node_id in nodes_of[name]:
            node = store.node(node_id)
            by_trial: dict[str, list[dict[str, Any]]] = {}
            for c in store.checkpoints(node_id):
                by_trial.setdefault(c["trial_id"], []).append(c)
            trials = {t["trial_id"]: t for t in store.trials(node_id)}
            for trial_id, ckpts in sorted(by_trial.items()):
                last = max(ckpts, key=lambda c: c[node["axis"]] or 0)
                t = trials.get(trial_id, {})
                what = ", ".join(x for x in (t.get("sweep_label"), f"seed {t.get('seed')}" if t.get("seed") is not None else None) if x)
                out.append({**_row(last), "kind": "candidate", "label": f"{node_id} {node['algorithm']}" + (f" ({what})" if what else "")})
    if not out:
        raise MprlError(f"best_of {init.best_of}: the candidate phases left no checkpoint to choose from")
    return out


def _row(c: dict[str, Any]) -> dict[str, Any]:
    return {"checkpoint_id": c["checkpoint_id"], "path": c["path"], "node_id": c["node_id"], "phase": c["phase"],
            "algorithm": c["algorithm"], "trial_id": c["trial_id"], "selection": c.get("selection")}


def online_scores(candidates: list[dict[str, Any]], resolve: Callable[[str], str], env_id: str, episodes: int, seed: int,
                  write: Callable[[str], None]) -> int:
    """Fill `score`, `returns`, `env_steps` of each candidate from `episodes` evaluation episodes; total env steps."""
    from mprl.evaluation import evaluate_policy
    from mprl.serve.policy import load_policy

    total = 0
    for c in candidates:
        policy = load_policy(resolve(c["path"]))
        result = evaluate_policy(policy.act_one, env_id, episodes, seed=seed)
        c.update(score=result.mean, returns=[float(r) for r in result.returns], env_steps=int(sum(result.lengths)))
        total += c["env_steps"]
        write(f"  {c['checkpoint_id']} {c['label']}: return {result.mean:.1f} ± {result.std:.1f} over {episodes} episodes ({c['env_steps']:,} env steps)")
    return total


def held_out_arrays(dataset_id: str) -> dict[str, np.ndarray]:
    """The held-out transitions and the index of each episode's first row."""
    from algorithms.common.replay import episode_ids
    from mprl.datasets import load_transitions

    arrays = dict(load_transitions(dataset_id))
    ep = episode_ids(arrays["terminals"], arrays["timeouts"])
    arrays["first"] = np.flatnonzero(np.r_[True, np.diff(ep) != 0])
    return arrays


def fitted_q_evaluation(act: Callable[[np.ndarray], np.ndarray], data: dict[str, np.ndarray], updates: int, seed: int,
                        gamma: float = FQE_GAMMA) -> dict[str, float]:
    """FQE of the deterministic policy `act` (obs batch → actions) on `data`: the estimated
    J(π) = mean over first states of Q(s₀, π(s₀)), and the final TD error of the fit."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    obs, actions = torch.as_tensor(data["obs"], dtype=torch.float32), torch.as_tensor(data["actions"], dtype=torch.float32)
    rewards = torch.as_tensor(data["rewards"], dtype=torch.float32)
    next_obs = torch.as_tensor(data["next_obs"], dtype=torch.float32)
    not_done = 1.0 - torch.as_tensor(data["terminals"], dtype=torch.float32)
    next_act = torch.as_tensor(np.asarray(act(data["next_obs"]), dtype=np.float32))  # π is deterministic: once
    first = torch.as_tensor(data["first"])
    s0, a0 = obs[first], torch.as_tensor(np.asarray(act(data["obs"][data["first"]]), dtype=np.float32))
    mean, std = obs.mean(0), obs.std(0) + 1e-3
    layers: list[nn.Module] = []
    width = obs.shape[1] + actions.shape[1]
    for h in FQE_HIDDEN:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    q = nn.Sequential(*layers, nn.Linear(width, 1))
    q_target = copy.deepcopy(q).requires_grad_(False)
    opt = torch.optim.Adam(q.parameters(), lr=FQE_LR)

    def value(net: nn.Module, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([(s - mean) / std, a], dim=-1)).squeeze(-1)

    n = len(rewards)
    td = torch.tensor(0.0)
    for _ in range(updates):
        i = torch.randint(0, n, (min(FQE_BATCH, n),), generator=g)
        with torch.no_grad():
            y = rewards[i] + gamma * not_done[i] * value(q_target, next_obs[i], next_act[i])
        loss = ((value(q, obs[i], actions[i]) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p, tp in zip(q.parameters(), q_target.parameters()):
                tp.mul_(1 - FQE_TAU).add_(FQE_TAU * p)
        td = loss.detach()
    with torch.no_grad():
        return {"score": float(value(q, s0, a0).mean()), "td_error": float(td)}


def offline_scores(candidates: list[dict[str, Any]], resolve: Callable[[str], str], dataset_id: str, updates: int, seed: int,
                   write: Callable[[str], None]) -> None:
    """Fill `score` (FQE's J(π)) and `td_error` of each candidate on the held-out dataset."""
    from mprl.serve.policy import load_policy

    data = held_out_arrays(dataset_id)
    write(f"  held-out data {dataset_id}: {len(data['rewards']):,} transitions, {len(data['first'])} episodes")
    for c in candidates:
        policy = load_policy(resolve(c["path"]))
        c.update(fitted_q_evaluation(policy.act, data, updates, seed), env_steps=0)
        write(f"  {c['checkpoint_id']} {c['label']}: FQE J(π) {c['score']:.2f} (TD error {c['td_error']:.3g}, {updates:,} updates)")


def choose(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest score; the first (the paused policy, when kept) wins ties."""
    best = candidates[0]
    for c in candidates[1:]:
        if c.get("score") is not None and (best.get("score") is None or c["score"] > best["score"]):
            best = c
    return best
