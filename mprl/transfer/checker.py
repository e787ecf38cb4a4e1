"""The compatibility checker: which target parameter gets what from the source, and why.

`check(source, target, options)` compares two snapshots role by role (never by name alone)
and returns a TransferReport: for every target parameter one Entry saying whether it is

- copied    — verbatim from a source parameter of the same role and shape;
- adapted   — computed from source parameters by a named adapter (see ADAPTERS);
- synced    — a target copy set from the target's own (transferred) online network;
- kept      — deliberately left as the target has it (constants, action bounds, its normaliser);
- initialised — left at random initialisation, with the reason;

plus the source parameters nothing used ("skipped") and, when the observation or action
spaces differ, `possible = False` with the problems: there is no adapter for that.
The report is plain data (`to_dict()` is JSON); the loader executes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mprl.transfer.roles import ROLE_WORDS, Layer, ModuleRoles, Net
from mprl.transfer.snapshots import Snapshot

ADAPTERS = {
    "fold_normalizer": "the source's observation normaliser folded into the first layer (W' = W/σ, b' = b − W·μ/σ); the target has none",
    "unfold_normalizer": "first layer re-expressed for the target's own observation normaliser (W' = W·σ_t, b' = b + W·μ_t); the source has none",
    "action_units": "action columns of the first layer converted between environment units and [-1, 1] (a_env = bias + scale·a)",
    "gaussian_mean_rows": "deterministic actor's output layer (pre-tanh) → the Gaussian head's mean rows; log-std rows left at init",
    "mean_rows": "the mean rows of the source's Gaussian head → the deterministic output layer; its log-std is dropped",
    "free_std_to_rows": "state-independent log-std → log-std rows with zero weights and the log-std as bias",
    "log_std_init": "log-std rows set to zero weights and a constant bias (option log_std_init)",
    "ensemble_cycle": "the target ensemble has more members than the source: member i ← source member i mod n",
    "sync_from_online": "target copy set equal to the target's online network after the transfer",
}

# Deterministic-action transforms that give the same action for the same actor output.
_SAME_POLICY = {("tanh_bounds", "tanh_bounds"), ("tanh", "tanh"), ("clip_bounds", "clip_bounds"), ("clip", "clip"), ("argmax", "argmax")}


@dataclass
class TransferOptions:
    targets: str = "copy"  # copy: target copies from the source's; sync: from the transferred online nets
    optimizer: bool = False  # carry optimiser state (only for an exact transfer into the same module class)
    log_std_init: float | None = None  # Gaussian heads from a deterministic actor: constant log-std instead of fresh init
    allow_activation_mismatch: bool = False  # copy layers even when the activations differ (function not preserved)

    @classmethod
    def from_config(cls, config: Any) -> TransferOptions:
        return cls(
            targets=getattr(config, "transfer_targets", None) or "copy",
            optimizer=bool(getattr(config, "transfer_optimizer", False)),
            log_std_init=getattr(config, "transfer_log_std_init", None),
            allow_activation_mismatch=bool(getattr(config, "transfer_allow_activation_mismatch", False)),
        )

    def validate(self) -> None:
        from mprl.errors import MprlError

        if self.targets not in ("copy", "sync"):
            raise MprlError(f"transfer_targets must be 'copy' or 'sync', got {self.targets!r}.")


@dataclass
class Entry:
    target: str
    shape: list[int]
    action: str  # copied | adapted | synced | kept | initialised
    role: str
    source: str | None = None
    adapter: str | None = None
    detail: str = ""
    args: dict[str, Any] = field(default_factory=dict)  # what the loader needs (JSON-able)


@dataclass
class Skipped:
    source: str
    shape: list[int]
    reason: str


@dataclass
class RoleResult:
    role: str  # target net label, or normaliser
    source: str | None
    status: str  # exact | adapted | approximate | partial | initialised | synced | kept
    detail: str = ""


@dataclass
class TransferReport:
    source: dict[str, Any]
    target: dict[str, Any]
    options: dict[str, Any]
    possible: bool = True
    problems: list[str] = field(default_factory=list)
    policy: str = "not transferred"  # exact | approximate | partial | not transferred
    optimizer: str = "not carried (not asked)"
    roles: list[RoleResult] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def names(self, action: str) -> list[str]:
        return [e.target for e in self.entries if e.action == action]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = {a: len(self.names(a)) for a in ("copied", "adapted", "synced", "kept", "initialised")} | {"skipped": len(self.skipped)}
        # Flat lists, for quick checks: target names by action; source names nothing used.
        d["copied"] = self.names("copied")
        d["adapted"] = self.names("adapted")
        d["synced"] = self.names("synced")
        d["kept"] = self.names("kept")
        d["left_initialised"] = self.names("initialised")
        d["skipped"] = [s.source for s in self.skipped]
        d["skipped_detail"] = [asdict(s) for s in self.skipped]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferReport:
        return cls(
            source=d["source"], target=d["target"], options=d["options"], possible=d["possible"], problems=list(d["problems"]),
            policy=d["policy"], optimizer=d.get("optimizer", ""), roles=[RoleResult(**r) for r in d["roles"]],
            entries=[Entry(**e) for e in d["entries"]], skipped=[Skipped(**s) for s in d.get("skipped_detail", [])], notes=list(d["notes"]),
        )


# ----------------------------------------------------------------------------- checks


def space_problems(src: ModuleRoles, tgt: ModuleRoles) -> list[str]:
    problems = []
    if src.obs_shape != tgt.obs_shape:
        problems.append(f"observation spaces differ: source {list(src.obs_shape)} vs target {list(tgt.obs_shape)}; no adapter maps between observation spaces of different shapes")
    if src.action_space != tgt.action_space:
        problems.append(f"action spaces differ: source {src.action_space} vs target {tgt.action_space}")
    elif src.act_shape != tgt.act_shape:
        problems.append(f"action spaces differ: source {list(src.act_shape)} vs target {list(tgt.act_shape)}; no adapter maps between action spaces of different shapes")
    return problems


V_NOT_Q = "a state-value function V(s) is not a Q-function Q(s, a), so neither initialises the other"


def _role_words(role: str) -> str:
    base = role[: -len("_target")] if role.endswith("_target") else role
    words = ROLE_WORDS.get(base) or (f"critic '{base}'" if base.startswith("q") else f"'{base}'")
    return f"target copy of the {words}" if role.endswith("_target") else words


class _Planner:
    def __init__(self, source: Snapshot, target: Snapshot, options: TransferOptions) -> None:
        self.src, self.tgt = source.roles, target.roles
        self.src_state, self.tgt_state = source.state, target.state
        self.options = options
        self.entries: dict[str, Entry] = {}
        self.used: set[str] = set()
        self.skip_reasons: dict[str, str] = {}
        self.roles: list[RoleResult] = []
        self.notes: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------
    def add(self, entry: Entry) -> bool:
        """Record an entry; a parameter shared by two nets (PPO's shared encoder) keeps its first."""
        if entry.target in self.entries:
            return False
        entry.shape = list(self.tgt.shapes.get(entry.target, ()))
        self.entries[entry.target] = entry
        if entry.source:
            self.used.add(entry.source)
        for k in entry.args.get("reads", []):
            self.used.add(k)
        return True

    def src_shape(self, key: str | None) -> tuple[int, ...] | None:
        return None if key is None else self.src.shapes.get(key)

    def initialise(self, net: Net, reason: str) -> None:
        for k in net.keys():
            self.add(Entry(k, [], "initialised", net.label, detail=reason))

    # -- the observation / action input transform of a first layer -------------------------
    def input_transform(self, s: Net, t: Net) -> tuple[str | None, dict[str, Any]]:
        args: dict[str, Any] = {"obs_dim": self.src.obs_dim}
        adapters = []
        src_norm = list(self.src.normalizer) if (s.normalized_obs and self.src.normalizer) else None
        tgt_norm = list(self.tgt.normalizer) if (t.normalized_obs and self.tgt.normalizer) else None
        if src_norm and not tgt_norm:
            adapters.append("fold_normalizer")
        elif tgt_norm and not src_norm:
            adapters.append("unfold_normalizer")
        if src_norm or tgt_norm:
            if src_norm and tgt_norm:  # the normaliser is copied: identical statistics on both sides
                src_norm = tgt_norm = None
            args["src_norm"], args["tgt_norm"] = src_norm, tgt_norm
        if s.inputs == "obs+act" and self.src.action_units != self.tgt.action_units and self.tgt.act_low is not None:
            low, high = np.asarray(self.tgt.act_low), np.asarray(self.tgt.act_high)
            scale, bias = (high - low) / 2, (high + low) / 2
            if not (np.allclose(scale, 1) and np.allclose(bias, 0)):
                adapters.append("action_units")
                args["act_cols"] = [self.src.obs_dim, self.src.obs_dim + self.src.act_dim]
                args["act_conv"] = f"{self.src.action_units}_to_{self.tgt.action_units}"
                args["act_scale"], args["act_bias"] = scale.tolist(), bias.tolist()
        return ("+".join(adapters) or None), (args if adapters else {})

    # -- one network ------------------------------------------------------------------------
    def map_net(self, s: Net, t: Net, cycled: bool) -> RoleResult:
        label = t.label
        src_label = s.label
        cycle_note = f" (ensemble cycling: source has fewer members, {s.label} reused)" if cycled else ""
        if s.arch != t.arch:
            why = f"architecture differs: source {s.label} is {s.describe()}, target is {t.describe()}; no adapter"
            self.initialise(t, why)
            return RoleResult(label, src_label, "initialised", why)
        if s.arch != "mlp":
            return self.map_opaque(s, t, cycled)
        if s.inputs != t.inputs:
            why = f"inputs differ: source takes {s.inputs}, target takes {t.inputs}"
            self.initialise(t, why)
            return RoleResult(label, src_label, "initialised", why)
        heads = {s.head, t.head}
        if not (s.head == t.head or heads <= {"deterministic", "gaussian", "gaussian_free_std"}):
            why = f"heads differ: source {s.head}, target {t.head}"
            self.initialise(t, why)
            return RoleResult(label, src_label, "initialised", why)

        n_t = len(t.layers)
        mapped, adapted, approx = 0, False, False
        used_adapters: list[str] = []
        stop: str | None = None
        for i, tl in enumerate(t.layers):
            if stop is None:
                stop = self.layer_mismatch(s, t, i)
            if stop is not None:
                for k in (tl.weight, tl.bias):
                    if k:
                        self.add(Entry(k, [], "initialised", label, detail=stop))
                continue
            sl = s.layers[i]
            is_head = i == n_t - 1
            adapter, args = self.input_transform(s, t) if i == 0 else (None, {})
            if sl.activation != tl.activation:
                approx = True
            head_adapter = None
            if is_head and s.head != t.head:
                head_adapter = self.head_adapter(s, t)
            if cycled:
                adapter = "+".join(a for a in (adapter, "ensemble_cycle") if a)
            adapter = "+".join(a for a in (adapter, head_adapter) if a) or None
            for kind, tk, sk in (("weight", tl.weight, sl.weight), ("bias", tl.bias, sl.bias)):
                if tk is None:
                    continue
                if sk is None:
                    self.add(Entry(tk, [], "initialised", label, detail="the source layer has no bias"))
                    continue
                e_args = dict(args)
                if head_adapter:
                    e_args.update(self.head_args(s, t, kind))
                if kind == "bias" and args:
                    e_args["weight"] = sl.weight
                    e_args["reads"] = [sl.weight]
                if e_args.get("src_norm"):
                    e_args["reads"] = e_args.get("reads", []) + e_args["src_norm"]
                pure = not adapter or adapter == "ensemble_cycle"
                action = "copied" if pure else "adapted"
                detail = f"layer {i}{' (output)' if is_head else ''}" + cycle_note
                if sl.activation != tl.activation:
                    detail += f"; activation differs ({sl.activation} → {tl.activation}): function not preserved"
                self.add(Entry(tk, [], action, label, source=sk, adapter=adapter, detail=detail, args=e_args))
            for tk, sk in zip(tl.norm or (), sl.norm or ()):  # LayerNorm affine parameters: same function, copied
                self.add(Entry(tk, [], "copied", label, source=sk, detail=f"layer {i} LayerNorm" + cycle_note))
            mapped += 1
            adapted = adapted or bool(adapter and adapter != "ensemble_cycle")
            for a in (adapter or "").split("+"):
                if a and a not in used_adapters:
                    used_adapters.append(a)
        # A Gaussian head's state-independent log-std.
        if t.log_std:
            self.map_free_log_std(s, t, label)
        if s.head == "gaussian" and t.head != "gaussian" and mapped == n_t:
            rows = self.src.act_dim
            self.notes.append(f"{t.label}: the source's log-std rows (output rows {rows}–{2 * rows - 1}) are dropped: the target's head has no state-dependent log-std")
        if mapped == 0:
            return RoleResult(label, src_label, "initialised", stop or "no layer matches")
        if mapped < n_t:
            return RoleResult(label, src_label, "partial", f"{mapped} of {n_t} layers copied from the input side; {stop}{cycle_note}")
        if approx:
            return RoleResult(label, src_label, "approximate", "activations differ: weights copied, function not preserved" + cycle_note)
        status = "adapted" if adapted or s.head != t.head else "exact"
        return RoleResult(label, src_label, status, ", ".join(used_adapters))

    def layer_mismatch(self, s: Net, t: Net, i: int) -> str | None:
        """Why target layer i cannot take source layer i (None if it can)."""
        n_s, n_t = len(s.layers), len(t.layers)
        if i >= n_s:
            return f"depth differs (source {n_s} layers, target {n_t}): target layer {i} has no counterpart"
        sl, tl = s.layers[i], t.layers[i]
        s_head, t_head = i == n_s - 1, i == n_t - 1
        if s_head != t_head:
            return f"depth differs (source {n_s} layers, target {n_t}): layer {i} is {'the output' if s_head else 'hidden'} in the source and {'the output' if t_head else 'hidden'} in the target"
        if sl.in_dim != tl.in_dim:
            return f"shape differs at layer {i}: source [{sl.out_dim}×{sl.in_dim}], target [{tl.out_dim}×{tl.in_dim}]"
        if not t_head and sl.out_dim != tl.out_dim:
            return f"width differs at layer {i}: source [{sl.out_dim}×{sl.in_dim}], target [{tl.out_dim}×{tl.in_dim}]"
        if t_head and s.head == t.head and sl.out_dim != tl.out_dim:
            return f"output differs: source [{sl.out_dim}×{sl.in_dim}], target [{tl.out_dim}×{tl.in_dim}]"
        if (sl.norm is None) != (tl.norm is None):
            return f"LayerNorm differs at layer {i} ({'present' if sl.norm else 'absent'} in the source, {'present' if tl.norm else 'absent'} in the target): copying would not preserve the function"
        if sl.activation != tl.activation and not self.options.allow_activation_mismatch:
            return f"activation differs at layer {i} ({sl.activation} in the source, {tl.activation} in the target): copying would not preserve the function (option allow_activation_mismatch)"
        for key in (sl.weight, sl.bias):
            if key and key not in self.src_state:
                return f"'{key}' is missing from the source weights"
        return None

    def head_adapter(self, s: Net, t: Net) -> str | None:
        if t.head == "gaussian":
            if s.head == "gaussian_free_std":
                return "free_std_to_rows"
            return "log_std_init" if self.options.log_std_init is not None else "gaussian_mean_rows"
        if s.head == "gaussian":
            return "mean_rows"  # → deterministic or free-std head: the mean rows only
        return None  # deterministic ↔ free-std mean: same rows

    def head_args(self, s: Net, t: Net, kind: str) -> dict[str, Any]:
        a = self.src.act_dim
        args: dict[str, Any] = {}
        if s.head == "gaussian":
            args["rows"] = [0, a]  # the mean rows of the source
        if t.head == "gaussian":
            args["dst_rows"] = [0, a]  # written into the target's mean rows
            if s.head == "gaussian_free_std" and s.log_std:
                args["fill_rows"] = [a, 2 * a]
                args["fill"] = "zero" if kind == "weight" else "source_log_std"
                args["log_std_key"] = s.log_std
                args["reads"] = [s.log_std]
            elif self.options.log_std_init is not None:
                args["fill_rows"] = [a, 2 * a]
                args["fill"] = 0.0 if kind == "weight" else float(self.options.log_std_init)
        return args

    def map_free_log_std(self, s: Net, t: Net, label: str) -> None:
        assert t.log_std is not None
        if s.log_std and self.src_shape(s.log_std) == self.tgt.shapes.get(t.log_std):
            self.add(Entry(t.log_std, [], "copied", label, source=s.log_std, detail="log-std"))
        elif s.head == "gaussian" and s.layers:
            self.add(Entry(t.log_std, [], "initialised", label, detail="the source's log-std depends on the state; the target's is a free parameter: fresh"))
        elif self.options.log_std_init is not None:
            self.add(Entry(t.log_std, [], "adapted", label, adapter="log_std_init", detail="constant log-std", args={"fill": float(self.options.log_std_init)}))
        else:
            self.add(Entry(t.log_std, [], "initialised", label, detail="the source actor is deterministic: fresh log-std"))

    def map_opaque(self, s: Net, t: Net, cycled: bool) -> RoleResult:
        n = 0
        for rel, tk in t.params.items():
            sk = s.params.get(rel)
            if sk is not None and self.src_shape(sk) == self.tgt.shapes.get(tk) and sk in self.src_state:
                self.add(Entry(tk, [], "copied", t.label, source=sk, adapter="ensemble_cycle" if cycled else None, detail=f"{t.arch} '{rel}'"))
                n += 1
            else:
                why = f"{t.arch} '{rel}': " + ("shape differs" if sk is not None else "no counterpart in the source")
                self.add(Entry(tk, [], "initialised", t.label, detail=why))
        status = "exact" if n == len(t.params) else ("partial" if n else "initialised")
        return RoleResult(t.label, s.label, status, f"{n} of {len(t.params)} tensors copied by structure")

    # -- target copies ----------------------------------------------------------------------
    def sync(self, t: Net, why: str) -> RoleResult:
        online = next((n for n in self.tgt.nets if n.role == t.online_role and n.index == t.index), None)
        if online is None or online.arch != t.arch or len(online.keys()) != len(t.keys()):
            self.initialise(t, f"{why}; the target has no matching online network to sync from")
            return RoleResult(t.label, None, "initialised", why)
        online_status = next((r.status for r in self.roles if r.role == online.label), "initialised")
        if online_status == "initialised":
            # The fresh online net and its copy already agree (targets are built as copies).
            self.initialise(t, f"{why}; its online network {online.label} is freshly initialised too")
            return RoleResult(t.label, None, "initialised", "online network not transferred")
        for tk, ok in zip(t.keys(), online.keys()):
            self.add(Entry(tk, [], "synced", t.label, adapter="sync_from_online", detail=f"{why}: ← {ok}", args={"from": ok}))
        return RoleResult(t.label, online.label, "synced", why)

    # -- everything ---------------------------------------------------------------------------
    def run(self) -> None:
        src, tgt = self.src, self.tgt
        # Observation normaliser.
        if tgt.normalizer:
            if src.normalizer:
                for sk, tk in zip(src.normalizer, tgt.normalizer):
                    self.add(Entry(tk, [], "copied", "normalizer", source=sk, detail="observation normaliser"))
                self.roles.append(RoleResult("normalizer", "normalizer", "exact"))
            else:
                for tk in tgt.normalizer:
                    self.add(Entry(tk, [], "kept", "normalizer", detail="the source has no observation normaliser: the target keeps its statistics and first layers are re-expressed for them"))
                self.roles.append(RoleResult("normalizer", None, "kept", "source has none"))
        elif src.normalizer:
            self.used.update(src.normalizer)
            self.notes.append("the source's observation normaliser is folded into the first layer of each network (the target has none)")
        # Online networks, the actor first.
        online = sorted((n for n in tgt.nets if not n.is_target), key=lambda n: (n.role != "actor", n.role, n.index))
        for t in online:
            self.roles.append(self.map_role(t))
        for t in (n for n in tgt.nets if n.is_target):
            if self.options.targets == "sync":
                self.roles.append(self.sync(t, "option transfer_targets=sync"))
                continue
            cands = src.nets_with_role(t.role)
            if cands:
                self.roles.append(self.map_role(t))
            else:
                self.roles.append(self.sync(t, "the source has no " + _role_words(t.role)))
        # Constants (action bounds, log-std clips) and parameters with no known role.
        for key, kind in tgt.constants.items():
            same = key in self.src_state and self.src.shapes.get(key) == tgt.shapes.get(key) and np.array_equal(self.src_state[key], self.tgt_state.get(key))
            if same:
                self.add(Entry(key, [], "copied", kind, source=key, detail="constant, equal in source and target"))
            else:
                self.add(Entry(key, [], "kept", kind, detail="constant of the target (from its action space / configuration)"))
        for key in tgt.others:
            if key in self.src_state and (key in src.others or src.family == "unknown") and src.shapes.get(key) == tgt.shapes.get(key):
                self.add(Entry(key, [], "copied", "no role", source=key, detail="no known role: same name and shape in the source"))
            else:
                self.add(Entry(key, [], "initialised", "no role", detail="no known role, and no parameter of the same name and shape in the source"))
        for key in tgt.shapes:
            if key not in self.entries:
                self.add(Entry(key, [], "initialised", "no role", detail="not described"))

    def _note_v_q(self) -> None:
        note = f"value functions are not carried between V and Q: {V_NOT_Q}"
        if note not in self.notes:
            self.notes.append(note)

    def map_role(self, t: Net) -> RoleResult:
        cands = self.src.nets_with_role(t.role)
        if not cands:
            why = f"missing role: the source has no {_role_words(t.role)}"
            kinds = {n.online_role[:1] for n in self.src.nets if not n.is_target}
            if t.online_role.startswith("q") and "v" in kinds:
                why += f" ({V_NOT_Q})"
                self._note_v_q()
            elif t.online_role == "v" and "q" in kinds:
                why += f" (its critics are Q(s, a): {V_NOT_Q})"
                self._note_v_q()
            self.initialise(t, why)
            return RoleResult(t.label, None, "initialised", why)
        cycled = t.index >= len(cands)
        s = cands[t.index % len(cands)]
        return self.map_net(s, t, cycled)

    def skipped(self) -> list[Skipped]:
        tgt_roles = {n.role for n in self.tgt.nets}
        tgt_counts = {r: len(self.tgt.nets_with_role(r)) for r in tgt_roles}
        out = []
        key_net = {k: n for n in self.src.nets for k in n.keys()}
        for key, shape in self.src.shapes.items():
            if key in self.used:
                continue
            net = key_net.get(key)
            if net is None:
                kind = self.src.constants.get(key)
                if kind in ("action_scale", "action_bias"):
                    reason = "action bounds: the target maps actions to its own action space"
                elif kind:
                    reason = f"constant ({kind})"
                else:
                    reason = "no known role, and no parameter of the same name and shape in the target"
            elif net.role not in tgt_roles:
                reason = f"the target has no {_role_words(net.role)}"
                if net.online_role == "v" and any(r.startswith("q") for r in tgt_roles):
                    reason += f" ({V_NOT_Q}: the target's critics stay initialised)"
                if net.is_target and self.options.targets == "sync":
                    reason = "target copies are re-synced from the online networks (transfer_targets=sync)"
            elif self.options.targets == "sync" and net.is_target:
                reason = "target copies are re-synced from the online networks (transfer_targets=sync)"
            elif net.index >= tgt_counts.get(net.role, 0):
                reason = f"the target's {_role_words(net.role)} ensemble has {tgt_counts[net.role]} member(s)"
            elif net.head == "gaussian" and net.layers and key in (net.layers[-1].weight, net.layers[-1].bias):
                reason = "log-std rows of the source head"
            else:
                reason = "no matching layer in the target (shape, depth or architecture differs)"
            out.append(Skipped(key, list(shape), reason))
        return out


def _policy_status(planner: _Planner, src: ModuleRoles, tgt: ModuleRoles) -> tuple[str, list[str]]:
    notes = []
    actor = next((r for r in planner.roles if r.role == "actor"), None)
    if actor is None:
        return "not transferred", ["the target has no actor"]
    if actor.status in ("initialised",):
        return "not transferred", notes
    if actor.status == "partial":
        return "partial", notes
    n_src, n_tgt = len(src.nets_with_role("actor")), len(tgt.nets_with_role("actor"))
    if n_src > 1 and n_src != n_tgt:  # an ensemble's policy (Off2On) combines its K actors
        notes.append(f"the source's policy combines {n_src} actors (an ensemble); the target's {n_tgt} actor(s) get member 0 onwards, "
                     "so its actions approximate the ensemble's")
        return "approximate", notes
    pair = (src.action_transform, tgt.action_transform)
    same = pair in _SAME_POLICY
    unit_bounds = all(lo == -1 and hi == 1 for lo, hi in zip(tgt.act_low or [], tgt.act_high or []))
    if pair in {("tanh", "tanh_bounds"), ("tanh_bounds", "tanh"), ("clip", "clip_bounds"), ("clip_bounds", "clip")} and unit_bounds:
        same = True
    if same and pair[0].endswith("_bounds") and (src.act_low, src.act_high) != (tgt.act_low, tgt.act_high):
        same = False
        notes.append("action bounds differ: the policy is carried in [-1, 1] units, so environment actions differ")
    if not same:
        bound = ""
        if {pair[0].removesuffix("_bounds"), pair[1].removesuffix("_bounds")} == {"clip", "tanh"} and pair[0].endswith("_bounds") == pair[1].endswith("_bounds"):
            # |clip(y, −1, 1) − tanh(y)| is largest at |y| = 1: 1 − tanh(1) ≈ 0.238.
            bound = ": they differ by at most 0.24 of the half action range (|clip(y) − tanh(y)| ≤ 1 − tanh 1), near 0 where |y| ≪ 1 or |y| ≫ 1"
        notes.append(f"deterministic actions are made differently: source {src.action_transform}, target {tgt.action_transform} (see mprl.transfer.roles.ACTION_TRANSFORMS); the actor's output is carried, its actions are approximately equal{bound}")
        return "approximate", notes
    if actor.status == "approximate":
        return "approximate", notes
    return "exact", notes


def check(source: Snapshot, target: Snapshot, options: TransferOptions | None = None) -> TransferReport:
    """The transfer plan from `source` into `target`, as a report (nothing is modified)."""
    options = options or TransferOptions()
    options.validate()
    src, tgt = source.roles, target.roles
    report = TransferReport(
        source={**source.meta, **src.summary()},
        target={**target.meta, **tgt.summary()},
        options=asdict(options),
    )
    report.problems = space_problems(src, tgt)
    if report.problems:
        report.possible = False
        report.entries = [Entry(k, list(s), "initialised", "-", detail="transfer impossible") for k, s in tgt.shapes.items()]
        return report
    planner = _Planner(source, target, options)
    planner.run()
    report.entries = list(planner.entries.values())
    report.roles = planner.roles
    report.skipped = planner.skipped()
    report.policy, policy_notes = _policy_status(planner, src, tgt)
    report.notes = planner.notes + policy_notes
    if src.family == "unknown" or tgt.family == "unknown":
        report.notes.append("a module of unknown family: its parameters are matched by name and shape only")
    return report


__all__ = ["ADAPTERS", "Entry", "RoleResult", "Skipped", "TransferOptions", "TransferReport", "check", "space_problems", "Layer"]
