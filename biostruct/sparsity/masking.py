"""Binary masks on named parameters, kept as persistent buffers in ``model.state_dict()``.

Design (and why)
----------------
Two ways to keep a masked entry at zero are used, chosen per tensor:

``"zero"`` (plain parameters, the default path)
    The parameter itself holds exact zeros at masked positions. The mask is a persistent buffer
    ``<name>_mask`` on the owning module (so ``model.state_dict()`` carries it, e.g.
    ``"fc.weight_mask"``). A post-accumulate-grad hook multiplies ``param.grad`` by the mask in
    place (gradients returned by ``torch.autograd.grad`` itself are not masked; they are once
    accumulated into ``.grad``, as torchdiffeq's adjoint does), and a step post-hook installed by
    :meth:`MaskedParams.sync_optimizer` re-applies the mask to the weight after every
    ``optimizer.step()``. The forward pass runs the unmodified module, so the cost of masking is
    one element-wise product on the gradient and one on the weight per step; repeated evaluations
    inside an ODE solve cost nothing extra. The trade-off: the zeros live in the parameter, so
    code that writes into the parameter behind our back (``load_state_dict`` of an unmasked
    checkpoint, a custom optimizer without step hooks) must be followed by :meth:`apply_`.
    With the gradient masked and the optimizer state of pruned entries cleared, SGD (with
    momentum), Adam and AdamW (coupled or decoupled weight decay) leave a zero weight exactly zero
    even before the post-step re-application.

``"parametrize"`` (tensors that are already parametrized, e.g. by :class:`MaskWeight`)
    A parametrization multiplying by the mask is stacked on top with
    ``torch.nn.utils.parametrize``; its buffer is ``<module>.parametrizations.<name>.<i>.mask``.
    The forward pays one multiply per access: wrap repeated evaluations (an ODE solve) in
    :meth:`MaskedParams.cached`.

Pruned entries' optimizer state (momentum, Adam moments) is zeroed by :meth:`sync_optimizer`,
and again automatically after every :meth:`set_masks` for every optimizer synced before.

Performance note (CPU): Adam's second moment is then exactly 0 at pruned entries, and on some
CPUs torch's vectorised ``sqrt(0.0)`` is several times slower than ``sqrt`` of a normal number;
the for-loop ``torch.optim.Adam`` pays that on every pruned entry, the fused kernel
(``torch.optim.Adam(..., fused=True)``) does not. See ``benchmarks/sparsity_overhead.py``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from biostruct.errors import InputError
from biostruct.sparsity.selection import resolve

__all__ = [
    "MaskedParams",
    "MaskParametrization",
    "export_dense",
    "load_dense_state_dict",
    "mask_state_keys",
    "reapply_masks",
    "leaf_tensors",
]

_REGISTRY = "_biostruct_masks"  # module attribute: {tensor name: mode}
_HOOKS = "_biostruct_mask_hooks"  # module attribute: {tensor name: hook handle}
_CACHE = "_biostruct_mask_cache"  # module attribute: {tensor name: float-mask cache}


class MaskParametrization(nn.Module):
    """Parametrization ``X -> X * mask`` with the mask as a persistent boolean buffer."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool).clone(), persistent=True)
        self._cache: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _float_mask(self.mask, x.dtype, self._cache)

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        # Identity, so that ``module.weight = tensor`` keeps working with stacked parametrizations.
        return x


def _float_mask(mask: torch.Tensor, dtype: torch.dtype, cache: dict) -> torch.Tensor:
    """``mask`` as ``dtype`` 0/1, cached until the boolean buffer changes.

    Multiplying a float tensor by a bool tensor takes a slow mixed-dtype path (measured ~5-10x
    slower than float * float on CPU), so the float copy is kept; the buffer's version counter
    (bumped by every in-place write, including ``load_state_dict``) invalidates it.
    """
    key = (mask._version, dtype)
    # Holding ``mask`` itself (not its id) makes the identity check safe against id reuse.
    if cache.get("mask") is not mask or cache.get("key") != key:
        cache["mask"] = mask
        cache["key"] = key
        cache["value"] = mask.to(dtype)
    return cache["value"]


def _registry(module: nn.Module) -> dict[str, str]:
    reg = module.__dict__.get(_REGISTRY)
    if reg is None:
        reg = {}
        module.__dict__[_REGISTRY] = reg
    return reg


def _mask_param_index(module: nn.Module, name: str) -> int:
    plist = module.parametrizations[name]
    for i, p in enumerate(plist):
        if isinstance(p, MaskParametrization):
            return i
    raise KeyError(name)


def _mask_buffer(module: nn.Module, name: str) -> torch.Tensor:
    mode = _registry(module)[name]
    if mode == "zero":
        return getattr(module, f"{name}_mask")
    return module.parametrizations[name][_mask_param_index(module, name)].mask


def leaf_tensors(module: nn.Module, name: str) -> list[nn.Parameter]:
    """Trainable leaf tensors behind ``module.<name>`` (the originals when parametrized)."""
    if parametrize.is_parametrized(module, name):
        plist = module.parametrizations[name]
        if hasattr(plist, "original"):
            return [plist.original]
        out = []
        i = 0
        while hasattr(plist, f"original{i}"):
            out.append(getattr(plist, f"original{i}"))
            i += 1
        return out
    return [module._parameters[name]]


def _make_grad_hook(module: nn.Module, name: str):
    ref = weakref.ref(module)

    def hook(param: torch.Tensor) -> None:
        mod = ref()
        if mod is None or param.grad is None:
            return
        # In place on ``.grad`` after accumulation: no allocation per backward (an out-of-place
        # tensor hook allocating a fresh gradient cost more than the multiply itself on CPU).
        # The buffer is looked up at call time: ``module.to(...)`` replaces buffer tensors.
        param.grad.mul_(_zero_mask(mod, name, param.grad.dtype))

    return hook


def _zero_mask(module: nn.Module, name: str, dtype: torch.dtype) -> torch.Tensor:
    cache = module.__dict__.setdefault(_CACHE, {}).setdefault(name, {})
    return _float_mask(getattr(module, f"{name}_mask"), dtype, cache)


def mask_state_keys(model: nn.Module) -> set[str]:
    """Keys of ``model.state_dict()`` that hold masks created by :class:`MaskedParams`."""
    keys: set[str] = set()
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for name, mode in module.__dict__.get(_REGISTRY, {}).items():
            if mode == "zero":
                keys.add(f"{prefix}{name}_mask")
            else:
                idx = _mask_param_index(module, name)
                keys.add(f"{prefix}parametrizations.{name}.{idx}.mask")
    return keys


@torch.no_grad()
def reapply_masks(model: nn.Module) -> None:
    """Zero every masked entry of every ``"zero"``-mode tensor in ``model`` (in place)."""
    for module in model.modules():
        for name, mode in module.__dict__.get(_REGISTRY, {}).items():
            if mode == "zero":
                param = module._parameters[name]
                param.mul_(_zero_mask(module, name, param.dtype))


@torch.no_grad()
def export_dense(model: nn.Module) -> dict[str, torch.Tensor]:
    """A plain state dict: parametrized tensors evaluated, mask buffers dropped.

    The result loads into a fresh, un-masked copy of the architecture with
    ``load_state_dict(..., strict=True)``.
    """
    drop = mask_state_keys(model)
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key in drop or ".parametrizations." in f".{key}":
            continue
        out[key] = value.detach().clone()
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        prefix = f"{mod_name}." if mod_name else ""
        for name in module.parametrizations.keys():
            out[f"{prefix}{name}"] = getattr(module, name).detach().clone()
    return out


@torch.no_grad()
def load_dense_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load a plain state dict (e.g. from :func:`export_dense` or an unpruned checkpoint).

    Parametrized tensors (m*w, stacked masks) are assigned through their right inverses, so
    ``m * w`` reproduces the given weight with the parametrization's scale; mask buffers are
    left alone and re-applied afterwards, so pruned entries stay zero.

    Raises
    ------
    InputError
        A key of ``state`` matches no parameter or buffer, or a model tensor is missing.
    """
    plain: dict[str, torch.Tensor] = {}
    assigned: set[str] = set()
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        prefix = f"{mod_name}." if mod_name else ""
        for name in list(module.parametrizations.keys()):
            key = f"{prefix}{name}"
            if key in state:
                value = state[key].to(getattr(module, name).device)
                setattr(module, name, value)
                assigned.add(key)
    masks = mask_state_keys(model)
    for key, value in state.items():
        if key not in assigned:
            plain[key] = value
    expected = {
        k for k in model.state_dict() if k not in masks and ".parametrizations." not in f".{k}"
    }
    unknown = sorted(set(plain) - expected)
    missing = sorted(expected - set(plain))
    if unknown or missing:
        raise InputError(
            f"state does not fit the model (unknown keys {unknown[:5]}, missing {missing[:5]})",
            field="state",
            fix="pass a plain state dict of the same architecture (see export_dense)",
        )
    model.load_state_dict(plain, strict=False)
    reapply_masks(model)


class MaskedParams:
    """Binary masks on a set of named parameters of one model.

    Build with :meth:`attach`. The object is a view on the model: masks live in the model's
    buffers, so ``model.state_dict()`` / ``model.load_state_dict()`` carry them; the object's own
    :meth:`state_dict` is a convenience copy ``{fqn: mask}``.

    Parameters
    ----------
    model
        Root module.
    fqns
        Fully-qualified tensor names already carrying masks (use :meth:`attach` instead).
    """

    def __init__(self, model: nn.Module, fqns: Sequence[str]) -> None:
        self.model = model
        self._fqns = list(fqns)
        self._optimizers: list[weakref.ref] = []
        self._where: dict[str, tuple[nn.Module, str]] = {}
        for fqn in self._fqns:
            module, name = resolve(model, fqn)
            self._where[fqn] = (module, name)
            if name not in _registry(module):
                raise InputError(
                    f"{fqn!r} carries no mask", field="fqns", fix="use MaskedParams.attach(...)"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    @torch.no_grad()
    def attach(
        cls,
        model: nn.Module,
        fqns: Sequence[str],
        masks: Mapping[str, torch.Tensor] | None = None,
    ) -> MaskedParams:
        """Give every tensor in ``fqns`` a mask (all ones unless ``masks`` says otherwise).

        Attaching to a tensor that already has a mask reuses it. Plain parameters use the
        ``"zero"`` path, parametrized tensors get a stacked :class:`MaskParametrization`.

        Raises
        ------
        InputError
            Unknown names, duplicates, or a tensor pruned by ``torch.nn.utils.prune`` (convert it
            with :func:`biostruct.sparsity.from_torch_prune` first).
        """
        if isinstance(fqns, str):
            fqns = [fqns]
        if len(set(fqns)) != len(fqns):
            raise InputError("duplicate names", field="fqns", fix="pass each tensor name once")
        if not fqns:
            raise InputError("no tensor names given", field="fqns", fix="see select(model)")
        for fqn in fqns:
            module, name = resolve(model, fqn)
            reg = _registry(module)
            if name in reg:
                continue
            if hasattr(module, f"{name}_orig"):
                raise InputError(
                    f"{fqn!r} is pruned by torch.nn.utils.prune",
                    field="fqns",
                    fix="call biostruct.sparsity.from_torch_prune(model) first",
                )
            if parametrize.is_parametrized(module, name):
                ref = getattr(module, name)
                parametrize.register_parametrization(
                    module, name, MaskParametrization(torch.ones_like(ref, dtype=torch.bool))
                )
                reg[name] = "parametrize"
            else:
                param = module._parameters[name]
                if param is None:
                    raise InputError(f"{fqn!r} is None", field="fqns", fix="pick another tensor")
                module.register_buffer(
                    f"{name}_mask", torch.ones_like(param, dtype=torch.bool), persistent=True
                )
                handle = param.register_post_accumulate_grad_hook(_make_grad_hook(module, name))
                module.__dict__.setdefault(_HOOKS, {})[name] = handle
                reg[name] = "zero"
        out = cls(model, fqns)
        if masks is not None:
            out.set_masks(masks)
        return out

    # ------------------------------------------------------------------ access
    @property
    def fqns(self) -> list[str]:
        """Masked tensor names, in attach order."""
        return list(self._fqns)

    def _check(self, fqn: str) -> tuple[nn.Module, str]:
        if fqn not in self._fqns:
            raise InputError(
                f"{fqn!r} is not masked by this object",
                field="fqn",
                fix=f"use one of {self._fqns}",
            )
        return self._where[fqn]

    def mask(self, fqn: str) -> torch.Tensor:
        """The live boolean mask of ``fqn`` (do not modify in place; use :meth:`set_masks`)."""
        module, name = self._check(fqn)
        return _mask_buffer(module, name)

    def masks(self) -> dict[str, torch.Tensor]:
        """``{fqn: bool mask}`` for every masked tensor (live buffers)."""
        return {f: self.mask(f) for f in self._fqns}

    def weight(self, fqn: str) -> torch.Tensor:
        """The effective (masked) tensor of ``fqn``, detached."""
        module, name = self._check(fqn)
        return getattr(module, name).detach()

    def weights(self) -> dict[str, torch.Tensor]:
        """``{fqn: effective tensor}``, detached."""
        return {f: self.weight(f) for f in self._fqns}

    def shapes(self) -> dict[str, torch.Size]:
        """``{fqn: shape}``."""
        return {f: self.mask(f).shape for f in self._fqns}

    def mode(self, fqn: str) -> str:
        """``"zero"`` or ``"parametrize"`` (see the module docstring)."""
        module, name = self._check(fqn)
        return _registry(module)[name]

    def densities(self) -> dict[str, float]:
        """Fraction of kept entries per tensor."""
        return {f: float(m.float().mean()) for f, m in self.masks().items()}

    def density(self) -> float:
        """Fraction of kept entries over all masked tensors."""
        masks = self.masks().values()
        return float(sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks))

    # ------------------------------------------------------------------ mutation
    @torch.no_grad()
    def set_masks(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks of the given tensors (others keep theirs).

        Weights of newly masked entries become zero ("zero" path); the optimizer state of masked
        entries is cleared in every optimizer passed to :meth:`sync_optimizer` before.
        """
        for fqn, new in masks.items():
            module, name = self._check(fqn)
            buf = _mask_buffer(module, name)
            new = torch.as_tensor(new)
            if tuple(new.shape) != tuple(buf.shape):
                raise InputError(
                    f"mask for {fqn!r} has shape {tuple(new.shape)}, expected {tuple(buf.shape)}",
                    field="masks",
                    fix="build masks from MaskedParams.shapes()",
                )
            if new.dtype != torch.bool:
                if not bool(((new == 0) | (new == 1)).all()):
                    raise InputError(
                        f"mask for {fqn!r} has values other than 0/1",
                        field="masks",
                        fix="pass boolean tensors",
                    )
            buf.copy_(new.to(device=buf.device, dtype=torch.bool))
        self.apply_()
        for opt in self._live_optimizers():
            self._clear_state(opt)

    @torch.no_grad()
    def apply_(self) -> None:
        """Re-zero masked entries of plain parameters (after external writes)."""
        for module, name in self._where.values():
            if _registry(module)[name] == "zero":
                param = module._parameters[name]
                param.mul_(_zero_mask(module, name, param.dtype))

    # ------------------------------------------------------------------ optimizers
    def _live_optimizers(self) -> list[torch.optim.Optimizer]:
        alive = [(r, r()) for r in self._optimizers]
        self._optimizers = [r for r, o in alive if o is not None]
        return [o for _, o in alive if o is not None]

    @torch.no_grad()
    def _clear_state(self, optimizer: torch.optim.Optimizer) -> None:
        for module, name in self._where.values():
            mask = _mask_buffer(module, name)
            for leaf in leaf_tensors(module, name):
                if leaf.shape != mask.shape:
                    continue
                state: dict[str, Any] = optimizer.state.get(leaf, {})
                for value in state.values():
                    if torch.is_tensor(value) and value.shape == mask.shape:
                        value.mul_(mask.to(value.dtype))

    def sync_optimizer(self, optimizer: torch.optim.Optimizer, reapply: bool = True) -> None:
        """Clear pruned entries' optimizer state and keep masks applied after each step.

        Call once per optimizer (again after re-creating one, e.g. for LRR). Remembers the
        optimizer so that later :meth:`set_masks` calls clear its state automatically.

        Parameters
        ----------
        optimizer
            The optimizer over (some of) the model's parameters.
        reapply
            Install a step post-hook that re-applies the masks to the weights after every
            ``optimizer.step()``. With masked gradients and cleared state, SGD, Adam and AdamW
            already keep pruned weights at exactly 0; the hook is a safety net for gradients
            written to ``.grad`` by hand and for other optimizers, and costs one in-place multiply
            per masked tensor and step.
        """
        if not any(o is optimizer for o in self._live_optimizers()):
            self._optimizers.append(weakref.ref(optimizer))
            if reapply:
                me = weakref.ref(self)

                def post(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
                    obj = me()
                    if obj is not None:
                        obj.apply_()

                optimizer.register_step_post_hook(post)
        self._clear_state(optimizer)

    # ------------------------------------------------------------------ export
    def cached(self) -> contextlib.AbstractContextManager:
        """``torch.nn.utils.parametrize.cached()``: evaluate parametrized tensors once.

        Use around an ODE solve when some masked tensors are parametrized (e.g. m*w). It is a
        no-op for the default ``"zero"`` path, which never recomputes anything in the forward.
        """
        return parametrize.cached()

    def export_dense(self) -> dict[str, torch.Tensor]:
        """Plain state dict of the whole model (see :func:`export_dense`)."""
        return export_dense(self.model)

    @torch.no_grad()
    def merge(self) -> nn.Module:
        """Remove masks (and any parametrization under them), leaving plain zeroed weights.

        Returns the model; this object is unusable afterwards.
        """
        for module, name in self._where.values():
            reg = _registry(module)
            if reg[name] == "zero":
                module._parameters[name].mul_(getattr(module, f"{name}_mask"))
                module.__dict__.get(_HOOKS, {}).pop(name).remove()
                delattr(module, f"{name}_mask")
            else:
                # Outside no_grad, or a tensor with several originals (m*w) comes back as a
                # buffer instead of a Parameter.
                with torch.enable_grad():
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
            del reg[name]
        self._fqns = []
        self._where = {}
        return self.model

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{fqn: mask clone}``."""
        return {f: m.detach().clone() for f, m in self.masks().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Set masks from :meth:`state_dict` output."""
        self.set_masks(state)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fqns)

    def __len__(self) -> int:
        return len(self._fqns)

    def __repr__(self) -> str:
        return f"MaskedParams({len(self._fqns)} tensors, density={self.density():.4f})"
