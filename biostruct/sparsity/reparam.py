"""Pointwise overparameterisation ``theta = m * w`` (PILoT, Sign-In).

Under gradient flow the per-entry "scale" ``m**2 - w**2`` is conserved; weight decay on ``m`` and
``w`` shrinks it (towards an L1-like implicit bias, PILoT), and Sign-In resets it periodically so
that entries can keep changing sign. Initialisation and rebalancing use the closed form

    m = sqrt((beta + sqrt(beta**2 + 4 theta**2)) / 2),   w = theta / m,

which gives ``m * w = theta`` and ``m**2 - w**2 = beta`` exactly (``m > 0``). Masks stack on top:
attach :class:`~biostruct.sparsity.MaskedParams` *after* :class:`MaskWeight` and the effective
weight is ``mask * (m * w)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from biostruct.errors import InputError
from biostruct.sparsity.masking import _registry
from biostruct.sparsity.selection import resolve

__all__ = ["MaskWeight", "MW", "split_mw"]


def split_mw(theta: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m, w)`` with ``m * w == theta`` and ``m**2 - w**2 == beta`` (``m >= 0``)."""
    if beta < 0:
        raise InputError(f"beta={beta} < 0", field="beta", fix="use beta >= 0 (e.g. 1.0)")
    m = torch.sqrt((beta + torch.sqrt(beta * beta + 4.0 * theta * theta)) / 2.0)
    w = torch.where(m > 0, theta / torch.where(m > 0, m, torch.ones_like(m)), torch.zeros_like(m))
    return m, w


class MW(nn.Module):
    """Parametrization ``(m, w) -> m * w`` whose right inverse is :func:`split_mw`."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return m * w

    def right_inverse(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return split_mw(theta, self.beta)


class MaskWeight:
    """``theta = m * w`` on named tensors, initialised so that ``m * w`` is the current weight.

    The originals are ``<module>.parametrizations.<name>.original0`` (m) and ``original1`` (w),
    so ``model.state_dict()`` carries them.

    Parameters
    ----------
    model
        Root module.
    fqns
        Tensors carrying the reparameterisation (use :meth:`attach`).
    beta
        The scale ``m**2 - w**2`` set at initialisation and by :meth:`rebalance`.
    """

    def __init__(self, model: nn.Module, fqns: Sequence[str], beta: float = 1.0) -> None:
        self.model = model
        self._fqns = list(fqns)
        self.beta = float(beta)
        self._where = {f: resolve(model, f) for f in self._fqns}
        for f, (module, name) in self._where.items():
            if not self._find(module, name):
                raise InputError(f"{f!r} has no m*w", field="fqns", fix="use MaskWeight.attach")

    @staticmethod
    def _find(module: nn.Module, name: str) -> bool:
        if not parametrize.is_parametrized(module, name):
            return False
        return isinstance(module.parametrizations[name][0], MW)

    @classmethod
    @torch.no_grad()
    def attach(cls, model: nn.Module, fqns: Sequence[str], beta: float = 1.0) -> MaskWeight:
        """Register ``m * w`` on every tensor in ``fqns`` (closed-form initialisation).

        Raises
        ------
        InputError
            ``beta < 0``, or a tensor already masked by :class:`MaskedParams` or already
            parametrized (attach ``MaskWeight`` first, then the masks).
        """
        if beta < 0:
            raise InputError(f"beta={beta} < 0", field="beta", fix="use beta >= 0 (e.g. 1.0)")
        if isinstance(fqns, str):
            fqns = [fqns]
        for fqn in fqns:
            module, name = resolve(model, fqn)
            if cls._find(module, name):
                continue
            if name in _registry(module) or parametrize.is_parametrized(module, name):
                raise InputError(
                    f"{fqn!r} is already masked or parametrized",
                    field="fqns",
                    fix="attach MaskWeight before MaskedParams (masks stack on top of m*w)",
                )
            parametrize.register_parametrization(module, name, MW(beta), unsafe=True)
        return cls(model, fqns, beta)

    @property
    def fqns(self) -> list[str]:
        """Reparameterised tensor names."""
        return list(self._fqns)

    def mw(self, fqn: str) -> tuple[nn.Parameter, nn.Parameter]:
        """The leaf parameters ``(m, w)`` of ``fqn``."""
        module, name = self._where[fqn]
        plist = module.parametrizations[name]
        return plist.original0, plist.original1

    def parameters(self) -> Iterator[nn.Parameter]:
        """All ``m`` and ``w`` leaves (e.g. for a parameter group with weight decay)."""
        for f in self._fqns:
            yield from self.mw(f)

    @torch.no_grad()
    def theta(self) -> dict[str, torch.Tensor]:
        """``{fqn: m * w}`` (before any stacked mask), detached."""
        return {f: (lambda mw: mw[0] * mw[1])(self.mw(f)).detach().clone() for f in self._fqns}

    @torch.no_grad()
    def fold(self) -> dict[str, torch.Tensor]:
        """``{fqn: effective weight}`` (masks applied) as plain tensors, without modifying."""
        return {f: getattr(m, n).detach().clone() for f, (m, n) in self._where.items()}

    @torch.no_grad()
    def scale(self) -> dict[str, float]:
        """Mean of ``m**2 - w**2`` per tensor (the implicit-bias strength ``a_t``)."""
        out = {}
        for f in self._fqns:
            m, w = self.mw(f)
            out[f] = float((m * m - w * w).mean())
        return out

    @torch.no_grad()
    def rebalance(
        self,
        beta: float | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        reset_state: bool = True,
    ) -> None:
        """Sign-In reset: rewrite ``(m, w)`` in place so that ``m**2 - w**2 = beta``.

        ``m * w`` is unchanged (up to rounding). Parameter identity is kept, so the optimizer
        keeps working; with ``reset_state`` its per-parameter tensors (momentum, Adam moments)
        for ``m`` and ``w`` are zeroed (the papers do not say whether they reset them).
        """
        beta = self.beta if beta is None else float(beta)
        for f in self._fqns:
            m, w = self.mw(f)
            new_m, new_w = split_mw(m * w, beta)
            m.copy_(new_m)
            w.copy_(new_w)
            if optimizer is not None and reset_state:
                for p in (m, w):
                    for v in optimizer.state.get(p, {}).values():
                        if torch.is_tensor(v) and v.shape == p.shape:
                            v.zero_()

    @torch.no_grad()
    def merge(self) -> nn.Module:
        """Replace ``m * w`` (and any mask stacked on it) by plain weights; returns the model.

        Masks stacked on these tensors are folded in too (their entries become exact zeros); use
        :func:`~biostruct.sparsity.MaskedParams.attach` again for further pruning.
        """
        for module, name in self._where.values():
            # Outside no_grad: torch registers the folded tensor as a Parameter only if it
            # requires grad (with several originals, e.g. m and w).
            with torch.enable_grad():
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
            _registry(module).pop(name, None)
        self._fqns = []
        self._where = {}
        return self.model

    def state_dict(self) -> dict[str, Any]:
        """Settings (the tensors themselves are in ``model.state_dict()``)."""
        return {"beta": self.beta, "fqns": list(self._fqns)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.beta = float(state["beta"])
