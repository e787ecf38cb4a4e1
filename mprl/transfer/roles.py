"""Describe an RL module's parameters by role, whatever their names.

A role is what a group of parameters does for the algorithm: the actor (trunk + head), each
critic of an ensemble, the state-value function, target copies, the observation normaliser.
Networks are described as chains of Linear layers with the activation after each, so that
networks built by different code (our `actor.net.0`, RLlib's `pi_encoder.net.mlp.0` + `pi`)
can be compared layer by layer. Architectures that are not a plain chain (RLlib's
multi-stream Q encoder) are described as opaque networks, comparable only with their own kind.

Role names: `actor`, `q` (the critic ensemble; `critics_X` of our modules → `q_X`, e.g.
OPT's Q_on-pt `critics_on` → `q_on`), `v` (state-value function), each with a `_target`
suffix for target copies; ensemble members are numbered by `Net.index`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

# How the deterministic action is made from the actor's output y (the mean for Gaussians):
#   tanh_bounds: a = low + (tanh(y) + 1) / 2 · (high − low)     (TD3 family; SAC with normalize_actions)
#   tanh:        a = tanh(y)                                     (SAC without normalize_actions)
#   clip_bounds: a = clip(low + (y + 1) / 2 · (high − low))      (plain Gaussian with normalize_actions)
#   clip:        a = y, clipped to the bounds by the env runner (plain Gaussian without it)
ACTION_TRANSFORMS = ("tanh_bounds", "tanh", "clip_bounds", "clip", "argmax")

ACTIVATIONS: dict[type, str] = {
    nn.ReLU: "relu", nn.Tanh: "tanh", nn.SiLU: "silu", nn.ELU: "elu", nn.LeakyReLU: "leaky_relu",
    nn.Sigmoid: "sigmoid", nn.GELU: "gelu", nn.Softplus: "softplus",
}

ROLE_WORDS = {"actor": "actor", "q": "critic", "v": "state-value function"}


@dataclass
class Layer:
    """One Linear layer: `out_dim × in_dim` weight, optional bias, activation applied after it."""

    weight: str
    bias: str | None
    out_dim: int
    in_dim: int
    activation: str = "linear"
    norm: tuple[str, str] | None = None  # LayerNorm (weight, bias) between the Linear and its activation


@dataclass
class Net:
    """One network with one role (an actor, one critic of an ensemble, a value function)."""

    role: str  # actor | q | q_on | v | ... with `_target` for target copies
    index: int = 0  # member of an ensemble
    inputs: str = "obs"  # obs | obs+act (critics: concat(obs, action) in this order)
    # deterministic (out = act dim) | gaussian (out = 2·act: mean rows, then log-std rows)
    # | gaussian_free_std (out = act, plus a state-independent log-std parameter) | logits | value
    head: str = "value"
    arch: str = "mlp"  # mlp, or the name of an opaque architecture
    layers: list[Layer] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # opaque nets: structural name → key
    log_std: str | None = None  # gaussian_free_std: the log-std parameter's key
    normalized_obs: bool = False  # observations pass through the module's normaliser first

    @property
    def is_target(self) -> bool:
        return self.role.endswith("_target")

    @property
    def online_role(self) -> str:
        return self.role[: -len("_target")] if self.is_target else self.role

    @property
    def label(self) -> str:
        return self.role if self.role.startswith(("actor", "v")) and self.index == 0 else f"{self.role}[{self.index}]"

    def keys(self) -> list[str]:
        out: list[str] = []
        for layer in self.layers:
            out += [layer.weight] + ([layer.bias] if layer.bias else []) + list(layer.norm or ())
        out += list(self.params.values())
        if self.log_std:
            out.append(self.log_std)
        return out

    def describe(self) -> str:
        if self.arch != "mlp":
            return f"{self.arch} ({len(self.params)} tensors)"
        dims = [self.layers[0].in_dim] + [l.out_dim for l in self.layers] if self.layers else []
        acts = sorted({l.activation for l in self.layers[:-1]}) or ["-"]
        ln = ", LayerNorm" if any(l.norm for l in self.layers) else ""
        return f"MLP {'→'.join(map(str, dims))} ({'/'.join(acts)}{ln}) on {self.inputs}"


@dataclass
class ModuleRoles:
    """Everything the checker needs to know about one module, as plain data."""

    module_class: str
    family: str  # mprl | rllib_sac | rllib_ppo | rllib_bc | unknown
    obs_shape: tuple[int, ...]
    act_shape: tuple[int, ...]
    action_space: str  # Box | Discrete | ...
    act_low: list[float] | None
    act_high: list[float] | None
    nets: list[Net] = field(default_factory=list)
    normalizer: tuple[str, str] | None = None  # (mean key, std key)
    constants: dict[str, str] = field(default_factory=dict)  # key → kind (action_scale, log_std_clip, ...)
    others: list[str] = field(default_factory=list)  # keys with no known role
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    action_transform: str = "tanh_bounds"
    action_units: str = "env"  # units of the actions critics take: env | normalized ([-1, 1])

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def act_dim(self) -> int:
        return int(np.prod(self.act_shape)) if self.act_shape else 0

    def nets_with_role(self, role: str) -> list[Net]:
        return sorted((n for n in self.nets if n.role == role), key=lambda n: n.index)

    def summary(self) -> dict[str, Any]:
        return {
            "module_class": self.module_class,
            "family": self.family,
            "observation_shape": list(self.obs_shape),
            "action_shape": list(self.act_shape),
            "action_space": self.action_space,
            "action_transform": self.action_transform,
            "observation_normaliser": self.normalizer is not None,
            "nets": {n.label: n.describe() for n in self.nets},
        }


# ----------------------------------------------------------------------------- helpers


class _Names:
    """State-dict keys of a module's submodules."""

    def __init__(self, module: nn.Module) -> None:
        self.prefix = {id(m): name for name, m in module.named_modules()}

    def key(self, sub: nn.Module, attr: str) -> str:
        p = self.prefix[id(sub)]
        return f"{p}.{attr}" if p else attr


def sequential_layers(seq: nn.Module, names: _Names) -> list[Layer] | None:
    """Linear layers of a Sequential of Linear/activation modules, or None if it is anything else."""
    layers: list[Layer] = []
    for child in seq.children():
        if isinstance(child, nn.Linear):
            layers.append(Layer(names.key(child, "weight"), names.key(child, "bias") if child.bias is not None else None, child.out_features, child.in_features))
        elif type(child) in ACTIVATIONS:
            if not layers or layers[-1].activation != "linear":
                return None
            layers[-1].activation = ACTIVATIONS[type(child)]
        elif isinstance(child, nn.LayerNorm) and child.elementwise_affine and layers and layers[-1].activation == "linear" and layers[-1].norm is None:
            layers[-1].norm = (names.key(child, "weight"), names.key(child, "bias"))
        elif isinstance(child, (nn.Identity, nn.Dropout)):
            continue
        else:  # convolutions, ...: not a plain chain
            return None
    return layers


def _rllib_mlp(model: nn.Module, names: _Names) -> list[Layer] | None:
    """Layers of an RLlib TorchMLPEncoder / TorchMLPHead (`.net.mlp`), or None."""
    net = getattr(model, "net", None)
    seq = getattr(net, "mlp", None)
    return sequential_layers(seq, names) if isinstance(seq, nn.Sequential) else None


def _chain(parts: list[nn.Module | None], names: _Names) -> list[Layer] | None:
    layers: list[Layer] = []
    for part in parts:
        if part is None:
            continue
        got = _rllib_mlp(part, names)
        if got is None:
            return None
        layers += got
    return layers


def _opaque_params(parts: dict[str, nn.Module], names: _Names) -> dict[str, str]:
    out = {}
    for tag, part in parts.items():
        for rel, _ in part.state_dict().items():
            out[f"{tag}.{rel}"] = names.key(part, rel)
    return out


def _space_info(module: Any) -> dict[str, Any]:
    obs, act = module.observation_space, module.action_space
    info: dict[str, Any] = {
        "obs_shape": tuple(int(d) for d in getattr(obs, "shape", ()) or ()),
        "act_shape": tuple(int(d) for d in getattr(act, "shape", ()) or ()),
        "action_space": type(act).__name__,
        "act_low": None,
        "act_high": None,
    }
    if hasattr(act, "low") and hasattr(act, "high"):
        info["act_low"] = [float(x) for x in np.asarray(act.low, dtype=np.float64).ravel()]
        info["act_high"] = [float(x) for x in np.asarray(act.high, dtype=np.float64).ravel()]
    if type(act).__name__ == "Discrete":
        info["act_shape"] = (int(act.n),)
    return info


def _actor_head(module: Any, act_dim: int, out_dim: int, has_free_std: bool) -> str:
    try:
        dist = module.get_train_action_dist_cls().__name__
    except Exception:  # noqa: BLE001 - modules without distributions
        dist = ""
    if "Categorical" in dist:
        return "logits"
    if has_free_std:
        return "gaussian_free_std"
    if out_dim == 2 * act_dim:
        return "gaussian"
    return "deterministic" if out_dim == act_dim else "unknown"


# ----------------------------------------------------------------------------- families


def _describe_mprl(module: nn.Module, roles: ModuleRoles, names: _Names) -> bool:
    """mprl's modules declare their roles (`declared_roles()`: attribute → role); the networks
    are chains of Linear [→ LayerNorm] → activation blocks in `.net` / `.qs[i]`."""
    declared = getattr(module, "declared_roles", None)
    if not callable(declared):
        return False
    roles.family = "mprl"
    roles.action_units = "env"
    normalizer = getattr(module, "normalizer", None)
    if isinstance(normalizer, nn.Module) and hasattr(normalizer, "mean") and hasattr(normalizer, "std"):
        roles.normalizer = (names.key(normalizer, "mean"), names.key(normalizer, "std"))
    normalized = roles.normalizer is not None
    for decl in declared():
        net = getattr(module, decl.attr)
        if decl.role.startswith("actor"):
            members = getattr(net, "members", None)  # an ensemble of actors (Off2On): one Net per member
            for i, actor in enumerate(members if isinstance(members, nn.ModuleList) else [net]):
                roles.nets.append(dataclasses.replace(_mprl_actor(decl.role, actor, names, normalized, roles.act_dim), index=i))
                if actor is not net:
                    for const in ("action_scale", "action_bias"):
                        roles.constants[names.key(actor, const)] = const
            if decl.role == "actor":
                roles.action_transform = getattr(net, "action_transform", "tanh_bounds")
            for const in ("action_scale", "action_bias"):
                roles.constants[names.key(net, const)] = const
        elif hasattr(net, "qs"):  # a critic ensemble: one Net per member
            for i, q in enumerate(net.qs):
                layers = sequential_layers(q, names)
                if layers is None:
                    roles.nets.append(Net(decl.role, i, inputs="obs+act", arch="custom_critic", params=_opaque_params({"net": q}, names), normalized_obs=normalized))
                else:
                    roles.nets.append(Net(decl.role, i, inputs="obs+act", head="value", layers=layers, normalized_obs=normalized))
        else:  # a state-value function V(s)
            layers = sequential_layers(net.net, names)
            if layers is None:
                roles.nets.append(Net(decl.role, arch="custom_value", params=_opaque_params({"net": net}, names), normalized_obs=normalized))
            else:
                roles.nets.append(Net(decl.role, inputs="obs", head="value", layers=layers, normalized_obs=normalized))
    return True


def _mprl_actor(role: str, actor: nn.Module, names: _Names, normalized: bool, act_dim: int) -> Net:
    layers = sequential_layers(actor.net, names)
    if layers is None:
        return Net(role, arch="custom_actor", head="deterministic", params=_opaque_params({"net": actor.net}, names), normalized_obs=normalized)
    if getattr(actor, "kind", "deterministic") == "deterministic":
        return Net(role, inputs="obs", head="deterministic", layers=layers, normalized_obs=normalized)
    free_std = isinstance(getattr(actor, "log_std", None), nn.Parameter)
    head = "gaussian_free_std" if free_std else ("gaussian" if layers[-1].out_dim == 2 * act_dim else "unknown")
    return Net(role, inputs="obs", head=head, layers=layers, log_std=names.key(actor, "log_std") if free_std else None, normalized_obs=normalized)


def _rllib_actor(module: Any, encoder: nn.Module | None, head: nn.Module, names: _Names, act_dim: int) -> Net:
    layers = _chain([encoder, head], names)
    log_std = head.log_std if isinstance(getattr(head, "log_std", None), nn.Parameter) else None
    if layers is None:
        return Net("actor", arch="rllib_actor", head="unknown", params=_opaque_params({"encoder": encoder, "head": head} if encoder else {"head": head}, names))
    net = Net("actor", inputs="obs", layers=layers)
    net.head = _actor_head(module, act_dim, layers[-1].out_dim, log_std is not None)
    if log_std is not None:
        net.log_std = names.key(head, "log_std")
    return net


def _rllib_q(role: str, index: int, encoder: nn.Module, head: nn.Module, names: _Names, obs_dim: int, act_dim: int) -> Net:
    if hasattr(encoder, "base_encoders"):  # RLlib's multi-stream Q encoder: obs and action streams + fusion
        return Net(role, index, inputs="obs+act", arch="rllib_multistream_q", params=_opaque_params({"encoder": encoder, "head": head}, names))
    layers = _chain([encoder, head], names)
    if layers is None:
        return Net(role, index, inputs="obs+act", arch="rllib_q", params=_opaque_params({"encoder": encoder, "head": head}, names))
    inputs = "obs+act" if layers[0].in_dim == obs_dim + act_dim else "obs"
    return Net(role, index, inputs=inputs, head="value", layers=layers)


def _describe_rllib_sac(module: Any, roles: ModuleRoles, names: _Names, normalize_actions: bool) -> bool:
    """RLlib's SAC module and its subclasses (CQL, IQL): pi, twin Q (+ targets), IQL's V."""
    from ray.rllib.algorithms.sac.default_sac_rl_module import DefaultSACRLModule

    if not isinstance(module, DefaultSACRLModule):
        return False
    roles.family = "rllib_sac"
    roles.nets.append(_rllib_actor(module, module.pi_encoder, module.pi, names, roles.act_dim))
    for role, prefix in (("q", ""), ("q_target", "target_")):
        for index, (enc, head) in enumerate([("qf_encoder", "qf"), ("qf_twin_encoder", "qf_twin")]):
            e, h = getattr(module, prefix + enc, None), getattr(module, prefix + head, None)
            if e is not None and h is not None:
                roles.nets.append(_rllib_q(role, index, e, h, names, roles.obs_dim, roles.act_dim))
    if getattr(module, "vf_encoder", None) is not None and getattr(module, "vf", None) is not None:
        layers = _chain([module.vf_encoder, module.vf], names)
        roles.nets.append(Net("v", inputs="obs", head="value", layers=layers) if layers is not None else Net("v", arch="rllib_v", params=_opaque_params({"encoder": module.vf_encoder, "head": module.vf}, names)))
    _rllib_semantics(roles, normalize_actions, squashed=True)
    return True


def _describe_rllib_ppo(module: Any, roles: ModuleRoles, names: _Names, normalize_actions: bool) -> bool:
    """RLlib's PPO module: actor encoder + pi head, critic encoder + vf head (or one shared encoder)."""
    from ray.rllib.algorithms.ppo.default_ppo_rl_module import DefaultPPORLModule

    if not isinstance(module, DefaultPPORLModule):
        return False
    roles.family = "rllib_ppo"
    enc = module.encoder
    shared = getattr(enc, "encoder", None)
    actor_enc = shared if shared is not None else getattr(enc, "actor_encoder", None)
    critic_enc = shared if shared is not None else getattr(enc, "critic_encoder", None)
    roles.nets.append(_rllib_actor(module, actor_enc, module.pi, names, roles.act_dim))
    if critic_enc is not None and getattr(module, "vf", None) is not None:
        layers = _chain([critic_enc, module.vf], names)
        if layers is not None:
            roles.nets.append(Net("v", inputs="obs", head="value", layers=layers))
    _rllib_semantics(roles, normalize_actions, squashed=False)
    return True


def _describe_rllib_bc(module: Any, roles: ModuleRoles, names: _Names, normalize_actions: bool) -> bool:
    """RLlib's BC module: encoder + pi head."""
    try:
        from ray.rllib.algorithms.bc.torch.default_bc_torch_rl_module import DefaultBCTorchRLModule
    except ImportError:  # pragma: no cover
        return False
    if not isinstance(module, DefaultBCTorchRLModule):
        return False
    roles.family = "rllib_bc"
    roles.nets.append(_rllib_actor(module, module._encoder, module._pi_head, names, roles.act_dim))
    _rllib_semantics(roles, normalize_actions, squashed=False)
    return True


def _rllib_semantics(roles: ModuleRoles, normalize_actions: bool, squashed: bool) -> None:
    actor = next((n for n in roles.nets if n.role == "actor"), None)
    if actor is not None and actor.head == "logits":
        roles.action_transform = "argmax"
    elif squashed:
        roles.action_transform = "tanh_bounds" if normalize_actions else "tanh"
    else:
        roles.action_transform = "clip_bounds" if normalize_actions else "clip"
    roles.action_units = "normalized" if normalize_actions else "env"
    for key in roles.shapes:
        if key.endswith("log_std_clip_param_const"):
            roles.constants[key] = "log_std_clip"


def describe_module(module: Any, normalize_actions: bool | None = None) -> ModuleRoles:
    """The roles of `module`'s parameters.

    `normalize_actions` is the algorithm's RLlib setting (RLlib modules emit actions in
    [-1, 1] that the env runner maps to the bounds when it is on; default on, as in RLlib).
    Our TD3-family modules act in environment units and ignore it.
    """
    names = _Names(module)
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in module.state_dict().items()}
    roles = ModuleRoles(module_class=f"{type(module).__module__}.{type(module).__qualname__}", family="unknown", shapes=shapes, **_space_info(module))
    na = True if normalize_actions is None else bool(normalize_actions)
    for detect in (_describe_mprl, _describe_rllib_sac, _describe_rllib_ppo, _describe_rllib_bc):
        if detect is _describe_mprl:
            found = detect(module, roles, names)
        else:
            try:
                found = detect(module, roles, names, na)
            except ImportError:  # pragma: no cover
                found = False
        if found:
            break
    claimed = set(roles.constants) | ({*roles.normalizer} if roles.normalizer else set())
    for net in roles.nets:
        claimed.update(net.keys())
    roles.others = [k for k in shapes if k not in claimed]
    return roles
