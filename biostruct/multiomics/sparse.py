"""Scheduled pruning of one masked tensor inside a DAG-VAE component, through the shared core.

Used by the feature-level link layers (:mod:`biostruct.multiomics.links`) and the sparse linear
decoders (:class:`SparseLoadings`). The tensor ``weight`` carries a
:class:`biostruct.sparsity.MaskedParams` mask; rounds are :func:`biostruct.sparsity.prune_step`
calls at the densities of a :class:`biostruct.sparsity.IterativePlan` (``rounds`` rounds to
``1 - sparsity``; the trained weights are kept, i.e. learning-rate rewinding with the DAG-VAE's
constant rate), spread over the component's annealing epochs so that the mask is final before
the early-stopped regular phase; weight decay on the tensor follows
:class:`biostruct.sparsity.WeightDecaySchedule` with :func:`biostruct.sparsity.switch_off` at the
last round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

import biostruct.sparsity as sp

__all__ = ["ScheduledPruning", "SparseLoadings"]


class ScheduledPruning:
    """Mixin for an ``nn.Module`` with a masked ``weight``, a ``spec`` (``sparsity``,
    ``rounds``, ``weight_decay``), ``scorer()`` and ``log_tag`` (``"..._{}_..."``)."""

    weight: nn.Parameter
    masked: sp.MaskedParams
    spec: Any

    def init_pruning(self) -> None:
        """Attach the core's mask (if not yet) and reset the schedule."""
        if not hasattr(self, "masked"):
            self.masked = sp.MaskedParams.attach(self, ["weight"])  # type: ignore[arg-type]
        #: one record per pruning round: epoch, density, kept entries
        self.history: list[dict[str, Any]] = []
        self._cuts: dict[int, list[float]] = {}
        self._decay: sp.WeightDecaySchedule | None = None

    def density(self) -> float:
        """Fraction of ``weight`` kept."""
        return float(self.masked.density()) if self.weight.numel() else 1.0

    def plan(self) -> list[float]:
        """Densities after each round (:class:`biostruct.sparsity.IterativePlan`)."""
        target = 1.0 - self.spec.sparsity
        if target >= 1.0:
            return []
        frac = 1.0 - target ** (1.0 / self.spec.rounds)
        return sp.IterativePlan(target, prune_fraction=min(max(frac, 1e-6), 1 - 1e-6)).densities()

    def prune_round(self, density: float, epoch: int = -1) -> dict[str, Any]:
        """One pruning round to ``density`` of the tensor through the core."""
        with torch.no_grad():
            sp.prune_step(self.masked, self.scorer(), density=density)
        rec = {
            "epoch": epoch,
            "density": self.density(),
            "kept": int(self.masked.mask("weight").sum()),
        }
        self.history.append(rec)
        return rec

    def schedule(self, epochs_before_regular: int) -> dict[int, list[float]]:
        """Epoch (0-based, pruned at its end) -> densities: rounds spread over the annealing
        epochs' last two thirds (the last round at the last epoch before the regular phase)."""
        dens = self.plan()
        if not dens:
            return {}
        last = max(epochs_before_regular - 1, 0)
        first = min(last, max(epochs_before_regular // 3, 0))
        at = np.round(np.linspace(first, last, len(dens))).astype(int)
        out: dict[int, list[float]] = {}
        for e, d in zip(at, dens, strict=True):
            out.setdefault(int(e), []).append(d)
        return out

    def begin(self, optimizer: torch.optim.Optimizer, plan: Sequence[str], n_batches: int) -> None:
        """Set up the component's training: optimizer sync, pruning epochs, weight-decay
        switch-off (a parameter group of its own for ``weight``)."""
        self.masked.sync_optimizer(optimizer)
        n_pre = sum(1 for ph in plan if ph != "regular")
        self._cuts = self.schedule(n_pre if n_pre else len(plan))
        self.history = []
        wd = self.spec.weight_decay
        if wd > 0 and self.weight.numel():
            for g in optimizer.param_groups:
                g["params"] = [p for p in g["params"] if p is not self.weight]
            optimizer.add_param_group({"params": [self.weight], "weight_decay": wd})
            stop = (max(self._cuts) + 1) * n_batches if self._cuts else 0
            sched = sp.WeightDecaySchedule(
                optimizer, sp.switch_off(wd, stop), groups=[len(optimizer.param_groups) - 1]
            )

            def pre_step(*_: Any) -> None:
                sched.step()

            optimizer.register_step_pre_hook(pre_step)
            self._decay = sched

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Prune if a round is due after ``epoch``; the layer's state for the epoch's log."""
        for d in self._cuts.get(epoch, []):
            self.prune_round(d, epoch)
        out: dict[str, Any] = {self.log_tag.format("density"): self.density()}
        if self._decay is not None:
            out[self.log_tag.format("weight_decay")] = self._decay.value
        return out


class SparseLoadings(ScheduledPruning, nn.Module):
    """LDVAE-style linear decoder term ``W z_hat`` (features x latent dims), masked and pruned
    by the core, so that every latent dimension has a named, sparse loading.

    Parameters
    ----------
    spec
        The component's :class:`~biostruct.multiomics.graph.SparseDecoderSpec`.
    n_latent, n_features
        Latent (z_hat) size and number of features.
    tag
        ``"<component>_<modality>"`` for the history columns.
    """

    def __init__(self, spec: Any, n_latent: int, n_features: int, tag: str) -> None:
        super().__init__()
        self.spec = spec
        self.tag = tag
        lin = nn.Linear(n_latent, n_features, bias=False)
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.masked = sp.MaskedParams.attach(self, ["weight"])
        self.init_pruning()

    @property
    def log_tag(self) -> str:
        """History column pattern ``decoder_{}_<component>_<modality>``."""
        return f"decoder_{{}}_{self.tag}"

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        """``z_hat W^T`` (n_cells x n_features)."""
        return z_hat @ self.weight.T

    def scorer(self) -> sp.Scorer:
        """``Magnitude()`` (or ``Random`` for ``method: random``)."""
        if self.spec.method == "random":
            return sp.Random(seed=len(self.history))
        return sp.Magnitude()
