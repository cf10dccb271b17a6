"""Conversion from and to ``torch.nn.utils.prune`` (DASH's original scripts use it)."""

from __future__ import annotations

import torch
import torch.nn.utils.prune as tprune
from torch import nn

from biostruct.sparsity.masking import MaskedParams

__all__ = ["from_torch_prune", "to_torch_prune"]


def from_torch_prune(model: nn.Module) -> MaskedParams | None:
    """Replace every ``torch.nn.utils.prune`` reparameterisation by :class:`MaskedParams`.

    Masks and weights are kept (``"fc.weight_mask"`` keeps its state-dict key). Returns ``None``
    if nothing was pruned.
    """
    found: dict[str, torch.Tensor] = {}
    for mod_name, module in model.named_modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, tprune.BasePruningMethod):
                name = hook._tensor_name
                fqn = f"{mod_name}.{name}" if mod_name else name
                found[fqn] = getattr(module, f"{name}_mask").detach().to(torch.bool).clone()
                tprune.remove(module, name)
    if not found:
        return None
    return MaskedParams.attach(model, list(found), masks=found)


def to_torch_prune(masked: MaskedParams) -> nn.Module:
    """Turn the masks into ``torch.nn.utils.prune.custom_from_mask`` hooks (plain path only)."""
    masks = {f: masked.mask(f).clone() for f in masked.fqns}
    where = {f: masked._where[f] for f in masked.fqns}
    model = masked.merge()
    for fqn, mask in masks.items():
        module, name = where[fqn]
        tprune.custom_from_mask(module, name, mask.to(getattr(module, name).dtype))
    return model
